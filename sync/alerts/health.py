"""Sync-health alerts: the sync itself broke (or recovered), as distinct from account health.

One alert per condition and episode, to every configured sink, through the same outbox (so it
is recorded before it is sent, retried, and deduplicated by its idempotency key):

==================  ==============================================================  ==========
condition           when                                                            exit code
==================  ==============================================================  ==========
``failed``          a run stopped on an error (upstream unavailable, auth, quota...)  3 (or 1)
``refused``         the mass-change safeguard refused the plan                        4
``interrupted``     SIGTERM stopped the run early (it resumes next time)              75
``store_unavailable`` the state store could not be used                               5
``partial``         ``TEAMSYNC_ALERT_PARTIAL_RUNS`` (3) partial runs in a row          1
==================  ==============================================================  ==========

A condition fires once (``sync-health:{condition}:{run id}``) and stays quiet while it lasts;
a later run that clears it sends a resolve (``...:resolved``) with the same condition: a run
that completed (succeeded or partial) clears everything but ``partial``, which only a
succeeded run clears.  Each alert carries the reason and the next step.

The outbox lives in the store, so ``store_unavailable`` cannot go through it: it is sent
straight to the sinks and remembered in a small spool file (in ``TEAMSYNC_DATA_DIR`` or the
temporary directory) that dedupes it on this host and lets the first run that reaches the store
again record it and send the resolve.  A fresh container per run (a CronJob without a data
volume) has no spool to remember it by: each such run alerts, and no resolve follows.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select

from config.errors import TeamsyncError
from sync.alerts.sinks import Sink
from sync.clock import utcnow
from sync.store import Store
from sync.store.models import AlertOutbox, Run
from sync.version import VERSION

log = structlog.get_logger("teamsync.alerts")

PREFIX = "sync-health"
FIRING = "sync_health"  # alert_outbox.kind of a firing sync-health alert
RESOLVED = "sync_resolved"  # ... and of its resolve
CONDITIONS = ("failed", "refused", "interrupted", "store_unavailable", "partial")
SPOOL_NAME = "teamsync-sync-health.json"

_TITLES = {
    "failed": "the sync run failed",
    "refused": "the sync run was refused by the mass-change safeguard",
    "interrupted": "the sync run was interrupted",
    "store_unavailable": "the state store is unavailable",
    "partial": "sync runs keep leaving records failed",
}
_NEXT_STEPS = {
    "failed": (
        "Nothing to do for a short outage: the next run retries and resumes where this one "
        "stopped. If it persists, check the API named in the reason (status page, "
        "credentials, daily API quota: `teamsync status`) and the run's log lines."
    ),
    "refused": (
        "Review what the plan would take away (`teamsync plan`); if it is intended, apply it "
        "once with `teamsync run --allow-mass-change`, otherwise fix the source data or the "
        "mapping."
    ),
    "interrupted": (
        "The run was stopped (SIGTERM: a deploy, an eviction, a node drain) and the next run "
        "resumes. If it keeps happening, give runs more time (terminationGracePeriodSeconds, "
        "activeDeadlineSeconds) or find what stops them."
    ),
    "store_unavailable": (
        "Check that the database is up and reachable from teamsync, has free space, and that "
        "its user has its privileges (TEAMSYNC_DATABASE_URL); runs retry on their schedule."
    ),
    "partial": (
        "Records keep failing to write and sit in quarantine: see `teamsync status` for the "
        "records and the reasons the APIs gave."
    ),
}


def condition_of(status: str, exit_code: int | None) -> str | None:
    """The sync-health condition a finished run is in (``partial`` is judged over runs)."""
    if status == "failed":
        return "store_unavailable" if exit_code == 5 else "failed"
    if status in ("refused", "interrupted", "store_unavailable"):
        return status
    return None


def alert_payload(
    condition: str,
    *,
    key: str,
    now: datetime,
    reason: str,
    run_id: str | None,
    status: str | None,
    exit_code: int | None,
    since: datetime | None = None,
    resolves: str | None = None,
) -> dict[str, Any]:
    """The JSON body of a sync-health alert (``state`` firing or resolved)."""
    resolved = resolves is not None
    what = _TITLES[condition]
    title = (
        f"teamsync sync health: recovered — {what} (cleared)"
        if resolved
        else f"teamsync sync health: {what}"
        + (f" (exit {exit_code})" if exit_code not in (None, 0) else "")
    )
    return {
        "idempotency_key": key,
        "kind": "sync_health",
        "state": "resolved" if resolved else "firing",
        "condition": condition,
        "title": title,
        "reason": reason[:2000],
        "next_step": "No action needed." if resolved else _NEXT_STEPS[condition],
        "run_id": run_id,
        "status": status,
        "exit_code": exit_code,
        "since": (since or now).isoformat(),
        "occurred_at": now.isoformat(),
        "resolves": resolves,
        "host": socket.gethostname(),
        "version": VERSION,
    }


class SyncHealth:
    """Records sync-health alerts into the outbox after each run (delivery: the Alerter)."""

    def __init__(
        self,
        store: Store,
        sinks: Sequence[Sink],
        *,
        partial_runs: int = 3,
        spool_dir: Path | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.sink_names = [s.name for s in sinks]
        self.partial_runs = partial_runs
        self.spool = spool_path(spool_dir)
        self.clock = clock

    def record(
        self,
        run_id: str,
        *,
        status: str,
        exit_code: int | None,
        error: str | None = None,
        dry_run: bool = False,
    ) -> list[str]:
        """Open or resolve conditions after a run; returns the keys recorded."""
        if dry_run or not self.sink_names:
            return []
        now = self.clock()
        recorded: list[str] = []
        with self.store.session() as s:
            self._import_spool(s, now)
            active = self._active(s)
            current = condition_of(status, exit_code)
            if current is None and status == "partial" and self._partial_streak(s):
                current = "partial"
            if current is not None and current not in active:
                key = f"{PREFIX}:{current}:{run_id}"
                reason = error or self._reason(current, status)
                payload = alert_payload(
                    current,
                    key=key,
                    now=now,
                    reason=reason,
                    run_id=run_id,
                    status=status,
                    exit_code=exit_code,
                )
                self._add(s, key, FIRING, payload, now, run_id)
                recorded.append(key)
                log.warning("sync health alert", condition=current, key=key)
            clears: tuple[str, ...] = ()
            if status == "succeeded":
                clears = CONDITIONS
            elif status == "partial":
                clears = tuple(c for c in CONDITIONS if c != "partial")
            for condition in clears:
                episode = active.get(condition)
                if episode is None or condition == current:
                    continue
                key = f"{episode.idempotency_key}:resolved"
                payload = alert_payload(
                    condition,
                    key=key,
                    now=now,
                    reason=f"run {run_id} {status}",
                    run_id=run_id,
                    status=status,
                    exit_code=exit_code,
                    since=_since(episode),
                    resolves=episode.idempotency_key,
                )
                self._add(s, key, RESOLVED, payload, now, run_id)
                recorded.append(key)
                log.info("sync health resolved", condition=condition, key=key)
        return recorded

    # --- helpers --------------------------------------------------------------------------
    def _partial_streak(self, s: Any) -> bool:
        statuses = list(
            s.scalars(
                select(Run.status)
                .where(Run.dry_run.is_(False), Run.finished_at.is_not(None))
                .order_by(Run.started_at.desc())
                .limit(self.partial_runs)
            )
        )
        return len(statuses) == self.partial_runs and all(x == "partial" for x in statuses)

    @staticmethod
    def _reason(condition: str, status: str) -> str:
        if condition == "partial":
            return "several runs in a row finished with records failed (quarantined)"
        return f"the run ended {status}"

    @staticmethod
    def _active(s: Any) -> dict[str, AlertOutbox]:
        """Condition -> the firing row of its open episode (the newest row is not a resolve)."""
        active: dict[str, AlertOutbox] = {}
        for condition in CONDITIONS:
            newest = s.scalars(
                select(AlertOutbox)
                .where(AlertOutbox.idempotency_key.like(f"{PREFIX}:{condition}:%"))
                .order_by(AlertOutbox.id.desc())
                .limit(1)
            ).first()
            if newest is not None and newest.kind == FIRING:
                active[condition] = newest
        return active

    def _add(
        self,
        s: Any,
        key: str,
        kind: str,
        payload: dict[str, Any],
        now: datetime,
        run_id: str | None,
        *,
        status: str = "pending",
    ) -> None:
        for sink in self.sink_names:
            s.add(
                AlertOutbox(
                    idempotency_key=key,
                    sink=sink,
                    account_id=None,
                    kind=kind,
                    payload=payload,
                    status=status,
                    attempts=0 if status == "pending" else 1,
                    next_attempt_at=now if status == "pending" else None,
                    created_at=now,
                    sent_at=None if status == "pending" else now,
                    run_id=run_id,
                )
            )

    def _import_spool(self, s: Any, now: datetime) -> None:
        """A store_unavailable alert sent straight to the sinks becomes an open episode in the
        outbox (already sent), so this run can resolve it."""
        spooled = read_spool(self.spool)
        if not spooled:
            return
        for condition, entry in spooled.items():
            key = str(entry.get("key") or "")
            if condition not in CONDITIONS or not key.startswith(f"{PREFIX}:{condition}:"):
                continue
            exists = s.scalars(
                select(AlertOutbox.id).where(AlertOutbox.idempotency_key == key).limit(1)
            ).first()
            if exists is None:
                payload = dict(entry.get("payload") or {})
                self._add(s, key, FIRING, payload, now, None, status="sent")
        write_spool(self.spool, {})


def _since(row: AlertOutbox) -> datetime | None:
    since = (row.payload or {}).get("since")
    if isinstance(since, str):
        try:
            return datetime.fromisoformat(since)
        except ValueError:
            return None
    return None


# --- the store is unavailable: straight to the sinks ------------------------------------------
def spool_path(directory: Path | None) -> Path:
    return Path(directory or tempfile.gettempdir()) / SPOOL_NAME


def read_spool(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_spool(path: Path, data: dict[str, Any]) -> None:
    try:
        if not data:
            path.unlink(missing_ok=True)
            return
        tmp = path.with_name(f"{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # owner only
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(data))
        tmp.replace(path)
    except OSError as exc:  # a read-only file system: no dedupe, still no failure
        log.warning("sync health spool not written", error=exc.strerror or type(exc).__name__)


def notify_store_unavailable(
    sinks: Sequence[Sink],
    error: str,
    *,
    spool_dir: Path | None = None,
    exit_code: int = 5,
    clock: Callable[[], datetime] = utcnow,
) -> bool:
    """Send the store_unavailable alert to every sink, once per episode on this host; returns
    True when it was sent now.  Never raises: the run's own exit code tells the rest."""
    path = spool_path(spool_dir)
    spooled = read_spool(path)
    if "store_unavailable" in spooled:
        return False
    now = clock()
    key = f"{PREFIX}:store_unavailable:{now.strftime('%Y%m%dT%H%M%S')}"
    payload = alert_payload(
        "store_unavailable",
        key=key,
        now=now,
        reason=error,
        run_id=None,
        status="store_unavailable",
        exit_code=exit_code,
    )
    sent = False
    for sink in sinks:
        try:
            sink.send(payload)
            sent = True
        except TeamsyncError as exc:
            log.warning("sync health alert not delivered", sink=sink.name, error=str(exc))
    if sent:
        spooled["store_unavailable"] = {"key": key, "since": now.isoformat(), "payload": payload}
        write_spool(path, spooled)
    return sent
