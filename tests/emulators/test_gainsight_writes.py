"""The Gainsight emulator's Company writes (insert, update by keys, lookups, delete) over HTTPS."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from emulators.gainsight import GainsightEmulator
from emulators.store import Clock

T0 = 1_700_000_000_000
MINUTE = 60_000
COMPANY = "/v1/data/objects/Company"


@pytest.fixture
def gs_emu() -> GainsightEmulator:
    # Lenient: these tests pin the per-record partial-failure shape, the lenient reading of G2
    # (the strict profile rejects a batch with one bad record whole: test_profiles_gainsight.py).
    gs_emu = GainsightEmulator(clock=Clock(T0), profile="lenient")
    gs_emu.load(
        "gsuser",
        [
            {"Name": "Jane Doe", "Email": "jane@vendor.com"},
            {"Name": "Bob Roe", "Email": "bob@vendor.com"},
            {"Name": "Bob Twin", "Email": "BOB@vendor.com"},
        ],
    )
    gs_emu.load(
        "company",
        [
            {"Name": "Acme", "SfdcAccountId": "001000000000001AAA", "Arr": 100},
            {"Name": "Beta", "SfdcAccountId": "001000000000002AAA", "Arr": 200},
            {"Name": "Beta", "SfdcAccountId": "001000000000003AAA", "Arr": 300},
        ],
    )
    return gs_emu


def ids(gs_emu: GainsightEmulator, obj: str = "company") -> list[str]:
    return gs_emu.tables[obj].ids()


def by_name(gs_emu: GainsightEmulator, name: str) -> dict[str, Any]:
    (row,) = [r for g in ids(gs_emu) if (r := gs_emu.get("company", g)) and r["Name"] == name]
    return row


def user(gs_emu: GainsightEmulator, email: str) -> str:
    (gsid,) = [
        g for g in ids(gs_emu, "gsuser") if gs_emu.tables["gsuser"].value(g, "Email") == email
    ]
    return gsid


def update(client: httpx.Client, keys: str, body: dict[str, Any]) -> httpx.Response:
    return client.put(COMPANY, params={"keys": keys}, json=body)


def test_insert_returns_gsids_and_stamps(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """Insert answers count and the new Gsids in order; the rows carry audit stamps."""
    response = client.post(
        COMPANY,
        json={
            "records": [
                {"Name": "New One", "Arr": 5, "RenewalDate": "2025-12-31", "Stage": "Kicked Off"},
                {"Name": "New Two", "RenewalDate": 1_767_139_200_000},
            ]
        },
    )
    assert response.status_code == 200
    payload = response.json()
    assert payload["result"] is True
    assert payload["data"]["count"] == 2
    assert payload["data"]["errors"] is None
    first, second = (r["Gsid"] for r in payload["data"]["records"])
    row = gs_emu.get("Company", first)
    assert row is not None
    assert row["Name"] == "New One"
    assert row["RenewalDate"] == 1_767_139_200_000  # date stored as midnight UTC epoch ms
    assert row["Stage"] == gs_emu.picklists.gsid("COMPANY_STAGE", "Kicked Off")
    assert row["CreatedDate"] == row["ModifiedDate"] == T0
    assert gs_emu.get("Company", second)["RenewalDate"] == 1_767_139_200_000  # type: ignore[index]


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_more_than_50_records_is_refused_and_nothing_written(
    gs_emu: GainsightEmulator, client: httpx.Client, method: str
) -> None:
    """51 records in one write: 400 GSOBJ_1017, result false, not one record written."""
    acme = by_name(gs_emu, "Acme")["Gsid"]
    records: list[dict[str, Any]] = [{"Name": f"Bulk {i}"} for i in range(50)] + [
        {"Name": "One too many"}
    ]
    if method == "PUT":
        records = [{"Gsid": acme, "Arr": i} for i in range(51)]
    response = client.request(method, COMPANY, params={"keys": "Gsid"}, json={"records": records})
    assert response.status_code == 400
    payload = response.json()
    assert payload["result"] is False
    assert payload["errorCode"] == "GSOBJ_1017"
    assert payload["errorDesc"] == "Number of records exceeds the limit of 50"
    assert len(gs_emu.tables["company"]) == 3
    assert by_name(gs_emu, "Acme")["Arr"] == 100


def test_exactly_50_records_is_accepted(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """50 records is the documented maximum and goes through."""
    response = client.post(COMPANY, json={"records": [{"Name": f"Bulk {i}"} for i in range(50)]})
    assert response.json()["data"]["count"] == 50
    assert len(gs_emu.tables["company"]) == 53


def test_update_by_gsid_with_email_lookup(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """keys=Gsid + a CsmEmail -> GsUser.Email lookup writes the user Gsid; ModifiedDate moves."""
    acme = by_name(gs_emu, "Acme")["Gsid"]
    gs_emu.clock.advance(MINUTE)
    response = update(
        client,
        "Gsid",
        {
            "records": [{"Gsid": acme, "CsmEmail": "JANE@vendor.com", "Arr": 150}],
            "lookups": {
                "Csm": {
                    "fields": {"CsmEmail": "Email"},
                    "lookupField": "Gsid",
                    "objectName": "gsuser",
                    "multiMatchOption": "FIRSTMATCH",
                    "onNoMatch": "ERROR",
                }
            },
        },
    )
    payload = response.json()
    assert response.status_code == 200, payload
    assert payload["data"]["count"] == 1
    assert payload["data"]["records"][0]["Gsid"] == acme
    row = by_name(gs_emu, "Acme")
    assert row["Csm"] == user(gs_emu, "jane@vendor.com")
    assert row["Arr"] == 150
    assert row["ModifiedDate"] == T0 + MINUTE
    assert row["CreatedDate"] == T0


def test_lookup_field_takes_a_gsuser_gsid_directly(
    gs_emu: GainsightEmulator, client: httpx.Client
) -> None:
    """The team fields accept a GsUser Gsid as is (the teamsync default write)."""
    acme = by_name(gs_emu, "Acme")["Gsid"]
    jane = user(gs_emu, "jane@vendor.com")
    response = update(
        client, "Gsid", {"records": [{"Gsid": acme, "AccountExecutive__gc": jane, "Csm": jane}]}
    )
    assert response.json()["data"]["count"] == 1
    row = by_name(gs_emu, "Acme")
    assert row["AccountExecutive__gc"] == jane
    assert row["Csm"] == jane


def test_update_matches_on_all_keys(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """keys=Name,SfdcAccountId updates only the record matching both."""
    response = update(
        client,
        "Name,SfdcAccountId",
        {"records": [{"Name": "Beta", "SfdcAccountId": "001000000000003AAA", "Arr": 999}]},
    )
    assert response.json()["data"]["count"] == 1
    arrs = sorted(
        r["Arr"] for g in ids(gs_emu) if (r := gs_emu.get("company", g)) and r["Name"] == "Beta"
    )
    assert arrs == [200, 999]


def test_partial_failures_are_reported_per_record_and_the_rest_commit(
    gs_emu: GainsightEmulator, client: httpx.Client
) -> None:
    """Bad records get per-record errors with their index; the good ones are written."""
    acme = by_name(gs_emu, "Acme")["Gsid"]
    betas = [g for g in ids(gs_emu) if gs_emu.tables["company"].value(g, "Name") == "Beta"]
    records = [
        {"Gsid": acme, "CsmEmail": "jane@vendor.com"},  # 0 ok
        {"Gsid": "1P02NOSUCHCOMPANY0000000000000000000", "Arr": 1},  # 1 no match
        {"Gsid": betas[0], "CsmEmail": "nobody@vendor.com"},  # 2 lookup no match
        {"Gsid": betas[1], "RenewalDate": "31/12/2025"},  # 3 bad date
        {"Gsid": betas[1], "RiskFlags__gc": "X" * 4001},  # 4 too long
        {"Gsid": betas[1], "Stage": "xyz"},  # 5 unknown dropdown item
        {"Gsid": betas[1], "AccountExecutive__gc": "1P01NOSUCHUSER00000000000000000000"},  # 6
        {"Gsid": betas[1], "Arr": "lots"},  # 7 not a number
        {"Gsid": betas[0], "Arr": 201},  # 8 ok
    ]
    lookups = {
        "Csm": {"fields": {"CsmEmail": "Email"}, "objectName": "GsUser", "onNoMatch": "ERROR"}
    }
    response = update(client, "Gsid", {"records": records, "lookups": lookups})
    assert response.status_code == 200
    payload = response.json()
    assert payload["result"] is True
    data = payload["data"]
    assert data["count"] == 2
    assert [r["Gsid"] for r in data["records"]] == [acme, betas[0]]
    errors = {e["index"]: e for e in data["errors"]}
    assert {i: e["errorCode"] for i, e in errors.items()} == {
        1: "GSOBJ_1011",
        2: "GSOBJ_1011",
        3: "GSOBJ_1006",
        4: "GSOBJ_1001",
        5: "GSOBJ_1012",
        6: "GSOBJ_1004",
        7: "GSOBJ_1002",
    }
    assert errors[1]["record"] == {"Gsid": "1P02NOSUCHCOMPANY0000000000000000000"}
    assert errors[5]["errorDesc"] == "Invalid/Inactive value provided for picklist. (Stage = xyz)."
    assert errors[5]["errors"][0] == {
        "errorMessage": "Invalid/Inactive value provided for picklist.",
        "errorCode": "GSOBJ_1012",
        "fieldName": "Stage",
        "invalidValue": ["xyz"],
    }
    assert by_name(gs_emu, "Acme")["Csm"] == user(gs_emu, "jane@vendor.com")
    assert gs_emu.get("company", betas[0])["Arr"] == 201  # type: ignore[index]
    untouched = gs_emu.get("company", betas[1])
    assert untouched is not None
    assert untouched["RenewalDate"] is None
    assert untouched["Stage"] is None
    assert untouched["Arr"] == 300


def test_all_records_failing_is_result_false(
    gs_emu: GainsightEmulator, client: httpx.Client
) -> None:
    """When every record fails the answer is result:false with the per-record errors."""
    response = update(client, "Gsid", {"records": [{"Gsid": "1P02MISSING", "Arr": 1}]})
    assert response.status_code == 400
    payload = response.json()
    assert payload["result"] is False
    assert payload["errorCode"] == "GSOBJ_1011"
    assert payload["data"]["count"] == 0
    assert payload["data"]["records"] == []
    assert payload["data"]["errors"][0]["index"] == 0


@pytest.mark.parametrize(
    ("option", "expected"),
    [("NULLABLE", None), ("DEFAULTVALUE", "default"), ("ERROR", "unchanged")],
)
def test_lookup_on_no_match_options(
    gs_emu: GainsightEmulator, client: httpx.Client, option: str, expected: str | None
) -> None:
    """onNoMatch NULLABLE clears the field, DEFAULTVALUE writes the default, ERROR fails it."""
    acme = by_name(gs_emu, "Acme")["Gsid"]
    jane, bob = user(gs_emu, "jane@vendor.com"), user(gs_emu, "bob@vendor.com")
    gs_emu.update("company", acme, {"Csm": jane})
    cfg = {"fields": {"CsmEmail": "Email"}, "objectName": "GSUSER", "onNoMatch": option}
    if option == "DEFAULTVALUE":
        cfg["defaultValue"] = bob
    body = {"records": [{"Gsid": acme, "CsmEmail": "ghost@vendor.com"}], "lookups": {"Csm": cfg}}
    payload = update(client, "Gsid", body).json()
    want = {"default": bob, "unchanged": jane}.get(expected or "")
    assert by_name(gs_emu, "Acme")["Csm"] == want
    assert payload["result"] is (option != "ERROR")


def test_lookup_multi_match(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """Two users share an e-mail (case aside): FIRSTMATCH takes the first, MARKASERROR fails."""
    acme = by_name(gs_emu, "Acme")["Gsid"]
    cfg: dict[str, Any] = {"fields": {"CsmEmail": "Email"}, "objectName": "gsuser"}
    body = {"records": [{"Gsid": acme, "CsmEmail": "bob@VENDOR.com"}], "lookups": {"Csm": cfg}}
    update(client, "Gsid", body)
    assert by_name(gs_emu, "Acme")["Csm"] == user(gs_emu, "bob@vendor.com")
    cfg["multiMatchOption"] = "MARKASERROR"
    payload = update(client, "Gsid", body).json()
    assert payload["data"]["errors"][0]["errorCode"] == "GSOBJ_1014"


@pytest.mark.parametrize(
    ("params", "body", "code"),
    [
        ({"keys": "Gsid"}, {"records": [{"Gsid": "x", "Nope__gc": 1}]}, "GSOBJ_1002"),
        ({"keys": "Gsid"}, {"records": [{"Gsid": "x", "ModifiedDate": 1}]}, "GSOBJ_1002"),
        ({}, {"records": [{"Gsid": "x"}]}, "GSOBJ_1008"),
        ({"keys": "Name,Gsid,Arr,SfdcAccountId"}, {"records": [{"Gsid": "x"}]}, "GSOBJ_1008"),
        ({"keys": "RenewalDate"}, {"records": [{"RenewalDate": "2024-01-01"}]}, "GSOBJ_1008"),
        ({"keys": "Nope"}, {"records": [{"Gsid": "x"}]}, "GSOBJ_1002"),
        ({"keys": "Gsid"}, {"records": []}, "GSOBJ_1008"),
        ({"keys": "Gsid"}, {"records": [{"Gsid": "x"}], "lookups": {"Arr": {}}}, "GSOBJ_1002"),
    ],
)
def test_malformed_update_is_refused_whole(
    gs_emu: GainsightEmulator, client: httpx.Client, params: dict[str, str], body: Any, code: str
) -> None:
    """Unknown/read-only fields, bad keys or empty records fail the call with 400."""
    response = client.put(COMPANY, params=params, json=body)
    assert response.status_code == 400
    assert response.json()["errorCode"] == code


def test_insert_with_unknown_field_writes_nothing(
    gs_emu: GainsightEmulator, client: httpx.Client
) -> None:
    """One unknown field fails the whole insert with GSOBJ_1002."""
    body = {"records": [{"Name": "Fine"}, {"Name": "Bad", "Colour__gc": "red"}]}
    response = client.post(COMPANY, json=body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["errorCode"] == "GSOBJ_1002"
    assert payload["errorDesc"] == "Invalid field, please re-check data mapping"
    assert len(gs_emu.tables["company"]) == 3


def test_insert_without_name_fails_that_record(
    gs_emu: GainsightEmulator, client: httpx.Client
) -> None:
    """Name is required on insert: GSOBJ_1007 for that record, the other is created."""
    response = client.post(COMPANY, json={"records": [{"Arr": 1}, {"Name": "Named"}]})
    data = response.json()["data"]
    assert data["count"] == 1
    assert data["errors"][0]["index"] == 0
    assert data["errors"][0]["errorCode"] == "GSOBJ_1007"
    assert len(gs_emu.tables["company"]) == 4


def test_delete_company(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """DELETE by Gsid removes the company; a second delete is GSOBJ_1004."""
    acme = by_name(gs_emu, "Acme")["Gsid"]
    response = client.delete(f"{COMPANY}/{acme}")
    assert response.json()["result"] is True
    assert gs_emu.get("company", acme) is None
    assert gs_emu.delete_log[0]["RecordId"] == acme
    again = client.delete(f"{COMPANY}/{acme}")
    assert again.status_code == 400
    assert again.json()["errorCode"] == "GSOBJ_1004"


def test_gsuser_writes_are_not_served(client: httpx.Client) -> None:
    """Only Company is writable through the data API here."""
    response = client.post("/v1/data/objects/GsUser", json={"records": [{"Name": "X"}]})
    assert response.status_code == 400
    assert response.json()["errorCode"] == "GSOBJ_1023"
