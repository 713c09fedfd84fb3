"""Motions7 clips and dataset: ``make_motions`` (joints, HumanML3D features, captions) and ``MotionsDataset``.

``make_motions`` draws the parameters (``mgm.data.motions.params``), animates each clip
(``mgm.data.motions.animate``), turns the joints into HumanML3D features with ``extract_features``
and captions the clips (``mgm.data.motions.captions``). ``MotionsDataset`` serves them as normalised
HumanML3D-style items, so everything downstream runs the HumanML3D path.

Dimension legend: M clips, T joint frames, F = T - 1 feature frames, J = 22 joints, D = 263.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from mgm.data.humanml3d import normalise
from mgm.data.motion_features import FEATURE_DIM, FPS, extract_features, normalisation_statistics
from mgm.data.motions.animate import _animate
from mgm.data.motions.captions import _caption
from mgm.data.motions.params import CLASSES, MotionParameters, _check_arguments, _check_labels, _draw
from mgm.data.skeleton import NUM_JOINTS


@dataclass(frozen=True)
class MotionClips:
    """A batch of Motions7 clips. Padded entries (past a clip's length) are zero."""

    joints: torch.Tensor  # [M, T, J, 3] world joint positions, m
    num_frames: torch.Tensor  # LongTensor[M]: joint frames per clip
    features: torch.Tensor  # [M, T - 1, 263] HumanML3D features (not normalised)
    lengths: torch.Tensor  # LongTensor[M]: feature frames per clip, num_frames - 1
    labels: torch.Tensor  # LongTensor[M], index into CLASSES
    captions: list[str]
    params: MotionParameters


def make_motions(
    num: int, seed: int = 0, labels: torch.Tensor | list[str] | None = None, seconds: float | None = None
) -> MotionClips:
    """``num`` Motions7 clips as a ``MotionClips`` (joints, HumanML3D features, lengths, labels, captions, params).

    ``labels`` (LongTensor[num] of class ids, or a list of names from CLASSES) fixes the actions; by
    default they are drawn. ``seconds`` (2 to 9.8) fixes every clip's duration; by default each is
    drawn from 2 to 6 s. A clip of S seconds has round(S * 20) + 1 joint frames and round(S * 20)
    feature frames. The same seed gives the same clips; ``motion_parameters`` gives the choices.
    """
    _check_arguments(num, seconds)
    g = torch.Generator().manual_seed(seed)
    p = _draw(num, _check_labels(num, labels), seconds, g)
    choices = torch.randint(1 << 16, (num, 3), generator=g).tolist()
    num_frames = (p.seconds * FPS).round().long() + 1
    longest = int(num_frames.max()) if num else 2
    joints = torch.zeros(num, longest, NUM_JOINTS, 3)
    features = torch.zeros(num, longest - 1, FEATURE_DIM)
    for i in range(num):
        clip = _animate(p, i)
        joints[i, : len(clip)] = clip
        features[i, : len(clip) - 1] = extract_features(clip)
    captions = [_caption(p, i, choices[i]) for i in range(num)]
    return MotionClips(joints, num_frames, features, num_frames - 1, p.labels, captions, p)


class MotionsDataset(Dataset):
    """Motions7 as a Dataset of HumanML3D-style items: ``{"motion": FloatTensor[F, 263] normalised,
    "length": F, "caption": str, "label": int}`` (generated once, in memory).

    ``mean`` / ``std`` [263] normalise the features; by default they are this dataset's own
    ``normalisation_statistics`` (pass the training set's to a validation set). ``collate_motions`` batches items.
    """

    def __init__(
        self,
        num: int = 2000,
        seed: int = 0,
        seconds: float | None = None,
        mean: torch.Tensor | None = None,
        std: torch.Tensor | None = None,
    ):
        clips = make_motions(num, seed=seed, seconds=seconds)
        self.features = [clips.features[i, :length] for i, length in enumerate(clips.lengths.tolist())]
        if (mean is None) != (std is None):
            raise ValueError("mean, std: got only one of them; expected both or neither")
        if mean is None:
            mean, std = normalisation_statistics(torch.cat(self.features))
        self.mean, self.std = mean, std
        self.lengths, self.labels, self.captions, self.classes = clips.lengths, clips.labels, clips.captions, CLASSES

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict:
        return {
            "motion": normalise(self.features[index], self.mean, self.std),
            "length": int(self.lengths[index]),
            "caption": self.captions[index],
            "label": int(self.labels[index]),
        }
