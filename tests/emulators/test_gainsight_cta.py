"""The Gainsight emulator's Cockpit CTA APIs (create, list, update/close, picklists) over HTTPS."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from emulators.gainsight import GainsightEmulator
from emulators.store import Clock

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
CTA = "/v2/cockpit/cta/"
LIST = "/v2/cockpit/cta/list"
SELECT = [
    "Name",
    "CompanyId",
    "CompanyId__gr.Name",
    "TypeId__gr.Name",
    "StatusId__gr.Name",
    "PriorityId__gr.Name",
    "ReasonId__gr.Name",
    "OwnerId__gr.Email",
    "DueDate",
    "IsClosed",
    "ClosedDate",
    "ModifiedDate",
]


@pytest.fixture
def gs_emu() -> GainsightEmulator:
    # Lenient: these tests pin the per-item result shape, which is the lenient reading of G2
    # (the strict profile rejects a call with one bad item whole: test_profiles_gainsight.py).
    gs_emu = GainsightEmulator(clock=Clock(T0), profile="lenient")
    gs_emu.load("gsuser", [{"Name": "Jane Doe", "Email": "jane@vendor.com"}])
    gs_emu.load(
        "company",
        [
            {"Name": "Acme", "SfdcAccountId": "001000000000001AAA"},
            {"Name": "Beta", "SfdcAccountId": "001000000000002AAA"},
        ],
    )
    return gs_emu


def company(gs_emu: GainsightEmulator, name: str) -> str:
    (gsid,) = [
        g for g in gs_emu.tables["company"].ids() if gs_emu.get("company", g)["Name"] == name
    ]  # type: ignore[index]
    return gsid


def jane(gs_emu: GainsightEmulator) -> str:
    return gs_emu.tables["gsuser"].ids()[0]


def risk_record(gs_emu: GainsightEmulator, ref: str, **extra: Any) -> dict[str, Any]:
    record = {
        "referenceId": ref,
        "Name": "Red health: Acme",
        "CompanyId": company(gs_emu, "Acme"),
        "OwnerId": jane(gs_emu),
        "DueDate": "2025-10-10",
        "type": "Risk",
        "reason": "Red Health",
        "status": "New",
        "priority": "High",
        "Comments": "Opened by connector",
    }
    record.update(extra)
    return record


def list_ctas(client: httpx.Client, conditions: list[dict[str, Any]], **extra: Any) -> Any:
    body: dict[str, Any] = {
        "select": SELECT,
        "where": {
            "conditions": conditions,
            "expression": " AND ".join(c["alias"] for c in conditions),
        },
        "pageSize": 100,
        "pageNumber": 1,
    }
    body.update(extra)
    response = client.post(LIST, json=body)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["result"] is True
    return payload["data"]


def fcond(field: str, op: str, *values: Any, alias: str = "A") -> dict[str, Any]:
    return {"fieldName": field, "alias": alias, "value": list(values), "operator": op}


def test_create_list_close_round_trip(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """A risk CTA created by names is listed open with its names, then closed and listed closed."""
    acme = company(gs_emu, "Acme")
    response = client.post(CTA, json={"requests": [{"record": risk_record(gs_emu, "r1")}]})
    assert response.status_code == 200
    payload = response.json()
    assert payload["result"] is True
    (item,) = payload["data"]
    assert item["referenceId"] == "r1"
    assert item["success"] is True
    assert item["errors"] == []
    gsid = item["Gsid"]
    assert gsid.startswith("1S01")

    open_risk = [
        fcond("CompanyId", "EQ", acme, alias="A"),
        fcond("TypeId__gr.Name", "EQ", "Risk", alias="B"),
        fcond("ReasonId__gr.Name", "EQ", "Red Health", alias="C"),
        fcond("IsClosed", "EQ", False, alias="D"),
    ]
    (row,) = list_ctas(client, open_risk)
    assert row["Gsid"] == gsid
    assert row["CompanyId__gr.Name"] == "Acme"
    assert row["TypeId__gr.Name"] == "Risk"
    assert row["StatusId__gr.Name"] == "New"
    assert row["PriorityId__gr.Name"] == "High"
    assert row["ReasonId__gr.Name"] == "Red Health"
    assert row["OwnerId__gr.Email"] == "jane@vendor.com"
    assert row["DueDate"] == "2025-10-10T00:00:00Z"
    assert row["ModifiedDate"] == "2023-11-14T22:13:20Z"
    assert row["IsClosed"] is False
    assert row["ClosedDate"] is None
    assert row["TypeId"] == gs_emu.picklists.gsid("type", "Risk")  # base id of a __gr selection

    gs_emu.clock.advance(5_000)
    closed = client.put(
        CTA, json={"requests": [{"record": {"Gsid": gsid, "status": "Closed Success"}}]}
    )
    assert closed.json()["data"] == [
        {"referenceId": None, "Gsid": gsid, "success": True, "errors": []}
    ]
    assert list_ctas(client, open_risk) == []
    (row,) = list_ctas(client, [fcond("Gsid", "EQ", gsid)])
    assert row["IsClosed"] is True
    assert row["StatusId__gr.Name"] == "Closed Success"
    assert row["ClosedDate"] == "2023-11-14T22:13:25Z"
    stored = gs_emu.get("cta", gsid)
    assert stored is not None
    assert stored["ClosedDate"] == T0 + 5_000


def test_reopening_clears_closed_state(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """Moving a closed CTA back to an open status clears IsClosed and ClosedDate."""
    gsid = gs_emu.create("CallToAction", risk_record(gs_emu, "x", status="Closed Lost"))
    assert gs_emu.get("cta", gsid)["IsClosed"] is True  # type: ignore[index]
    client.put(CTA, json={"requests": [{"record": {"Gsid": gsid, "status": "Open"}}]})
    stored = gs_emu.get("cta", gsid)
    assert stored is not None
    assert stored["IsClosed"] is False
    assert stored["ClosedDate"] is None


def test_per_item_errors_in_request_order(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """Unknown names and missing fields fail their item only; results keep request order."""
    requests = [
        {"record": risk_record(gs_emu, "ok-1")},
        {"record": risk_record(gs_emu, "bad-type", type="Nonsense")},
        {"record": risk_record(gs_emu, "bad-reason", reason="Because")},
        {"record": risk_record(gs_emu, "no-company", CompanyId=None)},
        {"record": risk_record(gs_emu, "ghost-company", CompanyId="1P02GHOST")},
        {"record": risk_record(gs_emu, "bad-date", DueDate="someday")},
        {"record": risk_record(gs_emu, "unknown-field", Colour="red")},
        {"record": risk_record(gs_emu, "ok-2", OwnerId=None, OwnerEmail="JANE@vendor.com")},
    ]
    response = client.post(CTA, json={"requests": requests})
    assert response.status_code == 200
    items = response.json()["data"]
    assert [i["referenceId"] for i in items] == [r["record"]["referenceId"] for r in requests]
    assert [i["success"] for i in items] == [True, False, False, False, False, False, False, True]
    codes = [i["errors"][0]["errorCode"] if i["errors"] else None for i in items]
    assert codes == [
        None,
        "GSOBJ_1012",
        "GSOBJ_1012",
        "GSOBJ_1007",
        "GSOBJ_1004",
        "GSOBJ_1006",
        "GSOBJ_1002",
        None,
    ]
    assert all(i["Gsid"] is None for i in items if not i["success"])
    assert len(gs_emu.tables["calltoaction"]) == 2
    owner = gs_emu.get("cta", items[-1]["Gsid"])
    assert owner is not None
    assert owner["OwnerId"] == jane(gs_emu)


def test_all_items_failing_is_result_false(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """When no item succeeds the envelope says result:false and nothing is created."""
    response = client.post(
        CTA, json={"requests": [{"record": risk_record(gs_emu, "x", type="Nonsense")}]}
    )
    assert response.status_code == 400
    payload = response.json()
    assert payload["result"] is False
    assert payload["errorCode"] == "GSOBJ_1012"
    assert payload["data"][0]["success"] is False
    assert len(gs_emu.tables["calltoaction"]) == 0


def test_more_than_50_items_is_refused(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """51 create items: 400, nothing created."""
    requests = [{"record": risk_record(gs_emu, str(i))} for i in range(51)]
    response = client.post(CTA, json={"requests": requests})
    assert response.status_code == 400
    assert response.json()["result"] is False
    assert len(gs_emu.tables["calltoaction"]) == 0


def test_update_unknown_gsid_fails_item(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """An update naming no existing CTA is a GSOBJ_1004 item error."""
    gsid = gs_emu.create("cta", risk_record(gs_emu, "x"))
    body = {
        "requests": [
            {"record": {"Gsid": "1S01NOPE", "status": "Closed Success"}},
            {"record": {"Gsid": gsid, "priority": "Low"}},
        ]
    }
    items = client.put(CTA, json=body).json()["data"]
    assert items[0]["errors"][0]["errorCode"] == "GSOBJ_1004"
    assert items[1]["success"] is True
    assert gs_emu.get("cta", gsid)["PriorityId"] == gs_emu.picklists.gsid("priority", "Low")  # type: ignore[index]


def test_sfdc_id_resolves_the_company(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """SFDCID (15 or 18 characters) finds the Company by SfdcAccountId."""
    record = risk_record(gs_emu, "s", CompanyId=None)
    del record["CompanyId"]
    record["SFDCID"] = "001000000000002"
    items = client.post(CTA, json={"requests": [{"record": record}]}).json()["data"]
    assert items[0]["success"] is True, items
    assert gs_emu.get("cta", items[0]["Gsid"])["CompanyId"] == company(gs_emu, "Beta")  # type: ignore[index]


def test_list_pages_are_one_based(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """pageNumber starts at 1; pages of pageSize cover every CTA once; past the end is []."""
    for i in range(5):
        gs_emu.create("cta", risk_record(gs_emu, str(i), Name=f"CTA {i}"))
    seen: list[str] = []
    for page in (1, 2, 3):
        body = {"select": ["Name"], "pageSize": 2, "pageNumber": page}
        seen += [r["Name"] for r in client.post(LIST, json=body).json()["data"]]
    assert seen == [f"CTA {i}" for i in range(5)]
    empty = client.post(LIST, json={"select": ["Name"], "pageSize": 2, "pageNumber": 4}).json()
    assert empty["result"] is True
    assert empty["data"] == []


def test_list_date_condition_and_rendering(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """DueDate is a date (filters compare days) rendered as an ISO instant at midnight UTC."""
    gs_emu.create("cta", risk_record(gs_emu, "a", Name="a", DueDate="2020-04-14T11:30:00Z"))
    gs_emu.create("cta", risk_record(gs_emu, "b", Name="b", DueDate="2020-04-15"))
    rows = list_ctas(client, [fcond("DueDate", "LTE", "2020-04-14T23:59:59Z")])
    assert [(r["Name"], r["DueDate"]) for r in rows] == [("a", "2020-04-14T00:00:00Z")]
    rows = list_ctas(client, [fcond("DueDate", "EQ", "2020-04-15")])
    assert [r["Name"] for r in rows] == ["b"]


@pytest.mark.parametrize(
    ("body", "code", "desc"),
    [
        ({"select": ["Name", "gsidasdf"]}, "COCKPIT_5101",
         "Invalid fields in select clause - gsidasdf"),
        ({"select": ["Name"], "where": {"conditions": [fcond("Nope", "EQ", 1)]}},
         "COCKPIT_5101", None),
        ({"select": ["Name"], "where": {"conditions": [
            {"name": "Name", "alias": "A", "value": ["x"], "operator": "EQ"}]}},
         "COCKPIT_5102", None),
        ({"select": ["Name"], "pageSize": 1001}, "COCKPIT_5102", None),
        ({"select": ["Name"], "pageNumber": 0}, "COCKPIT_5102", None),
    ],
)  # fmt: skip
def test_list_errors(
    client: httpx.Client, body: dict[str, Any], code: str, desc: str | None
) -> None:
    """Bad select / where fields are COCKPIT_5101; a name key or out-of-range page is 5102."""
    response = client.post(LIST, json=body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["result"] is False
    assert payload["errorCode"] == code
    assert payload["data"] == {}
    if desc:
        assert payload["errorDesc"] == desc


def test_picklist_lite(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """The picklist API lists CTA statuses with their GSIDs and closed flags."""
    response = client.get(
        "/v2/cockpit/admin/picklist/lite",
        params={"category": "CTA_STATUS,CTA_TYPE", "et": "COMPANY"},
    )
    data = response.json()["data"]
    statuses = {i["name"]: i for i in data["CTA_STATUS"]}
    assert statuses["Closed Success"]["closed"] is True
    assert statuses["New"]["closed"] is False
    assert statuses["New"]["gsid"] == gs_emu.picklists.gsid("status", "New")
    assert "Risk" in {i["name"] for i in data["CTA_TYPE"]}


def test_load_converts_names(gs_emu: GainsightEmulator) -> None:
    """load() takes CTA type/reason/status/priority by name and derives IsClosed."""
    gs_emu.load(
        "CallToAction",
        [
            {"Name": "Old", "CompanyId": company(gs_emu, "Acme"), "type": "Risk",
             "reason": "Renewal at Risk", "status": "Closed Success", "priority": "High",
             "DueDate": "2024-01-01", "ModifiedDate": T0 - 1000},
        ],
    )  # fmt: skip
    (gsid,) = gs_emu.tables["calltoaction"].ids()
    row = gs_emu.get("cta", gsid)
    assert row is not None
    assert row["TypeId"] == gs_emu.picklists.gsid("type", "Risk")
    assert row["IsClosed"] is True
    assert row["ClosedDate"] == T0 - 1000
    assert row["DueDate"] == 1_704_067_200_000
