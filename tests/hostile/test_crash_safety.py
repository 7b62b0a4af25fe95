"""The embedded default is crash-safe: `teamsync run` SIGKILLed at five points on SQLite, and
three simultaneous first runs on a fresh SQLite file.

After a SIGKILL the next run starts at once (the OS lock died with the process: no 75),
converges, and leaves no duplicate team rows, CTAs or alerts.  Of three first runs started
together exactly one runs (exit 0); the others find the lock held (exit 75), none sees a
half-created schema.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from emulators.http import App, EmulatorServer, Request, Response
from emulators.runner import RunningEmulators, start_emulators
from emulators.tls import TlsMaterial
from sync.store import Store
from sync.store.models import AlertOutbox

ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS = 120  # a first run makes 7 write calls: 3 Salesforce, 3 Company batches, 1 CTA
FIRST_RUN_CLEAN = 40  # an org whose first run exits 0 (the larger one quarantines a few records)
ALL = ["--allow-mass-change", "--max-changes", "100000"]
SECRET = "crash-safety-secret"


def is_write(request: Request) -> bool:
    """A call that changes data, known before the emulator acts on it."""
    path, method = request.path, request.method.upper()
    if "/__emulator" in path or method == "GET":
        return False
    if path.startswith("/services/data/"):
        if "/query" in path or path.endswith("/jobs/query") or "/jobs/query/" in path:
            return False
        return "/composite/sobjects" in path or "/sobjects/" in path or "/jobs/ingest" in path
    if path.startswith("/v1/data/objects/query/") or path.rstrip("/").endswith("/cta/list"):
        return False
    return path.startswith(("/v1/data/objects/", "/v2/cockpit/cta"))


@dataclass
class Trap:
    """Wraps an emulator server's app: SIGKILLs the run at a chosen write."""

    point: tuple[str, int] | None = None  # ("after", n) / ("before", n)
    pid: int | None = None
    writes: int = 0
    fired: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def kill(self) -> None:
        if self.pid is not None and not self.fired:
            self.fired = True
            os.kill(self.pid, signal.SIGKILL)

    def wrap(self, app: App) -> App:
        def trapped(request: Request) -> Response:
            if not is_write(request):
                return app(request)
            with self.lock:
                self.writes += 1
                n = self.writes
                if self.point == ("before", n):
                    self.kill()
                    return Response.text("gone", 503)
            response = app(request)
            if self.point == ("after", n) and response.status < 300:
                self.kill()
            return response

        return trapped


@dataclass
class Receiver:
    """The webhook sink: records every delivery's key; may kill the run on the first one."""

    trap: Trap
    kill_on_first: bool = False
    keys: list[str] = field(default_factory=list)

    def __call__(self, request: Request) -> Response:
        key = request.headers.get("webhook-id") or ""
        self.keys.append(key)
        if self.kill_on_first and len(self.keys) == 1:
            self.trap.kill()
        return Response.empty(204)


@dataclass
class Rig:
    upstream: RunningEmulators
    receiver: Receiver
    trap: Trap
    env: dict[str, str]
    database: Path

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "sync.cli", "run", *args],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def run(self, *args: str) -> tuple[int, str]:
        child = self.spawn(*args)
        out, _ = child.communicate(timeout=300)
        return child.returncode, out


@pytest.fixture
def rig(request: pytest.FixtureRequest, tls: TlsMaterial, tmp_path: Path) -> Iterator[Rig]:
    accounts = getattr(request, "param", ACCOUNTS)
    upstream = start_emulators(accounts=accounts, seed=5, tls=tls, workdir=tmp_path / "upstream")
    trap = Trap()
    for server in (upstream.sf_server, upstream.gs_server):
        server._server.app = trap.wrap(server._server.app)
    receiver = Receiver(trap)
    hook = EmulatorServer(receiver, ssl_context=tls.server_context).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMSYNC_")}
    env.update(upstream.env())
    database = tmp_path / "teamsync.db"
    env.update(
        TEAMSYNC_DATABASE_URL=f"sqlite:///{database}",
        TEAMSYNC_LOG_LEVEL="ERROR",
        TEAMSYNC_LOG_FORMAT="json",
        TEAMSYNC_RETRY_MAX_ATTEMPTS="2",
        TEAMSYNC_RETRY_MAX_WAIT_SECONDS="0.5",
        TEAMSYNC_ALERT_SINKS="log,webhook",
        TEAMSYNC_ALERT_WEBHOOK_URL=f"{hook.url}/hook",
        TEAMSYNC_ALERT_WEBHOOK_SECRET=SECRET,
    )
    try:
        yield Rig(upstream, receiver, trap, env, database)
    finally:
        hook.stop()
        upstream.stop()


