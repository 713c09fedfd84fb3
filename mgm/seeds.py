"""Seeds derived from seeds: one formula (splitmix64) for every stream mgm splits off a user's seed
(a pipeline's per-sample generators, a training step's draws, a data item's crop)."""

from __future__ import annotations


def mix_seed(seed: int, *parts: int) -> int:
    """A well-spread 63-bit seed for the tuple (seed, *parts): splitmix64 of each pair in turn, so
    distinct tuples give unrelated streams (``mix_seed(s, i)`` is sample i's seed in a pipeline)."""
    for part in parts:
        z = (seed * 0x9E3779B97F4A7C15 + (part + 1) * 0xBF58476D1CE4E5B9) % 2**64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
        seed = (z ^ (z >> 31)) >> 1
    return seed
