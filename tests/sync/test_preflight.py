"""Preflight, one test per prerequisite of a real org and tenant (``real-tenants.md``): the
checklist line and its fix, and what a run does about it (exit 2 before writing anything, or
a run that works around a risk).  Strict emulators throughout."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from config.settings import Settings
from emulators.runner import RunningEmulators
from mappings.schema import load_mapping
from sync.stages.preflight import (
    Check,
    Preflight,
    PreflightFailed,
    Report,
    effective_access,
    preflight_from_settings,
)
from sync.store import Store
from sync.store.models import PreflightReport
from tests.sync.conftest import make_settings

RunFn = Callable[..., Any]


def checklist(settings: Settings) -> Report:
    return preflight_from_settings(settings, load_mapping(settings.mapping), full=True)


def line(report: Report, key: str) -> Check:
    found = [c for c in report.checks if c.key == key]
    assert found, f"no checklist line {key}: {[c.key for c in report.checks]}"
    return found[0]


def refused_before_writing(upstream: RunningEmulators, run: RunFn) -> PreflightFailed:
    writes = upstream.log.count(kind="write")
    with pytest.raises(PreflightFailed) as info:
        run(allow_mass_change=True)
    assert info.value.exit_code == 2
    assert upstream.log.count(kind="write") == writes
    return info.value


def test_a_prepared_org_and_tenant_pass(upstream: RunningEmulators, settings: Settings) -> None:
    """The synthetic org is set up as the admin checklist asks: nothing missing."""
    report = checklist(settings)
    assert report.blocking == []
    assert line(report, "salesforce.account_teams").status == "ok"
    assert line(report, "gainsight.score.CurrentScore").status == "ok"
    assert "CurrentScore__gr.Score" in line(report, "gainsight.score.CurrentScore").detail


def test_missing_custom_field(upstream: RunningEmulators, settings: Settings, run: RunFn) -> None:
    """A mapped custom field the org lacks: missing, create it / grant read access."""
    upstream.salesforce.remove_field("Account", "Health_Score__c")
    check = line(checklist(settings), "salesforce.field.Account.Health_Score__c")
    assert check.status == "missing"
    assert "not visible" in check.detail
    assert "create Account.Health_Score__c" in (check.fix or "")
    failed = refused_before_writing(upstream, run)
    assert any("Health_Score__c" in p for p in failed.problems)


def test_field_without_edit_access(
    upstream: RunningEmulators, settings: Settings, run: RunFn
) -> None:
    """Field-level security gives read but not edit on a field teamsync writes."""
    upstream.salesforce.set_field_access("Account", "Risk_Flags__c", editable=False)
    check = line(checklist(settings), "salesforce.field.Account.Risk_Flags__c")
    assert check.status == "missing"
    assert "not updateable" in check.detail
    assert "Edit access to Account.Risk_Flags__c" in (check.fix or "")
    refused_before_writing(upstream, run)


def test_missing_team_role_value(
    upstream: RunningEmulators, settings: Settings, run: RunFn
) -> None:
    """A Team Role value teamsync writes is missing from the org's picklist."""
    upstream.salesforce.remove_picklist_values(
        "AccountTeamMember", "TeamMemberRole", "Customer Success Manager"
    )
    check = line(checklist(settings), "salesforce.team_role.CSM")
    assert check.status == "missing"
    assert check.fix == "Setup > Account Teams > Team Roles: add 'Customer Success Manager'"
    refused_before_writing(upstream, run)


def test_account_teams_disabled(upstream: RunningEmulators, settings: Settings) -> None:
    """Without Account Teams there is no AccountTeamMember to describe."""
    upstream.salesforce.account_teams_enabled = False
    check = line(checklist(settings), "salesforce.account_teams")
    assert check.status == "missing"
    assert "Enable Account Teams" in (check.fix or "")


