import math

import pytest
import torch

from mgm.data.humanml3d import collate_motions, denormalise
from mgm.data.motion_features import (
    FEATURE_DIM,
    FPS,
    canonicalise,
    extract_features,
    normalisation_statistics,
    recover_joints,
)
from mgm.data.motions import (
    CLASSES,
    DIRECTIONS,
    SIDES,
    MotionsDataset,
    classify_direction,
    classify_motion,
    hand_height,
    make_motions,
    motion_parameters,
    root_displacement,
    root_height_drop,
    yaw_change,
)
from mgm.data.skeleton import FOOT_JOINTS, JOINT_INDEX, rest_pose


@pytest.fixture(scope="module")
def held_out():
    """20 clips of each action, 2 to 6 s, from a seed the thresholds were not tuned on."""
    return make_motions(140, seed=2024, labels=torch.arange(len(CLASSES)).repeat(20))


def test_checker_classifies_held_out_clips_from_their_features(held_out):
    predicted = classify_motion(held_out.features, held_out.lengths)
    accuracy = (predicted == held_out.labels).float().mean().item()
    assert accuracy >= 0.95, f"accuracy {accuracy:.3f}"
    for label in range(len(CLASSES)):  # and no action is left behind
        assert (predicted[held_out.labels == label] == label).float().mean() >= 0.9, CLASSES[label]


def test_checker_tolerates_noise_in_the_features(held_out):
    # Generated features are never exact: 5% of each block's spread, independently per frame and dim.
    mask = torch.arange(held_out.features.shape[1]) < held_out.lengths[:, None]
    _, std = normalisation_statistics(held_out.features[mask])
    noise = 0.05 * std * torch.randn(held_out.features.shape, generator=torch.Generator().manual_seed(0))
    predicted = classify_motion(held_out.features + noise, held_out.lengths)
    assert (predicted == held_out.labels).float().mean() >= 0.95


def test_checker_reads_the_direction_of_travel_and_turning(held_out):
    directions = classify_direction(held_out.features, held_out.lengths)
    applies = held_out.params.direction >= 0  # walks, runs, forward jumps, turns
    assert applies.sum() >= 60
    assert (directions[applies] == held_out.params.direction[applies]).float().mean() >= 0.95
    assert (directions[~applies] == -1).float().mean() >= 0.95


def test_checker_agrees_on_joints_and_features(held_out):
    first = held_out.joints[:14, : int(held_out.num_frames[:14].min())]
    assert torch.equal(classify_motion(first), classify_motion(extract_features(first)))
    standing = rest_pose().expand(41, 22, 3)  # no action at all
    assert classify_motion(standing).item() == -1 and classify_direction(standing).item() == -1


def test_features_round_trip_to_the_canonicalised_joints(held_out):
    worst = 0.0
    for i in range(0, 140, 5):
        n = int(held_out.num_frames[i])
        recovered = recover_joints(held_out.features[i, : n - 1])
        worst = max(worst, (recovered - canonicalise(held_out.joints[i, :n])[:-1]).abs().max().item())
    assert worst < 1e-4


def test_same_seed_same_clips_and_shapes():
    a, b = make_motions(6, seed=3), make_motions(6, seed=3)
    assert torch.equal(a.joints, b.joints) and torch.equal(a.features, b.features) and a.captions == b.captions
    assert not torch.equal(make_motions(6, seed=4).joints[:, :40], a.joints[:, :40])
    assert torch.equal(a.labels, motion_parameters(6, seed=3).labels)
    assert ((a.params.seconds >= 2) & (a.params.seconds <= 6)).all()
    assert torch.equal(a.num_frames, (a.params.seconds * FPS).round().long() + 1)
    assert torch.equal(a.lengths, a.num_frames - 1) and a.features.shape[-1] == FEATURE_DIM
    for i, n in enumerate(a.num_frames.tolist()):
        assert (a.joints[i, n:] == 0).all() and (a.features[i, n - 1 :] == 0).all()
    fixed = make_motions(3, seed=0, labels=["sit", "kick", "run"], seconds=2.5)
    assert fixed.labels.tolist() == [5, 6, 1] and fixed.num_frames.tolist() == [51, 51, 51]


