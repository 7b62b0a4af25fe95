"""Sync health end to end: the engine against the emulators, delivering to a real HTTPS
receiver.  A run that fails (Salesforce answering 503 until the retry budget is spent) sends
exactly one sync-health alert; the next good run resolves it.  The first run on an empty store
sends one digest of the accounts already Red."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from connectors.errors import UpstreamUnavailable
from emulators.runner import RunningEmulators
from sync.cli.app import app
from sync.store import Store
from tests.sync.alerts.test_alerts_e2e import (
    SECRET,
    Receiver,
    RunFn,
    check_wire,
    outbox,
    receiver,
    red_accounts,
    setup,
)

__all__ = ["receiver", "setup"]  # fixtures shared with the red-health end-to-end tests


def sync_health(rx: Receiver, path: str = "/hook") -> list[dict[str, Any]]:
    return [r.json for r in rx.at(path) if r.json.get("kind") == "sync_health"]


def test_failed_run_sends_one_sync_health_alert_and_the_next_good_run_resolves_it(
    upstream: RunningEmulators, store: Store, setup: Callable[..., tuple[RunFn, Receiver]]
) -> None:
    """503 until the retries give up: exit 3 and one alert (reason, next step) on every sink;
    a second failed run adds nothing; the next good run sends one resolve."""
    run, rx = setup(alert_sinks=["log", "slack", "webhook"], retry_max_wait_seconds=0.5)
    upstream.salesforce.faults.configure(rate_503=1.0, retry_after_seconds=None)
    with pytest.raises(UpstreamUnavailable):
        run()
    (alert,) = sync_health(rx)
    assert alert["state"] == "firing"
    assert alert["condition"] == "failed"
    assert alert["exit_code"] == 3
    assert "503" in alert["reason"]
    assert alert["next_step"]
    assert alert["title"].startswith("teamsync sync health:")
    slack = [r.json for r in rx.at("/slack")]
    assert len(slack) == 1
    assert "sync health" in slack[0]["text"]
    assert [r.kind for r in outbox(store, "log")] == ["sync_health"]

    with pytest.raises(UpstreamUnavailable):
        run()
    assert len(sync_health(rx)) == 1
    assert len(rx.at("/slack")) == 1

    upstream.salesforce.faults.reset()
    assert run().exit_code == 0
    firing, resolved = sync_health(rx)
    assert firing == alert
    assert resolved["state"] == "resolved"
    assert resolved["condition"] == "failed"
    assert resolved["resolves"] == alert["idempotency_key"]
    assert resolved["idempotency_key"] == alert["idempotency_key"] + ":resolved"
    assert run().exit_code == 0
    assert len(sync_health(rx)) == 2
    # Account alerts are still account alerts (none of them is a sync-health alert).
    account_alerts = [a for a in rx.alerts() if a["kind"] != "sync_health"]
    assert sorted(a["account"]["id"] for a in account_alerts) == sorted(red_accounts(upstream))
    check_wire(rx)


def test_first_run_on_an_empty_store_sends_one_digest(
    upstream: RunningEmulators, store: Store, setup: Callable[..., tuple[RunFn, Receiver]]
) -> None:
    """Every account already Red is listed in one digest per sink; no per-account alert."""
    run, rx = setup(first_run=True, alert_sinks=["slack", "webhook"])
    assert run().exit_code == 0
    reds = red_accounts(upstream)
    assert len(reds) >= 3
    (digest,) = [r.json for r in rx.at("/hook")]
    assert digest["kind"] == "digest"
    assert digest["title"] == f"teamsync first run: {len(reds)} accounts already Red"
    assert sorted(a["account"]["id"] for a in digest["alerts"]) == sorted(reds)
    assert len(rx.at("/slack")) == 1
    assert run().exit_code == 0
    assert len(rx.at("/hook")) == 1
    check_wire(rx)


def test_first_run_none_sends_nothing(
    upstream: RunningEmulators, store: Store, setup: Callable[..., tuple[RunFn, Receiver]]
) -> None:
    """TEAMSYNC_ALERT_FIRST_RUN=none: the first run stays silent about accounts already Red."""
    run, rx = setup(first_run=True, alert_sinks=["webhook"], alert_first_run="none")
    assert run().exit_code == 0
    assert red_accounts(upstream)
    assert rx.requests == []


def test_store_unavailable_is_told_to_the_sinks_directly(
    upstream: RunningEmulators, receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    """`teamsync run` on a store that does not answer: exit 5 and one sync-health alert sent
    straight to the webhook (the outbox is in that store); a second run does not repeat it."""
    rx, url = receiver
    env = dict(upstream.env())
    env.update(
        TEAMSYNC_DATABASE_URL="postgresql://teamsync@127.0.0.1:1/teamsync",
        TEAMSYNC_DATA_DIR=str(tmp_path),
        TEAMSYNC_DATA_DIR_DURABLE="true",
        TEAMSYNC_ALERT_SINKS="webhook",
        TEAMSYNC_ALERT_WEBHOOK_URL=f"{url}/hook",
        TEAMSYNC_ALERT_WEBHOOK_SECRET=SECRET,
        TEAMSYNC_LOG_FORMAT="json",
    )
    for _ in range(2):
        result = CliRunner().invoke(app, ["run"], env=env)
        assert result.exit_code == 5, result.stderr
    (alert,) = sync_health(rx)
    assert alert["condition"] == "store_unavailable"
    assert alert["exit_code"] == 5
    assert "127.0.0.1" in alert["reason"]
    check_wire(rx)
