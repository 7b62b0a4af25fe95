"""Output hygiene: files teamsync creates are private, CSV cells never run as formulas, and
webhook deliveries are signed the Standard Webhooks way (a receiver can refuse replays)."""

from __future__ import annotations

import csv
import io
import re
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from emulators.runner import RunningEmulators
from sync.alerts.health import write_spool
from sync.alerts.webhook import standard_headers, standard_signature, verify_standard
from sync.cli.app import app
from sync.store import RawRow, Store
from sync.store.lock import lock_path

README = Path(__file__).resolve().parents[2] / "README.md"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sqlite_store_and_its_companions_are_0600(tmp_path: Path) -> None:
    """The database, its -wal and -shm files and the lock file are readable by the owner only."""
    url = f"sqlite:///{tmp_path / 'teamsync.db'}"
    store = Store(url)
    with store.lock("run"):
        store.check_schema()
        with store.session() as s:
            store.upsert_raw(s, "salesforce", "Account", [RawRow("001A", {"Name": "x"}, None)])
        files = [tmp_path / n for n in ("teamsync.db", "teamsync.db-wal", "teamsync.db-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        path = lock_path(url)
        assert path is not None
        assert mode(path) == 0o600
    store.dispose()


def test_spool_file_is_0600(tmp_path: Path) -> None:
    """The sync-health spool (written when the store is down) is private too."""
    path = tmp_path / "spool.json"
    write_spool(path, {"store_unavailable": {"since": "now"}})
    assert mode(path) == 0o600


def test_audit_csv_neutralises_formulas_and_is_private(
    upstream: RunningEmulators, database_url: str, tmp_path: Path
) -> None:
    """An account named like a spreadsheet formula is written as text, in a 0600 file."""
    ref = upstream.org.scenarios["score_76"]  # type: ignore[union-attr]
    evil = "=cmd|'/c calc'!A1"
    upstream.salesforce.tables["Account"].update(ref.account_id, {"Name": evil})
    env = dict(upstream.env())
    env.update(TEAMSYNC_DATABASE_URL=database_url, TEAMSYNC_LOG_LEVEL="ERROR")
    runner = CliRunner()
    result = runner.invoke(app, ["run", "--allow-mass-change", "--max-changes", "5000"], env=env)
    assert result.exit_code == 0, result.output
    out = tmp_path / "audit.csv"
    result = runner.invoke(app, ["audit", "--format", "csv", "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert mode(out) == 0o600
    cells = [c for row in csv.reader(io.StringIO(out.read_text())) for c in row]
    assert "'" + evil in cells
    assert not any(c[:1] in ("=", "+", "-", "@", "\t", "\r") for c in cells if c)


# --- Standard Webhooks ------------------------------------------------------------------------
def test_standard_webhooks_published_vector() -> None:
    """The signature matches the Standard Webhooks specification's example."""
    assert (
        standard_signature(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            b'{"test": 2432232314}',
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


@pytest.mark.parametrize(
    ("change", "ok"),
    [
        ({}, True),
        ({"webhook-timestamp": str(int(time.time()) - 301)}, False),  # a replay, 5 min later
        ({"webhook-id": "another-id"}, False),
        ({"webhook-signature": "v1,AAAA"}, False),
        ({"webhook-signature": None}, False),
    ],
)
def test_verify_standard(change: dict[str, Any], ok: bool) -> None:
    """Only an untouched, recent delivery verifies."""
    body = b'{"kind":"entered_red"}'
    headers = standard_headers("alert:001:red:2026-01-01", body, "s3cret")
    for key, value in change.items():
        if value is None:
            headers.pop(key)
        elif key != "webhook-timestamp":
            headers[key] = value
        else:  # re-signed with the old stamp: the signature is right, the time is not
            headers[key] = value
            headers["webhook-signature"] = standard_signature(
                headers["webhook-id"], int(value), body, "s3cret"
            )
    assert verify_standard(headers, body, "s3cret") is ok


def readme_receiver() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- receiver -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README: the webhook receiver snippet is missing"
    return match.group(1)


def test_readme_receiver_snippet_verifies_a_real_delivery() -> None:
    """The README's receiver runs as written: it accepts what teamsync sends and refuses a
    replay older than five minutes and a forged body."""
    namespace: dict[str, Any] = {"__name__": "readme_receiver"}
    exec(compile(readme_receiver(), "README.md", "exec"), namespace)  # noqa: S102
    verify = namespace["verify"]
    body = b'{"kind":"entered_red","account":{"id":"001"}}'
    headers = standard_headers("key-1", body, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert verify(headers, body, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") is True
    assert verify(headers, body + b" ", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") is False
    old = standard_headers(
        "key-1", body, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", now=lambda: time.time() - 400
    )
    assert verify(old, body, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") is False
    plain = standard_headers("key-2", body, "plain-secret")
    assert verify(plain, body, "plain-secret") is True


def test_alert_sinks_never_follow_a_redirect(tls: Any, byte_sink: Any) -> None:
    """A webhook answering 307 to another host is a failed delivery: nothing reaches the
    target, the body is not re-sent anywhere."""
    from config.settings import load_settings
    from emulators.http import EmulatorServer, Request, Response
    from sync.alerts.sinks import DeliveryError, build_sinks

    byte_sink.reset()

    def redirecting(_request: Request) -> Response:
        return Response.empty(307, {"Location": byte_sink.url("http") + "/steal"})

    with EmulatorServer(redirecting, ssl_context=tls.server_context) as server:
        settings = load_settings(
            alert_sinks="webhook",
            alert_webhook_url=f"{server.url}/hook",
            alert_webhook_secret="s3cret",
            ca_bundle=tls.ca_path,
        )
        (sink,) = build_sinks(settings, sleep=lambda _s: None)
        with pytest.raises(DeliveryError, match="307"):
            sink.send({"idempotency_key": "k1", "kind": "entered_red", "title": "t"})
    assert byte_sink.received == b""
    assert byte_sink.connections == 0
