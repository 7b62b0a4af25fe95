"""The command line: exit codes of DESIGN.md section 4 and what each command prints."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emulators.runner import RunningEmulators
from sync.cli.app import app
from sync.store import Store


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("TEAMSYNC_") and key != "TEAMSYNC_TEST_DATABASE_URL":
            monkeypatch.delenv(key)


def cli_env(upstream: RunningEmulators, database_url: str, **extra: str) -> dict[str, str]:
    env = dict(upstream.env())
    env.update(
        TEAMSYNC_DATABASE_URL=database_url,
        TEAMSYNC_RETRY_MAX_ATTEMPTS="2",
        TEAMSYNC_RETRY_MAX_WAIT_SECONDS="0.5",
        TEAMSYNC_LOG_LEVEL="ERROR",
        TEAMSYNC_LOG_FORMAT="json",
    )
    env.update(extra)
    return env


def invoke(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, result.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_then_noop_exit_0(upstream: RunningEmulators, database_url: str) -> None:
    """`teamsync run` applies the plan (exit 0) and a second run writes nothing."""
    env = cli_env(upstream, database_url)
    code, out = invoke(["run", "--allow-mass-change", "--max-changes", "5000"], env)
    assert code == 0, out
    assert "succeeded" in out
    before = upstream.log.count(kind="write")
    code, out = invoke(["run"], env)
    assert code == 0, out
    assert "nothing to change" in out
    assert upstream.log.count(kind="write") == before


def test_plan_json_makes_no_writes(upstream: RunningEmulators, database_url: str) -> None:
    """`teamsync plan --json` prints every operation with its reason and writes nothing."""
    env = cli_env(upstream, database_url)
    code, out = invoke(["plan", "--json"], env)
    assert code == 0, out
    doc = json.loads(out)
    assert upstream.log.count(kind="write") == 0
    assert doc["operations"]
    assert all(op["reason"] for op in doc["operations"])
    kinds = {(s["object"], s["action"]) for s in doc["summary"]}
    assert ("AccountTeamMember", "create") in kinds
    assert doc["safeguard"] == [] or isinstance(doc["safeguard"], list)
    code, out = invoke(["plan"], env)
    assert code == 0
    assert "Plan (nothing is written)" in out


def test_configuration_error_exit_2(tmp_path: Path) -> None:
    """Missing credentials: exit 2 with every problem listed, nothing attempted."""
    env = {"TEAMSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "TEAMSYNC_CHUNK_SIZE": "0"}
    code, out = invoke(["run"], env)
    assert code == 2
    assert "TEAMSYNC_CHUNK_SIZE" in out
    env.pop("TEAMSYNC_CHUNK_SIZE")
    code, out = invoke(["run"], env)
    assert code == 2
    assert "TEAMSYNC_SALESFORCE_INSTANCE_URL" in out
    assert "TEAMSYNC_GAINSIGHT_ACCESS_KEY" in out


def test_bad_mapping_exit_2(upstream: RunningEmulators, database_url: str, tmp_path: Path) -> None:
    """An invalid mapping file is refused at start-up with exit 2."""
    bad = tmp_path / "mapping.toml"
    bad.write_text("version = 2\n", encoding="utf-8")
    code, out = invoke(["run"], cli_env(upstream, database_url, TEAMSYNC_MAPPING=str(bad)))
    assert code == 2
    assert "invalid mapping file" in out
    assert upstream.log.count() == 0


def test_unreachable_api_exit_3(upstream: RunningEmulators, database_url: str) -> None:
    """Salesforce unreachable: exit 3 (safe to retry)."""
    env = cli_env(
        upstream, database_url, TEAMSYNC_SALESFORCE_INSTANCE_URL=f"https://127.0.0.1:{free_port()}"
    )
    code, out = invoke(["run"], env)
    assert code == 3, out


def test_refused_auth_exit_3(upstream: RunningEmulators, database_url: str) -> None:
    """Credentials refused: exit 3, and the secret never appears in the output."""
    env = cli_env(
        upstream, database_url, TEAMSYNC_SALESFORCE_CLIENT_SECRET="wrong-secret-value-123"
    )
    code, out = invoke(["run"], env)
    assert code == 3, out
    assert "wrong-secret-value-123" not in out


def test_daily_quota_exit_3(upstream: RunningEmulators, database_url: str) -> None:
    """Out of daily API quota: exit 3."""
    upstream.salesforce.faults.configure(daily_quota=1)
    upstream.salesforce.api_usage = 5
    code, out = invoke(["run"], cli_env(upstream, database_url))
    assert code == 3, out


def test_mass_change_exit_4(upstream: RunningEmulators, database_url: str) -> None:
    """The synthetic org's stale rows exceed the safeguard: exit 4 and no writes."""
    code, out = invoke(["run"], cli_env(upstream, database_url, TEAMSYNC_MASS_CHANGE_MIN="3"))
    assert code == 4, out
    assert "--allow-mass-change" in out
    assert upstream.log.count(kind="write") == 0


def test_lock_held_exit_75(upstream: RunningEmulators, database_url: str) -> None:
    """Another run holds the lock: exit 75 without touching the APIs."""
    store = Store(database_url)
    store.upgrade()
    with store.lock("run"):
        code, out = invoke(["run"], cli_env(upstream, database_url))
    assert code == 75, out
    assert upstream.log.count() == 0


def test_status_and_audit(upstream: RunningEmulators, database_url: str, tmp_path: Path) -> None:
    """`status --json` reports runs and watermarks; `audit` renders csv and html."""
    env = cli_env(upstream, database_url)
    assert invoke(["run", "--allow-mass-change", "--max-changes", "5000"], env)[0] == 0
    code, out = invoke(["status", "--json"], env)
    assert code == 0, out
    doc = json.loads(out)
    assert doc["runs"][0]["status"] == "succeeded"
    assert {w["stream"] for w in doc["watermarks"]} >= {"salesforce.Account", "gainsight.Company"}
    code, out = invoke(["status"], env)
    assert code == 0
    assert "Watermarks" in out
    target = tmp_path / "audit.csv"
    code, _ = invoke(["audit", "--format", "csv", "-o", str(target)], env)
    assert code == 0
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("account_id,name,segment")
    assert len(lines) > 50
    code, out = invoke(["audit", "--format", "html"], env)
    assert code == 0
    assert '<table id="accounts">' in out
    code, out = invoke(["audit", "--format", "pdf"], env)
    assert code == 2


def test_backfill_validates_arguments(upstream: RunningEmulators, database_url: str) -> None:
    """Bad backfill arguments are usage errors (exit 2); a window re-pulls records."""
    env = cli_env(upstream, database_url)
    assert invoke(["backfill", "--since", "yesterday"], env)[0] == 2
    assert invoke(["backfill", "--since", "2026-01-01", "--objects", "widgets"], env)[0] == 2
    assert invoke(["backfill", "--since", "2026-02-01", "--until", "2026-01-01"], env)[0] == 2
    code, out = invoke(
        ["backfill", "--since", "2020-01-01", "--objects", "accounts,companies", "--dry-run"], env
    )
    assert code == 0, out
    assert "Account" in out
    assert upstream.log.count(kind="write") == 0


def test_db_upgrade(tmp_path: Path) -> None:
    """`teamsync db upgrade` creates the schema, then reports it up to date."""
    env = {"TEAMSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}"}
    code, out = invoke(["db", "upgrade"], env)
    assert code == 0
    assert "upgraded" in out
    code, out = invoke(["db", "upgrade"], env)
    assert code == 0
    assert "up to date" in out
