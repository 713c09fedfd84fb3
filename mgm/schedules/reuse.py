"""Full/cheap step patterns for feature-reuse decoding (ReCAP).

A full step runs the model over every position and caches each layer's keys/values; a cheap step
recomputes only a chunk of positions against that cache. The pattern says which steps are which:
``full_first`` full steps (the early steps set the layout and change the context most), then
each later full step followed by ``cheap_per_full`` cheap ones.
"""

from __future__ import annotations

from dataclasses import dataclass

REUSE_OPTIONS = ("full_first", "cheap_per_full")


@dataclass(frozen=True)
class ReusePlan:
    full_first: int = 2
    cheap_per_full: int = 1

    def __post_init__(self):
        for name in ("full_first", "cheap_per_full"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "full_first" else 0):
                minimum = 1 if name == "full_first" else 0
                raise ValueError(f"{name}={value!r}: expected an integer >= {minimum}")

    @classmethod
    def from_options(cls, options: dict) -> ReusePlan:
        unknown = set(options) - set(REUSE_OPTIONS)
        if unknown:
            raise ValueError(f"unknown reuse plan options {sorted(unknown)}; expected full_first, cheap_per_full")
        return cls(**options)

    @classmethod
    def split_options(cls, options: dict) -> tuple[ReusePlan | None, dict]:
        """(the ReusePlan of the reuse keys in ``options`` or None when there are none, the other keys):
        a group plan's options may carry a reuse plan alongside its own."""
        reuse = {k: v for k, v in options.items() if k in REUSE_OPTIONS}
        rest = {k: v for k, v in options.items() if k not in REUSE_OPTIONS}
        return (cls(**reuse) if reuse else None), rest

    def kinds(self, num_steps: int) -> tuple[bool, ...]:
        """Per step, True for a full step and False for a cheap one; step 0 is always full."""
        pattern = []
        for step in range(num_steps):
            later = step - self.full_first
            pattern.append(later < 0 or later % (self.cheap_per_full + 1) == 0)
        return tuple(pattern)

    def num_full(self, num_steps: int) -> int:
        return sum(self.kinds(num_steps))
