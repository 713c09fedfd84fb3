"""verified_decode is lossless: its samples follow the exact joint of one-token-per-step decoding
in the given order, computed by enumerating every sequence of a toy masked model small enough
(V = 3 tokens, N = 4 positions: 81 sequences) to do so."""

from __future__ import annotations

import itertools

import pytest
import torch

from mgm.decoding import verified_decode
from mgm.decoding.guidance import guide
from mgm.decoding.sampling import token_distribution
from mgm.models import Condition
from mgm.tokens import TokenSpec

V, N = 3, 4
SPEC = TokenSpec((V,), (N,))
ORDER = torch.tensor([2, 0, 3, 1])
SAMPLES = 20_000


class ToyMaskedModel:
    """logits[n, v] = W[n, v] + sum over m != n of A[n, m, codes[m], v] (+ a class bias unless
    dropped): every position depends strongly on every other, masked (id V) or not."""

    def __init__(self, seed: int = 0, num_classes: int = 2):
        g = torch.Generator().manual_seed(seed)
        self.w = 1.5 * torch.randn(N, V, generator=g)
        self.a = 1.5 * torch.randn(N, N, V + 1, V, generator=g)
        self.a[torch.arange(N), torch.arange(N)] = 0.0
        self.bias = 2.0 * torch.randn(num_classes, N, V, generator=g)

    def __call__(self, codes: torch.Tensor, cond: Condition | None) -> torch.Tensor:
        c = codes[:, 0]  # (B, N)
        n, m = torch.arange(N)[None, :, None], torch.arange(N)[None, None, :]
        picked = self.a[n, m, c[:, None, :]]  # (B, N, N, V): picked[b, n, m] = a[n, m, c[b, m]]
        logits = self.w[None] + picked.sum(2)  # (B, N, V)
        if cond is not None:
            keep = ~cond.dropped(len(c), c.device)
            logits = logits + keep[:, None, None] * self.bias[cond.labels]
        return logits[:, None]


def exact_joint(model, order, temperature=1.0, top_k=None, scale=0.0, label=None) -> dict[tuple, float]:
    """P(x) of sequential decoding in ``order``: the product of the model's conditionals."""
    cond = None if label is None else Condition(labels=torch.tensor([label]))
    joint = {}
    for x in itertools.product(range(V), repeat=N):
        state = torch.full((1, 1, N), V)
        prob = 1.0
        for position in order.tolist():
            logits = model(state, cond)
            if scale > 0:
                logits = guide(logits, model(state, cond.null()), scale)
            p = token_distribution(logits, temperature, top_k)[0, 0, position]
            prob *= float(p[x[position]])
            state[0, 0, position] = x[position]
        joint[x] = prob
    return joint


def tv(counts: torch.Tensor, joint: dict) -> float:
    exact = torch.tensor(list(joint.values()), dtype=torch.float64)
    return 0.5 * float((counts / counts.sum() - exact).abs().sum())


def perfect_sampler_tv(joint: dict, n: int, quantile: float = 0.99, trials: int = 400) -> float:
    """The ``quantile`` of the TV a sampler drawing exactly from ``joint`` shows at ``n`` samples."""
    exact = torch.tensor(list(joint.values()), dtype=torch.float64)
    g = torch.Generator().manual_seed(123)
    draws = [tv(torch.bincount(torch.multinomial(exact, n, True, generator=g), minlength=len(exact)).double(), joint)
             for _ in range(trials)]  # fmt: skip
    return float(torch.tensor(draws).quantile(quantile))


def histogram(codes: torch.Tensor) -> torch.Tensor:
    index = (codes[:, 0] * torch.tensor([V ** (N - 1 - i) for i in range(N)])).sum(-1)
    return torch.bincount(index, minlength=V**N).double()


@pytest.mark.parametrize(
    "options, label",
    [({}, None), ({"temperature": 0.7, "top_k": 2, "guidance_scale": 1.5}, 1)],
    ids=["plain", "temperature-topk-guidance"],
)
def test_verified_decode_samples_the_exact_sequential_joint(options, label):
    model = ToyMaskedModel()
    joint = exact_joint(model, ORDER, options.get("temperature", 1.0), options.get("top_k"),
                        options.get("guidance_scale", 0.0), label)  # fmt: skip
    cond = None if label is None else Condition(labels=torch.full((SAMPLES,), label))
    result = verified_decode(model, SPEC, batch_size=SAMPLES, cond=cond, order=ORDER, draft=3,
                             generator=torch.Generator().manual_seed(7), **options)  # fmt: skip
    distance, noise = tv(histogram(result.codes), joint), perfect_sampler_tv(joint, SAMPLES)
    assert distance <= noise, f"TV {distance:.4f} against the exact joint; a perfect sampler stays below {noise:.4f}"
    # Fewer sequential passes than one token per pass (N + 1 with the first): here at most N / 2 + 1.
    mean_passes = float(result.nfe_per_sample.double().mean())
    assert mean_passes <= N / 2 + 1, mean_passes


def test_a_maskgit_like_sampler_is_caught_by_the_same_test():
    """The test can fail: independent draws from the first pass's marginals (all tokens in one
    step) are far from the sequential joint of this strongly coupled toy."""
    model = ToyMaskedModel()
    joint = exact_joint(model, ORDER)
    marginals = token_distribution(model(torch.full((1, 1, N), V), None), 1.0)[0, 0]  # (N, V)
    draws = torch.multinomial(marginals, SAMPLES, True, generator=torch.Generator().manual_seed(1)).T  # (S, N)
    assert tv(histogram(draws[:, None]), joint) > 3 * perfect_sampler_tv(joint, SAMPLES)


def test_greedy_verified_decoding_equals_greedy_sequential_decoding():
    model = ToyMaskedModel(seed=3)
    state = torch.full((1, 1, N), V)
    for position in ORDER.tolist():
        state[0, 0, position] = model(state, None)[0, 0, position].argmax()
    result = verified_decode(model, SPEC, batch_size=2, order=ORDER, draft=2, temperature=0.0)
    assert torch.equal(result.codes, state.expand(2, -1, -1))


def test_given_tokens_stay_and_the_order_skips_them():
    model = ToyMaskedModel(seed=1)
    init = torch.tensor([[[1, V, 2, V]]]).expand(5, -1, -1).clone()
    result = verified_decode(model, SPEC, init_codes=init, order="random", generator=torch.Generator().manual_seed(0))
    assert torch.equal(result.codes[:, 0, [0, 2]], init[:, 0, [0, 2]]) and not bool((result.codes == V).any())


def test_confidence_order_is_refused():
    with pytest.raises(ValueError, match="content-independent"):
        verified_decode(ToyMaskedModel(), SPEC, order="confidence")
