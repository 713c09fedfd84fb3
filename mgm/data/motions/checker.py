"""Motions7's exact checker: rule-based measurements on joints, and the action and direction they imply.

``classify_motion`` and ``classify_direction`` read joints [..., T, 22, 3], or HumanML3D features
[..., F, 263] through ``recover_joints``, so they can judge generated features. They use a few
measurements, each public: ``airborne_height`` (jump), ``root_displacement`` (walk, run and their
direction), ``root_height_drop`` (sit), ``kick_height``, ``hand_height`` (wave) and ``yaw_change``
(turn), compared against thresholds set halfway (or so) between what the classes produce.
"""

from __future__ import annotations

import math

import torch

from mgm.data.motion_features import FEATURE_DIM, FPS, check_joints, facing_yaw, recover_joints, rotate_y, wrap_angle
from mgm.data.motions.params import _DIRECTION_ANGLES, CLASSES, DIRECTIONS
from mgm.data.skeleton import FOOT_JOINTS, JOINT_INDEX

# Checker thresholds, each halfway (or so) between what the classes it separates produce.
AIRBORNE_HEIGHT = 0.12  # m: jumps lift the lowest foot 0.2-0.3 m, runs 0.04 m, others 0
MOVING_SPEED = 0.25  # m/s of net root travel: walks go at least 0.4, stationary actions 0
RUNNING_SPEED = 1.8  # m/s: walks at most 1.6, runs at least 2.0
SQUAT_DROP = 0.2  # m the root sinks by the last quarter: squats 0.34-0.59, others about 0
KICK_HEIGHT = 0.3  # m above the floor for an ankle ahead of the pelvis: kicks 0.45-0.75, others < 0.1
KICK_REACH = 0.3  # m ahead of the pelvis (facing frame) that makes an ankle a kicking one
HAND_ABOVE_HEAD = 0.05  # m a wrist must be above the head joint to count as raised
WAVE_FRACTION = 0.3  # of the frames with a hand raised: waves at least 0.6, others 0
TURN_ANGLE = math.radians(45)  # net yaw change: turns 90-180 degrees, others about 0
DIRECTION_DISTANCE = 0.2  # m of net travel below which a clip has no direction of travel

_J = JOINT_INDEX


# Measurements on joint positions [..., T, J, 3] (T >= 2), then the decision


def _as_joints(motion: torch.Tensor) -> torch.Tensor:
    """Joints [..., T, J, 3] from joints, or from features [..., F, 263] through ``recover_joints``."""
    if isinstance(motion, torch.Tensor) and motion.dim() >= 2 and motion.shape[-1] == FEATURE_DIM:
        return recover_joints(motion)
    return check_joints(motion, name="motion", min_frames=2)


def root_displacement(joints: torch.Tensor, fps: float = FPS) -> tuple[torch.Tensor, torch.Tensor]:
    """(direction [...], speed [...]) of the root's net horizontal travel from the first frame to the last.

    The direction is a yaw relative to the first frame's facing (0 forward, pi/2 left, -pi/2 right,
    +-pi backward); the speed is the net distance over the clip's duration, m/s.
    """
    joints = check_joints(joints, min_frames=2)
    delta = joints[..., -1, 0, :] - joints[..., 0, 0, :]
    local = rotate_y(delta, -facing_yaw(joints[..., 0, :, :]))
    seconds = (joints.shape[-3] - 1) / fps
    return torch.atan2(local[..., 0], local[..., 2]), torch.hypot(local[..., 0], local[..., 2]) / seconds


def hand_height(joints: torch.Tensor) -> torch.Tensor:
    """Height of the (left, right) wrist above the head joint: [..., T, 2], m (positive: above the head)."""
    joints = check_joints(joints)
    wrists = joints[..., [_J["left_wrist"], _J["right_wrist"]], 1]
    return wrists - joints[..., _J["head"], None, 1]


