import pytest
import torch

from mgm.models import Condition, MaskedTransformer


def test_logits_shape_and_ruled_out_entries(tiny_model):
    codes = tiny_model.spec.full_mask(3)
    logits = tiny_model(codes, Condition(labels=torch.tensor([0, 1, 2])))
    assert logits.shape == (3, 2, 16, 8)
    assert bool(torch.isneginf(logits[:, 1, :, 6:]).all()) and bool(torch.isfinite(logits[:, 0]).all())


def test_bidirectional_every_position_sees_every_other(tiny_model):
    codes = torch.zeros(1, 2, 16, dtype=torch.long)
    changed = codes.clone()
    changed[0, 0, 15] = 5
    diff = (tiny_model(codes) - tiny_model(changed))[0, 0, 0].abs().max()
    assert diff > 0  # position 0 depends on the last position


def test_null_condition_equals_no_condition(context_model):
    codes = torch.randint(0, 8, (2, 1, 6))
    cond = Condition(labels=torch.tensor([0, 1]), context=torch.randn(2, 4, 5))
    torch.testing.assert_close(context_model(codes, cond.null()), context_model(codes, None))
    assert not torch.allclose(context_model(codes, cond), context_model(codes, None))


def test_context_padding_is_ignored(context_model):
    codes = torch.randint(0, 8, (1, 1, 6))
    context = torch.randn(1, 4, 5)
    mask = torch.tensor([[True, True, False, False]])
    other = context.clone()
    other[:, 2:] = 100.0  # padded entries change, the output must not
    a = context_model(codes, Condition(labels=torch.tensor([1]), context=context, context_mask=mask))
    b = context_model(codes, Condition(labels=torch.tensor([1]), context=other, context_mask=mask))
    torch.testing.assert_close(a, b)


def test_a_row_without_context_tokens_reads_the_null_context_and_keeps_its_label(context_model):
    codes = torch.randint(0, 8, (2, 1, 6))
    labels = torch.tensor([0, 1])
    mask = torch.tensor([[True, True, True], [False, False, False]])  # row 1: no caption
    out = context_model(codes, Condition(labels=labels, context=torch.randn(2, 3, 5), context_mask=mask))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[1], context_model(codes, Condition(labels=labels))[1])
    assert not torch.allclose(out[1], context_model(codes, None)[1])  # the label still counts


def test_partial_drop_only_nulls_those_rows(context_model):
    codes = torch.randint(0, 8, (2, 1, 6))
    cond = Condition(labels=torch.tensor([0, 1]), context=torch.randn(2, 3, 5))
    mixed = context_model(codes, cond.with_drop(torch.tensor([False, True])))
    torch.testing.assert_close(mixed[0], context_model(codes, cond)[0])
    torch.testing.assert_close(mixed[1], context_model(codes, None)[1])


def test_save_load_round_trip_gives_identical_logits(context_model, tmp_path):
    codes = torch.randint(0, 8, (2, 1, 6))
    cond = Condition(labels=torch.tensor([0, 1]), context=torch.randn(2, 3, 5))
    context_model.save_pretrained(tmp_path / "m")
    loaded = MaskedTransformer.from_pretrained(tmp_path / "m")
    assert loaded.config == context_model.config
    assert torch.equal(loaded(codes, cond), context_model(codes, cond))
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "manifest.json", "model.safetensors"]


