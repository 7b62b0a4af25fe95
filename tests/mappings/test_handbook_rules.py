"""The rules of issue 11 ("closer to the handbook"), one behaviour per test, each naming the
mapping key it exercises (mappings/default.toml cites the handbook section behind each)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from config.errors import ConfigurationError
from mappings.rules import (
    AccountInput,
    CompanyInput,
    Opportunity,
    Person,
    TeamRow,
    handoff_of,
    manager_of,
    map_account,
    trend_of,
)
from mappings.schema import MappingFile, load_mapping
from sync.stages.plan import CTA, OpenCta, Planner, cta_owner

TODAY = date(2026, 11, 23)
DEFAULT = Path(__file__).resolve().parents[2] / "mappings" / "default.toml"


@pytest.fixture(scope="module")
def mapping() -> MappingFile:
    return load_mapping(DEFAULT)


def person(n: int, *, active: bool = True, manager: Person | None = None) -> Person:
    return Person(
        name=f"Person {n}",
        email=f"p{n}@example.com",
        sf_user_id=f"005{n:012d}AAA",
        sf_active=active,
        gs_user_id=f"1P01{n:032d}",
        gs_active=active,
        manager=manager,
    )


BOSS = person(90)  # a manager


def opp(
    stage: str,
    *,
    days: int = 30,
    type_: str = "New Business",
    amount: float | None = 80_000.0,
    opp_id: str = "006A",
) -> Opportunity:
    won = stage == "Closed Won"
    closed = won or stage == "Closed Lost"
    return Opportunity(
        opp_id, type_, closed, won, TODAY + timedelta(days=days), None, stage=stage, amount=amount
    )


def won(days_ago: int) -> Opportunity:
    return opp("Closed Won", days=-days_ago, opp_id=f"006W{days_ago}")


def company(score: float | None = 85, csm: Person | None = None, **kw: Any) -> CompanyInput:
    values: dict[str, Any] = {
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
    return CompanyInput(**values)


def account(**kw: Any) -> AccountInput:
    values: dict[str, Any] = {
        "id": "001000000000001AAA",
        "name": "Acme",
        "owner": person(1, manager=BOSS),
        "segment_raw": "Mid-Market",
        "employees": 500,
        "arr": 100_000.0,
        "opportunities": [won(400)],
        "team_rows": [],
        "company": company(csm=person(3)),
        "score_history": [],
        "today": TODAY,
    }
    values.update(kw)
    return AccountInput(**values)


def with_(mapping: MappingFile, **sections: Any) -> MappingFile:
    """A copy of the mapping with some sections' fields replaced: with_(m, risk={...})."""
    update = {
        name: getattr(mapping, name).model_copy(update=fields) for name, fields in sections.items()
    }
    return mapping.model_copy(update=update)


# --- risk for customers: risk.lifecycles -------------------------------------------------------
def test_red_prospect_keeps_its_flag_but_gets_no_risk_cta(mapping: MappingFile) -> None:
    """risk.lifecycles = ["Customer"]: a Red prospect is flagged RED_HEALTH in both systems but
    no Risk CTA is opened; a Red customer gets one; listing Prospect opens one for it too."""
    planner = Planner(mapping)
    prospect = account(opportunities=[], company=company(score=30, csm=person(3)))
    m = map_account(prospect, mapping)
    assert m.lifecycle == "Prospect"
    assert "RED_HEALTH" in m.flags
    ops = planner.account_ops(prospect, m)
    assert not [op for op in ops if op.object == CTA]
    assert any("RED_HEALTH" in str(op.payload) for op in ops)  # the flag is written

    customer = account(company=company(score=30, csm=person(3)))
    cm = map_account(customer, mapping)
    ctas = [op for op in planner.account_ops(customer, cm) if op.object == CTA]
    assert [(op.payload["type"], op.payload["reason"]) for op in ctas] == [("Risk", "Red Health")]

    both = with_(mapping, risk={"lifecycles": ["Prospect", "Customer"]})
    ctas = [op for op in Planner(both).account_ops(prospect, m) if op.object == CTA]
    assert [op.payload["reason"] for op in ctas] == ["Red Health"]


