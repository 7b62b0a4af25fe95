"""Salesforce emulator: Composite (/composite) with references and allOrNone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from emulators.http import EmulatorServer
from emulators.salesforce import SalesforceEmulator
from emulators.salesforce.testing import SmallOrg, http_session, seed_small_org
from emulators.tls import TlsMaterial

V = "/services/data/v62.0"


@pytest.fixture
def org(sf_emu: SalesforceEmulator) -> SmallOrg:
    return seed_small_org(sf_emu, accounts=2)


@pytest.fixture
def post(
    sf_emu: SalesforceEmulator, org: SmallOrg, server: EmulatorServer, tls: TlsMaterial
) -> Callable[[dict[str, Any]], requests.Response]:
    http: requests.Session = http_session(tls)
    headers = {"Authorization": f"Bearer {sf_emu.issue_token()}"}

    def call(body: dict[str, Any]) -> requests.Response:
        return http.post(f"{server.url}{V}/composite", json=body, headers=headers, timeout=10)

    return call


def test_references_chain_create_query_and_collections(sf_emu, org, post):
    """@{ref.id} and @{ref.records[0].Id} feed later subrequests; one API call in total."""
    body = {
        "allOrNone": True,
        "compositeRequest": [
            {"method": "POST", "url": f"{V}/sobjects/Account", "referenceId": "newAccount",
             "body": {"Name": "Composite Co", "OwnerId": org.users[0]}},
            {"method": "POST", "url": f"{V}/sobjects/AccountTeamMember", "referenceId": "member",
             "body": {"AccountId": "@{newAccount.id}", "UserId": org.users[1],
                      "AccountAccessLevel": "Edit", "TeamMemberRole": "Account Executive"}},
            {"method": "GET", "referenceId": "lookup",
             "url": f"{V}/query?q=SELECT+Id,Name+FROM+Account+WHERE+Id='@{{newAccount.id}}'"},
            {"method": "PATCH", "url": f"{V}/sobjects/Account/@{{lookup.records[0].Id}}",
             "referenceId": "rename", "body": {"Name": "@{lookup.records[0].Name} Renamed"}},
            {"method": "PATCH", "url": f"{V}/composite/sobjects", "referenceId": "bulkUpdate",
             "body": {"records": [{"attributes": {"type": "Account"}, "Id": org.accounts[0],
                                   "Health_Status__c": "Red"}]}},
        ],
    }  # fmt: skip
    resp = post(body)
    assert resp.status_code == 200
    results = resp.json()["compositeResponse"]
    assert [r["httpStatusCode"] for r in results] == [201, 201, 200, 204, 200]
    assert [r["referenceId"] for r in results] == [
        "newAccount", "member", "lookup", "rename", "bulkUpdate"
    ]  # fmt: skip
    new_id = results[0]["body"]["id"]
    assert results[0]["httpHeaders"] == {"Location": f"{V}/sobjects/Account/{new_id}"}
    assert results[3]["body"] is None
    assert results[4]["body"] == [{"id": org.accounts[0], "success": True, "errors": []}]
    assert sf_emu.get("Account", new_id)["Name"] == "Composite Co Renamed"
    assert sf_emu.get("AccountTeamMember", results[1]["body"]["id"])["AccountId"] == new_id
    assert sf_emu.get("Account", org.accounts[0])["Health_Status__c"] == "Red"
    assert sf_emu.api_usage == 1
    (logged,) = sf_emu.log.calls(operation="composite")
    assert logged.kind == "write"


def test_all_or_none_failure_halts_and_rolls_back(sf_emu, org, post):
    """allOrNone=true: the failing subrequest keeps its error, all others PROCESSING_HALTED."""
    before = {name: len(t) for name, t in sf_emu.tables.items()}
    body = {
        "allOrNone": True,
        "compositeRequest": [
            {"method": "POST", "url": f"{V}/sobjects/Account", "referenceId": "acc",
             "body": {"Name": "Doomed"}},
            {"method": "DELETE", "url": f"{V}/sobjects/AccountTeamMember/{org.members[0]}",
             "referenceId": "drop"},
            {"method": "POST", "url": f"{V}/sobjects/AccountTeamMember", "referenceId": "bad",
             "body": {"AccountId": "@{acc.id}", "UserId": org.inactive_user,
                      "AccountAccessLevel": "Edit"}},
            {"method": "GET", "url": f"{V}/sobjects/Account/@{{acc.id}}", "referenceId": "after"},
        ],
    }  # fmt: skip
    results = post(body).json()["compositeResponse"]
    assert [r["httpStatusCode"] for r in results] == [400, 400, 400, 400]
    assert results[2]["body"][0]["errorCode"] == "INACTIVE_OWNER_OR_USER"
    halted = [{"errorCode": "PROCESSING_HALTED", "message": "The transaction was rolled back "
               "since another operation in the same transaction failed."}]  # fmt: skip
    assert results[0]["body"] == halted
    assert results[1]["body"] == halted
    assert results[3]["body"] == halted
    assert {name: len(t) for name, t in sf_emu.tables.items()} == before
    assert sf_emu.get("AccountTeamMember", org.members[0]) is not None


def test_without_all_or_none_dependents_of_a_failure_halt(sf_emu, org, post):
    """allOrNone=false: others commit; a subrequest referencing a failed one is halted."""
    body = {
        "compositeRequest": [
            {"method": "POST", "url": f"{V}/sobjects/Account", "referenceId": "bad",
             "body": {"Name": "x", "Sales_Segment__c": "Huge"}},
            {"method": "POST", "url": f"{V}/sobjects/Opportunity", "referenceId": "opp",
             "body": {"Name": "Dependent", "AccountId": "@{bad.id}", "StageName": "Prospecting",
                      "CloseDate": "2024-12-31"}},
            {"method": "POST", "url": f"{V}/sobjects/Account", "referenceId": "good",
             "body": {"Name": "Independent"}},
        ],
    }  # fmt: skip
    results = post(body).json()["compositeResponse"]
    assert [r["httpStatusCode"] for r in results] == [400, 400, 201]
    assert results[0]["body"][0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    (halted,) = results[1]["body"]
    assert halted["errorCode"] == "PROCESSING_HALTED"
    assert halted["message"].startswith("Invalid reference specified. No value for bad.id")
    assert sf_emu.get("Account", results[2]["body"]["id"])["Name"] == "Independent"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"compositeRequest": [{"method": "GET", "url": f"{V}/limits", "referenceId": f"r{i}"}
                               for i in range(26)]}, "LIMIT_EXCEEDED"),
        ({"compositeRequest": [{"method": "GET", "url": f"{V}/limits"}]}, "JSON_PARSER_ERROR"),
        ({"compositeRequest": [{"method": "GET", "url": f"{V}/limits", "referenceId": "a"},
                               {"method": "GET", "url": f"{V}/limits", "referenceId": "a"}]},
         "INVALID_API_INPUT"),
        ({"allOrNone": True}, "JSON_PARSER_ERROR"),
    ],
)  # fmt: skip
def test_malformed_composite_bodies_are_refused(sf_emu, post, body, code):
    """More than 25 subrequests or a malformed body answers 400 for the whole call."""
    resp = post(body)
    assert resp.status_code == 400
    assert resp.json()[0]["errorCode"] == code


def test_read_only_composite_is_logged_as_read(sf_emu, org, post):
    """A composite of GETs counts one read call; 25 subrequests are allowed."""
    body = {
        "compositeRequest": [
            {"method": "GET", "url": f"{V}/sobjects/Account/{org.accounts[i % 2]}",
             "referenceId": f"get{i}"}
            for i in range(25)
        ]
    }  # fmt: skip
    results = post(body).json()["compositeResponse"]
    assert all(r["httpStatusCode"] == 200 for r in results)
    (logged,) = sf_emu.log.calls(operation="composite")
    assert logged.kind == "read"
    assert logged.records == 25
    assert sf_emu.api_usage == 1
