"""Review commands: readable plans and their filters and formats, approved plans (`plan --out`,
`run --plan`), `plan --detailed-exitcode`, `runs`, `show`, `history` and `quarantine`."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from emulators.runner import RunningEmulators
from sync.cli.app import app
from sync.stages.approval import content_hash, digest_of
from sync.store import Store
from sync.store.models import Operation, Run

ACCOUNT_ID = "001Tm0000000004IAA"  # the synthetic org's "score_76" account


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
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


def writes(upstream: RunningEmulators) -> int:
    return upstream.log.count(kind="write")


def ops_of_run(store: Store, run_id: str, status: str | None = None) -> list[Operation]:
    with store.session() as s:
        q = select(Operation).where(Operation.run_id == run_id)
        if status:
            q = q.where(Operation.status == status)
        return list(s.scalars(q))


def last_run(store: Store) -> Run:
    with store.session() as s:
        run = s.scalars(select(Run).order_by(Run.started_at.desc())).first()
    assert run is not None
    return run


def converge(upstream: RunningEmulators, env: dict[str, str]) -> None:
    code, out = invoke(["run", "--allow-mass-change", "--max-changes", "5000"], env)
    assert code == 0, out


# --- readable plans ---------------------------------------------------------------------------
def test_plan_names_people_and_accounts_in_every_format(
    upstream: RunningEmulators, database_url: str
) -> None:
    """Plain text off a terminal: names and e-mails, deletes saying who leaves which role,
    grouped by account, no wrapping; json keeps Ids beside names; csv and markdown parse."""
    env = cli_env(upstream, database_url)
    code, text = invoke(["plan"], env)
    assert code == 0, text
    assert "Plan (nothing is written)" in text
    # Every account heading carries the account's name, not only its Id.
    headings = [ln for ln in text.splitlines() if ln and not ln.startswith(" ") and "(" in ln]
    assert headings
    assert not any(h.startswith("001") for h in headings)
    removes = [ln for ln in text.splitlines() if ln.strip().startswith("- remove ")]
    assert removes, "the synthetic org has stale rows to delete"
    for line in removes:
        assert "@" in line  # the person's e-mail
        assert " from " in line  # ... and the role they leave
        assert "{}" not in line
    assert max(len(ln) for ln in text.splitlines()) > 80  # full width, not wrapped at 80
    assert "why: " in text

    code, raw = invoke(["plan", "--format", "json"], env)
    assert code == 0
    doc = json.loads(raw)
    ops = doc["operations"]
    assert doc["total_operations"] == len(ops)
    delete = next(o for o in ops if o["action"] == "delete")
    assert delete["person"]["name"]
    assert delete["person"]["email"]
    assert delete["person"]["sf_user_id"].startswith("005")
    assert delete["account"]["id"].startswith("001")
    assert delete["account"]["name"]
    assert delete["role"]
    assert delete["previous"]["TeamMemberRole"]
    assert all(o["reason"] and o["summary"] for o in ops)
    assert json.loads(invoke(["plan", "--json"], env)[1])["total_operations"] == len(ops)

    code, raw = invoke(["plan", "--format", "csv"], env)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(raw)))
    assert len(rows) == len(ops)
    assert {r["action"] for r in rows} >= {"create", "update", "delete"}
    assert all(r["account_name"] for r in rows)

    code, md = invoke(["plan", "--format", "markdown", "--limit", "5"], env)
    assert code == 0
    assert md.startswith("# Plan")
    assert "| change | why |" in md
    assert "more operations" in md

    assert invoke(["plan", "--format", "yaml"], env)[0] == 2
    assert writes(upstream) == 0


def test_plan_filters(upstream: RunningEmulators, database_url: str) -> None:
    """--account, --segment, --object and --kind narrow what is shown (and combine)."""
    env = cli_env(upstream, database_url)

    def ops(*args: str) -> list[dict[str, Any]]:
        code, raw = invoke(["plan", "--json", *args], env)
        assert code == 0, raw
        return list(json.loads(raw)["operations"])

    everything = ops()
    deletes = ops("--kind", "delete")
    assert deletes
    assert {o["action"] for o in deletes} == {"delete"}
    assert len(deletes) == sum(1 for o in everything if o["action"] == "delete")
    team = ops("--object", "team")
    assert team
    assert {o["object"] for o in team} == {"AccountTeamMember"}
    smb = ops("--segment", "smb")
    assert smb
    assert {o["account"]["segment"] for o in smb} == {"SMB"}
    name = everything[0]["account"]["name"]
    by_name = ops("--account", name)
    assert by_name
    assert {o["account"]["name"] for o in by_name} == {name}
    by_id = ops("--account", ACCOUNT_ID)
    assert by_id
    assert {o["account"]["id"] for o in by_id} == {ACCOUNT_ID}
    both = ops("--object", "team", "--kind", "create", "--kind", "delete")
    assert {(o["object"], o["action"]) for o in both} <= {
        ("AccountTeamMember", "create"),
        ("AccountTeamMember", "delete"),
    }
    assert ops("--account", "no such account anywhere") == []
    code, out = invoke(["plan", "--kind", "explode"], env)
    assert code == 2
    assert "--kind" in out
    assert invoke(["plan", "--object", "widgets"], env)[0] == 2


# --- approve, then apply exactly that ---------------------------------------------------------
def test_detailed_exitcode(upstream: RunningEmulators, database_url: str) -> None:
    """plan --detailed-exitcode: 4 when the safeguard would refuse, 2 changes, 0 nothing."""
    env = cli_env(upstream, database_url, TEAMSYNC_MASS_CHANGE_MIN="3")
    assert invoke(["plan", "--detailed-exitcode"], env)[0] == 4
    assert invoke(["plan"], env)[0] == 0  # without the flag: 0 as before
    relaxed = cli_env(upstream, database_url, TEAMSYNC_MASS_CHANGE_MIN="100000")
    assert invoke(["plan", "--detailed-exitcode"], relaxed)[0] == 2
    converge(upstream, relaxed)
    assert invoke(["plan", "--detailed-exitcode"], relaxed)[0] == 0
    # A usage error is 1 with the flag (2 means "changes").
    assert invoke(["plan", "--detailed-exitcode", "--kind", "nope"], relaxed)[0] == 1
    assert writes(upstream) > 0


def test_mass_change_needs_max_changes(upstream: RunningEmulators, database_url: str) -> None:
    """--allow-mass-change alone is a usage error; --max-changes caps what it applies."""
    env = cli_env(upstream, database_url, TEAMSYNC_MASS_CHANGE_MIN="3")
    code, out = invoke(["run", "--allow-mass-change"], env)
    assert code == 2
    assert "--max-changes" in out
    code, out = invoke(["run", "--allow-mass-change", "--max-changes", "5"], env)
    assert code == 4, out
    assert "more than --max-changes 5" in out
    assert writes(upstream) == 0


def test_run_plan_applies_exactly_the_approved_plan(
    upstream: RunningEmulators, database_url: str, tmp_path: Path
) -> None:
    """A mass change approved by plan is applied; a grown plan is refused; an approved
    operation no longer needed is skipped and reported; a stale or edited plan is refused."""
    env = cli_env(upstream, database_url, TEAMSYNC_MASS_CHANGE_MIN="3")
    store = Store(database_url)
    p0 = tmp_path / "p0.json"
    # 1. The first plan is above the safeguard: approving it is how it gets applied.
    assert invoke(["run"], env)[0] == 4
    code, out = invoke(["plan", "--out", str(p0)], env)
    assert code == 0, out
    assert stat.S_IMODE(p0.stat().st_mode) == 0o600
    approved0 = {o["op_id"] for o in json.loads(p0.read_text())["operations"]}
    code, out = invoke(["run", "--plan", str(p0)], env)
    assert code == 0, out
    run0 = last_run(store)
    applied = ops_of_run(store, run0.run_id)
    assert applied
    assert {digest_of(op) for op in applied} <= approved0
    assert {op.status for op in applied} <= {"done", "adopted"}

    # 2. One company turns red: the approved plan holds its three operations.
    red = upstream.org.scenarios["score_76"]  # type: ignore[union-attr]
    other = upstream.org.scenarios["arr_50000"]  # type: ignore[union-attr]
    original = upstream.gainsight.get("company", other.company_gsid)["CurrentScore"]  # type: ignore[index]
    upstream.gainsight.update("company", red.company_gsid, {"CurrentScore": 20})
    p1 = tmp_path / "p1.json"
    assert invoke(["plan", "--out", str(p1)], env)[0] == 0
    approved1 = {o["op_id"] for o in json.loads(p1.read_text())["operations"]}
    assert len(approved1) >= 2

    # 3. Another company changes before the run: the re-computed plan grew -> refused.
    upstream.gainsight.update("company", other.company_gsid, {"CurrentScore": 10})
    before = writes(upstream)
    code, out = invoke(["run", "--plan", str(p1)], env)
    assert code == 4, out
    assert "beyond the approved plan" in out
    assert writes(upstream) == before

    # 4. Approve both; then the second change is undone: its operations are skipped, the
    #    first company's are applied, exactly.
    p2 = tmp_path / "p2.json"
    assert invoke(["plan", "--out", str(p2)], env)[0] == 0
    approved2 = {o["op_id"] for o in json.loads(p2.read_text())["operations"]}
    assert approved1 < approved2
    upstream.gainsight.update("company", other.company_gsid, {"CurrentScore": original})
    code, out = invoke(["run", "--plan", str(p2)], env)
    assert code == 0, out
    run2 = last_run(store)
    done = {digest_of(op) for op in ops_of_run(store, run2.run_id)}
    assert done == approved1
    skipped = (run2.stats or {})["approved_plan"]["skipped"]
    assert len(skipped) == len(approved2 - approved1)
    assert all(s["why"].startswith("no longer needed") for s in skipped)
    assert "skipped: " in out
    account = upstream.salesforce.get("Account", red.account_id)
    assert account is not None
    assert account["Health_Status__c"] == "Red"

    # 5. A plan older than the allowed age is refused before any API call.
    p3 = tmp_path / "p3.json"
    assert invoke(["plan", "--out", str(p3)], env)[0] == 0
    doc = json.loads(p3.read_text())
    doc["created_at"] = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    doc["content_sha256"] = content_hash(doc)
    p3.write_text(json.dumps(doc))
    calls = upstream.log.count()
    code, out = invoke(["run", "--plan", str(p3)], env)
    assert code == 4, out
    assert "longer than the allowed" in out
    assert upstream.log.count() == calls
    short = cli_env(upstream, database_url, TEAMSYNC_PLAN_MAX_AGE_SECONDS="100000000")
    assert invoke(["run", "--plan", str(p3)], short)[0] == 0

    # 6. An edited plan file is refused as bad input; --plan excludes --allow-mass-change.
    doc["safeguard_would_refuse"] = []  # any edit without the hash teamsync wrote
    doc["operation_count"] = 1
    p3.write_text(json.dumps(doc))
    code, out = invoke(["run", "--plan", str(p3)], env)
    assert code == 2
    assert "changed after" in out
    code, _ = invoke(["run", "--plan", str(p0), "--allow-mass-change", "--max-changes", "1"], env)
    assert code == 2
    store.dispose()


def test_plan_for_another_mapping_is_refused(
    upstream: RunningEmulators, database_url: str, tmp_path: Path
) -> None:
    """The inputs' fingerprint: a plan made with another mapping file is refused (exit 4)."""
    env = cli_env(upstream, database_url)
    plan_file = tmp_path / "plan.json"
    assert invoke(["plan", "--out", str(plan_file)], env)[0] == 0
    doc = json.loads(plan_file.read_text())
    assert doc["fingerprint"]["config"]["mapping_sha256"]
    assert doc["fingerprint"]["data"]["salesforce.Account"]["records"] > 0
    copy = tmp_path / "mapping.toml"
    shipped = Path(__file__).resolve().parents[3] / "mappings" / "default.toml"
    copy.write_text(shipped.read_text() + "\n# a local edit\n")
    code, out = invoke(["run", "--plan", str(plan_file)], {**env, "TEAMSYNC_MAPPING": str(copy)})
    assert code == 4
    assert "another org or mapping" in out
    assert writes(upstream) == 0


