"""Both connectors against hostile emulator answers: redirects are never followed, and a body
that breaks its endpoint's contract is an upstream fault (exit 3), never "no records"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.errors import ContractViolation, FatalError, RedirectRefused
from connectors.gainsight import GainsightClient, GainsightConfig
from connectors.retry import RetryPolicy
from connectors.salesforce import SalesforceClient, SalesforceConfig
from emulators.runner import RunningEmulators, start_emulators
from emulators.tls import TlsMaterial
from tests.conftest import ByteSink

FAST = RetryPolicy(max_attempts=2, initial_backoff=0.0, max_total_wait=0.1, jitter=0.0)
ATM = "SELECT Id, AccountId, UserId, TeamMemberRole FROM AccountTeamMember ORDER BY Id"
OPPS = "SELECT Id, Name FROM Opportunity"  # more than one 200-row page: REST paging and Bulk


@pytest.fixture(scope="module")
def emus(tls: TlsMaterial) -> Iterator[RunningEmulators]:
    with start_emulators(accounts=80, seed=3, tls=tls) as running:
        assert len(running.salesforce.tables["Opportunity"]) > 200
        yield running


@pytest.fixture(autouse=True)
def _clean(emus: RunningEmulators, byte_sink: ByteSink) -> Iterator[None]:
    for faults in (emus.salesforce.faults, emus.gainsight.faults):
        faults.reset()
    emus.log.reset()
    byte_sink.reset()
    yield
    for faults in (emus.salesforce.faults, emus.gainsight.faults):
        faults.reset()


def sf(emus: RunningEmulators, **overrides: Any) -> SalesforceClient:
    creds = emus.salesforce.credentials
    values: dict[str, Any] = {
        "instance_url": emus.salesforce_url,
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
        "ca_bundle": emus.ca_path,
        "retry": FAST,
    }
    values.update(overrides)
    return SalesforceClient(SalesforceConfig(**values), sleep=lambda _s: None)


def gs(emus: RunningEmulators, **overrides: Any) -> GainsightClient:
    values: dict[str, Any] = {
        "base_url": emus.gainsight_url,
        "access_key": emus.gainsight.access_key,
        "ca_bundle": emus.ca_path,
        "retry": FAST,
    }
    values.update(overrides)
    return GainsightClient(GainsightConfig(**values), sleep=lambda _s: None)


def rows(pages: Iterator[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [r for page in pages for r in page]


# --- redirects ------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_token_redirect_to_plain_http_never_carries_the_secret(
    emus: RunningEmulators, byte_sink: ByteSink, status: int
) -> None:
    """The OAuth token POST answered with a redirect to http:// is refused: the listener
    there receives nothing, and the error names status and host only."""
    emus.salesforce.faults.tamper(
        "redirect", operation="oauth.token", status=status,
        location=byte_sink.url() + "/services/oauth2/token?steal=1",
    )  # fmt: skip
    client = sf(emus)
    with pytest.raises(RedirectRefused) as info:
        client.connect()
    error = info.value
    assert error.exit_code == 3
    assert error.status == status
    assert error.target == byte_sink.url()
    assert str(error) == (
        f"salesforce auth: HTTP {status} redirect to {byte_sink.url()} refused "
        "(redirects are never followed)"
    )
    secret = emus.salesforce.credentials.client_secret
    assert secret not in str(error)
    assert "steal" not in str(error)
    assert byte_sink.received == b""
    assert byte_sink.connections == 0
    assert emus.log.count(api="salesforce", kind="auth") == 1


@pytest.mark.parametrize(
    ("operation", "soql", "allow_bulk"),
    [
        ("query", ATM, False),
        ("query_more", OPPS, False),
        ("bulk2.query.create", OPPS, True),
        ("bulk2.query.status", OPPS, True),
        ("bulk2.query.results", OPPS, True),
    ],
)
def test_query_redirects_to_other_hosts_are_refused(
    emus: RunningEmulators,
    byte_sink: ByteSink,
    operation: str,
    soql: str,
    allow_bulk: bool,
) -> None:
    """REST and Bulk 2.0 reads never follow a 302 elsewhere (session id in the header)."""
    emus.salesforce.faults.tamper(
        "redirect", operation=operation, location=byte_sink.url("https", "localhost") + "/x"
    )
    client = sf(emus, bulk_query_threshold=10)
    with pytest.raises(RedirectRefused, match=r"HTTP 302 redirect to https://localhost:\d+ "):
        rows(client.query(soql, batch_size=200, allow_bulk=allow_bulk))
    assert byte_sink.received == b""
    assert byte_sink.connections == 0


def test_collections_write_redirect_is_refused_and_not_applied(
    emus: RunningEmulators, byte_sink: ByteSink
) -> None:
    """A write answered with a 307 is neither followed nor re-sent; nothing was written."""
    account = next(iter(emus.salesforce.tables["Account"].rows))
    emus.salesforce.faults.tamper("redirect", operation="collections", status=307,
                                  location=byte_sink.url() + "/composite")  # fmt: skip
    with pytest.raises(RedirectRefused):
        sf(emus).update("Account", [{"Id": account, "Name": "Redirected"}])
    assert emus.salesforce.get("Account", account)["Name"] != "Redirected"  # type: ignore[index]
    assert byte_sink.received == b""


@pytest.mark.parametrize("operation", ["company.query", "gsuser.query", "cta.list", "cta.create"])
def test_gainsight_redirects_are_refused(
    emus: RunningEmulators, byte_sink: ByteSink, operation: str
) -> None:
    """Gainsight answers 302 to a plain-http host: refused, the access key stays home."""
    emus.gainsight.faults.tamper("redirect", operation=operation, location=byte_sink.url())
    client = gs(emus)
    calls = {
        "company.query": lambda: rows(client.query("Company", ["Name"])),
        "gsuser.query": lambda: rows(client.query("GsUser", ["Name"])),
        "cta.list": lambda: rows(client.cta_list(["Name"])),
        "cta.create": lambda: client.cta_create([{"Name": "x"}]),
    }
    with pytest.raises(RedirectRefused) as info:
        calls[operation]()
    assert info.value.exit_code == 3
    assert emus.gainsight.access_key not in str(info.value)
    assert byte_sink.received == b""
    assert byte_sink.connections == 0


# --- Salesforce contracts -------------------------------------------------------------------
def atm_count(emus: RunningEmulators) -> int:
    return len(emus.salesforce.tables["AccountTeamMember"])


@pytest.mark.parametrize(
    ("kind", "extra", "match"),
    [
        ("html", {}, "not the JSON this endpoint promises"),
        ("truncate", {}, "not the JSON this endpoint promises"),
        ("drop", {"path": "records"}, "records is null"),
        ("drop", {"path": "done"}, "done is null"),
        ("drop", {"path": "totalSize"}, "totalSize is null"),
        ("set", {"path": "records", "value": None}, "records is null"),
        ("set", {"path": "records", "value": "none"}, "records is str"),
        ("set", {"path": "totalSize", "value": "24"}, "totalSize is str"),
        ("set", {"path": "done", "value": False}, "nextRecordsUrl is missing"),
        ("set", {"path": "totalSize", "value": 0}, "pages held {n} records but totalSize said 0"),
        ("wrong_count", {}, "a single page of {n_1} records but totalSize said {n}"),
    ],
)
def test_salesforce_query_page_contract(
    emus: RunningEmulators, kind: str, extra: dict[str, Any], match: str
) -> None:
    """A team-member query page of the wrong shape or count raises ContractViolation."""
    emus.salesforce.faults.tamper(kind, operation="query", object="AccountTeamMember", **extra)
    match = match.format(n=atm_count(emus), n_1=atm_count(emus) - 1)
    with pytest.raises(ContractViolation, match=match) as info:
        rows(sf(emus).query(ATM))
    assert info.value.exit_code == 3
    assert "teamsync.example" not in str(info.value)  # no record data in the message


def test_salesforce_valid_empty_page_is_believed_at_the_connector(
    emus: RunningEmulators,
) -> None:
    """A well-formed empty answer is, to the connector, an empty result: absence must be
    judged by the engine (the mass-change safeguard), not here."""
    emus.salesforce.faults.tamper("empty_page", operation="query", object="AccountTeamMember")
    assert rows(sf(emus).query(ATM)) == []


def test_salesforce_later_page_with_wrong_total_is_refused(emus: RunningEmulators) -> None:
    """totalSize is fixed per cursor: a later page announcing another total is a breach."""
    emus.salesforce.faults.tamper("set", operation="query_more", path="totalSize", value=5)
    with pytest.raises(ContractViolation, match="totalSize changed"):
        rows(sf(emus).query(OPPS, batch_size=200, allow_bulk=False))


def test_salesforce_count_contract(emus: RunningEmulators) -> None:
    """SELECT COUNT() without a numeric totalSize is a breach, not zero."""
    emus.salesforce.faults.tamper("set", operation="query", path="totalSize", value=None)
    with pytest.raises(ContractViolation, match="totalSize is null"):
        sf(emus).count("SELECT COUNT() FROM AccountTeamMember")


@pytest.mark.parametrize(
    ("kind", "extra", "match"),
    [
        ("wrong_count", {}, "1 results for 2 records sent"),
        ("empty_page", {}, "expected a result list, got null"),  # simple-salesforce: [] -> None
        ("set", {"path": "success", "value": "yes"}, "without a boolean success"),
        ("html", {}, "not the JSON"),
    ],
)
def test_salesforce_collections_contract(
    emus: RunningEmulators, kind: str, extra: dict[str, Any], match: str
) -> None:
    """A Collections answer that does not give one result per record sent is a breach."""
    ids = list(emus.salesforce.tables["Account"].rows)[:2]
    emus.salesforce.faults.tamper(kind, operation="collections.update", **extra)
    with pytest.raises(ContractViolation, match=match):
        sf(emus).update("Account", [{"Id": i, "Name": "x"} for i in ids])


@pytest.mark.parametrize(
    ("operation", "kind", "extra", "match"),
    [
        ("bulk2.query.create", "drop", {"path": "id"}, "job info without an id"),
        ("bulk2.query.status", "set", {"path": "state", "value": "Done"}, "known state"),
        ("bulk2.query.status", "wrong_count", {}, r"results held (\d+) rows but the job processed"),
        ("bulk2.query.results", "csv_header", {}, "columns are not the selected fields"),
        ("bulk2.query.results", "html", {}, "no Sforce-NumberOfRecords"),
        ("bulk2.query.results", "wrong_count", {}, "says Sforce-NumberOfRecords"),
    ],
)
def test_salesforce_bulk_query_contract(
    emus: RunningEmulators, operation: str, kind: str, extra: dict[str, Any], match: str
) -> None:
    """Bulk 2.0 query: job info and result CSV are checked; a wrong count is a breach."""
    emus.salesforce.faults.tamper(kind, operation=operation, times=None, **extra)
    client = sf(emus, bulk_query_threshold=10)
    with pytest.raises(ContractViolation, match=match):
        rows(client.query(OPPS, batch_size=200))
    assert emus.log.count(operation="bulk2.query.create") == 1  # the Bulk path was taken


@pytest.mark.parametrize(
    ("operation", "kind", "extra", "match"),
    [
        ("bulk2.ingest.create", "set", {"path": "id", "value": None}, "without an id"),
        ("bulk2.ingest.status", "wrong_count", {}, "counts 4 processed"),
        ("bulk2.ingest.successful_results", "csv_header", {}, "lacks the column"),
        ("bulk2.ingest.successful_results", "wrong_count", {}, "hold 2 successful"),
        ("bulk2.ingest.successful_results", "html", {}, "not CSV"),
    ],
)
def test_salesforce_bulk_ingest_contract(
    emus: RunningEmulators, operation: str, kind: str, extra: dict[str, Any], match: str
) -> None:
    """Bulk 2.0 ingest: job info counts and result files must agree with what was sent."""
    ids = list(emus.salesforce.tables["Account"].rows)[:3]
    emus.salesforce.faults.tamper(kind, operation=operation, times=None, **extra)
    client = sf(emus, bulk_threshold=2)
    with pytest.raises(ContractViolation, match=match):
        client.update("Account", [{"Id": i, "Name": "bulk"} for i in ids])


# --- Gainsight contracts --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "extra", "match"),
    [
        ("html", {}, r"not JSON \(an HTML page\?\)"),
        ("truncate", {}, "truncated or malformed JSON"),
        ("drop", {"path": "data"}, "result: true without data"),
        ("set", {"path": "data", "value": None}, "data is null"),
        ("set", {"path": "data", "value": {}}, "data is an object without records"),
        ("set", {"path": "data", "value": "rows"}, "data is a str"),
        ("set", {"path": "data", "value": [1, 2]}, "not a row object"),
        ("drop", {"path": "result"}, "without result: true"),
        ("set", {"path": "data.Gsid", "value": None}, "rows without a Gsid"),
    ],
)
def test_gainsight_read_contract(
    emus: RunningEmulators, kind: str, extra: dict[str, Any], match: str
) -> None:
    """A Company read of the wrong shape is a ContractViolation (exit 3), never empty."""
    emus.gainsight.faults.tamper(kind, operation="company.query", **extra)
    with pytest.raises(ContractViolation, match=match) as info:
        rows(gs(emus).query("Company", ["Name"]))
    assert info.value.exit_code == 3


def test_gainsight_documented_no_data_is_empty(emus: RunningEmulators) -> None:
    """Only the documented "No data found" failure reads as no rows."""
    emus.gainsight.faults.tamper("empty_page", operation="company.query", value="no_data")
    assert rows(gs(emus).query("Company", ["Name"])) == []


def test_gainsight_cta_list_contract(emus: RunningEmulators) -> None:
    """A CTA list without data is a breach too."""
    emus.gainsight.faults.tamper("set", operation="cta.list", path="data", value=None)
    with pytest.raises(ContractViolation, match="data is null"):
        rows(gs(emus).cta_list(["Name"]))


@pytest.mark.parametrize(
    ("kind", "extra", "match"),
    [
        ("set", {"path": "data", "value": None}, "result: true without data"),
        ("wrong_count", {}, "count 3 for 2 records sent"),
        ("set", {"path": "data", "value": "ok"}, "data is a str"),
        ("html", {}, "HTML page"),
    ],
)
def test_gainsight_write_contract(
    emus: RunningEmulators, kind: str, extra: dict[str, Any], match: str
) -> None:
    """A Company update answer that does not fit the batch is a breach, not a success."""
    gsids = list(emus.gainsight.tables["company"].rows)[:2]
    emus.gainsight.faults.tamper(kind, operation="company.update", **extra)
    with pytest.raises(ContractViolation, match=match):
        gs(emus).update("Company", [{"Gsid": g, "RiskFlags__gc": "X"} for g in gsids])


def test_gainsight_cta_create_wrong_count(emus: RunningEmulators) -> None:
    """A CTA create answering fewer items than were sent is a breach."""
    emus.gainsight.faults.tamper("wrong_count", operation="cta.create")
    company = next(iter(emus.gainsight.tables["company"].rows))
    owner = next(iter(emus.gainsight.tables["gsuser"].rows))  # a strict tenant wants an owner
    record = {"Name": "t", "CompanyId": company, "type": "Risk", "DueDate": "2030-01-01",
              "OwnerId": owner}  # fmt: skip
    with pytest.raises(ContractViolation, match="1 results for 2 records sent"):
        gs(emus).cta_create([record, dict(record, Name="u")])


def test_every_fault_is_fatal_with_exit_3() -> None:
    """Both new errors sit in the fatal branch of the tree with exit code 3."""
    for cls in (ContractViolation, RedirectRefused):
        assert issubclass(cls, FatalError)
        assert cls.exit_code == 3
