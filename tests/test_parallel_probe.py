"""The Markov oracle of benchmarks/parallel_probe.py is exact, so the probe's forbidden
transitions measure parallel decoding alone."""

from __future__ import annotations

import itertools

import torch

from benchmarks.parallel_probe import MarkovOracle, forbidden
from mgm.data.synthetic import SparseMarkovChain
from mgm.decoding import maskgit_decode, verified_decode

V, N = 4, 5


def enumerated_posteriors(chain, visible: dict[int, int]) -> torch.Tensor:
    """P(x_n = v | visible tokens) by summing the chain's probability over every sequence."""
    step = chain.allowed[0].double() / chain.branching
    post = torch.zeros(N, V, dtype=torch.float64)
    for x in itertools.product(range(V), repeat=N):
        if any(x[n] != v for n, v in visible.items()):
            continue
        p = 1.0 / V
        for a, b in zip(x, x[1:]):
            p *= float(step[a, b])
        for n in range(N):
            post[n, x[n]] += p
    return post / post.sum(-1, keepdim=True)


def test_the_oracle_gives_the_exact_posterior_marginals():
    chain = SparseMarkovChain(vocab_size=V, branching=2, seed=3)
    oracle = MarkovOracle(chain, N, eps=0.0)
    sample = chain.sample(1, N, generator=torch.Generator().manual_seed(0))[0]
    for visible in ({}, {0: int(sample[0])}, {1: int(sample[1]), 4: int(sample[4])}):
        codes = torch.full((1, 1, N), V)
        for n, v in visible.items():
            codes[0, 0, n] = v
        got = oracle(codes).double().softmax(-1)[0, 0]
        want = enumerated_posteriors(chain, visible)
        for n in range(N):
            if n not in visible:
                torch.testing.assert_close(got[n], want[n], atol=1e-6, rtol=1e-5)


def test_one_token_per_step_never_breaks_the_chain_and_all_at_once_does():
    chain = SparseMarkovChain(vocab_size=16, branching=2, seed=0)
    oracle = MarkovOracle(chain, 16)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    sequential = maskgit_decode(oracle, oracle.spec, batch_size=64, num_steps=16, generator=g())
    verified = verified_decode(oracle, oracle.spec, batch_size=64, order="random", draft=4, generator=g())
    one_step = maskgit_decode(oracle, oracle.spec, batch_size=64, num_steps=1, generator=g())
    assert float(forbidden(chain, sequential.codes).sum()) == 0 and float(forbidden(chain, verified.codes).sum()) == 0
    # Independent draws from the marginals: most of the 15 transitions of a sequence break.
    assert float(forbidden(chain, one_step.codes).mean()) > 5
