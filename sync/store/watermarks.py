"""Watermark maths, kept pure so it can be tested without I/O.

A pull reads records whose stamp is at or after ``lower_bound(watermark, lookback)``
(inclusive, with a lookback so records committed late with an older stamp are not lost),
ordered by (stamp, id); duplicates are harmless because records are upserted by id.
When the pull completes the watermark becomes ``next_watermark(...)``: the newest stamp seen,
but never later than the moment the pull started (records changed during the pull are read
again next time rather than skipped).

    >>> from datetime import datetime, timedelta, UTC
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> lower_bound(t, timedelta(minutes=5))
    datetime.datetime(2025, 12, 31, 23, 55, tzinfo=datetime.timezone.utc)
    >>> next_watermark(previous=None, max_seen=t, pull_started=t - timedelta(seconds=1))
    datetime.datetime(2025, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

from datetime import datetime, timedelta


def lower_bound(watermark: datetime | None, lookback: timedelta) -> datetime | None:
    """Inclusive lower bound of the next incremental pull (None: read everything)."""
    if watermark is None:
        return None
    return watermark - lookback


def next_watermark(
    *, previous: datetime | None, max_seen: datetime | None, pull_started: datetime
) -> datetime | None:
    """The watermark after a completed pull: newest stamp seen, capped at the pull's start.

    It never moves backwards, and never past ``pull_started``.
    """
    candidate = previous
    if max_seen is not None:
        capped = min(max_seen, pull_started)
        candidate = capped if candidate is None else max(candidate, capped)
    if candidate is not None and candidate > pull_started:
        candidate = pull_started
    return candidate
