"""The daemon: cron fire times, runs on schedule, a graceful stop."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from config.errors import ConfigurationError, LockHeld
from config.settings import Settings
from connectors.errors import UpstreamUnavailable
from sync.cli.scheduler import next_fire, run_daemon
from sync.engine import Engine, RunOptions
from sync.store import Store


class Flag:
    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self) -> bool:
        return self.event.is_set()


def test_next_fire_times() -> None:
    """Fire times follow the cron expression, strictly after the given moment, in UTC."""
    t = datetime(2026, 1, 1, 10, 7, 30, tzinfo=UTC)
    assert next_fire("*/15 * * * *", t) == datetime(2026, 1, 1, 10, 15, tzinfo=UTC)
    assert next_fire("0 3 * * *", t) == datetime(2026, 1, 2, 3, 0, tzinfo=UTC)
    assert next_fire("*/15 * * * *", datetime(2026, 1, 1, 10, 15, tzinfo=UTC)) == datetime(
        2026, 1, 1, 10, 30, tzinfo=UTC
    )


def test_invalid_cron_is_a_configuration_error(settings: Settings) -> None:
    """A bad --cron stops the daemon before anything runs (exit 2)."""
    with pytest.raises(ConfigurationError):
        run_daemon(settings, "every now and then", Flag(), max_runs=1)


def test_daemon_runs_on_schedule_and_survives_failures(settings: Settings, store: Store) -> None:
    """Each fire time starts a run; a held lock or an outage is logged and the loop goes on."""
    outcomes: list[Any] = [LockHeld("busy"), UpstreamUnavailable("down", api="salesforce"), None]
    runs: list[RunOptions] = []

    class FakeEngine:
        def run(self, options: RunOptions) -> Any:
            runs.append(options)
            outcome = outcomes.pop(0)
            if outcome is not None:
                raise outcome
            return type("R", (), {"status": "succeeded", "exit_code": 0})()

    ticks = iter(
        datetime(2026, 1, 1, 0, minute, 59, 999_000, tzinfo=UTC)
        for minute in range(0, 60)
        for _ in range(2)
    )
    code = run_daemon(
        settings,
        "* * * * *",
        Flag(),
        max_runs=3,
        clock=lambda: next(ticks),
        engine_factory=FakeEngine,
    )
    assert code == 0
    assert [o.command for o in runs] == ["daemon", "daemon", "daemon"]
    assert outcomes == []


def test_stop_during_wait_exits_without_running(settings: Settings) -> None:
    """SIGTERM while waiting for the next fire time ends the daemon at once."""
    flag = Flag()
    ran: list[int] = []

    class Never:
        def run(self, options: RunOptions) -> Any:
            ran.append(1)

    timer = threading.Timer(0.2, flag.event.set)
    timer.start()
    started = datetime.now(UTC)
    code = run_daemon(settings, "0 0 1 1 *", flag, engine_factory=Never)
    assert code == 0
    assert ran == []
    assert (datetime.now(UTC) - started).total_seconds() < 5


def test_daemon_real_run(settings: Settings, store: Store) -> None:
    """One scheduled run with the real engine against the emulators."""
    results: list[Any] = []

    def factory() -> Any:
        engine = Engine.from_settings(settings, store=store)
        original = engine.run

        def run(options: RunOptions) -> Any:
            result = original(RunOptions(command=options.command, allow_mass_change=True))
            results.append(result)
            return result

        engine.run = run  # type: ignore[method-assign]
        return engine

    now = datetime(2026, 1, 1, 0, 0, 59, 999_000, tzinfo=UTC)
    code = run_daemon(
        settings, "* * * * *", Flag(), max_runs=1, clock=lambda: now, engine_factory=factory
    )
    assert code == 0
    assert [r.status for r in results] == ["succeeded"]


def test_interrupted_run_records_progress_and_next_run_finishes(
    settings: Settings, store: Store
) -> None:
    """A stop request mid-pull ends the run after its current page; the next run completes."""
    from sqlalchemy import select

    from sync.store.models import Run, Watermark

    pages = {"n": 0}

    def progress(stream: str, done: int, total: int | None) -> None:
        pages["n"] += 1

    stop_after_first_page = Engine.from_settings(
        settings, store=store, should_stop=lambda: pages["n"] >= 1, progress=progress
    )
    first = stop_after_first_page.run(RunOptions(allow_mass_change=True))
    assert first.status == "interrupted"
    assert first.exit_code == 75  # interrupted, the next run resumes (DESIGN section 4)
    # Salesforce and Gainsight pull side by side: where each stopped is named.
    where = [
        f"{name} ({first.stats.pulled[name]['records']} records read)"
        for name in ("salesforce.User", "gainsight.GsUser")
        if name in first.stats.pulled
    ]
    assert where[0].startswith("salesforce.User")
    assert first.stats.interrupted_at == "pull, in or after stream " + "; ".join(where)
    assert first.stats.plan is None
    with store.session() as s:
        run_row = s.get(Run, first.run_id)
        assert run_row is not None
        assert run_row.status == "interrupted"
        assert run_row.finished_at is not None
        marks = list(s.scalars(select(Watermark)))
    assert marks
    assert all(m.value is None for m in marks)
    second = Engine.from_settings(settings, store=store).run(RunOptions(allow_mass_change=True))
    assert second.status == "succeeded"
    assert second.stats.pulled["salesforce.User"]["resumed"] is True  # picked up, not redone


def test_daemon_process_stops_on_sigterm(upstream: Any, database_url: str) -> None:
    """`teamsync daemon` started as a process exits 0 soon after SIGTERM."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = dict(os.environ)
    env.update(upstream.env())
    env.update(
        TEAMSYNC_DATABASE_URL=database_url,
        TEAMSYNC_LOG_FORMAT="json",
        TEAMSYNC_LOG_LEVEL="INFO",
        TEAMSYNC_METRICS_PORT="0",  # never the default port: other processes may hold it
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "sync.cli", "daemon", "--cron", "0 0 1 1 *"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        started = False
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            if '"daemon started"' in line:
                started = True
                break
        assert started
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_next_fire_in_the_daemon_time_zone() -> None:
    """TEAMSYNC_DAEMON_TZ: "0 3 * * *" is 03:00 local time, across a daylight-saving change."""
    before = datetime(2026, 3, 28, 12, tzinfo=UTC)
    assert next_fire("0 3 * * *", before, "Europe/Berlin") == datetime(2026, 3, 29, 1, tzinfo=UTC)
    assert next_fire("0 3 * * *", before, "UTC") == datetime(2026, 3, 29, 3, tzinfo=UTC)
    winter = datetime(2026, 1, 10, 12, tzinfo=UTC)
    assert next_fire("0 3 * * *", winter, "Europe/Berlin") == datetime(2026, 1, 11, 2, tzinfo=UTC)
