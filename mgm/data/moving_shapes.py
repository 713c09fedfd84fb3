"""MovingShapes: an embedded, procedurally generated, labelled video set with an exact checker.

A clip holds one to three objects of one Shapes10 class (the clip's label), each in its own
bright palette colour on a solid dark background. Every object moves with its own constant
integer velocity (at most ``MAX_SPEED`` pixels per frame on each axis) and bounces off the walls:
a step that would carry its centre past the last allowed pixel is reflected back, and that axis'
velocity flips. Objects never touch (their boxes keep a one-pixel gap in every frame), so each
object is one colour's pixels and the checker can read every frame back exactly.

Clips are FloatTensor[M, T, 3, S, S] in [0, 1]. Deterministic: the same seed gives the same clips.

The checker (``check_clips``) reads a clip back: per frame and palette colour, the coverage of
that colour over the background; per object, the best-fitting class template and integer centre
(the rendering's own templates, so a real clip fits with error 0); then the trajectory test,
a search over every start and velocity for one bouncing path within ``tolerance`` pixels (a
velocity of (0, 0) does not count: every generated object moves).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from mgm.checks import check_int, check_number
from mgm.data.shapes import _BRIGHT_COLOURS, _DARK_BACKGROUNDS, _SUPERSAMPLE, CLASSES, NUM_CLASSES, _shape_mask

MAX_SPEED = 2
"""Largest per-axis speed in pixels per frame (velocities are integers in [-2, 2], not both 0)."""
MAX_OBJECTS = 3
_PLACEMENT_TRIES = 100


def object_radius(image_size: int) -> int:
    """Half-size r of every object in pixels (an object covers (2r + 1)^2 pixels around its centre)."""
    return max(3, round(image_size * 5 / 32))


def class_templates(image_size: int) -> torch.Tensor:
    """Coverage in [0, 1] of each class centred on a pixel: FloatTensor[C, 2r + 1, 2r + 1].

    Drawn at 2x and box-filtered, as Shapes10 draws its images."""
    r = object_radius(image_size)
    side = (2 * r + 1) * _SUPERSAMPLE
    coords = torch.arange(side, dtype=torch.float32) + 0.5 - side / 2
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    masks = torch.stack([_shape_mask(c, xx, yy, float(r * _SUPERSAMPLE)) for c in range(NUM_CLASSES)])
    return F.avg_pool2d(masks[:, None], _SUPERSAMPLE)[:, 0]


def support_clash(templates: torch.Tensor) -> torch.Tensor:
    """BoolTensor[C, 4r + 3, 4r + 3]: whether two objects of a class share a covered pixel when the
    second's centre is (dy - 2r - 1, dx - 2r - 1) away from the first's (indexed [class, dy, dx]);
    the outer ring (offsets beyond 2r on an axis) is False."""
    support = (templates > 0).float()[:, None]  # (C, 1, w, w)
    w = support.shape[-1]
    overlap = F.conv2d(F.pad(support, (w - 1, w - 1, w - 1, w - 1)).transpose(0, 1), support, groups=len(support))
    return F.pad(overlap[0] > 0.5, (1, 1, 1, 1))


def bounce_path(start: torch.Tensor, velocity: torch.Tensor, num_frames: int, low: int, high: int) -> torch.Tensor:
    """Integer positions of bouncing points: start, velocity LongTensor[...] -> LongTensor[..., T].

    Each frame adds the velocity; a position past ``high`` (``low``) is reflected to
    ``2 * high - p`` (``2 * low - p``) and the velocity flips (speeds are below the range's width)."""
    pos, vel = start.clone(), velocity.clone()
    path = [pos.clone()]
    for _ in range(num_frames - 1):
        pos = pos + vel
        over, under = pos > high, pos < low
        pos = torch.where(over, 2 * high - pos, torch.where(under, 2 * low - pos, pos))
        vel = torch.where(over | under, -vel, vel)
        path.append(pos.clone())
    return torch.stack(path, -1)


@dataclass(frozen=True)
class Clips:
    """Generated clips with what made them.

    clips FloatTensor[M, T, 3, S, S]; labels LongTensor[M]; num_objects LongTensor[M];
    centres LongTensor[M, MAX_OBJECTS, T, 2] (x, y; -1 for absent objects);
    colours LongTensor[M, MAX_OBJECTS] (palette index, -1 absent); backgrounds LongTensor[M]."""

    clips: torch.Tensor
    labels: torch.Tensor
    num_objects: torch.Tensor
    centres: torch.Tensor
    colours: torch.Tensor
    backgrounds: torch.Tensor


def make_clips(
    num: int, num_frames: int = 16, image_size: int = 32, seed: int = 0, labels: torch.Tensor | None = None
) -> Clips:
    """``num`` clips of ``num_frames`` frames of ``image_size`` pixels (see the module docstring)."""
    check_int(num, "num", 0)
    check_int(num_frames, "num_frames", 2)
    check_int(image_size, "image_size", 16)
    g = torch.Generator().manual_seed(seed)
    if labels is None:
        labels = torch.randint(NUM_CLASSES, (num,), generator=g)
    elif tuple(labels.shape) != (num,) or bool(((labels < 0) | (labels >= NUM_CLASSES)).any()):
        raise ValueError(f"labels: expected {num} class ids in [0, {NUM_CLASSES - 1}]")
    r = object_radius(image_size)
    low, high = r, image_size - 1 - r
    templates = class_templates(image_size)
    clips = torch.empty(num, num_frames, 3, image_size, image_size)
    centres = torch.full((num, MAX_OBJECTS, num_frames, 2), -1, dtype=torch.long)
    colours = torch.full((num, MAX_OBJECTS), -1, dtype=torch.long)
    counts = torch.zeros(num, dtype=torch.long)
    backgrounds = torch.randint(len(_DARK_BACKGROUNDS), (num,), generator=g)
    speeds = torch.tensor([(vx, vy) for vx in range(-MAX_SPEED, MAX_SPEED + 1)
                           for vy in range(-MAX_SPEED, MAX_SPEED + 1) if (vx, vy) != (0, 0)])  # fmt: skip
    clash = support_clash(templates)
    for i in range(num):
        wanted = int(torch.randint(1, MAX_OBJECTS + 1, (1,), generator=g))
        palette = torch.randperm(len(_BRIGHT_COLOURS), generator=g)
        # Candidate paths drawn at once; each object takes the first that shares no pixel with the
        # objects placed before it in any frame.
        starts = torch.randint(low, high + 1, (_PLACEMENT_TRIES, 2), generator=g)
        velocities = speeds[torch.randint(len(speeds), (_PLACEMENT_TRIES,), generator=g)]
        candidates = bounce_path(starts, velocities, num_frames, low, high).transpose(1, 2)  # (tries, T, 2)
        free = torch.ones(_PLACEMENT_TRIES, dtype=torch.bool)
        paths: list[torch.Tensor] = []  # each LongTensor[T, 2]
        while len(paths) < wanted and bool(free.any()):
            path = candidates[int(free.nonzero()[0])]
            paths.append(path)
            offset = (candidates - path).clamp(-2 * r - 1, 2 * r + 1) + 2 * r + 1  # (tries, T, 2): dx, dy
            free &= ~clash[labels[i], offset[..., 1], offset[..., 0]].any(-1)
        counts[i] = len(paths)
        background = _DARK_BACKGROUNDS[backgrounds[i]]
        frames = background.view(1, 3, 1, 1).repeat(num_frames, 1, image_size, image_size)
        shape = templates[labels[i]]
        for j, path in enumerate(paths):
            colours[i, j] = palette[j]
            centres[i, j] = path
            ink = (_BRIGHT_COLOURS[palette[j]] - background).view(3, 1, 1)
            for t, (x, y) in enumerate(path.tolist()):
                frames[t, :, y - r : y + r + 1, x - r : x + r + 1] += shape * ink
        clips[i] = frames
    return Clips(clips.clamp(0, 1), labels, counts, centres, colours, backgrounds)


@dataclass(frozen=True)
class ClipCheck:
    """What ``check_clips`` read back, per clip (each a tensor [M]).

    num_objects: objects found (colours present in most frames). classes_ok: every object found in
    every frame with a template error below the threshold, and one class for all objects in all
    frames. label_ok: that class is the given label (True where no labels were given).
    motion_ok: every object's centres follow one bouncing constant-velocity path within the
    tolerance, with a velocity other than (0, 0) (a still object is not a MovingShapes clip).
    valid: all of these, with at least one object. classes: the class read, -1 if none."""

    num_objects: torch.Tensor
    classes: torch.Tensor
    classes_ok: torch.Tensor
    label_ok: torch.Tensor
    motion_ok: torch.Tensor
    valid: torch.Tensor


def colour_coverage(clips: torch.Tensor) -> torch.Tensor:
    """Clips [M, T, 3, S, S] -> coverage [M, T, P, S, S] of each of the P palette colours.

    The background is the palette background nearest the clip's median colour; a pixel belongs to
    the colour whose blend with the background (``bg + a * (colour - bg)``) it fits best, with
    ``a`` clamped to [0, 1], and pixels within 0.05 of the background belong to none."""
    m, t, _, s, _ = clips.shape
    median = clips.permute(0, 2, 1, 3, 4).reshape(m, 3, -1).median(-1).values  # (M, 3)
    bg = _DARK_BACKGROUNDS[torch.cdist(median, _DARK_BACKGROUNDS).argmin(-1)]  # (M, 3)
    ink = _BRIGHT_COLOURS[None] - bg[:, None]  # (M, P, 3)
    offset = (clips - bg.view(m, 1, 3, 1, 1)).permute(0, 1, 3, 4, 2)  # (M, T, S, S, 3)
    alpha = torch.einsum("mtyxc,mpc->mtyxp", offset, ink) / ink.pow(2).sum(-1).view(m, 1, 1, 1, -1)
    alpha = alpha.clamp(0, 1)
    residual = (offset[..., None, :] - alpha[..., None] * ink.view(m, 1, 1, 1, -1, 3)).norm(dim=-1)
    best = residual.argmin(-1, keepdim=True)
    inked = offset.norm(dim=-1, keepdim=True) > 0.05
    keep = torch.zeros_like(alpha, dtype=torch.bool).scatter_(-1, best, True) & inked
    return (alpha * keep).permute(0, 1, 4, 2, 3)  # (M, T, P, S, S)


def check_clips(
    clips: torch.Tensor,
    labels: torch.Tensor | None = None,
    tolerance: int = 1,
    max_error: float = 0.3,
) -> ClipCheck:
    """Read generated clips back (see the module docstring); returns a ``ClipCheck``.

    clips: FloatTensor[M, T, 3, S, S] in [0, 1]. labels: LongTensor[M] or None. tolerance: pixels a
    centre may sit off its bouncing path (0 = exact). max_error: the largest template error of an
    object in a frame, relative to the template's mass (a real clip's is 0)."""
    shaped = isinstance(clips, torch.Tensor) and clips.dim() == 5 and clips.shape[2] == 3
    if not shaped or clips.shape[-1] != clips.shape[-2]:
        shape = tuple(clips.shape) if isinstance(clips, torch.Tensor) else type(clips).__name__
        raise ValueError(f"clips: expected a FloatTensor [M, T, 3, S, S], got {shape}")
    check_int(tolerance, "tolerance", 0)
    check_number(max_error, "max_error", above=0)
    m, t, _, s, _ = clips.shape
    if labels is not None and tuple(labels.shape) != (m,):
        raise ValueError(f"labels: shape {tuple(labels.shape)}; expected [{m}]")
    clips = clips.detach().float().cpu()
    r = object_radius(s)
    chunks = [_fit_templates(clips[i : i + _CHECK_CHUNK], r) for i in range(0, m, _CHECK_CHUNK)]
    present, best_error, best_class, best_x, best_y = (torch.cat(parts) for parts in zip(*chunks))  # (M, T, P)
    inside = (best_x >= r) & (best_x <= s - 1 - r) & (best_y >= r) & (best_y <= s - 1 - r)
    is_object = present.float().mean(1) >= 0.5  # (M, P): the colour is present in most frames
    fits = present & (best_error <= max_error) & inside  # (M, T, P)
    num_objects = is_object.sum(1)

    classes = torch.full((m,), -1, dtype=torch.long)
    classes_ok = torch.zeros(m, dtype=torch.bool)
    motion_ok = torch.zeros(m, dtype=torch.bool)
    low, high = r, s - 1 - r
    starts = torch.arange(low, high + 1)
    speeds = torch.arange(-MAX_SPEED, MAX_SPEED + 1)
    grid_start, grid_speed = torch.meshgrid(starts, speeds, indexing="ij")
    paths = bounce_path(grid_start.flatten(), grid_speed.flatten(), t, low, high)  # (starts*speeds, T)
    for i in range(m):
        objects = is_object[i].nonzero().flatten()
        if len(objects) == 0:
            continue
        found = best_class[i][:, objects]  # (T, O)
        if bool(fits[i][:, objects].all()) and bool((found == found[0, 0]).all()):
            classes_ok[i] = True
            classes[i] = found[0, 0]
        else:
            values, counts = found.flatten().unique(return_counts=True)
            classes[i] = values[counts.argmax()]
        speed_fits = []  # per axis: BoolTensor[O, speeds], some start's path with that speed fits
        for axis_values in (best_x[i][:, objects].T, best_y[i][:, objects].T):  # (O, T) each
            off = (paths[None] - axis_values[:, None]).abs().amax(-1)  # (O, paths)
            speed_fits.append((off <= tolerance).view(len(objects), len(starts), len(speeds)).any(1))
        pairs = speed_fits[0][:, :, None] & speed_fits[1][:, None, :]  # (O, vx, vy)
        pairs[:, MAX_SPEED, MAX_SPEED] = False  # objects always move: velocity (0, 0) is not a MovingShapes path
        motion_ok[i] = bool(pairs.flatten(1).any(1).all()) and bool(fits[i][:, objects].all())
    label_ok = torch.ones(m, dtype=torch.bool) if labels is None else classes == labels.cpu()
    valid = (num_objects >= 1) & classes_ok & label_ok & motion_ok
    return ClipCheck(num_objects, classes, classes_ok, label_ok, motion_ok, valid)


_CHECK_CHUNK = 32
_SEARCH = 2  # pixels a template centre is searched around the coverage's centroid


def _fit_templates(clips: torch.Tensor, r: int):
    """Per frame and palette colour of clips [M, T, 3, S, S]: (present, error, class, x, y), each [M, T, P].

    present: the colour covers at least half the smallest template's mass. The best class and
    integer centre minimise the squared coverage error over the whole frame (inside the template's
    window and all coverage outside it), relative to the template's mass; centres are searched
    within ``_SEARCH`` pixels of the coverage's centroid."""
    m, t, _, s, _ = clips.shape
    templates = class_templates(s)  # (C, w, w)
    template_mass = templates.sum((-1, -2))
    coverage = colour_coverage(clips)  # (M, T, P, S, S)
    p = coverage.shape[2]
    maps = coverage.reshape(-1, s, s)  # (Q, S, S)
    mass = maps.sum((-1, -2))
    coords = torch.arange(s, dtype=torch.float32)
    cx = ((maps.sum(-2) * coords).sum(-1) / mass.clamp_min(1e-6)).round().long().clamp(0, s - 1)
    cy = ((maps.sum(-1) * coords).sum(-1) / mass.clamp_min(1e-6)).round().long().clamp(0, s - 1)
    pad, side = r + _SEARCH, 2 * (r + _SEARCH) + 1
    patches = F.pad(maps, (pad, pad, pad, pad)).unfold(1, side, 1).unfold(2, side, 1)  # (Q, S, S, side, side)
    patch = patches[torch.arange(len(maps)), cy, cx][:, None]  # (Q, 1, side, side), centred on the centroid
    cross = F.conv2d(patch, templates[:, None])  # (Q, C, 2 * _SEARCH + 1, same)
    window_energy = F.conv2d(patch.pow(2), torch.ones(1, 1, 2 * r + 1, 2 * r + 1))  # (Q, 1, ...)
    total_energy = maps.pow(2).sum((-1, -2)).view(-1, 1, 1, 1)
    inside_error = window_energy - 2 * cross + templates.pow(2).sum((-1, -2)).view(1, -1, 1, 1)
    error = (inside_error + total_energy - window_energy) / template_mass.view(1, -1, 1, 1)
    best_error, best = error.flatten(1).min(-1)
    span = 2 * _SEARCH + 1
    best_class = best // (span * span)
    best_y = cy + (best % (span * span)) // span - _SEARCH
    best_x = cx + best % span - _SEARCH
    present = mass >= 0.5 * float(template_mass.min())
    return tuple(v.reshape(m, t, p) for v in (present, best_error, best_class, best_x, best_y))


class MovingShapesDataset(Dataset):
    """MovingShapes as a Dataset of ``{"videos": [T, 3, S, S], "labels": ()}`` items (generated once)."""

    def __init__(self, num: int = 5000, num_frames: int = 16, image_size: int = 32, seed: int = 0):
        made = make_clips(num, num_frames, image_size, seed)
        self.videos, self.labels = made.clips, made.labels
        self.classes = CLASSES

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"videos": self.videos[index], "labels": self.labels[index]}


class MovingShapesFrames(Dataset):
    """The frames of MovingShapes clips as ``{"images": [3, S, S], "labels": ()}`` items, clip-major
    (for training a per-frame image tokenizer)."""

    def __init__(self, num_clips: int = 1250, num_frames: int = 16, image_size: int = 32, seed: int = 0):
        made = make_clips(num_clips, num_frames, image_size, seed)
        self.images = made.clips.flatten(0, 1)
        self.labels = made.labels.repeat_interleave(num_frames)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"images": self.images[index], "labels": self.labels[index]}
