"""Red-health alerts end to end: the engine against both emulators, delivering to a real HTTPS
receiver on loopback (the emulator CA), with the emulators' clock as the engine's clock.

Every test runs on SQLite and, when TEAMSYNC_TEST_DATABASE_URL is set, on PostgreSQL - except
the crash test, which kills a child process and uses SQLite only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from config.settings import Settings
from connectors.errors import UpstreamUnavailable
from emulators.http import EmulatorServer, Request, Response
from emulators.runner import RunningEmulators
from emulators.tls import TlsMaterial
from mappings.schema import load_mapping
from sync.alerts import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, Alerter, verify, verify_standard
from sync.cli.app import app
from sync.cli.reports import status_document
from sync.engine import Engine, RunOptions, RunResult, build_clients
from sync.store import Store
from sync.store.models import AlertOutbox, AlertState
from tests.sync.alerts.test_alerts import BASELINE_ACCOUNT, block_kit_problems, seen_before
from tests.sync.conftest import make_settings

SECRET = "whsec-3f9a1c0d5e7b"
DAY_MS = 24 * 3600 * 1000


# --- the receiver ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def key(self) -> str:
        return self.headers[IDEMPOTENCY_HEADER.lower()]


class Receiver:
    """Records every request (body and headers) and answers 200, or what ``fail`` says."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Received] = []
        self.fail: dict[str, int] = {}  # path -> status answered while set
        self.on_request: Callable[[Received], None] | None = None

    def __call__(self, request: Request) -> Response:
        status = self.fail.get(request.path, 200)
        received = Received(request.path, dict(request.headers.items()), request.body, status)
        with self.lock:
            self.requests.append(received)
        if self.on_request is not None:
            self.on_request(received)
        if request.path == "/slack":  # Slack answers text: "ok" or an error code
            return Response.text("ok" if status == 200 else "server_error", status)
        return Response.json({"received": status == 200}, status)

    def at(self, path: str, *, delivered_only: bool = True) -> list[Received]:
        with self.lock:
            return [
                r
                for r in self.requests
                if r.path == path and (r.status == 200 or not delivered_only)
            ]

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts the webhook received (digests unpacked), in order."""
        out: list[dict[str, Any]] = []
        for r in self.at("/hook"):
            body = r.json
            out.extend(body["alerts"] if body["kind"] == "digest" else [body])
        return out


@pytest.fixture
def receiver(tls: TlsMaterial) -> Iterator[tuple[Receiver, str]]:
    """A real HTTPS endpoint on loopback, certificate from the emulator CA."""
    app_ = Receiver()
    server = EmulatorServer(app_, ssl_context=tls.server_context).start()
    try:
        yield app_, server.url
    finally:
        server.stop()


DEFAULT_MAPPING = Path(__file__).resolve().parents[3] / "mappings" / "default.toml"


def red_only_mapping(directory: Path) -> Path:
    """The default mapping without the other signals (the triage digest, coverage alerts,
    handoff escalations), so that these tests see the red-health alerts alone."""
    text = DEFAULT_MAPPING.read_text(encoding="utf-8")
    text = text.replace('bands = ["Yellow"]', "bands = []")
    text = text.replace("escalate_after_days = 14", "escalate_after_days = 3650")
    text = text.replace('[coverage.CSM]\ndays = 14\nafter = "first_won"\n', "")
    assert "[coverage.CSM]" not in text
    assert "bands = []" in text
    path = directory / "red-only.toml"
    path.write_text(text, encoding="utf-8")
    assert load_mapping(path).coverage == {}
    return path


def alert_settings(
    upstream: RunningEmulators, database_url: str, url: str, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "mapping": red_only_mapping(upstream.private_key_path.parent),
        "alert_sinks": ["log", "slack", "webhook"],
        "alert_webhook_url": f"{url}/hook",
        "alert_webhook_secret": SECRET,
        "alert_slack_webhook_url": f"{url}/slack",
    }
    values.update(overrides)
    return make_settings(upstream, database_url, **values)


def emu_clock(upstream: RunningEmulators) -> Callable[[], datetime]:
    """The engine's clock is the emulators' clock, so moving one moves both."""
    return lambda: datetime.fromtimestamp(upstream.clock.now_ms() / 1000, tz=UTC)


def make_engine(upstream: RunningEmulators, store: Store, settings: Settings) -> Engine:
    clock = emu_clock(upstream)
    engine = Engine.from_settings(settings, store=store, clock=clock)
    # The same alerter, with the retry policy's waits skipped (no real sleeping in tests).
    engine.alerts = Alerter.from_settings(
        settings, engine.mapping, store, clock=clock, sleep=lambda _s: None
    )
    return engine


RunFn = Callable[..., RunResult]


@pytest.fixture
def setup(
    upstream: RunningEmulators,
    store: Store,
    database_url: str,
    receiver: tuple[Receiver, str],
) -> Callable[..., tuple[RunFn, Receiver]]:
    """``run, rx = setup(**settings)``: a run function (a fresh engine each time) and the
    receiver it delivers to."""

    def make(first_run: bool = False, **overrides: Any) -> tuple[RunFn, Receiver]:
        rx, url = receiver
        if not first_run:
            seen_before(store)  # these tests are about transitions, not the first-run digest
        settings = alert_settings(upstream, database_url, url, **overrides)

        def run(**options: Any) -> RunResult:
            options.setdefault("allow_mass_change", True)  # the safeguard is not under test
            return make_engine(upstream, store, settings).run(RunOptions(**options))

        return run, rx

    return make


def red_accounts(upstream: RunningEmulators, *, customers: bool = True) -> set[str]:
    """Accounts teamsync wrote as Red to Salesforce: the customers (risk.lifecycles, the ones
    alerted), or with ``customers=False`` every one."""
    table = upstream.salesforce.tables["Account"]
    red = {
        aid
        for aid, _ in table.iter_rows()
        if (table.get(aid) or {}).get("Health_Status__c") == "Red"
    }
    if not customers:
        return red
    opps = upstream.salesforce.tables["Opportunity"]
    won = {
        row["AccountId"]
        for oid, _ in opps.iter_rows()
        if (row := opps.get(oid) or {}).get("IsWon") and not row.get("IsDeleted")
    }
    return red & won


def outbox(store: Store, sink: str | None = None) -> list[AlertOutbox]:
    with store.session() as s:
        q = select(AlertOutbox).order_by(AlertOutbox.id)
        if sink:
            q = q.where(AlertOutbox.sink == sink)
        return list(s.scalars(q))


def scenario(upstream: RunningEmulators, key: str) -> Any:
    return upstream.org.scenarios[key]  # type: ignore[union-attr]


def check_wire(rx: Receiver) -> None:
    """Every webhook body verifies with the secret (only); every Slack body is Block Kit."""
    for r in rx.at("/hook", delivered_only=False):
        header = r.headers[SIGNATURE_HEADER.lower()]
        assert verify(r.body, SECRET, header)
        assert not verify(r.body, SECRET + "x", header)
        assert not verify(r.body + b" ", SECRET, header)
        assert r.key == r.json["idempotency_key"]
        # Standard Webhooks: id = the idempotency key, a fresh timestamp, a v1 signature.
        assert r.headers["webhook-id"] == r.key
        assert abs(int(r.headers["webhook-timestamp"]) - time.time()) < 300
        assert r.headers["webhook-signature"].startswith("v1,")
        assert verify_standard(r.headers, r.body, SECRET)
        assert not verify_standard(r.headers, r.body, SECRET + "x")
        assert not verify_standard(r.headers, r.body + b" ", SECRET)
        assert not verify_standard(r.headers, r.body, SECRET, now=lambda: time.time() + 301)
        assert r.headers["content-type"] == "application/json"
    for r in rx.at("/slack", delivered_only=False):
        assert SIGNATURE_HEADER.lower() not in r.headers
        assert block_kit_problems(r.json) == [], r.json


# --- tests ----------------------------------------------------------------------------------
def test_one_alert_per_account_entering_red_across_runs(
    upstream: RunningEmulators, store: Store, setup: Callable[..., tuple[RunFn, Receiver]]
) -> None:
    """Each account entering Red is alerted once on every sink, however many runs follow."""
    run, rx = setup()
    assert run().exit_code == 0
    reds = red_accounts(upstream)
    assert scenario(upstream, "score_50").account_id in reds
    assert len(reds) >= 3
    first = rx.alerts()
    assert sorted(a["account"]["id"] for a in first) == sorted(reds)
    # A red prospect keeps its RED_HEALTH flag but gets no alert (risk.lifecycles).
    red_prospects = red_accounts(upstream, customers=False) - reds
    assert red_prospects
    for aid in red_prospects:
        assert "RED_HEALTH" in upstream.salesforce.get("Account", aid)["Risk_Flags__c"]
    assert {a["kind"] for a in first} == {"entered_red"}
    assert len(rx.at("/slack")) == len(reds)
    assert {r.status for r in outbox(store)} == {"sent"}
    assert len(outbox(store, "log")) == len(reds)

    # Nothing changes: nothing more is sent.
    assert run().exit_code == 0
    assert run().exit_code == 0
    assert len(rx.alerts()) == len(reds)

    # One more account turns red: exactly one more alert per sink.
    turned = scenario(upstream, "score_76")
    upstream.gainsight.update("company", turned.company_gsid, {"CurrentScore": 20})
    assert run().exit_code == 0
    assert run().exit_code == 0
    alerts = rx.alerts()
    assert len(alerts) == len(reds) + 1
    new = alerts[-1]
    assert (new["account"]["id"], new["kind"]) == (turned.account_id, "entered_red")
    assert new["health"]["score"] == 20
    assert new["health"]["previous_score"] == 76
    assert new["account"]["name"] == turned.name
    assert new["account"]["salesforce_url"].endswith(f"/Account/{turned.account_id}/view")
    assert new["account"]["gainsight_url"].endswith(f"cid={turned.company_gsid}")
    assert new["team"]["dri"]["email"] == turned.emails["csm"]
    assert "RED_HEALTH" in new["flags"]
    slack_texts = [r.json["text"] for r in rx.at("/slack")]
    assert len(slack_texts) == len(reds) + 1
    assert slack_texts[-1].startswith(turned.name.replace("&", "&amp;"))
    keys = [r.key for r in rx.at("/hook")]
    assert len(keys) == len(set(keys))
    check_wire(rx)


def test_reminder_and_recovery_timing(
    upstream: RunningEmulators, store: Store, setup: Callable[..., tuple[RunFn, Receiver]]
) -> None:
    """Reminders come 7 days after the last alert while Red; leaving Red sends one recovery."""
    run, rx = setup(alert_sinks=["webhook"])
    run()
    reds = red_accounts(upstream)
    start = len(rx.alerts())
    assert start == len(reds)

    upstream.clock.advance(7 * DAY_MS - 3600 * 1000)  # 6 days 23 hours later
    run()
    assert len(rx.alerts()) == start
    upstream.clock.advance(3600 * 1000)  # 7 days after the first alerts
    run()
    reminders = rx.alerts()[start:]
    assert sorted(a["account"]["id"] for a in reminders) == sorted(reds)
    assert {a["kind"] for a in reminders} == {"reminder"}
    day7 = emu_clock(upstream)().date().isoformat()
    assert all(a["idempotency_key"].endswith(f":reminder:{day7}") for a in reminders)

    # score_50 recovers: one recovery notice, and no more reminders for it.
    healed = scenario(upstream, "score_50")
    upstream.gainsight.update("company", healed.company_gsid, {"CurrentScore": 90})
    upstream.clock.advance(3600 * 1000)
    run()
    run()
    after = rx.alerts()[start + len(reds) :]
    assert [(a["account"]["id"], a["kind"]) for a in after] == [(healed.account_id, "recovered")]
    assert after[0]["health"]["previous_band"] == "Red"
    assert (after[0]["health"]["previous_score"], after[0]["health"]["score"]) == (50, 90)
    upstream.clock.advance(7 * DAY_MS)
    run()
    second = rx.alerts()[start + len(reds) + 1 :]
    assert sorted(a["account"]["id"] for a in second) == sorted(reds - {healed.account_id})
    assert {a["kind"] for a in second} == {"reminder"}
    with store.session() as s:
        state = s.get(AlertState, healed.account_id)
        assert state is not None
        assert (state.band, state.last_alert_at) == ("Green", None)
    check_wire(rx)


@pytest.mark.parametrize("threshold", [3, 4])
def test_digest_above_the_threshold(
    upstream: RunningEmulators,
    store: Store,
    setup: Callable[..., tuple[RunFn, Receiver]],
    threshold: int,
) -> None:
    """More alerts than the threshold in one run: one digest per sink; at it: one each."""
    run, rx = setup(alert_digest_threshold=threshold)
    run()
    reds = red_accounts(upstream)
    assert len(reds) == 4  # the fixture org: the threshold values bracket it
    hooks, slacks = rx.at("/hook"), rx.at("/slack")
    if threshold < len(reds):
        assert len(hooks) == len(slacks) == 1
        digest = hooks[0].json
        assert digest["kind"] == "digest"
        assert digest["count"] == len(reds)
        assert sorted(a["account"]["id"] for a in digest["alerts"]) == sorted(reds)
        assert digest["title"] == f"teamsync: {len(reds)} health alerts ({len(reds)} entered red)"
        slack = slacks[0].json
        listed = "\n".join(b["text"]["text"] for b in slack["blocks"] if b["type"] == "section")
        assert listed.count("• ") == len(reds)
        for aid in reds:
            assert f"/Account/{aid}/view" in listed
    else:
        assert len(hooks) == len(slacks) == len(reds)
        assert {h.json["kind"] for h in hooks} == {"entered_red"}
    assert {r.status for r in outbox(store)} == {"sent"}
    assert len(outbox(store)) == 3 * len(reds)  # one row per alert per sink, digest or not
    check_wire(rx)


def test_receiver_failing_with_500_gets_every_alert_on_a_later_run(
    upstream: RunningEmulators,
    store: Store,
    database_url: str,
    setup: Callable[..., tuple[RunFn, Receiver]],
) -> None:
    """A 500 from the webhook: the run succeeds, alerts wait with backoff, none is lost."""
    run, rx = setup(alert_sinks=["log", "webhook"])
    rx.fail["/hook"] = 500
    result = run()
    assert result.exit_code == 0  # a broken sink never fails the sync
    reds = red_accounts(upstream)
    assert result.stats.alerts["webhook"] == {
        "sent": 0,
        "failed": 1,
        "deferred": len(reds) - 1,
    }
    assert result.stats.alerts["log"]["sent"] == len(reds)
    assert len(rx.at("/hook", delivered_only=False)) == 3  # the retry policy's 3 attempts
    pending = outbox(store, "webhook")
    assert {r.status for r in pending} == {"pending"}
    assert sorted(r.attempts for r in pending) == [0] * (len(reds) - 1) + [1]

    # `teamsync status` lists them.
    doc = status_document(store)
    assert doc["alerts"]["by_status"] == {"pending": len(reds), "sent": len(reds)}
    assert {(p["sink"], p["kind"]) for p in doc["alerts"]["pending"]} == {
        ("webhook", "entered_red")
    }
    env = {**upstream.env(), "TEAMSYNC_DATABASE_URL": database_url, "TEAMSYNC_LOG_LEVEL": "ERROR"}
    out = CliRunner().invoke(app, ["status"], env=env)
    assert out.exit_code == 0, out.output
    assert f"pending {len(reds)}" in out.output
    assert "entered_red via webhook" in out.output

    # Still failing on the next run: the one that failed waits out its backoff.
    run()
    assert len(rx.at("/hook", delivered_only=False)) == 6
    rx.fail.clear()
    run()  # the receiver is back: the deferred ones go; the failed one is not due yet
    assert len(rx.at("/hook")) == len(reds) - 2  # all but the two that failed earlier
    upstream.clock.advance(5 * 60 * 1000)
    run()
    delivered = rx.at("/hook")
    assert sorted(r.json["account"]["id"] for r in delivered) == sorted(reds)
    assert len({r.key for r in delivered}) == len(reds)
    assert {r.status for r in outbox(store)} == {"sent"}
    check_wire(rx)


def test_killed_between_send_and_mark_resends_at_most_once_with_the_same_key(
    upstream: RunningEmulators,
    tmp_path: Path,
    receiver: tuple[Receiver, str],
) -> None:
    """SIGKILL while the webhook receives an alert: the next delivery re-sends only that one,
    with the same idempotency key; every alert arrives."""
    rx, url = receiver
    database_url = f"sqlite:///{tmp_path / 'crash.db'}"
    store = Store(database_url)
    store.upgrade()
    seen_before(store)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMSYNC_")}
    env.update(upstream.env())
    env.update(
        TEAMSYNC_DATABASE_URL=database_url,
        TEAMSYNC_ALERT_SINKS="webhook",
        TEAMSYNC_MAPPING=str(red_only_mapping(tmp_path)),
        TEAMSYNC_ALERT_WEBHOOK_URL=f"{url}/hook",
        TEAMSYNC_ALERT_WEBHOOK_SECRET=SECRET,
        TEAMSYNC_LOG_LEVEL="ERROR",
        TEAMSYNC_LOG_FORMAT="json",
    )
    code = (
        "from config.settings import load_settings\n"
        "from sync.engine import Engine, RunOptions\n"
        "Engine.from_settings(load_settings()).run(RunOptions(allow_mass_change=True))\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    killed: list[str] = []

    def kill_on_third(received: Received) -> None:
        # Before answering the third alert: the child has sent it and cannot mark it sent.
        if len(rx.at("/hook", delivered_only=False)) == 3 and not killed:
            killed.append(received.key)
            os.kill(child.pid, signal.SIGKILL)

    rx.on_request = kill_on_third
    try:
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    rx.on_request = None
    rows = outbox(store)
    assert [r.status for r in rows].count("sent") == 2
    assert len(rows) == len(red_accounts(upstream)) >= 4

    # The next delivery (in this process, same store).
    settings = alert_settings(upstream, database_url, url, alert_sinks=["webhook"])
    alerter = Alerter.from_settings(settings, load_mapping(settings.mapping), store)
    alerter.deliver("after-crash")
    seen = [r.key for r in rx.at("/hook", delivered_only=False)]
    assert sorted(set(seen)) == sorted(r.idempotency_key for r in rows)
    assert {k: seen.count(k) for k in seen if seen.count(k) > 1} == {killed[0]: 2}
    assert {r.status for r in outbox(store)} == {"sent"}
    check_wire(rx)
    store.dispose()


def test_push_failure_still_delivers_the_alerts(
    upstream: RunningEmulators, store: Store, database_url: str, receiver: tuple[Receiver, str]
) -> None:
    """Salesforce refusing every write (exit 3) does not hold back the red-health alerts."""
    rx, url = receiver
    settings = alert_settings(upstream, database_url, url, alert_sinks=["webhook"])
    sf, gs = build_clients(settings)

    class WritesDown:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            if name in ("create", "update", "delete"):

                def down(*_a: Any, **_k: Any) -> Any:
                    raise UpstreamUnavailable("salesforce: writes down", api="salesforce")

                return down
            return getattr(self._inner, name)

    clock = emu_clock(upstream)
    seen_before(store)
    engine = Engine.from_settings(settings, store=store, clock=clock)
    alerter = Alerter.from_settings(settings, engine.mapping, store, clock=clock)
    engine = Engine(
        settings, engine.mapping, store, WritesDown(sf), gs, clock=clock, alerts=alerter
    )
    with pytest.raises(UpstreamUnavailable):
        engine.run(RunOptions(allow_mass_change=True))
    assert sorted(a["account"]["id"] for a in rx.alerts()) == sorted(
        str(r.account_id) for r in outbox(store)
    )
    assert len(rx.alerts()) >= 4
    assert {r.status for r in outbox(store)} == {"sent"}


def test_dry_run_records_and_sends_nothing(
    upstream: RunningEmulators, store: Store, setup: Callable[..., tuple[RunFn, Receiver]]
) -> None:
    """--dry-run moves no alert state and sends nothing; the real run then alerts."""
    run, rx = setup()
    assert run(dry_run=True).status == "dry_run"
    assert outbox(store) == []
    with store.session() as s:
        assert [st.account_id for st in s.scalars(select(AlertState))] == [BASELINE_ACCOUNT]
    assert rx.requests == []
    run()
    assert len(rx.alerts()) == len(red_accounts(upstream))


def test_alerts_test_command_sends_a_sample_to_each_sink(
    upstream: RunningEmulators, database_url: str, receiver: tuple[Receiver, str]
) -> None:
    """`teamsync alerts test` posts a signed sample and a Block Kit sample; a refusal exits 3."""
    rx, url = receiver
    env = {
        **upstream.env(),
        "TEAMSYNC_DATABASE_URL": database_url,
        "TEAMSYNC_ALERT_WEBHOOK_URL": f"{url}/hook",
        "TEAMSYNC_ALERT_WEBHOOK_SECRET": SECRET,
        "TEAMSYNC_ALERT_SLACK_WEBHOOK_URL": f"{url}/slack",
        "TEAMSYNC_LOG_LEVEL": "ERROR",
    }
    result = CliRunner().invoke(app, ["alerts", "test"], env=env)
    assert result.exit_code == 0, result.output
    assert {line.strip() for line in result.output.splitlines() if line.strip()} == {
        "log: sent",
        "slack: sent",
        "webhook: sent",
    }
    (hook,) = rx.at("/hook")
    assert hook.json["kind"] == "test"
    assert hook.key.startswith("test:")
    (slack,) = rx.at("/slack")
    assert "Example Corp" in slack.json["text"]
    check_wire(rx)
    rx.fail["/slack"] = 404  # e.g. a revoked webhook
    result = CliRunner().invoke(app, ["alerts", "test"], env=env)
    assert result.exit_code == 3
    assert "slack: failed" in result.output
    assert url not in result.output  # the Slack webhook URL is a secret


def test_outbox_row_written_before_send_carries_the_key(
    upstream: RunningEmulators, store: Store, setup: Callable[..., tuple[RunFn, Receiver]]
) -> None:
    """When a request arrives, its alert is already in the outbox, pending, same key."""
    run, rx = setup(alert_sinks=["webhook"])
    seen: list[tuple[str, str | None]] = []

    def look(received: Received) -> None:
        with store.session() as s:
            row = s.scalar(select(AlertOutbox).where(AlertOutbox.idempotency_key == received.key))
            seen.append((received.key, row.status if row else None))

    rx.on_request = look
    run()
    assert seen
    assert all(status == "pending" for _, status in seen)
    assert {r.status for r in outbox(store)} == {"sent"}
