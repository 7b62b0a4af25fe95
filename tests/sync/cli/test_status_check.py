"""`teamsync status --check [--max-age]`: the dead-man check for probes and cron monitors."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from sync.cli.app import app
from sync.cli.reports import parse_duration
from sync.clock import utcnow
from sync.store import Store
from sync.store.models import Run


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("TEAMSYNC_") and key != "TEAMSYNC_TEST_DATABASE_URL":
            monkeypatch.delenv(key)


def add_run(
    store: Store, status: str, ended_ago: timedelta, *, exit_code: int = 0, dry_run: bool = False
) -> None:
    end = utcnow() - ended_ago
    with store.session() as s:
        s.add(
            Run(
                run_id=str(uuid.uuid4()),
                command="run",
                dry_run=dry_run,
                full=False,
                started_at=end - timedelta(minutes=2),
                finished_at=None if status == "running" else end,
                status=status,
                exit_code=None if status == "running" else exit_code,
                stats={},
                error="salesforce: unreachable" if status == "failed" else None,
            )
        )


def check(store: Store, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["status", "--check", *extra], env={"TEAMSYNC_DATABASE_URL": store.url}
    )
    return result.exit_code, result.stdout + result.stderr


def test_no_completed_run_fails(store: Store) -> None:
    """A store that never completed a run is not healthy."""
    code, output = check(store)
    assert code == 1
    assert "no run has completed yet" in output


def test_recent_completed_run_passes_and_old_one_fails(store: Store) -> None:
    """Within --max-age: exit 0; beyond it: exit 1 saying how old."""
    add_run(store, "succeeded", timedelta(minutes=30))
    code, output = check(store)
    assert code == 0, output
    assert output.startswith("ok:")
    code, output = check(store, "--max-age", "20m")
    assert code == 1
    assert "more than 20 minutes" in output


def test_partial_counts_as_completed_failed_does_not(store: Store) -> None:
    """A partial run synced (exit 1, records quarantined); a failed last run fails the check
    even when the last completed run is recent."""
    add_run(store, "partial", timedelta(minutes=20), exit_code=1)
    assert check(store)[0] == 0
    add_run(store, "failed", timedelta(minutes=5), exit_code=3)
    code, output = check(store)
    assert code == 1
    assert "the last run failed (exit 3): salesforce: unreachable" in output


def test_dry_runs_and_runs_in_progress_do_not_count(store: Store) -> None:
    """A plan is no sync; a run in progress is judged by the one before it."""
    add_run(store, "succeeded", timedelta(hours=5))
    add_run(store, "dry_run", timedelta(minutes=1), dry_run=True)
    add_run(store, "running", timedelta(0))
    code, output = check(store, "--max-age", "2h")
    assert code == 1
    assert "hours ago" in output


def test_json_output(store: Store) -> None:
    """--json gives the verdict, the reasons and the last run for monitors that parse it."""
    add_run(store, "refused", timedelta(minutes=3), exit_code=4)
    code, output = check(store, "--json", "--max-age", "1d")
    assert code == 1
    doc = json.loads(output)
    assert doc["ok"] is False
    assert doc["max_age_seconds"] == 86400
    assert doc["last_run"]["status"] == "refused"
    assert any("refused (exit 4)" in r for r in doc["reasons"])


@pytest.mark.parametrize(
    ("text", "seconds"), [("90m", 5400), ("2h", 7200), ("1d", 86400), ("45", 45), ("1.5h", 5400)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "--max-age").total_seconds() == seconds


def test_bad_max_age_is_a_usage_error(store: Store) -> None:
    """--max-age two-hours: exit 2."""
    code, output = check(store, "--max-age", "two hours")
    assert code == 2
    assert "not a duration" in output
