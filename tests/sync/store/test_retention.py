"""Retention: runs, operations, health history (and resolved quarantine, sent alerts) older than
the limit are pruned in bounded batches; what is live stays."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from sync.store import Store
from sync.store.models import (
    AlertOutbox,
    AlertState,
    HealthObservation,
    Operation,
    QuarantinedRecord,
    Run,
)
from sync.store.retention import prune

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def add_run(s: Any, age_days: float, status: str = "succeeded", ops: int = 0) -> str:
    run_id = str(uuid.uuid4())
    ended = NOW - age_days * DAY
    s.add(
        Run(
            run_id=run_id,
            command="run",
            dry_run=False,
            full=False,
            started_at=ended - timedelta(minutes=3),
            finished_at=ended,
            status=status,
            exit_code=0 if status == "succeeded" else 3,
            stats={},
        )
    )
    for i in range(ops):
        s.add(
            Operation(
                run_id=run_id,
                system="salesforce",
                object="AccountTeamMember",
                action="create",
                target_id=f"0AT{i:015d}",
                account_id="001000000000001AAA",
                payload={},
                reason="fill the role",
                destructive=False,
                status="done",
            )
        )
    return run_id


def observe(s: Any, account: str, age_days: float, score: float) -> None:
    s.add(
        HealthObservation(
            account_id=account, observed_at=NOW - age_days * DAY, score=score, band="Red"
        )
    )


def quarantined(
    s: Any, record: str, *, resolved_days: float | None, dismissed: bool = False
) -> None:
    s.add(
        QuarantinedRecord(
            system="salesforce",
            object="AccountTeamMember",
            record_id=record,
            stage="push",
            code="X",
            reason="refused",
            first_seen=NOW - 400 * DAY,
            last_seen=NOW - 300 * DAY,
            attempts=3,
            resolved_at=None if resolved_days is None else NOW - resolved_days * DAY,
            dismissed_at=NOW - 300 * DAY if dismissed else None,
        )
    )


def alert(s: Any, key: str, kind: str, status: str, age_days: float) -> None:
    at = NOW - age_days * DAY
    s.add(
        AlertOutbox(
            idempotency_key=key,
            sink="webhook",
            account_id=None,
            kind=kind,
            payload={},
            status=status,
            attempts=1,
            created_at=at,
            sent_at=at if status == "sent" else None,
        )
    )


def count(store: Store, model: Any) -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_old_history_goes_live_state_stays(store: Store) -> None:
    """Older than 180 days: runs with their operations, superseded health observations,
    resolved quarantine and sent alerts go; the rest stays."""
    with store.session() as s:
        old = [add_run(s, 300, ops=3), add_run(s, 200, status="failed", ops=2)]
        recent = add_run(s, 10, ops=4)
        observe(s, "001A", 300, 40)
        observe(s, "001A", 250, 45)
        observe(s, "001A", 10, 50)
        observe(s, "001B", 300, 20)
        observe(s, "001B", 200, 25)  # B's newest, though old: the baseline stays
        quarantined(s, "0AT1", resolved_days=250)
        quarantined(s, "0AT2", resolved_days=None)  # still open
        quarantined(s, "0AT3", resolved_days=None, dismissed=True)  # held back: live
        quarantined(s, "0AT4", resolved_days=5)
        alert(s, "001A:entered_red:old", "entered_red", "sent", 300)
        alert(s, "001A:reminder:old", "reminder", "pending", 300)  # never sent: kept
        alert(s, "sync-health:failed:r1", "sync_health", "sent", 300)  # episode state: kept
        s.add(
            AlertState(
                account_id="001A",
                band="Red",
                score=40,
                red_since=NOW - 300 * DAY,
                last_alert_at=NOW - 300 * DAY,
                updated_at=NOW - 300 * DAY,
            )
        )
    pruned = prune(store, older_than=timedelta(days=180), now=NOW)
    assert pruned.counts == {
        "operations": 5,
        "runs": 2,
        "health_history": 3,
        "quarantine": 1,
        "alert_outbox": 1,
    }
    assert not pruned.more
    with store.session() as s:
        assert set(s.scalars(select(Run.run_id))) == {recent}
        assert not set(old) & set(s.scalars(select(Operation.run_id)))
        assert count(store, Operation) == 4
        left = sorted((h.account_id, h.score) for h in s.scalars(select(HealthObservation)))
        assert left == [("001A", 50), ("001B", 25)]
        assert sorted(s.scalars(select(QuarantinedRecord.record_id))) == ["0AT2", "0AT3", "0AT4"]
        assert sorted(s.scalars(select(AlertOutbox.idempotency_key))) == [
            "001A:reminder:old",
            "sync-health:failed:r1",
        ]
        assert s.get(AlertState, "001A") is not None
    assert prune(store, older_than=timedelta(days=180), now=NOW).total == 0


def test_the_last_runs_are_kept_however_old(store: Store) -> None:
    """The newest finished run and the newest completed run stay (status --check reads them)."""
    with store.session() as s:
        add_run(s, 400)
        completed = add_run(s, 390)
        last = add_run(s, 380, status="failed")
    pruned = prune(store, older_than=timedelta(days=180), now=NOW)
    assert pruned.counts["runs"] == 1
    with store.session() as s:
        assert set(s.scalars(select(Run.run_id))) == {completed, last}


def test_batches_are_bounded_and_the_next_run_goes_on(store: Store) -> None:
    """With a small budget a prune stops early (more=True); the next one finishes."""
    with store.session() as s:
        for age in range(200, 210):
            observe(s, "001A", age, 30)
        observe(s, "001A", 1, 30)
    first = prune(store, older_than=timedelta(days=180), now=NOW, batch_size=3, max_batches=2)
    assert first.more
    assert first.counts["health_history"] == 6
    assert count(store, HealthObservation) == 5
    second = prune(store, older_than=timedelta(days=180), now=NOW, batch_size=3)
    assert not second.more
    assert second.counts["health_history"] == 4
    assert count(store, HealthObservation) == 1


def test_a_run_prunes_at_its_end(store: Store, run: Any, settings: Any) -> None:
    """A completed run prunes what is older than TEAMSYNC_RETENTION_DAYS and says so in its
    stats; with retention 0 nothing is pruned."""
    from sync.clock import utcnow

    real_now = utcnow()
    with store.session() as s:
        old = str(uuid.uuid4())
        s.add(
            Run(
                run_id=old,
                command="run",
                dry_run=False,
                full=False,
                started_at=real_now - 400 * DAY,
                finished_at=real_now - 400 * DAY,
                status="succeeded",
                exit_code=0,
                stats={},
            )
        )
    keep = run(settings.model_copy(update={"retention_days": 0}), allow_mass_change=True)
    assert keep.stats.pruned is None
    result = run(allow_mass_change=True)
    assert result.status == "succeeded"
    assert result.stats.pruned["runs"] == 1
    assert result.stats.pruned["more"] is False
    assert "retention" in result.stats.phases
    with store.session() as s:
        assert s.get(Run, old) is None
