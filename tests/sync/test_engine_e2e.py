"""End to end: the engine against both emulators over HTTPS with the real clients.

Every test runs on SQLite and, when TEAMSYNC_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from config.errors import SafeguardRefused
from config.settings import Settings
from emulators.runner import RunningEmulators
from mappings.schema import load_mapping
from sync.engine import Engine, RunOptions, build_clients
from sync.store import Store
from sync.store.models import (
    Account,
    AlertOutbox,
    AlertState,
    CtaLink,
    HealthObservation,
    Operation,
    QuarantinedRecord,
    RawRecord,
)

RunFn = Callable[..., Any]

MANAGED = {
    "Strategic Account Executive",
    "Account Executive",
    "Customer Success Manager",
    "Renewal Manager",
}


def team(upstream: RunningEmulators, account_id: str) -> list[dict[str, Any]]:
    table = upstream.salesforce.tables["AccountTeamMember"]
    rows = [table.get(rid) for rid in table.find("AccountId", account_id)]
    return sorted((r for r in rows if r is not None), key=lambda r: r["Id"])


def account(upstream: RunningEmulators, account_id: str) -> dict[str, Any]:
    record = upstream.salesforce.get("Account", account_id)
    assert record is not None
    return record


def company(upstream: RunningEmulators, gsid: str) -> dict[str, Any]:
    record = upstream.gainsight.get("company", gsid)
    assert record is not None
    return record


def flags(upstream: RunningEmulators, key: str) -> set[str]:
    ref = upstream.org.scenarios[key]  # type: ignore[union-attr]
    value = account(upstream, ref.account_id or "").get("Risk_Flags__c")
    return set(value.split(";")) if value else set()


def writes(upstream: RunningEmulators) -> int:
    return upstream.log.count(kind="write")


def open_ctas(upstream: RunningEmulators, gsid: str) -> list[dict[str, Any]]:
    table = upstream.gainsight.tables["calltoaction"]
    out = []
    for rid in table.find("CompanyId", gsid):
        row = table.get(rid)
        if row is not None and not row["IsClosed"]:
            row["reason"] = upstream.gainsight.picklists.name(row["ReasonId"])
            row["type"] = upstream.gainsight.picklists.name(row["TypeId"])
            out.append(row)
    return out


def unmanaged_rows(upstream: RunningEmulators) -> dict[str, tuple[str, str, str]]:
    table = upstream.salesforce.tables["AccountTeamMember"]
    out = {}
    for rid, _ in table.iter_rows():
        row = table.get(rid)
        assert row is not None
        if row["TeamMemberRole"] not in MANAGED:
            out[rid] = (row["AccountId"], row["UserId"], row["TeamMemberRole"])
    return out


@pytest.fixture
def converged(upstream: RunningEmulators, run: RunFn) -> RunningEmulators:
    """The org after one full run (applied with --allow-mass-change: the synthetic org starts
    with stale rows that the safeguard would otherwise hold back)."""
    result = run(allow_mass_change=True)
    assert result.exit_code == 0, result.stats
    return upstream


def test_first_run_converges_to_expected_teams_fields_and_ctas(converged: RunningEmulators) -> None:
    """Scenario accounts end up with the team, health, flags and CTAs the rules call for."""
    upstream = converged
    sc = upstream.org.scenarios  # type: ignore[union-attr]

    # Red health: band written to both systems, a Risk CTA opened for the CSM.
    red = sc["score_50"]
    assert account(upstream, red.account_id)["Health_Status__c"] == "Red"
    assert account(upstream, red.account_id)["Health_Score__c"] == 50
    assert "RED_HEALTH" in flags(upstream, "score_50")
    assert "RED_HEALTH" in (company(upstream, red.company_gsid)["RiskFlags__gc"] or "")
    ctas = open_ctas(upstream, red.company_gsid)
    assert [(c["type"], c["reason"]) for c in ctas] == [("Risk", "Red Health")]
    assert ctas[0]["OwnerId"] == red.gs_users["csm"]
    for key, band in (
        ("score_51", "Yellow"),
        ("score_75", "Yellow"),
        ("score_76", "Green"),
        ("score_null", "Unknown"),
        ("no_company", "Unknown"),
    ):
        assert account(upstream, sc[key].account_id)["Health_Status__c"] == band, key

    # Every scenario account carries its owner as AE (Mid-Market) and its CSM in a row.
    plain = sc["score_76"]
    rows = {r["UserId"]: r["TeamMemberRole"] for r in team(upstream, plain.account_id)}
    assert rows[plain.users["owner"]] == "Account Executive"
    assert rows[plain.users["csm"]] == "Customer Success Manager"
    assert company(upstream, plain.company_gsid)["AccountExecutive__gc"] == plain.gs_users["owner"]

    # One row per person: the AE who owns the renewal keeps one row, as AE.
    both = sc["ae_owns_renewal"]
    owner_rows = [r for r in team(upstream, both.account_id) if r["UserId"] == both.users["owner"]]
    assert [r["TeamMemberRole"] for r in owner_rows] == ["Account Executive"]

    # A person with a human-added unmanaged row keeps it, and no second row is added.
    human = sc["human_sa_row_for_ae"]
    owner_rows = [
        r for r in team(upstream, human.account_id) if r["UserId"] == human.users["owner"]
    ]
    assert [r["TeamMemberRole"] for r in owner_rows] == ["Solutions Architect"]

    # The stale AE row of a former owner is removed.
    stale = sc["stale_ae_row"]
    users = {r["UserId"] for r in team(upstream, stale.account_id)}
    assert stale.users["former_owner"] not in users
    assert stale.users["owner"] in users

    # The CSM is matched across systems by e-mail whatever its case.
    case = sc["csm_email_case"]
    assert case.users["csm"] in {r["UserId"] for r in team(upstream, case.account_id)}

    # Flags.
    # One condition, one flag: a new handoff is HANDOFF_DUE alone (the CSM is pending).
    assert {f for f in flags(upstream, "handoff_due") if "CSM" in f or "HANDOFF" in f} == {
        "HANDOFF_DUE"
    }
    # Gainsight's PreviousScore is undated: no HEALTH_DROP from it.
    assert "HEALTH_DROP" not in flags(upstream, "health_drop")
    assert "OVERSTAFFED" in flags(upstream, "overstaffed")
    assert "MISSING_AE" in flags(upstream, "inactive_owner")
    assert "INACTIVE_MEMBER" not in flags(upstream, "inactive_owner")
    assert "OVERDUE_CSM" in flags(upstream, "arr_50000")
    assert not {f for f in flags(upstream, "arr_49999") if f.endswith("_CSM")}
    assert "RENEWAL_AT_RISK" in flags(upstream, "renewal_119")
    assert "RENEWAL_AT_RISK" in flags(upstream, "renewal_120")
    assert "RENEWAL_AT_RISK" not in flags(upstream, "renewal_121")
    assert "MISSING_SA" in flags(upstream, "inactive_sa_member")
    assert "INACTIVE_MEMBER" not in flags(upstream, "inactive_sa_member")
    inactive_owner = sc["inactive_owner"]
    assert inactive_owner.users["owner"] not in {
        r["UserId"] for r in team(upstream, inactive_owner.account_id)
    }
    # A company linked by the 15-character Id is found and written.
    linked = sc["link_15_char"]
    assert (
        company(upstream, linked.company_gsid)["AccountExecutive__gc"] == linked.gs_users["owner"]
    )


def test_second_run_makes_zero_writes(converged: RunningEmulators, run: RunFn) -> None:
    """A run with nothing to change makes no write call at all (request log)."""
    before = writes(converged)
    result = run()
    assert result.exit_code == 0
    assert result.stats.plan == {}
    assert writes(converged) == before


def test_chunks_with_nothing_planned_do_not_wait_for_a_re_read(
    converged: RunningEmulators, settings: Settings, run: RunFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory flat in the number of accounts: a chunk with nothing planned is finished as soon
    as it is mapped; no chunk waits for a team re-read, so a run holds one chunk at a time."""
    groups: list[int] = []
    reread = Engine._reread

    def spy(self: Engine, group: list[Any], *args: Any) -> Any:
        groups.append(len(group))
        return reread(self, group, *args)

    monkeypatch.setattr(Engine, "_reread", spy)
    result = run(settings.model_copy(update={"chunk_size": 2}))
    assert result.exit_code == 0
    assert result.stats.plan == {}
    assert (result.stats.mapped or 0) > 4  # several chunks
    assert groups == [0]  # only the final flush, with nothing in it