def test_prospect_risk_cta_already_open_is_left_alone(mapping: MappingFile) -> None:
    """risk.lifecycles: an open Risk CTA on a prospect whose flag is still on is neither
    duplicated nor closed; it closes when the flag clears."""
    planner = Planner(mapping)
    open_cta = [OpenCta("1S01X", "RED_HEALTH", "adopted")]
    red = account(opportunities=[], company=company(score=30))
    assert not [
        op
        for op in planner.account_ops(red, map_account(red, mapping), open_cta)
        if op.object == CTA
    ]
    green = account(opportunities=[], company=company(score=90))
    ops = planner.account_ops(green, map_account(green, mapping), open_cta)
    assert [(op.action, op.target_id) for op in ops if op.object == CTA] == [("close", "1S01X")]


def test_unknown_lifecycle_in_risk_lifecycles_is_refused(tmp_path: Path) -> None:
    """risk.lifecycles only takes the mapping's lifecycle names."""
    text = DEFAULT.read_text(encoding="utf-8").replace(
        'lifecycles = ["Customer"]', 'lifecycles = ["Churned"]'
    )
    path = tmp_path / "m.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError) as info:
        load_mapping(path)
    assert "unknown lifecycle 'Churned'" in "\n".join(info.value.problems)


# --- one meaning per flag: flags.enabled, required_roles ---------------------------------------
def test_no_csm_is_merged_into_missing_and_overdue_csm(tmp_path: Path) -> None:
    """flags.enabled: NO_CSM is gone (merged into MISSING_/OVERDUE_CSM); enabling it is a clear
    configuration error."""
    text = DEFAULT.read_text(encoding="utf-8").replace(
        '"HANDOFF_DUE",\n', '"HANDOFF_DUE", "NO_CSM",\n'
    )
    path = tmp_path / "m.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError) as info:
        load_mapping(path)
    assert "NO_CSM was merged into MISSING_<ROLE> / OVERDUE_<ROLE>" in "\n".join(
        info.value.problems
    )


@pytest.mark.parametrize(
    ("segment", "arr", "customer", "expected"),
    [
        ("SMB", 900_000.0, True, set()),  # SMB requires no CSM, however large
        ("Mid-Market", 40_000.0, True, set()),  # not qualifying
        ("Mid-Market", 90_000.0, False, set()),  # qualifying, but a prospect
        ("Mid-Market", 90_000.0, True, {"OVERDUE_CSM"}),
        ("Enterprise", 90_000.0, True, {"OVERDUE_CSM", "MISSING_SA"}),
    ],
)
def test_csm_flags_follow_the_segment_and_qualifying_customer(
    mapping: MappingFile, segment: str, arr: float, customer: bool, expected: set[str]
) -> None:
    """required_roles + required_roles.conditions.CSM = "qualifying_customer": the CSM is only
    ever flagged where the segment requires one and the account is a qualifying customer."""
    inp = account(
        segment_raw=segment,
        arr=arr,
        opportunities=[won(400)] if customer else [],
        company=company(csm=None),
    )
    m = map_account(inp, mapping)
    assert {f for f in m.flags if f.startswith(("MISSING_", "OVERDUE_"))} == expected


# --- HEALTH_DROP and Trend ---------------------------------------------------------------------
def test_health_drop_from_a_score_teamsync_saw_again_inside_the_window(
    mapping: MappingFile,
) -> None:
    """flags.health_drop_days: 80 first seen 60 days ago and seen again 5 days ago is a dated
    baseline; the same 80 not seen since day 60 is not."""
    first = datetime.combine(TODAY - timedelta(days=60), datetime.min.time(), tzinfo=UTC)
    again = datetime.combine(TODAY - timedelta(days=5), datetime.min.time(), tzinfo=UTC)
    seen_again = account(company=company(score=60), score_history=[(first, 80.0), (again, 80.0)])
    assert "HEALTH_DROP" in map_account(seen_again, mapping).flags
    stale = account(company=company(score=60), score_history=[(first, 80.0)])
    assert "HEALTH_DROP" not in map_account(stale, mapping).flags


def test_health_drop_from_gainsight_previous_score_needs_its_date(mapping: MappingFile) -> None:
    """gainsight.previous_score_date_field: PreviousScore 80 -> 60 is a drop only when its date
    is inside flags.health_drop_days."""
    undated = account(company=company(score=60, previous_score=80))
    assert "HEALTH_DROP" not in map_account(undated, mapping).flags
    recent = account(
        company=company(score=60, previous_score=80, previous_score_date=TODAY - timedelta(days=12))
    )
    assert "HEALTH_DROP" in map_account(recent, mapping).flags


