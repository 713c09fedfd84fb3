"""Flexible-order AR training (ARPG, LPD): teacher forcing over random generation orders.

Each example of a batch gets its own uniformly random order of the N positions. The order is
cut into groups: with ``group_steps=None`` every token is its own group (ARPG's random-order
training: the query of slot i sees the tokens of slots < i); with ``group_steps=(lo, hi)`` each
batch draws a number of groups T uniformly in [lo, hi] and sizes from the mask schedule's counts
(``masked_counts``, the decoders' own rule), so the model also learns to answer a whole group at
once, its queries seeing each other where the model has ``group_attention`` (LPD's grouped
training). Every query carries the loss of its target (cross-entropy over all N positions).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from mgm.checks import check_int, check_number
from mgm.io import load_json
from mgm.models.ar_transformer import ARTransformer
from mgm.models.flex_ar import FlexARTransformer, warm_start_from_ar
from mgm.schedules import get_mask_schedule, masked_counts
from mgm.schedules.orders import locality_order
from mgm.training.ar import ARTraining
from mgm.training.masked import check_cond_drop_prob, condition_from_batch


def warm_start(model: FlexARTransformer, folder: str) -> None:
    """``folder``: a saved FlexARTransformer (its weights, the configs equal) or ARTransformer
    (``warm_start_from_ar``)."""
    config = load_json(Path(folder) / "config.json")
    if config.get("_class_name") != FlexARTransformer.__name__:
        warm_start_from_ar(model, ARTransformer.from_pretrained(folder))
        return
    source = FlexARTransformer.from_pretrained(folder)
    if source.config != model.config:
        raise ValueError(f"init_from={folder}: its config {source.config} differs from the model's {model.config}")
    model.load_state_dict(source.state_dict())


def training_groups(num_positions: int, num_groups: int, schedule: str = "cosine") -> torch.Tensor:
    """LongTensor[N]: the group of each ordered slot when N tokens are cut into ``num_groups`` groups
    with the decoders' sizes (``masked_counts`` of the schedule)."""
    left = masked_counts(torch.tensor([num_positions]), num_groups, schedule)[0]
    ends = num_positions - left  # (T,) slots decided after each group
    return torch.bucketize(torch.arange(num_positions), ends, right=True)


class FlexARTraining(ARTraining):
    """Args: model (a FlexARTransformer); ``group_steps`` (module doc); ``schedule`` of the group
    sizes; ``init_from``: a saved ARTransformer folder to warm-start from (``warm_start_from_ar``),
    or a saved FlexARTransformer of the same config to continue from; ``decode_order_share``: the
    share of examples trained in LPD's locality order (the order ``lpd_decode`` decodes in) rather
    than a random one (0: ARPG's all-random training);
    AdamW with warm-up + cosine decay, label smoothing and condition dropout as ARTraining, whose
    steps, logging and optimiser it shares."""

    def __init__(
        self,
        model: FlexARTransformer,
        group_steps: tuple[int, int] | None = None,
        schedule: str = "cosine",
        lr: float = 3e-4,
        weight_decay: float = 0.05,
        betas: tuple[float, float] = (0.9, 0.95),
        warmup_steps: int = 100,
        min_lr_ratio: float = 0.1,
        label_smoothing: float = 0.0,
        cond_drop_prob: float = 0.1,
        init_from: str | None = None,
        decode_order_share: float = 0.0,
    ):
        super(ARTraining, self).__init__()  # skips ARTraining.__init__ (it takes an ARTransformer)
        check_cond_drop_prob(cond_drop_prob)
        get_mask_schedule(schedule)
        check_number(decode_order_share, "decode_order_share", minimum=0, maximum=1)
        if group_steps is not None:
            lo, hi = group_steps
            check_int(lo, "group_steps[0]")
            check_int(hi, "group_steps[1]", lo)
            if hi > model.num_positions:
                raise ValueError(f"group_steps={list(group_steps)}: at most N={model.num_positions} groups")
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        if init_from is not None:  # before a checkpoint resume, which then overrides these weights
            warm_start(model, init_from)

    def setup(self, stage: str) -> None:
        spec = getattr(getattr(self.trainer, "datamodule", None), "spec", None)
        if spec is not None and spec != self.model.spec:
            raise ValueError(f"the data's token spec {spec} does not match the model's {self.model.spec}")

    def batch_groups(self, device: torch.device) -> torch.Tensor:
        n = self.model.num_positions
        if self.hparams.group_steps is None:
            return torch.arange(n, device=device)
        lo, hi = self.hparams.group_steps
        count = int(torch.randint(lo, hi + 1, (1,)))  # from the step's seeded generator
        return training_groups(n, count, self.hparams.schedule).to(device)

    def loss(self, batch: dict, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        codes = batch["codes"][:, 0]  # (B, N)
        b, n = codes.shape
        order = torch.rand(b, n, device=codes.device).argsort(-1)
        if self.hparams.decode_order_share > 0:
            fixed = torch.rand(b, device=codes.device) < self.hparams.decode_order_share
            locality = locality_order(tuple(self.model.spec.shape)).to(codes.device)
            order = torch.where(fixed[:, None], locality[None], order)
        tokens = codes.gather(1, order)
        cond = condition_from_batch(batch)
        if train and cond is not None and self.hparams.cond_drop_prob > 0:
            cond = cond.with_drop(torch.rand(b, device=codes.device) < self.hparams.cond_drop_prob)
        logits = self.model(tokens, order, self.batch_groups(codes.device), cond)  # (B, N, V)
        loss = F.cross_entropy(
            logits.flatten(0, 1).float(), tokens.flatten(), label_smoothing=self.hparams.label_smoothing
        )
        return loss, (logits.argmax(-1) == tokens).float().mean()