def test_red_change_makes_exactly_the_expected_writes(
    converged: RunningEmulators, run: RunFn
) -> None:
    """One company turning red: one Account update, one Company update, one CTA, nothing else."""
    upstream = converged
    ref = upstream.org.scenarios["score_76"]  # type: ignore[union-attr]
    upstream.gainsight.update(
        "company", ref.company_gsid, {"CurrentScore": 20, "PreviousScore": 76}
    )
    upstream.log.reset()
    result = run()
    assert result.exit_code == 0
    write_calls = {(c.api, c.operation, c.records) for c in upstream.log.calls(kind="write")}
    assert write_calls == {
        ("salesforce", "collections.update", 1),
        ("gainsight", "company.update", 1),
        ("gainsight", "cta.create", 1),
    }
    assert upstream.log.count(kind="write") == 3
    acc = account(upstream, ref.account_id)
    assert acc["Health_Status__c"] == "Red"
    assert {"RED_HEALTH", "HEALTH_DROP"} <= set(acc["Risk_Flags__c"].split(";"))
    assert [c["reason"] for c in open_ctas(upstream, ref.company_gsid)] == ["Red Health"]
    # ... and recovery closes the CTA it opened.
    upstream.gainsight.update(
        "company", ref.company_gsid, {"CurrentScore": 90, "PreviousScore": 20}
    )
    assert run().exit_code == 0
    assert open_ctas(upstream, ref.company_gsid) == []