def test_trend_falls_back_to_gainsight_when_history_shows_no_change() -> None:
    """Trend: teamsync's history decides when it shows a change, else Gainsight's Trend."""
    t = datetime(2026, 11, 1, tzinfo=UTC)
    assert trend_of(60, [(t, 60.0)], "Down") == "Down"
    assert trend_of(60, [], "Up") == "Up"
    assert trend_of(60, [(t, 70.0), (t, 60.0)], "Up") == "Down"
    assert trend_of(None, [(t, 70.0)], "Down") == "Down"


# --- Yellow triage: triage.bands, flags.enabled YELLOW_HEALTH --------------------------------
@pytest.mark.parametrize(("score", "flag"), [(50, False), (51, True), (75, True), (76, False)])
def test_yellow_health_flag(mapping: MappingFile, score: float, flag: bool) -> None:
    """YELLOW_HEALTH follows the Yellow band (health.yellow) exactly; prospects keep it too."""
    assert ("YELLOW_HEALTH" in map_account(account(company=company(score)), mapping).flags) is flag
    prospect = account(opportunities=[], company=company(score))
    assert ("YELLOW_HEALTH" in map_account(prospect, mapping).flags) is flag


def test_optional_yellow_triage_cta_of_the_configured_type(mapping: MappingFile) -> None:
    """gainsight.cta.flags.YELLOW_HEALTH (optional, off by default): a Cockpit CTA of the
    configured type and reason for Yellow customers, none for Yellow prospects."""
    inp = account(company=company(score=60, csm=person(3)))
    m = map_account(inp, mapping)
    assert not [op for op in Planner(mapping).account_ops(inp, m) if op.object == CTA]
    cfg = {"type": "Lifecycle", "reason": "Health Triage", "name": "Triage: {account}"}
    flags = dict(mapping.gainsight.cta.flags)
    flags["YELLOW_HEALTH"] = type(flags["RED_HEALTH"]).model_validate(cfg)
    custom = mapping.model_copy(
        update={
            "gainsight": mapping.gainsight.model_copy(
                update={"cta": mapping.gainsight.cta.model_copy(update={"flags": flags})}
            )
        }
    )
    (op,) = [op for op in Planner(custom).account_ops(inp, m) if op.object == CTA]
    assert (op.payload["type"], op.payload["reason"], op.payload["Name"]) == (
        "Lifecycle",
        "Health Triage",
        "Triage: Acme",
    )
    assert op.payload["OwnerId"] == person(3).gs_user_id  # the CSM: DRI of the risk row
    prospect = account(opportunities=[], company=company(score=60, csm=person(3)))
    pm = map_account(prospect, custom)
    assert not [op for op in Planner(custom).account_ops(prospect, pm) if op.object == CTA]


# --- the handoff at the technical win: [handoff] -------------------------------------------------
@pytest.mark.parametrize(
    ("o", "due"),
    [
        (opp("Perception Analysis"), False),  # still evaluating
        (opp("Proposal/Price Quote"), True),  # handoff.stage: the technical win
        (opp("Negotiation/Review"), True),  # past it
        (won(10), True),  # won 10 days ago
        (won(91), False),  # won beyond handoff.window_days (90)
        (opp("Closed Lost", days=-5), False),
        (opp("Negotiation/Review", type_="Renewal"), False),  # handoff.opportunity_types
        (opp("Negotiation/Review", amount=20_000.0), False),  # not qualifying by amount either
        (opp("Bogus Stage"), False),
    ],
)
def test_handoff_triggers_at_the_technical_win_stage(
    mapping: MappingFile, o: Opportunity, due: bool
) -> None:
    """handoff.stage / sales_process / opportunity_types / window_days / qualifying_only: a
    prospect (ARR unknown) hands off when a New Business opportunity reaches the technical win
    and its amount makes the account CSM-qualifying."""
    h = handoff_of([o], "Mid-Market", None, TODAY, frozenset(), mapping)
    assert (h is not None) is due
    if h is not None:
        assert h.opportunity_id == o.id


def test_handoff_stage_is_configurable_and_done_once_closed(mapping: MappingFile) -> None:
    """handoff.stage: another org's technical-win stage; a handoff whose CTA was closed is done."""
    early = with_(mapping, handoff={"stage": "Needs Analysis"})
    o = opp("Needs Analysis")
    assert handoff_of([o], "SMB", None, TODAY, frozenset(), mapping) is None
    assert handoff_of([o], "SMB", None, TODAY, frozenset(), early) is not None
    assert handoff_of([o], "SMB", None, TODAY, frozenset({o.id}), early) is None


