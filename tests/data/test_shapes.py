import torch

from mgm.data.shapes import CLASSES, make_shapes


def test_shapes_are_deterministic_labelled_rgb():
    a, la = make_shapes(50, 32, seed=3)
    b, lb = make_shapes(50, 32, seed=3)
    c, _ = make_shapes(50, 32, seed=4)
    assert torch.equal(a, b) and torch.equal(la, lb) and not torch.equal(a, c)
    assert a.shape == (50, 3, 32, 32) and a.dtype == torch.float32
    # make_shapes clamps to [0, 1], so a range check cannot fail; every image shows a shape instead.
    assert a.flatten(1).std(1).min() > 0.05  # 0.13 measured
    assert len(CLASSES) == 10 and set(make_shapes(500, 32, 0)[1].tolist()) == set(range(10))


def test_shapes_vary_in_colour_position_and_background():
    images, labels = make_shapes(200, 32, seed=0, labels=torch.zeros(200, dtype=torch.long))
    corners = images[:, :, 0, 0]  # background colour
    assert corners.std(0).min() > 0.1
    # Position: the foreground's centre of mass moves around.
    foreground = (images - images[:, :, :1, :1]).abs().sum(1) > 0.2
    ys = torch.arange(32.0)
    centre_y = (foreground.float().sum(2) * ys).sum(1) / foreground.float().sum((1, 2)).clamp_min(1)
    assert centre_y.std() > 2.0
