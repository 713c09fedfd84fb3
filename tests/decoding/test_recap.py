import pytest
import torch

from mgm.decoding import maskgit_decode, recap_decode
from mgm.models import Condition, MaskedTransformer


def _codes(model, batch, seed=0, masked=0.5):
    g = torch.Generator().manual_seed(seed)
    spec = model.spec
    codes = torch.stack([torch.randint(s, (batch, spec.num_positions), generator=g) for s in spec.codebook_sizes], 1)
    return torch.where(torch.rand(codes.shape, generator=g) < masked, spec.mask_tensor(), codes)


def _conditions(model, batch):
    labels = torch.arange(batch) % model.num_classes
    if model.context_proj is None:
        return Condition(labels=labels)
    context = torch.randn(batch, 3, model.context_proj.in_features, generator=torch.Generator().manual_seed(1))
    return Condition(labels=labels, context=context, context_mask=torch.tensor([[True, True, False]] * batch))


@pytest.mark.parametrize("which", ["tiny_model", "context_model"])
@pytest.mark.parametrize("guided", [False, True])
def test_cheap_pass_over_all_positions_equals_the_full_pass(which, guided, request):
    model = request.getfixturevalue(which)
    codes = _codes(model, 3)
    cond = _conditions(model, 3)
    if guided:  # conditional and null rows side by side, as recap runs them
        codes, cond = torch.cat([codes, codes]), Condition.cat([cond, cond.null()])
    logits, cache = model.forward_cached(codes, cond)
    torch.testing.assert_close(logits, model(codes, cond))
    positions = torch.arange(model.spec.num_positions).expand(codes.shape[0], -1)
    torch.testing.assert_close(model.forward_partial(codes, positions, cond, cache), logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("context_dim", [None, 5])
def test_cheap_pass_is_the_full_pass_with_cached_keys_values_elsewhere(context_dim):
    # Two layers: with one, the other positions' keys/values depend on their own tokens only and
    # the cache is never stale.
    torch.manual_seed(0)
    model = MaskedTransformer([8, 6], [4, 4], dim=32, depth=2, num_heads=2, num_classes=3, context_dim=context_dim)
    model.eval()
    cond = _conditions(model, 2)
    before = _codes(model, 2, seed=0)
    _, cache = model.forward_cached(before, cond)
    after = before.clone()
    positions = torch.tensor([[1, 4, 5], [0, 2, 5]])
    rows = torch.arange(2)[:, None]
    for k, size in enumerate(model.spec.codebook_sizes):  # new tokens at the query positions only
        after[rows, k, positions] = torch.randint(size, positions.shape, generator=torch.Generator().manual_seed(k))
    cheap = model.forward_partial(after.gather(2, positions[:, None].expand(-1, after.shape[1], -1)), positions,
                                  cond, cache)  # fmt: skip

    # Reference, written out: every position runs, but only the query positions' keys/values are fresh.
    x, (context, context_mask) = model._embed(after, cond)
    index = positions + model.num_prefix
    for block, key, value in zip(model.blocks, cache.keys, cache.values):
        h = block.norm1(x)
        fresh_k, fresh_v = block.attn.keys_values(h)
        k, v = key.clone(), value.clone()
        for b in range(2):
            k[b, :, index[b]] = fresh_k[b, :, index[b]]
            v[b, :, index[b]] = fresh_v[b, :, index[b]]
        x = block._cross_and_mlp(x + block.attn(h, keys_values=(k, v)), context, context_mask)
    reference = model._logits(x)  # (B, K, N, V)
    expected = torch.stack([reference[b][:, positions[b]] for b in range(2)])
    torch.testing.assert_close(cheap, expected, atol=1e-5, rtol=1e-5)
    # And it differs from a full pass on the new tokens: the other positions really are stale.
    full = model(after, cond)
    assert not torch.allclose(cheap, torch.stack([full[b][:, positions[b]] for b in range(2)]), atol=1e-4)


@pytest.mark.parametrize("guidance_scale", [0.0, 2.0])
def test_no_cheap_steps_is_maskgit_bit_for_bit(tiny_model, guidance_scale):
    cond = Condition(labels=torch.tensor([0, 1, 2]))
    common = dict(batch_size=3, num_steps=6, cond=cond, guidance_scale=guidance_scale)
    ref = maskgit_decode(tiny_model, tiny_model.spec, generator=torch.Generator().manual_seed(3), **common)
    for plan in ({"full_first": 6}, {"full_first": 1, "cheap_per_full": 0}):
        res = recap_decode(tiny_model, tiny_model.spec, generator=torch.Generator().manual_seed(3), **plan, **common)
        assert torch.equal(res.codes, ref.codes)
        assert res.compute == res.nfe == 6 and all(r.full for r in res.trace)


def test_cheap_steps_reveal_everything_and_cost_less(tiny_model):
    res = recap_decode(tiny_model, tiny_model.spec, batch_size=4, num_steps=8, full_first=2, cheap_per_full=2,
                       cond=Condition(labels=torch.tensor([0, 1, 2, 0])), guidance_scale=1.5,
                       generator=torch.Generator().manual_seed(0))  # fmt: skip
    tiny_model.spec.check_codes(res.codes)
    assert [r.full for r in res.trace] == [True, True, True, False, False, True, False, False]
    revealed = torch.stack([r.revealed for r in res.trace]).sum(0)
    assert revealed.tolist() == [32] * 4, "each token revealed exactly once"
    assert res.nfe == 8 and res.compute < 8
    for record in res.trace:
        assert record.queries == 16 if record.full else 1 <= record.queries < 16
    assert res.compute == pytest.approx(sum(r.queries for r in res.trace) / 16)


def test_editing_keeps_tokens_outside_editable(tiny_model):
    spec = tiny_model.spec
    g = torch.Generator().manual_seed(2)
    init = torch.stack([torch.randint(s, (3, 16), generator=g) for s in spec.codebook_sizes], dim=1)
    editable = torch.rand(3, 2, 16, generator=g) < 0.4
    res = recap_decode(tiny_model, spec, batch_size=None, num_steps=6, init_codes=init, editable=editable,
                       full_first=1, cheap_per_full=2, generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert torch.equal(res.codes[~editable], init[~editable])
    spec.check_codes(res.codes)
    revealed = torch.stack([r.revealed for r in res.trace]).sum(0)
    assert revealed.tolist() == editable.flatten(1).sum(1).tolist()


def test_bad_arguments_fail_before_any_model_call(tiny_model):
    with pytest.raises(ValueError, match="full_first=0"):
        recap_decode(tiny_model, tiny_model.spec, batch_size=2, full_first=0)
    with pytest.raises(ValueError, match="unknown option.*'reuse'"):
        recap_decode(tiny_model, tiny_model.spec, batch_size=2, reuse=None, full_first=2)
    with pytest.raises(ValueError, match="forward_cached"):
        recap_decode(lambda codes, cond: None, tiny_model.spec, batch_size=2)
