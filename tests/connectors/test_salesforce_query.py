"""SalesforceClient reads against the emulator: paging, queryAll, Bulk 2.0 query, SOQL safety."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors import soql
from connectors.errors import RequestRejected
from connectors.retry import RetryPolicy
from connectors.salesforce import SalesforceClient, SalesforceConfig
from emulators.http import EmulatorServer
from emulators.salesforce import SalesforceEmulator
from emulators.salesforce.testing import SmallOrg, seed_small_org, serve, shared_credentials
from emulators.tls import TlsMaterial

FIELDS = [
    "Id",
    "Name",
    "Owner.Email",
    "Owner.IsActive",
    "Parent.Name",
    "NumberOfEmployees",
    "Sales_Segment__c",
    "SystemModstamp",
    "IsDeleted",
]
ACCOUNTS = soql.select("Account", FIELDS, order_by=["Name", "Id"])


@pytest.fixture
def org(sf_emu: SalesforceEmulator) -> SmallOrg:
    return seed_small_org(sf_emu, accounts=450)


def make(
    sf_emu: SalesforceEmulator,
    server: EmulatorServer,
    tls: TlsMaterial,
    waits: list[float],
    **kw: Any,
) -> SalesforceClient:
    kw.setdefault("retry", RetryPolicy(max_attempts=3, initial_backoff=0.01))
    config = SalesforceConfig(
        instance_url=server.url, access_token=sf_emu.issue_token(), ca_bundle=tls.ca_path, **kw
    )
    return SalesforceClient(config, sleep=waits.append)


@pytest.fixture
def client(
    sf_emu: SalesforceEmulator, server: EmulatorServer, tls: TlsMaterial, waits: list[float]
) -> SalesforceClient:
    return make(sf_emu, server, tls, waits)


def flat(pages: Iterator[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [record for page in pages for record in page]


def test_rest_pages_at_batch_size_200_lose_and_double_nothing(
    client: SalesforceClient, sf_emu: SalesforceEmulator, org: SmallOrg
) -> None:
    """450 accounts come as pages of 200, 200, 50 in ORDER BY order, each exactly once."""
    pages = list(client.query(ACCOUNTS, batch_size=200))
    assert [len(p) for p in pages] == [200, 200, 50]
    ids = [r["Id"] for p in pages for r in p]
    assert sorted(ids) == sorted(org.accounts)
    names = [r["Name"] for p in pages for r in p]
    assert names == sorted(names)
    assert sf_emu.log.count(api="salesforce", operation="query") == 1
    assert sf_emu.log.count(api="salesforce", operation="query_more") == 2
    assert sf_emu.log.count(api="salesforce", operation="bulk2.query.create") == 0


def test_records_are_flat_and_typed_like_rest(client: SalesforceClient, org: SmallOrg) -> None:
    """No attributes; parents as dotted keys (null parents too); REST value types."""
    first = next(iter(client.query(ACCOUNTS, batch_size=200)))[0]
    assert set(first) == set(FIELDS)
    assert first["Parent.Name"] is None
    assert first["Owner.Email"].endswith("@teamsync.example")
    assert first["Owner.IsActive"] is True
    assert isinstance(first["NumberOfEmployees"], int)
    assert first["IsDeleted"] is False
    assert first["SystemModstamp"].endswith("+0000")


def test_batch_size_is_clamped_to_the_api_range(
    client: SalesforceClient, sf_emu: SalesforceEmulator, org: SmallOrg
) -> None:
    """A batch size below 200 is sent as 200 (the API minimum)."""
    pages = list(client.query(ACCOUNTS, batch_size=10))
    assert [len(p) for p in pages] == [200, 200, 50]


def test_include_deleted_sees_recycle_bin_rows(
    client: SalesforceClient, sf_emu: SalesforceEmulator, org: SmallOrg
) -> None:
    """queryAll returns soft-deleted rows with IsDeleted true; query does not."""
    gone = org.accounts[:3]
    for rid in gone:
        sf_emu.delete("Account", rid)
    live = flat(client.query(ACCOUNTS))
    everything = flat(client.query(ACCOUNTS, include_deleted=True))
    assert len(live) == 447
    assert len(everything) == 450
    assert {r["Id"] for r in everything if r["IsDeleted"]} == set(gone)
    assert sf_emu.log.count(api="salesforce", operation="query_all") == 1


@pytest.mark.parametrize("include_deleted", [False, True])
def test_bulk_query_above_threshold_matches_rest(
    include_deleted: bool,
    sf_emu: SalesforceEmulator,
    server: EmulatorServer,
    tls: TlsMaterial,
    waits: list[float],
    org: SmallOrg,
) -> None:
    """Above bulk_query_threshold the rows stream from one Bulk 2.0 job: same records, same
    value types as REST, pages of at most batch_size.  The job runs without the ORDER BY (S6)
    and its pages say they are unordered; REST pages keep the query's order."""
    for rid in org.accounts[:2]:
        sf_emu.delete("Account", rid)
    client = make(sf_emu, server, tls, waits, bulk_query_threshold=300)
    rest = flat(client.query(ACCOUNTS, include_deleted=include_deleted, allow_bulk=False))
    before = sf_emu.log.count(api="salesforce", operation="query_more")
    bulk_pages = list(client.query(ACCOUNTS, include_deleted=include_deleted, batch_size=200))
    bulk = [r for p in bulk_pages for r in p]
    assert sf_emu.log.count(api="salesforce", operation="bulk2.query.create") == 1
    assert sf_emu.log.count(api="salesforce", operation="query_more") == before  # cursor dropped
    assert [len(p) for p in bulk_pages] == [200, 200, 48 + 2 * include_deleted]
    (job,) = sf_emu.bulk2.query_jobs.values()
    assert "ORDER BY" not in job.query.upper()
    assert [getattr(p, "ordered", True) for p in bulk_pages] == [False, False, False]
    assert all(getattr(p, "ordered", True) for p in client.query(ACCOUNTS, allow_bulk=False))
    bulk.sort(key=lambda r: r["Id"])
    rest.sort(key=lambda r: r["Id"])
    assert bulk == rest
    for b, r in zip(bulk, rest, strict=True):
        assert {k: type(v) for k, v in b.items()} == {k: type(v) for k, v in r.items()}


