# ruff: noqa: E501 - one hostile case per line reads as a table
"""Hostile upstreams, end to end: ``teamsync run`` against both emulators answering as an
attacker or a misbehaving vendor would, on SQLite and on PostgreSQL.

Every case asserts the exit code, the write calls the emulators applied (their request log:
none for a fault on a read), the quarantine reason of a poison record, that nothing reached a
redirect target (a plain TCP listener records zero bytes), and that the next clean run
converges with zero writes.  Cases share one converged world per database (see conftest).

A fault on a *write* answer happens after the emulator applied the write (the answer lies), so
it shows one applied write and the next run finds nothing to do; a redirect on a write is
answered before anything is applied, so the next run makes that write (``then``) and the one
after it none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select, update

from emulators.runner import RunningEmulators
from sync.store import Store
from sync.store.models import QuarantinedRecord, RawRecord, Watermark
from tests.conftest import ByteSink
from tests.hostile.conftest import World

SF, GS = "salesforce", "gainsight"
Setup = Callable[[RunningEmulators, dict[str, Any]], None]


@dataclass(frozen=True)
class Case:
    id: str
    api: str  # whose emulator the rules go to
    rules: tuple[dict[str, Any], ...] = ()
    exit: int = 3
    writes: int = 0  # write calls applied during the hostile run
    then: int = 0  # write calls the next clean run makes (then one more run: none)
    full: bool = False
    setup: Setup | None = None  # an upstream change before the hostile run
    cleanup: Setup | None = None  # undone before the clean run
    quarantine: str | None = None  # reason fragment of the poison record's quarantine row
    says: str | None = None  # fragment of the one-line error
    stream: str | None = None  # its watermark must not move
    env: dict[str, str] = field(default_factory=dict)

    @property
    def args(self) -> list[str]:
        return ["run", "--full"] if self.full else ["run"]


# --- upstream changes -----------------------------------------------------------------------
def scenario(upstream: RunningEmulators, key: str) -> Any:
    assert upstream.org is not None
    return upstream.org.scenarios[key]


def bump_score(key: str, to: int) -> Setup:
    """A Gainsight score change: one Account update is pending (Health_Score__c)."""

    def setup(upstream: RunningEmulators, memo: dict[str, Any]) -> None:
        gsid = scenario(upstream, key).company_gsid
        upstream.gainsight.tables["company"].update(
            gsid, {"CurrentScore": upstream.gainsight.stored_score(to)}
        )

    return setup


def pending_account_update(upstream: RunningEmulators, memo: dict[str, Any]) -> None:
    """Health_Score__c is cleared by hand in Salesforce: teamsync writes it back (1 call)."""
    account = scenario(upstream, "score_76").account_id
    memo["account"] = account
    upstream.salesforce.tables["Account"].update(account, {"Health_Score__c": None})


def pending_two_account_updates(upstream: RunningEmulators, memo: dict[str, Any]) -> None:
    for key in ("score_76", "score_75"):
        account = scenario(upstream, key).account_id
        upstream.salesforce.tables["Account"].update(account, {"Health_Score__c": None})


def pending_company_update(upstream: RunningEmulators, memo: dict[str, Any]) -> None:
    """A Company's risk flags cleared by hand: teamsync writes them back (1 call)."""
    gsid = scenario(upstream, "score_50").company_gsid
    upstream.gainsight.tables["company"].update(gsid, {"RiskFlags__gc": None})


def pending_red(key: str) -> Setup:
    """A customer turns Red: an Account and a Company update, then a Risk CTA to open.  Each
    case turns its own account Red (and leaves it so, converged)."""

    def setup(upstream: RunningEmulators, memo: dict[str, Any]) -> None:
        gsid = scenario(upstream, key).company_gsid
        upstream.gainsight.tables["company"].update(
            gsid, {"CurrentScore": upstream.gainsight.stored_score(20)}
        )

    return setup


