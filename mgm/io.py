"""Atomic file writes and the config.json + safetensors format of every mgm component."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
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
        directory = Path(directory)
        config = {"_class_name": type(self).__name__, **self.config}
        # Check both targets before writing either, so a refusal leaves nothing half-saved.
        for name in (self.config_name, self.weights_name):
            if (directory / name).exists() and not overwrite:
                raise FileExistsError(f"{directory / name} exists; pass overwrite=True to replace it")
        save_tensors(self.state_dict(), directory / self.weights_name, overwrite)
        save_json(config, directory / self.config_name, overwrite)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str | torch.device = "cpu"):
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory}: no such directory (expected a saved {cls.__name__})")
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
