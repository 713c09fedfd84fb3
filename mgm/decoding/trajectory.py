"""Exact-trajectory verified decoding (after FreeDave): ``maskgit_decode``'s own output, token for
token, in fewer sequential passes (``verified_decode(target="maskgit")``).

A MaskGIT step is a function s_{t+1} = F_t(s_t, logits(s_t), draws_t) of the canvas, the model's
logits on it and the step's random draws. The draws' shapes depend on nothing the model says
(``maskgit.step_noise``), so every step's draws can be made ahead of time, in the order
``maskgit_decode`` makes them from the same generators. Each pass, for a sample at step t with
its true canvas s_t:

1. draft d canvases: d_1 = F_t(s_t, L), d_{i+1} = F_{t+i}(d_i, L), with L the latest logits at
   hand (the last pass's, of the canvas nearest this one) standing in for the model's;
2. one batched forward over [s_t, d_1, ..., d_d];
3. verify: F_t(s_t, logits(s_t)) is the true s_{t+1}; where it equals d_1, the forward's logits of
   d_1 are the true logits of s_{t+1}, which give s_{t+2}; and so on. The sample advances one step
   plus one per leading draft that matched.

Every committed canvas is one ``maskgit_decode`` computes, whatever the drafts, so the codes are
its codes; a draft only decides how far a pass gets. The first pass runs s_0 alone, each later
one advances at least a step: never more passes than ``num_steps``. Exact as far as the model
gives a canvas the same logits in a batch of any size (the forward's rows are computed alike);
a kernel that rounds a row differently at another batch size can flip a near-tie. The loop reads
each pass's accepted counts back to the host (one sync per pass).
"""

from __future__ import annotations

import torch

from mgm.decoding.canvas import MaskedRun
from mgm.decoding.guidance import GuidedModel
from mgm.decoding.maskgit import check_logits, reveal_step, sample_and_score, step_noise
from mgm.decoding.result import DecodeResult, StepRecord
from mgm.schedules import masked_counts
from mgm.schedules.mask import MaskSchedule


class MaskGITTrajectory:
    """maskgit_decode's step rule over canvases at any steps, with its draws made ahead of time."""

    def __init__(self, run: MaskedRun, num_steps: int, schedule: str | MaskSchedule, priority: torch.Tensor | None):
        self.run, self.steps, self.priority = run, num_steps, priority
        b, k, n = run.codes.shape
        self.logit_shape = (b, k, n, run.spec.vocab_size)
        counts = masked_counts(run.spec.is_masked(run.codes).flatten(1).sum(1), num_steps, schedule)  # (B, T)
        self.stay = torch.cat([counts, counts.new_zeros(b, 1)], 1)  # a step past the last masks nothing
        self.taus = [run.choice_temperature(t, num_steps) for t in range(num_steps)]
        self.scales = run.guidance_scales(num_steps)
        self.draws: list = []  # step -> (token noise [B, K, N, V] | None, choice noise [B, K, N] | None)

    def draws_at(self, step: int):
        while len(self.draws) <= step:  # in maskgit_decode's order: step by step, all rows at once
            t = len(self.draws)
            self.draws.append(step_noise(self.logit_shape, self.run.sampling, self.taus[t], self.run.generator,
                                         self.run.device))  # fmt: skip
        return self.draws[step]

    def forget_before(self, step: int) -> None:
        for t in range(min(step, len(self.draws))):
            self.draws[t] = None

    def advance(self, codes: torch.Tensor, logits: torch.Tensor, samples: list[int], steps: list[int]) -> torch.Tensor:
        """F over rows: codes [R, K, N] of the given samples at the given steps, with logits
        [R, K, N, V] -> the next canvases [R, K, N] (rows at a step past the last: unchanged)."""
        live = [r for r, t in enumerate(steps) if t < self.steps]
        if not live:
            return codes
        index = torch.tensor(live, device=codes.device)
        rows = [(samples[r], steps[r]) for r in live]
        tokens = None
        if self.run.sampling.temperature != 0:
            tokens = torch.stack([self.draws_at(t)[0][b] for b, t in rows])
        # tau * noise row by row, as maskgit_decode computes it (0 where a step draws none), then tau 1.
        choice = torch.stack([
            self.taus[t] * self.draws_at(t)[1][b] if self.taus[t] else torch.zeros(codes.shape[1:], device=codes.device)
            for b, t in rows
        ])  # fmt: skip
        part = codes[index]
        sampled, _, confidence = sample_and_score(logits[index], self.run.sampling, 1.0, None, noise=(tokens, choice))
        if self.priority is not None:
            confidence = self.priority[[b for b, _ in rows]]
        stay = self.stay[[b for b, _ in rows], [t for _, t in rows]]
        nxt, _, _ = reveal_step(part, self.run.spec.is_masked(part), sampled, confidence, stay)
        out = codes.clone()
        out[index] = nxt
        return out

    def scale_of(self, steps: list[int]) -> float | torch.Tensor:
        scales = [self.scales[min(t, self.steps - 1)] for t in steps]
        if len(set(scales)) == 1:
            return scales[0]
        return torch.tensor(scales, device=self.run.device)


