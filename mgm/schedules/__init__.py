"""Pure schedules shared by training and decoding (see mask.py and annealing.py)."""

from mgm.schedules.annealing import ANNEALINGS, choice_temperature_at, guidance_scale_at
from mgm.schedules.mask import (
    MASK_SCHEDULES,
    check_ratio_range,
    get_mask_schedule,
    given_slices,
    mask_ratio,
    masked_counts,
    random_mask,
    ranks,
)

__all__ = [
    "ANNEALINGS",
    "MASK_SCHEDULES",
    "check_ratio_range",
    "choice_temperature_at",
    "get_mask_schedule",
    "given_slices",
    "guidance_scale_at",
    "mask_ratio",
    "masked_counts",
    "random_mask",
    "ranks",
]