def test_public_opportunity_and_case_sharing_raise_the_levels(
    upstream: RunningEmulators, settings: Settings, run: RunFn
) -> None:
    """Public Read/Write Opportunity and Case sharing: a risky line, and the run succeeds by
    sending Edit for both (and Edit on the account: one level above its default)."""
    upstream.salesforce.set_org_defaults(Opportunity="Edit", Case="Edit")
    check = line(checklist(settings), "salesforce.sharing")
    assert check.status == "risky"
    assert "raised: CaseAccessLevel, OpportunityAccessLevel" in check.detail
    before = set(upstream.salesforce.tables["AccountTeamMember"].ids())
    result = run(allow_mass_change=True)
    assert result.exit_code == 0
    table = upstream.salesforce.tables["AccountTeamMember"]
    created = [table.get(rid) for rid in set(table.ids()) - before]
    assert created
    levels = {
        (r["AccountAccessLevel"], r["OpportunityAccessLevel"], r["CaseAccessLevel"])
        for r in created
        if r is not None
    }
    assert levels == {("Edit", "Edit", "Edit")}
    assert all(r["ContactAccessLevel"] == "None" for r in created if r is not None)


def test_client_credentials_on_a_login_host(upstream: RunningEmulators, database_url: str) -> None:
    """Client credentials against login.salesforce.com: missing, use the My Domain URL."""
    settings = make_settings(
        upstream, database_url, salesforce_instance_url="https://login.salesforce.com"
    )
    report = checklist(settings)
    check = line(report, "salesforce.auth.host")
    assert check.status == "missing"
    assert "My Domain" in (check.fix or "")
    assert line(report, "gainsight.api").status == "ok"  # the rest is still checked


def test_jwt_audience_derived_for_a_sandbox_host(database_url: str) -> None:
    """A sandbox host derives aud https://test.salesforce.com (no call needed to say so)."""
    settings = Settings(
        database_url=database_url,
        salesforce_instance_url="https://acme--uat.sandbox.my.salesforce.com",
        salesforce_client_id="cid",
        salesforce_username="integration@acme.example",
        salesforce_private_key_file=__file__,
    )
    report = Preflight(settings, load_mapping(settings.mapping), None, None).run(full=False)
    check = line(report, "salesforce.auth.jwt_audience")
    assert (check.status, check.detail) == (
        "ok",
        "https://test.salesforce.com (derived from the host)",
    )


def test_sandbox_jwt(upstream: RunningEmulators, database_url: str, store: Store) -> None:
    """A sandbox refuses the production audience: missing, with the audience to set; set,
    the checklist and a run pass."""
    upstream.salesforce.is_sandbox = True
    env = {k.removeprefix("TEAMSYNC_").lower(): v for k, v in upstream.env("jwt").items()}
    wrong = make_settings(upstream, database_url, **env)
    check = line(checklist(wrong), "salesforce.auth.jwt_audience")
    assert check.status == "missing"
    assert "TEAMSYNC_SALESFORCE_JWT_AUDIENCE=https://test.salesforce.com" in (check.fix or "")
    right = make_settings(
        upstream, database_url, **env, salesforce_jwt_audience="https://test.salesforce.com"
    )
    report = checklist(right)
    assert line(report, "salesforce.auth.jwt_audience").status == "ok"
    assert "(sandbox)" in line(report, "salesforce.api").detail


def test_missing_cta_reason(upstream: RunningEmulators, settings: Settings, run: RunFn) -> None:
    """A CTA reason the tenant never configured: missing, add it or change the mapping."""
    upstream.gainsight.picklists.remove("reason", "Renewal at Risk")
    check = line(checklist(settings), "gainsight.cockpit.flags.RENEWAL_AT_RISK.reason")
    assert check.status == "missing"
    assert "add reason for RENEWAL_AT_RISK 'Renewal at Risk'" in (check.fix or "")
    assert "gainsight.cta.flags.RENEWAL_AT_RISK.reason" in (check.fix or "")
    refused_before_writing(upstream, run)


def test_gainsight_field_that_does_not_exist(
    upstream: RunningEmulators, settings: Settings, run: RunFn
) -> None:
    """A selected Gainsight field the tenant lacks (a query with it fails whole): missing."""
    upstream.gainsight.remove_field("GsUser", "IsActiveUser")
    check = line(checklist(settings), "gainsight.field.GsUser.IsActiveUser")
    assert check.status == "missing"
    assert "set the mapping's gainsight field names" in (check.fix or "")
    refused_before_writing(upstream, run)


