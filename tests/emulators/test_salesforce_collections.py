"""Salesforce emulator: sObject Collections (/composite/sobjects)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from emulators.http import EmulatorServer
from emulators.salesforce import SalesforceEmulator
from emulators.salesforce.testing import SmallOrg, http_session, seed_small_org
from emulators.tls import TlsMaterial


class Client:
    """Raw JSON calls to the collections resource."""

    def __init__(self, base: str, token: str, http: requests.Session) -> None:
        self.base = f"{base}/services/data/v62.0"
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(
            method, f"{self.base}/{path}", headers=self.headers, timeout=10, **kwargs
        )


@pytest.fixture
def org(sf_emu: SalesforceEmulator) -> SmallOrg:
    return seed_small_org(sf_emu, accounts=3)


@pytest.fixture
def client(
    sf_emu: SalesforceEmulator, org: SmallOrg, server: EmulatorServer, tls: TlsMaterial
) -> Client:
    return Client(server.url, sf_emu.issue_token(), http_session(tls))


def account(name: str, **fields: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Account"}, "Name": name, **fields}


def test_more_than_200_records_are_refused_whole(sf_emu, client):
    """201 records: 400 EXCEEDED_ID_LIMIT, nothing written, one API call."""
    before = len(sf_emu.tables["Account"])
    resp = client.call(
        "POST",
        "composite/sobjects",
        json={"allOrNone": False, "records": [account(f"N{i}") for i in range(201)]},
    )
    assert resp.status_code == 400
    (error,) = resp.json()
    assert error["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert "cannot submit more than 200 records" in error["message"]
    assert len(sf_emu.tables["Account"]) == before
    assert sf_emu.api_usage == 1


def test_200_records_are_created_in_one_call(sf_emu, client):
    """Exactly 200 records go through; the log counts one write call carrying 200 records."""
    resp = client.call(
        "POST", "composite/sobjects", json={"records": [account(f"N{i}") for i in range(200)]}
    )
    assert resp.status_code == 200
    results = resp.json()
    assert all(r["success"] for r in results)
    names = [sf_emu.get("Account", r["id"])["Name"] for r in results]
    assert names == [f"N{i}" for i in range(200)]  # results in request order
    assert sf_emu.log.count(operation="collections.create", kind="write") == 1
    assert sf_emu.log.records(operation="collections.create") == 200


def test_partial_success_without_all_or_none(sf_emu, org, client):
    """allOrNone=false: bad rows fail with statusCode errors, good rows commit."""
    records = [
        account("Good one"),
        account("Bad segment", Sales_Segment__c="Huge"),
        {"attributes": {"type": "AccountTeamMember"}, "AccountId": org.accounts[0],
         "UserId": org.inactive_user, "AccountAccessLevel": "Edit"},
        {"Name": "No type"},
        account("Good two"),
    ]  # fmt: skip
    resp = client.call("POST", "composite/sobjects", json={"allOrNone": False, "records": records})
    assert resp.status_code == 200
    results = resp.json()
    assert [r["success"] for r in results] == [True, False, False, False, True]
    assert results[1] == {
        "success": False,
        "errors": [
            {
                "statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                "message": "bad value for restricted picklist field: Huge",
                "fields": ["Sales_Segment__c"],
            }
        ],
    }
    assert results[2]["errors"][0]["statusCode"] == "INACTIVE_OWNER_OR_USER"
    assert results[3]["errors"][0]["statusCode"] == "INVALID_TYPE"
    assert sf_emu.get("Account", results[0]["id"])["Name"] == "Good one"
    assert sf_emu.get("Account", results[4]["id"])["Name"] == "Good two"
    assert sf_emu.log.records(operation="collections.create") == 2


def test_all_or_none_rolls_everything_back(sf_emu, org, client):
    """allOrNone=true: one failure rolls back all; good rows report the rollback error."""
    before = {name: len(t) for name, t in sf_emu.tables.items()}
    atm = {"attributes": {"type": "AccountTeamMember"}, "AccountId": org.accounts[0],
           "UserId": org.users[0], "AccountAccessLevel": "Edit"}  # fmt: skip
    records = [account("Rolled back"), atm, dict(atm)]  # the second ATM is a duplicate
    resp = client.call("POST", "composite/sobjects", json={"allOrNone": True, "records": records})
    results = resp.json()
    assert resp.status_code == 200
    assert [r["success"] for r in results] == [False, False, False]
    for good in results[:2]:
        assert good["errors"] == [
            {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the "
                "request was using AllOrNone header",
                "fields": [],
            }
        ]
    assert results[2]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
    assert {name: len(t) for name, t in sf_emu.tables.items()} == before
    assert sf_emu.log.records(operation="collections.create") == 0


def test_update_and_all_or_none_update_rollback(sf_emu, org, client):
    """PATCH updates by Id; with allOrNone a bad row restores the good rows' old values."""
    a0, a1 = org.accounts[0], org.accounts[1]
    old_stamp = sf_emu.get("Account", a0)["SystemModstamp"]
    sf_emu.clock.advance(10_000)
    bad = client.call(
        "PATCH",
        "composite/sobjects",
        json={"allOrNone": True, "records": [
            {"attributes": {"type": "Account"}, "Id": a0, "Name": "Changed"},
            {"attributes": {"type": "Account"}, "Id": a1, "NumberOfEmployees": "lots"},
        ]},
    ).json()  # fmt: skip
    assert bad[0] == {"id": a0, "success": False, "errors": [bad[0]["errors"][0]]}
    assert bad[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert bad[1]["errors"][0]["statusCode"] == "INVALID_TYPE_ON_FIELD_IN_RECORD"
    restored = sf_emu.get("Account", a0)
    assert restored["Name"] == "Account 000"
    assert restored["SystemModstamp"] == old_stamp
    good = client.call(
        "PATCH",
        "composite/sobjects",
        json={"records": [
            {"attributes": {"type": "Account"}, "Id": a0[:15], "Name": "Changed"},
            {"attributes": {"type": "Account"}, "Name": "No id"},
            {"attributes": {"type": "Account"}, "Id": "001bad", "Name": "Bad id"},
        ]},
    ).json()  # fmt: skip
    assert good[0] == {"id": a0, "success": True, "errors": []}
    assert good[1]["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    assert good[2]["errors"][0]["statusCode"] == "MALFORMED_ID"
    assert good[2]["errors"][0]["fields"] == ["Id"]
    assert sf_emu.get("Account", a0)["Name"] == "Changed"


def test_delete_by_ids(sf_emu, org, client):
    """DELETE ?ids= deletes across objects, reporting each id in order."""
    ids = [org.members[0], org.opportunities[0], org.members[0], "bogus"]
    resp = client.call(
        "DELETE", "composite/sobjects", params={"ids": ",".join(ids), "allOrNone": "false"}
    )
    results = resp.json()
    assert [r["success"] for r in results] == [True, True, False, False]
    assert results[2]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    assert results[3]["errors"][0]["statusCode"] == "MALFORMED_ID"
    assert sf_emu.get("AccountTeamMember", org.members[0]) is None
    assert sf_emu.get("Opportunity", org.opportunities[0])["IsDeleted"] is True
    too_many = client.call(
        "DELETE", "composite/sobjects", params={"ids": ",".join([org.accounts[0]] * 201)}
    )
    assert too_many.status_code == 400
    assert too_many.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert sf_emu.get("Account", org.accounts[0])["IsDeleted"] is False


def test_delete_with_all_or_none_restores_hard_deleted_members(sf_emu, org, client):
    """A rolled-back delete brings a hard-deleted team member back unchanged."""
    resp = client.call(
        "DELETE",
        "composite/sobjects",
        params={"ids": f"{org.members[1]},{org.accounts[2]},{org.accounts[2]}",
                "allOrNone": "true"},
    )  # fmt: skip
    assert [r["success"] for r in resp.json()] == [False, False, False]
    member = sf_emu.get("AccountTeamMember", org.members[1])
    assert member is not None
    assert member["AccountId"] == org.accounts[1]
    assert sf_emu.get("Account", org.accounts[2])["IsDeleted"] is False
    assert sf_emu.get("Opportunity", org.opportunities[4])["IsDeleted"] is False


def test_retrieve_by_ids(sf_emu, org, client):
    """GET and POST /composite/sobjects/{obj} return records in order, null when missing."""
    missing = sf_emu.tables["Account"].new_id()
    got = client.call(
        "GET",
        "composite/sobjects/Account",
        params={"ids": f"{org.accounts[1]},{missing}", "fields": "Name,OwnerId"},
    ).json()
    assert got[0]["Name"] == "Account 001"
    assert set(got[0]) == {"attributes", "Name", "OwnerId"}
    assert got[1] is None
    posted = client.call(
        "POST",
        "composite/sobjects/Account",
        json={"ids": [org.accounts[0][:15]], "fields": ["Id", "Sales_Segment__c"]},
    ).json()
    assert posted == [
        {
            "attributes": {
                "type": "Account",
                "url": f"/services/data/v62.0/sobjects/Account/{org.accounts[0]}",
            },
            "Id": org.accounts[0],
            "Sales_Segment__c": "Enterprise",
        }
    ]
    assert sf_emu.log.count(operation="collections.retrieve", kind="read") == 2