# --- history ----------------------------------------------------------------------------------
def test_runs_show_and_history(upstream: RunningEmulators, database_url: str) -> None:
    """runs lists runs with counts; show tells what a run changed (before -> after) by
    account; history lists an account's dated team, field and health changes."""
    env = cli_env(upstream, database_url)
    converge(upstream, env)
    red = upstream.org.scenarios["score_76"]  # type: ignore[union-attr]
    upstream.gainsight.update("company", red.company_gsid, {"CurrentScore": 20})
    assert invoke(["run"], env)[0] == 0

    code, raw = invoke(["runs", "--json", "--limit", "5"], env)
    assert code == 0
    runs = json.loads(raw)
    assert [r["command"] for r in runs] == ["run", "run"]
    assert runs[0]["counts"]["succeeded"] == 3
    assert runs[1]["counts"]["succeeded"] > 50
    assert all(r["duration_seconds"] is not None for r in runs)
    code, text = invoke(["runs", "--limit", "1"], env)
    assert code == 0
    assert runs[0]["run_id"] in text
    assert runs[1]["run_id"] not in text

    code, text = invoke(["show", runs[0]["run_id"][:8]], env)
    assert code == 0, text
    assert "health score 76 → 20" in text
    assert "health status Green → Red" in text
    assert "open Risk CTA 'Red Health'" in text
    code, raw = invoke(["show", runs[0]["run_id"], "--json"], env)
    doc = json.loads(raw)
    assert {o["status"] for o in doc["operations"]} == {"done"}
    assert {o["account"]["id"] for o in doc["operations"]} == {red.account_id}
    code, raw = invoke(["show", runs[1]["run_id"], "--json", "--kind", "delete"], env)
    assert {o["action"] for o in json.loads(raw)["operations"]} == {"delete"}
    assert invoke(["show", "ffffffff-0000"], env)[0] == 2

    code, raw = invoke(["history", red.account_id, "--json"], env)
    assert code == 0
    doc = json.loads(raw)
    kinds = [e["kind"] for e in doc["events"]]
    assert "health" in kinds
    assert "team" in kinds
    assert "cta" in kinds
    assert any("76 (Green) → 20 (Red)" in e["text"] for e in doc["events"])
    stamps = [e["at"] for e in doc["events"]]
    assert stamps == sorted(stamps)
    name = doc["account"]["name"]
    code, text = invoke(["history", name], env)
    assert code == 0
    assert name in text
    assert "76 (Green) → 20 (Red)" in text
    assert invoke(["history", "zzz no such account zzz"], env)[0] == 2