def test_hand_removed_member_is_repaired(
    converged: RunningEmulators, run: RunFn, store: Store
) -> None:
    """Deleting a managed team row in Salesforce by hand is repaired by the next run."""
    upstream = converged
    ref = upstream.org.scenarios["score_76"]  # type: ignore[union-attr]
    csm_row = next(
        r
        for r in team(upstream, ref.account_id)
        if r["TeamMemberRole"] == "Customer Success Manager"
    )
    upstream.salesforce.delete("AccountTeamMember", csm_row["Id"])
    assert run().exit_code == 0
    again = [r for r in team(upstream, ref.account_id) if r["UserId"] == csm_row["UserId"]]
    assert [r["TeamMemberRole"] for r in again] == ["Customer Success Manager"]
    assert again[0]["Id"] != csm_row["Id"]
    before = writes(upstream)
    assert run().stats.plan == {}
    assert writes(upstream) == before


def test_unmanaged_members_survive_every_run(upstream: RunningEmulators, run: RunFn) -> None:
    """Rows in roles teamsync does not manage are never changed or removed."""
    before = unmanaged_rows(upstream)
    assert before, "the synthetic org has unmanaged rows"
    run(allow_mass_change=True)
    run()
    ref = upstream.org.scenarios["score_76"]  # type: ignore[union-attr]
    upstream.gainsight.update("company", ref.company_gsid, {"CurrentScore": 10})
    run(full=True)
    after = unmanaged_rows(upstream)
    assert after == before


def test_dry_run_and_plan_make_no_writes(
    upstream: RunningEmulators, run: RunFn, store: Store
) -> None:
    """--dry-run computes and stores the plan but writes nothing to either API."""
    before = writes(upstream)
    result = run(dry_run=True)
    assert result.status == "dry_run"
    assert writes(upstream) == before
    assert sum(result.stats.plan.values()) > 0
    with store.session() as s:
        ops = list(s.scalars(select(Operation).where(Operation.run_id == result.run_id)))
    assert ops
    assert {op.status for op in ops} == {"planned"}
    # Nothing lands in the model tables: no mapped accounts, no health history, no alerts.
    with store.session() as s:
        for table in (Account, HealthObservation, AlertOutbox, AlertState):
            assert s.scalar(select(func.count()).select_from(table)) == 0, table.__tablename__
    # The plan is stable: a second dry run plans the same operations.
    again = run(dry_run=True)
    assert again.stats.plan == result.stats.plan
    assert writes(upstream) == before


