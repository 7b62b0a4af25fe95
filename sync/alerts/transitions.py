"""Which alert an observation calls for, given the account's alert state (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sync.store.models import AlertState


@dataclass(frozen=True)
class Transition:
    kind: str  # entered_red / reminder / recovered
    previous_band: str | None


def transition(
    *,
    band: str,
    state: AlertState | None,
    now: datetime,
    red: str,
    yellow_to_red_only: bool,
    yellow: str,
    reminder_days: int,
    unknown: str | None = None,
) -> Transition | None:
    """The alert (if any) this observation calls for, given the stored alert state.

    ``unknown`` is the band of a missing score: no transition either way.
    """
    if unknown is not None and band == unknown:
        return None
    previous = state.band if state is not None else None
    if band == red:
        if previous != red:
            if yellow_to_red_only and previous != yellow:
                return None
            return Transition("entered_red", previous)
        if state is not None and state.last_alert_at is not None:
            if now - state.last_alert_at >= timedelta(days=reminder_days):
                return Transition("reminder", previous)
        return None
    if previous == red and state is not None and state.last_alert_at is not None:
        return Transition("recovered", previous)
    return None