def team_pairs(upstream: RunningEmulators) -> Counter[tuple[str, str]]:
    table = upstream.salesforce.tables["AccountTeamMember"]
    return Counter(
        (row["AccountId"], row["UserId"])
        for rid, _ in table.iter_rows()
        if (row := table.get(rid)) is not None
    )


def open_risk_ctas(upstream: RunningEmulators) -> Counter[tuple[str, str]]:
    table = upstream.gainsight.tables["calltoaction"]
    names = upstream.gainsight.picklists.name
    out: Counter[tuple[str, str]] = Counter()
    for rid, _ in table.iter_rows():
        row = table.get(rid)
        if row is not None and not row["IsClosed"] and names(row["TypeId"]) == "Risk":
            out[(row["CompanyId"], names(row["ReasonId"]))] += 1
    return out


def writes(upstream: RunningEmulators) -> int:
    return sum(1 for c in upstream.log.calls(kind="write") if c.status < 300)


POINTS = {
    "after-write-1": ("after", 1),
    "before-write-2": ("before", 2),
    "after-write-3": ("after", 3),
    "after-write-6": ("after", 6),
    "after-first-alert": None,
}


@pytest.mark.parametrize("name", list(POINTS))
def test_sigkill_then_the_next_run_starts_at_once_and_converges(rig: Rig, name: str) -> None:
    """SIGKILL mid-run: no lock left behind, nothing doubled, the org converges."""
    point = POINTS[name]
    rig.trap.point = point
    rig.receiver.kill_on_first = point is None
    child = rig.spawn(*ALL)
    rig.trap.pid = child.pid
    out, _ = child.communicate(timeout=300)
    assert child.returncode == -signal.SIGKILL, out
    assert rig.trap.fired
    rig.trap.point = None
    rig.receiver.kill_on_first = False

    started = time.monotonic()
    code, out = rig.run(*ALL)
    assert code != 75, out  # the lock died with the killed process
    assert code in (0, 1), out
    assert time.monotonic() - started < 120

    rig.upstream.log.reset()
    code, out = rig.run()
    assert code in (0, 1), out
    assert writes(rig.upstream) == 0, rig.upstream.log.summary()

    assert [pair for pair, n in team_pairs(rig.upstream).items() if n > 1] == []
    assert [key for key, n in open_risk_ctas(rig.upstream).items() if n > 1] == []
    store = Store(f"sqlite:///{rig.database}")
    with store.session() as s:
        rows = list(s.scalars(select(AlertOutbox).where(AlertOutbox.sink == "webhook")))
    store.dispose()
    keys = Counter(r.idempotency_key for r in rows)
    assert rows
    assert max(keys.values()) == 1  # one outbox row per alert
    assert {r.status for r in rows} == {"sent"}
    delivered = Counter(rig.receiver.keys)
    assert delivered  # the alerts (a first-run digest) reached the webhook
    # At most the delivery in flight when the process died is sent again (same key).
    assert sum(n - 1 for n in delivered.values()) <= (1 if point is None else 0)


@pytest.mark.parametrize("rig", [FIRST_RUN_CLEAN], indirect=True)
def test_three_simultaneous_first_runs_on_a_fresh_file(rig: Rig) -> None:
    """Exactly one of three first runs runs (exit 0); the others exit 75 at once."""
    rig.upstream.salesforce.faults.configure(latency_ms=40)  # the winner runs for a few seconds
    assert not rig.database.exists()
    children = [rig.spawn(*ALL) for _ in range(3)]
    results = [(c.wait(timeout=300), c.stdout.read() if c.stdout else "") for c in children]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 75, 75], results
    for code, out in results:
        if code == 75:
            assert "holds the lock" in out, out
            assert "Traceback" not in out
    rig.upstream.salesforce.faults.reset()
    rig.upstream.log.reset()
    code, out = rig.run()
    assert code == 0, out
    assert writes(rig.upstream) == 0
