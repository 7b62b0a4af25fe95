"""The planner, table-driven: an account's inputs and mapped model in, the smallest set of
operations out (no store, no API).  Accounts come from the rules of mappings/default.toml."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from mappings.rules import AccountInput, TeamRow, map_account
from mappings.schema import MappingFile
from sync.stages.plan import Op, PlanCounts, Planner, safeguard_refusal
from sync.types import Action, OpenCta, System
from tests.mappings.test_rules import TODAY, account, company, person

SAE, CSM, SA = "Strategic Account Executive", "Customer Success Manager", "Solutions Architect"
ACCOUNT_ID = "001000000000001AAA"


def row(n: int, role: str, row_id: str | None = None) -> TeamRow:
    p = person(n)
    assert p.sf_user_id is not None
    return TeamRow(row_id or f"01M{n:015d}", p.sf_user_id, role, p)


def in_sync(mapping: MappingFile, **kw: object) -> AccountInput:
    """An Enterprise customer whose actual state already matches its mapped model."""
    inp = account(**kw)
    mapped = map_account(inp, mapping)
    rows = [
        row(int(user_id[3:15]), team_role)
        for user_id, (_key, team_role) in sorted(mapped.desired_rows.items())
    ]
    inp = replace(inp, team_rows=[*rows, *inp.team_rows])
    mapped = map_account(inp, mapping)
    company_in = inp.company
    assert company_in is not None
    company_in = replace(
        company_in,
        team_fields={**company_in.team_fields, **mapped.desired_gs_fields},
        risk_flags=";".join(sorted(mapped.flags)) or None,
    )
    return replace(
        inp,
        company=company_in,
        health_score_actual=mapped.health_score,
        health_status_actual=mapped.health_band,
        risk_flags_actual=";".join(sorted(mapped.flags)) or None,
    )


def plan(mapping: MappingFile, inp: AccountInput, open_ctas: tuple[OpenCta, ...] = ()) -> list[Op]:
    return Planner(mapping).account_ops(inp, map_account(inp, mapping), open_ctas, TODAY)


def kinds(ops: list[Op]) -> list[tuple[str, str, str, bool]]:
    return sorted((op.system, op.object, op.action, op.destructive) for op in ops)


Change = Callable[[AccountInput], AccountInput]


def drop_row(role: str) -> Change:
    return lambda inp: replace(inp, team_rows=[r for r in inp.team_rows if r.team_role != role])


def retitle_row(role: str, new_role: str) -> Change:
    def change(inp: AccountInput) -> AccountInput:
        rows = [replace(r, team_role=new_role) if r.team_role == role else r for r in inp.team_rows]
        return replace(inp, team_rows=rows)

    return change


def add_row(n: int, role: str) -> Change:
    return lambda inp: replace(inp, team_rows=[*inp.team_rows, row(n, role)])


def actual(**fields: object) -> Change:
    return lambda inp: replace(inp, **fields)  # type: ignore[arg-type]


def company_fields(**fields: object) -> Change:
    def change(inp: AccountInput) -> AccountInput:
        assert inp.company is not None
        return replace(inp, company=replace(inp.company, **fields))  # type: ignore[arg-type]

    return change


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(lambda inp: inp, [], id="in-sync: nothing"),
        pytest.param(
            drop_row(SAE),
            [(System.SALESFORCE, "AccountTeamMember", Action.CREATE, False)],
            id="missing managed row: create",
        ),
        pytest.param(
            retitle_row(CSM, "Renewal Manager"),
            [(System.SALESFORCE, "AccountTeamMember", Action.UPDATE, True)],
            id="managed row in the wrong managed role: update, destructive",
        ),
        pytest.param(
            add_row(9, "Account Executive"),
            [(System.SALESFORCE, "AccountTeamMember", Action.DELETE, True)],
            id="managed row of someone not desired: delete, destructive",
        ),
        pytest.param(
            actual(health_score_actual=12.0),
            [(System.SALESFORCE, "Account", Action.UPDATE, False)],
            id="health score differs: account update",
        ),
        pytest.param(
            actual(risk_flags_actual="NO_CSM"),
            [(System.SALESFORCE, "Account", Action.UPDATE, False)],
            id="risk flags differ: account update",
        ),
        pytest.param(
            company_fields(team_fields={"AccountExecutive__gc": "1P01SOMEONEELSE"}),
            [(System.GAINSIGHT, "Company", Action.UPDATE, True)],
            id="company team field reassigned: destructive",
        ),
        pytest.param(
            company_fields(team_fields={}),
            [(System.GAINSIGHT, "Company", Action.UPDATE, False)],
            id="empty company team field filled: not destructive",
        ),
    ],
)
def test_account_ops(mapping: MappingFile, change: Change, expected: list[tuple]) -> None:
    """Each difference between actual and desired state is one operation of the right kind;
    only what takes away an existing managed assignment is destructive."""
    ops = plan(mapping, change(in_sync(mapping)))
    assert kinds(ops) == sorted(expected)
    assert all(op.account_id == ACCOUNT_ID for op in ops)
    assert all(op.reason for op in ops)


@pytest.mark.parametrize("role", [SA, "Executive Sponsor", "Some Custom Role"])
def test_unmanaged_rows_are_never_touched(mapping: MappingFile, role: str) -> None:
    """A row in a role teamsync does not manage is never updated or deleted, whoever holds
    it (here someone the mapping does not want on the team)."""
    inp = add_row(8, role)(in_sync(mapping))
    team_ops = [op for op in plan(mapping, inp) if op.object == "AccountTeamMember"]
    assert team_ops == []


def test_red_customer_gets_one_risk_cta(mapping: MappingFile) -> None:
    """An active flag with a CTA type and no open CTA opens one, owned by the CSM; an open
    linked CTA for the flag means nothing to do."""
    red = in_sync(mapping, company=company(score=20, csm=person(3)))
    ops = [op for op in plan(mapping, red) if op.object == "CallToAction"]
    assert [(op.action, op.previous) for op in ops] == [(Action.CREATE, {"flag": "RED_HEALTH"})]
    assert ops[0].payload["OwnerId"] == person(3).gs_user_id
    assert ops[0].payload["DueDate"] > TODAY.isoformat()
    linked = (OpenCta("CTA1", "RED_HEALTH", "opened"),)
    assert [op for op in plan(mapping, red, linked) if op.object == "CallToAction"] == []


@pytest.mark.parametrize("origin", ["opened", "adopted"])
def test_cleared_flag_closes_its_cta(mapping: MappingFile, origin: str) -> None:
    """A CTA linked to a flag that cleared is closed (adopted ones too: close_adopted)."""
    green = in_sync(mapping)
    ops = plan(mapping, green, (OpenCta("CTA9", "RED_HEALTH", origin),))
    closes = [op for op in ops if op.object == "CallToAction"]
    assert [(op.action, op.target_id) for op in closes] == [(Action.CLOSE, "CTA9")]


@pytest.mark.parametrize(
    ("taken", "known", "refused"),
    [
        (24, 100, False),  # below the minimum count
        (25, 250, False),  # 10 % exactly: not above
        (26, 250, True),
        (25, 100, True),
        (0, 0, False),
    ],
)
def test_safeguard_thresholds(taken: int, known: int, refused: bool) -> None:
    """Refused when what is taken away is above 10 % of what is known and at least 25."""
    counts = PlanCounts()
    counts.destructive[System.SALESFORCE] = taken
    counts.managed_known[System.SALESFORCE] = known
    reasons = safeguard_refusal(counts, 10.0, 25)
    assert bool(reasons) is refused
    if refused:
        assert reasons[0].startswith("salesforce:")


def test_counts_by_kind() -> None:
    """PlanCounts adds operations up by kind and destructive ones by system."""
    counts = PlanCounts()
    op = Op(System.SALESFORCE, "AccountTeamMember", Action.DELETE, "X", "A", {}, "r")
    counts.add([op, replace(op, destructive=True), replace(op, action=Action.CREATE)])
    assert counts.by_kind == {
        "salesforce.AccountTeamMember.delete": 2,
        "salesforce.AccountTeamMember.create": 1,
    }
    assert counts.destructive[System.SALESFORCE] == 1
    assert counts.total == 3
