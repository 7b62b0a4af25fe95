"""Retention: history older than ``TEAMSYNC_RETENTION_DAYS`` (180) is pruned after a run.

    pruned = prune(store, older_than=timedelta(days=180), now=utcnow())
    pruned.counts   # {"runs": 12, "operations": 4800, "health_history": 300, ...}
    pruned.more     # True when the time or batch budget ran out (the next run goes on)

What goes, in batches of ``batch_size`` rows (each its own short transaction, so a run never
holds a long lock on the store), for at most ``max_batches`` batches or ``max_seconds``:

- ``runs`` that finished before the cutoff, with their ``operations`` (the last finished run
  and the last completed one are always kept: ``status --check`` and the metrics read them);
- ``health_history`` observations before the cutoff, except each account's newest one (the
  baseline that trends and ``HEALTH_DROP`` compare with);
- ``quarantine`` records resolved before the cutoff;
- ``alert_outbox`` rows sent before the cutoff, except sync-health rows (they carry the state of
  their episodes).

What stays while it is live: open (or dismissed) quarantine records, alert state, alerts not
yet sent, watermarks, the mapped accounts and the raw snapshots.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, delete, exists, select
from sqlalchemy.orm import aliased

from sync.store.models import AlertOutbox, HealthObservation, Operation, QuarantinedRecord, Run
from sync.store.store import Store

log = structlog.get_logger("teamsync.retention")

COMPLETED = ("succeeded", "partial")
_SYNC_HEALTH_KINDS = ("sync_health", "sync_resolved")


@dataclass
class Pruned:
    counts: dict[str, int] = field(default_factory=dict)
    more: bool = False  # a budget ran out before everything old was gone
    cutoff: datetime | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class _Budget:
    def __init__(self, max_batches: int, max_seconds: float, clock: Callable[[], float]) -> None:
        self.left = max_batches
        self.deadline = clock() + max_seconds
        self.clock = clock

    def take(self) -> bool:
        if self.left <= 0 or self.clock() >= self.deadline:
            return False
        self.left -= 1
        return True


def prune(
    store: Store,
    *,
    older_than: timedelta,
    now: datetime,
    batch_size: int = 5000,
    max_batches: int = 200,
    max_seconds: float = 60.0,
    monotonic: Callable[[], float] = time.monotonic,
) -> Pruned:
    """Delete what is older than ``now - older_than`` (see the module docstring)."""
    cutoff = now - older_than
    result = Pruned(counts={}, cutoff=cutoff)
    budget = _Budget(max_batches, max_seconds, monotonic)
    steps: Sequence[tuple[str, Callable[[Any, int], int]]] = (
        ("operations", lambda s, n: _operations(s, cutoff, n)),
        ("runs", lambda s, n: _runs(s, cutoff, n)),
        ("health_history", lambda s, n: _health(s, cutoff, n)),
        ("quarantine", lambda s, n: _quarantine(s, cutoff, n)),
        ("alert_outbox", lambda s, n: _outbox(s, cutoff, n)),
    )
    for name, step in steps:
        result.counts[name] = 0
        while True:
            if not budget.take():
                result.more = True
                break
            with store.session() as s:
                deleted = step(s, batch_size)
            if deleted == 0:
                budget.left += 1  # an empty look costs one query, not a batch
            result.counts[name] += deleted
            if deleted < batch_size:
                break
        if result.more:
            break
    if result.total or result.more:
        log.info(
            "retention: pruned",
            cutoff=cutoff.isoformat(timespec="seconds"),
            more=result.more,
            **result.counts,
        )
    return result


def _old_runs(s: Any, cutoff: datetime) -> Any:
    """Runs finished before the cutoff, except the newest finished and newest completed."""
    keep = [
        s.scalars(
            select(Run.run_id)
            .where(Run.finished_at.is_not(None))
            .order_by(Run.started_at.desc())
            .limit(1)
        ).first(),
        s.scalars(
            select(Run.run_id)
            .where(Run.status.in_(COMPLETED), Run.dry_run.is_(False))
            .order_by(Run.started_at.desc())
            .limit(1)
        ).first(),
    ]
    keep_ids = [k for k in keep if k is not None]
    query = select(Run.run_id).where(Run.finished_at.is_not(None), Run.finished_at < cutoff)
    if keep_ids:
        query = query.where(Run.run_id.not_in(keep_ids))
    return query


def _operations(s: Any, cutoff: datetime, n: int) -> int:
    ids = list(
        s.scalars(
            select(Operation.id)
            .where(Operation.run_id.in_(_old_runs(s, cutoff).scalar_subquery()))
            .limit(n)
        )
    )
    if ids:
        s.execute(delete(Operation).where(Operation.id.in_(ids)))
    return len(ids)


def _runs(s: Any, cutoff: datetime, n: int) -> int:
    ids = list(s.scalars(_old_runs(s, cutoff).order_by(Run.started_at).limit(n)))
    if not ids:
        return 0
    # Operations of these runs went first; a run whose operations are not all gone (a budget
    # ran out between the two steps) cannot be here: the operations step drains them first.
    s.execute(delete(Operation).where(Operation.run_id.in_(ids)))
    s.execute(delete(Run).where(Run.run_id.in_(ids)))
    return len(ids)


def _health(s: Any, cutoff: datetime, n: int) -> int:
    newer = aliased(HealthObservation)
    ids = list(
        s.scalars(
            select(HealthObservation.id)
            .where(
                HealthObservation.observed_at < cutoff,
                exists().where(
                    and_(
                        newer.account_id == HealthObservation.account_id,
                        newer.observed_at > HealthObservation.observed_at,
                    )
                ),
            )
            .order_by(HealthObservation.observed_at)
            .limit(n)
        )
    )
    if ids:
        s.execute(delete(HealthObservation).where(HealthObservation.id.in_(ids)))
    return len(ids)


def _quarantine(s: Any, cutoff: datetime, n: int) -> int:
    ids = list(
        s.scalars(
            select(QuarantinedRecord.id)
            .where(
                QuarantinedRecord.resolved_at.is_not(None),
                QuarantinedRecord.resolved_at < cutoff,
            )
            .limit(n)
        )
    )
    if ids:
        s.execute(delete(QuarantinedRecord).where(QuarantinedRecord.id.in_(ids)))
    return len(ids)


def _outbox(s: Any, cutoff: datetime, n: int) -> int:
    ids = list(
        s.scalars(
            select(AlertOutbox.id)
            .where(
                AlertOutbox.status == "sent",
                AlertOutbox.sent_at < cutoff,
                AlertOutbox.kind.not_in(_SYNC_HEALTH_KINDS),
            )
            .limit(n)
        )
    )
    if ids:
        s.execute(delete(AlertOutbox).where(AlertOutbox.id.in_(ids)))
    return len(ids)