def set_row(api: str, table: str, key: str, attr: str, values: dict[str, Any]) -> Setup:
    """Write raw values into one row (no validation), remembering the old ones."""

    def setup(upstream: RunningEmulators, memo: dict[str, Any]) -> None:
        target = getattr(scenario(upstream, key), attr)
        rows = (upstream.salesforce if api == SF else upstream.gainsight).tables[table]
        old = rows.get(target) or {}
        memo.setdefault("undo", []).append((api, table, target, {k: old.get(k) for k in values}))
        stored = dict(values)
        if api == GS and table == "company":  # a score lives on the scheme row (strict, G1)
            for k in ("CurrentScore", "PreviousScore"):
                if k in stored:
                    stored[k] = upstream.gainsight.stored_score(stored[k], k)
        rows.update(target, stored)

    return setup


def set_team_row(values: dict[str, Any]) -> Setup:
    """Change the first team row of the scenario account with a human SA row."""

    def setup(upstream: RunningEmulators, memo: dict[str, Any]) -> None:
        account = scenario(upstream, "human_sa_row_for_ae").account_id
        rows = upstream.salesforce.tables["AccountTeamMember"]
        rid = sorted(rows.find("AccountId", account))[0]
        old = rows.get(rid) or {}
        memo.setdefault("undo", []).append(
            (SF, "AccountTeamMember", rid, {k: old.get(k) for k in values})
        )
        rows.update(rid, values)

    return setup


def set_user(values: dict[str, Any]) -> Setup:
    def setup(upstream: RunningEmulators, memo: dict[str, Any]) -> None:
        user = scenario(upstream, "score_76").users["owner"]
        rows = upstream.salesforce.tables["User"]
        old = rows.get(user) or {}
        memo.setdefault("undo", []).append((SF, "User", user, {k: old.get(k) for k in values}))
        rows.update(user, values)

    return setup


def set_opportunity(values: dict[str, Any]) -> Setup:
    def setup(upstream: RunningEmulators, memo: dict[str, Any]) -> None:
        account = scenario(upstream, "score_76").account_id
        rows = upstream.salesforce.tables["Opportunity"]
        rid = sorted(rows.find("AccountId", account))[0]
        old = rows.get(rid) or {}
        memo.setdefault("undo", []).append(
            (SF, "Opportunity", rid, {k: old.get(k) for k in values})
        )
        rows.update(rid, values)

    return setup


def second_company(upstream: RunningEmulators, memo: dict[str, Any]) -> None:
    """Another Company claims the account of an existing one."""
    ref = scenario(upstream, "score_76")
    gsid = upstream.gainsight.create(
        "company", {"Name": "Duplicate Link Inc", "SfdcAccountId": ref.account_id}
    )
    memo["conflict"] = (ref.company_gsid, gsid)
    memo.setdefault("undo", []).append((GS, "company", gsid, {"SfdcAccountId": None}))


def undo(upstream: RunningEmulators, memo: dict[str, Any]) -> None:
    for api, table, rid, values in reversed(memo.get("undo", [])):
        (upstream.salesforce if api == SF else upstream.gainsight).tables[table].update(rid, values)


def both(*steps: Setup) -> Setup:
    def setup(upstream: RunningEmulators, memo: dict[str, Any]) -> None:
        for step in steps:
            step(upstream, memo)

    return setup


# --- the cases ------------------------------------------------------------------------------
def R(kind: str, operation: str, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "operation": operation, **extra}


HTTP = "{sink_http}"  # the byte sink over plain http
OTHER = "{sink_other}"  # the byte sink under another host name, https

