"""Writing generated motions: HumanML3D features and joints as .npy, stick-figure animations as GIF or MP4.

Dimension legend: F feature frames, T animation frames, J = 22 joints, D = 263 feature dims.
Features are FloatTensor[F, D] (``mgm.data.motion_features``); joints FloatTensor[T, J, 3] in metres,
Y up (``mgm.data.skeleton``). ``recover_joints`` turns F feature frames into T = F joint frames.

The animation is a 3D perspective view from the front right and a little above (elevation 25 degrees),
the way text-to-motion papers draw HumanML3D clips: a stick figure (the character's left limbs blue,
right limbs red, spine and head dark grey) on a grey floor with a 0.5 m grid, its shadow straight
below it (feet in contact touch theirs), the path of the root so far drawn on the floor in green,
the title at the top and the frame number and time at the bottom. The camera follows the root
across the floor (the grid scrolls underneath) so a 10 m run stays as large as a wave in place, and
the axis limits are fixed for the whole clip, so the figure never jitters or rescales. The floor is
y = 0 as the features define it: a generated clip that floats or sinks shows it. Figures are drawn
with ``matplotlib.figure.Figure`` on an Agg canvas, never through pyplot, so the global backend is
left alone.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from mgm.data.motion_features import FEATURE_DIM, FPS, check_features, check_joints, recover_joints
from mgm.data.skeleton import JOINT_INDEX, JOINT_NAMES, KINEMATIC_CHAINS, NUM_JOINTS
from mgm.io import atomic_write
from mgm.pipelines.animation import write_gif, write_mp4

ANIMATION_SUFFIXES = (".gif", ".mp4")
RENDER_SIZE = 320  # px, width and height of an animation frame
_DPI = 100
ELEVATION, AZIMUTH = 25.0, -35.0  # degrees: the camera, above the floor and to the character's front right
ZOOM = 1.25  # matplotlib's 3D axes leave wide margins; this fills the frame without cutting the floor
GRID_STEP = 0.5  # m between floor grid lines
MIN_HALF_WIDTH = 0.8  # m: the view spans at least 1.6 m of floor around the root
VIEW_MARGIN = 0.25  # m of room around the farthest a joint gets from the root, and above the highest
GIF_COLOURS = 64  # one shared palette for every frame, so colours do not flicker between frames

_SIDE_COLOURS = {"left": "#1f77b4", "right": "#d62728"}  # blue, red
_SPINE_COLOUR = "#333333"
_FLOOR_COLOUR, _GRID_COLOUR, _SHADOW_COLOUR, _TRAIL_COLOUR = "#e8e8e8", "#bdbdbd", "#b0b0b0", "#2ca02c"
_FFMPEG_INSTALL_HINT = "use a .gif path instead, or install ffmpeg"


def _check_fps(fps) -> float:
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps={fps!r}: expected a positive number of frames per second")
    return float(fps)


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 64:
        raise ValueError(f"size={size!r}: expected a whole number of pixels >= 64")
    return size


def _check_name(name) -> str:
    if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name or "/" in name:
        raise ValueError(f"motion name {name!r}: expected a plain file name (no folders), e.g. 'walk_0'")
    return name


def _chain_colour(chain: tuple[int, ...]) -> str:
    side = JOINT_NAMES[chain[-1]].split("_")[0]  # the leaf names the limb's side: left_wrist, right_foot, head
    return _SIDE_COLOURS.get(side, _SPINE_COLOUR)


def _to_plot(points: np.ndarray) -> np.ndarray:
    """Skeleton (x left, y up, z forward) -> matplotlib's (X, Y, Z up) as (z, x, y).

    A cyclic permutation, so a rotation: swapping just y and z would mirror left and right.
    """
    return points[..., [2, 0, 1]]


def _view_box(joints: np.ndarray) -> tuple[float, float]:
    """(half width of the floor around the root, height) of the view in metres, for the whole clip."""
    relative = joints[..., [0, 2]] - joints[:, :1, [0, 2]]  # [T, J, 2]: horizontal offsets from the root
    reach = float(np.abs(relative).max()) + VIEW_MARGIN
    top = float(joints[..., 1].max()) + VIEW_MARGIN
    return max(MIN_HALF_WIDTH, reach), top


def _grid_segments(centre: np.ndarray, half_width: float) -> np.ndarray:
    """The floor's grid lines within the view around ``centre`` (x, z), relative to it: [L, 2, 3] plot coords."""
    segments = []
    for axis in (0, 1):  # lines of constant x, then of constant z
        first = math.ceil((centre[axis] - half_width) / GRID_STEP)
        last = math.floor((centre[axis] + half_width) / GRID_STEP)
        for k in range(first, last + 1):
            offset = k * GRID_STEP - centre[axis]
            ends = np.array([[offset, -half_width], [offset, half_width]])
            xz = ends if axis == 0 else ends[:, ::-1]
            segments.append(np.stack([xz[:, 0], np.zeros(2), xz[:, 1]], axis=-1))
    return _to_plot(np.array(segments).reshape(-1, 2, 3))


