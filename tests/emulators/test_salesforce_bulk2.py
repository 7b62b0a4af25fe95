"""Salesforce emulator: Bulk API 2.0 ingest and query jobs."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
import requests

from emulators.http import EmulatorServer
from emulators.salesforce import SalesforceEmulator
from emulators.salesforce.testing import SmallOrg, http_session, seed_small_org
from emulators.tls import TlsMaterial

V = "/services/data/v62.0"


# Every test runs against the seeded org, also where it does not name ``org``.
pytestmark = pytest.mark.usefixtures("org")


@pytest.fixture
def org(sf_emu: SalesforceEmulator) -> SmallOrg:
    return seed_small_org(sf_emu, accounts=5)


class Raw:
    def __init__(self, server: EmulatorServer, token: str, http: requests.Session) -> None:
        self.base = f"{server.url}{V}/jobs"
        self.http = http
        self.auth = {"Authorization": f"Bearer {token}"}

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.auth, **kwargs.pop("headers", {})}
        return self.http.request(
            method, f"{self.base}/{path}", headers=headers, timeout=10, **kwargs
        )


@pytest.fixture
def raw(sf_emu: SalesforceEmulator, server: EmulatorServer, tls: TlsMaterial) -> Raw:
    return Raw(server, sf_emu.issue_token(), http_session(tls))


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_query_job_streams_csv_chunks(sf_emu, org, sf):
    """A query job returns CSV chunks in SELECT order with relationship columns and empty nulls."""
    sf_emu.update("Account", org.accounts[1], {"Sales_Segment__c": None})
    chunks = list(
        sf.bulk2.Account.query(
            "SELECT Id, Name, Owner.Email, Sales_Segment__c, SystemModstamp FROM Account "
            "ORDER BY Name",
            max_records=2,
            wait=0,
        )
    )
    assert len(chunks) == 3
    header = chunks[0].splitlines()[0]
    assert header == '"Id","Name","Owner.Email","Sales_Segment__c","SystemModstamp"'
    rows = [row for chunk in chunks for row in rows_of(chunk)]
    assert [r["Name"] for r in rows] == [f"Account {i:03d}" for i in range(5)]
    assert rows[0]["Owner.Email"] == "user0@teamsync.example"
    assert rows[0]["SystemModstamp"].endswith(".000Z")
    assert chunks[0].splitlines()[2].split(",")[3] == ""  # null: empty and unquoted
    results_calls = sf_emu.log.calls(operation="bulk2.query.results")
    assert [c.records for c in results_calls] == [2, 2, 1]
    assert sf_emu.log.count(operation="bulk2.query.create", kind="read") == 1


def test_query_all_job_includes_deleted_rows(sf_emu, org, sf):
    """operation queryAll sees Recycle Bin rows; query does not."""
    sf_emu.delete("Opportunity", org.opportunities[0])
    live = "".join(sf.bulk2.Opportunity.query("SELECT Id FROM Opportunity", wait=0))
    every = "".join(sf.bulk2.Opportunity.query_all("SELECT Id, IsDeleted FROM Opportunity", wait=0))
    assert len(rows_of(live)) == 9
    deleted = [r for r in rows_of(every) if r["IsDeleted"] == "true"]
    assert [r["Id"] for r in deleted] == [org.opportunities[0]]


def test_ingest_insert_reports_successes_and_failures(sf_emu, org, sf):
    """An insert job creates good rows and lists bad ones with sf__Error CODE:message."""
    records = [
        {"Name": "Bulk One", "OwnerId": org.users[0], "Sales_Segment__c": "SMB"},
        {"Name": "Bulk Two", "OwnerId": org.inactive_user, "Sales_Segment__c": "SMB"},
        {"Name": "Bulk Three", "OwnerId": org.users[1], "Sales_Segment__c": "Galactic"},
        {"Name": "Bulk Four", "OwnerId": org.users[2], "Sales_Segment__c": ""},
    ]
    (result,) = sf.bulk2.Account.insert(records=records, wait=0)
    assert result["numberRecordsProcessed"] == 4
    assert result["numberRecordsFailed"] == 2
    job_id = result["job_id"]
    failed = rows_of(sf.bulk2.Account.get_failed_records(job_id))
    assert [(r["Name"], r["sf__Id"]) for r in failed] == [("Bulk Two", ""), ("Bulk Three", "")]
    assert failed[0]["sf__Error"].startswith("INACTIVE_OWNER_OR_USER:operation performed with")
    assert failed[1]["sf__Error"] == (
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:bad value for restricted picklist field: Galactic"
    )
    ok = rows_of(sf.bulk2.Account.get_successful_records(job_id))
    assert [(r["Name"], r["sf__Created"]) for r in ok] == [
        ("Bulk One", "true"),
        ("Bulk Four", "true"),
    ]
    assert sf_emu.get("Account", ok[0]["sf__Id"])["Sales_Segment__c"] == "SMB"
    assert sf_emu.get("Account", ok[1]["sf__Id"])["Sales_Segment__c"] is None
    assert rows_of(sf.bulk2.Account.get_unprocessed_records(job_id)) == []
    assert sf_emu.log.records(operation="bulk2.ingest.close", kind="write") == 2


def test_ingest_update_and_delete(sf_emu, org, sf):
    """update sets fields (#N/A nulls one) and delete moves rows to the Recycle Bin."""
    (updated,) = sf.bulk2.Account.update(
        records=[
            {"Id": org.accounts[0], "Health_Status__c": "Red", "NumberOfEmployees": "#N/A"},
            {"Id": org.accounts[1][:15], "Health_Status__c": "Green", "NumberOfEmployees": "7"},
        ],
        wait=0,
    )
    assert updated["numberRecordsFailed"] == 0
    assert sf_emu.get("Account", org.accounts[0])["NumberOfEmployees"] is None
    assert sf_emu.get("Account", org.accounts[1])["NumberOfEmployees"] == 7
    (deleted,) = sf.bulk2.AccountTeamMember.delete(
        records=[{"Id": org.members[0]}, {"Id": org.members[0]}], wait=0
    )
    assert deleted["numberRecordsFailed"] == 1
    assert sf_emu.get("AccountTeamMember", org.members[0]) is None


def test_query_jobs_refuse_count_and_offset(raw):
    """COUNT() and OFFSET are not supported by Bulk API 2.0 query jobs."""
    for soql in ("SELECT COUNT() FROM Account", "SELECT Id FROM Account LIMIT 5 OFFSET 1"):
        resp = raw("POST", "query", json={"operation": "query", "query": soql})
        assert resp.status_code == 400
        assert resp.json()[0]["errorCode"] == "INVALIDJOB"
    bad = raw("POST", "query", json={"operation": "query", "query": "SELECT Nope FROM Account"})
    assert bad.json()[0]["errorCode"] == "INVALID_FIELD"


def test_query_results_headers(raw):
    """Results carry Sforce-NumberOfRecords and an opaque locator, 'null' on the last chunk."""
    job = raw("POST", "query", json={"operation": "query", "query": "SELECT Id FROM User"}).json()
    assert job["state"] == "UploadComplete"
    assert raw("GET", f"query/{job['id']}").json()["state"] == "JobComplete"
    first = raw("GET", f"query/{job['id']}/results", params={"maxRecords": 3})
    assert first.headers["Content-Type"].startswith("text/csv")
    assert first.headers["Sforce-NumberOfRecords"] == "3"
    locator = first.headers["Sforce-Locator"]
    assert locator not in ("", "null")
    last = raw("GET", f"query/{job['id']}/results", params={"maxRecords": 3, "locator": locator})
    assert last.headers["Sforce-NumberOfRecords"] == "1"
    assert last.headers["Sforce-Locator"] == "null"
    assert raw("DELETE", f"query/{job['id']}").status_code == 204
    assert raw("GET", f"query/{job['id']}").status_code == 404


def test_ingest_job_lifecycle_over_raw_http(sf_emu, raw):
    """Upload 201, state rules, abort keeps rows unprocessed, a bad header fails the job."""
    create = {"object": "Account", "operation": "insert", "contentType": "CSV",
              "lineEnding": "LF", "columnDelimiter": "COMMA"}  # fmt: skip
    job = raw("POST", "ingest", json=create).json()
    assert job["state"] == "Open"
    assert job["contentUrl"] == f"services/data/v62.0/jobs/ingest/{job['id']}/batches"
    upload = raw(
        "PUT",
        f"ingest/{job['id']}/batches",
        data="Name\nAborted A\nAborted B\n",
        headers={"Content-Type": "text/csv"},
    )
    assert upload.status_code == 201
    assert upload.content == b""
    aborted = raw("PATCH", f"ingest/{job['id']}", json={"state": "Aborted"}).json()
    assert aborted["state"] == "Aborted"
    unprocessed = raw("GET", f"ingest/{job['id']}/unprocessedRecords/")
    assert rows_of(unprocessed.text) == [{"Name": "Aborted A"}, {"Name": "Aborted B"}]
    late = raw("PUT", f"ingest/{job['id']}/batches", data="Name\nx\n")
    assert late.status_code == 409

    broken = raw("POST", "ingest", json=create).json()
    raw("PUT", f"ingest/{broken['id']}/batches", data="Name,Shoe_Size__c\nA,42\n")
    closed = raw("PATCH", f"ingest/{broken['id']}", json={"state": "UploadComplete"}).json()
    assert closed["state"] == "UploadComplete"
    info = raw("GET", f"ingest/{broken['id']}").json()
    assert info["state"] == "Failed"
    assert info["errorMessage"] == "InvalidBatch : Field name not found : Shoe_Size__c"
    assert info["jobType"] == "V2Ingest"

    listed = raw("GET", "ingest").json()
    assert {j["id"] for j in listed["records"]} == {job["id"], broken["id"]}
    assert listed["done"] is True
    assert raw("DELETE", f"ingest/{job['id']}").status_code == 204
    assert sf_emu.log.count(operation="bulk2.ingest.upload", kind="write") == 3  # one refused
    assert sf_emu.bulk2.batches_used == 2
    assert len(sf_emu.tables["Account"]) == 5


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"object": "Nope", "operation": "insert"}, "Unable to find object: Nope"),
        ({"object": "Account", "operation": "merge"}, "Invalid operation: merge"),
        ({"object": "Account", "operation": "upsert"}, "External ID field is required"),
        ({"object": "Account", "operation": "upsert", "externalIdFieldName": "Name"},
         "not an External ID field"),
        ({"object": "Account", "operation": "insert", "columnDelimiter": "DOT"},
         "Invalid columnDelimiter"),
    ],
)  # fmt: skip
def test_bad_ingest_job_requests(raw, body, fragment):
    """Invalid job definitions are refused with INVALIDJOB."""
    resp = raw("POST", "ingest", json=body)
    assert resp.status_code == 400
    (error,) = resp.json()
    assert error["errorCode"] == "INVALIDJOB"
    assert fragment in error["message"]


def test_upsert_on_id_inserts_and_updates(sf_emu, org, raw):
    """upsert with externalIdFieldName Id updates rows with an Id and inserts the others."""
    job = raw(
        "POST", "ingest", json={"object": "Account", "operation": "upsert",
                                "externalIdFieldName": "Id"}
    ).json()  # fmt: skip
    raw(
        "PUT",
        f"ingest/{job['id']}/batches",
        data=f"Id,Name\r\n{org.accounts[0]},Renamed\r\n,Brand new\r\n",
    )
    raw("PATCH", f"ingest/{job['id']}", json={"state": "UploadComplete"})
    ok = rows_of(raw("GET", f"ingest/{job['id']}/successfulResults/").text)
    assert [(r["Name"], r["sf__Created"]) for r in ok] == [("Renamed", "false"),
                                                           ("Brand new", "true")]  # fmt: skip
    assert sf_emu.get("Account", org.accounts[0])["Name"] == "Renamed"
