"""HumanML3D's 263-dim motion features at 20 fps: extraction from joint positions, and recovery.

Dimension legend: T joint frames, F = T - 1 feature frames, J = 22 joints, D = 263 feature dims.
Joints are FloatTensor[..., T, J, 3] (metres, Y up, see ``mgm.data.skeleton``); features are
FloatTensor[..., F, D]. The facing yaw psi of a frame is the angle of its forward direction
(sin psi, 0, cos psi): 0 faces +Z, a positive psi has turned to the left (towards +X).

Layout of one feature frame t (HumanML3D's, block by block; the slices below name them):

====================  =====  ==========================================================================
block                 dims   content
====================  =====  ==========================================================================
ROOT_YAW_VELOCITY     1      ``-(psi[t+1] - psi[t]) / 2``: HumanML3D stores the arcsine of the y part of
                             the relative root quaternion, that is minus half the yaw step (radians)
ROOT_LINEAR_VELOCITY  2      x, z of ``root[t+1] - root[t]`` in the facing frame of frame t+1
ROOT_HEIGHT           1      the root's y at frame t
RIC                   63     joints 1..21 at frame t relative to the root: x, z minus the root's x, z
                             then turned into frame t's facing frame; y absolute (above the floor)
ROTATIONS             126    joints 1..21: 6D (first two columns) of each bone's local rotation, below
LOCAL_VELOCITY        66     all 22 joints: ``joints[t+1] - joints[t]`` in frame t's facing frame
FOOT_CONTACTS         4      left ankle, left foot, right ankle, right foot: 1.0 where the joint moves
                             less than sqrt(0.002) m to frame t+1 and is below ``CONTACT_HEIGHTS``
====================  =====  ==========================================================================

Frames. A velocity needs the next frame, so T joint frames give F = T - 1 feature frames: feature
frame t describes joint frame t and the step from t to t+1, and the last joint frame only serves
the last step (HumanML3D's convention). ``recover_joints`` therefore gives back joint frames
0 .. T-2 of the canonicalised clip.

Canonicalisation (``canonicalise``, applied first by ``extract_features``): the clip's lowest joint
over all frames is put on the floor (y = 0), the root's x, z at frame 0 at the origin, and the
whole clip turned about Y so that frame 0 faces +Z. The facing direction is HumanML3D's: Y crossed
with the sum of the left-to-right hip and shoulder vectors. Unlike HumanML3D we do not smooth the
facing direction over time, so frame 0 faces exactly +Z and ``recover_joints(extract_features(x))``
equals ``canonicalise(x)[..., :-1, :, :]`` (to float rounding). Nor do we retarget clips to one
skeleton's bone lengths (HumanML3D's ``uniform_skeleton``): the joints are used as given.

Rotations. HumanML3D derives the 126 rotation dims by an inverse-kinematics pass; models rarely use
them and recovery never does. Here they are a well-defined "swing" decomposition: each bone
(parent(j) -> j, j = 1..21) gets the global rotation ``G[j]``, the smallest rotation that turns its
rest direction (``REST_OFFSETS[j]``) into its direction at frame t; the root's ``G[0]`` is the
facing yaw rotation. The stored rotation is ``G[parent(j)]^T @ G[j]``, so chaining them from the
root gives back every bone's direction (``bone_directions``), the rest pose gives identities, and
the block, like all the others, does not change when the whole clip turns about Y. Twist about a
bone cannot be seen from joint positions and is zero.

KIT-ML (251 dims, 21 joints) is not supported.
"""

from __future__ import annotations

import math

import torch

from mgm.data.skeleton import FACE_JOINTS, FOOT_JOINTS, NUM_JOINTS, PARENTS, REST_OFFSETS, cross_product_matrix

FPS = 20
FEATURE_DIM = 263
ROOT_YAW_VELOCITY = slice(0, 1)
ROOT_LINEAR_VELOCITY = slice(1, 3)
ROOT_HEIGHT = slice(3, 4)
RIC = slice(4, 4 + 3 * (NUM_JOINTS - 1))  # 4:67
ROTATIONS = slice(RIC.stop, RIC.stop + 6 * (NUM_JOINTS - 1))  # 67:193
LOCAL_VELOCITY = slice(ROTATIONS.stop, ROTATIONS.stop + 3 * NUM_JOINTS)  # 193:259
FOOT_CONTACTS = slice(LOCAL_VELOCITY.stop, LOCAL_VELOCITY.stop + 4)  # 259:263
BLOCKS = {
    "root_yaw_velocity": ROOT_YAW_VELOCITY,
    "root_linear_velocity": ROOT_LINEAR_VELOCITY,
    "root_height": ROOT_HEIGHT,
    "ric": RIC,
    "rotations": ROTATIONS,
    "local_velocity": LOCAL_VELOCITY,
    "foot_contacts": FOOT_CONTACTS,
}
assert FOOT_CONTACTS.stop == FEATURE_DIM

