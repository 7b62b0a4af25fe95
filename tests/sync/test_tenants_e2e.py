"""Real tenants end to end (strict emulators): scores read through the scheme lookup with the
default mapping, one invalid company among many, wiped teams, the Gainsight lookback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from emulators.runner import RunningEmulators
from sync.store import Store
from sync.store.models import Account, AlertOutbox, Operation, QuarantinedRecord, TeamWipe

RunFn = Callable[..., Any]


def other_account_executive(users: Any, owner: str) -> str:
    return str(
        next(
            u
            for u in users.ids()
            if u != owner
            and users.value(u, "IsActive")
            and users.value(u, "Title") == "Account Executive"
        )
    )


def test_lookup_scores_sync_with_the_default_mapping(
    upstream: RunningEmulators, run: RunFn, store: Store
) -> None:
    """G1: CurrentScore is a lookup on this tenant; with no configuration the number is read
    through it, nothing is quarantined, and the scores land in Salesforce."""
    assert upstream.gainsight.tables["company"].schema.field("CurrentScore").type == "LOOKUP"  # type: ignore[union-attr]
    result = run(allow_mass_change=True)
    assert result.exit_code == 0
    assert result.stats.invalid_records == 0
    ref = upstream.org.scenarios["score_50"]  # type: ignore[union-attr]
    with store.session() as s:
        mapped = s.get(Account, ref.account_id)
        assert mapped is not None
        assert (mapped.health_score, mapped.health_band) == (50, "Red")
    record = upstream.salesforce.get("Account", ref.account_id or "")
    assert record is not None
    assert (record["Health_Score__c"], record["Health_Status__c"]) == (50, "Red")
    query = next(c for c in upstream.log.calls(operation="company.query"))
    assert query.status == 200


def test_one_invalid_company_is_quarantined_and_the_others_written(
    upstream: RunningEmulators, run: RunFn, store: Store
) -> None:
    """G2: the tenant rejects a batch with one invalid company whole; the batch is narrowed,
    the other companies are written, the bad one quarantined with the tenant's reason
    (exit 1); the next run retries only that one; once fixed, it goes through."""
    run(dry_run=True)
    with store.session() as s:
        planned = sorted(
            s.scalars(
                select(Operation.target_id).where(
                    Operation.system == "gainsight", Operation.object == "Company"
                )
            )
        )
    assert len(planned) >= 40
    bad = str(planned[len(planned) // 2])
    upstream.gainsight.refuse_record(bad, "GSOBJ_1001", "Field exceeds maximum allowed length (X)")
    before = upstream.log.count(operation="company.update")
    first = run(allow_mass_change=True)
    assert first.exit_code == 1
    assert first.stats.pushed.succeeded["gainsight.Company.update"] == len(planned) - 1
    assert first.stats.pushed.failed == {"gainsight.Company.update": 1}
    calls = upstream.log.count(operation="company.update") - before
    assert calls <= 2 + 7  # the floor is ceil(n / 50); one culprit costs at most 7 more
    with store.session() as s:
        (q,) = s.scalars(select(QuarantinedRecord).where(QuarantinedRecord.resolved_at.is_(None)))
        assert (q.record_id, q.code) == (bad, "GSOBJ_1001")
        assert "maximum allowed length" in q.reason
    second = run()
    assert second.exit_code == 1
    assert second.stats.plan == {"gainsight.Company.update": 1}
    upstream.gainsight.refuse_record(bad, "")
    third = run()
    assert third.exit_code == 0
    with store.session() as s:
        assert (
            s.scalars(
                select(QuarantinedRecord).where(QuarantinedRecord.resolved_at.is_(None))
            ).all()
            == []
        )
    assert run().stats.plan == {}


def test_owner_change_that_wipes_the_team_is_flagged_and_alerted(
    upstream: RunningEmulators, run: RunFn, store: Store
) -> None:
    """S7: another integration changes an account owner without KeepAccountTeam; the org
    deletes the whole team.  teamsync re-creates its managed rows, flags TEAM_WIPED, alerts
    the DRI naming the people lost, and clears the flag once a person re-adds a row."""
    assert run(allow_mass_change=True).exit_code == 0
    sf = upstream.salesforce
    atm = sf.tables["AccountTeamMember"]
    managed = {"Strategic Account Executive", "Account Executive", "Customer Success Manager",
               "Renewal Manager"}  # fmt: skip
    by_account: dict[str, list[dict[str, Any]]] = {}
    for rid in atm.ids():
        row = atm.get(rid)
        if row is not None:
            by_account.setdefault(row["AccountId"], []).append(row)
    account_id, rows = next(
        (a, r) for a, r in sorted(by_account.items())
        if any(x["TeamMemberRole"] not in managed for x in r)
        and any(x["TeamMemberRole"] in managed for x in r)
    )  # fmt: skip
    human = [x for x in rows if x["TeamMemberRole"] not in managed]
    owner = sf.get("Account", account_id)["OwnerId"]  # type: ignore[index]
    users = sf.tables["User"]
    new_owner = other_account_executive(users, owner)
    sf.update("Account", account_id, {"OwnerId": new_owner})  # another integration, no Keep
    assert atm.find("AccountId", account_id) == set()

    result = run(allow_mass_change=True)
    assert result.exit_code == 0
    assert result.stats.team_wipes == 1
    flags = str(sf.get("Account", account_id)["Risk_Flags__c"])  # type: ignore[index]
    assert "TEAM_WIPED" in flags.split(";")
    roles = {atm.get(r)["TeamMemberRole"] for r in atm.find("AccountId", account_id)}  # type: ignore[index]
    assert roles
    assert roles <= managed  # teamsync's rows are back, the human ones are not
    with store.session() as s:
        (wipe,) = s.scalars(select(TeamWipe))
        assert {p["row_id"] for p in wipe.lost} == {x["Id"] for x in human}
        assert all(p["name"] and p["email"] for p in wipe.lost)
        alerts = s.scalars(select(AlertOutbox).where(AlertOutbox.kind == "team_wiped")).all()
    assert len({a.idempotency_key for a in alerts}) == 1
    payload = alerts[0].payload
    assert payload["team"]["dri"] is not None
    assert {p["role"] for p in payload["lost"]} == {x["TeamMemberRole"] for x in human}
    for person in wipe.lost:
        assert person["name"] in payload["title"]

    # Nothing new the next run: no second alert, the flag stays.
    again = run()
    assert again.stats.team_wipes is None
    with store.session() as s:
        wiped = select(AlertOutbox).where(AlertOutbox.kind == "team_wiped")
        assert len(s.scalars(wiped).all()) == len(alerts)
    # A person re-adds the Solutions Architect: resolved, flag cleared.
    person = next(
        u for u in users.ids()
        if users.value(u, "IsActive") and users.value(u, "Title") == "Solutions Architect"
    )  # fmt: skip
    sf.create(
        "AccountTeamMember",
        {"AccountId": account_id, "UserId": person, "TeamMemberRole": "Solutions Architect",
         "AccountAccessLevel": "Edit", "OpportunityAccessLevel": "Read", "CaseAccessLevel": "Read"},
    )  # fmt: skip
    run()
    flags = str(sf.get("Account", account_id)["Risk_Flags__c"] or "")  # type: ignore[index]
    assert "TEAM_WIPED" not in flags.split(";")
    with store.session() as s:
        (wipe,) = s.scalars(select(TeamWipe))
        assert wipe.resolved_at is not None


def test_keep_account_team_wipes_nothing(upstream: RunningEmulators, run: RunFn) -> None:
    """The same owner change sent with KeepAccountTeam keeps the team: no flag, no alert."""
    assert run(allow_mass_change=True).exit_code == 0
    sf = upstream.salesforce
    account_id = next(iter(sorted(sf.tables["Account"].ids())))
    users = sf.tables["User"]
    owner = sf.get("Account", account_id)["OwnerId"]  # type: ignore[index]
    new_owner = other_account_executive(users, owner)
    kept = set(sf.tables["AccountTeamMember"].find("AccountId", account_id))
    sf.update("Account", account_id, {"OwnerId": new_owner}, keep_account_team=True)
    assert set(sf.tables["AccountTeamMember"].find("AccountId", account_id)) == kept
    result = run(allow_mass_change=True)
    assert result.stats.team_wipes is None


def test_gainsight_lookback_covers_a_tenant_reading_filters_in_its_time_zone(
    upstream: RunningEmulators, run: RunFn, store: Store
) -> None:
    """G3: the tenant reads filter times in US Pacific time; a change made an hour after the
    last pull is still seen, because Gainsight streams look back a day."""
    assert run(allow_mass_change=True).exit_code == 0
    upstream.gainsight.filter_time_zone = "America/Los_Angeles"
    ref = upstream.org.scenarios["score_76"]  # type: ignore[union-attr]
    upstream.clock.advance(3_600_000)
    upstream.gainsight.update("company", ref.company_gsid or "", {"CurrentScore": 20})
    upstream.clock.advance(60_000)
    result = run(allow_mass_change=True)
    assert result.stats.pulled["gainsight.Company"]["records"] >= 1
    with store.session() as s:
        mapped = s.get(Account, ref.account_id)
        assert mapped is not None
        assert (mapped.health_score, mapped.health_band) == (20, "Red")


def test_ctas_always_carry_an_owner(
    upstream: RunningEmulators, database_url: str, store: Store, tmp_path: Any
) -> None:
    """When nobody the CTA could go to (the signal's DCI row, then ``owner_roles``) has an
    active Gainsight user, a CTA is not opened but quarantined (NO_CTA_OWNER); with a
    fallback owner configured, it is opened owned by that user."""
    from pathlib import Path

    from config.settings import _DEFAULT_MAPPING
    from sync.engine import Engine, RunOptions
    from tests.sync.conftest import make_settings

    users = upstream.gainsight.tables["gsuser"]
    for gsid in sorted(users.ids()):
        upstream.gainsight.update("GsUser", gsid, {"IsActiveUser": False})
    settings = make_settings(upstream, database_url)
    first = Engine.from_settings(settings, store=store).run(RunOptions(allow_mass_change=True))
    assert first.exit_code == 1
    assert first.stats.ctas_without_owner
    assert upstream.log.count(operation="cta.create") == 0
    with store.session() as s:
        unowned = s.scalars(
            select(QuarantinedRecord).where(QuarantinedRecord.code == "NO_CTA_OWNER")
        ).all()
    assert len(unowned) == first.stats.ctas_without_owner
    assert "fallback_owner_email" in unowned[0].reason

    email = "cs-leads@example.com"
    owner_gsid = upstream.gainsight.create(
        "GsUser", {"Name": "CS Leads", "Email": email, "IsActiveUser": True}
    )
    text = Path(_DEFAULT_MAPPING).read_text(encoding="utf-8")
    fallback = tmp_path / "fallback.toml"
    fallback.write_text(
        text.replace(f'# fallback_owner_email = "{email}"', f'fallback_owner_email = "{email}"')
    )
    settings = make_settings(upstream, database_url, mapping=str(fallback))
    ctas = upstream.gainsight.tables["calltoaction"]
    before = set(ctas.ids())
    second = Engine.from_settings(settings, store=store).run(RunOptions(allow_mass_change=True))
    assert second.exit_code == 0
    opened = [ctas.get(g) for g in set(ctas.ids()) - before]
    # One of them finds an open CTA a person made earlier and adopts it (owner unchanged).
    assert second.stats.pushed is not None
    adopted = second.stats.pushed.adopted_ctas
    assert len(opened) + adopted == first.stats.ctas_without_owner
    assert all(c is not None and c["OwnerId"] == owner_gsid for c in opened)
    with store.session() as s:
        assert (
            s.scalars(
                select(QuarantinedRecord).where(
                    QuarantinedRecord.code == "NO_CTA_OWNER",
                    QuarantinedRecord.resolved_at.is_(None),
                )
            ).all()
            == []
        )
