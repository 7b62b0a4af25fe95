"""Metrics: the daemon serves /metrics, /healthz and /readyz and the listed metrics move after
a run (read with Prometheus' own text parser); a one-shot `run` writes a textfile that parses
and pushes to a Pushgateway; the heartbeat is pinged after a completed run and never fails it."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from config.errors import LockHeld
from config.settings import Settings
from emulators.http import EmulatorServer, Request, Response
from emulators.runner import RunningEmulators
from emulators.tls import TlsMaterial
from sync.cli.app import app
from sync.cli.scheduler import DaemonHealth, _one_run, run_daemon
from sync.metrics import Metrics, MetricsServer
from sync.store import Store
from tests.sync.cli.test_cli import cli_env, free_port
from tests.sync.conftest import make_settings

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
APPLY = ("run", "--allow-mass-change", "--max-changes", "5000")

LISTED = (  # the list, by Prometheus sample name
    "teamsync_last_run_start_timestamp_seconds",
    "teamsync_last_run_end_timestamp_seconds",
    "teamsync_last_run_status",
    "teamsync_last_run_duration_seconds",
    "teamsync_last_run_phase_duration_seconds",
    "teamsync_last_success_timestamp_seconds",
    "teamsync_records_pulled_total",
    "teamsync_operations_planned_total",
    "teamsync_operations_written_total",
    "teamsync_api_calls_total",
    "teamsync_api_daily_requests_used",
    "teamsync_quarantined_records",
    "teamsync_alerts_pending",
    "teamsync_alerts_failed",
    "teamsync_lock_waits_total",
)


def parse(text: str) -> Samples:
    """Every sample, keyed by (name, sorted labels); the parser refuses malformed text."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def total(samples: Samples, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("TEAMSYNC_") and key != "TEAMSYNC_TEST_DATABASE_URL":
            monkeypatch.delenv(key)


class Flag:
    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self) -> bool:
        return self.event.is_set()