REDIRECTS = [
    Case("sf-token-307-to-http", SF, (R("redirect", "oauth.token", status=307, location=HTTP + "/token"),), says="HTTP 307 redirect to http://127.0.0.1"),
    Case("sf-token-302-to-other-host", SF, (R("redirect", "oauth.token", location=OTHER + "/token"),), says="redirect to https://localhost"),
    Case("sf-token-308-to-http", SF, (R("redirect", "oauth.token", status=308, location=HTTP),)),
    Case("sf-token-301-to-other-host", SF, (R("redirect", "oauth.token", status=301, location=OTHER),)),
    Case("sf-query-user-302-to-http", SF, (R("redirect", "query", object="User", location=HTTP + "/q?sid=x"),), stream="salesforce.User"),
    Case("sf-query-account-307-to-other-host", SF, (R("redirect", "query_all", object="Account", status=307, location=OTHER),), stream="salesforce.Account"),
    Case("sf-query-team-303-to-http", SF, (R("redirect", "query", object="AccountTeamMember", status=303, location=HTTP),), stream="salesforce.AccountTeamMember"),
    Case("sf-count-team-302-to-http", SF, (R("redirect", "query", object="AccountTeamMember", skip=1, location=HTTP),), stream="salesforce.AccountTeamMember"),
    Case("sf-collections-307-to-http", SF, (R("redirect", "collections", status=307, location=HTTP),), setup=pending_account_update, then=1),
    Case("gs-company-query-302-to-http", GS, (R("redirect", "company.query", location=HTTP),), stream="gainsight.Company"),
    Case("gs-user-query-307-to-other-host", GS, (R("redirect", "gsuser.query", status=307, location=OTHER),), stream="gainsight.GsUser"),
    Case("gs-company-update-308-to-http", GS, (R("redirect", "company.update", status=308, location=HTTP),), setup=pending_company_update, then=1),
    # skip=1: the run's first Cockpit list reads the open Handoff CTAs (after the pull); the
    # second is the duplicate check before opening the Red Health CTA.
    Case("gs-cta-list-302-to-other-host", GS, (R("redirect", "cta.list", location=OTHER, skip=1),), setup=pending_red("link_15_char"), writes=2, then=1),
    Case("gs-cta-refresh-302-to-other-host", GS, (R("redirect", "cta.list", location=OTHER),), setup=pending_red("score_51"), writes=0, then=3),
]  # fmt: skip

SALESFORCE_CONTRACTS = [
    Case("sf-query-user-html-200", SF, (R("html", "query", object="User"),), says="not the JSON", stream="salesforce.User"),
    Case("sf-query-account-truncated", SF, (R("truncate", "query_all", object="Account"),), stream="salesforce.Account"),
    Case("sf-query-opportunity-truncated", SF, (R("truncate", "query_all", object="Opportunity"),), stream="salesforce.Opportunity"),
    Case("sf-query-team-no-records", SF, (R("drop", "query", object="AccountTeamMember", path="records"),), says="records is null"),
    Case("sf-query-team-null-records", SF, (R("set", "query", object="AccountTeamMember", path="records", value=None),)),
    Case("sf-query-team-not-done-no-next", SF, (R("set", "query", object="AccountTeamMember", path="done", value=False),), says="nextRecordsUrl"),
    Case("sf-query-account-total-as-text", SF, (R("set", "query_all", object="Account", path="totalSize", value="7"),), says="totalSize is str"),
    Case("sf-query-user-records-as-text", SF, (R("set", "query", object="User", path="records", value="none"),)),
    Case("sf-query-team-wrong-count", SF, (R("wrong_count", "query", object="AccountTeamMember", times=None),), says="totalSize said"),
    Case("sf-count-team-null", SF, (R("set", "query", object="AccountTeamMember", skip=1, path="totalSize", value=None),), says="totalSize is null"),
    Case("sf-count-team-html", SF, (R("html", "query", object="AccountTeamMember", skip=1),)),
    Case("sf-token-html-200", SF, (R("html", "oauth.token"),)),
    Case("sf-token-truncated", SF, (R("truncate", "oauth.token"),)),
    Case("sf-collections-wrong-count", SF, (R("wrong_count", "collections.update"),), setup=pending_two_account_updates, writes=1, says="1 results for 2 records"),
    Case("sf-collections-empty-list", SF, (R("empty_page", "collections.update"),), setup=pending_account_update, writes=1),
    Case("sf-collections-html-200", SF, (R("html", "collections.update"),), setup=pending_account_update, writes=1),
    Case("sf-collections-success-as-text", SF, (R("set", "collections.update", path="success", value="true"),), setup=pending_account_update, writes=1, says="boolean success"),
    Case("sf-bulk-ingest-count-off", SF, (R("wrong_count", "bulk2.ingest.status", times=None),), setup=pending_two_account_updates, writes=-1, env={"TEAMSYNC_SALESFORCE_BULK_THRESHOLD": "1"}, says="processed"),
    Case("sf-bulk-ingest-results-header", SF, (R("csv_header", "bulk2.ingest.successful_results", times=None),), setup=pending_two_account_updates, writes=-1, env={"TEAMSYNC_SALESFORCE_BULK_THRESHOLD": "1"}, says="lacks the column"),
    Case("sf-bulk-ingest-results-short", SF, (R("wrong_count", "bulk2.ingest.successful_results", times=None),), setup=pending_two_account_updates, writes=-1, env={"TEAMSYNC_SALESFORCE_BULK_THRESHOLD": "1"}),
]  # fmt: skip

