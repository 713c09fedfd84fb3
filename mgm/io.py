"""Atomic writes of files and folders, and the config.json + safetensors format of every mgm component.

A folder (a model, a tokenizer, a pipeline) is saved whole or not at all: it is built in a hidden
sibling folder, its ``manifest.json`` (every file's size and SHA-256) is written last, and the
finished folder is swapped in with one atomic exchange of directory entries. A kill at any
moment leaves the old folder or the new one, never a mix; debris of a killed save (the hidden
sibling) is cleared by the next save of that folder. Loading checks the manifest, so a folder
whose parts do not belong together is refused with a clear error.

Loading checks what it reads before anything is built: a config against the constructor's
signature and annotations (``check_config``: unknown or missing keys, JSON types, finite numbers)
and the weights against the module that config builds on the meta device (``check_weights``:
keys, shapes, dtypes, finite values); each error names the file and the key. CLIs check their
output paths up front (``check_output_folder`` / ``check_output_file``).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import inspect
import json
import math
import os
import shutil
import tempfile
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mgm.checks import check_device
from mgm.hub import HubMixin, resolve_folder

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], overwrite: bool = False) -> Path:
    """Call ``write(tmp_path)`` then move the finished file to ``path`` in one rename.

    A crash leaves either the old file or none, never a half-written one. Refuses to replace an
    existing file unless ``overwrite``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


MANIFEST = "manifest.json"
_PARTIAL, _OLD = ".partial", ".old"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: str | os.PathLike) -> Path:
    """Write ``folder/manifest.json``: the size and SHA-256 of every file below it (itself excepted)."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST)
    entries = {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": _file_digest(p)} for p in files}
    return save_json({"files": entries}, folder / MANIFEST, overwrite=True)


def check_manifest(folder: str | os.PathLike) -> None:
    """Refuse a folder whose files are not the ones its manifest lists (a mix of two saves, a
    truncated or edited file). A folder without a manifest (written by an older mgm or another
    library) is taken as it is."""
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        return
    manifest = load_json(folder / MANIFEST)
    entries = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(entries, dict):
        raise ValueError(f"{folder / MANIFEST}: not an mgm manifest (expected {{'files': {{...}}}})")
    for name, entry in entries.items():
        path = folder / name
        if not path.is_file():
            raise ValueError(f"{folder}: {name} is missing; the folder is incomplete (save it again)")
        if path.stat().st_size != entry.get("size") or _file_digest(path) != entry.get("sha256"):
            raise ValueError(
                f"{folder}: {name} is not the file this folder was saved with (its parts come from different "
                "saves, or it was changed); save the folder again"
            )


def _has_content(directory: Path) -> bool:
    return directory.is_dir() and any(directory.iterdir())


def _clear_debris(directory: Path) -> None:
    """Remove the hidden siblings that killed saves of ``directory`` left behind."""
    for pattern in (f".{directory.name}.*{_PARTIAL}", f".{directory.name}.*{_OLD}"):
        for debris in directory.parent.glob(pattern):
            shutil.rmtree(debris, ignore_errors=True)


_RENAME_EXCHANGE, _AT_FDCWD = 2, -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directory entries in one atomic step (Linux renameat2); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def _swap_in(built: Path, directory: Path) -> None:
    """Put the finished folder ``built`` at ``directory``, replacing what is there."""
    if not directory.exists():
        os.rename(built, directory)
        return
    if _exchange(built, directory):
        shutil.rmtree(built, ignore_errors=True)  # now the old folder
        return
    # No atomic exchange here: move the old folder aside first (a kill in between leaves no folder
    # at ``directory``, and the old one under its hidden name).
    old = directory.with_name(f".{directory.name}.{os.getpid()}{_OLD}")
    os.rename(directory, old)
    os.rename(built, directory)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(directory: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """``with atomic_folder(dir) as tmp:`` write the folder's files into ``tmp``; on leaving the
    block the manifest is written and the folder swapped in whole. An error (or a kill) inside the
    block leaves ``dir`` as it was. Refuses a folder with content unless ``overwrite``."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise FileExistsError(f"{directory}: is a file; expected a folder to save into")
    if _has_content(directory) and not overwrite:
        raise FileExistsError(f"{directory} already holds files; pass overwrite=True to replace it")
    directory.parent.mkdir(parents=True, exist_ok=True)
    _clear_debris(directory)
    built = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=_PARTIAL, dir=directory.parent))
    try:
        yield built
        write_manifest(built)
        os.chmod(built, 0o777 & ~_UMASK)  # mkdtemp makes 0700 folders; give the usual permissions
        _swap_in(built, directory)
    except BaseException:
        shutil.rmtree(built, ignore_errors=True)
        raise


