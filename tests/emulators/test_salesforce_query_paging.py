"""Salesforce emulator: query paging, cursors, query vs queryAll."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from emulators.salesforce import SalesforceEmulator
from emulators.salesforce.testing import (
    SmallOrg,
    http_session,
    seed_small_org,
    serve,
    shared_credentials,
    simple_salesforce_client,
)
from emulators.tls import TlsMaterial


@pytest.fixture
def sf_emu() -> SalesforceEmulator:
    emulator = SalesforceEmulator(credentials=shared_credentials())
    owner = emulator.tables["User"].new_id()
    emulator.load(
        "User", [{"Id": owner, "Username": "o@x", "LastName": "Owner", "Email": "o@x.example"}]
    )
    # Names in reverse of load order, so ORDER BY Name differs from insertion order.
    emulator.load(
        "Account",
        [{"Name": f"Account {999 - i:04d}", "OwnerId": owner} for i in range(1000)],
    )
    return emulator


def test_query_all_iter_pages_1000_accounts_at_batch_size_200(sf_emu, sf):
    """simple-salesforce follows nextRecordsUrl: 5 pages of 200, all ids, in ORDER BY order."""
    records = list(
        sf.query_all_iter(
            "SELECT Id, Name, Owner.Email FROM Account ORDER BY Name",
            headers={"Sforce-Query-Options": "batchSize=200"},
        )
    )
    assert len({r["Id"] for r in records}) == 1000
    assert [r["Name"] for r in records] == [f"Account {i:04d}" for i in range(1000)]
    assert records[0]["Owner"]["Email"] == "o@x.example"
    pages = sf_emu.log.calls(operation="query") + sf_emu.log.calls(operation="query_more")
    assert len(pages) == 5
    assert [c.records for c in pages] == [200] * 5
    assert sf_emu.log.records(operation="query_more") == 800


def test_page_shape_and_next_records_url(sf):
    """totalSize is the full count on every page; nextRecordsUrl is an absolute locator path."""
    first = sf.query("SELECT Id FROM Account", headers={"Sforce-Query-Options": "batchSize=300"})
    assert first["totalSize"] == 1000
    assert first["done"] is False
    assert len(first["records"]) == 300
    url = first["nextRecordsUrl"]
    assert url.startswith("/services/data/v62.0/query/01g")
    assert url.endswith("-300")
    second = sf.query_more(url, identifier_is_url=True)
    assert second["totalSize"] == 1000
    assert len(second["records"]) == 300
    locator = url.rsplit("/", 1)[1]
    last = sf.query_more(locator.rsplit("-", 1)[0] + "-900", include_deleted=True)
    assert last["done"] is True
    assert "nextRecordsUrl" not in last
    assert len(last["records"]) == 100


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, 2000), ("batchSize=50", 200), ("batchSize=1000", 1000), ("batchSize=9000", 2000)],
)
def test_batch_size_is_clamped(sf_emu, sf, header, expected):
    """batchSize below 200 becomes 200, above 2000 becomes 2000; default is 2000."""
    sf_emu.load("Account", [{"Name": f"More {i}"} for i in range(1500)])  # 2,500 rows
    headers = {"Sforce-Query-Options": header} if header else {}
    result = sf.query("SELECT Id FROM Account", headers=headers)
    assert len(result["records"]) == expected
    assert result["totalSize"] == 2500


def test_unknown_and_expired_locators_are_refused(sf_emu, sf):
    """Unknown locators and cursors idle for over 15 minutes answer INVALID_QUERY_LOCATOR."""
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query_more("01gTm0000000999AAA-200")
    assert info.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
    first = sf.query("SELECT Id FROM Account", headers={"Sforce-Query-Options": "batchSize=200"})
    sf_emu.clock.advance(14 * 60 * 1000)
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    sf_emu.clock.advance(15 * 60 * 1000 + 1)
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query_more(second["nextRecordsUrl"], identifier_is_url=True)
    assert info.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_at_most_50_cursors_stay_open(sf_emu, sf):
    """Opening a 51st cursor drops the least recently used one."""
    urls = [
        sf.query("SELECT Id FROM Account", headers={"Sforce-Query-Options": "batchSize=200"})[
            "nextRecordsUrl"
        ]
        for _ in range(51)
    ]
    assert len(sf_emu.cursors) == 50
    with pytest.raises(SalesforceMalformedRequest):
        sf.query_more(urls[0], identifier_is_url=True)
    assert len(sf.query_more(urls[1], identifier_is_url=True)["records"]) == 200


def test_pages_render_current_values_of_the_snapshot_ids(sf_emu, sf):
    """Rows changed or soft-deleted after the query started are still served, as they are now."""
    first = sf.query(
        "SELECT Id, Name, IsDeleted FROM Account ORDER BY Name",
        headers={"Sforce-Query-Options": "batchSize=500"},
    )
    later = list(sf_emu.tables["Account"].rows)[:10]  # names 0999..0990: on the second page
    sf_emu.update("Account", later[0], {"Name": "Renamed"})
    sf_emu.delete("Account", later[1])
    sf_emu.create("Account", {"Name": "Account 9999 new"})
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    by_id = {r["Id"]: r for r in second["records"]}
    assert len(second["records"]) == 500
    assert by_id[later[0]]["Name"] == "Renamed"
    assert by_id[later[1]]["IsDeleted"] is True
    assert second["totalSize"] == 1000


def test_counts_and_limit(sf):
    """COUNT() answers totalSize only; LIMIT caps totalSize."""
    assert sf.query("SELECT COUNT() FROM Account") == {
        "totalSize": 1000,
        "done": True,
        "records": [],
    }
    limited = sf.query("SELECT Id FROM Account LIMIT 250")
    assert limited["totalSize"] == 250
    assert len(limited["records"]) == 250


@pytest.fixture
def small(tls: TlsMaterial) -> Iterator[tuple[SalesforceEmulator, SmallOrg, Salesforce]]:
    emulator = SalesforceEmulator(credentials=shared_credentials())
    org = seed_small_org(emulator, accounts=3)
    with serve(emulator, tls) as server:
        yield emulator, org, simple_salesforce_client(server, tls, emulator.issue_token())


def test_query_all_sees_the_recycle_bin_but_not_deleted_team_members(small):
    """queryAll returns deleted Accounts/Opportunities with IsDeleted=true; deleted ATMs vanish."""
    sf_emu, org, sf = small
    sf_emu.delete("Opportunity", org.opportunities[0])
    sf_emu.delete("AccountTeamMember", org.members[1])
    sf_emu.delete("Account", org.accounts[2])  # cascades: its opportunities and team member
    live = sf.query_all("SELECT Id, IsDeleted FROM Account")
    assert {r["Id"] for r in live["records"]} == set(org.accounts[:2])
    every = sf.query_all("SELECT Id, IsDeleted FROM Account", include_deleted=True)
    assert {r["Id"]: r["IsDeleted"] for r in every["records"]} == {
        org.accounts[0]: False,
        org.accounts[1]: False,
        org.accounts[2]: True,
    }
    deleted_opps = sf.query_all(
        "SELECT Id FROM Opportunity WHERE IsDeleted = true", include_deleted=True
    )
    assert {r["Id"] for r in deleted_opps["records"]} == {
        org.opportunities[0],
        org.opportunities[4],
        org.opportunities[5],
    }
    assert sf.query("SELECT COUNT() FROM Opportunity")["totalSize"] == 3
    for include_deleted in (False, True):
        members = sf.query_all("SELECT Id FROM AccountTeamMember", include_deleted=include_deleted)
        assert {r["Id"] for r in members["records"]} == {org.members[0]}


def test_next_page_also_works_under_query_all_prefix(tls):
    """A locator can be fetched as /queryAll/{locator}; raw HTTP carries the limit header."""
    emulator = SalesforceEmulator(credentials=shared_credentials())
    emulator.load("Account", [{"Name": f"A{i}"} for i in range(450)])
    with serve(emulator, tls) as server:
        http: requests.Session = http_session(tls)
        headers = {
            "Authorization": f"Bearer {emulator.issue_token()}",
            "Sforce-Query-Options": "batchSize=200",
        }
        base = f"{server.url}/services/data/v59.0"
        first = http.get(
            f"{base}/queryAll/", params={"q": "SELECT Id FROM Account"}, headers=headers, timeout=10
        ).json()
        locator = first["nextRecordsUrl"].rsplit("/", 1)[1]
        assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/")
        resp = http.get(f"{base}/queryAll/{locator}/", headers=headers, timeout=10)
        assert resp.status_code == 200
        assert len(resp.json()["records"]) == 200
        assert resp.headers["Sforce-Limit-Info"] == "api-usage=2/5000000"