GAINSIGHT_CONTRACTS = [
    Case("gs-company-html-200", GS, (R("html", "company.query"),), full=True, says="HTML page", stream="gainsight.Company"),
    Case("gs-company-truncated", GS, (R("truncate", "company.query"),), full=True, says="truncated"),
    Case("gs-company-no-data", GS, (R("drop", "company.query", path="data"),), full=True, says="without data"),
    Case("gs-company-null-data", GS, (R("set", "company.query", path="data", value=None),), full=True, says="data is null"),
    Case("gs-company-data-object", GS, (R("set", "company.query", path="data", value={}),), full=True),
    Case("gs-company-data-text", GS, (R("set", "company.query", path="data", value="rows"),), full=True),
    Case("gs-company-rows-not-objects", GS, (R("set", "company.query", path="data", value=[1, 2]),), full=True),
    Case("gs-company-no-result", GS, (R("drop", "company.query", path="result"),), full=True),
    Case("gs-company-rows-without-gsid", GS, (R("set", "company.query", path="data.Gsid", value=None),), full=True, says="Gsid"),
    Case("gs-company-no-data-with-rows", GS, (R("merge", "company.query", value={"result": False, "errorCode": "GSOBJ_1XXX", "errorDesc": "No data found for given criteria"}),), full=True, says="carries rows"),
    Case("gs-user-null-data", GS, (R("set", "gsuser.query", path="data", value=None),), full=True, stream="gainsight.GsUser"),
    Case("gs-user-html-200", GS, (R("html", "gsuser.query"),), full=True),
    Case("gs-cta-list-null-data", GS, (R("set", "cta.list", path="data", value=None, skip=1),), setup=pending_red("csm_email_case"), writes=2, then=1),
    Case("gs-cta-refresh-null-data", GS, (R("set", "cta.list", path="data", value=None),), setup=pending_red("renewal_121"), writes=0, then=3),
    Case("gs-company-update-null-data", GS, (R("set", "company.update", path="data", value=None),), setup=pending_company_update, writes=1),
    Case("gs-company-update-count-off", GS, (R("wrong_count", "company.update"),), setup=pending_company_update, writes=1, says="count 2 for 1 records"),
    Case("gs-company-update-html-200", GS, (R("html", "company.update"),), setup=pending_company_update, writes=1),
    Case("gs-cta-create-short", GS, (R("wrong_count", "cta.create"),), setup=pending_red("ae_owns_renewal"), writes=3),
]  # fmt: skip

ABSENCE = [
    Case("sf-team-count-and-scan-empty", SF, (R("empty_page", "query", object="AccountTeamMember", times=None),), exit=4, says="vanished"),
    Case("sf-full-accounts-empty", SF, (R("empty_page", "query_all", object="Account", times=None),), full=True, exit=4, says="vanished"),
    Case("sf-full-users-empty", SF, (R("empty_page", "query", object="User", times=None),), full=True, exit=4),
    Case("sf-full-opportunities-empty", SF, (R("empty_page", "query_all", object="Opportunity", times=None),), full=True, exit=4),
    Case("sf-full-team-empty", SF, (R("empty_page", "query", object="AccountTeamMember", times=None),), full=True, exit=4),
    Case("gs-full-companies-empty", GS, (R("empty_page", "company.query", times=None),), full=True, exit=4, says="vanished"),
    Case("gs-full-companies-no-data-error", GS, (R("empty_page", "company.query", times=None, value="no_data"),), full=True, exit=4),
    Case("gs-full-users-empty", GS, (R("empty_page", "gsuser.query", times=None),), full=True, exit=4),
    Case("gs-full-scores-null", GS, (R("set", "company.query", times=None, path="data.CurrentScore__gr.Score", value=None),), full=True, exit=4, says="clears"),
    Case("gs-full-csm-null", GS, (R("set", "company.query", times=None, path="data.Csm", value=None),), full=True, exit=4),
]  # fmt: skip