def test_large_bulk_query_with_order_by_completes_on_a_strict_org(
    server: EmulatorServer, tls: TlsMaterial, waits: list[float]
) -> None:
    """A strict org fails a Bulk job with ORDER BY above 2,000 rows (a timeout); the client
    sends the job without it, so a 2,100-row ordered query still streams every row once."""
    strict = SalesforceEmulator(credentials=shared_credentials(), profile="strict")
    seed_small_org(strict, accounts=3)
    strict.load("Account", [{"Name": f"Bulk {i:04d}"} for i in range(2_100)])
    with serve(strict, tls) as strict_server:
        client = make(strict, strict_server, tls, waits, bulk_query_threshold=300)
        rows = flat(client.query(soql.select("Account", ["Id"], order_by=["Id"])))
    assert len({r["Id"] for r in rows}) == len(rows) == 2_103
    assert strict.log.count(api="salesforce", operation="bulk2.query.create") == 1


def test_bulk_query_follows_locators(
    sf_emu: SalesforceEmulator,
    server: EmulatorServer,
    tls: TlsMaterial,
    waits: list[float],
    org: SmallOrg,
) -> None:
    """Bulk results are fetched chunk by chunk (Sforce-Locator) without losing a row."""
    client = make(sf_emu, server, tls, waits, bulk_query_threshold=300)
    client.bulk_result_chunk = 120
    records = flat(client.query(ACCOUNTS, batch_size=200))
    assert sorted(r["Id"] for r in records) == sorted(org.accounts)
    assert sf_emu.log.count(api="salesforce", operation="bulk2.query.results") == 4


def test_bulk_not_used_when_not_allowed_or_unsupported(
    sf_emu: SalesforceEmulator,
    server: EmulatorServer,
    tls: TlsMaterial,
    waits: list[float],
    org: SmallOrg,
) -> None:
    """allow_bulk=False, or a query Bulk 2.0 cannot run (OFFSET), stays on REST."""
    client = make(sf_emu, server, tls, waits, bulk_query_threshold=100)
    assert len(flat(client.query(ACCOUNTS, allow_bulk=False, batch_size=200))) == 450
    with_offset = soql.select("Account", ["Id"], order_by=["Id"]) + " LIMIT 2000 OFFSET 5"
    assert len(flat(client.query(with_offset, batch_size=200))) == 445
    assert sf_emu.log.count(api="salesforce", operation="bulk2.query.create") == 0


def test_count_and_count_of_a_plain_query(client: SalesforceClient, org: SmallOrg) -> None:
    """count() takes a COUNT() query or any SELECT, keeping its WHERE."""
    assert client.count("SELECT COUNT() FROM Account") == 450
    where = f"Sales_Segment__c = {soql.quote('Enterprise')}"
    assert client.count(soql.select("Account", ["Id"], where, order_by=["Name"])) == 150


