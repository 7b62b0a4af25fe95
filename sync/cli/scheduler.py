"""The built-in daemon: one run per cron fire time until SIGTERM.

A run that overlaps the next fire time simply delays it (no backlog of runs); a run another
node holds the lock for is skipped; an upstream outage or a refused plan is logged and the
daemon waits for the next fire time.  A configuration error stops the daemon (exit 2).

The cron expression is read in ``TEAMSYNC_DAEMON_TZ`` (default UTC; daylight-saving changes
follow that zone's rules); the start-up log line says which.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

import structlog
from croniter import croniter

from config.errors import ConfigurationError, LockHeld, SafeguardRefused, StoreUnavailable
from config.settings import Settings

if TYPE_CHECKING:
    from sync.engine import RunOptions, RunResult
    from sync.store import Store
from connectors.errors import FatalError
from sync.metrics import Metrics, MetricsServer
from sync.version import VERSION

log = structlog.get_logger("teamsync.daemon")


def next_fire(cron: str, after: datetime, tz: str = "UTC") -> datetime:
    """The first fire time of ``cron``, read in time zone ``tz``, strictly after ``after``;
    returned in UTC."""
    zone = ZoneInfo(tz)
    start = (after if after.tzinfo else after.replace(tzinfo=UTC)).astimezone(zone)
    value = croniter(cron, start).get_next(datetime)
    assert isinstance(value, datetime)
    return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(UTC)


class Runner(Protocol):
    """What the daemon needs of the engine."""

    def run(self, options: RunOptions | None = None) -> RunResult: ...


class DaemonHealth:
    """What ``/healthz`` and ``/readyz`` answer.

    Alive: the scheduler loop beat within ``stale_after`` seconds (it beats at least every
    ``BEAT_SECONDS`` while it waits, and at every batch of a run through ``should_stop``).
    Ready: the last run did not fail (failed, refused, store unavailable); before any run, the
    last run in the store decides.
    """

    FAILING = ("failed", "refused", "store_unavailable")

    def __init__(self, stale_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_after = stale_after
        self.clock = clock
        self.last_beat = clock()
        self.last_status: str | None = None
        self.last_error: str | None = None

    def beat(self) -> None:
        self.last_beat = self.clock()

    def ran(self, status: str, error: str | None = None) -> None:
        self.last_status = status
        self.last_error = error
        self.beat()

    def alive(self) -> tuple[bool, str]:
        idle = self.clock() - self.last_beat
        if idle > self.stale_after:
            return False, f"the scheduler loop has not moved for {idle:.0f} s"
        return True, "scheduler alive"

    def ready(self) -> tuple[bool, str]:
        if self.last_status in self.FAILING:
            why = f": {self.last_error}" if self.last_error else ""
            return False, f"the last run {self.last_status}{why}"[:500]
        return True, f"last run {self.last_status or 'none yet'}"


BEAT_SECONDS = 15.0


def run_daemon(
    settings: Settings,
    cron: str,
    stop: Callable[[], bool],
    *,
    max_runs: int | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    engine_factory: Callable[[], Runner] | None = None,
    on_ready: Callable[[MetricsServer | None], None] | None = None,
) -> int:
    """Loop until ``stop()`` is true; ``stop.event`` (threading.Event) wakes the wait early.

    With ``TEAMSYNC_METRICS_PORT`` (default 9810) it serves ``/metrics``, ``/healthz`` and
    ``/readyz`` on ``TEAMSYNC_METRICS_HOST`` while it runs.
    """
    if not croniter.is_valid(cron):
        raise ConfigurationError(f"--cron: not a valid cron expression: {cron!r}")
    from sync.engine import Engine, RunOptions

    health = DaemonHealth(stale_after=max(float(settings.lock_lease_seconds), 4 * BEAT_SECONDS))

    def should_stop() -> bool:
        health.beat()  # called at every page and batch: a run that moves is alive
        return bool(stop())

    engine: Runner = (
        engine_factory()
        if engine_factory
        else Engine.from_settings(settings, should_stop=should_stop)
    )
    metrics = Metrics(VERSION)
    store = getattr(engine, "store", None)
    if store is not None:
        try:
            # A fresh SQLite store gets its tables now, so the first scrape finds it.
            store.check_schema(allow_behind=settings.auto_migrate)
        except StoreUnavailable as exc:
            log.warning("the store is unavailable at start-up", error=str(exc))
        metrics.observe(store)
        health.last_status = _last_status(store)
    server: MetricsServer | None = None
    if settings.metrics_port:
        server = MetricsServer(
            metrics,
            alive=health.alive,
            ready=health.ready,
            host=settings.metrics_host,
            port=settings.metrics_port,
        ).start()
        log.info("metrics served", host=settings.metrics_host, port=server.port)
    if on_ready is not None:
        on_ready(server)
    event = getattr(stop, "event", None)
    runs = 0
    tz = settings.daemon_tz
    log.info("daemon started", cron=cron, tz=tz, version=VERSION)
    try:
        while not stop():
            fire = next_fire(cron, clock(), tz)
            delay = max(0.0, (fire - clock()).total_seconds())
            log.info("next run", at=fire.isoformat(timespec="seconds"), in_seconds=round(delay, 1))
            if _wait(event, delay, health):
                break
            if stop():
                break
            _one_run(engine, RunOptions(command="daemon"), metrics, health, settings)
            runs += 1
            if max_runs is not None and runs >= max_runs:
                break
    finally:
        if server is not None:
            server.stop()
    log.info("daemon stopped", runs=runs)
    return 0


def _wait(event: threading.Event | None, delay: float, health: DaemonHealth) -> bool:
    """Wait ``delay`` seconds in slices, beating; True when told to stop."""
    end = time.monotonic() + delay
    while True:
        health.beat()
        left = end - time.monotonic()
        if left <= 0:
            return False
        if event is None:  # pragma: no cover - plain callables in tests use max_runs
            time.sleep(min(left, BEAT_SECONDS))
            continue
        if event.wait(min(left, BEAT_SECONDS)):
            return True


def _one_run(
    engine: Runner, options: RunOptions, metrics: Metrics, health: DaemonHealth, settings: Settings
) -> None:
    from sync.heartbeat import ping

    store = getattr(engine, "store", None)
    try:
        result = engine.run(options)
    except LockHeld as exc:
        log.info("run skipped", reason=str(exc))
        metrics.count_outcome("lock_held")
        health.beat()
        return
    except StoreUnavailable as exc:
        log.error("run failed; waiting for the next fire time", error=str(exc))
        metrics.count_outcome("store_unavailable")
        health.ran("store_unavailable", str(exc))
        alerts = getattr(engine, "alerts", None)
        if alerts is not None:
            from sync.alerts.health import notify_store_unavailable

            notify_store_unavailable(alerts.sinks, str(exc), spool_dir=settings.data_dir)
        return
    except (FatalError, SafeguardRefused) as exc:
        log.error("run failed; waiting for the next fire time", error=str(exc))
        health.ran("refused" if isinstance(exc, SafeguardRefused) else "failed", str(exc))
    else:
        log.info("daemon run done", status=result.status, exit_code=result.exit_code)
        health.ran(result.status)
        if result.status in ("succeeded", "partial") and settings.heartbeat_url is not None:
            ping(settings.heartbeat_url.get_secret_value(), ca_bundle=settings.ca_bundle)
    if store is not None:
        metrics.observe(store)


def _last_status(store: Store) -> str | None:
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from sync.store.models import Run

    try:
        with store.session() as s:
            status = s.scalars(
                select(Run.status)
                .where(Run.dry_run.is_(False), Run.finished_at.is_not(None))
                .order_by(Run.started_at.desc())
                .limit(1)
            ).first()
    except SQLAlchemyError:
        return None
    return str(status) if status is not None else None