_BONES = np.array([(chain[i], chain[i + 1]) for chain in KINEMATIC_CHAINS for i in range(len(chain) - 1)])  # [B, 2]


def _shadow_segments(pose: np.ndarray) -> np.ndarray:
    """The bones of ``pose`` [J, 3] (plot coords) flattened onto the floor: [B, 2, 3]."""
    on_floor = pose.copy()
    on_floor[:, 2] = 0.0
    return on_floor[_BONES]


def _render_frames(joints: np.ndarray, fps: float, title: str | None, trail: bool, size: int) -> Iterator[np.ndarray]:
    """Yield the frames of the animation of ``joints`` [T, J, 3] as uint8 arrays [size, size, 3] (RGB)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from mpl_toolkits.mplot3d.art3d import Line3DCollection, Poly3DCollection

    num_frames = len(joints)
    half_width, height = _view_box(joints)
    root_xz = joints[:, 0, [0, 2]]  # [T, 2]
    centred = joints.copy()
    centred[..., [0, 2]] -= root_xz[:, None, :]  # the camera follows the root across the floor

    figure = Figure(figsize=(size / _DPI, size / _DPI), dpi=_DPI, facecolor="white")
    canvas = FigureCanvasAgg(figure)
    ax = figure.add_axes((0, 0, 1, 1), projection="3d")
    ax.set_axis_off()
    ax.set_xlim(-half_width, half_width)
    ax.set_ylim(-half_width, half_width)
    ax.set_zlim(0, height)
    ax.set_box_aspect((2 * half_width, 2 * half_width, height), zoom=ZOOM)  # equal scales: bones keep their lengths
    ax.view_init(elev=ELEVATION, azim=AZIMUTH)
    # The camera is above the floor, so the floor, grid and trail are always behind the figure:
    # draw in a fixed order instead of matplotlib's per-artist depth sort (which can put the floor on top).
    ax.computed_zorder = False

    corners = np.array([[-1, 0, -1], [1, 0, -1], [1, 0, 1], [-1, 0, 1]]) * half_width
    floor = Poly3DCollection([_to_plot(corners)], facecolors=_FLOOR_COLOUR, edgecolors="none", zorder=0)
    ax.add_collection3d(floor)
    grid = Line3DCollection(_grid_segments(root_xz[0], half_width), colors=_GRID_COLOUR, linewidths=0.6, zorder=1)
    ax.add_collection3d(grid)
    (trail_line,) = ax.plot([], [], [], color=_TRAIL_COLOUR, linewidth=1.5, zorder=2)
    # The figure's shadow straight below it: feet on the floor touch theirs, a jump lifts off it.
    shadow = Line3DCollection(_shadow_segments(_to_plot(centred[0])), colors=_SHADOW_COLOUR, linewidths=2.5, zorder=3)
    ax.add_collection3d(shadow)
    chains = [ax.plot([], [], [], color=_chain_colour(c), linewidth=2.5)[0] for c in KINEMATIC_CHAINS]
    head = JOINT_INDEX["head"]
    (head_marker,) = ax.plot([], [], [], marker="o", markersize=7, color=_SPINE_COLOUR, linestyle="none", zorder=10)
    if title:
        figure.text(0.5, 0.97, title, ha="center", va="top", fontsize=9, wrap=True)
    clock = figure.text(0.03, 0.03, "", ha="left", va="bottom", fontsize=7, color="#555555")

    elevation, azimuth = math.radians(ELEVATION), math.radians(AZIMUTH)
    towards_camera = np.array(
        [math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation)]
    )
    for t in range(num_frames):
        grid.set_segments(_grid_segments(root_xz[t], half_width))
        if trail:
            path = np.zeros((t + 1, 3))
            path[:, [0, 2]] = root_xz[: t + 1] - root_xz[t]
            path[(np.abs(path) > half_width).any(-1)] = np.nan  # matplotlib 3D does not clip to the axes
            trail_line.set_data_3d(*_to_plot(path).T)
        pose = _to_plot(centred[t])  # [J, 3]
        shadow.set_segments(_shadow_segments(pose))
        depths = [float(pose[list(chain)].mean(0) @ towards_camera) for chain in KINEMATIC_CHAINS]
        for rank, index in enumerate(np.argsort(depths)):  # nearer limbs are drawn over farther ones
            chains[index].set_data_3d(*pose[list(KINEMATIC_CHAINS[index])].T)
            chains[index].set_zorder(4 + rank)
        head_marker.set_data_3d(*pose[[head]].T)
        # The frame number also keeps every frame distinct: Pillow merges identical GIF frames.
        clock.set_text(f"frame {t + 1}/{num_frames}   {t / fps:.2f} s")
        canvas.draw()
        yield np.asarray(canvas.buffer_rgba())[..., :3].copy()


def render_animation(
    joints: torch.Tensor,
    path: str | os.PathLike,
    fps: float = FPS,
    title: str | None = None,
    trail: bool = True,
    *,
    size: int = RENDER_SIZE,
    overwrite: bool = False,
) -> Path:
    """Draw joints FloatTensor[T, 22, 3] (metres, Y up) as a stick-figure animation of T frames at ``path``.

    A ``.gif`` is written through Pillow; a ``.mp4`` (H.264) needs an ``ffmpeg`` binary on PATH.
    ``title`` is drawn at the top; ``trail`` draws the path of the root so far on the floor; frames
    are ``size`` x ``size`` pixels. The view is described in the module docstring. The file appears
    whole or not at all, and an existing one is replaced only with ``overwrite``. Returns ``path``.
    """
    path = Path(path)
    check_joints(joints, "joints")
    if joints.dim() != 3:
        raise ValueError(f"joints: got shape {tuple(joints.shape)}; expected one clip [T, {NUM_JOINTS}, 3]")
    fps, size = _check_fps(fps), _check_size(size)
    suffix = path.suffix.lower()
    if suffix not in ANIMATION_SUFFIXES:
        raise ValueError(f"path={str(path)!r}: expected a file name ending in one of {ANIMATION_SUFFIXES}")
    ffmpeg = shutil.which("ffmpeg")
    if suffix == ".mp4" and ffmpeg is None:
        raise ValueError(
            f"path={str(path)!r}: writing .mp4 needs an ffmpeg binary on PATH and none was found; "
            f"{_FFMPEG_INSTALL_HINT}"
        )
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    frames = _render_frames(joints.detach().cpu().double().numpy(), fps, title, trail, size)
    if suffix == ".gif":
        frames = list(frames)  # Pillow needs every frame at once; render before touching the file system
        return atomic_write(path, lambda tmp: write_gif(tmp, frames, fps, GIF_COLOURS), overwrite=overwrite)
    return atomic_write(path, lambda tmp: write_mp4(tmp, frames, fps, size, ffmpeg), overwrite=overwrite)


def _save_npy(path: str | os.PathLike, array: np.ndarray, overwrite: bool) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: np.save would add ".npy" to the temporary name
            np.save(f, array, allow_pickle=False)

    return atomic_write(path, write, overwrite=overwrite)


def motion_files(name: str, out_dir: str | os.PathLike, render: bool = True) -> list[Path]:
    """The files ``write_motions`` writes for the motion ``name``: features, joints and (with ``render``) the GIF."""
    out_dir = Path(out_dir)
    files = [out_dir / f"{name}.npy", out_dir / f"{name}_joints.npy"]
    return files + ([out_dir / f"{name}.gif"] if render else [])


def write_motions(
    motions: dict[str, torch.Tensor],
    out_dir: str | os.PathLike,
    overwrite: bool = False,
    render: bool = True,
    fps: float = FPS,
) -> list[Path]:
    """Write {name: features FloatTensor[F, 263]} into ``out_dir``; returns the paths written.

    For each name: ``<name>.npy`` (the features, float32 [F, 263]), ``<name>_joints.npy`` (the joints
    from ``recover_joints``, float32 [F, 22, 3], metres, Y up) and, with ``render``, ``<name>.gif``
    (``render_animation`` at ``fps``, titled with the name). All inputs and targets are checked before
    the first file is written, so a refusal leaves nothing new; each file appears whole or not at all.
    """
    fps = _check_fps(fps)
    for name, features in motions.items():
        _check_name(name)
        check_features(features, f"motions[{name!r}]")
        if features.dim() != 2 or len(features) < 1:
            raise ValueError(
                f"motions[{name!r}]: got shape {tuple(features.shape)}; expected one clip [F, {FEATURE_DIM}], F >= 1"
            )
    out_dir = Path(out_dir)
    targets = {name: motion_files(name, out_dir, render) for name in motions}
    owner: dict[Path, str] = {}
    for name, files in targets.items():
        for file in files:
            if file in owner:  # e.g. motions "a" and "a_joints" both want a_joints.npy
                raise ValueError(f"motions {owner[file]!r} and {name!r} would both write {file.name}; rename one")
            owner[file] = name
    taken = [str(p) for p in owner if p.exists()]
    if taken and not overwrite:
        raise FileExistsError(
            f"{len(taken)} output file(s) exist (e.g. {taken[0]}); pass overwrite=True (--overwrite) to replace them"
        )
    written = []
    for name, features in motions.items():
        features = features.detach().float().cpu()
        joints = recover_joints(features)
        files = targets[name]
        written.append(_save_npy(files[0], features.numpy(), overwrite=True))
        written.append(_save_npy(files[1], joints.numpy(), overwrite=True))
        if render:
            written.append(render_animation(joints, files[2], fps=fps, title=name, overwrite=True))
    return written


def read_motion(path: str | os.PathLike) -> torch.Tensor:
    """A ``.npy`` file of HumanML3D features (as ``write_motions`` writes) -> FloatTensor[F, 263]."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such motion file")
    try:
        with open(path, "rb") as f:
            array = np.load(f, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npy array ({e})") from e
    if not isinstance(array, np.ndarray) or array.ndim != 2 or array.shape[-1] != FEATURE_DIM:
        shape = getattr(array, "shape", None)
        hint = " (a *_joints.npy file holds joints, not features)" if path.name.endswith("_joints.npy") else ""
        raise ValueError(f"{path}: got an array of shape {shape}; expected features [F, {FEATURE_DIM}]{hint}")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{path}: got dtype {array.dtype}; expected floating-point features")
    return check_features(torch.from_numpy(array.astype(np.float32)), str(path))