HOSTILE = [
    "O'Brien & Sons",
    "' OR Name != '",
    "back\\slash\\",
    "quote \" and \\' mix",
    "line\nbreak\ttab",
    "%_wild",
]


def test_hostile_strings_are_plain_values(
    client: SalesforceClient, sf_emu: SalesforceEmulator, org: SmallOrg
) -> None:
    """Quoted hostile names match exactly their own record, never widen the query."""
    created = {
        name: sf_emu.create("Account", {"Name": name, "OwnerId": org.users[0]}) for name in HOSTILE
    }
    for name, rid in created.items():
        text = soql.select("Account", ["Id", "Name"], f"Name = {soql.quote(name)}")
        rows = flat(client.query(text))
        assert [(r["Id"], r["Name"]) for r in rows] == [(rid, name)]
    # Interpolated without quote() the same value would have widened the query to every row.
    naive = soql.select("Account", ["Id"], f"Name = '{HOSTILE[1]}'")
    assert client.count(naive) == 456
    like = soql.select("Account", ["Id"], f"Name LIKE {soql.like('%_wild')}")
    assert [r["Id"] for r in flat(client.query(like))] == [created["%_wild"]]


def test_ids_are_validated_and_normalised(client: SalesforceClient, org: SmallOrg) -> None:
    """15-character ids find the 18-character records; a bad checksum never reaches SOQL."""
    wanted = org.accounts[:3]
    text = soql.select("Account", ["Id"], f"Id IN {soql.id_list([i[:15] for i in wanted])}")
    assert sorted(r["Id"] for r in flat(client.query(text))) == sorted(wanted)
    one = soql.select("Account", ["Id"], f"Id = {soql.id_literal(wanted[0][:15])}")
    assert [r["Id"] for r in flat(client.query(one))] == [wanted[0]]
    with pytest.raises(ValueError, match="not a valid Salesforce Id"):
        soql.id_literal(wanted[0][:15] + "ZZZ")


@pytest.mark.usefixtures("org")
@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY"),
        ("SELECT Nope__c FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM Nope__c", "INVALID_TYPE"),
    ],
)
def test_bad_queries_are_rejected_with_their_code(
    text: str, code: str, client: SalesforceClient, sf_emu: SalesforceEmulator, waits: list[float]
) -> None:
    """A refused query is RequestRejected with the errorCode; no retry; no token in it."""
    with pytest.raises(RequestRejected) as info:
        flat(client.query(text))
    assert info.value.code == code
    assert info.value.status == 400
    assert "salesforce query" in str(info.value)
    assert str(client.config.access_token) not in str(info.value)
    assert waits == []


def test_describe_is_cached_and_limits_update_usage(
    client: SalesforceClient, sf_emu: SalesforceEmulator
) -> None:
    """describe() costs one call per object; limits() reports the daily allocation."""
    first = client.describe("Account")
    assert client.describe("account") is first
    assert sf_emu.log.count(api="salesforce", operation="describe") == 1
    assert any(f["name"] == "OwnerId" for f in first["fields"])
    limits = client.limits()
    assert limits["DailyApiRequests"]["Max"] == sf_emu.api_max
    assert client.usage.max == sf_emu.api_max
    assert client.usage.used == sf_emu.api_usage
    assert client.usage.calls["describe"] == 1
    assert client.usage.calls["limits"] == 1


def test_organization_defaults_and_a_disabled_object(
    client: SalesforceClient, sf_emu: SalesforceEmulator, org: SmallOrg
) -> None:
    """organization() reads the sharing defaults in one query; describe_if_exists says None
    for AccountTeamMember when Account Teams are off (S1, S4)."""
    sf_emu.set_org_defaults(Opportunity="Edit", Case="ReadEditTransfer")
    sf_emu.is_sandbox = True
    info = client.organization()
    assert info.is_sandbox is True
    assert info.defaults["Opportunity"] == "Edit"
    assert info.defaults["Case"] == "ReadEditTransfer"
    assert info.defaults["Account"] == "Read"
    assert client.describe_if_exists("AccountTeamMember") is not None
    fresh = client.usage.calls["describe"]
    sf_emu.account_teams_enabled = False
    client._describes.clear()
    assert client.describe_if_exists("AccountTeamMember") is None
    assert client.usage.calls["describe"] == fresh + 1
