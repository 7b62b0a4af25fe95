"""The default clock: timezone-aware UTC.  Every stage takes ``clock=`` so tests inject time."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