def root_height_drop(joints: torch.Tensor) -> torch.Tensor:
    """How far the root sinks [...]: its height at the first frame minus its mean height over the last quarter."""
    joints = check_joints(joints)
    height = joints[..., 0, 1]
    return height[..., 0] - height[..., -max(1, height.shape[-1] // 4) :].mean(-1)


def yaw_change(joints: torch.Tensor) -> torch.Tensor:
    """Net change [...] of the facing yaw from the first frame to the last, radians, positive to the left.

    Summed frame to frame (each step wrapped to [-pi, pi)), so turns beyond half a circle count in full.
    """
    yaw = facing_yaw(check_joints(joints))
    return wrap_angle(yaw[..., 1:] - yaw[..., :-1]).sum(-1)


def airborne_height(joints: torch.Tensor) -> torch.Tensor:
    """The most the lowest foot joint rises above its lowest point in the clip: [...], m."""
    lowest = check_joints(joints)[..., list(FOOT_JOINTS), 1].amin(-1)  # [..., T]
    return lowest.amax(-1) - lowest.amin(-1)


def kick_height(joints: torch.Tensor) -> torch.Tensor:
    """The highest an ankle gets above the clip's lowest foot point while more than KICK_REACH ahead of
    the root (in that frame's facing frame): [...], m; 0 if no ankle gets that far ahead."""
    joints = check_joints(joints)
    ankles = joints[..., [_J["left_ankle"], _J["right_ankle"]], :]  # [..., T, 2, 3]
    ahead = rotate_y(ankles - joints[..., :1, :], -facing_yaw(joints)[..., None])[..., 2]  # [..., T, 2]
    floor = joints[..., list(FOOT_JOINTS), 1].amin(dim=(-2, -1))
    height = ankles[..., 1] - floor[..., None, None]
    return torch.where(ahead > KICK_REACH, height, 0.0).amax(dim=(-2, -1)).clamp_min(0)


def _clips(motion: torch.Tensor, lengths: torch.Tensor | None):
    """Yield the joints [T, J, 3] of each clip in ``motion`` (joints or features, padded with ``lengths``)."""
    joints = _as_joints(motion)
    flat = joints.reshape(-1, *joints.shape[-3:])
    if lengths is None:
        lengths = torch.full((len(flat),), flat.shape[1])
    lengths = torch.as_tensor(lengths).reshape(-1)
    if len(lengths) != len(flat) or (lengths < 2).any() or (lengths > flat.shape[1]).any():
        raise ValueError(
            f"lengths: got {lengths.tolist()}; expected {len(flat)} frame counts from 2 to {flat.shape[1]}"
        )
    return joints.shape[:-3], [flat[i, : int(n)] for i, n in enumerate(lengths)]


def classify_motion(motion: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """The action (index into CLASSES) of each clip: LongTensor[...], -1 where none fits.

    ``motion`` is joints [..., T, 22, 3] or HumanML3D features [..., F, 263] (read through
    ``recover_joints``); ``lengths`` [...] gives each clip's frames when the batch is padded. In order:
    jump if the lowest foot rises more than AIRBORNE_HEIGHT; run or walk if the root travels faster
    than RUNNING_SPEED or MOVING_SPEED; sit if the root sinks more than SQUAT_DROP; kick if an ankle
    ahead of the body rises above KICK_HEIGHT; wave if a hand is above the head in more than
    WAVE_FRACTION of the frames; turn if the facing turns more than TURN_ANGLE.
    """
    shape, clips = _clips(motion, lengths)
    labels = []
    for joints in clips:
        _, speed = root_displacement(joints)
        raised = (hand_height(joints).amax(-1) > HAND_ABOVE_HEAD).float().mean()
        if airborne_height(joints) > AIRBORNE_HEIGHT:
            label = "jump"
        elif speed > MOVING_SPEED:
            label = "run" if speed > RUNNING_SPEED else "walk"
        elif root_height_drop(joints) > SQUAT_DROP:
            label = "sit"
        elif kick_height(joints) > KICK_HEIGHT:
            label = "kick"
        elif raised > WAVE_FRACTION:
            label = "wave"
        elif yaw_change(joints).abs() > TURN_ANGLE:
            label = "turn"
        else:
            label = None
        labels.append(-1 if label is None else CLASSES.index(label))
    return torch.tensor(labels, dtype=torch.long).reshape(shape)


def classify_direction(motion: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """The direction (index into DIRECTIONS) of each clip: LongTensor[...], -1 where none applies.

    A clip whose root travels at least DIRECTION_DISTANCE gets the direction nearest to its travel
    (relative to its first frame's facing); otherwise one that turns more than TURN_ANGLE gets left or
    right (the way it turned); otherwise -1. Inputs as for ``classify_motion``.
    """
    shape, clips = _clips(motion, lengths)
    directions = torch.tensor(_DIRECTION_ANGLES)
    out = []
    for joints in clips:
        angle, speed = root_displacement(joints)
        distance = speed * (len(joints) - 1) / FPS
        turned = yaw_change(joints)
        if distance >= DIRECTION_DISTANCE:
            out.append(int(wrap_angle(angle - directions).abs().argmin()))
        elif turned.abs() > TURN_ANGLE:
            out.append(DIRECTIONS.index("left" if turned > 0 else "right"))
        else:
            out.append(-1)
    return torch.tensor(out, dtype=torch.long).reshape(shape)
