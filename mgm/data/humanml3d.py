"""A reader for the HumanML3D dataset layout: 263-dim motion features with text captions.

Expected under ``root`` (HumanML3D's own layout after its feature extraction):

- ``new_joint_vecs/<id>.npy``: float [T, 263] features at 20 fps (see ``mgm.data.motion_features``);
- ``texts/<id>.txt``: one caption per line, ``caption#tokens#start#end`` (``parse_caption_line``);
- ``Mean.npy``, ``Std.npy``: float [263], the normalisation statistics;
- ``train.txt``, ``val.txt``, ``test.txt`` (or any ``<split>.txt``): one clip id per line.

Arrays are read with ``allow_pickle=False``; motion files are memory-mapped and read per item.

Dimension legend: B items in a batch, T frames, D = 263 feature dims.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from mgm.data.motion_features import FEATURE_DIM, FPS, check_features


@dataclass(frozen=True)
class Caption:
    """One line of a HumanML3D text file."""

    text: str
    tokens: tuple[str, ...]  # "word/POS" pairs, e.g. ("a/DET", "man/NOUN")
    start: float  # seconds; start == end == 0 means the whole clip
    end: float

    @property
    def whole_clip(self) -> bool:
        return self.start == 0.0 and self.end == 0.0

    def frames(self, fps: int = FPS) -> tuple[int, int] | None:
        """The frame span [first, stop) this caption describes, or None for the whole clip."""
        return None if self.whole_clip else (int(self.start * fps), int(self.end * fps))


def parse_caption_line(line: str) -> Caption:
    """Parse ``caption#tokens#start#end`` (tokens: ``word/POS`` separated by spaces; start, end in seconds).

    A NaN start or end (present in the released files) reads as 0.0. Raises ValueError for a line
    without the four fields or with a span that is not numeric.
    """
    parts = line.strip().rsplit("#", 3)
    if len(parts) != 4:
        raise ValueError(f"caption line {line.strip()!r}: expected 'caption#tokens#start#end' (4 fields)")
    text, tokens, start, end = parts
    try:
        span = [float(start), float(end)]
    except ValueError:
        raise ValueError(
            f"caption line {line.strip()!r}: expected start and end in seconds, got {start!r}, {end!r}"
        ) from None
    start_s, end_s = (0.0 if math.isnan(value) else value for value in span)
    return Caption(text.strip(), tuple(tokens.split()), start_s, end_s)


def read_captions(path: str | os.PathLike) -> list[Caption]:
    """The captions of one ``texts/<id>.txt`` file (blank lines skipped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: caption file not found (expected texts/<id>.txt)")
    return [parse_caption_line(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _load_array(path: Path, what: str, mmap: bool = False) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except ValueError as error:  # pickled object arrays, corrupt headers
        raise ValueError(f"{path}: cannot read {what} ({error})") from error
    if array.dtype.kind != "f":
        raise ValueError(f"{path}: got dtype {array.dtype}; expected floating-point {what}")
    return array


def load_statistics(root: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean [263], std [263]) from ``root/Mean.npy`` and ``root/Std.npy``; std must be positive."""
    root = Path(root)
    stats = []
    for name in ("Mean", "Std"):
        array = _load_array(root / f"{name}.npy", "normalisation statistics")
        if array.shape != (FEATURE_DIM,) or not np.isfinite(array).all():
            raise ValueError(f"{root / f'{name}.npy'}: got shape {array.shape}; expected {FEATURE_DIM} finite values")
        stats.append(torch.from_numpy(np.asarray(array, dtype=np.float32)))
    if (stats[1] <= 0).any():
        raise ValueError(f"{root / 'Std.npy'}: entry {int((stats[1] <= 0).nonzero()[0])} is not positive")
    return stats[0], stats[1]


def _check_statistics(mean: torch.Tensor, std: torch.Tensor) -> None:
    for name, value in (("mean", mean), ("std", std)):
        if value.shape[-1:] != (FEATURE_DIM,):
            raise ValueError(f"{name}: got shape {tuple(value.shape)}; expected [..., {FEATURE_DIM}]")


def normalise(features: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``(features - mean) / std`` for features [..., 263] and statistics [263]."""
    _check_statistics(mean, std)
    return (features - mean.to(features)) / std.to(features)


def denormalise(features: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``features * std + mean``: the inverse of ``normalise``."""
    _check_statistics(mean, std)
    return features * std.to(features) + mean.to(features)


def read_split(root: str | os.PathLike, split: str) -> list[str]:
    """The clip ids listed in ``root/<split>.txt``."""
    path = Path(root) / f"{split}.txt"
    if not path.is_file():
        found = sorted(p.stem for p in Path(root).glob("*.txt"))
        raise FileNotFoundError(f"split={split!r}: {path} not found; split files in {root}: {found}")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class HumanML3D(Dataset):
    """HumanML3D as a Dataset of ``{"motion": FloatTensor[T, 263], "length": T, "caption": str}`` items.

    One item per (motion segment, caption): a caption with a span (start, end in seconds) describes
    frames ``int(start * 20)`` to ``int(end * 20)``, one without describes the whole clip. Segments
    shorter than ``min_frames`` are left out; longer than ``max_frames`` are cut to their first
    ``max_frames`` frames. Motions are normalised by ``root/Mean.npy`` and ``root/Std.npy``
    (``self.mean``, ``self.std``; ``denormalise`` undoes it). ``collate_motions`` pads a batch.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", max_frames: int = 196, min_frames: int = 40):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"root={str(root)!r}: HumanML3D folder not found")
        if not 1 <= min_frames <= max_frames:
            raise ValueError(
                f"min_frames={min_frames}, max_frames={max_frames}: expected 1 <= min_frames <= max_frames"
            )
        for folder in ("new_joint_vecs", "texts"):
            if not (root / folder).is_dir():
                raise FileNotFoundError(f"{root / folder}: folder not found (expected HumanML3D's layout)")
        self.root, self.split = root, split
        self.mean, self.std = load_statistics(root)
        # (clip id, first frame, stop frame, caption) per item; motions are read when an item is.
        self.items: list[tuple[str, int, int, str]] = []
        for clip in read_split(root, split):
            path = root / "new_joint_vecs" / f"{clip}.npy"
            motion = _load_array(path, "motion features", mmap=True)
            if motion.ndim != 2 or motion.shape[1] != FEATURE_DIM:
                raise ValueError(f"{path}: got shape {motion.shape}; expected [T, {FEATURE_DIM}]")
            for caption in read_captions(root / "texts" / f"{clip}.txt"):
                first, stop = caption.frames() or (0, len(motion))
                stop = min(stop, len(motion), first + max_frames)
                if stop - first >= min_frames:
                    self.items.append((clip, first, stop, caption.text))

    def __len__(self) -> int:
        return len(self.items)

    def motion(self, index: int) -> torch.Tensor:
        """The features [T, 263] of item ``index``, not normalised."""
        clip, first, stop, _ = self.items[index]
        path = self.root / "new_joint_vecs" / f"{clip}.npy"
        features = torch.from_numpy(np.array(_load_array(path, "motion features", mmap=True)[first:stop], np.float32))
        return check_features(features, name=str(path))

    def __getitem__(self, index: int) -> dict:
        motion = self.motion(index)
        return {
            "motion": normalise(motion, self.mean, self.std),
            "length": len(motion),
            "caption": self.items[index][3],
        }


def collate_motions(items: list[dict]) -> dict:
    """Batch motion items: ``motion`` zero-padded to FloatTensor[B, T_max, 263], ``length`` LongTensor[B],
    ``caption`` a list of strings, any other keys (e.g. ``label``) as tensors [B]."""
    if not items:
        raise ValueError("items: got an empty batch; expected at least one item")
    lengths = torch.tensor([item["length"] for item in items])
    motion = torch.zeros(len(items), int(lengths.max()), items[0]["motion"].shape[-1])
    for i, item in enumerate(items):
        motion[i, : item["length"]] = item["motion"][: item["length"]]
    batch = {"motion": motion, "length": lengths, "caption": [item["caption"] for item in items]}
    for key in sorted(items[0].keys() - batch.keys()):
        batch[key] = torch.as_tensor([item[key] for item in items])
    return batch
