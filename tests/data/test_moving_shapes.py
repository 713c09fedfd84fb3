"""MovingShapes: the embedded video set and its exact checker."""

import pytest
import torch

from mgm.data.moving_shapes import (
    MAX_OBJECTS,
    MovingShapesDataset,
    MovingShapesFrames,
    bounce_path,
    check_clips,
    make_clips,
    object_radius,
)


@pytest.fixture(scope="module")
def made():
    return make_clips(96, seed=3)


def test_clips_are_deterministic_labelled_and_in_range(made):
    again = make_clips(96, seed=3)
    assert torch.equal(again.clips, made.clips) and torch.equal(again.labels, made.labels)
    assert made.clips.shape == (96, 16, 3, 32, 32)
    assert float(made.clips.min()) >= 0 and float(made.clips.max()) <= 1
    assert not torch.equal(make_clips(4, seed=4).clips, made.clips[:4])
    counts = made.num_objects.bincount(minlength=MAX_OBJECTS + 1)
    assert counts[0] == 0 and bool((counts[1:] > 0).all())  # one to three objects, each count occurs


def test_objects_move_at_constant_velocity_and_bounce(made):
    r, s = object_radius(32), 32
    centres = made.centres[made.colours >= 0]  # (objects, T, 2)
    assert bool((centres >= r).all()) and bool((centres <= s - 1 - r).all())
    steps = centres.diff(dim=1).abs()
    assert bool((steps <= 2).all())
    moving = (steps.sum((1, 2)) > 0).float().mean()
    assert moving == 1  # no object stands still (velocity (0, 0) is excluded)


def test_bounce_path_reflects_at_the_walls():
    path = bounce_path(torch.tensor([7]), torch.tensor([2]), 6, 5, 10)
    assert path.tolist() == [[7, 9, 9, 7, 5, 7]]


def test_the_checker_scores_real_clips_at_100_percent(made):
    check = check_clips(made.clips, made.labels, tolerance=0, max_error=1e-3)
    assert bool(check.valid.all())
    assert torch.equal(check.num_objects, made.num_objects) and torch.equal(check.classes, made.labels)


def test_the_checker_catches_a_wrong_label_a_jump_and_a_changed_shape(made):
    clips, labels = made.clips[:8].clone(), made.labels[:8].clone()
    wrong_label = (labels + 1) % 10
    assert not bool(check_clips(clips, wrong_label).label_ok.any())
    jumped = clips.clone()
    jumped[:, 8:] = jumped[:, 8:].roll(5, dims=-1)  # every object jumps 5 px between frames 7 and 8
    assert not bool(check_clips(jumped, labels).valid.any())
    other = make_clips(8, seed=3, labels=(labels + 5) % 10)  # the same draws, another class from frame 8
    mixed = clips.clone()
    mixed[:, 8:] = other.clips[:, 8:]
    assert not bool(check_clips(mixed).classes_ok.any())
    frozen = clips[:, :1].expand_as(clips).contiguous()  # nothing moves: not a MovingShapes clip
    check = check_clips(frozen, labels)
    assert bool(check.classes_ok.all()) and not bool(check.motion_ok.any())


def test_noise_below_the_tolerances_keeps_clips_valid(made):
    g = torch.Generator().manual_seed(0)
    noisy = (made.clips[:16] + 0.02 * torch.randn(made.clips[:16].shape, generator=g)).clamp(0, 1)
    assert float(check_clips(noisy, made.labels[:16]).valid.float().mean()) == 1


def test_datasets_serve_clips_and_frames():
    clips = MovingShapesDataset(4, num_frames=8, seed=1)
    item = clips[2]
    assert item["videos"].shape == (8, 3, 32, 32) and item["labels"].shape == ()
    frames = MovingShapesFrames(4, num_frames=8, seed=1)
    assert len(frames) == 32
    assert torch.equal(frames[8 * 2 + 5]["images"], item["videos"][5]) and frames[21]["labels"] == item["labels"]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: check_clips(torch.zeros(2, 4, 1, 32, 32)), "clips"),
        (lambda: check_clips(torch.zeros(2, 4, 3, 32, 32), torch.zeros(3, dtype=torch.long)), "labels"),
        (lambda: check_clips(torch.zeros(1, 4, 3, 32, 32), tolerance=-1), "tolerance"),
        (lambda: check_clips(torch.zeros(1, 4, 3, 32, 32), max_error=0), "max_error"),
        (lambda: make_clips(2, num_frames=1), "num_frames"),
        (lambda: make_clips(2, labels=torch.tensor([0, 10])), "labels"),
    ],
)
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
