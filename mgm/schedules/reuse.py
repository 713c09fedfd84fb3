"""Full/cheap step patterns for feature-reuse decoding (ReCAP).

A full step runs the model over every position and caches each layer's keys/values; a cheap step
recomputes only a chunk of positions against that cache. The pattern says which steps are which:
``full_first`` full steps (the early steps set the layout and change the context most), then
each later full step followed by ``cheap_per_full`` cheap ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from mgm.checks import check_int


@dataclass(frozen=True)
class ReusePattern:
    full_first: int = 2
    cheap_per_full: int = 1

    def __post_init__(self):
        check_int(self.full_first, "full_first")
        check_int(self.cheap_per_full, "cheap_per_full", minimum=0)

    def kinds(self, num_steps: int) -> tuple[bool, ...]:
        """Per step, True for a full step and False for a cheap one; step 0 is always full."""
        pattern = []
        for step in range(num_steps):
            later = step - self.full_first
            pattern.append(later < 0 or later % (self.cheap_per_full + 1) == 0)
        return tuple(pattern)

    def num_full(self, num_steps: int) -> int:
        return sum(self.kinds(num_steps))