def save_json(obj: dict, path: str | os.PathLike, overwrite: bool = False) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")

    return atomic_write(path, write, overwrite)


def load_json(path: str | os.PathLike) -> dict:
    """A JSON object from ``path``; FileNotFoundError, or ValueError naming the file when it is not
    UTF-8 text, not JSON, or JSON but not an object."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected a JSON config)")
    try:
        config = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason}); expected a JSON config") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object {{...}}, got a JSON {_JSON_NAMES.get(type(config), 'value')}")
    return config


_JSON_NAMES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


# -- configs and weights checked against the class they build, before it is built -----------------


def check_config(config: dict, target: Callable, path: str | os.PathLike, given: tuple[str, ...] = ()) -> dict:
    """Refuse a loaded config that does not fit ``target`` (a class: its constructor) before anything
    is built: a key it does not take, a required one missing, a value whose JSON type does not fit
    the parameter's annotation (a bool is not an int, an int passes for a float, an array for a
    tuple or a list), NaN or infinity anywhere. Keys starting with "_" are metadata (``_class_name``);
    ``given``: parameters the loader passes itself, not kept in the file. Each error names the
    file, the key and its value."""
    function = target.__init__ if isinstance(target, type) else target
    params = inspect.signature(function).parameters
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 (an annotation that cannot be resolved is not judged)
        hints = {}
    named = {n: p for n, p in params.items() if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    keys = [k for k in config if not k.startswith("_")]
    what = getattr(target, "__name__", "the loader")
    unknown = sorted(k for k in keys if (k not in named and not takes_any) or k in given)
    if unknown:
        accepted = sorted(n for n in named if n not in given)
        raise ValueError(f"{path}: unknown key(s) {unknown}; {what} takes {accepted}")
    missing = sorted(n for n, p in named.items() if p.default is p.empty and n not in config and n not in given)
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}, which {what} needs")
    for key in keys:
        value, hint = config[key], hints.get(key)
        if not _finite(value):
            raise ValueError(f"{path}: {key}={value!r}: expected finite numbers (not NaN or infinity)")
        if hint is not None and not _fits(value, hint):
            raise ValueError(f"{path}: {key}={value!r}: expected {_describe(hint)}")
    return config


def _finite(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


_SEQUENCES = (list, tuple, Sequence)
_PLURALS = {bool: "true/false values", int: "integers", float: "numbers", str: "strings"}


def _fits(value, hint) -> bool:
    """Whether a JSON value can be the argument annotated ``hint`` (a class JSON cannot hold,
    such as a module, is not judged here: its own loader checks it)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is typing.Any:
        return True
    if hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, m) for m in args) or not all(_judged(m) for m in args)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is typing.Literal:
        return value in args
    container = origin or hint
    if container in _SEQUENCES:
        if not isinstance(value, (list, tuple)):
            return False
        if container is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_fits(v, a) for v, a in zip(value, args))
        return not args or all(_fits(v, args[0]) for v in value)
    if container in (dict, Mapping):
        return isinstance(value, dict) and (len(args) < 2 or all(_fits(v, args[1]) for v in value.values()))
    return not _judged(hint)


def _judged(hint) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return all(_judged(m) for m in typing.get_args(hint))
    return hint in (typing.Any, type(None), bool, int, float, str) or (origin or hint) in (
        *_SEQUENCES, dict, Mapping, typing.Literal,
    )  # fmt: skip


def _describe(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(m) for m in args if _judged(m))
    if hint is type(None):
        return "null"
    if hint in _PLURALS:
        return {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}[hint]
    if origin is typing.Literal:
        return f"one of {list(args)}"
    if (origin or hint) in _SEQUENCES:
        element = args[0] if args and args[-1] is Ellipsis or len(args) == 1 else None
        return f"a list of {_PLURALS.get(element, 'values')}" if args else "a list"
    return "a JSON object" if (origin or hint) in (dict, Mapping) else getattr(hint, "__name__", str(hint))


def build_from_config(cls: type, config: dict, path: str | os.PathLike):
    """``cls(**config)``, a constructor's refusal of a value (a range) named with the config file."""
    try:
        return cls(**config)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: config does not fit {cls.__name__} ({e})") from e


