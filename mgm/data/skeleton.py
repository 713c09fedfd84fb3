"""The 22-joint SMPL kinematic tree that HumanML3D uses, a rest pose, and forward kinematics.

Coordinates are metres, Y up; in the rest pose the character stands on the floor facing +Z, so its
left is +X. The rest pose stands upright with the arms hanging at the sides (an "I-pose"); the bone
directions follow HumanML3D's ``t2m_raw_offsets`` except the head (straight up here) and the arms
(shoulder out to the side, then down), with lengths of our own for an adult about 1.7 m tall.

Dimension legend: T frames (or any leading dims), J = 22 joints.
Joint positions are FloatTensor[..., T, J, 3]; rotation matrices FloatTensor[..., 3, 3].
"""

from __future__ import annotations

import torch

JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)  # fmt: skip
NUM_JOINTS = len(JOINT_NAMES)
JOINT_INDEX = {name: index for index, name in enumerate(JOINT_NAMES)}
ROOT = 0

# Parent of each joint (-1 for the root); every parent comes before its children.
PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)

# Chains from a branching joint to a leaf, for drawing stick figures (HumanML3D's t2m chains).
KINEMATIC_CHAINS = (
    (0, 2, 5, 8, 11),  # right leg
    (0, 1, 4, 7, 10),  # left leg
    (0, 3, 6, 9, 12, 15),  # spine and head
    (9, 14, 17, 19, 21),  # right arm
    (9, 13, 16, 18, 20),  # left arm
)

# Foot joints: (ankle, foot) per side, in the order HumanML3D's foot-contact features use.
LEFT_FOOT_JOINTS = (7, 10)
RIGHT_FOOT_JOINTS = (8, 11)
FOOT_JOINTS = LEFT_FOOT_JOINTS + RIGHT_FOOT_JOINTS
# Joints whose left-to-right vectors give the facing direction: (right hip, left hip, right shoulder,
# left shoulder), as HumanML3D's ``face_joint_indx``.
FACE_JOINTS = (2, 1, 17, 16)

# Offset of each joint from its parent in the rest pose, metres (the root's is its height above the floor).
REST_OFFSETS = torch.tensor(
    [
        [0.0, 0.95, 0.0],  # pelvis: rest height
        [0.09, -0.07, 0.0],  # left_hip
        [-0.09, -0.07, 0.0],  # right_hip
        [0.0, 0.10, -0.01],  # spine1
        [0.0, -0.40, 0.0],  # left_knee
        [0.0, -0.40, 0.0],  # right_knee
        [0.0, 0.13, 0.0],  # spine2
        [0.0, -0.40, 0.0],  # left_ankle: 8 cm above the floor at rest
        [0.0, -0.40, 0.0],  # right_ankle
        [0.0, 0.06, 0.02],  # spine3
        [0.0, -0.05, 0.12],  # left_foot (the toes): 3 cm above the floor
        [0.0, -0.05, 0.12],  # right_foot
        [0.0, 0.22, -0.01],  # neck
        [0.07, 0.15, -0.01],  # left_collar
        [-0.07, 0.15, -0.01],  # right_collar
        [0.0, 0.12, 0.03],  # head: 1.58 m, the top of the head about 10 cm higher
        [0.12, 0.0, 0.0],  # left_shoulder
        [-0.12, 0.0, 0.0],  # right_shoulder
        [0.0, -0.27, 0.0],  # left_elbow
        [0.0, -0.27, 0.0],  # right_elbow
        [0.0, -0.25, 0.0],  # left_wrist
        [0.0, -0.25, 0.0],  # right_wrist
    ]
)


def rest_pose(offsets: torch.Tensor | None = None) -> torch.Tensor:
    """Joint positions of the rest pose: FloatTensor[J, 3] (the root's offset is its position)."""
    offsets = REST_OFFSETS if offsets is None else offsets
    identity = torch.eye(3, dtype=offsets.dtype).expand(NUM_JOINTS, 3, 3)
    return forward_kinematics(offsets[0], identity, offsets)


def cross_product_matrix(vectors: torch.Tensor) -> torch.Tensor:
    """The matrices [..., 3, 3] K with ``K @ u == cross(vectors, u)`` for vectors [..., 3]."""
    x, y, z = vectors.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).unflatten(-1, (3, 3))


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [..., 3, 3] from axis-angle vectors [..., 3] (direction: axis, norm: angle in radians).

    Rodrigues' formula; the zero vector gives the identity.
    """
    angle = axis_angle.norm(dim=-1, keepdim=True)  # [..., 1]
    skew = cross_product_matrix(axis_angle / angle.clamp_min(1e-12))
    sin, cos = angle.sin()[..., None], angle.cos()[..., None]
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + sin * skew + (1 - cos) * (skew @ skew)


def forward_kinematics(
    root_position: torch.Tensor, local_rotations: torch.Tensor, offsets: torch.Tensor | None = None
) -> torch.Tensor:
    """Joint positions [..., J, 3] from the root position [..., 3] and local rotations [..., J, 3, 3].

    ``local_rotations[..., j]`` rotates joint j's children relative to j's parent frame: the global
    rotation of j is ``global[parent(j)] @ local[j]`` (the root's local rotation is its global one),
    and joint j sits at ``position[parent(j)] + global[parent(j)] @ offsets[j]``. The leaf joints'
    rotations (head, feet, wrists) move nothing. ``offsets`` [J, 3] defaults to ``REST_OFFSETS``
    (the root's entry is not used). Leading dims (frames, clips) are batched.
    """
    offsets = REST_OFFSETS if offsets is None else offsets
    if local_rotations.shape[-3:] != (NUM_JOINTS, 3, 3):
        raise ValueError(
            f"local_rotations: got shape {tuple(local_rotations.shape)}; expected [..., {NUM_JOINTS}, 3, 3]"
        )
    if root_position.shape != local_rotations.shape[:-3] + (3,):
        raise ValueError(
            f"root_position: got shape {tuple(root_position.shape)}; expected "
            f"{tuple(local_rotations.shape[:-3]) + (3,)} to match local_rotations"
        )
    if offsets.shape != (NUM_JOINTS, 3):
        raise ValueError(f"offsets: got shape {tuple(offsets.shape)}; expected [{NUM_JOINTS}, 3]")
    offsets = offsets.to(local_rotations)
    positions, rotations = [root_position], [local_rotations[..., 0, :, :]]
    for joint in range(1, NUM_JOINTS):
        parent = PARENTS[joint]
        positions.append(positions[parent] + rotations[parent] @ offsets[joint])
        rotations.append(rotations[parent] @ local_rotations[..., joint, :, :])
    return torch.stack(positions, dim=-2)