def test_handoff_cta_goes_to_the_sa_with_the_checklist(mapping: MappingFile) -> None:
    """gainsight.cta.flags.HANDOFF_DUE (signal = "handoff") and dci."Sales to Customer Success
    (CS) Handoff": a Lifecycle CTA "Handoff" owned by the SA (the row's DRI), its comments the
    handoff.checklist; without an SA it goes to the account executive (consulted)."""
    sa = person(2)
    rows = [TeamRow("01M1", sa.sf_user_id or "", "Solutions Architect", sa)]
    inp = account(
        opportunities=[opp("Proposal/Price Quote")],
        arr=None,
        team_rows=rows,
        company=company(csm=None),
    )
    m = map_account(inp, mapping)
    assert m.lifecycle == "Prospect"
    assert m.flags == ["HANDOFF_DUE"]
    (op,) = [op for op in Planner(mapping).account_ops(inp, m) if op.object == CTA]
    p = op.payload
    assert (p["type"], p["reason"], p["Name"]) == (
        "Lifecycle",
        "Sales to CS Handoff",
        "Handoff: Acme",
    )
    assert p["OwnerId"] == sa.gs_user_id
    assert p["DueDate"] == (TODAY + timedelta(days=14)).isoformat()
    assert p["Comments"].splitlines() == [
        f"{i}. {task}"
        for i, task in enumerate(mapping.handoff.checklist, 1)  # type: ignore[union-attr]
    ]
    assert op.previous == {"flag": "HANDOFF_DUE", "subject": "006A"}
    no_sa = account(opportunities=[opp("Proposal/Price Quote")], arr=None)
    (op2,) = [
        op
        for op in Planner(mapping).account_ops(no_sa, map_account(no_sa, mapping))
        if op.object == CTA
    ]
    assert op2.payload["OwnerId"] == person(1).gs_user_id


# --- coverage deadlines: [coverage], [managers] ------------------------------------------------
@pytest.mark.parametrize(("days_ago", "flag"), [(10, None), (14, None), (15, "OVERDUE_CSM")])
def test_csm_deadline_after_the_first_win(
    mapping: MappingFile, days_ago: int, flag: str | None
) -> None:
    """coverage.CSM = 14 days after first_won: pending (no flag) up to the deadline, then
    OVERDUE_CSM - never MISSING_CSM as well."""
    m = map_account(account(opportunities=[won(days_ago)], company=company(csm=None)), mapping)
    assert m.deadlines == {"CSM": TODAY - timedelta(days=days_ago) + timedelta(days=14)}
    coverage = [f for f in m.flags if f.endswith("_CSM")]
    assert coverage == ([flag] if flag else [])


def test_renewal_window_deadline_for_a_required_rm(mapping: MappingFile) -> None:
    """coverage.<ROLE>.after = "renewal_window": an RM required in the window is due 7 days
    after the window opens."""
    custom = mapping.model_copy(
        update={
            "required_roles": {
                **mapping.required_roles,
                "conditions": {"CSM": "qualifying_customer", "RM": "renewal_window"},
                "Mid-Market": ["AE", "CSM", "RM"],
            },
            "coverage": {
                **mapping.coverage,
                "RM": type(mapping.coverage["CSM"]).model_validate(
                    {"days": 7, "after": "renewal_window"}
                ),
            },
        }
    )
    gone = person(4, active=False)
    renewal = Opportunity("006R", "Renewal", False, False, TODAY + timedelta(days=100), gone)
    m = map_account(account(opportunities=[won(400), renewal]), custom)
    # The window opened 20 days ago (120 - 100): 7 days later it was due.
    assert m.deadlines["RM"] == TODAY - timedelta(days=13)
    assert "OVERDUE_RM" in m.flags


def test_the_roles_manager(mapping: MappingFile) -> None:
    """managers: the holder's User.ManagerId; an empty role falls back to when_unassigned
    ("owner_manager": the account owner's manager) or to a named person (by_role)."""
    csm_boss = person(91)
    held = map_account(account(company=company(csm=person(3, manager=csm_boss))), mapping)
    assert manager_of("CSM", held.team, account(), mapping) == csm_boss
    empty = account(company=company(csm=None))
    assert manager_of("CSM", {}, empty, mapping) == BOSS
    named = person(92)
    custom = with_(mapping, managers={"by_role": {"CSM": ["csm.leads@example.com"]}})
    inp = account(company=company(csm=None), named_people={"csm.leads@example.com": named})
    assert manager_of("CSM", {}, inp, custom) == named
    assert manager_of("CSM", {}, account(owner=person(1)), mapping) is None