def test_gsid_not_sortable_paging_falls_back(
    upstream: RunningEmulators, settings: Settings, run: RunFn, store: Store
) -> None:
    """G4: a tenant that cannot sort Gsid is a risk, not a stop: reads page by offset."""
    upstream.gainsight.gsid_sortable = False
    check = line(checklist(settings), "gainsight.gsid_sortable.Company")
    assert check.status == "risky"
    assert "offset" in check.detail
    result = run(allow_mass_change=True)
    assert result.exit_code == 0
    pulled = result.stats.pulled["gainsight.Company"]["records"]
    assert pulled == len(upstream.gainsight.tables["company"])
    refused = [c for c in upstream.log.calls(operation="company.query") if c.status == 400]
    assert refused == []


def test_run_keeps_the_report_a_day_and_drops_it_on_a_field_error(
    upstream: RunningEmulators, run: RunFn, store: Store
) -> None:
    """The cheap preflight runs once, is reused by the next run, and a field error (a
    picklist value removed, refusing a write) drops it: the run after checks again and
    stops with the missing value named."""
    first = run(allow_mass_change=True)
    assert first.stats.preflight is not None
    assert first.stats.preflight["cached"] is False
    describes = upstream.log.count(operation="describe")
    assert run().stats.preflight["cached"] is True
    assert upstream.log.count(operation="describe") == describes
    accounts = upstream.salesforce.tables["Account"]
    flagged = {
        rid: str(value).split(";")
        for rid in accounts.ids()
        if (value := (accounts.get(rid) or {}).get("Risk_Flags__c"))
    }
    assert flagged, "the first run flags some accounts"
    target, flags = next(iter(flagged.items()))
    flag = flags[0]
    # A human clears the flags and an admin removes that flag's value the same day.
    upstream.salesforce.update("Account", target, {"Risk_Flags__c": None})
    upstream.salesforce.remove_picklist_values("Account", "Risk_Flags__c", flag)
    refused = run()
    assert refused.exit_code == 1
    with store.session() as s:
        assert s.scalars(select(PreflightReport)).all() == []
    stopped = refused_before_writing(upstream, run)
    assert any(flag in p for p in stopped.problems)


@pytest.mark.parametrize(
    ("defaults", "expected"),
    [
        ({"Account": "Read", "Opportunity": "None", "Case": "None"}, ("Edit", "Read", "Read")),
        ({"Account": "Edit", "Opportunity": "None", "Case": "None"}, ("Edit", "Read", "Read")),
        ({"Account": "Edit", "Opportunity": "Edit", "Case": "None"}, ("Edit", "Edit", "Read")),
        ({"Account": "Edit", "Opportunity": "Edit", "Case": "Read"}, ("Edit", "Edit", "Edit")),
        ({"Account": "Read", "Opportunity": "Edit", "Case": "ReadEditTransfer"},
         ("Edit", "Edit", "Edit")),
    ],
)  # fmt: skip
def test_effective_access(defaults: dict[str, str], expected: tuple[str, str, str]) -> None:
    """max(configured, default) per object; when none is above its default, the first that
    can be is raised one level (configured Edit / Read / Read)."""
    configured = {
        "AccountAccessLevel": "Edit",
        "OpportunityAccessLevel": "Read",
        "CaseAccessLevel": "Read",
    }
    got = effective_access(configured, defaults)
    assert got is not None
    assert (got["AccountAccessLevel"], got["OpportunityAccessLevel"], got["CaseAccessLevel"]) == (
        expected
    )


def test_no_level_can_be_above_the_defaults() -> None:
    """Every default at Edit: no team row can be created - a missing line, not a guess."""
    assert effective_access({}, {"Account": "Edit", "Opportunity": "Edit", "Case": "Edit"}) is None
    got = effective_access({}, {"Account": "Read", "Opportunity": "Edit", "Case": "Edit"})
    assert got == {
        "AccountAccessLevel": "Edit",
        "OpportunityAccessLevel": "Edit",
        "CaseAccessLevel": "Edit",
    }
