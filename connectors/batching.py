"""One chunking helper: consecutive slices of a sequence (API batches, SQL ``IN`` lists).

>>> [list(b) for b in batched([1, 2, 3, 4, 5], 2)]
[[1, 2], [3, 4], [5]]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

_T = TypeVar("_T")


def batched(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    """Slices of at most ``size`` items, in order (``itertools.batched`` for sequences)."""
    if size < 1:
        raise ValueError("size must be at least 1")
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = ["batched"]