def test_save_refuses_to_overwrite(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        tiny_model.save_pretrained(tmp_path)
    tiny_model.save_pretrained(tmp_path, overwrite=True)


def test_missing_and_corrupt_checkpoints(tiny_model, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        MaskedTransformer.from_pretrained(tmp_path / "nope")
    tiny_model.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not the file this folder was saved with"):
        MaskedTransformer.from_pretrained(tmp_path)
    (tmp_path / "manifest.json").unlink()  # a folder without a manifest (older mgm): the loader's own checks
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        MaskedTransformer.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        MaskedTransformer.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        MaskedTransformer.from_pretrained(tmp_path)


def test_condition_mismatches_are_named(tiny_model):
    codes = tiny_model.spec.full_mask(2)
    with pytest.raises(ValueError, match="context_dim=None"):
        tiny_model(codes, Condition(context=torch.randn(2, 3, 5)))
    with pytest.raises(ValueError, match="batch size 3"):
        tiny_model(codes, Condition(labels=torch.tensor([0, 1, 2])))
    with pytest.raises(ValueError, match=r"expected \[B, 2, 16\]"):
        tiny_model(torch.zeros(2, 1, 16, dtype=torch.long))
    with pytest.raises(ValueError, match="context_mask"):
        Condition(context=torch.randn(2, 3, 5), context_mask=torch.ones(2, 4, dtype=torch.bool))


def test_every_codebook_has_its_own_embedding_rows():
    # Three or more codebooks: each (codebook, code or mask id) pair must map to a distinct row.
    model = MaskedTransformer([4, 3, 5, 2], [2], dim=8, depth=1, num_heads=2)
    rows = [int(model.code_offsets[0, k, 0]) + c for k, size in enumerate([4, 3, 5, 2]) for c in range(size + 1)]
    assert sorted(rows) == list(range(model.token_emb.num_embeddings))


def test_rotary_scores_depend_only_on_the_grid_offset():
    from mgm.models.layers import grid_rotary_angles, rotate

    angles = grid_rotary_angles((5, 7), head_dim=16, num_prefix=1)
    assert angles.shape == (1 + 35, 8) and torch.equal(angles[0], torch.zeros(8))  # the prefix is not turned
    rotary = (angles.cos(), angles.sin())
    q, k = torch.randn(16), torch.randn(16)
    turned_q = rotate(q.expand(1, 1, 36, 16), rotary)[0, 0]
    turned_k = rotate(k.expand(1, 1, 36, 16), rotary)[0, 0]

    def score(a, b):  # grid (row, column) -> sequence index after the prefix
        return turned_q[1 + a[0] * 7 + a[1]] @ turned_k[1 + b[0] * 7 + b[1]]

    assert torch.allclose(score((0, 0), (1, 2)), score((3, 4), (4, 6)), atol=1e-5)
    assert torch.allclose(score((2, 5), (2, 1)), score((0, 6), (0, 2)), atol=1e-5)
    assert not torch.allclose(score((0, 0), (1, 2)), score((0, 0), (2, 1)), atol=1e-3)
    with pytest.raises(ValueError, match="head_dim=6"):
        grid_rotary_angles((4, 4), head_dim=6)


@pytest.mark.parametrize("shape, num_classes", [((4, 6), 3), ((10,), 0)])
def test_rotary_model_reuse_passes_match_the_full_pass(shape, num_classes):
    torch.manual_seed(0)
    model = MaskedTransformer([16, 16], shape, dim=32, depth=2, num_heads=2, num_classes=num_classes, rotary=True)
    model.eval()
    n = model.spec.num_positions
    codes = torch.randint(0, 16, (3, 2, n))
    cond = Condition(labels=torch.tensor([0, 1, 2])) if num_classes else None
    full = model(codes, cond)
    cached_logits, cache = model.forward_cached(codes, cond)
    assert torch.equal(cached_logits, full)
    positions = torch.stack([torch.randperm(n)[:4] for _ in range(3)])
    partial = model.forward_partial(
        torch.gather(codes, 2, positions[:, None].expand(-1, 2, -1)), positions, cond, cache
    )
    expected = torch.gather(full, 2, positions[:, None, :, None].expand(-1, 2, -1, full.shape[-1]))
    assert torch.allclose(partial, expected, atol=1e-5)
    plain = MaskedTransformer([16, 16], shape, dim=32, depth=2, num_heads=2, num_classes=num_classes).eval()
    plain.load_state_dict(model.state_dict())  # same weights, no rotary: the angles are not parameters
    assert not torch.allclose(plain(codes, cond), full, atol=1e-5)
    assert plain.config["rotary"] is False and model.config["rotary"] is True


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = MaskedTransformer([8], [3, 3], dim=16, depth=2, num_heads=2, num_classes=2)
    codes = torch.randint(8, (4, 1, 9))
    cond = Condition(labels=torch.tensor([0, 1, 0, 1]))

    def grads():
        model.zero_grad()
        saved = []
        hooks = torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t)
        with torch.enable_grad():  # whatever an earlier test left the global switch at
            with hooks:
                loss = model(codes, cond).square().mean()
            loss.backward()
        return [p.grad.clone() for p in model.parameters()], sum(saved)

    plain, kept_plain = grads()
    model.gradient_checkpointing = True
    checkpointed, kept_checkpointed = grads()
    assert kept_checkpointed < kept_plain / 2, "the blocks' activations are not kept"
    for a, b in zip(plain, checkpointed):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7 * float(a.abs().max()) + 1e-12)