CONTACT_SQUARED_STEP = 0.002  # m^2 per frame: HumanML3D's foot-contact velocity threshold (0.9 m/s at 20 fps)
CONTACT_HEIGHTS = (0.15, 0.10)  # m above the floor: (ankle, foot); higher joints are never in contact
_SWING_EPS = 1e-6  # 1 + cos(angle) below this: the bone points opposite to its rest direction


def check_joints(joints: torch.Tensor, name: str = "joints", min_frames: int = 1) -> torch.Tensor:
    """Raise ValueError unless ``joints`` is a finite float tensor [..., T, 22, 3] with T >= min_frames."""
    if not isinstance(joints, torch.Tensor) or not joints.is_floating_point():
        raise ValueError(f"{name}: got {type(joints).__name__} {getattr(joints, 'dtype', '')}; expected a float tensor")
    if joints.dim() < 3 or joints.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"{name}: got shape {tuple(joints.shape)}; expected [..., T, {NUM_JOINTS}, 3]")
    if joints.shape[-3] < min_frames:
        raise ValueError(f"{name}: got {joints.shape[-3]} frames; expected at least {min_frames}")
    if not torch.isfinite(joints).all():
        raise ValueError(f"{name}: contains NaN or infinite values; expected finite joint positions")
    return joints


def check_features(features: torch.Tensor, name: str = "features") -> torch.Tensor:
    """Raise ValueError unless ``features`` is a finite float tensor [..., F, 263]; returns it."""
    if not isinstance(features, torch.Tensor) or not features.is_floating_point():
        dtype = getattr(features, "dtype", "")
        raise ValueError(f"{name}: got {type(features).__name__} {dtype}; expected a float tensor [..., F, 263]")
    if features.dim() < 2 or features.shape[-1] != FEATURE_DIM:
        raise ValueError(
            f"{name}: got shape {tuple(features.shape)}; expected [..., F, {FEATURE_DIM}] (HumanML3D features)"
        )
    if not torch.isfinite(features).all():
        bad = (~torch.isfinite(features)).sum().item()
        raise ValueError(f"{name}: {bad} NaN or infinite values; expected finite features")
    return features


