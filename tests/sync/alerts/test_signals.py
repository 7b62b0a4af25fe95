"""The signals of issue 11 in the outbox: red alerts only for risk.lifecycles, one coverage
alert per OVERDUE_<ROLE> transition to the role's manager, the handoff escalation to the CSM's
manager, and the periodic triage digest per CSM (each test names its mapping key)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mappings.rules import Person
from mappings.schema import MappingFile, load_mapping
from sync.alerts import slack_message, triage_period
from sync.store import Store
from sync.store.models import Account, CtaLink
from tests.sync.alerts.test_alerts import (
    T0,
    FakeClock,
    FakeSink,
    account,
    block_kit_problems,
    chunk,
    make_alerter,
    outbox,
)

DEFAULT = Path(__file__).resolve().parents[3] / "mappings" / "default.toml"
BOSS = Person(name="Mona Manager", email="mona.manager@example.com", sf_user_id="005BOSS")


@pytest.fixture(scope="module")
def mapping() -> MappingFile:
    return load_mapping(DEFAULT)


def test_red_prospect_gets_no_alert_until_it_is_a_customer(
    store: Store, mapping: MappingFile
) -> None:
    """risk.lifecycles = ["Customer"]: a Red prospect is not alerted; when it becomes a customer
    while still Red, that is when it enters the alertable set."""
    clock = FakeClock()
    alerter = make_alerter(store, mapping, [FakeSink()], clock)
    prospect = account(lifecycle="Prospect", is_customer=False)
    for _ in range(3):
        alerter.observe(chunk(prospect), "run")
        clock.advance(days=8)
    assert outbox(store) == []
    alerter.observe(chunk(account()), "run")
    assert [r.kind for r in outbox(store)] == ["entered_red"]


def test_coverage_alert_once_per_transition_to_the_roles_manager(
    store: Store, mapping: MappingFile
) -> None:
    """coverage.CSM + alerts.coverage_activity: OVERDUE_CSM alerts the CSM's manager once;
    staying overdue sends nothing more; assigned, then overdue again: a second alert."""
    clock = FakeClock()
    alerter = make_alerter(store, mapping, [FakeSink()], clock)
    green = {"health_score": 90.0, "health_band": "Green", "flags": []}
    overdue = account(
        **green,
        missing_roles=["CSM"],
        overdue_roles=["CSM"],
        deadlines={"CSM": date(2026, 2, 1)},
        managers={"CSM": BOSS},
    )
    overdue = replace(overdue, flags=["OVERDUE_CSM"])
    for _ in range(3):
        alerter.observe(chunk(overdue), "run")
        clock.advance(days=1)
    (row,) = outbox(store)
    assert row.kind == "coverage_overdue"
    p = row.payload
    assert p["signal"] == "coverage"
    assert p["title"] == "Acme Corp: no Customer Success Manager assigned, due by 2026-02-01"
    assert p["team"]["activity"] == "Account Team Coverage"
    assert (p["team"]["dri"]["role"], p["team"]["dri"]["email"]) == (
        "MANAGER",
        "mona.manager@example.com",
    )
    assert [x["role"] for x in p["team"]["informed"]] == ["AE"]
    assert p["missing"] == ["no Customer Success Manager assigned"]
    assert block_kit_problems(slack_message(p)) == []
    alerter.observe(chunk(account(**green)), "run")  # a CSM is assigned
    alerter.observe(chunk(overdue), "run")  # and gone again
    assert [r.kind for r in outbox(store)] == ["coverage_overdue", "coverage_overdue"]


def test_open_handoff_escalates_to_the_csms_manager_once(
    store: Store, mapping: MappingFile
) -> None:
    """handoff.escalate_after_days = 14, handoff.escalate_to_manager_of = "CSM": a Handoff CTA
    still open 14 days after it was opened is escalated once; a closed one never."""
    clock = FakeClock()
    alerter = make_alerter(store, mapping, [FakeSink()], clock)
    acc = account(
        health_score=90.0, health_band="Green", flags=["HANDOFF_DUE"], managers={"CSM": BOSS}
    )
    with store.session() as s:
        for gsid, status in (("1S01OPEN", "open"), ("1S01DONE", "closed")):
            s.add(
                CtaLink(
                    cta_gsid=gsid,
                    account_id=acc.account_id,
                    company_gsid="1P02ACME",
                    flag="HANDOFF_DUE",
                    subject_id="006NEW",
                    origin="opened",
                    status=status,
                    opened_at=T0,
                )
            )
    clock.advance(days=13, hours=23)
    alerter.observe(chunk(acc), "run")
    assert outbox(store) == []
    clock.advance(hours=1)
    alerter.observe(chunk(acc), "run")
    alerter.observe(chunk(acc), "run")
    (row,) = outbox(store)
    assert row.idempotency_key == f"{acc.account_id}:handoff_overdue:1S01OPEN"
    p = row.payload
    assert p["title"] == "Acme Corp: handoff still open 14 days after it was opened"
    assert p["escalation"]["to"]["email"] == "mona.manager@example.com"
    assert p["team"]["activity"] == "Sales to Customer Success (CS) Handoff"
    assert p["team"]["dri"]["role"] == "SA"
    assert block_kit_problems(slack_message(p)) == []
    assert "Escalated to" in str(slack_message(p))


def _stored(store: Store, rows: list[dict[str, Any]]) -> None:
    with store.session() as s:
        for r in rows:
            s.add(Account(**r))


def _acc(n: int, band: str, csm: str | None, lifecycle: str = "Customer") -> dict[str, Any]:
    team = {}
    if csm:
        team["CSM"] = {"name": csm.title(), "email": f"{csm}@example.com", "inactive": False}
    return {
        "account_id": f"001{n:015d}",
        "name": f"Account {n}",
        "segment": "Mid-Market",
        "segment_source": "field",
        "lifecycle": lifecycle,
        "is_customer": lifecycle == "Customer",
        "arr": 100_000.0,
        "qualifying": True,
        "in_renewal_window": False,
        "health_score": 60.0 if band == "Yellow" else 90.0,
        "health_band": band,
        "team": team,
        "missing_roles": [],
        "inactive_members": [],
        "flags": ["YELLOW_HEALTH"] if band == "Yellow" else [],
        "notes": [],
        "deleted": False,
        "mapped_at": T0,
    }


def test_triage_digest_per_csm_once_a_week(store: Store, mapping: MappingFile) -> None:
    """triage.bands / every_days / weekday: one digest per CSM of their Yellow customers, once
    per weekly period (Mondays); prospects and Green accounts are not listed."""
    _stored(
        store,
        [
            _acc(1, "Yellow", "cass"),
            _acc(2, "Yellow", "cass"),
            _acc(3, "Yellow", "dora"),
            _acc(4, "Yellow", None),
            _acc(5, "Green", "cass"),
            _acc(6, "Yellow", "cass", lifecycle="Prospect"),
        ],
    )
    clock = FakeClock(datetime(2026, 3, 4, 9, tzinfo=T0.tzinfo))  # a Wednesday
    alerter = make_alerter(store, mapping, [FakeSink()], clock)
    assert alerter.record_triage("run") == 3
    rows = {r.idempotency_key: r.payload for r in outbox(store)}
    assert set(rows) == {
        "triage:cass@example.com:2026-03-02",
        "triage:dora@example.com:2026-03-02",
        "triage:unassigned:2026-03-02",
    }
    cass = rows["triage:cass@example.com:2026-03-02"]
    assert cass["kind"] == "triage_digest"
    assert cass["title"] == "Health triage: 2 Yellow customers for Cass"
    assert [a["id"] for a in cass["accounts"]] == ["001000000000000001", "001000000000000002"]
    assert cass["recipient"]["role"] == "CSM"
    assert block_kit_problems(slack_message(cass)) == []
    nobody = rows["triage:unassigned:2026-03-02"]
    assert nobody["title"] == "Health triage: 1 Yellow customer without a Customer Success Manager"
    clock.advance(days=4)  # Sunday: same period
    assert alerter.record_triage("run") == 0
    clock.advance(days=1)  # Monday: the next one
    assert alerter.record_triage("run") == 3
    assert len(outbox(store)) == 6


@pytest.mark.parametrize(
    ("today", "every", "weekday", "start"),
    [
        (date(2026, 3, 2), 7, "Monday", date(2026, 3, 2)),
        (date(2026, 3, 8), 7, "Monday", date(2026, 3, 2)),
        (date(2026, 3, 9), 7, "Monday", date(2026, 3, 9)),
        (date(2026, 3, 4), 7, "Friday", date(2026, 2, 27)),
        (date(2026, 3, 4), 14, "Monday", date(2026, 2, 23)),
        (date(2026, 3, 4), 1, "Monday", date(2026, 3, 4)),
    ],
)
def test_triage_period(today: date, every: int, weekday: str, start: date) -> None:
    """triage.every_days / triage.weekday: the period a day falls in starts on that weekday."""
    assert triage_period(today, every, weekday) == start
    assert triage_period(today + timedelta(days=0), every, weekday) <= today


def test_triage_off_when_no_bands(store: Store, mapping: MappingFile) -> None:
    """triage.bands = []: no digest."""
    _stored(store, [_acc(1, "Yellow", "cass")])
    custom = mapping.model_copy(update={"triage": mapping.triage.model_copy(update={"bands": []})})
    alerter = make_alerter(store, custom, [FakeSink()], FakeClock())
    assert alerter.record_triage("run") == 0
    with store.session() as s:
        assert list(s.scalars(select(Account.account_id))) == ["001000000000000001"]
