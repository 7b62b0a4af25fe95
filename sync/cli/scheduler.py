"""The built-in daemon: one run per cron fire time until SIGTERM.

A run that overlaps the next fire time simply delays it (no backlog of runs); a run another
node holds the lock for is skipped; an upstream outage or a refused plan is logged and the
daemon waits for the next fire time.  A configuration error stops the daemon (exit 2).

The cron expression is read in ``TEAMSYNC_DAEMON_TZ`` (default UTC; daylight-saving changes
follow that zone's rules); the start-up log line says which.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from croniter import croniter

from config.errors import ConfigurationError, LockHeld, SafeguardRefused, StoreUnavailable
from config.settings import Settings
from connectors.errors import FatalError
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


def run_daemon(
    settings: Settings,
    cron: str,
    stop: Any,
    *,
    max_runs: int | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    engine_factory: Callable[[], Any] | None = None,
) -> int:
    """Loop until ``stop()`` is true; ``stop.event`` (threading.Event) wakes the wait early."""
    if not croniter.is_valid(cron):
        raise ConfigurationError(f"--cron: not a valid cron expression: {cron!r}")
    from sync.engine import Engine, RunOptions

    engine = (
        engine_factory() if engine_factory else Engine.from_settings(settings, should_stop=stop)
    )
    event = getattr(stop, "event", None)
    runs = 0
    tz = settings.daemon_tz
    log.info("daemon started", cron=cron, tz=tz, version=VERSION)
    while not stop():
        fire = next_fire(cron, clock(), tz)
        delay = max(0.0, (fire - clock()).total_seconds())
        log.info("next run", at=fire.isoformat(timespec="seconds"), in_seconds=round(delay, 1))
        if event is not None:
            if event.wait(delay):
                break
        else:  # pragma: no cover - plain callables in tests use max_runs
            import time

            time.sleep(delay)
        if stop():
            break
        try:
            result = engine.run(RunOptions(command="daemon"))
            log.info("daemon run done", status=result.status, exit_code=result.exit_code)
        except LockHeld as exc:
            log.info("run skipped", reason=str(exc))
        except (FatalError, SafeguardRefused, StoreUnavailable) as exc:
            log.error("run failed; waiting for the next fire time", error=str(exc))
        runs += 1
        if max_runs is not None and runs >= max_runs:
            break
    log.info("daemon stopped", runs=runs)
    return 0