def test_team_changed_after_the_pull_is_planned_from_the_re_read(
    converged: RunningEmulators, settings: Settings, store: Store
) -> None:
    """A team row put back by hand between the pull and the plan is seen by the re-read: the
    account is planned again from its actual team, so the row is not created twice."""
    upstream = converged
    ref = upstream.org.scenarios["score_76"]  # type: ignore[union-attr]
    csm = next(
        r
        for r in team(upstream, ref.account_id)
        if r["TeamMemberRole"] == "Customer Success Manager"
    )
    upstream.salesforce.delete("AccountTeamMember", csm["Id"])  # the pull sees the row gone
    sf, gs = build_clients(settings)
    reread: list[str] = []

    class PutBackBeforeReRead:
        """The real client; the first team re-read finds the row put back by a human."""

        def __getattr__(self, name: str) -> Any:
            return getattr(sf, name)

        def query(self, soql: str, **kw: Any) -> Any:
            if "AccountId IN" in soql and not reread:
                reread.append(soql)
                fields = ("AccountId", "UserId", "TeamMemberRole", "AccountAccessLevel")
                upstream.salesforce.create("AccountTeamMember", {k: csm[k] for k in fields})
            return sf.query(soql, **kw)

    engine = Engine(
        settings,
        load_mapping(settings.mapping),
        store,
        PutBackBeforeReRead(),
        gs,  # type: ignore[arg-type]
    )
    result = engine.run(RunOptions())
    assert reread, "the plan re-read the team"
    assert result.exit_code == 0
    assert "salesforce.AccountTeamMember.create" not in (result.stats.plan or {})
    rows = [r for r in team(upstream, ref.account_id) if r["UserId"] == csm["UserId"]]
    assert [r["TeamMemberRole"] for r in rows] == ["Customer Success Manager"]


def test_a_row_the_id_scan_missed_and_the_re_read_sees_is_live(
    converged: RunningEmulators, settings: Settings, store: Store
) -> None:
    """Seen again = live again: a team row the Id scan left out (it answered without it) but
    the re-read of the account's team finds is live. The account is planned from the row (no
    second row created), the row is not marked deleted, and only the row really gone is."""
    upstream = converged
    ref = upstream.org.scenarios["score_76"]  # type: ignore[union-attr]
    victim = next(
        r
        for r in team(upstream, ref.account_id)
        if r["TeamMemberRole"] == "Customer Success Manager"
    )
    # A managed row really gone on another account: the counts differ, so the Id scan runs.
    gone = next(
        r
        for rid, _ in upstream.salesforce.tables["AccountTeamMember"].iter_rows()
        if (r := upstream.salesforce.get("AccountTeamMember", rid)) is not None
        and r["AccountId"] != ref.account_id
        and r["TeamMemberRole"] == "Customer Success Manager"
    )
    upstream.salesforce.delete("AccountTeamMember", gone["Id"])
    sf, gs = build_clients(settings)
    scans: list[str] = []

    class ScanMissesTheRow:
        """The real client, except that the Id scan of team rows leaves the victim out."""

        def __getattr__(self, name: str) -> Any:
            return getattr(sf, name)

        def query(self, soql: str, **kw: Any) -> Any:
            if soql.startswith("SELECT Id FROM AccountTeamMember"):
                scans.append(soql)
                return (
                    [r for r in page if r.get("Id") != victim["Id"]]
                    for page in sf.query(soql, **kw)
                )
            return sf.query(soql, **kw)

    engine = Engine(settings, load_mapping(settings.mapping), store, ScanMissesTheRow(), gs)  # type: ignore[arg-type]
    result = engine.run(RunOptions())
    assert scans, "the Id scan ran"
    assert result.exit_code == 0, result.stats
    # Only the row really gone counts toward the safeguard and is marked deleted.
    assert result.stats.vanished == {"salesforce.AccountTeamMember": 1}
    assert result.stats.marked_deleted == 1
    with store.session() as s:
        is_deleted = s.scalar(
            select(RawRecord.is_deleted).where(
                RawRecord.object == "AccountTeamMember", RawRecord.record_id == victim["Id"]
            )
        )
    assert is_deleted is False
    # Planned from its actual team: the victim's account has its one CSM row, nothing new.
    rows = [r for r in team(upstream, ref.account_id) if r["UserId"] == victim["UserId"]]
    assert [r["Id"] for r in rows] == [victim["Id"]]
    assert result.stats.plan.get("salesforce.AccountTeamMember.create") == 1  # `gone` only
    before = writes(upstream)
    assert Engine.from_settings(settings, store=store).run(RunOptions()).stats.plan == {}
    assert writes(upstream) == before


