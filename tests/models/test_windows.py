"""Grid-window attention (mgm.models.windows) and its MaskedTransformer option."""

import pytest
import torch

from mgm.models import Condition, MaskedTransformer
from mgm.models.windows import WindowLayout, check_windows, window_ids

SHAPE = (4, 2, 4)  # a 3-D grid of 32 positions


def windowed_model(num_classes=3, windows=((1, 2, 4), (4, 1, 2)), rotary=False):
    torch.manual_seed(0)
    return MaskedTransformer([8], SHAPE, dim=48, depth=2, num_heads=2, num_classes=num_classes,
                             windows=[list(w) for w in windows], rotary=rotary).eval()  # fmt: skip


def close(a, b):
    scale = b.abs().max()
    torch.testing.assert_close(a, b, atol=1e-5 * float(scale), rtol=1e-5)


def test_window_ids_tile_the_grid_in_equal_boxes():
    ids = window_ids((4, 2, 4), (2, 1, 2))
    assert ids.shape == (32,) and ids.bincount().tolist() == [4] * 8
    grid = ids.view(4, 2, 4)
    assert grid[0, 0, 0] == grid[1, 0, 1] and grid[0, 0, 0] != grid[2, 0, 0] and grid[0, 0, 0] != grid[0, 1, 0]


@pytest.mark.parametrize("prefix", [0, 1])
def test_gathered_windows_equal_the_masked_full_attention(prefix):
    layout = WindowLayout(SHAPE, (2, 2, 2), prefix)
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 3, prefix + 32, 8) for _ in range(3))
    mask = layout.mask(torch.arange(prefix + 32))
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    close(layout.attend(q, k, v), expected)
    if prefix:  # the prefix row sees every row, and every row sees it
        assert bool(mask[0].all()) and bool(mask[:, 0].all())
    assert int(mask[prefix:, prefix:].sum()) == 32 * 8


@torch.no_grad()
def test_a_position_sees_only_its_window_and_the_class_token():
    model = windowed_model(windows=((1, 2, 4),), num_classes=0)  # each frame attends within itself only
    codes = torch.randint(0, 8, (1, 1, 32))
    changed = codes.clone()
    changed[0, 0, 31] = (codes[0, 0, 31] + 1) % 8  # a token of the last frame
    diff = (model(codes) - model(changed))[0, 0].abs().amax(-1)  # (N,)
    assert float(diff[:24].max()) == 0 and float(diff[24:].max()) > 0
    full = windowed_model(windows=((1, 2, 4), (4, 2, 4)), num_classes=0)  # the second block is global
    diff = (full(codes) - full(changed))[0, 0].abs().amax(-1)
    assert float(diff[:24].min()) > 0


@pytest.mark.parametrize("rotary", [False, True])
def test_cached_and_partial_passes_equal_the_full_forward(rotary):
    model = windowed_model(rotary=rotary)
    codes = torch.randint(0, 9, (2, 1, 32))
    cond = Condition(labels=torch.tensor([0, 2]))
    full = model(codes, cond)
    logits, cache = model.forward_cached(codes, cond)
    close(logits, full)
    positions = torch.tensor([[3, 17, 30], [0, 8, 31]])
    partial = model.forward_partial(codes.gather(2, positions[:, None]), positions, cond, cache)
    close(partial, full.gather(2, positions[:, None, :, None].expand(-1, 1, -1, full.shape[-1])))


def test_windows_are_saved_and_loaded(tmp_path):
    model = windowed_model()
    model.save_pretrained(tmp_path / "m")
    loaded = MaskedTransformer.from_pretrained(tmp_path / "m")
    assert loaded.config["windows"] == [[1, 2, 4], [4, 1, 2]]
    codes = torch.randint(0, 8, (2, 1, 32))
    close(loaded(codes), model(codes))


def test_a_windowed_one_dimensional_model_takes_the_whole_grid_only():
    model = MaskedTransformer([8], (8,), dim=16, depth=1, num_heads=2, windows=[[4]])
    assert model.accepts(1, 8) and not model.accepts(1, 4)
    with pytest.raises(ValueError, match=r"\[B, 1, 8\]"):
        model(torch.zeros(1, 1, 4, dtype=torch.long))


@pytest.mark.parametrize("windows", [[[3, 2, 4]], [[1, 2]], [], "full", [[0, 2, 4]], [[1, 2, 4.0]]])
def test_windows_that_do_not_tile_the_grid_are_named(windows):
    with pytest.raises(ValueError, match="windows"):
        check_windows(windows, SHAPE)
