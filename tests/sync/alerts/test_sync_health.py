"""Sync-health alerts: one alert per condition and episode, a resolve on recovery, distinct
from account alerts; the store-unavailable path outside the outbox; the first-run digest."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mappings.schema import MappingFile
from sync.alerts import Alerter
from sync.alerts.health import (
    FIRING,
    RESOLVED,
    SyncHealth,
    condition_of,
    notify_store_unavailable,
    read_spool,
    spool_path,
)
from sync.alerts.sinks import DeliveryError, Sink
from sync.alerts.slack import slack_message
from sync.store import Store
from sync.store.models import AlertOutbox, AlertState, Run
from tests.sync.alerts.test_alerts import (
    FakeClock,
    FakeSink,
    account,
    block_kit_problems,
    chunk,
    mapping,
)

__all__ = ["mapping"]  # the module-scoped mapping fixture, shared


class Named(Sink):
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[dict[str, Any]] = []

    def send(self, alert: dict[str, Any]) -> None:
        self.sent.append(alert)


def finish(store: Store, status: str, exit_code: int, *, dry_run: bool = False) -> str:
    """A finished run row, as the engine leaves it (the streak of partial runs reads these)."""
    run_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    with store.session() as s:
        s.add(
            Run(
                run_id=run_id,
                command="run",
                dry_run=dry_run,
                full=False,
                started_at=now,
                finished_at=now + timedelta(seconds=1),
                status=status,
                exit_code=exit_code,
                stats={},
            )
        )
    return run_id


def outbox(store: Store) -> list[AlertOutbox]:
    with store.session() as s:
        return list(s.scalars(select(AlertOutbox).order_by(AlertOutbox.id)))


def health(store: Store, tmp_path: Path, **kwargs: Any) -> SyncHealth:
    sinks = [Named("log"), Named("webhook")]
    return SyncHealth(store, sinks, spool_dir=tmp_path, **kwargs)


def after(
    h: SyncHealth, store: Store, status: str, code: int, error: str | None = None
) -> list[str]:
    run_id = finish(store, status, code)
    return h.record(run_id, status=status, exit_code=code, error=error)


@pytest.mark.parametrize(
    ("status", "code", "condition"),
    [
        ("failed", 3, "failed"),
        ("failed", 1, "failed"),
        ("failed", 5, "store_unavailable"),
        ("refused", 4, "refused"),
        ("interrupted", 75, "interrupted"),
        ("succeeded", 0, None),
        ("partial", 1, None),
    ],
)
def test_condition_of(status: str, code: int, condition: str | None) -> None:
    assert condition_of(status, code) == condition


def test_failed_run_fires_once_and_recovery_resolves(store: Store, tmp_path: Path) -> None:
    """A failed run: one firing alert per sink with the reason and next step; more failed runs:
    nothing more; the next completed run: one resolve naming the episode."""
    h = health(store, tmp_path)
    (key,) = after(h, store, "failed", 3, "salesforce: HTTP 503 (retries exhausted)")
    rows = outbox(store)
    assert [(r.sink, r.kind, r.idempotency_key) for r in rows] == [
        ("log", FIRING, key),
        ("webhook", FIRING, key),
    ]
    payload = rows[0].payload
    assert payload["kind"] == "sync_health"
    assert payload["state"] == "firing"
    assert payload["condition"] == "failed"
    assert payload["reason"] == "salesforce: HTTP 503 (retries exhausted)"
    assert "next run retries" in payload["next_step"]
    assert payload["exit_code"] == 3
    assert rows[0].account_id is None
    assert after(h, store, "failed", 3) == []
    assert after(h, store, "failed", 3) == []
    assert len(outbox(store)) == 2
    (resolved,) = after(h, store, "succeeded", 0)
    assert resolved == f"{key}:resolved"
    last = outbox(store)[-1]
    assert last.kind == RESOLVED
    assert last.payload["state"] == "resolved"
    assert last.payload["resolves"] == key
    assert after(h, store, "succeeded", 0) == []
    # A new failure is a new episode with its own key.
    (again,) = after(h, store, "failed", 3)
    assert again != key


def test_conditions_are_independent(store: Store, tmp_path: Path) -> None:
    """failed then refused: two episodes; a partial run clears both (it completed)."""
    h = health(store, tmp_path)
    (failed,) = after(h, store, "failed", 3)
    (refused,) = after(h, store, "refused", 4)
    assert failed.startswith("sync-health:failed:")
    assert refused.startswith("sync-health:refused:")
    assert sorted(after(h, store, "partial", 1)) == sorted(
        [f"{failed}:resolved", f"{refused}:resolved"]
    )


def test_partial_runs_alert_only_when_they_repeat(store: Store, tmp_path: Path) -> None:
    """Partial runs alert after N in a row (default 3); a partial run keeps that episode
    open, a succeeded run resolves it."""
    h = health(store, tmp_path, partial_runs=3)
    assert after(h, store, "partial", 1) == []
    assert after(h, store, "partial", 1) == []
    (key,) = after(h, store, "partial", 1)
    assert key.startswith("sync-health:partial:")
    assert after(h, store, "partial", 1) == []
    assert after(h, store, "succeeded", 0) == [f"{key}:resolved"]
    # The streak is consecutive: a success in between starts it again.
    assert after(h, store, "partial", 1) == []
    assert after(h, store, "succeeded", 0) == []
    assert after(h, store, "partial", 1) == []


def test_interrupted_and_dry_runs(store: Store, tmp_path: Path) -> None:
    """An interrupted run alerts (next step: it resumes); a dry run records nothing."""
    h = health(store, tmp_path)
    (key,) = after(h, store, "interrupted", 75)
    assert "resumes" in outbox(store)[0].payload["next_step"]
    run_id = finish(store, "failed", 3, dry_run=True)
    assert h.record(run_id, status="failed", exit_code=3, dry_run=True) == []
    assert after(h, store, "succeeded", 0) == [f"{key}:resolved"]


def test_store_unavailable_goes_straight_to_the_sinks_once_and_resolves_later(
    store: Store, tmp_path: Path
) -> None:
    """Without a store: sent directly, once per episode on this host (spool file); the first
    run that reaches the store records the episode and sends the resolve."""
    sinks = [Named("log"), Named("webhook")]
    assert notify_store_unavailable(
        sinks, "cannot open the store: connection refused", spool_dir=tmp_path
    )
    assert not notify_store_unavailable(sinks, "still down", spool_dir=tmp_path)
    assert [len(s.sent) for s in sinks] == [1, 1]
    alert = sinks[1].sent[0]
    assert alert["condition"] == "store_unavailable"
    assert alert["exit_code"] == 5
    assert "connection refused" in alert["reason"]
    assert "store_unavailable" in read_spool(spool_path(tmp_path))
    h = SyncHealth(store, sinks, spool_dir=tmp_path)
    keys = after(h, store, "succeeded", 0)
    assert keys == [f"{alert['idempotency_key']}:resolved"]
    assert read_spool(spool_path(tmp_path)) == {}
    statuses = {(r.kind, r.status) for r in outbox(store)}
    assert (FIRING, "sent") in statuses  # already delivered: not sent twice
    assert (RESOLVED, "pending") in statuses


def test_unreachable_sinks_do_not_fail_and_leave_no_spool(tmp_path: Path) -> None:
    """If no sink took the alert, nothing is remembered: the next run tries again."""

    class Down(Sink):
        name = "webhook"

        def send(self, alert: dict[str, Any]) -> None:
            raise DeliveryError("webhook: refused with HTTP 410")

    assert not notify_store_unavailable([Down()], "down", spool_dir=tmp_path)
    assert read_spool(spool_path(tmp_path)) == {}


def test_sync_health_is_delivered_on_its_own_and_renders_for_slack(
    store: Store, mapping: MappingFile, tmp_path: Path
) -> None:
    """Delivery sends sync-health alerts individually, never inside an account digest, and
    the Slack rendering is valid Block Kit."""
    sink = FakeSink()
    alerter = Alerter(store, mapping, [sink], clock=FakeClock(), digest_threshold=1)
    with store.session() as s:  # not a first run
        s.add(
            AlertState(
                account_id="001000000000999ZZZ",
                band="Green",
                score=None,
                red_since=None,
                last_alert_at=None,
                updated_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
    alerter.observe(chunk(account(account_id="001000000000001AAA")), "r1")
    alerter.observe(chunk(account(account_id="001000000000002AAA")), "r1")
    h = SyncHealth(store, [sink], spool_dir=tmp_path, clock=alerter.clock)
    after(h, store, "failed", 3, "gainsight: HTTP 503")
    summary = alerter.deliver("r1")
    kinds = [a["kind"] for a in sink.sent]
    assert kinds == ["sync_health", "digest"]
    assert summary["webhook"]["sync_health"] == {"sent": 1, "failed": 0, "deferred": 0}
    message = slack_message(sink.sent[0])
    assert block_kit_problems(message) == []
    assert "gainsight: HTTP 503" in str(message)


def test_first_run_sends_one_digest_of_accounts_already_red(
    store: Store, mapping: MappingFile
) -> None:
    """On an empty store the Red accounts go out as one digest (whatever their number), not
    one alert each; later transitions alert as usual."""
    sink = FakeSink()
    alerter = Alerter(store, mapping, [sink], clock=FakeClock(), first_run="digest")
    a1 = account(account_id="001000000000001AAA")
    a2 = account(account_id="001000000000002AAA")
    alerter.observe(chunk(a1), "first")
    alerter.observe(chunk(a2), "first")  # a second chunk of the same run: still the first run
    alerter.deliver("first")
    (digest,) = sink.sent
    assert digest["kind"] == "digest"
    assert digest["count"] == 2
    assert digest["title"] == "teamsync first run: 2 accounts already Red"
    assert {a["kind"] for a in digest["alerts"]} == {"already_red"}
    # The next run: a newly seen Red account is a transition, alerted on its own.
    alerter.observe(chunk(account(account_id="001000000000003AAA")), "second")
    alerter.deliver("second")
    assert [a["kind"] for a in sink.sent] == ["digest", "entered_red"]


def test_first_run_none_sends_nothing_and_keeps_quiet_for_those_episodes(
    store: Store, mapping: MappingFile
) -> None:
    """first_run = none: accounts already Red are taken as known (no reminder, no recovery
    notice for that episode); new transitions still alert."""
    clock = FakeClock()
    sink = FakeSink()
    alerter = Alerter(store, mapping, [sink], clock=clock, first_run="none", reminder_days=7)
    alerter.observe(chunk(account(account_id="001000000000001AAA")), "first")
    alerter.deliver("first")
    assert sink.sent == []
    with store.session() as s:
        state = s.get(AlertState, "001000000000001AAA")
        assert state is not None
        assert state.band == "Red"
        assert state.last_alert_at is None
    clock.advance(days=8)
    alerter.observe(chunk(account(account_id="001000000000001AAA")), "later")
    alerter.observe(chunk(account(account_id="001000000000004AAA")), "later")
    alerter.deliver("later")
    assert [(a["kind"], a["account"]["id"]) for a in sink.sent] == [
        ("entered_red", "001000000000004AAA")
    ]
