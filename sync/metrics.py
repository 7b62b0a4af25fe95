"""Prometheus metrics: ``teamsync daemon`` serves them, a one-shot ``run`` writes or pushes them.

    metrics = Metrics(VERSION)
    metrics.observe(store)        # after each run: count the runs this process finished,
                                  # refresh the gauges from the store
    metrics.write_textfile(path)  # node-exporter textfile collector (TEAMSYNC_METRICS_FILE)
    metrics.push(url)             # Prometheus Pushgateway (TEAMSYNC_PUSHGATEWAY_URL)
    MetricsServer(metrics, alive=..., ready=..., port=9810).start()  # /metrics /healthz /readyz

Everything is read back from the store (the ``runs`` row of each run with its stats, and the
``operations`` of that run), so a run that raised is counted like one that returned, and the
gauges of a one-shot process describe the store, not only what this process did.  Counters of
a one-shot process count that one run (a counter reset per run, which ``increase()`` and
``rate()`` handle); the daemon's accumulate.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Info,
    generate_latest,
    write_to_textfile,
)
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from config.errors import ConfigurationError, TeamsyncError
from sync.store import Store
from sync.store.models import AlertOutbox, Operation, QuarantinedRecord, Run

log = structlog.get_logger("teamsync.metrics")

COMPLETED = ("succeeded", "partial")  # a run that synced (exit 0 or 1)
RUN_STATUSES = (
    "succeeded",
    "partial",
    "failed",
    "refused",
    "interrupted",
    "dry_run",
    "store_unavailable",
    "lock_held",
)
WRITTEN = ("done", "adopted")
# Gainsight counts each call under its kind (read / write) and its operation: only operations.
_GS_KINDS = ("read", "write")


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


class Metrics:
    """teamsync's metrics in their own registry (never the process-global default one)."""

    def __init__(self, version: str = "unknown") -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        Info("teamsync_build", "teamsync version", registry=r).info({"version": version})
        self.store_up = Gauge(
            "teamsync_store_up", "1 when the state store answered at the last look", registry=r
        )
        self.last_run_start = Gauge(
            "teamsync_last_run_start_timestamp_seconds",
            "When the last finished run started (Unix time)",
            registry=r,
        )
        self.last_run_end = Gauge(
            "teamsync_last_run_end_timestamp_seconds",
            "When the last finished run ended (Unix time)",
            registry=r,
        )
        self.last_run_duration = Gauge(
            "teamsync_last_run_duration_seconds", "Wall time of the last finished run", registry=r
        )
        self.last_run_status = Gauge(
            "teamsync_last_run_status",
            "1 for the status of the last finished run, 0 for the others",
            ["status"],
            registry=r,
        )
        self.last_run_exit_code = Gauge(
            "teamsync_last_run_exit_code", "Exit code of the last finished run", registry=r
        )
        self.phase_duration = Gauge(
            "teamsync_last_run_phase_duration_seconds",
            "Wall time of each phase of the last finished run",
            ["phase"],
            registry=r,
        )
        self.last_success = Gauge(
            "teamsync_last_success_timestamp_seconds",
            "When the last run that completed (succeeded or partial) ended (Unix time)",
            registry=r,
        )
        self.runs = Counter(
            "teamsync_runs", "Runs finished by this process, by status", ["status"], registry=r
        )
        self.records_pulled = Counter(
            "teamsync_records_pulled",
            "Records pulled, by system and stream",
            ["system", "stream"],
            registry=r,
        )
        labels = ["system", "object", "kind"]
        self.ops_planned = Counter(
            "teamsync_operations_planned", "Write operations planned", labels, registry=r
        )
        self.ops_written = Counter(
            "teamsync_operations_written", "Write operations applied", labels, registry=r
        )
        self.ops_failed = Counter(
            "teamsync_operations_failed",
            "Write operations refused (their records are quarantined)",
            labels,
            registry=r,
        )
        self.api_calls = Counter(
            "teamsync_api_calls",
            "API calls made, by system and operation",
            ["system", "operation"],
            registry=r,
        )
        self.api_daily_used = Gauge(
            "teamsync_api_daily_requests_used",
            "The org's API requests used today, as the API last reported it",
            ["system"],
            registry=r,
        )
        self.api_daily_limit = Gauge(
            "teamsync_api_daily_requests_limit",
            "The org's daily API request allocation, as the API last reported it",
            ["system"],
            registry=r,
        )
        self.quarantined = Gauge(
            "teamsync_quarantined_records", "Records in quarantine (open)", registry=r
        )
        self.alerts_pending = Gauge(
            "teamsync_alerts_pending", "Alert deliveries waiting to be sent", registry=r
        )
        self.alerts_failed = Gauge(
            "teamsync_alerts_failed",
            "Alert deliveries that failed more than the attempt limit (still retried)",
            registry=r,
        )
        self.lock_waits = Counter(
            "teamsync_lock_waits",
            "Runs that found another run holding the lock and did not start",
            registry=r,
        )
        for status in RUN_STATUSES:
            self.runs.labels(status)  # every status present from the start, at 0
        self._seen: set[str] = set()
        self._api_seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    # --- recording ------------------------------------------------------------------------
    def count_outcome(self, status: str) -> None:
        """A run that left no row in the store (lock held, store unavailable)."""
        with self._lock:
            self.runs.labels(status).inc()
            if status == "lock_held":
                self.lock_waits.inc()
            if status == "store_unavailable":
                self.store_up.set(0)

    def observe(self, store: Store) -> None:
        """Count the runs this process finished since the last call; refresh the gauges."""
        with self._lock:
            try:
                self._observe(store)
            except (SQLAlchemyError, TeamsyncError) as exc:
                self.store_up.set(0)
                log.warning("metrics: the store did not answer", error=type(exc).__name__)
            else:
                self.store_up.set(1)

    def _observe(self, store: Store) -> None:
        with store.session() as s:
            mine = list(
                s.scalars(
                    select(Run)
                    .where(
                        Run.pid == os.getpid(),
                        Run.host == socket.gethostname(),
                        Run.finished_at.is_not(None),
                    )
                    .order_by(Run.started_at)
                )
            )
            for run in mine:
                if run.run_id in self._seen:
                    continue
                self._seen.add(run.run_id)
                self._count_run(s, run)
            last = s.scalars(
                select(Run).where(Run.finished_at.is_not(None)).order_by(Run.started_at.desc())
            ).first()
            if last is not None:
                self._last_run(last)
            success = s.scalar(
                select(func.max(Run.finished_at)).where(
                    Run.status.in_(COMPLETED), Run.dry_run.is_(False)
                )
            )
            if success is not None:
                self.last_success.set(success.timestamp())
            self.quarantined.set(
                s.scalar(
                    select(func.count(QuarantinedRecord.id)).where(
                        QuarantinedRecord.resolved_at.is_(None)
                    )
                )
                or 0
            )
            by_status = dict(
                s.execute(
                    select(AlertOutbox.status, func.count(AlertOutbox.id)).group_by(
                        AlertOutbox.status
                    )
                ).all()
            )
            self.alerts_pending.set(by_status.get("pending", 0))
            self.alerts_failed.set(by_status.get("failed", 0))

    def _last_run(self, run: Run) -> None:
        stats = run.stats or {}
        self.last_run_start.set(run.started_at.timestamp())
        if run.finished_at is not None:
            self.last_run_end.set(run.finished_at.timestamp())
        seconds = stats.get("seconds")
        if isinstance(seconds, int | float):
            self.last_run_duration.set(seconds)
        for status in {*RUN_STATUSES, run.status}:
            self.last_run_status.labels(status).set(1 if status == run.status else 0)
        self.last_run_exit_code.set(run.exit_code if run.exit_code is not None else -1)
        self.phase_duration.clear()
        for phase, value in (stats.get("phases") or {}).items():
            if isinstance(value, int | float):
                self.phase_duration.labels(str(phase)).set(value)
        api = stats.get("api") or {}
        sf = api.get("salesforce") or {}
        if sf.get("used") is not None:
            self.api_daily_used.labels("salesforce").set(sf["used"])
        if sf.get("max"):
            self.api_daily_limit.labels("salesforce").set(sf["max"])

    def _count_run(self, s: Any, run: Run) -> None:
        stats = run.stats or {}
        self.runs.labels(run.status).inc()
        for stream, pulled in (stats.get("pulled") or {}).items():
            system, _, name = str(stream).rpartition(".")
            records = pulled.get("records") if isinstance(pulled, dict) else None
            if isinstance(records, int) and records > 0:
                self.records_pulled.labels(system or "unknown", name).inc(records)
        rows = s.execute(
            select(
                Operation.system,
                Operation.object,
                Operation.action,
                Operation.status,
                func.count(Operation.id),
            )
            .where(Operation.run_id == run.run_id)
            .group_by(Operation.system, Operation.object, Operation.action, Operation.status)
        ).all()
        for system, obj, action, status, n in rows:
            labels = (system, obj, action)
            self.ops_planned.labels(*labels).inc(n)
            if status in WRITTEN:
                self.ops_written.labels(*labels).inc(n)
            elif status == "failed":
                self.ops_failed.labels(*labels).inc(n)
        # Client call counters grow for the life of the client (the daemon keeps one): count
        # the growth since the last run seen; a smaller value is a new client.
        api = stats.get("api") or {}
        for system, usage in api.items():
            calls = (usage or {}).get("calls") or {}
            for operation, value in calls.items():
                if system == "gainsight" and operation in _GS_KINDS:
                    continue
                key = (str(system), str(operation))
                before = self._api_seen.get(key, 0.0)
                delta = value - before if value >= before else value
                self._api_seen[key] = float(value)
                if delta > 0:
                    self.api_calls.labels(*key).inc(delta)

    # --- exporting ------------------------------------------------------------------------
    def exposition(self) -> bytes:
        with self._lock:
            return generate_latest(self.registry)

    def write_textfile(self, path: Path) -> None:
        """Atomically (write + rename) in the node-exporter textfile format."""
        with self._lock:
            write_to_textfile(str(path), self.registry)

    def push(
        self,
        url: str,
        *,
        job: str = "teamsync",
        instance: str | None = None,
        verify: Any = True,
        timeout: float = 10.0,
    ) -> None:
        """PUT every metric to a Pushgateway (replacing this job's group); no redirects."""
        target = f"{url.rstrip('/')}/metrics/job/{job}"
        if instance:
            target += f"/instance/{instance}"
        body = self.exposition()
        response = httpx.put(
            target,
            content=body,
            headers={"Content-Type": CONTENT_TYPE_LATEST},
            timeout=timeout,
            verify=verify,
            follow_redirects=False,
        )
        if response.status_code >= 300:
            raise httpx.HTTPStatusError(
                f"Pushgateway answered HTTP {response.status_code}",
                request=response.request,
                response=response,
            )