POISON = [
    Case("poison-team-row-without-user", SF, setup=set_team_row({"UserId": None}), cleanup=undo, exit=1, quarantine="user_id: Value error, missing"),
    Case("poison-account-name-nul", SF, setup=set_row(SF, "Account", "score_76", "account_id", {"Name": "Acme\x00Corp"}), cleanup=undo, exit=1, quarantine="Name: NUL byte in text"),
    Case("poison-account-name-surrogate", SF, setup=set_row(SF, "Account", "score_75", "account_id", {"Name": "Acme \ud800 Corp"}), cleanup=undo, exit=1, quarantine="not valid Unicode"),
    Case("poison-score-boolean", GS, setup=set_row(GS, "company", "score_76", "company_gsid", {"CurrentScore": True}), cleanup=undo, exit=1, quarantine="a boolean, not a number"),
    Case("poison-score-word", GS, setup=set_row(GS, "company", "score_75", "company_gsid", {"CurrentScore": "n/a"}), cleanup=undo, exit=1, quarantine="text, not a number"),
    Case("poison-two-companies-one-account", GS, setup=second_company, cleanup=undo, exit=1, quarantine="2 Gainsight companies link to Salesforce account"),
    Case("poison-opportunity-won-as-word", SF, setup=set_opportunity({"IsWon": "yes"}), cleanup=undo, exit=1, quarantine="expected a boolean"),
    Case("poison-user-active-as-word", SF, setup=set_user({"IsActive": "maybe"}), cleanup=undo, exit=1, quarantine="expected a boolean"),
    Case("poison-employees-boolean", SF, setup=set_row(SF, "Account", "score_51", "account_id", {"NumberOfEmployees": True}), cleanup=undo, exit=1, quarantine="employees"),
    Case("poison-and-a-real-change", SF, setup=both(set_team_row({"UserId": None}), bump_score("score_76", 90)), cleanup=undo, exit=1, writes=1, quarantine="user_id"),
]  # fmt: skip

# Garbage in a field teamsync writes (Salesforce cannot hold a word in a number field, so the
# answer carries it): every account is simply overwritten in one call, nothing quarantined.
OWNED_GARBAGE = [
    Case("owned-health-score-as-word", SF, (R("set", "query_all", object="Account", path="records.Health_Score__c", value="n/a"),), full=True, exit=0, writes=1),
    Case("owned-health-status-as-number", SF, (R("set", "query_all", object="Account", path="records.Health_Status__c", value=42),), full=True, exit=0, writes=1),
    Case("owned-risk-flags-as-number", GS, setup=set_row(GS, "company", "score_50", "company_gsid", {"RiskFlags__gc": 7}), exit=0, writes=1),
]  # fmt: skip


def mark_raw_deleted(system: str, obj: str, key: str, attr: str) -> Callable[[World], None]:
    def setup(world: World) -> None:
        target = getattr(scenario(world.upstream, key), attr)
        if obj == "AccountTeamMember":
            rows = world.upstream.salesforce.tables[obj]
            target = sorted(rows.find("AccountId", target))[0]
        store = Store(world.database_url)
        with store.session() as s:
            s.execute(
                update(RawRecord)
                .where(RawRecord.system == system, RawRecord.object == obj,
                       RawRecord.record_id == target)
                .values(is_deleted=True)
            )  # fmt: skip
        store.dispose()

    return setup


