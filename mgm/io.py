"""Atomic writes of files and folders, and the config.json + safetensors format of every mgm component.

A folder (a model, a tokenizer, a pipeline) is saved whole or not at all: it is built in a hidden
sibling folder, its ``manifest.json`` (every file's size and SHA-256) is written last, and the
finished folder is swapped in with one atomic exchange of directory entries. A kill at any
moment leaves the old folder or the new one, never a mix; debris of a killed save (the hidden
sibling) is cleared by the next save of that folder. Loading checks the manifest, so a folder
whose parts do not belong together is refused with a clear error.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

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
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected a JSON config)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e


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


class PretrainedMixin:
    """``save_pretrained(dir)`` / ``from_pretrained(dir)`` for an nn.Module whose constructor
    arguments are kept, JSON-serialisable, in ``self.config``."""

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
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str | torch.device = "cpu"):
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory}: no such directory (expected a saved {cls.__name__})")
        check_manifest(directory)
        config = load_json(directory / cls.config_name)
        class_name = config.pop("_class_name", cls.__name__)
        if class_name != cls.__name__:
            raise ValueError(f"{directory}: holds a {class_name}, not a {cls.__name__}")
        try:
            module = cls(**config)
        except TypeError as e:
            raise ValueError(f"{directory / cls.config_name}: config does not fit {cls.__name__} ({e})") from e
        state = load_tensors(directory / cls.weights_name, map_location)
        missing, unexpected = module.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"{directory / cls.weights_name}: weights do not match the config "
                f"(missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})"
            )
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