def expected_state(cls: type, config: dict, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict ``cls(**config)`` holds, built on the meta device (no memory, no random init):
    the tensors, with their shapes and dtypes, that its weights file must hold."""
    try:
        with torch.device("meta"):
            return build_from_config(cls, config, path).state_dict()
    except (RuntimeError, NotImplementedError):  # a constructor computing values (a mel filter bank) cannot
        return build_from_config(cls, config, path).state_dict()  # run on meta: built for real, once more


def check_weights(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Refuse weights that do not fit the module the config builds: a missing or unexpected key, a
    shape other than the config's, an integer tensor for a floating one (or back), NaN or infinity."""
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{path}: weights do not match the config (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    for key, want in expected.items():
        got = state[key]
        if tuple(got.shape) != tuple(want.shape):
            raise ValueError(f"{path}: {key} has shape {tuple(got.shape)}, but the config builds {tuple(want.shape)}")
        if got.is_floating_point() != want.is_floating_point():
            raise ValueError(f"{path}: {key} is a {got.dtype} tensor; the module holds {want.dtype}")
        if got.is_floating_point() and got.numel() and not bool(torch.isfinite(torch.stack(got.aminmax())).all()):
            raise ValueError(f"{path}: {key} holds NaN or infinite values")  # (min and max carry any NaN: one pass)


def check_folder(directory: str | os.PathLike, what: str) -> Path:
    """``directory`` as a Path: FileNotFoundError where there is nothing, NotADirectoryError where a file is."""
    if not isinstance(directory, (str, os.PathLike)):
        raise ValueError(f"directory={directory!r}: expected the path of {what}")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory}: is a file, not a folder (expected {what})")
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such directory (expected {what})")
    return directory


def check_output_folder(folder: str | os.PathLike, name: str = "out") -> Path:
    """A folder outputs can go into: one that exists, or that can be made, and is writable.
    Checked before any work, so a refused call writes nothing."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{name} {folder}: is a file; expected a folder")
    _check_writable(folder, name, folder)
    return folder


def check_output_file(path: str | os.PathLike, name: str = "out", overwrite: bool = False) -> Path:
    """A file path an output can be written to (``overwrite`` to replace an existing file)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{name} {path}: is a folder; expected a file path")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{name} {path}: exists; pass --overwrite to replace it")
    _check_writable(path.parent, name, path)
    return path


def _check_writable(folder: Path, name: str, target: Path) -> None:
    """``folder``, or the nearest ancestor that exists, is a folder this process may write into."""
    ancestor = folder
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"{name} {target}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise PermissionError(f"{name} {target}: {ancestor} is not writable")


def save_tensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike, overwrite: bool = False) -> Path:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp), overwrite)


def load_tensors(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Load a .safetensors file (no unpickling)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected a .safetensors weights file)")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{path}: not a readable safetensors file ({e})") from e


class PretrainedMixin(HubMixin):
    """``save_pretrained(dir)`` / ``from_pretrained(dir or hub id)`` / ``push_to_hub(repo_id)`` for
    an nn.Module whose constructor arguments are kept, JSON-serialisable, in ``self.config``."""

    config_name = "config.json"
    weights_name = "model.safetensors"
    config: dict

    def save_pretrained(self, directory: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write ``config.json`` + ``model.safetensors`` into ``directory``, whole or not at all."""
        directory = Path(directory)
        config = {"_class_name": type(self).__name__, **self.config}
        with atomic_folder(directory, overwrite) as built:
            save_tensors(self.state_dict(), built / self.weights_name)
            save_json(config, built / self.config_name)
        return directory

    @classmethod
    def from_pretrained(
        cls,
        directory: str | os.PathLike,
        map_location: str | torch.device = "cpu",
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool | None = None,
    ):
        """Load a folder written by ``save_pretrained``, or a hub id ("org/name") of one, through
        huggingface_hub's cache (``mgm.hub``: ``revision``, ``cache_dir``, ``local_files_only``;
        offline with HF_HUB_OFFLINE). Before anything is built, the config is checked against the
        constructor (``check_config``) and the weights against the module it builds
        (``check_weights``); each refusal names the file and the key."""
        directory = resolve_folder(
            directory, f"a saved {cls.__name__}", cls.config_name, revision=revision, cache_dir=cache_dir,
            local_files_only=local_files_only,
        )  # fmt: skip
        map_location = check_device(map_location, "map_location")
        check_manifest(directory)
        path = directory / cls.config_name
        config = load_json(path)
        class_name = config.pop("_class_name", cls.__name__)
        if class_name != cls.__name__:
            raise ValueError(f"{directory}: holds a {class_name}, not a {cls.__name__}")
        check_config(config, cls, path)
        weights = directory / cls.weights_name
        state = load_tensors(weights, map_location)
        check_weights(state, expected_state(cls, config, path), weights)
        module = build_from_config(cls, config, path)
        module.load_state_dict(state)
        return module.to(map_location).eval()


def weights_fingerprint(module: torch.nn.Module) -> str:
    """SHA-256 over a module's parameters and buffers (names, shapes and values): what a cache made
    with it (pre-tokenized codes, reference statistics) is keyed by."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()