def test_overdue_role_names_its_manager(mapping: MappingFile) -> None:
    """coverage + managers: the mapped account carries the overdue role's manager for the
    coverage alert, and the CSM's manager for the handoff escalation."""
    m = map_account(account(company=company(csm=None)), mapping)
    assert m.overdue_roles == ["CSM"]
    assert m.managers == {"CSM": BOSS}


# --- routing per signal: alerts.*_activity, dci -------------------------------------------------
def test_each_signal_routes_by_its_own_dci_row(mapping: MappingFile) -> None:
    """alerts.routing_activity (risk) -> the CSM; alerts.handoff_activity -> the SA;
    alerts.coverage_activity -> MANAGER; editing a row in the mapping moves the owner."""
    sa = person(2)
    rows = [TeamRow("01M1", sa.sf_user_id or "", "Solutions Architect", sa)]
    m = map_account(account(team_rows=rows), mapping)
    assert cta_owner(m, "risk", mapping) == person(3).gs_user_id
    assert cta_owner(m, "handoff", mapping) == sa.gs_user_id
    assert mapping.dci_row("coverage")["MANAGER"] == "D"
    dci = dict(mapping.dci)
    dci["Risk and Escalation Management"] = {"AE": "D", "CSM": "C"}
    moved = mapping.model_copy(update={"dci": dci})
    assert cta_owner(m, "risk", moved) == person(1).gs_user_id


def test_cta_owner_falls_back_to_the_account_owner(mapping: MappingFile) -> None:
    """gainsight.cta.owner_roles: "account_owner" is the Salesforce account owner whatever
    their role (issue 8: the CSM's GsUser, else the account owner's, else a fallback)."""
    dci = dict(mapping.dci)
    dci["Risk and Escalation Management"] = {"CSM": "D"}
    cta = mapping.gainsight.cta.model_copy(update={"owner_roles": ["CSM", "account_owner"]})
    gs = mapping.gainsight.model_copy(update={"cta": cta})
    only_csm = mapping.model_copy(update={"dci": dci, "gainsight": gs})
    owner = person(5)
    m = map_account(account(owner=owner, company=company(csm=None)), only_csm)
    assert cta_owner(m, "risk", only_csm) == owner.gs_user_id
    gone = map_account(account(owner=person(5, active=False), company=company(csm=None)), only_csm)
    assert cta_owner(gone, "risk", only_csm) is None
    none = gs.model_copy(update={"cta": cta.model_copy(update={"owner_roles": ["CSM"]})})
    assert cta_owner(m, "risk", only_csm.model_copy(update={"gainsight": none})) is None


# --- pooled SAs: roles.SA.pooled_segments / write_pooled -----------------------------------------
def test_pooled_sa_is_not_written_to_gainsight_on_mid_market(mapping: MappingFile) -> None:
    """roles.SA.pooled_segments = ["Mid-Market"]: an SA row there is pooled and the Gainsight SA
    field is left as it is; Enterprise writes it; write_pooled = true writes it everywhere."""
    sa = person(2)
    rows = [TeamRow("01M1", sa.sf_user_id or "", "Solutions Architect", sa)]
    mid = map_account(account(team_rows=rows), mapping)
    assert "SA" in mid.team
    assert mid.pooled_roles == ["SA"]
    assert "SolutionsArchitect__gc" not in mid.desired_gs_fields
    ent = map_account(account(team_rows=rows, segment_raw="Enterprise"), mapping)
    assert ent.desired_gs_fields["SolutionsArchitect__gc"] == sa.gs_user_id
    roles = dict(mapping.roles)
    roles["SA"] = roles["SA"].model_copy(update={"write_pooled": True})
    writes = mapping.model_copy(update={"roles": roles})
    assert (
        map_account(account(team_rows=rows), writes).desired_gs_fields["SolutionsArchitect__gc"]
        == sa.gs_user_id
    )


def test_preflight_lists_the_new_flag_values_and_cta_types(mapping: MappingFile) -> None:
    """flags.enabled OVERDUE_<ROLE> + coverage: the Risk_Flags__c picklist must offer
    OVERDUE_CSM (the only role with a deadline) and YELLOW_HEALTH."""
    from sync.stages.preflight import expand_flags

    values = expand_flags(mapping)
    assert {"YELLOW_HEALTH", "OVERDUE_CSM", "HANDOFF_DUE"} <= set(values)
    assert "OVERDUE_SA" not in values
    assert "NO_CSM" not in values