def rotate_y(vectors: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """Turn ``vectors`` [..., 3] about +Y by ``yaw`` (radians, broadcast against vectors[..., 0]).

    A yaw of psi takes +Z to (sin psi, 0, cos psi); -psi turns a world vector into the frame of
    something facing psi.
    """
    x, y, z = vectors.unbind(-1)
    cos, sin = yaw.cos(), yaw.sin()
    return torch.stack([cos * x + sin * z, y.expand_as(cos * x), cos * z - sin * x], dim=-1)


def yaw_matrix(yaw: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [..., 3, 3] about +Y by ``yaw`` [...] (radians; the matrix form of ``rotate_y``)."""
    cos, sin, zero, one = yaw.cos(), yaw.sin(), torch.zeros_like(yaw), torch.ones_like(yaw)
    return torch.stack([cos, zero, sin, zero, one, zero, -sin, zero, cos], dim=-1).unflatten(-1, (3, 3))


def facing_yaw(joints: torch.Tensor) -> torch.Tensor:
    """The facing yaw [..., T] of each frame (radians in (-pi, pi], 0 facing +Z).

    Forward is Y crossed with the sum of the left-to-right hip and shoulder vectors (HumanML3D's rule).
    """
    right_hip, left_hip, right_shoulder, left_shoulder = FACE_JOINTS
    across = joints[..., right_hip, :] - joints[..., left_hip, :] + joints[..., right_shoulder, :]
    across = across - joints[..., left_shoulder, :]
    # Y x (ax, ay, az) = (az, 0, -ax): forward's x and z.
    return torch.atan2(across[..., 2], -across[..., 0])


def wrap_angle(angle: torch.Tensor) -> torch.Tensor:
    """``angle`` wrapped into [-pi, pi)."""
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


def canonicalise(joints: torch.Tensor) -> torch.Tensor:
    """Place a clip [..., T, J, 3] as ``extract_features`` sees it: lowest joint on the floor, frame 0's
    root above the origin, frame 0 facing +Z (see the module docstring)."""
    check_joints(joints)
    floor = joints[..., 1].amin(dim=(-2, -1))  # [...]
    start = joints[..., 0, 0, :]  # root at frame 0, [..., 3]
    shift = torch.stack([start[..., 0], floor, start[..., 2]], dim=-1)[..., None, None, :]
    yaw0 = facing_yaw(joints[..., 0, :, :])  # [...]
    return rotate_y(joints - shift, -yaw0[..., None, None])


def _swing(rest: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The smallest rotations [..., 3, 3] turning unit vectors ``rest`` [..., 3] into unit ``target`` [..., 3].

    R = I + K + K^2 / (1 + c) with K the cross-product matrix of rest x target and c = rest . target;
    where the two are opposite, a half turn about an axis perpendicular to ``rest``.
    """
    skew = cross_product_matrix(torch.linalg.cross(rest, target))
    cos = (rest * target).sum(-1)[..., None, None]
    eye = torch.eye(3, dtype=rest.dtype, device=rest.device)
    swing = eye + skew + (skew @ skew) / (1 + cos).clamp_min(_SWING_EPS)
    # Half turn: perpendicular axis from whichever of X, Z is less aligned with rest.
    helper = torch.where(rest[..., :1].abs() < 0.9, torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0]))
    perpendicular = torch.nn.functional.normalize(torch.linalg.cross(rest, helper.to(rest)), dim=-1)
    half_turn = 2 * perpendicular[..., :, None] * perpendicular[..., None, :] - eye
    return torch.where(1 + cos < _SWING_EPS, half_turn, swing)


def bone_rotations(joints: torch.Tensor, yaw: torch.Tensor | None = None) -> torch.Tensor:
    """The local bone rotations [..., T, J, 3, 3] that the ROTATIONS block stores (entry 0: the facing yaw).

    Entry j (1..21) is ``G[parent(j)]^T @ G[j]``, ``G[j]`` the smallest rotation taking the rest
    direction of bone parent(j) -> j to its direction in ``joints``; ``G[0]`` turns +Z to the facing
    direction (``yaw`` [..., T], by default ``facing_yaw(joints)``).
    """
    yaw = facing_yaw(joints) if yaw is None else yaw
    parents = torch.tensor(PARENTS[1:])
    bones = torch.nn.functional.normalize(joints[..., 1:, :] - joints[..., parents, :], dim=-1)  # [..., T, 21, 3]
    rest = torch.nn.functional.normalize(REST_OFFSETS[1:].to(joints), dim=-1)
    heading = yaw_matrix(yaw)
    global_rotations = torch.cat([heading[..., None, :, :], _swing(rest.expand_as(bones), bones)], dim=-3)
    local = global_rotations[..., parents, :, :].transpose(-1, -2) @ global_rotations[..., 1:, :, :]
    return torch.cat([heading[..., None, :, :], local], dim=-3)


def matrix_to_rotation_6d(matrices: torch.Tensor) -> torch.Tensor:
    """The 6D representation [..., 6] of rotation matrices [..., 3, 3]: the first column, then the second."""
    return torch.cat([matrices[..., :, 0], matrices[..., :, 1]], dim=-1)


def rotation_6d_to_matrix(rotation_6d: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [..., 3, 3] from 6D vectors [..., 6] (Gram-Schmidt on the two columns)."""
    first = torch.nn.functional.normalize(rotation_6d[..., :3], dim=-1)
    second = rotation_6d[..., 3:] - (first * rotation_6d[..., 3:]).sum(-1, keepdim=True) * first
    second = torch.nn.functional.normalize(second, dim=-1)
    return torch.stack([first, second, torch.linalg.cross(first, second)], dim=-1)


def bone_directions(features: torch.Tensor) -> torch.Tensor:
    """Unit directions [..., F, 21, 3] of the bones parent(j) -> j (j = 1..21) from the ROTATIONS block
    and the recovered facing yaw: the rotations chained from the root, applied to the rest directions."""
    check_features(features)
    yaw, _ = recover_root(features)
    local = rotation_6d_to_matrix(features[..., ROTATIONS].unflatten(-1, (NUM_JOINTS - 1, 6)))
    rotations = [yaw_matrix(yaw)]
    for joint in range(1, NUM_JOINTS):
        rotations.append(rotations[PARENTS[joint]] @ local[..., joint - 1, :, :])
    rest = torch.nn.functional.normalize(REST_OFFSETS[1:].to(features), dim=-1)
    return (torch.stack(rotations[1:], dim=-3) @ rest[..., None])[..., 0]


def foot_contacts(joints: torch.Tensor) -> torch.Tensor:
    """Foot contacts [..., T-1, 4] (left ankle, left foot, right ankle, right foot) of floor-placed joints:
    1.0 where the joint moves less than sqrt(CONTACT_SQUARED_STEP) m to the next frame and stands
    below its CONTACT_HEIGHTS entry."""
    feet = joints[..., list(FOOT_JOINTS), :]  # [..., T, 4, 3]
    slow = (feet[..., 1:, :, :] - feet[..., :-1, :, :]).pow(2).sum(-1) < CONTACT_SQUARED_STEP
    heights = torch.tensor(CONTACT_HEIGHTS * 2, dtype=joints.dtype, device=joints.device)
    low = feet[..., :-1, :, 1] < heights
    return (slow & low).to(joints.dtype)


def extract_features(joints: torch.Tensor) -> torch.Tensor:
    """HumanML3D features [..., T-1, 263] of joint positions [..., T, 22, 3] (T >= 2), 20 fps.

    The clip is canonicalised first (floor, origin, facing +Z at frame 0); computed in float64 and
    returned in the dtype of ``joints``. See the module docstring for the layout.
    """
    check_joints(joints, min_frames=2)
    dtype = joints.dtype
    joints = canonicalise(joints.double())
    yaw = facing_yaw(joints)  # [..., T]; yaw[..., 0] == 0
    root = joints[..., :, 0, :]  # [..., T, 3]

    yaw_velocity = -wrap_angle(yaw[..., 1:] - yaw[..., :-1]) / 2  # [..., F]
    root_velocity = rotate_y(root[..., 1:, :] - root[..., :-1, :], -yaw[..., 1:])[..., [0, 2]]  # [..., F, 2]
    root_height = root[..., :-1, 1]
    ground = torch.stack([root[..., 0], torch.zeros_like(root[..., 1]), root[..., 2]], dim=-1)
    ric = rotate_y(joints[..., :-1, 1:, :] - ground[..., :-1, None, :], -yaw[..., :-1, None])  # [..., F, 21, 3]
    rotations = matrix_to_rotation_6d(bone_rotations(joints[..., :-1, :, :], yaw[..., :-1])[..., 1:, :, :])
    local_velocity = rotate_y(joints[..., 1:, :, :] - joints[..., :-1, :, :], -yaw[..., :-1, None])
    features = torch.cat(
        [
            yaw_velocity[..., None],
            root_velocity,
            root_height[..., None],
            ric.flatten(-2),
            rotations.flatten(-2),
            local_velocity.flatten(-2),
            foot_contacts(joints),
        ],
        dim=-1,
    )
    return features.to(dtype)


def recover_root(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(facing yaw [..., F], root position [..., F, 3]) from features [..., F, 263].

    The first frame faces +Z with the root above the origin; the yaw integrates the yaw velocity
    (``psi[t] = -2 * sum(features[:t, 0])``), the root's x, z integrate the linear velocity turned
    back by the yaw of the frame it leads to, and y is ROOT_HEIGHT.
    """
    check_features(features)
    yaw_steps = -2 * features[..., :-1, ROOT_YAW_VELOCITY.start]
    yaw = torch.cat([torch.zeros_like(features[..., :1, 0]), yaw_steps.cumsum(-1)], dim=-1)
    velocity = features[..., :-1, ROOT_LINEAR_VELOCITY]  # [..., F-1, 2]: steps t -> t+1
    step = rotate_y(
        torch.stack([velocity[..., 0], torch.zeros_like(velocity[..., 0]), velocity[..., 1]], -1), yaw[..., 1:]
    )
    position = torch.cat([torch.zeros_like(step[..., :1, :]), step.cumsum(-2)], dim=-2)
    position = torch.cat([position[..., :1], features[..., ROOT_HEIGHT], position[..., 2:]], dim=-1)
    return yaw, position


def recover_joints(features: torch.Tensor) -> torch.Tensor:
    """Joint positions [..., F, 22, 3] from features [..., F, 263], through the root and RIC blocks.

    RIC positions are turned back by the recovered yaw and shifted by the root's x, z; the first
    frame's root is above the origin facing +Z. Other blocks are not read.
    """
    yaw, root = recover_root(features)
    ric = features[..., RIC].unflatten(-1, (NUM_JOINTS - 1, 3))  # [..., F, 21, 3]
    joints = rotate_y(ric, yaw[..., None])
    joints = joints + torch.stack([root[..., 0], torch.zeros_like(root[..., 0]), root[..., 2]], dim=-1)[..., None, :]
    return torch.cat([root[..., None, :], joints], dim=-2)


def normalisation_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean [263], std [263]) over the frames of ``features`` [N, 263] (e.g. all clips' frames concatenated).

    As HumanML3D's Mean.npy / Std.npy: the mean per dim, and one standard deviation per block (the
    average of its dims' deviations), so that normalising keeps the relative scales inside a block.
    A block that never varies gets a deviation of 1.
    """
    check_features(features)
    if features.dim() != 2 or len(features) < 2:
        raise ValueError(f"features: got shape {tuple(features.shape)}; expected [N, {FEATURE_DIM}] with N >= 2")
    features = features.double()
    mean, per_dim = features.mean(0), features.std(0)
    std = torch.empty_like(mean)
    for block in BLOCKS.values():
        pooled = per_dim[block].mean()
        std[block] = pooled if pooled > 1e-8 else 1.0
    return mean.float(), std.float()