# --- quarantine -------------------------------------------------------------------------------
def test_quarantine_list_dismiss_retry(upstream: RunningEmulators, database_url: str) -> None:
    """A failing write is listed with its reason and account name; dismissing it holds its
    operation back from later runs; retry puts it back and the next run writes it."""
    env = cli_env(upstream, database_url)
    converge(upstream, env)
    red = upstream.org.scenarios["score_76"]  # type: ignore[union-attr]
    upstream.gainsight.update("company", red.company_gsid, {"CurrentScore": 20})
    upstream.salesforce.faults.configure(lock_row_rate=1.0)  # the one Salesforce write fails
    assert invoke(["run"], env)[0] == 1
    upstream.salesforce.faults.configure(lock_row_rate=0.0)

    code, raw = invoke(["quarantine", "list", "--json"], env)
    assert code == 0
    rows = json.loads(raw)
    assert len(rows) == 1
    q = rows[0]
    assert q["record_id"] == red.account_id
    assert q["object"] == "Account"
    assert q["account_name"]
    assert "UNABLE_TO_LOCK_ROW" in q["reason"]
    code, text = invoke(["quarantine", "list"], env)
    assert q["account_name"] in text
    assert "UNABLE_TO_LOCK_ROW" in text

    code, out = invoke(["quarantine", "dismiss", str(q["id"]), "--note", "known lock"], env)
    assert code == 0, out
    assert json.loads(invoke(["quarantine", "list", "--json"], env)[1]) == []
    everything = json.loads(invoke(["quarantine", "list", "--all", "--json"], env)[1])
    assert [(r["state"], r["dismissed_note"]) for r in everything] == [("dismissed", "known lock")]
    # The dismissed record's operation is held back; the open ones are not affected.
    code, raw = invoke(["plan", "--json", "--account", red.account_id], env)
    ops = json.loads(raw)["operations"]
    assert not [o for o in ops if o["object"] == "Account"]
    before = writes(upstream)
    assert invoke(["run"], env)[0] == 0
    assert upstream.salesforce.get("Account", red.account_id)["Health_Status__c"] != "Red"  # type: ignore[index]

    code, out = invoke(["quarantine", "retry", str(q["id"])], env)
    assert code == 0, out
    assert "next run" in out
    assert invoke(["run"], env)[0] == 0
    assert writes(upstream) > before
    assert upstream.salesforce.get("Account", red.account_id)["Health_Status__c"] == "Red"  # type: ignore[index]
    assert json.loads(invoke(["quarantine", "list", "--all", "--json"], env)[1]) == []
    assert invoke(["quarantine", "dismiss", "99999"], env)[0] == 2
    assert invoke(["quarantine", "retry"], env)[0] == 2


def test_progress_reported_for_every_long_phase(
    upstream: RunningEmulators, database_url: str
) -> None:
    """The engine reports progress for pull (per stream), map and plan (one pass) and push,
    which the CLI draws as bars on a terminal; the run summary prints no raw dicts."""
    from sync.engine import Engine, RunOptions
    from tests.sync.conftest import make_settings

    seen: dict[str, tuple[int, int | None]] = {}
    store = Store(database_url)
    store.upgrade()
    engine = Engine.from_settings(
        make_settings(upstream, database_url),
        store=store,
        progress=lambda phase, done, total: seen.__setitem__(phase, (done, total)),
    )
    result = engine.run(RunOptions(allow_mass_change=True))
    assert result.exit_code == 0
    assert {"salesforce.Account", "gainsight.Company"} <= set(seen)
    for phase in ("map and plan accounts", "push operations"):
        done, total = seen[phase]
        assert total is not None
        assert 0 < done == total, phase
    store.dispose()
    code, out = invoke(["run"], cli_env(upstream, database_url))
    assert code == 0
    assert "{" not in out
    assert "plan: nothing to change" in out
