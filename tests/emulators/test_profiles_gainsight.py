"""Gainsight emulator, strict profile and tenant switches (``reference/real-tenants.md`` G1-G6)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from emulators.gainsight import GainsightEmulator
from emulators.store import Clock

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
QUERY = "/v1/data/objects/query/Company"
COMPANY = "/v1/data/objects/Company"
CTA = "/v2/cockpit/cta/"
DESCRIBE = "/v1/meta/services/objects/describe"


def seeded(profile: str) -> GainsightEmulator:
    gs_emu = GainsightEmulator(clock=Clock(T0), profile=profile)
    gs_emu.load("gsuser", [{"Name": "Jane Doe", "Email": "jane@vendor.com"}])
    gs_emu.load(
        "company",
        [
            {"Name": "Acme", "CurrentScore": 45, "PreviousScore": 80},
            {"Name": "Beta", "CurrentScore": 90},
            {"Name": "Gamma"},
        ],
    )
    return gs_emu


@pytest.fixture
def gs_emu() -> GainsightEmulator:
    return seeded("strict")


def gsid_of(gs_emu: GainsightEmulator, name: str) -> str:
    table = gs_emu.tables["company"]
    return next(g for g in table.ids() if table.value(g, "Name") == name)


def rows(client: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    answer = client.post(QUERY, json=body)
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    return data if isinstance(data, list) else data["records"]


def fields_of(client: httpx.Client, name: str) -> dict[str, dict[str, Any]]:
    answer = client.post(DESCRIBE, json={"objectNames": [name]})
    assert answer.status_code == 200
    (described,) = answer.json()["data"]
    return {f["fieldName"]: f for f in described["fields"]}


def test_score_is_a_lookup_read_through_the_scheme(
    gs_emu: GainsightEmulator, client: httpx.Client
) -> None:
    """G1: CurrentScore holds a scheme GSID; the number is CurrentScore__gr.Score."""
    got = rows(
        client,
        {"select": ["Name", "CurrentScore", "CurrentScore__gr.Score", "PreviousScore__gr.Score"],
         "orderBy": {"Name": "asc"}},
    )  # fmt: skip
    acme = got[0]
    assert isinstance(acme["CurrentScore"], str)
    assert len(acme["CurrentScore"]) == 36
    assert (acme["CurrentScore__gr.Score"], acme["PreviousScore__gr.Score"]) == (45, 80)
    assert [r["CurrentScore__gr.Score"] for r in got] == [45, 90, None]
    described = fields_of(client, "Company")["CurrentScore"]
    assert described["dataType"] == "LOOKUP"
    target = described["meta"]["lookupDetail"]["lookupObjects"][0]["objectName"]
    assert target == "ScoringSchemeDefinition"


def test_lenient_score_is_a_number(switch: tuple[Any, httpx.Client]) -> None:
    """The lenient profile keeps the numeric score field (the old reading)."""
    app, client = switch
    app.target = seeded("lenient")
    try:
        got = rows(client, {"select": ["Name", "CurrentScore"], "orderBy": {"Name": "asc"}})
        assert [r["CurrentScore"] for r in got] == [45, 90, None]
        assert fields_of(client, "Company")["CurrentScore"]["dataType"] == "NUMBER"
    finally:
        app.target = None


def test_one_invalid_record_rejects_the_whole_update(
    gs_emu: GainsightEmulator, client: httpx.Client
) -> None:
    """G2: a batch with one invalid record fails whole, without per-record data; nothing
    is written."""
    acme, beta = gsid_of(gs_emu, "Acme"), gsid_of(gs_emu, "Beta")
    body = {
        "records": [
            {"Gsid": acme, "RiskFlags__gc": "NO_CSM"},
            {"Gsid": beta, "AccountExecutive__gc": "1P01NOSUCHUSER00000000000000000000"},
        ]
    }
    answer = client.put(COMPANY, params={"keys": "Gsid"}, json=body)
    assert answer.status_code == 400
    payload = answer.json()
    assert (payload["result"], payload["errorCode"], payload["data"]) == (False, "GSOBJ_1004", None)
    assert gs_emu.get("company", acme)["RiskFlags__gc"] is None  # type: ignore[index]
    ok = client.put(COMPANY, params={"keys": "Gsid"}, json={"records": body["records"][:1]})
    assert ok.json()["result"] is True
    assert gs_emu.get("company", acme)["RiskFlags__gc"] == "NO_CSM"  # type: ignore[index]


def cta_record(gs_emu: GainsightEmulator, name: str, **extra: Any) -> dict[str, Any]:
    owner = next(iter(gs_emu.tables["gsuser"].ids()))
    return {
        "Name": name,
        "CompanyId": gsid_of(gs_emu, "Acme"),
        "type": "Risk",
        "reason": "Red Health",
        "DueDate": "2026-01-08",
        "OwnerId": owner,
        **extra,
    }


def test_one_invalid_cta_rejects_the_whole_create(
    gs_emu: GainsightEmulator, client: httpx.Client
) -> None:
    """G2 applied to the Cockpit: one bad item, nothing created, no per-item results."""
    requests = [
        {"record": cta_record(gs_emu, "fine")},
        {"record": cta_record(gs_emu, "bad", reason="Because")},
    ]
    answer = client.post(CTA, json={"requests": requests})
    assert answer.status_code == 400
    assert (answer.json()["errorCode"], answer.json()["data"]) == ("GSOBJ_1012", None)
    assert len(gs_emu.tables["calltoaction"]) == 0


def test_cta_without_owner_is_refused(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """G6 (stricter reading): a CTA needs an owner."""
    record = cta_record(gs_emu, "ownerless")
    del record["OwnerId"]
    answer = client.post(CTA, json={"requests": [{"record": record}]})
    assert answer.status_code == 400
    assert "OwnerId" in answer.json()["errorDesc"]


def test_a_reason_the_admin_never_configured(
    gs_emu: GainsightEmulator, client: httpx.Client
) -> None:
    """G6: Cockpit picklists are tenant configuration; a removed reason is gone from the
    picklist API and refused on create."""
    assert gs_emu.picklists.remove("reason", "Renewal at Risk")
    answer = client.get("/v2/cockpit/admin/picklist/lite", params={"category": "CTA_REASON"})
    names = {item["name"] for item in answer.json()["data"]["CTA_REASON"]}
    assert "Renewal at Risk" not in names
    assert "Red Health" in names
    refused = client.post(
        CTA, json={"requests": [{"record": cta_record(gs_emu, "x", reason="Renewal at Risk")}]}
    )
    assert refused.json()["errorCode"] == "GSOBJ_1012"


def test_gsid_not_sortable_switch(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """G4 switch: ordering or range filters on Gsid are refused; describe says so."""
    gs_emu.gsid_sortable = False
    assert fields_of(client, "Company")["Gsid"]["meta"]["sortable"] is False
    by_gsid = client.post(QUERY, json={"select": ["Name"], "orderBy": {"Gsid": "asc"}})
    assert by_gsid.status_code == 400
    keyset = {
        "select": ["Name"],
        "where": {"conditions": [{"name": "Gsid", "alias": "A", "operator": "GT",
                                  "value": ["0"]}], "expression": "A"},
    }  # fmt: skip
    assert client.post(QUERY, json=keyset).status_code == 400
    assert len(rows(client, {"select": ["Name"], "orderBy": {"CreatedDate": "asc"}})) == 3
    gs_emu.gsid_sortable = True
    assert client.post(QUERY, json=keyset).status_code == 200


def test_filter_time_zone_switch(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """G3 switch: a filter value without an offset is read in the tenant's zone, so a
    UTC lower bound one hour back misses a change made 30 minutes ago (PST is UTC-8)."""
    gs_emu.clock.advance(3_600_000)
    gs_emu.update("company", gsid_of(gs_emu, "Gamma"), {"Industry": "Tech"})  # modified at T0 + 1 h
    since = {
        "select": ["Name"],
        "where": {"conditions": [{"name": "ModifiedDate", "alias": "A", "operator": "GTE",
                                  "value": ["2026-01-01 00:30:00"]}], "expression": "A"},
    }  # fmt: skip
    assert [r["Name"] for r in rows(client, since)] == ["Gamma"]
    gs_emu.filter_time_zone = "America/Los_Angeles"
    answer = client.post(QUERY, json=since).json()
    assert answer["result"] is False  # "No data found": the bound was read as 08:30 UTC
    with pytest.raises(LookupError):
        gs_emu.filter_time_zone = "Mars/Olympus_Mons"


def test_describe_get_form_and_unknown_object(
    gs_emu: GainsightEmulator, client: httpx.Client
) -> None:
    """GET .../{object}/describe answers like POST; an unknown object is OBJECT_NOT_FOUND;
    a removed field is gone from describe and refused in a query."""
    answer = client.get("/v1/meta/services/objects/GsUser/describe", params={"idd": "true"})
    names = {f["fieldName"] for f in answer.json()["data"][0]["fields"]}
    assert {"Gsid", "Email", "IsActiveUser"} <= names
    unknown = client.post(DESCRIBE, json={"objectNames": ["Nope"]})
    assert (unknown.status_code, unknown.json()["errorCode"]) == (400, "OBJECT_NOT_FOUND")
    gs_emu.remove_field("GsUser", "IsActiveUser")
    assert "IsActiveUser" not in fields_of(client, "GsUser")
    refused = client.post(
        "/v1/data/objects/query/GsUser", json={"select": ["Gsid", "IsActiveUser"]}
    )
    assert (refused.status_code, refused.json()["errorCode"]) == (400, "GSOBJ_1002")
    lookups = fields_of(client, "Company")
    assert (
        lookups["AccountExecutive__gc"]["meta"]["lookupDetail"]["lookupObjects"][0]["objectName"]
        == "GsUser"
    )
