import math

import pytest
import torch

from mgm.data.motion_features import (
    BLOCKS,
    FEATURE_DIM,
    FOOT_CONTACTS,
    LOCAL_VELOCITY,
    RIC,
    ROOT_HEIGHT,
    ROOT_LINEAR_VELOCITY,
    ROOT_YAW_VELOCITY,
    ROTATIONS,
    bone_directions,
    canonicalise,
    check_features,
    extract_features,
    facing_yaw,
    matrix_to_rotation_6d,
    normalisation_statistics,
    recover_joints,
    recover_root,
    rotate_y,
    rotation_6d_to_matrix,
)
from mgm.data.skeleton import (
    JOINT_NAMES,
    KINEMATIC_CHAINS,
    NUM_JOINTS,
    PARENTS,
    REST_OFFSETS,
    axis_angle_to_matrix,
    forward_kinematics,
    rest_pose,
)


def random_motion(frames: int = 60, seed: int = 0, turn: float = 4.0) -> torch.Tensor:
    """Joints [T, 22, 3]: random smooth joint rotations, a wandering root, turning by ``turn`` radians."""
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 1, frames)[:, None, None]
    amplitude, phase = 0.6 * torch.rand(1, NUM_JOINTS, 3, generator=g), 6 * torch.rand(1, NUM_JOINTS, 3, generator=g)
    axis_angle = amplitude * torch.sin(5 * t + phase)
    axis_angle[:, 0] = torch.tensor([0.0, 1.0, 0.0]) * (2 * math.pi * torch.rand(1, generator=g) + turn * t[:, 0])
    root = torch.cumsum(0.05 * torch.randn(frames, 3, generator=g), 0) + torch.tensor([1.0, 0.95, -2.0])
    return forward_kinematics(root, axis_angle_to_matrix(axis_angle))


def test_skeleton_tree_and_rest_pose():
    assert len(JOINT_NAMES) == len(PARENTS) == len(REST_OFFSETS) == NUM_JOINTS == 22
    assert PARENTS[0] == -1 and all(0 <= PARENTS[j] < j for j in range(1, NUM_JOINTS))
    for chain in KINEMATIC_CHAINS:
        assert all(PARENTS[child] == parent for parent, child in zip(chain, chain[1:]))
    assert sorted({j for chain in KINEMATIC_CHAINS for j in chain}) == list(range(NUM_JOINTS))
    pose = rest_pose()
    assert pose[:, 1].min() == pytest.approx(0.03) and 1.5 < pose[JOINT_NAMES.index("head"), 1] < 1.65
    assert pose[JOINT_NAMES.index("left_hip"), 0] > 0 > pose[JOINT_NAMES.index("right_hip"), 0]  # left is +X
    assert pose[JOINT_NAMES.index("left_foot"), 2] > pose[JOINT_NAMES.index("left_ankle"), 2]  # toes point +Z
    assert facing_yaw(pose).item() == pytest.approx(0.0, abs=1e-6)


def test_forward_kinematics_turns_the_body_and_batches():
    yaw = torch.tensor([0.0, math.pi / 2, -1.0])
    rotations = axis_angle_to_matrix(torch.zeros(3, NUM_JOINTS, 3))
    rotations[:, 0] = axis_angle_to_matrix(yaw[:, None] * torch.tensor([0.0, 1.0, 0.0]))
    joints = forward_kinematics(torch.zeros(3, 3), rotations)
    expected = rotate_y(rest_pose() - REST_OFFSETS[0], yaw[:, None])
    assert torch.allclose(joints, expected, atol=1e-6)
    assert torch.allclose(facing_yaw(joints), yaw, atol=1e-6)
    batched = forward_kinematics(torch.zeros(2, 3, 3), rotations.expand(2, -1, -1, -1, -1))
    assert torch.equal(batched[1], joints)
    with pytest.raises(ValueError, match=r"local_rotations: got shape \(3, 21, 3, 3\)"):
        forward_kinematics(torch.zeros(3, 3), rotations[:, 1:])


def test_layout_blocks_tile_the_263_dims():
    sizes = {name: block.stop - block.start for name, block in BLOCKS.items()}
    assert sizes == {
        "root_yaw_velocity": 1, "root_linear_velocity": 2, "root_height": 1, "ric": 63,
        "rotations": 126, "local_velocity": 66, "foot_contacts": 4,
    }  # fmt: skip
    stops = [0] + [block.stop for block in BLOCKS.values()]
    assert [block.start for block in BLOCKS.values()] == stops[:-1] and stops[-1] == FEATURE_DIM == 263


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recover_joints_round_trips_the_canonicalised_clip(seed):
    joints = random_motion(seed=seed)
    features = extract_features(joints)
    assert features.shape == (len(joints) - 1, FEATURE_DIM) and features.dtype == torch.float32
    recovered = recover_joints(features)
    canonical = canonicalise(joints)
    assert (recovered - canonical[:-1]).abs().max() < 1e-4  # T - 1 frames: the last only gives a velocity
    # Canonical placement: root above the origin facing +Z at frame 0, lowest joint on the floor.
    assert canonical[0, 0, [0, 2]].abs().max() < 1e-6 and abs(facing_yaw(canonical[0])) < 1e-6
    assert canonical[..., 1].min().abs() < 1e-6


def test_features_do_not_depend_on_where_the_clip_stands_or_faces():
    # In float64, so that the rotations of short bones do not magnify float32 rounding.
    joints = random_motion(seed=3).double()
    moved = rotate_y(joints, torch.tensor(2.5, dtype=torch.float64)) + torch.tensor([3.0, 0.4, -7.0]).double()
    assert (extract_features(moved) - extract_features(joints)).abs().max() < 1e-9


