"""The account-team rules of mappings/default.toml, one behaviour per test."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from mappings.rules import (
    AccountInput,
    CompanyInput,
    Opportunity,
    Person,
    TeamRow,
    health_drop,
    is_qualifying,
    join_flags,
    lifecycle_of,
    map_account,
    next_renewal,
    segment_of,
    split_flags,
)
from mappings.schema import MappingFile, load_mapping

TODAY = date(2026, 11, 23)
DEFAULT = Path(__file__).resolve().parents[2] / "mappings" / "default.toml"


@pytest.fixture(scope="module")
def mapping() -> MappingFile:
    return load_mapping(DEFAULT)


def person(
    n: int, *, sf_active: bool | None = True, gs: bool = True, gs_active: bool | None = True
) -> Person:
    return Person(
        name=f"Person {n}",
        email=f"p{n}@example.com",
        sf_user_id=f"005{n:012d}AAA" if sf_active is not None else None,
        sf_active=sf_active,
        gs_user_id=f"1P01{n:032d}" if gs else None,
        gs_active=gs_active if gs else None,
    )


def won(days_ago: int = 400, opp_id: str = "006W") -> Opportunity:
    return Opportunity(opp_id, "New Business", True, True, TODAY - timedelta(days=days_ago), None)


def renewal(days: int, owner: Person | None = None, opp_id: str = "006R") -> Opportunity:
    return Opportunity(opp_id, "Renewal", False, False, TODAY + timedelta(days=days), owner)


def company(score: float | None = 80, csm: Person | None = None, **kw: object) -> CompanyInput:
    values: dict[str, object] = {
        "gsid": "1P02COMPANY",
        "name": "Acme",
        "csm": csm,
        "score": score,
        "previous_score": None,
        "trend": None,
        "arr": None,
        "team_fields": {},
        "risk_flags": None,
    }
    values.update(kw)
    return CompanyInput(**values)  # type: ignore[arg-type]


def account(**kw: object) -> AccountInput:
    values: dict[str, object] = {
        "id": "001000000000001AAA",
        "name": "Acme",
        "owner": person(1),
        "segment_raw": "Enterprise",
        "employees": 5000,
        "arr": 100_000.0,
        "opportunities": [won()],
        "team_rows": [],
        "company": company(csm=person(3)),
        "score_history": [],
        "today": TODAY,
    }
    values.update(kw)
    return AccountInput(**values)  # type: ignore[arg-type]


# --- segment ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "employees", "expected"),
    [
        ("Enterprise", 10, ("Enterprise", "field")),
        ("mid-market", 10, ("Mid-Market", "field")),
        ("SMB", 50_000, ("SMB", "field")),
        (None, 2000, ("Enterprise", "fallback")),
        (None, 1999, ("Mid-Market", "fallback")),
        (None, 100, ("Mid-Market", "fallback")),
        (None, 99, ("SMB", "fallback")),
        ("", 2500, ("Enterprise", "fallback")),
        ("Strategic", 150, ("Mid-Market", "fallback")),
        (None, None, ("SMB", "default")),
    ],
)
def test_segment_from_field_or_employee_fallback(
    mapping: MappingFile, raw: str | None, employees: int | None, expected: tuple[str, str]
) -> None:
    """The segment field wins; without it employee count decides (2,000 / 100 thresholds)."""
    assert segment_of(raw, employees, mapping) == expected


# --- CSM-qualifying ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("arr", "expected"),
    [
        (50_000, True),
        (50_000.0, True),
        (49_999.99, False),
        (50_001, True),
        (None, False),
        (0, False),
    ],
)
def test_qualifying_at_or_above_threshold(
    mapping: MappingFile, arr: float | None, expected: bool
) -> None:
    """ARR exactly at 50,000 qualifies; just below does not; unknown ARR never qualifies."""
    assert is_qualifying(arr, "Enterprise", mapping) is expected


def test_qualifying_threshold_per_segment(mapping: MappingFile) -> None:
    """A per-segment threshold overrides the default one."""
    custom = mapping.model_copy(
        update={
            "csm_qualifying": mapping.csm_qualifying.model_copy(
                update={"per_segment": {"Enterprise": 100_000.0}}
            )
        }
    )
    assert not is_qualifying(60_000, "Enterprise", custom)
    assert is_qualifying(60_000, "Mid-Market", custom)


# --- health bands -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("score", "band"),
    [
        (0, "Red"),
        (50, "Red"),
        (50.5, "Yellow"),
        (51, "Yellow"),
        (75, "Yellow"),
        (75.01, "Green"),
        (76, "Green"),
        (100, "Green"),
        (None, "Unknown"),
    ],
)
def test_health_band_boundaries(mapping: MappingFile, score: float | None, band: str) -> None:
    """50 is Red, 51 Yellow, 75 Yellow, 76 Green, null Unknown."""
    assert mapping.band_for(score) == band


# --- lifecycle and renewal --------------------------------------------------------------
def test_prospect_until_first_closed_won(mapping: MappingFile) -> None:
    """No won opportunity: Prospect; the first Closed Won makes a Customer and dates it."""
    lost = Opportunity("006L", "New Business", True, False, TODAY, None)
    open_ = Opportunity("006O", "New Business", False, False, TODAY, None)
    assert lifecycle_of([lost, open_], mapping) == ("Prospect", None)
    assert lifecycle_of([lost, won(30, "006A"), won(300, "006B")], mapping) == (
        "Customer",
        TODAY - timedelta(days=300),
    )


@pytest.mark.parametrize(
    ("days", "in_window"),
    [(119, True), (120, True), (121, False), (-10, True), (0, True), (400, False)],
)
def test_renewal_window_is_120_days_inclusive(
    mapping: MappingFile, days: int, in_window: bool
) -> None:
    """The RM is engaged from 120 days before the next open renewal (an overdue one counts)."""
    r = next_renewal([renewal(days)], TODAY, mapping)
    assert r is not None
    assert (r.days, r.in_window) == (days, in_window)


def test_next_renewal_is_the_earliest_open_one(mapping: MappingFile) -> None:
    """Closed renewals and other opportunity types are ignored; the earliest open one wins."""
    closed = Opportunity("006C", "Renewal", True, True, TODAY + timedelta(days=5), None)
    upsell = Opportunity("006U", "Upsell", False, False, TODAY + timedelta(days=1), None)
    r = next_renewal(
        [closed, upsell, renewal(200, opp_id="006X"), renewal(90, opp_id="006Y")], TODAY, mapping
    )
    assert r is not None
    assert r.opportunity_id == "006Y"
    assert next_renewal([closed, upsell], TODAY, mapping) is None


# --- health drop ------------------------------------------------------------------------
def test_health_drop_of_15_within_30_days(mapping: MappingFile) -> None:
    """A fall of 15 points from the best score in 30 days raises HEALTH_DROP; 14 does not."""
    recent = datetime.combine(TODAY - timedelta(days=10), datetime.min.time(), tzinfo=UTC)
    old = datetime.combine(TODAY - timedelta(days=40), datetime.min.time(), tzinfo=UTC)
    assert health_drop(60, None, [(recent, 75.0)], TODAY, mapping)
    assert not health_drop(61, None, [(recent, 75.0)], TODAY, mapping)
    assert not health_drop(60, None, [(old, 90.0)], TODAY, mapping)
    # Gainsight's previous score counts only with its date inside the window
    # (flags.health_drop_days, gainsight.previous_score_date_field).
    assert not health_drop(60, 80, [], TODAY, mapping)
    assert health_drop(60, 80, [], TODAY, mapping, TODAY - timedelta(days=10))
    assert not health_drop(60, 80, [], TODAY, mapping, TODAY - timedelta(days=31))
    assert not health_drop(None, 80, [], TODAY, mapping, TODAY)


def test_flags_join_sorted_and_split() -> None:
    """Flags are written sorted and joined by ';' and read back as a set."""
    assert join_flags(["NO_CSM", "HEALTH_DROP", "NO_CSM"]) == "HEALTH_DROP;NO_CSM"
    assert join_flags([]) is None
    assert split_flags("B; A;;") == frozenset({"A", "B"})


# --- the whole account --------------------------------------------------------------------
def test_enterprise_team_comes_from_each_source_of_truth(mapping: MappingFile) -> None:
    """SAE = owner, CSM = Gainsight CSM, SA = team row, RM = renewal owner in the window."""
    sa = person(2)
    rm = person(4)
    inp = account(
        team_rows=[TeamRow("01M1", sa.sf_user_id or "", "Solutions Architect", sa)],
        opportunities=[won(), renewal(60, rm)],
    )
    m = map_account(inp, mapping)
    assert {k: v.person.name for k, v in m.team.items()} == {
        "SAE": "Person 1",
        "SA": "Person 2",
        "CSM": "Person 3",
        "RM": "Person 4",
    }
    assert m.missing_roles == []
    assert m.desired_rows == {
        person(1).sf_user_id: ("SAE", "Strategic Account Executive"),
        person(3).sf_user_id: ("CSM", "Customer Success Manager"),
        person(4).sf_user_id: ("RM", "Renewal Manager"),
    }
    # The SA is read, never written; it is mirrored to Gainsight.
    assert m.desired_gs_fields["SolutionsArchitect__gc"] == sa.gs_user_id
    assert m.desired_gs_fields["AccountExecutive__gc"] == person(1).gs_user_id


def test_mid_market_owner_is_the_ae_and_sa_is_not_required(mapping: MappingFile) -> None:
    """Mid-Market: AE + CSM required (SAs are pooled)."""
    m = map_account(account(segment_raw="Mid-Market", company=company(csm=None)), mapping)
    assert "AE" in m.team
    assert "SAE" not in m.team
    assert m.missing_roles == ["CSM"]
    assert "MISSING_SA" not in m.flags


def test_csm_only_required_for_qualifying_accounts(mapping: MappingFile) -> None:
    """A non-qualifying Enterprise account without CSM is not flagged for it; a qualifying
    customer 400 days after its first win is overdue (required_roles.conditions.CSM,
    coverage.CSM)."""
    m = map_account(account(arr=49_999.0, company=company(csm=None)), mapping)
    assert "CSM" not in m.missing_roles
    assert not {f for f in m.flags if f.endswith("_CSM")}
    m2 = map_account(account(arr=50_000.0, company=company(csm=None)), mapping)
    assert "CSM" in m2.missing_roles
    assert [f for f in m2.flags if f.endswith("_CSM")] == ["OVERDUE_CSM"]


def test_handoff_due_for_new_qualifying_customer_without_csm(mapping: MappingFile) -> None:
    """First Closed Won 10 days ago, qualifying, no CSM: one flag, HANDOFF_DUE (the CSM is
    pending until coverage.CSM.days); 200 days ago: no handoff (handoff.window_days), the CSM
    is overdue."""
    mid = {"segment_raw": "Mid-Market", "company": company(csm=None)}
    fresh = map_account(account(opportunities=[won(10)], **mid), mapping)
    assert fresh.flags == ["HANDOFF_DUE"]
    old = map_account(account(opportunities=[won(200)], **mid), mapping)
    assert old.flags == ["OVERDUE_CSM"]
    prospect = map_account(account(opportunities=[], **mid), mapping)
    assert prospect.flags == []


def test_one_row_per_person_by_role_precedence(mapping: MappingFile) -> None:
    """An AE who also owns the renewal gets one row, as Account Executive."""
    ae = person(1)
    inp = account(
        segment_raw="SMB",
        arr=10.0,
        opportunities=[won(), renewal(30, ae)],
        company=company(csm=None),
    )
    m = map_account(inp, mapping)
    assert m.team["AE"].person == m.team["RM"].person
    assert m.desired_rows == {ae.sf_user_id: ("AE", "Account Executive")}


def test_existing_unmanaged_row_is_left_and_role_counts_present(mapping: MappingFile) -> None:
    """The owner already has a human-added Solutions Architect row: no managed row is planned."""
    owner = person(1)
    inp = account(team_rows=[TeamRow("01M1", owner.sf_user_id or "", "Solutions Architect", owner)])
    m = map_account(inp, mapping)
    assert owner.sf_user_id not in m.desired_rows
    assert "SAE" not in m.missing_roles
    assert m.team["SAE"].person == owner


def test_inactive_member_is_never_written_and_counts_missing(mapping: MappingFile) -> None:
    """An inactive owner: no row, and one flag for it: MISSING_SAE (its reason is listed in
    inactive_members, INACTIVE_MEMBER is for people no other flag accounts for)."""
    m = map_account(account(owner=person(1, sf_active=False)), mapping)
    assert person(1).sf_user_id not in m.desired_rows
    assert "MISSING_SAE" in m.flags
    assert "INACTIVE_MEMBER" not in m.flags
    assert m.inactive_members == ["SAE: Person 1"]
    assert m.desired_gs_fields["AccountExecutive__gc"] is None


def test_inactive_sa_row_flags_the_account(mapping: MappingFile) -> None:
    """A Solutions Architect row held by an inactive user: MISSING_SA where an SA is required
    (Enterprise), INACTIVE_MEMBER where none is (Mid-Market)."""
    sa = person(2, sf_active=False)
    rows = [TeamRow("01M1", sa.sf_user_id or "", "Solutions Architect", sa)]
    m = map_account(account(team_rows=rows), mapping)
    assert "MISSING_SA" in m.flags
    assert "INACTIVE_MEMBER" not in m.flags
    mid = map_account(account(team_rows=rows, segment_raw="Mid-Market"), mapping)
    assert "MISSING_SA" not in mid.flags
    assert "INACTIVE_MEMBER" in mid.flags


def test_csm_matched_across_systems_by_email(mapping: MappingFile) -> None:
    """A Gainsight CSM without a Salesforce user gets no row and a note, not an error."""
    csm = Person(name="Cee", email="cee@example.com", gs_user_id="1P01X", gs_active=True)
    m = map_account(account(company=company(csm=csm)), mapping)
    assert "CSM" in m.team
    assert "CSM" not in m.missing_roles
    assert not any(role == "CSM" for role, _ in m.desired_rows.values())
    assert any("no active Salesforce user" in n for n in m.notes)


def test_account_without_company_has_unknown_health(mapping: MappingFile) -> None:
    """No Gainsight company: health Unknown, no CSM, nothing to write in Gainsight."""
    m = map_account(account(company=None, opportunities=[won(), renewal(30)]), mapping)
    assert m.health_band == "Unknown"
    assert m.health_score is None
    assert m.desired_gs_fields == {}
    assert "RENEWAL_AT_RISK" in m.flags  # Unknown is "not Green"
    assert "OVERDUE_CSM" in m.flags


@pytest.mark.parametrize(("score", "red"), [(50, True), (51, False), (None, False)])
def test_red_health_flag(mapping: MappingFile, score: float | None, red: bool) -> None:
    """RED_HEALTH follows the Red band exactly."""
    m = map_account(account(company=company(score=score, csm=person(3))), mapping)
    assert ("RED_HEALTH" in m.flags) is red


@pytest.mark.parametrize(
    ("score", "days", "at_risk"),
    [(75, 119, True), (75, 120, True), (75, 121, False), (76, 30, False)],
)
def test_renewal_at_risk(mapping: MappingFile, score: float, days: int, at_risk: bool) -> None:
    """RENEWAL_AT_RISK: renewal inside the window and health not Green."""
    m = map_account(
        account(company=company(score=score, csm=person(3)), opportunities=[won(), renewal(days)]),
        mapping,
    )
    assert ("RENEWAL_AT_RISK" in m.flags) is at_risk


def test_rm_outside_window_is_not_on_the_team(mapping: MappingFile) -> None:
    """Outside the renewal window the renewal owner is not engaged (no RM row desired)."""
    rm = person(4)
    m = map_account(account(opportunities=[won(), renewal(200, rm)]), mapping)
    assert "RM" not in m.team
    assert rm.sf_user_id not in m.desired_rows
    assert m.desired_gs_fields["RenewalManager__gc"] is None


def test_overstaffed_non_qualifying_account(mapping: MappingFile) -> None:
    """A non-qualifying SMB account carrying an executive, an SA and a CSM is OVERSTAFFED."""
    sae, sa, csm = person(5), person(6), person(7)
    rows = [
        TeamRow("01M1", sae.sf_user_id or "", "Strategic Account Executive", sae),
        TeamRow("01M2", sa.sf_user_id or "", "Solutions Architect", sa),
        TeamRow("01M3", csm.sf_user_id or "", "Customer Success Manager", csm),
    ]

    def mapped(arr: float, gs_csm: Person | None) -> list[str]:
        inp = account(segment_raw="SMB", arr=arr, team_rows=rows, company=company(csm=gs_csm))
        return map_account(inp, mapping).flags

    assert "OVERSTAFFED" in mapped(10_000.0, csm)
    assert "OVERSTAFFED" not in mapped(90_000.0, csm)
    # Without the CSM in Gainsight the CSM row goes too: no longer overstaffed once applied.
    assert "OVERSTAFFED" not in mapped(10_000.0, None)
    # The SAE row is managed and not desired for an SMB account: it will be removed.
    m = map_account(account(segment_raw="SMB", arr=10_000.0, team_rows=rows), mapping)
    assert sae.sf_user_id not in m.desired_rows


def test_inactive_row_in_a_managed_role_is_removed_not_flagged(mapping: MappingFile) -> None:
    """An inactive user's managed row is deleted by the plan, so it does not raise a flag."""
    gone = person(8, sf_active=False)
    rows = [TeamRow("01M9", gone.sf_user_id or "", "Account Executive", gone)]
    m = map_account(account(team_rows=rows), mapping)
    assert gone.sf_user_id not in m.desired_rows
    assert "INACTIVE_MEMBER" not in m.flags


def test_gainsight_field_not_written_when_person_has_no_gainsight_user(
    mapping: MappingFile,
) -> None:
    """An owner without a Gainsight user leaves the AE field untouched (with a note)."""
    m = map_account(account(owner=person(1, gs=False)), mapping)
    assert "AccountExecutive__gc" not in m.desired_gs_fields
    assert any("AccountExecutive__gc" in n for n in m.notes)
