"""Parallel decoding of a flexible-order AR model: ARPG's randomized groups, LPD's locality order.

The model (``mgm.models.FlexARTransformer``) predicts any set of positions from the tokens
decoded before them. A decode fixes a generation order per sample, cuts its undecided part into
``num_steps`` groups whose sizes follow a mask schedule (the counts of ``masked_counts``, as
MaskGIT's steps), and runs one pass per group:

    pass t: the tokens of group t - 1 enter the KV cache; the queries of group t's positions
            are answered; group t's tokens are drawn from those logits, all at once.

The cache grows by one group per pass and a pass computes only M + Q rows, so passes are cheap.

- ``arpg_decode``: a uniformly random order per sample (ARPG), drawn from the sample's generator.
- ``lpd_decode``: LPD's precomputed locality-aware order (``mgm.schedules.orders.locality_order``:
  no two tokens of one parity class adjacent, each class spread by farthest-point fill).

Editing: the given tokens (outside ``editable``) enter the cache first, in raster order, in the
first pass, before any token is drawn; the editable positions are decoded in the method's order
restricted to them. That is zero-shot inpainting and outpainting. Rows may hold different numbers
of given tokens: each row's groups come from its own count, and shorter rows are padded (masked
key slots, ignored queries), so a row's tokens are those it would get decoded alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from mgm.checks import check_int
from mgm.decoding.canvas import MaskedRun, prepare_masked
from mgm.decoding.guidance import guide
from mgm.decoding.registry import FLEX_AR, Method, register
from mgm.decoding.result import DecodeResult, StepRecord
from mgm.decoding.sampling import gumbel_noise, sample_tokens, uniform
from mgm.models.cache import KVCache
from mgm.models.conditioning import Condition
from mgm.models.protocols import model_traits
from mgm.schedules import get_mask_schedule, masked_counts
from mgm.schedules.mask import MaskSchedule
from mgm.schedules.orders import locality_order


@dataclass(frozen=True)
class GroupOrderOptions:
    """``num_steps`` groups (one model pass each) with sizes from the mask ``schedule``."""

    num_steps: int = 12
    schedule: str | MaskSchedule = "cosine"

    HELP: ClassVar[dict] = {
        "num_steps": "groups decoded in sequence (one cached model pass each)",
        "schedule": "mask schedule giving the group sizes",
    }

    def __post_init__(self):
        check_int(self.num_steps, "num_steps")
        get_mask_schedule(self.schedule)


@torch.inference_mode()
def arpg_decode(model, spec, *, batch_size=None, cond=None, generator=None, init_codes=None, editable=None,
                **options) -> DecodeResult:  # fmt: skip
    """ARPG: each sample's undecided positions in a random order of its own, decoded in groups.

    model: a flexible-order AR model (``forward_group``); the rest is the masked decoders'
    signature (docs/architecture.md). Returns codes [B, 1, N], nfe = the passes run.
    """
    run, own = prepare_masked(model, spec, ARPG, options, batch_size=batch_size, cond=cond, generator=generator,
                              init_codes=init_codes, editable=editable)  # fmt: skip
    b, n = run.batch_size, spec.num_positions
    order = uniform((b, n), run.generator, run.device).argsort(-1)
    return decode_in_groups(run, own, order)


@torch.inference_mode()
def lpd_decode(model, spec, *, batch_size=None, cond=None, generator=None, init_codes=None, editable=None,
               **options) -> DecodeResult:  # fmt: skip
    """LPD: the undecided positions in the locality-aware order of the grid, decoded in groups."""
    run, own = prepare_masked(model, spec, LPD, options, batch_size=batch_size, cond=cond, generator=generator,
                              init_codes=init_codes, editable=editable)  # fmt: skip
    order = locality_order(tuple(spec.shape)).to(run.device)
    return decode_in_groups(run, own, order.expand(run.batch_size, -1))


def generation_order(unknown: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """unknown BoolTensor[B, N], order LongTensor[B, N] (a permutation per row) -> LongTensor[B, N]:
    the given positions first in raster order, then the unknown ones in ``order``."""
    n = unknown.shape[1]
    place = torch.empty_like(order).scatter_(1, order, torch.arange(n, device=order.device).expand_as(order))
    key = torch.where(unknown, n + place, torch.arange(n, device=order.device))
    return key.argsort(1)


def group_bounds(num_given: torch.Tensor, num_unknown: torch.Tensor, num_steps: int, schedule) -> torch.Tensor:
    """LongTensor[B, T + 1]: where each row's groups start in its generation order (entry 0: the
    end of the given tokens; entry T: N). Group t is entries [bounds[t], bounds[t + 1])."""
    left = masked_counts(num_unknown, num_steps, schedule)  # (B, T): still undecided after step t
    done = num_unknown[:, None] - left
    return torch.cat([num_given[:, None], num_given[:, None] + done], 1)


def padded_slice(sequence: torch.Tensor, start: torch.Tensor, size: torch.Tensor, width: int):
    """Entries [start[b], start[b] + size[b]) of each row of ``sequence`` [B, N], padded to ``width``
    -> (LongTensor[B, width], BoolTensor[B, width] True = a real entry). Padding repeats the last entry."""
    steps = torch.arange(width, device=sequence.device)
    valid = steps[None] < size[:, None]
    index = (start[:, None] + steps[None]).clamp_max(sequence.shape[1] - 1)
    return sequence.gather(1, index), valid


class GuidedGroups:
    """``model.forward_group`` with classifier-free guidance: [cond; null] rows in one batch (and one
    cache) when guiding; float32 logits."""

    def __init__(self, model, cond: Condition | None, guided: bool):
        self.forward_group = model_traits(model).forward_group
        self.paired = guided and cond is not None
        self.cond = Condition.cat([cond, cond.null()]) if self.paired else cond
        self.cache = KVCache()

    def __call__(self, tokens, positions, targets, token_mask, target_mask, scale: float) -> torch.Tensor:
        if not self.paired:
            step = self.forward_group(tokens, positions, targets, self.cond, self.cache, token_mask, target_mask)
            return step.float()
        two = lambda x: torch.cat([x, x])  # noqa: E731
        logits = self.forward_group(two(tokens), two(positions), two(targets), self.cond, self.cache, two(token_mask),
                                    two(target_mask)).float()  # fmt: skip
        return guide(*logits.chunk(2), scale)


def draw_group(logits: torch.Tensor, sizes: list[int], run: MaskedRun) -> torch.Tensor:
    """Tokens [B, Q] from logits [B, Q, V]. With one generator per sample, row b's Gumbel noise is
    drawn for its own ``sizes[b]`` queries only, so padding never changes what a row draws."""
    s = run.sampling
    noise = None
    if isinstance(run.generator, list) and s.temperature > 0:
        q, v = logits.shape[1:]
        rows = [gumbel_noise((1, size, v), g, logits.device)[0] for size, g in zip(sizes, run.generator)]
        noise = torch.stack([torch.cat([r, r.new_zeros(q - len(r), v)]) for r in rows])
    return sample_tokens(logits, s.temperature, s.top_k, s.top_p, generator=run.generator, noise=noise)


def decode_in_groups(run: MaskedRun, own: GroupOrderOptions, order: torch.Tensor) -> DecodeResult:
    """The loop shared by ARPG and LPD (module doc): ``order`` LongTensor[B, N], each row's order of
    the positions; its undecided ones are decoded in ``own.num_steps`` groups."""
    codes, spec = run.codes, run.spec
    b, n = codes.shape[0], spec.num_positions
    grid = codes[:, 0]
    unknown = spec.is_masked(codes)[:, 0]
    sequence = generation_order(unknown, order)
    num_unknown = unknown.sum(1)
    bounds = group_bounds(n - num_unknown, num_unknown, own.num_steps, own.schedule)
    sizes = bounds.diff(dim=1)  # (B, T) tokens drawn per step
    # The only host reads: the shapes of every pass, fixed before the loop.
    given_host, sizes_host = (n - num_unknown).tolist(), sizes.T.tolist()
    guided = GuidedGroups(run.model, run.cond, run.sampling.guidance_scale > 0)
    scales = run.guidance_scales(own.num_steps)
    extended = torch.cat([grid, grid.new_zeros(b, 1)], 1)  # slot n: where padding writes go
    # The first pass feeds the given tokens (none when decoding from scratch).
    positions, feed_mask = padded_slice(sequence, torch.zeros_like(bounds[:, 0]), bounds[:, 0], max(given_host))
    tokens = grid.gather(1, positions).masked_fill(~feed_mask, 0)
    trace, passes, rows_computed = [], 0, 0
    for step, step_sizes in enumerate(sizes_host):
        width = max(step_sizes)
        if width == 0:
            continue  # every row is done already (fewer undecided tokens than steps)
        targets, target_mask = padded_slice(sequence, bounds[:, step], sizes[:, step], width)
        with run.autocast():
            logits = guided(tokens, positions, targets, feed_mask, target_mask, scales[step])
        drawn = draw_group(logits, step_sizes, run)
        where = torch.where(target_mask, targets, n)
        extended = extended.scatter(1, where, drawn)
        log_probs = logits.log_softmax(-1).gather(-1, drawn[..., None])[..., 0]
        revealed = target_mask.sum(1)
        confidence = torch.where(target_mask, log_probs.exp(), 0.0).sum(1) / revealed.clamp_min(1)
        trace.append(StepRecord(len(trace), revealed, confidence, scales[step], 0.0, full=False, queries=width))
        passes += 1
        rows_computed += tokens.shape[1] + width
        tokens, positions, feed_mask = drawn, targets, target_mask
        run.step_done(len(trace) - 1, extended[:, None, :n])
    out = extended[:, None, :n]
    # A pass computes M + Q rows against a full pass's N (the compute column of the benchmarks).
    # Rows with fewer tokens to decode (editing) finish in fewer passes: each row's own count.
    per_sample = (sizes > 0).sum(1).cpu()
    return DecodeResult(codes=out, nfe=passes, trace=trace, compute=rows_computed / n, nfe_per_sample=per_sample)


NEEDS = ("forward_group",)
ARPG = register(Method("arpg", arpg_decode, GroupOrderOptions, FLEX_AR,
                       "ARPG: groups in a random order per sample, one cached pass each", needs=NEEDS))  # fmt: skip
LPD = register(Method("lpd", lpd_decode, GroupOrderOptions, FLEX_AR,
                      "LPD: groups in the locality-aware order, one cached pass each", needs=NEEDS))  # fmt: skip