# --- the daemon's HTTP endpoints -------------------------------------------------------------
class MetricsServer:
    """``/metrics`` (Prometheus text), ``/healthz`` and ``/readyz`` (JSON, 200 or 503)."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        alive: Callable[[], tuple[bool, str]],
        ready: Callable[[], tuple[bool, str]],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.metrics = metrics
        self._alive = alive
        self._ready = ready
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer._handle(self, body=True)

            def do_HEAD(self) -> None:
                outer._handle(self, body=False)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # scrapes every few seconds: not worth a log line each

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot serve metrics on {host}:{port} ({exc.strerror or exc}): set "
                "TEAMSYNC_METRICS_PORT to a free port (0: do not serve)"
            ) from exc
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="teamsync-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handle(self, req: BaseHTTPRequestHandler, *, body: bool) -> None:
        path = req.path.split("?", 1)[0]
        if path == "/metrics":
            payload, ctype, status = self.metrics.exposition(), CONTENT_TYPE_LATEST, 200
        elif path in ("/healthz", "/readyz"):
            ok, reason = (self._alive if path == "/healthz" else self._ready)()
            status = 200 if ok else 503
            payload = json.dumps({"ok": ok, "reason": reason}).encode()
            ctype = "application/json"
        else:
            payload, ctype, status = b"not found\n", "text/plain; charset=utf-8", 404
        req.send_response(status)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(payload)))
        req.send_header("Cache-Control", "no-store")
        req.end_headers()
        if body:
            req.wfile.write(payload)
