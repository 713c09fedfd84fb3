import itertools

import pytest
import torch

from mgm.decoding import ar_decode, sjd_decode
from mgm.decoding.guidance import guide
from mgm.decoding.sampling import token_distribution
from mgm.models import ARTransformer, Condition
from mgm.schedules.annealing import guidance_scale_at

START = 3  # the "previous token" of position 0


class MarkovTable:
    """A hand-made AR model on the DESIGN contract: token i's logits depend on i, token i - 1 and
    the label (row 2 = the null label). Its exact joint distribution is a product of table rows.
    With a cache it keeps the token history in ``cache.hidden`` ([B, 1 + n, 1], row 0 the prefix)."""

    vocab_size, max_length, num_classes = 3, 4, 2

    def __init__(self, seed=0, row_cache=False):
        self.table = torch.randn(3, 4, 4, 3, generator=torch.Generator().manual_seed(seed)) * 1.5
        self.row_cache = row_cache

    def __call__(self, tokens, cond=None, cache=None):
        b, m = tokens.shape
        labels = torch.full((b,), 2)
        if cond is not None and cond.labels is not None:
            labels = torch.where(cond.dropped(b, tokens.device), 2, cond.labels)
        if cache is not None and cache.lengths is not None:
            return self._rows(tokens, labels, cache)
        if cache is None:
            history, start = tokens, 0
        else:
            past = torch.zeros(b, 1, 1) if cache.hidden is None else cache.hidden
            start = past.shape[1] - 1
            cache.hidden = torch.cat([past, tokens[..., None].float()], 1)
            cache.keys, cache.values, cache.num_prefix = [], [], 1
            history = cache.hidden[:, 1:, 0].long()
        rows = []
        for j in range(m + 1):
            position = start + j
            if position >= self.max_length:
                rows.append(torch.zeros(b, 3))
                continue
            prev = history[:, position - 1] if position > 0 else torch.full((b,), START)
            rows.append(self.table[labels, position, prev])
        return torch.stack(rows, 1)

    def _rows(self, tokens, labels, cache):
        """The per-row-lengths protocol: row r's tokens go to positions lengths[r] + j."""
        b, m = tokens.shape
        start = cache.lengths
        positions = start[:, None] + torch.arange(m)
        cache.hidden = cache.hidden.scatter(1, (positions + 1)[..., None], tokens[..., None].float())
        history = cache.hidden[:, 1:, 0].long()
        rows = []
        for j in range(m + 1):
            position = start + j
            prev = history.gather(1, (position - 1).clamp_min(0)[:, None])[:, 0]
            prev = torch.where(position > 0, prev, START)
            row = self.table[labels, position.clamp_max(self.max_length - 1), prev]
            rows.append(torch.where((position < self.max_length)[:, None], row, 0.0))
        cache.lengths = start + m
        return torch.stack(rows, 1)


def exact_joint(model, label, length, temperature=1.0, top_k=None, guidance_scale=0.0, guidance_annealing="constant"):
    """{sequence: probability} of ancestral sampling with these settings."""
    probs = {}
    for seq in itertools.product(range(3), repeat=length):
        p, prev = 1.0, START
        for i, x in enumerate(seq):
            logits = model.table[label, i, prev]
            if guidance_scale:
                scale = guidance_scale_at(guidance_scale, i, length, guidance_annealing)
                logits = guide(logits, model.table[2, i, prev], scale)
            p *= float(token_distribution(logits, temperature, top_k)[x])
            prev = x
        probs[seq] = p
    return probs


def total_variation(codes, exact):
    counts = {}
    for row in codes.flatten(1).tolist():
        counts[tuple(row)] = counts.get(tuple(row), 0) + 1
    n = len(codes)
    return 0.5 * sum(abs(counts.get(seq, 0) / n - p) for seq, p in exact.items())


@pytest.mark.parametrize(
    "settings, init, row_cache",
    [
        ({}, "random", False),
        ({}, "random", True),
        ({"top_k": 2, "temperature": 0.8}, "prev", True),
        ({"guidance_scale": 1.5}, "random", False),
        ({"guidance_scale": 1.5, "guidance_annealing": "linear"}, "above", True),
    ],
)
def test_sjd_samples_match_the_exact_joint_like_ar(settings, init, row_cache):
    # 20,000 samples per decoder, decoded as one batch (rows advance by their own accepted
    # lengths); the total-variation distance to the exact joint over the 81 sequences is about
    # 0.02 for an exact sampler at this size, so 0.03 is the threshold for both. row_cache: the
    # per-row KV-cache path, else the uncached one (each row's whole sequence fed every pass).
    model = MarkovTable(row_cache=row_cache)
    n = 20_000
    cond = Condition(labels=torch.ones(n, dtype=torch.long))
    exact = exact_joint(model, 1, 4, **settings)
    assert sum(exact.values()) == pytest.approx(1.0)
    ar = ar_decode(model, 4, batch_size=n, cond=cond, generator=torch.Generator().manual_seed(0), **settings)
    sjd = sjd_decode(model, 4, batch_size=n, window=3, init=init, cond=cond, row_length=2,
                     generator=torch.Generator().manual_seed(1), **settings)  # fmt: skip
    tv_ar, tv_sjd = total_variation(ar.codes, exact), total_variation(sjd.codes, exact)
    assert tv_ar < 0.03, tv_ar
    assert tv_sjd < 0.03, (tv_sjd, tv_ar)