def trajectory_decode(run: MaskedRun, num_steps: int, schedule, priority, draft: int) -> DecodeResult:
    """The loop of ``verified_decode(target="maskgit")`` (see the module doc)."""
    traj = MaskGITTrajectory(run, num_steps, schedule, priority)
    b = run.batch_size
    codes = run.codes
    with run.autocast():
        logits = GuidedModel(run.model, run.cond)(codes, traj.scale_of([0]))
        check_logits(logits, codes, run.spec)
        everyone = list(range(b))
        codes = traj.advance(codes, logits, everyone, [0] * b)
        steps, stale, passes, rows_run = [1] * b, logits, 1, b
        per_sample = torch.ones(b, dtype=torch.long, device=run.device)
        trace = [StepRecord(0, run.spec.is_masked(run.codes).flatten(1).sum(1) - run.spec.is_masked(codes).flatten(1)
                            .sum(1), torch.zeros(b, device=run.device), traj.scales[0], traj.taus[0])]  # fmt: skip
        run.step_done(0, codes)
        while any(t < num_steps for t in steps):
            active = [i for i in everyone if steps[i] < num_steps]
            index = torch.tensor(active, device=run.device)
            drafts = [codes[index]]
            for i in range(draft):
                drafts.append(traj.advance(drafts[-1], stale[index], active, [steps[j] + i for j in active]))
            states = torch.stack(drafts, 1)  # (A, d + 1, K, N)
            row_samples = [j for j in active for _ in range(draft + 1)]
            row_steps = [steps[j] + i for j in active for i in range(draft + 1)]
            cond = None if run.cond is None else run.cond.select(torch.tensor(row_samples, device=run.device))
            flat = states.flatten(0, 1)
            out = GuidedModel(run.model, cond)(flat, traj.scale_of(row_steps))  # (A (d + 1), K, N, V)
            nxt = traj.advance(flat, out, row_samples, row_steps).view_as(states)
            matched = (nxt[:, :-1] == states[:, 1:]).flatten(2).all(-1)  # (A, d)
            accepted = matched.long().cumprod(1).sum(1)  # (A,)
            before = run.spec.is_masked(codes).flatten(1).sum(1)
            pick = torch.arange(len(active), device=run.device)
            codes = codes.clone()
            codes[index] = nxt[pick, accepted]
            stale = stale.clone()
            stale[index] = out.view(len(active), draft + 1, *out.shape[1:])[pick, (accepted + 1).clamp_max(draft)]
            for j, a in zip(active, accepted.tolist()):  # one host read per pass
                steps[j] = min(num_steps, steps[j] + a + 1)
            traj.forget_before(min(steps))
            per_sample[index] += 1
            rows_run += len(active) * (draft + 1)
            revealed = before - run.spec.is_masked(codes).flatten(1).sum(1)
            trace.append(StepRecord(passes, revealed, torch.zeros(b, device=run.device), traj.scales[0], 0.0))
            run.step_done(passes, codes)
            passes += 1
    return DecodeResult(codes=codes, nfe=passes, trace=trace, compute=rows_run / b, nfe_per_sample=per_sample)
