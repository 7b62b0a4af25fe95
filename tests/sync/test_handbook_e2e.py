"""Issue 11 end to end: the engine against both emulators (60-account synthetic org), on
SQLite and PostgreSQL, with the emulators' clock as the engine's so that days can pass.

- risk.lifecycles: no red alert and no Risk CTA for a prospect; its flag is written;
- the handoff (handoff.*, gainsight.cta.flags.HANDOFF_DUE): a Handoff CTA with the checklist,
  closed by the SA in Gainsight -> done (flag cleared, no new CTA), escalated to the CSM's
  manager (User.ManagerId) when still open after handoff.escalate_after_days;
- coverage.CSM: one alert to the role's manager per transition;
- triage: one digest per CSM per week;
- HEALTH_DROP from teamsync's own dated history (a score seen again inside the window).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from emulators.runner import RunningEmulators
from mappings.schema import load_mapping
from sync.engine import Engine, RunOptions, RunResult
from sync.stages.preflight import OK, preflight_from_settings
from sync.store import Store
from sync.store.models import Account, AlertOutbox, CtaLink
from tests.sync.conftest import make_settings

DAY_MS = 24 * 3600 * 1000
RunFn = Callable[..., RunResult]


@pytest.fixture
def run(upstream: RunningEmulators, store: Store, database_url: str) -> RunFn:
    settings = make_settings(upstream, database_url)

    def clock() -> datetime:
        return datetime.fromtimestamp(upstream.clock.now_ms() / 1000, tz=UTC)

    def go(**options: Any) -> RunResult:
        options.setdefault("allow_mass_change", True)
        result = Engine.from_settings(settings, store=store, clock=clock).run(RunOptions(**options))
        assert result.exit_code == 0, result.stats
        return result

    return go


def sc(upstream: RunningEmulators, key: str) -> Any:
    return upstream.org.scenarios[key]  # type: ignore[union-attr]


def flags(upstream: RunningEmulators, account_id: str) -> set[str]:
    value = (upstream.salesforce.get("Account", account_id) or {}).get("Risk_Flags__c")
    return set(value.split(";")) if value else set()


def ctas(
    upstream: RunningEmulators, company_gsid: str, *, open_only: bool = True
) -> list[dict[str, Any]]:
    table = upstream.gainsight.tables["calltoaction"]
    out = []
    for gsid in table.find("CompanyId", company_gsid):
        row = table.get(gsid)
        if row is None or (open_only and row["IsClosed"]):
            continue
        row["type"] = upstream.gainsight.picklists.name(row["TypeId"])
        row["reason"] = upstream.gainsight.picklists.name(row["ReasonId"])
        out.append(row)
    return out


def alerts(store: Store, kind: str | None = None) -> list[AlertOutbox]:
    with store.session() as s:
        q = select(AlertOutbox).where(AlertOutbox.sink == "log").order_by(AlertOutbox.id)
        if kind:
            q = q.where(AlertOutbox.kind == kind)
        return list(s.scalars(q))


def manager_email(upstream: RunningEmulators, user_id: str) -> str:
    users = upstream.salesforce.tables["User"]
    manager = users.get((users.get(user_id) or {})["ManagerId"]) or {}
    return str(manager["Email"])


def test_prospects_get_no_risk_cta_and_the_handoff_goes_to_the_sa(
    upstream: RunningEmulators, store: Store, run: RunFn, database_url: str
) -> None:
    settings = make_settings(upstream, database_url)
    run()
    with store.session() as s:
        prospects = {
            a.account_id: a
            for a in s.scalars(select(Account).where(Account.lifecycle == "Prospect"))
        }
        links = list(s.scalars(select(CtaLink)))
    red_prospects = [aid for aid, a in prospects.items() if a.health_band == "Red"]
    assert red_prospects
    for aid in red_prospects:
        assert "RED_HEALTH" in flags(upstream, aid)  # risk.lifecycles: the flag stays
    assert not [a for a in alerts(store, "entered_red") if a.account_id in prospects]
    assert not [
        link for link in links if link.account_id in prospects and link.flag != "HANDOFF_DUE"
    ]

    # The handoff: a Lifecycle CTA "Handoff" with the checklist, to the SA (here, without an
    # SA on a Mid-Market account, the account executive consulted by the handoff row).
    ref = sc(upstream, "handoff_due")
    (cta,) = [c for c in ctas(upstream, ref.company_gsid) if c["type"] == "Lifecycle"]
    assert (cta["reason"], cta["Name"]) == ("Sales to CS Handoff", f"Handoff: {ref.name}")
    assert cta["OwnerId"] == ref.gs_users["owner"]
    checklist = load_mapping(settings.mapping).handoff.checklist  # type: ignore[union-attr]
    assert cta["Comments"].splitlines()[0] == f"1. {checklist[0]}"
    assert "HANDOFF_DUE" in flags(upstream, ref.account_id)
    # Handoff CTAs on prospects too: the technical win comes before the sale.
    assert any(k.flag == "HANDOFF_DUE" and k.account_id in prospects for k in links)

    # Preflight checks the Handoff CTA's own type and reason in the tenant's Cockpit.
    report = preflight_from_settings(settings, load_mapping(settings.mapping), full=True)
    status = {c.key: c.status for c in report.checks}
    assert status["gainsight.cockpit.flags.HANDOFF_DUE.type"] == OK
    assert status["gainsight.cockpit.flags.HANDOFF_DUE.reason"] == OK

    # The SA closes it in Gainsight: the handoff is done; no new CTA, the flag clears.
    upstream.gainsight.update("calltoaction", cta["Gsid"], {"status": "Closed Success"})
    second = run()
    assert second.stats.handoff_ctas["closed_in_gainsight"] == 1
    assert "HANDOFF_DUE" not in flags(upstream, ref.account_id)
    assert not [c for c in ctas(upstream, ref.company_gsid) if c["type"] == "Lifecycle"]
    assert run().stats.plan == {}


def test_coverage_triage_escalation_and_dated_health_drop_over_weeks(
    upstream: RunningEmulators, store: Store, run: RunFn
) -> None:
    # The handoff account gets a CSM in Gainsight: its escalation goes to the CSM's manager.
    handoff = sc(upstream, "handoff_due")
    csm = sc(upstream, "score_76")
    upstream.gainsight.update("company", handoff.company_gsid, {"Csm": csm.gs_users["csm"]})
    run()

    # coverage.CSM: the qualifying customer without CSM alerts its role's manager, once.
    overdue = sc(upstream, "arr_50000")
    owner = upstream.salesforce.get("Account", overdue.account_id)["OwnerId"]
    (cov,) = [a for a in alerts(store, "coverage_overdue") if a.account_id == overdue.account_id]
    assert cov.payload["team"]["dri"]["email"] == manager_email(upstream, owner)
    assert "OVERDUE_CSM" in flags(upstream, overdue.account_id)
    # triage: one digest per CSM, listing their Yellow customers.
    digests = alerts(store, "triage_digest")
    assert digests
    listed = {x["id"] for d in digests for x in d.payload["accounts"]}
    assert sc(upstream, "score_51").account_id in listed
    assert sc(upstream, "score_76").account_id not in listed
    assert len({d.idempotency_key for d in digests}) == len(digests)
    before = len(alerts(store))

    run()  # nothing new the same day
    assert len(alerts(store)) == before

    # Two weeks later: the open Handoff CTA is escalated to the CSM's manager; new digests.
    upstream.clock.advance(14 * DAY_MS + 3600 * 1000)
    run()
    escalations = alerts(store, "handoff_overdue")
    (esc,) = [a for a in escalations if a.account_id == handoff.account_id]
    assert esc.payload["escalation"]["to"]["email"] == manager_email(upstream, csm.users["csm"])
    assert len(alerts(store, "triage_digest")) > len(digests)
    assert len(alerts(store, "coverage_overdue")) == 1 + sum(
        1 for a in alerts(store, "coverage_overdue") if a.account_id != overdue.account_id
    )

    # HEALTH_DROP: 76 seen again 40 days after it was first seen, then 60: a dated drop.
    upstream.clock.advance(26 * DAY_MS)
    run()
    upstream.gainsight.update("company", csm.company_gsid, {"CurrentScore": 60})
    run()
    assert "HEALTH_DROP" in flags(upstream, csm.account_id)


def test_open_handoff_ctas_are_read_back_in_one_call_and_all_once_a_day(
    upstream: RunningEmulators, store: Store, run: RunFn
) -> None:
    """Between daily read-alls a run asks only for CTAs closed since its last check (less the
    Gainsight lookback): one call however many Handoff CTAs are open, and a closed one is still
    found.  A CTA deleted in Gainsight is noticed by the next read-all (a day later)."""
    first = run()
    assert first.stats.handoff_ctas == {"open": 0, "closed_in_gainsight": 0, "read_all": 1}
    with store.session() as s:
        open_links = list(
            s.scalars(
                select(CtaLink).where(CtaLink.flag == "HANDOFF_DUE", CtaLink.status == "open")
            )
        )
    assert len(open_links) >= 2
    closed_one, deleted_one = open_links[0], open_links[1]
    upstream.gainsight.update("calltoaction", closed_one.cta_gsid, {"status": "Closed Success"})
    upstream.gainsight._tenant.delete("calltoaction", deleted_one.cta_gsid)

    upstream.log.reset()
    second = run()
    assert second.stats.handoff_ctas == {
        "open": len(open_links) - 1,
        "closed_in_gainsight": 1,
        "read_all": 0,
    }
    assert upstream.log.count(api="gainsight", operation="cta.list") == 1

    upstream.clock.advance(DAY_MS + 60_000)
    third = run()
    assert third.stats.handoff_ctas is not None
    assert third.stats.handoff_ctas["read_all"] == 1
    assert third.stats.handoff_ctas["closed_in_gainsight"] >= 1  # the deleted one
    with store.session() as s:
        statuses = {
            link.cta_gsid: link.status
            for link in s.scalars(select(CtaLink).where(CtaLink.flag == "HANDOFF_DUE"))
        }
    assert statuses[closed_one.cta_gsid] == "closed"
    assert statuses[deleted_one.cta_gsid] == "closed"