def test_motions_are_plausible(held_out):
    for i in range(len(held_out.labels)):
        n, label = int(held_out.num_frames[i]), CLASSES[held_out.labels[i]]
        joints = canonicalise(held_out.joints[i, :n])
        lowest_foot = joints[:, list(FOOT_JOINTS), 1].amin(-1)
        # One foot on the floor, but for a run's short flights (4 cm) and a jump's (20-30 cm).
        on_floor = (lowest_foot < (0.05 if label == "run" else 0.01)).float().mean()
        assert on_floor >= (0.5 if label == "jump" else 1.0), (label, on_floor)
        assert joints[..., 1].max() < 2.1 and joints[:, JOINT_INDEX["head"], 1].min() > 0.8  # a deep squat: 0.87 m
        if label in ("walk", "run"):  # arms swing: each wrist moves back and forth relative to the pelvis
            relative = joints[:, [JOINT_INDEX["left_wrist"], JOINT_INDEX["right_wrist"]]] - joints[:, :1]
            swing = relative[..., 2].amax(0) - relative[..., 2].amin(0)
            assert (swing > 0.1).all(), swing


def test_measurements_match_the_parameters(held_out):
    p = held_out.params
    for i in range(len(p.labels)):
        joints = held_out.joints[i, : int(held_out.num_frames[i])]
        label = CLASSES[p.labels[i]]
        direction, speed = root_displacement(joints)
        if label in ("walk", "run"):
            assert speed.item() == pytest.approx(p.speed[i].item(), rel=1e-3)
            expected = {"forward": 0.0, "backward": math.pi, "left": math.pi / 2, "right": -math.pi / 2}
            error = (direction - expected[DIRECTIONS[p.direction[i]]] + math.pi) % (2 * math.pi) - math.pi
            assert abs(error) < 0.01
        if label == "turn":
            assert yaw_change(joints).item() == pytest.approx(p.turn_angle[i].item(), abs=0.02)
        if label == "sit":
            drop = 0.8 * (1 - math.cos(p.squat_angle[i].item()))  # hip over ankle, thighs and shins 0.4 m
            assert root_height_drop(joints).item() == pytest.approx(drop, abs=0.01)
        if label == "wave":
            hand = hand_height(joints)[-1, p.side[i]]
            assert hand > 0.1 and hand_height(joints)[-1, 1 - p.side[i]] < -0.5


def test_captions_name_the_action_direction_and_side(held_out):
    verbs = {"walk": ("walk", "steps"), "run": ("run", "jogging"), "jump": ("jump", "leap"), "wave": ("wave",),
             "turn": ("turn",), "sit": ("squat", "crouch"), "kick": ("kick",)}  # fmt: skip
    p = held_out.params
    assert len(set(held_out.captions)) >= 50
    for i, caption in enumerate(held_out.captions):
        label = CLASSES[p.labels[i]]
        assert any(verb in caption for verb in verbs[label]), caption
        if label in ("walk", "run", "turn"):
            direction = DIRECTIONS[p.direction[i]]
            assert direction in caption or (direction == "forward" and "ahead" in caption), caption
        if label in ("wave", "kick"):
            assert SIDES[p.side[i]] in caption, caption


def test_dataset_items_and_batches():
    dataset = MotionsDataset(num=8, seed=0)
    item = dataset[3]
    assert set(item) == {"motion", "length", "caption", "label"}
    assert item["motion"].shape == (item["length"], FEATURE_DIM) and item["caption"] == dataset.captions[3]
    features = denormalise(item["motion"], dataset.mean, dataset.std)
    assert classify_motion(features).item() == item["label"]
    everything = torch.cat([dataset[i]["motion"] for i in range(len(dataset))])
    assert everything.mean(0).abs().max() < 1e-4  # normalised by its own statistics
    batch = collate_motions([dataset[i] for i in range(4)])
    assert batch["motion"].shape == (4, int(batch["length"].max()), FEATURE_DIM)
    assert torch.equal(batch["label"], dataset.labels[:4])
    same_stats = MotionsDataset(num=2, seed=1, mean=dataset.mean, std=dataset.std)
    assert same_stats.mean is dataset.mean
    with pytest.raises(ValueError, match="mean, std: got only one of them"):
        MotionsDataset(num=2, mean=dataset.mean)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="labels: got unknown action 'dance'"):
        make_motions(2, labels=["walk", "dance"])
    with pytest.raises(ValueError, match=r"labels: got class id 7; expected ids in \[0, 7\)"):
        make_motions(2, labels=torch.tensor([0, 7]))
    with pytest.raises(ValueError, match="expected 3 class ids or names"):
        make_motions(3, labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"seconds=1.0: expected a duration from 2.0 to 9.8 s"):
        make_motions(2, seconds=1.0)
    with pytest.raises(ValueError, match="num=-1"):
        make_motions(-1)
    with pytest.raises(ValueError, match=r"motion: got shape \(10, 22, 2\)"):
        classify_motion(torch.zeros(10, 22, 2))
    with pytest.raises(ValueError, match=r"lengths: got \[60, 1\]; expected 2 frame counts from 2 to 60"):
        classify_motion(torch.zeros(2, 60, 263), lengths=torch.tensor([60, 1]))