SEEN_AGAIN = {
    "seen-again-team-row": (mark_raw_deleted(SF, "AccountTeamMember", "human_sa_row_for_ae", "account_id"), False),
    "seen-again-company": (mark_raw_deleted(GS, "Company", "score_76", "company_gsid"), True),
}  # fmt: skip

CASES = REDIRECTS + SALESFORCE_CONTRACTS + GAINSIGHT_CONTRACTS + ABSENCE + POISON + OWNED_GARBAGE


def watermarks(world: World) -> dict[str, Any]:
    store = Store(world.database_url)
    with store.session() as s:
        out = {w.stream: w.value for w in s.scalars(select(Watermark))}
    store.dispose()
    return out


def open_quarantine(world: World) -> list[QuarantinedRecord]:
    store = Store(world.database_url)
    with store.session() as s:
        rows = list(
            s.scalars(select(QuarantinedRecord).where(QuarantinedRecord.resolved_at.is_(None)))
        )
    store.dispose()
    return rows


def test_there_are_enough_cases() -> None:
    """The issue asks for at least 60 parametrized hostile cases."""
    assert len(CASES) + len(SEEN_AGAIN) >= 60
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_upstream(world: World, byte_sink: ByteSink, case: Case) -> None:
    """One hostile answer: the exit code, the writes, the quarantine, nothing leaked, and the
    next clean run converges."""
    if world.dirty:
        world.converge()
    world.dirty = True
    upstream = world.upstream
    byte_sink.reset()
    memo: dict[str, Any] = {}
    if case.setup is not None:
        case.setup(upstream, memo)
    faults = upstream.salesforce.faults if case.api == SF else upstream.gainsight.faults
    for rule in case.rules:
        values = dict(rule)
        if "location" in values:
            values["location"] = values["location"].format(
                sink_http=byte_sink.url("http"), sink_other=byte_sink.url("https", "localhost")
            )
        faults.tamper(**values)
    before = watermarks(world)
    upstream.log.reset()

    code, out = world.invoke(case.args, **case.env)

    assert code == case.exit, out
    if case.writes >= 0:
        assert world.applied_writes() == case.writes, upstream.log.summary()
    else:  # Bulk 2.0: the job's calls (create, upload, close, polls, results) all applied
        assert world.applied_writes() > 0
    assert byte_sink.received == b""
    assert byte_sink.connections == 0
    if case.exit in (3, 4, 5):
        assert "Traceback" not in out
    if case.says:
        assert case.says in out, out
    if case.stream:
        assert watermarks(world).get(case.stream) == before.get(case.stream)
    if case.quarantine:
        rows = [q for q in open_quarantine(world) if case.quarantine in q.reason]
        assert rows, [q.reason for q in open_quarantine(world)]
        assert all(q.account_id for q in rows)  # the account that was left out is named
        if "conflict" in memo:
            assert all(g in rows[0].reason for g in memo["conflict"])

    for f in (upstream.salesforce.faults, upstream.gainsight.faults):
        f.reset()
    if case.cleanup is not None:
        case.cleanup(upstream, memo)
    upstream.log.reset()
    code, out = world.invoke(["run"])
    assert code == 0, out
    assert world.applied_writes() == case.then, upstream.log.summary()
    if case.then:
        upstream.log.reset()
        code, out = world.invoke(["run"])
        assert code == 0, out
        assert world.applied_writes() == 0, upstream.log.summary()
    assert not [q for q in open_quarantine(world) if q.stage == "map"]
    world.dirty = False


@pytest.mark.parametrize("name", sorted(SEEN_AGAIN))
def test_a_record_marked_deleted_and_seen_again_is_live(world: World, name: str) -> None:
    """A row the store holds as deleted (an earlier lie believed) that the next pull sees is
    live again: no duplicate is created for it, nothing is written."""
    if world.dirty:
        world.converge()
    world.dirty = True
    setup, full = SEEN_AGAIN[name]
    setup(world)
    world.upstream.log.reset()
    code, out = world.invoke(["run", "--full"] if full else ["run"])
    assert code == 0, out
    assert world.applied_writes() == 0, world.upstream.log.summary()
    world.dirty = False
