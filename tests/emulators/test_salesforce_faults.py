"""Salesforce emulator: fault injection, quota and API accounting."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from simple_salesforce.exceptions import SalesforceGeneralError, SalesforceRefusedRequest

from emulators.http import EmulatorServer
from emulators.salesforce import SalesforceEmulator
from emulators.salesforce.testing import (
    SmallOrg,
    http_session,
    seed_small_org,
    simple_salesforce_client,
)
from emulators.tls import TlsMaterial

V = "/services/data/v62.0"


# Every test runs against the seeded org, also where it does not name ``org``.
pytestmark = pytest.mark.usefixtures("org")


@pytest.fixture
def org(sf_emu: SalesforceEmulator) -> SmallOrg:
    return seed_small_org(sf_emu, accounts=3)


class Raw:
    def __init__(self, server: EmulatorServer, token: str, http: requests.Session) -> None:
        self.url = server.url
        self.http = http
        self.auth = {"Authorization": f"Bearer {token}"}

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(
            method, f"{self.url}{path}", headers=self.auth, timeout=10, **kwargs
        )

    def query(self, soql: str = "SELECT Id FROM Account") -> requests.Response:
        return self("GET", f"{V}/query", params={"q": soql})


@pytest.fixture
def raw(sf_emu: SalesforceEmulator, server: EmulatorServer, tls: TlsMaterial) -> Raw:
    return Raw(server, sf_emu.issue_token(), http_session(tls))


def test_429_carries_retry_after_and_an_error_list(sf_emu, raw):
    """An injected 429 answers REQUEST_LIMIT_EXCEEDED with Retry-After and is not counted."""
    sf_emu.faults.configure(retry_after_seconds=7)
    sf_emu.faults.fail_next(429)
    resp = raw.query()
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "7"
    assert resp.json() == [{"message": "Too many requests", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert sf_emu.api_usage == 0
    assert raw.query().status_code == 200
    assert sf_emu.log.calls(operation="query")[0].status == 429


def test_503_and_rates(sf_emu, raw):
    """503 has the SERVER_UNAVAILABLE body; rate_503=1 fails every data call."""
    sf_emu.faults.configure(rate_503=1.0)
    resp = raw.query()
    assert resp.status_code == 503
    assert resp.json() == [{"message": "Server unavailable", "errorCode": "SERVER_UNAVAILABLE"}]
    assert resp.headers["Retry-After"] == "1"
    assert "Sforce-Limit-Info" in resp.headers
    sf_emu.faults.configure(rate_503=0.0)
    assert raw.query().status_code == 200


def test_daily_quota_refuses_with_403(sf_emu, raw, tls, server):
    """Once api-usage reaches daily_quota, calls get 403 REQUEST_LIMIT_EXCEEDED."""
    sf_emu.faults.configure(daily_quota=3)
    statuses = [raw.query().status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 403]
    refused = raw.query()
    assert refused.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert refused.headers["Sforce-Limit-Info"] == "api-usage=3/3"
    sf = simple_salesforce_client(server, tls, sf_emu.issue_token())
    with pytest.raises(SalesforceRefusedRequest):
        sf.query("SELECT Id FROM Account")


def test_lock_row_fails_single_records_in_a_collection(sf_emu, org, raw):
    """UNABLE_TO_LOCK_ROW hits only the configured record; the others commit."""
    sf_emu.faults.configure(lock_row_ids={org.accounts[1]})
    records = [
        {"attributes": {"type": "Account"}, "Id": aid, "Health_Status__c": "Yellow"}
        for aid in org.accounts
    ]
    results = raw("PATCH", f"{V}/composite/sobjects", json={"records": records}).json()
    assert [r["success"] for r in results] == [True, False, True]
    assert results[1]["errors"] == [
        {
            "statusCode": "UNABLE_TO_LOCK_ROW",
            "message": "unable to obtain exclusive access to this record or 1 records: "
            f"{org.accounts[1]}",
            "fields": [],
        }
    ]
    assert sf_emu.get("Account", org.accounts[1])["Health_Status__c"] is None
    again = raw("PATCH", f"{V}/composite/sobjects", json={"records": records[1:2]}).json()
    assert again[0]["success"] is True  # lock_row_ids fail once


def test_lock_row_rate_on_single_record_calls(sf_emu, org, raw):
    """lock_row_rate=1 makes single-record writes answer 400 UNABLE_TO_LOCK_ROW."""
    sf_emu.faults.configure(lock_row_rate=1.0)
    resp = raw("PATCH", f"{V}/sobjects/Account/{org.accounts[0]}", json={"Name": "x"})
    assert resp.status_code == 400
    assert resp.json()[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"
    assert sf_emu.get("Account", org.accounts[0])["Name"] == "Account 000"


def test_latency_is_added_to_data_calls(sf_emu, raw):
    """latency_ms delays each data call."""
    sf_emu.faults.configure(latency_ms=150)
    started = time.perf_counter()
    assert raw.query().status_code == 200
    assert time.perf_counter() - started >= 0.15


def test_limit_header_counts_every_data_call(sf_emu, raw):
    """Sforce-Limit-Info is on every data response and counts calls; the versions list has none."""
    seen = [raw.query().headers["Sforce-Limit-Info"] for _ in range(3)]
    assert seen == [f"api-usage={n}/5000000" for n in (1, 2, 3)]
    bad = raw("GET", f"{V}/sobjects/Nope/describe")
    assert bad.status_code == 404
    assert bad.headers["Sforce-Limit-Info"] == "api-usage=4/5000000"
    versions = raw("GET", "/services/data/")
    assert versions.status_code == 200
    assert "Sforce-Limit-Info" not in versions.headers
    assert {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"} in (
        versions.json()
    )
    assert sf_emu.api_usage == 4


@pytest.mark.parametrize("version", ["19.0", "67.0", "62"])
def test_unsupported_versions_are_not_found(sf_emu, raw, version):
    """Versions outside 20.0-66.0 answer 404 NOT_FOUND."""
    resp = raw("GET", f"/services/data/v{version}/limits")
    assert resp.status_code == 404
    assert resp.json() == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]


def test_other_forced_statuses_map_to_client_errors(sf_emu, server, tls):
    """A forced 500 surfaces in simple-salesforce as SalesforceGeneralError."""
    sf_emu.faults.fail_next(500)
    sf = simple_salesforce_client(server, tls, sf_emu.issue_token())
    with pytest.raises(SalesforceGeneralError) as info:
        sf.query("SELECT Id FROM Account")
    assert info.value.status == 500


def test_log_entries_name_object_kind_and_records(sf_emu, org, raw):
    """The request log records api, object, kind, operation and record counts."""
    raw.query("SELECT Id FROM Opportunity")
    raw("POST", f"{V}/sobjects/Account/", json={"Name": "Logged"})
    raw("GET", f"{V}/limits/")
    calls = sf_emu.log.calls(api="salesforce")
    assert [(c.object, c.kind, c.operation, c.records) for c in calls] == [
        ("Opportunity", "read", "query", 6),
        ("Account", "write", "sobject.create", 1),
        (None, "read", "limits", 0),
    ]


def test_admin_endpoints_configure_faults_without_counting(sf_emu, raw):
    """/__emulator/faults sets faults over HTTP; admin calls are not counted."""
    resp = raw("PUT", "/__emulator/faults", json={"fail_next": [503], "retry_after_seconds": 2})
    assert resp.json()["scheduled"] == [503]
    failed = raw.query()
    assert failed.status_code == 503
    assert failed.headers["Retry-After"] == "2"
    assert raw("DELETE", "/__emulator/faults").json()["retry_after_seconds"] == 1
    assert raw("POST", "/__emulator/sessions/expire").status_code == 204
    assert raw.query().status_code == 401
    assert sf_emu.api_usage == 0