def test_mass_change_is_refused_with_exit_4(converged: RunningEmulators, run: RunFn) -> None:
    """Handing most accounts to one new owner is refused unless --allow-mass-change."""
    upstream = converged
    accounts = upstream.salesforce.tables["Account"]
    users = upstream.salesforce.tables["User"]
    new_owner = next(
        uid
        for uid, _ in users.iter_rows()
        if (users.get(uid) or {}).get("Title") == "Account Executive"
        and (users.get(uid) or {}).get("IsActive")
    )
    changed = 0
    for aid, _ in accounts.iter_rows():
        row = accounts.get(aid) or {}
        if row.get("OwnerId") != new_owner:
            upstream.salesforce.update("Account", aid, {"OwnerId": new_owner})
            changed += 1
    assert changed >= 25
    before = writes(upstream)
    with pytest.raises(SafeguardRefused) as info:
        run()
    assert info.value.exit_code == 4
    assert writes(upstream) == before
    result = run(allow_mass_change=True)
    assert result.exit_code == 0
    assert writes(upstream) > before


def test_malformed_record_is_quarantined_and_others_sync(
    upstream: RunningEmulators, run: RunFn, store: Store
) -> None:
    """A record that fails validation is quarantined; every other account still syncs."""
    sc = upstream.org.scenarios  # type: ignore[union-attr]
    bad = sc["score_51"]
    good = sc["score_50"]
    upstream.salesforce.load(
        "Opportunity",
        [
            {
                "Name": "Broken",
                "AccountId": bad.account_id,
                "OwnerId": bad.users["owner"],
                "StageName": "Prospecting",
                "CloseDate": "2026-13-45",
                "Type": "Renewal",
            }
        ],
    )
    result = run(allow_mass_change=True)
    assert result.exit_code == 1
    assert result.status == "partial"
    with store.session() as s:
        q = list(
            s.scalars(select(QuarantinedRecord).where(QuarantinedRecord.resolved_at.is_(None)))
        )
    assert [(r.object, r.stage) for r in q] == [("Opportunity", "map")]
    assert "close_date" in q[0].reason
    # The account of the bad record is left alone; the others are written.
    assert account(upstream, bad.account_id).get("Health_Status__c") in (None, "")
    assert account(upstream, good.account_id)["Health_Status__c"] == "Red"


def test_record_failures_are_quarantined_and_retried_next_run(
    upstream: RunningEmulators, run: RunFn, store: Store
) -> None:
    """Per-record write failures are quarantined with their reason and retried next run."""
    upstream.salesforce.faults.configure(lock_row_rate=1.0)
    result = run(allow_mass_change=True)
    assert result.exit_code == 1
    with store.session() as s:
        failed = list(
            s.scalars(select(QuarantinedRecord).where(QuarantinedRecord.resolved_at.is_(None)))
        )
    assert failed
    assert {r.stage for r in failed} == {"push"}
    assert all("UNABLE_TO_LOCK_ROW" in r.reason for r in failed)
    # Gainsight writes were not affected by Salesforce's row locks.
    assert result.stats.pushed.succeeded.get("gainsight.Company.update", 0) > 0
    upstream.salesforce.faults.configure(lock_row_rate=0.0)
    second = run(allow_mass_change=True)
    assert second.exit_code == 0
    with store.session() as s:
        still = list(
            s.scalars(select(QuarantinedRecord).where(QuarantinedRecord.resolved_at.is_(None)))
        )
    assert still == []
    assert run().stats.plan == {}


def test_existing_open_cta_is_adopted_not_duplicated(
    converged: RunningEmulators, store: Store
) -> None:
    """A red company that already had an open Red Health CTA gets no second one."""
    upstream = converged
    with store.session() as s:
        adopted = list(s.scalars(select(CtaLink).where(CtaLink.origin == "adopted")))
    for link in adopted:
        reasons = [c["reason"] for c in open_ctas(upstream, link.company_gsid)]
        assert reasons.count("Red Health") == 1
