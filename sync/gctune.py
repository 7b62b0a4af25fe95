"""Garbage collection tuned for one run (issue 12: CPU per account).

A run allocates millions of short-lived containers (raw rows, parsed records, people,
operations) while the interpreter holds a large, long-lived object graph from its imports
(SQLAlchemy, pydantic, the clients).  With CPython's default thresholds a young collection
runs every 700 allocations and every few thousand of them a full collection walks that whole
graph again: about a fifth of a run's CPU went to the collector.  For the length of a run,
:func:`tuned` moves what is alive at its start out of the collector's way (``gc.freeze``)
and collects the youngest generation every 10,000 net allocations instead of 700; both are
undone when the run ends.  Nothing is kept alive that would otherwise be freed by reference
counting, and cycles are still collected, only in larger batches.

    with tuned():
        ...  # the run
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 10_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def tuned() -> Iterator[None]:
    """Tune the collector for the enclosed run; nested or concurrent runs share one tuning,
    undone when the last of them ends."""
    global _depth, _saved
    with _lock:
        _depth += 1
        if _depth == 1:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(YOUNG_THRESHOLD, _saved[1], _saved[2])
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                gc.unfreeze()
                _saved = None
