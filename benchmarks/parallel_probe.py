"""A ParallelBench-style probe: where does committing many tokens per step break a strongly
dependent sequence, and do the adaptive rules slow down there?

The "model" is exact: the posterior marginals of a ``SparseMarkovChain`` (16 states, 2 allowed
successors each, so neighbours are strongly dependent) given the tokens visible so far, by
forward-backward. A decoder that commits one token per step from these marginals samples the
chain exactly (no forbidden transition); committing several at once draws them independently
from their marginals, and every forbidden transition it makes is the price of that factorisation
alone, since the model makes no mistakes. Metric: forbidden transitions per sequence, against
the mean tokens committed per sequential pass.

    .venv/bin/python -m benchmarks.parallel_probe [--num 512] [--length 32] [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.machine import machine_name
from benchmarks.timing import write_report
from mgm.data.synthetic import SparseMarkovChain
from mgm.decoding.registry import get_method
from mgm.tokens import TokenSpec


class MarkovOracle:
    """codes [B, 1, N] -> logits [B, 1, N, V]: log P(x_n | visible tokens) of the chain (uniform
    start, uniform over allowed successors). A forbidden pair already on the canvas would make
    the evidence impossible, so the transitions are smoothed by ``eps`` to keep it defined."""

    def __init__(self, chain: SparseMarkovChain, length: int, eps: float = 1e-6):
        v = chain.vocab_size
        self.spec = TokenSpec((v,), (length,))
        step = chain.allowed[0].double() / chain.branching
        self.transition = (1 - eps) * step + eps / v  # (V, V), rows sum to 1

    def __call__(self, codes: torch.Tensor, cond=None) -> torch.Tensor:
        x = codes[:, 0]  # (B, N)
        b, n = x.shape
        v = self.spec.vocab_size
        visible = ~self.spec.is_masked(codes)[:, 0]
        evidence = torch.ones(b, n, v, dtype=torch.float64)
        one_hot = torch.nn.functional.one_hot(x.clamp(max=v - 1), v).double()
        evidence = torch.where(visible[..., None], one_hot, evidence)
        alpha = torch.empty(b, n, v, dtype=torch.float64)
        beta = torch.ones(b, n, v, dtype=torch.float64)
        a = evidence[:, 0] / v
        alpha[:, 0] = a / a.sum(-1, keepdim=True)
        for i in range(1, n):
            a = (alpha[:, i - 1] @ self.transition) * evidence[:, i]
            alpha[:, i] = a / a.sum(-1, keepdim=True)
        for i in range(n - 2, -1, -1):
            bb = (beta[:, i + 1] * evidence[:, i + 1]) @ self.transition.T
            beta[:, i] = bb / bb.sum(-1, keepdim=True)
        posterior = alpha * beta
        posterior = posterior / posterior.sum(-1, keepdim=True)
        return posterior.clamp_min(1e-30).log().float()[:, None]


def forbidden(chain: SparseMarkovChain, codes: torch.Tensor) -> torch.Tensor:
    """FloatTensor[B]: forbidden transitions in each sequence [B, 1, N]."""
    x = codes[:, 0]
    return (~chain.allowed[0][x[:, :-1], x[:, 1:]]).sum(1).float()


CONFIGS = (  # (method, knob shown, options)
    *[("maskgit", f"{t} steps", {"num_steps": t}) for t in (32, 16, 8, 4, 2, 1)],
    *[("maskgit", f"{t} steps, order locality", {"num_steps": t, "order": "locality"}) for t in (16, 8, 4)],
    *[("threshold", f"tau {tau}", {"tau": tau, "max_steps": 32}) for tau in (0.99, 0.9, 0.7, 0.5, 0.3)],
    *[("threshold", f"factor {f}", {"rule": "factor", "factor": f, "max_steps": 32}) for f in (0.5, 1.0, 2.0)],
    *[("credit", f"tau {tau}", {"tau": tau, "max_steps": 32}) for tau in (0.9, 0.7, 0.5)],
    *[("remask", f"rerank eta {eta}, 8 steps", {"strategy": "rerank", "eta": eta, "num_steps": 8}) for eta in (0.1, 0.3)],
    *[("verified", f"sequential, draft {d}", {"draft": d, "order": "random"}) for d in (2, 4, 8)],
)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--num", type=int, default=512)
    parser.add_argument("--length", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    chain = SparseMarkovChain(vocab_size=16, branching=2, seed=args.seed)
    model = MarkovOracle(chain, args.length)
    rows = []
    for method, knob, options in CONFIGS:
        result = get_method(method).decode(model, model.spec, batch_size=args.num,
                                           generator=torch.Generator().manual_seed(args.seed), **options)  # fmt: skip
        passes = result.passes_per_sample().double()
        bad = forbidden(chain, result.codes)
        rows.append({
            "method": method, "knob": knob, "nfe": float(passes.mean()),
            "tokens_per_pass": float((args.length / passes).mean()),
            "forbidden_per_sequence": float(bad.mean()), "clean_share": float((bad == 0).float().mean()),
        })  # fmt: skip
        print(f"{method:9s} {knob:28s} nfe {rows[-1]['nfe']:6.2f}  tokens/pass {rows[-1]['tokens_per_pass']:5.2f}  "
              f"forbidden {rows[-1]['forbidden_per_sequence']:.3f}", flush=True)  # fmt: skip
    reference = SparseMarkovChain(vocab_size=16, branching=2, seed=args.seed).sample(args.num, args.length)
    report = {
        "machine": machine_name(torch.device("cpu")), "num": args.num, "length": args.length, "vocab_size": 16, "branching": 2,
        "uniform_tokens_forbidden_per_sequence": (args.length - 1) * (1 - 2 / 16),
        "chain_samples_forbidden_per_sequence": float(forbidden(chain, reference[:, None]).mean()),
        "rows": rows,
    }  # fmt: skip
    write_report(report, args.out, echo=False)
    return report


def table(report: dict) -> str:
    lines = ["| method | knob | NFE | tokens per pass | forbidden transitions per sequence | clean sequences |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in report["rows"]:
        lines.append(f"| {r['method']} | {r['knob']} | {r['nfe']:.2f} | {r['tokens_per_pass']:.2f} | "
                     f"{r['forbidden_per_sequence']:.3f} | {r['clean_share']:.3f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