class GatedClock:
    """Held until ``go``; then just before a fire time (a run starts at once), then just
    after it (the next fire time is a minute away: the daemon waits and can be scraped)."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.calls = 0

    def __call__(self) -> datetime:
        self.go.wait(60)
        self.calls += 1
        if self.calls <= 2:
            return datetime(2026, 1, 1, 0, 0, 59, 950_000, tzinfo=UTC)
        return datetime(2026, 1, 1, 0, 1, 0, tzinfo=UTC)


@pytest.fixture
def daemon(
    upstream: RunningEmulators, database_url: str
) -> Iterator[tuple[str, GatedClock, threading.Thread]]:
    """`teamsync daemon` (run_daemon) on a thread, serving on a free port."""
    settings: Settings = make_settings(
        upstream, database_url, metrics_port=free_port(), metrics_host="127.0.0.1"
    )
    clock = GatedClock()
    stop = Flag()
    ready = threading.Event()
    servers: list[MetricsServer | None] = []
    errors: list[BaseException] = []

    def on_ready(server: MetricsServer | None) -> None:
        servers.append(server)
        ready.set()

    def target() -> None:
        try:
            run_daemon(settings, "* * * * *", stop, clock=clock, on_ready=on_ready)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert ready.wait(30)
    assert not errors, errors
    (server,) = servers
    assert server is not None
    try:
        yield f"http://127.0.0.1:{server.port}", clock, thread
    finally:
        stop.event.set()
        clock.go.set()
        thread.join(30)
        assert not thread.is_alive()
        assert not errors, errors


def test_daemon_serves_metrics_that_move_after_a_run(
    daemon: tuple[str, GatedClock, threading.Thread],
) -> None:
    """Before the first run: counters and last-run gauges at 0, healthy and ready.  After one
    run: every listed metric is there with plausible values."""
    url, clock, _ = daemon
    code, text = get(f"{url}/metrics")
    assert code == 200
    before = parse(text)
    assert value(before, "teamsync_runs_total", status="succeeded") == 0
    assert value(before, "teamsync_lock_waits_total") == 0
    assert value(before, "teamsync_last_run_start_timestamp_seconds") == 0  # no run yet
    assert value(before, "teamsync_store_up") == 1
    assert get(f"{url}/healthz")[0] == 200
    assert get(f"{url}/readyz")[0] == 200

    started = time.time()
    clock.go.set()
    deadline = time.monotonic() + 120
    after: Samples = {}
    while time.monotonic() < deadline:
        after = parse(get(f"{url}/metrics")[1])
        if value(after, "teamsync_runs_total", status="succeeded") == 1:
            break
        time.sleep(0.2)
    assert value(after, "teamsync_runs_total", status="succeeded") == 1
    assert set(LISTED) <= names(after), set(LISTED) - names(after)
    assert started - 1 <= after[("teamsync_last_run_start_timestamp_seconds", ())] <= time.time()
    assert (
        after[("teamsync_last_run_end_timestamp_seconds", ())]
        >= after[("teamsync_last_run_start_timestamp_seconds", ())]
    )
    assert value(after, "teamsync_last_run_status", status="succeeded") == 1
    assert value(after, "teamsync_last_run_status", status="failed") == 0
    assert value(after, "teamsync_last_run_exit_code") == 0
    assert after[("teamsync_last_run_duration_seconds", ())] > 0
    for phase in ("pull", "map", "plan", "push"):
        assert value(after, "teamsync_last_run_phase_duration_seconds", phase=phase) is not None
    assert (
        after[("teamsync_last_success_timestamp_seconds", ())]
        == after[("teamsync_last_run_end_timestamp_seconds", ())]
    )
    assert value(after, "teamsync_records_pulled_total", system="salesforce", stream="Account")
    assert total(after, "teamsync_records_pulled_total", system="gainsight") > 0
    planned = total(after, "teamsync_operations_planned_total")
    written = total(after, "teamsync_operations_written_total")
    assert planned > 0
    assert 0 < written <= planned
    assert total(after, "teamsync_operations_planned_total", system="salesforce") > 0
    assert total(after, "teamsync_api_calls_total", system="salesforce") > 0
    assert total(after, "teamsync_api_calls_total", system="gainsight") > 0
    assert value(after, "teamsync_api_daily_requests_used", system="salesforce")
    assert value(after, "teamsync_api_daily_requests_limit", system="salesforce")
    assert value(after, "teamsync_quarantined_records") == 0
    assert value(after, "teamsync_alerts_failed") == 0
    assert ("teamsync_build_info", (("version", "0.1.0"),)) in after or any(
        n == "teamsync_build_info" for n, _ in after
    )
    assert get(f"{url}/readyz")[0] == 200
    assert get(f"{url}/nope")[0] == 404


def test_daemon_health_alive_and_ready() -> None:
    """/healthz fails when the loop stops beating; /readyz when the last run failed."""
    now = [0.0]
    health = DaemonHealth(stale_after=60, clock=lambda: now[0])
    assert health.alive()[0]
    assert health.ready() == (True, "last run none yet")
    now[0] = 61
    ok, reason = health.alive()
    assert not ok
    assert "61 s" in reason
    health.beat()
    assert health.alive()[0]
    health.ran("failed", "salesforce: unreachable")
    assert health.ready() == (False, "the last run failed: salesforce: unreachable")
    health.ran("partial")
    assert health.ready()[0]
    health.ran("store_unavailable", "down")
    assert not health.ready()[0]


def test_server_answers_503_with_the_reason() -> None:
    """The endpoints answer JSON with the reason, 503 when not ok."""
    metrics = Metrics("test")
    server = MetricsServer(
        metrics,
        alive=lambda: (False, "stuck"),
        ready=lambda: (False, "the last run failed"),
        port=0,
    ).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert get(f"{base}/healthz") == (503, '{"ok": false, "reason": "stuck"}')
        assert get(f"{base}/readyz")[0] == 503
        code, text = get(f"{base}/metrics")
        assert code == 200
        assert value(parse(text), "teamsync_build_info", version="test") == 1
    finally:
        server.stop()


def test_lock_waits_are_counted(settings: Settings) -> None:
    """A run that finds the lock held is a lock wait, not a run of its own."""

    class Busy:
        def run(self, options: Any) -> Any:
            raise LockHeld("another teamsync run holds the lock 'run'")

    metrics = Metrics("test")
    health = DaemonHealth(stale_after=60)
    _one_run(Busy(), None, metrics, health, settings)
    samples = parse(metrics.exposition().decode())
    assert value(samples, "teamsync_lock_waits_total") == 1
    assert value(samples, "teamsync_runs_total", status="lock_held") == 1
    assert health.ready()[0]


# --- one-shot run: textfile, Pushgateway, heartbeat --------------------------------------------
class Collector:
    def __init__(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.requests: list[Request] = []
        self.status = status
        self.headers = headers or {}

    def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        return Response(self.status, b"OK", dict(self.headers))


@pytest.fixture
def pushgateway() -> Iterator[tuple[Collector, str]]:
    collector = Collector()
    server = EmulatorServer(collector).start()  # plain HTTP, as in-cluster Pushgateways are
    try:
        yield collector, server.url
    finally:
        server.stop()


@pytest.fixture
def monitor(tls: TlsMaterial) -> Iterator[tuple[Collector, str]]:
    """A healthchecks-style ping endpoint over HTTPS (the emulator CA)."""
    collector = Collector()
    server = EmulatorServer(collector, ssl_context=tls.server_context).start()
    try:
        yield collector, server.url
    finally:
        server.stop()


def test_run_writes_a_textfile_that_parses_and_pushes(
    upstream: RunningEmulators,
    database_url: str,
    tmp_path: Path,
    pushgateway: tuple[Collector, str],
    monitor: tuple[Collector, str],
) -> None:
    """`teamsync run` writes TEAMSYNC_METRICS_FILE atomically in the textfile format, PUTs the
    same metrics to the Pushgateway (job group, replaced each run) and pings the heartbeat."""
    gateway, gateway_url = pushgateway
    pings, monitor_url = monitor
    (tmp_path / "textfile").mkdir()
    prom = tmp_path / "textfile" / "teamsync.prom"
    env = cli_env(
        upstream,
        database_url,
        TEAMSYNC_METRICS_FILE=str(prom),
        TEAMSYNC_PUSHGATEWAY_URL=gateway_url,
        TEAMSYNC_HEARTBEAT_URL=f"{monitor_url}/ping/3f1a-uuid",
        TEAMSYNC_LOG_LEVEL="INFO",
    )
    result = CliRunner().invoke(
        app, ["run", "--allow-mass-change", "--max-changes", "5000"], env=env
    )
    assert result.exit_code == 0, result.stderr
    samples = parse(prom.read_text())
    assert set(LISTED) <= names(samples)
    assert value(samples, "teamsync_runs_total", status="succeeded") == 1
    assert value(samples, "teamsync_last_run_status", status="succeeded") == 1
    assert total(samples, "teamsync_operations_written_total") > 0
    assert list(prom.parent.iterdir()) == [prom]  # no temporary file left behind
    (put,) = gateway.requests
    assert (put.method, put.path) == ("PUT", "/metrics/job/teamsync")
    pushed = parse(put.body.decode())
    assert value(pushed, "teamsync_runs_total", status="succeeded") == 1
    (ping,) = pings.requests
    assert (ping.method, ping.path) == ("GET", "/ping/3f1a-uuid")
    assert "3f1a-uuid" not in result.stderr  # the ping URL is a secret

    # A run that finds the lock held: exit 75, and the file says so while keeping the store's
    # last-run gauges.
    store = Store(database_url)
    with store.lock("run"):
        held = CliRunner().invoke(app, ["run"], env=env)
    store.dispose()
    assert held.exit_code == 75
    samples = parse(prom.read_text())
    assert value(samples, "teamsync_lock_waits_total") == 1
    assert value(samples, "teamsync_last_run_status", status="succeeded") == 1
    assert len(pings.requests) == 1  # no heartbeat for a run that did not happen


def test_heartbeat_failures_never_fail_the_run(
    upstream: RunningEmulators, tmp_path: Path, monitor: tuple[Collector, str]
) -> None:
    """A monitor answering 500, or redirecting (not followed), leaves the run's exit code 0."""
    pings, monitor_url = monitor
    env = cli_env(
        upstream,
        f"sqlite:///{tmp_path / 'teamsync.db'}",
        TEAMSYNC_HEARTBEAT_URL=f"{monitor_url}/ping/x1",
        TEAMSYNC_LOG_LEVEL="WARNING",
    )
    pings.status = 500
    result = CliRunner().invoke(
        app, ["run", "--allow-mass-change", "--max-changes", "5000"], env=env
    )
    assert result.exit_code == 0, result.stderr
    assert len(pings.requests) == 2  # two quick attempts
    assert "heartbeat failed" in result.stderr
    pings.requests.clear()
    pings.status = 302
    pings.headers = {"Location": f"{monitor_url}/elsewhere"}
    result = CliRunner().invoke(app, ["run"], env=env)
    assert result.exit_code == 0, result.stderr
    assert [r.path for r in pings.requests] == ["/ping/x1"]
    assert "not followed" in result.stderr


def test_textfile_failure_never_fails_the_run(upstream: RunningEmulators, tmp_path: Path) -> None:
    """An unwritable metrics path is logged; the run's exit code is its own."""
    env = cli_env(
        upstream,
        f"sqlite:///{tmp_path / 'teamsync.db'}",
        TEAMSYNC_METRICS_FILE=str(tmp_path / "missing-dir" / "t.prom"),
        TEAMSYNC_LOG_LEVEL="WARNING",
    )
    result = CliRunner().invoke(
        app, ["run", "--allow-mass-change", "--max-changes", "5000"], env=env
    )
    assert result.exit_code == 0, result.stderr
    assert "metrics file not written" in result.stderr