@pytest.fixture
def ar_model() -> ARTransformer:
    torch.manual_seed(0)
    model = ARTransformer(vocab_size=5, max_length=16, dim=32, depth=2, num_heads=2, num_classes=3).eval()
    with torch.no_grad():
        model.head.weight.mul_(20)  # peaked distributions, so greedy and sampled runs are not trivial
    return model


@pytest.mark.parametrize("window", [1, 3, 16])
@pytest.mark.parametrize("init", ["random", "prev", "above"])
def test_greedy_sjd_is_greedy_ar(ar_model, window, init):
    cond = Condition(labels=torch.tensor([0, 1, 2]))
    ar = ar_decode(ar_model, 16, batch_size=3, cond=cond, temperature=0.0, guidance_scale=1.0)
    sjd = sjd_decode(ar_model, 16, batch_size=3, window=window, init=init, row_length=4, cond=cond, temperature=0.0,
                     guidance_scale=1.0, generator=torch.Generator().manual_seed(window))  # fmt: skip
    assert torch.equal(sjd.codes, ar.codes)
    assert ar.nfe == 16 and sjd.codes.shape == ar.codes.shape == (3, 1, 16)
    # Rows advance together: nfe counts the batch's passes, nfe_per_sample those each row needed.
    assert sjd.nfe == int(sjd.nfe_per_sample.max()) <= 16
    for i in range(3):
        records = [r for r in sjd.trace if r.sample == i]
        assert sum(r.committed for r in records) == 16 and len(records) == int(sjd.nfe_per_sample[i])


def test_window_of_one_is_ar_and_prefix_is_kept(ar_model):
    prefix = torch.tensor([[1, 2, 3], [4, 0, 0]])
    sjd = sjd_decode(ar_model, 10, batch_size=None, window=1, prefix=prefix, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sjd.codes[:, 0, :3], prefix)
    assert all(1 <= r.committed <= 2 for r in sjd.trace), "a window of 1 commits at most 1 + 1"
    ar = ar_decode(ar_model, 10, prefix=prefix, generator=torch.Generator().manual_seed(0))
    assert torch.equal(ar.codes[:, 0, :3], prefix) and ar.nfe == 7


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"window": 0}, "window=0"),
        ({"temperature": -1.0}, "temperature=-1.0"),
        ({"top_p": 1.5}, "top_p=1.5"),
        ({"prefix": torch.zeros(1, 20, dtype=torch.long)}, "longer than length"),
        ({"init": "nope"}, "init='nope'"),
        ({"init": "above"}, "row_length"),
    ],
)
def test_bad_input(ar_model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sjd_decode(ar_model, 16, **{"batch_size": None if "prefix" in kwargs else 2, **kwargs})


@pytest.mark.parametrize("row_cache", [True, False])
def test_batched_sjd_reads_nothing_back_inside_its_loop(ar_model, row_cache, monkeypatch):
    # Without early_exit the loop has no host read at all (acceptance, residual draws and the
    # window refill are tensor operations): from the first model call until the loop hands over
    # to the result (which reads the trace back once), any Tensor -> host copy raises.
    import contextlib

    from mgm.decoding import jacobi
    from tests.decoding.test_speed import _no_host_syncs

    stack = contextlib.ExitStack()
    result = jacobi._BatchedSJD._result

    def disarm_then_result(self, *args):
        stack.close()
        return result(self, *args)

    monkeypatch.setattr(jacobi._BatchedSJD, "_result", disarm_then_result)

    class Guarded:
        vocab_size, max_length, num_classes = 5, 16, 3

        def __init__(self):
            self.row_cache, self.calls = row_cache, 0

        def __call__(self, tokens, cond=None, cache=None):
            if not self.calls:
                stack.enter_context(_no_host_syncs())
            self.calls += 1
            return ar_model(tokens, cond, cache=cache)

    model, cond = Guarded(), Condition(labels=torch.tensor([0, 1, 2]))
    res = sjd_decode(model, 16, cond=cond, window=4, init="above", row_length=4, guidance_scale=1.0,
                     early_exit=False, generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert model.calls == res.nfe == 16, "without early_exit the loop runs its worst case"
    greedy = dict(cond=cond, temperature=0.0, guidance_scale=1.0)
    assert torch.equal(sjd_decode(model, 16, window=4, early_exit=False, **greedy).codes,
                       ar_decode(ar_model, 16, **greedy).codes)  # fmt: skip