def test_known_values_walking_sideways_and_turning_left():
    # The rest pose facing +X (yaw pi/2), sliding along +X at 1.2 m/s: after canonicalisation it
    # faces +Z and moves along +Z.
    frames, speed, fps = 21, 1.2, 20
    facing_x = rotate_y(rest_pose(), torch.tensor(math.pi / 2))
    step = torch.tensor([speed / fps, 0.0, 0.0])
    features = extract_features(facing_x + torch.arange(frames)[:, None, None] * step)
    assert torch.allclose(features[:, ROOT_YAW_VELOCITY], torch.zeros(frames - 1, 1), atol=1e-6)
    assert torch.allclose(features[:, ROOT_LINEAR_VELOCITY], torch.tensor([0.0, speed / fps]).expand(20, 2), atol=1e-6)
    assert torch.allclose(features[:, ROOT_HEIGHT], torch.full((20, 1), 0.92), atol=1e-6)  # 0.95 - 0.03 floor
    ric = (rest_pose()[1:] - torch.tensor([0, 0.03, 0])).flatten()  # the rest pose, floor at the toes
    assert torch.allclose(features[:, RIC], ric.expand(20, 63), atol=1e-6)
    velocity = torch.tensor([0.0, 0.0, speed / fps]).repeat(22).expand(20, 66)
    assert torch.allclose(features[:, LOCAL_VELOCITY], velocity, atol=1e-6)
    # Turning left in place by 0.1 rad a frame: HumanML3D stores minus half the yaw step.
    turning = rotate_y(rest_pose(), 0.1 * torch.arange(frames)[:, None])
    features = extract_features(turning)
    assert torch.allclose(features[:, 0], torch.full((20,), -0.05), atol=1e-6)
    yaw, root = recover_root(features)
    assert torch.allclose(yaw, 0.1 * torch.arange(20.0), atol=1e-5) and root[:, [0, 2]].abs().max() < 1e-6


def test_rotation_block_chains_back_to_the_bone_directions():
    joints = canonicalise(random_motion(seed=4))
    directions = bone_directions(extract_features(joints))
    bones = torch.nn.functional.normalize(joints[:-1, 1:] - joints[:-1, list(PARENTS[1:])], dim=-1)
    assert (directions - bones).abs().max() < 1e-4
    # The rest pose has identity rotations (6D: first two columns of the identity), at any heading.
    rest = extract_features(rotate_y(rest_pose(), torch.tensor([0.0, 0.0, 1.0])[:, None]))
    identity_6d = torch.tensor([1.0, 0, 0, 0, 1, 0]).repeat(21)
    assert torch.allclose(rest[:, ROTATIONS], identity_6d.expand(2, 126), atol=1e-6)
    matrices = axis_angle_to_matrix(torch.randn(10, 3, generator=torch.Generator().manual_seed(0)))
    assert torch.allclose(rotation_6d_to_matrix(matrix_to_rotation_6d(matrices)), matrices, atol=1e-6)


def test_foot_contacts_need_a_slow_and_low_foot():
    standing = rest_pose().expand(5, NUM_JOINTS, 3).clone()
    assert torch.equal(extract_features(standing)[:, FOOT_CONTACTS], torch.ones(4, 4))
    lifted = standing.clone()
    lifted[:, [7, 10], 1] += 0.3  # left ankle and foot held 30 cm up: slow but high
    lifted[:, 8, 0] += 0.1 * torch.arange(5)  # right ankle sliding at 2 m/s: low but fast
    assert torch.equal(extract_features(lifted)[0, FOOT_CONTACTS], torch.tensor([0.0, 0.0, 0.0, 1.0]))


def test_batched_extraction_and_recovery_match_per_clip():
    clips = torch.stack([random_motion(seed=5), random_motion(seed=6)])
    features = extract_features(clips)
    assert torch.allclose(features[1], extract_features(clips[1]), atol=1e-6)
    assert torch.allclose(recover_joints(features[None])[0, 0], recover_joints(features[0]), atol=1e-6)


def test_feature_statistics_pool_each_block():
    features = extract_features(torch.stack([random_motion(seed=s) for s in range(3)])).flatten(0, 1)
    mean, std = normalisation_statistics(features)
    assert torch.allclose(mean, features.mean(0), atol=1e-5)
    for block in BLOCKS.values():
        assert torch.allclose(std[block], features.std(0)[block].mean().expand(block.stop - block.start), rtol=1e-4)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"features: got shape \(10, 251\); expected \[\.\.\., F, 263\]"):
        check_features(torch.zeros(10, 251))
    with pytest.raises(ValueError, match="motion: 1 NaN or infinite values"):
        check_features(torch.zeros(3, 263).index_fill_(1, torch.tensor([7]), math.nan)[:1], name="motion")
    with pytest.raises(ValueError, match="expected a float tensor"):
        check_features(torch.zeros(3, 263, dtype=torch.long))
    with pytest.raises(ValueError, match=r"joints: got shape \(10, 21, 3\); expected \[\.\.\., T, 22, 3\]"):
        extract_features(torch.zeros(10, 21, 3))
    with pytest.raises(ValueError, match="joints: got 1 frames; expected at least 2"):
        extract_features(rest_pose()[None])
    with pytest.raises(ValueError, match="features: got shape"):
        recover_joints(torch.zeros(5, 264))
