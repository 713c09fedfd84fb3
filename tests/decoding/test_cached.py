"""Cached masked decoding (dKV-Cache): the partial passes, their exactness where it must hold,
their cost, and the decoders that offer them."""

from __future__ import annotations

import contextlib

import pytest
import torch

from mgm.decoding import group_decode, maskgit_decode, recap_decode, threshold_decode
from mgm.decoding.cached import CachedPasses, query_counts, query_positions
from mgm.models import Condition, MaskedTransformer
from mgm.schedules import masked_counts
from tests.decoding.test_speed import _SyncGuardedModel


def _model(depth: int, codebooks=(16,), shape=(4, 4), rotary=False) -> MaskedTransformer:
    torch.manual_seed(0)
    return MaskedTransformer(list(codebooks), list(shape), dim=32, depth=depth, num_heads=2, num_classes=3,
                             rotary=rotary).eval()  # fmt: skip


def _gens(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


LABELS = Condition(labels=torch.tensor([0, 1, 2, 1]))


@pytest.mark.parametrize("kwargs", [
    {},
    {"guidance_scale": 2.0},
    {"guidance_scale": 3.0, "guidance_annealing": "linear"},
    {"order": "halton", "temperature": 0.7, "top_k": 5},
])  # fmt: skip
def test_refresh_1_is_maskgit_bit_for_bit(kwargs):
    model = _model(2)
    run = lambda **extra: maskgit_decode(  # noqa: E731
        model, model.spec, cond=LABELS, generator=_gens(range(4)), num_steps=6, **kwargs, **extra
    )
    plain, cached = run(), run(cached=True, refresh=1)
    assert torch.equal(plain.codes, cached.codes)
    assert cached.compute == plain.compute == 6


def test_refresh_1_is_the_uncached_decode_for_groups_and_threshold():
    model = _model(2, codebooks=(8, 6), shape=(7,))
    cond = Condition(labels=torch.tensor([0, 2]))
    for decode, options in ((group_decode, {"plan": "magnet", "steps": [4, 2]}), (threshold_decode, {"tau": 0.3})):
        common = dict(cond=cond, guidance_scale=1.5, **options)
        plain = decode(model, model.spec, generator=_gens([3, 4]), **common)
        cached = decode(model, model.spec, generator=_gens([3, 4]), cached=True, refresh=1, **common)
        assert torch.equal(plain.codes, cached.codes), decode.__name__


@pytest.mark.parametrize("rotary", [False, True])
@pytest.mark.parametrize("guided", [False, True])
@torch.inference_mode()
def test_one_block_model_partial_passes_are_exact(rotary, guided):
    """In a one-block model a position's keys/values depend on its own token only, so a cache whose
    slots were rewritten the step after each token changed holds exactly the fresh keys/values:
    every partial pass must give the full pass's logits at the positions still to decode. The
    same loop without the write-back (the ReCAP rule) must not, which shows the check bites."""
    model = _model(1, rotary=rotary)
    spec = model.spec
    g = torch.Generator().manual_seed(0)
    codes = spec.full_mask(4)
    cond = LABELS
    n, scale = spec.num_positions, (2.0 if guided else 0.0)
    masked_after = masked_counts(torch.full((4,), n), 6, "cosine")
    worst = {True: 0.0, False: 0.0}
    for update in (True, False):
        passes = CachedPasses(model, cond, guided=guided, refresh=100)
        passes.start(spec.is_masked(codes), masked_after)
        state = codes.clone()
        for step in range(6):
            candidates = spec.is_masked(state)
            if update or step == 0:
                logits = passes(state, candidates, scale)
            else:
                logits = _stale(passes, state, candidates, scale)
            full = model(state, cond).float()
            if guided:
                null = model(state, cond.null()).float()
                full = full + scale * (full - null)
            diff = (logits - full).abs()[candidates.unsqueeze(-1).expand_as(full)]
            worst[update] = max(worst[update], float(diff.max()) / float(full.abs().max()))
            # Reveal a random share of the candidates (what a decoder would do).
            rank = torch.rand(4, n, generator=g).masked_fill(~candidates[:, 0], 2.0).argsort(1).argsort(1)
            reveal = rank < (candidates[:, 0].sum(1) - masked_after[:, step])[:, None]
            state = torch.where(reveal[:, None], torch.randint(16, state.shape, generator=g), state)
    assert worst[True] < 1e-5, worst
    assert worst[False] > 1e-3, "without the write-back the cache goes stale"


def _stale(passes, codes, candidates, scale):
    """A partial pass over the same queries without writing the fresh keys/values back."""
    count = passes.counts[passes.step]
    logits = passes._partial(codes, query_positions(passes.previous, count), scale, update=False)
    passes._advance(candidates)
    return logits


def test_query_counts_are_the_positions_masked_at_the_previous_input():
    model = _model(2)
    res = maskgit_decode(model, model.spec, batch_size=3, num_steps=8, cached=True, refresh=4,
                         generator=torch.Generator().manual_seed(0))  # fmt: skip
    n = model.spec.num_positions
    after = masked_counts(torch.full((3,), n), 8, "cosine")[0].tolist()
    before = [n] + after[:-1]  # masked at each step's input
    expected = [n if t % 4 == 0 else before[t - 1] for t in range(8)]
    assert [r.queries for r in res.trace] == expected
    assert res.compute == pytest.approx(sum(expected) / n)
    assert res.compute < res.nfe


def test_query_counts_bound_several_codebooks_by_the_grid():
    candidates = torch.ones(2, 3, 5, dtype=torch.bool)
    masked_after = masked_counts(candidates.flatten(1).sum(1), 4, "cosine")
    counts = query_counts(candidates, masked_after)
    assert counts[0] == 5 and all(1 <= c <= 5 for c in counts)


def test_query_positions_pad_by_repeating_the_first_and_bucket():
    tokens = torch.zeros(2, 1, 16, dtype=torch.bool)
    tokens[0, 0, [3, 7, 9]] = True
    tokens[1, 0, [5]] = True
    assert query_positions(tokens, 3).tolist() == [[3, 7, 9], [5, 5, 5]]
    assert query_positions(tokens, bucket=False).shape == (2, 3)
    assert query_positions(tokens).shape == (2, 4), "rounded up to a multiple of N / 8"


@pytest.mark.parametrize("decoder", ["maskgit", "recap", "group", "threshold", "threshold_no_exit"])
def test_cached_decoders_keep_the_contract(decoder):
    """Complete codes, given tokens kept, the same seed the same output, a sample independent of
    its batch, guidance on: for every decoder that offers ``cached``."""
    model = _model(2, codebooks=(8, 6), shape=(7,)) if decoder == "group" else _model(2)
    spec = model.spec
    decode, options = {
        "maskgit": (maskgit_decode, {"num_steps": 8}),
        "recap": (recap_decode, {"num_steps": 8, "full_first": 2, "cheap_per_full": 1}),
        "group": (group_decode, {"plan": "soundstorm", "steps": [4, 3]}),
        "threshold": (threshold_decode, {"tau": 0.5, "max_steps": 8}),
        "threshold_no_exit": (threshold_decode, {"tau": 0.5, "max_steps": 8, "early_exit": False}),
    }[decoder]
    options = {**options, "cached": True, "refresh": 3, "guidance_scale": 1.5}
    g = torch.Generator().manual_seed(1)
    init = torch.stack([torch.randint(size, (4, spec.num_positions), generator=g) for size in spec.codebook_sizes], 1)
    editable = torch.rand(init.shape, generator=g) < 0.6
    run = lambda rows: decode(  # noqa: E731
        model, spec, init_codes=init[rows], editable=editable[rows], cond=LABELS.select(rows),
        generator=_gens(range(4)[rows]), **options,
    )  # fmt: skip
    whole = run(slice(0, 4))
    assert not spec.is_masked(whole.codes).any()
    assert torch.equal(whole.codes[~editable], init[~editable])
    assert torch.equal(run(slice(0, 4)).codes, whole.codes)
    parts = torch.cat([run(slice(0, 1)).codes, run(slice(1, 4)).codes])
    assert torch.equal(parts, whole.codes), "sample i depends only on its own generator"
    assert whole.compute < whole.nfe


def test_cached_decoding_stays_close_to_maskgit():
    """Statistical closeness on a two-block model: per-position token agreement with the uncached
    decode from the same seeds (the same noise) at least 0.8 over 64 samples with refresh 3 (a
    cache of random keys would agree about 1/16), and the cache is fresh after every refresh."""
    model = _model(2)
    kwargs = dict(batch_size=64, num_steps=8, temperature=0.0, choice_temperature=0.0)
    plain = maskgit_decode(model, model.spec, generator=torch.Generator().manual_seed(0), **kwargs)
    cached = maskgit_decode(model, model.spec, generator=torch.Generator().manual_seed(0), cached=True, refresh=3,
                            **kwargs)  # fmt: skip
    agreement = (plain.codes == cached.codes).float().mean()
    assert agreement >= 0.8, float(agreement)


def test_cached_maskgit_loop_has_no_host_sync():
    model = _model(2)
    with contextlib.ExitStack() as stack:
        guarded = _SyncGuardedModel(model, stack)
        result = maskgit_decode(
            guarded, model.spec, batch_size=3, num_steps=8, cond=Condition(labels=torch.tensor([0, 1, 2])),
            guidance_scale=2.0, cached=True, refresh=4, generator=torch.Generator().manual_seed(0), device="cpu",
        )  # fmt: skip
        assert guarded.armed
    assert result.compute < 8
    model.spec.check_codes(result.codes)


def test_bad_cache_options_fail_before_work():
    model = _model(1)
    with pytest.raises(ValueError, match="cached='yes'"):
        maskgit_decode(model, model.spec, cached="yes")
    with pytest.raises(ValueError, match="refresh=0"):
        maskgit_decode(model, model.spec, cached=True, refresh=0)
    with pytest.raises(ValueError, match="forward_cached"):
        maskgit_decode(lambda codes, cond: model(codes, cond), model.spec, cached=True)


def test_pipeline_and_its_settings_take_the_cached_option(tiny_image_pipeline):
    pipe = tiny_image_pipeline
    codes = lambda **options: pipe.generate_codes(num=3, seed=5, **options)  # noqa: E731
    plain, cached = codes(), codes(cached=True, refresh=2)
    assert torch.equal(codes(cached=True, refresh=1).codes, plain.codes)
    assert cached.compute < plain.compute == 4
    pipe.settings = pipe.settings.update(cached=True, refresh=2)
    assert torch.equal(codes().codes, cached.codes), "saved as a pipeline default"
    with pytest.raises(ValueError, match="refresh=-1"):
        pipe.generate(num=1, refresh=-1)
