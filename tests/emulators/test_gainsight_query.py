"""The Gainsight emulator's read API (POST /v1/data/objects/query/{Object}) over real HTTPS."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from emulators.gainsight import GainsightEmulator
from emulators.store import Clock

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
DAY = 86_400_000
MAR_1_2024 = 1_709_251_200_000  # 2024-03-01T00:00:00Z
FILLERS = [f"Filler {i:02d}" for i in range(5, 12)]


@pytest.fixture
def gs_emu() -> GainsightEmulator:
    gs_emu = GainsightEmulator(clock=Clock(T0))
    users = gs_emu.load(
        "gsuser",
        [
            {"FirstName": "Jane", "LastName": "Doe", "Email": "Jane.Doe@vendor.com"},
            {"FirstName": "Bob", "LastName": "Roe", "Email": "bob@vendor.com"},
            {"FirstName": "Old", "LastName": "Timer", "Email": "old@vendor.com",
             "IsActiveUser": False},
        ],
    )  # fmt: skip
    assert users == 3
    jane, bob, _ = gs_emu.tables["gsuser"].ids()
    rows: list[dict[str, Any]] = [
        {"Name": "Acme", "Csm": jane, "Arr": 120_000, "RenewalDate": "2024-03-01",
         "SfdcAccountId": "001000000000001AAA", "Stage": "Launched", "Industry": "Tech"},
        {"Name": "Beta Corp", "Csm": bob, "Arr": 40_000, "RenewalDate": "2024-06-30",
         "SfdcAccountId": "001000000000002AAA", "Stage": "Adopting", "Industry": "Retail"},
        {"Name": "Gamma", "Csm": jane, "Arr": 75_000, "RenewalDate": None,
         "Stage": "Launched", "Industry": "tech"},
        {"Name": "Delta", "Csm": None, "Arr": None, "RenewalDate": "2025-01-15",
         "Industry": None, "RiskFlags__gc": "RED_HEALTH;NO_CSM"},
        {"Name": "epsilon labs", "Csm": bob, "Arr": 10_000, "RenewalDate": "2024-03-01",
         "Industry": "Tech", "RiskFlags__gc": "NO_CSM"},
    ]  # fmt: skip
    rows += [{"Name": name, "Arr": 1_000 * (i + 5), "Csm": bob} for i, name in enumerate(FILLERS)]
    gs_emu.load("company", rows)
    return gs_emu


def query(client: httpx.Client, body: dict[str, Any], obj: str = "Company") -> httpx.Response:
    return client.post(f"/v1/data/objects/query/{obj}", json=body)


def names(response: httpx.Response) -> list[str]:
    payload = response.json()
    assert payload["result"] is True, payload
    return [row["Name"] for row in payload["data"]]


def cond(name: str, op: str, *values: Any, alias: str = "A") -> dict[str, Any]:
    return {"name": name, "alias": alias, "value": list(values), "operator": op}


def test_select_returns_flat_lookup_keys_and_epoch_ms_dates(client: httpx.Client) -> None:
    """Lookup paths come back as flat keys spelled as requested; dates as epoch ms."""
    response = query(
        client,
        {
            "select": ["Gsid", "Name", "csm__gr.email", "Csm__gr.Name", "RenewalDate", "Arr"],
            "where": {"conditions": [cond("Name", "EQ", "Acme")], "expression": "A"},
            "limit": 10,
            "offset": 0,
        },
    )
    assert response.status_code == 200
    payload = response.json()
    assert set(payload) == {"result", "errorCode", "errorDesc", "requestId", "data", "message"}
    assert payload["errorCode"] is None
    assert len(payload["requestId"]) == 36
    (row,) = payload["data"]
    assert row["Gsid"].startswith("1P02")
    assert len(row["Gsid"]) == 36
    assert row["csm__gr.email"] == "Jane.Doe@vendor.com"
    assert row["Csm__gr.Name"] == "Jane Doe"
    assert row["RenewalDate"] == MAR_1_2024
    assert row["Arr"] == 120_000
    assert list(row) == ["Gsid", "Name", "csm__gr.email", "Csm__gr.Name", "RenewalDate", "Arr"]


def test_lookup_path_condition_matches_email_case_insensitively(client: httpx.Client) -> None:
    """A condition on Csm__gr.Email finds the CSM's companies whatever the e-mail's case."""
    response = query(
        client,
        {
            "select": ["Name"],
            "where": {"conditions": [cond("Csm__gr.Email", "EQ", "JANE.DOE@VENDOR.COM")]},
            "orderBy": {"Name": "asc"},
        },
    )
    assert names(response) == ["Acme", "Gamma"]


def test_expression_with_or_and_parentheses(client: httpx.Client) -> None:
    """(A OR B) AND C is evaluated with the grouping the caller wrote."""
    body = {
        "select": ["Name"],
        "where": {
            "conditions": [
                cond("Name", "EQ", "Acme", alias="A"),
                cond("Name", "EQ", "Delta", alias="B"),
                cond("Arr", "GT", 50_000, alias="C"),
            ],
            "expression": "(A OR B) AND C",
        },
    }
    assert names(query(client, body)) == ["Acme"]
    body["where"]["expression"] = "A OR (B AND C)"  # type: ignore[index]
    assert names(query(client, body)) == ["Acme"]
    body["where"]["expression"] = "A OR B and C"  # type: ignore[index]  # AND binds tighter
    assert names(query(client, body)) == ["Acme"]
    body["where"]["expression"] = "(A or B)"  # type: ignore[index]
    assert sorted(names(query(client, body))) == ["Acme", "Delta"]


def test_missing_expression_ands_all_conditions(client: httpx.Client) -> None:
    """Without an expression every condition must hold."""
    body = {
        "select": ["Name"],
        "where": {
            "conditions": [
                cond("Industry", "EQ", "Tech", alias="A"),
                cond("Arr", "GTE", 100_000, alias="B"),
            ]
        },
    }
    assert names(query(client, body)) == ["Acme"]


def test_keyset_paging_returns_every_row_exactly_once(client: httpx.Client) -> None:
    """Gsid GT last, ordered by Gsid, walks all companies in pages with no gaps or repeats."""
    seen: list[str] = []
    last = ""
    pages = 0
    while True:
        conditions = [cond("Gsid", "GT", last)] if last else []
        response = query(
            client,
            {
                "select": ["Gsid", "Name"],
                "where": {"conditions": conditions, "expression": "A" if last else None},
                "orderBy": {"Gsid": "asc"},
                "limit": 5,
                "offset": 0,
            },
        )
        payload = response.json()
        if payload["result"] is False:
            assert payload["errorCode"] == "GSOBJ_1011"
            break
        page = [row["Gsid"] for row in payload["data"]]
        assert page == sorted(page)
        seen.extend(page)
        last = page[-1]
        pages += 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == 12
    assert seen == sorted(seen)


def test_offset_paging_is_stable_without_order(client: httpx.Client) -> None:
    """Offset pages without orderBy follow one stable order and cover every row."""
    got: list[str] = []
    for offset in range(0, 12, 4):
        got += names(query(client, {"select": ["Name"], "limit": 4, "offset": offset}))
    assert len(got) == len(set(got)) == 12
    assert got[0] == "Acme"


def test_order_by_several_keys_with_nulls(client: httpx.Client) -> None:
    """Key order is priority; nulls sort last ascending and first descending."""
    body: dict[str, Any] = {
        "select": ["Name", "Industry"],
        "where": {"conditions": [cond("Name", "IN", "Acme", "Beta Corp", "Gamma", "Delta")]},
        "orderBy": {"Industry": "desc", "Name": "asc"},
    }
    # Industry desc: null first, then "tech" > "Tech" > "Retail" (case-sensitive order).
    assert names(query(client, body)) == ["Delta", "Gamma", "Acme", "Beta Corp"]
    body["orderBy"] = {"Arr": "asc"}
    assert names(query(client, body)) == ["Beta Corp", "Gamma", "Acme", "Delta"]


def test_no_rows_is_the_no_data_envelope(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """An empty result is result:false GSOBJ_1011 with data null, HTTP 200 (configurable)."""
    body = {"select": ["Name"], "where": {"conditions": [cond("Name", "EQ", "Nobody")]}}
    response = query(client, body)
    assert response.status_code == 200
    payload = response.json()
    assert payload["result"] is False
    assert payload["errorCode"] == "GSOBJ_1011"
    assert payload["errorDesc"] == "No data found for given criteria"
    assert payload["data"] is None
    gs_emu.no_data_status = 400
    assert query(client, body).status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"select": ["Name", "Nope__gc"]},
        {"select": ["Name"], "where": {"conditions": [cond("Nope", "EQ", "x")]}},
        {"select": ["Name"], "orderBy": {"Nope": "asc"}},
        {"select": ["Csm__gr.Nope"]},
        {"select": ["Name__gr.Email"]},
        {"select": ["Csm__gr.CreatedBy__gr.Csm__gr.Email"]},
    ],
)
def test_unknown_field_is_gsobj_1002(client: httpx.Client, body: dict[str, Any]) -> None:
    """An unknown field in select, where or orderBy is a 400 with GSOBJ_1002."""
    response = query(client, body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["result"] is False
    assert payload["errorCode"] == "GSOBJ_1002"
    assert payload["errorDesc"] == "Invalid field, please re-check data mapping"


def test_two_level_lookup_path(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """Two __gr hops are allowed (Csm__gr.CreatedBy__gr.Email)."""
    jane, bob, _ = gs_emu.tables["gsuser"].ids()
    gs_emu.tables["gsuser"].update(jane, {"CreatedBy": bob})
    response = query(
        client,
        {
            "select": ["Name", "Csm__gr.CreatedBy__gr.Email"],
            "where": {"conditions": [cond("Name", "EQ", "Acme")]},
        },
    )
    assert response.json()["data"] == [
        {"Name": "Acme", "Csm__gr.CreatedBy__gr.Email": "bob@vendor.com"}
    ]


def test_unknown_object_is_rejected(client: httpx.Client) -> None:
    """A query on an object the tenant does not have is a 400 GSOBJ_1023."""
    response = query(client, {"select": ["Name"]}, obj="Opportunity__gc")
    assert response.status_code == 400
    assert response.json()["errorCode"] == "GSOBJ_1023"


def test_object_names_match_case_insensitively(client: httpx.Client) -> None:
    """company, COMPANY, gsuser and GsUser all reach their objects."""
    assert len(names(query(client, {"select": ["Name"]}, obj="company"))) == 12
    assert len(names(query(client, {"select": ["Name"]}, obj="COMPANY"))) == 12
    assert len(names(query(client, {"select": ["Name"]}, obj="gsuser"))) == 3


@pytest.mark.parametrize(("limit", "status"), [(5000, 200), (5001, 400), (0, 400)])
def test_limit_bounds(client: httpx.Client, limit: int, status: int) -> None:
    """limit must be 1..5000; outside that the call is refused with GSOBJ_1008."""
    response = query(client, {"select": ["Name"], "limit": limit})
    assert response.status_code == status
    if status == 400:
        assert response.json()["errorCode"] == "GSOBJ_1008"
    else:
        assert len(response.json()["data"]) == 12


@pytest.mark.parametrize(
    "literal",
    [
        MAR_1_2024,
        str(MAR_1_2024),
        "2024-03-01",
        "2024-03-01 00:00:00",
        "03-01-2024",
        "2024-03-01T00:00:00Z",
        "2024-03-01T00:00:00.000Z",
        "2024-03-01T01:00:00+01:00",
    ],
)
def test_date_literal_formats(client: httpx.Client, literal: Any) -> None:
    """Epoch ms, yyyy-MM-dd, yyyy-MM-dd HH:mm:ss, MM-dd-yyyy and ISO-8601 all mean the same day."""
    body = {
        "select": ["Name"],
        "where": {"conditions": [cond("RenewalDate", "EQ", literal)]},
        "orderBy": {"Name": "asc"},
    }
    assert names(query(client, body)) == ["Acme", "epsilon labs"]


@pytest.mark.parametrize("literal", ["2024-13-01", "yesterday", "03/01/2024", True])
def test_bad_date_literal_is_gsobj_1005(client: httpx.Client, literal: Any) -> None:
    """A date literal that parses in no accepted format is a 400 with GSOBJ_1005."""
    body = {"select": ["Name"], "where": {"conditions": [cond("ModifiedDate", "GTE", literal)]}}
    response = query(client, body)
    assert response.status_code == 400
    assert response.json()["errorCode"] == "GSOBJ_1005"


def test_modified_date_gte_sees_only_later_changes(
    gs_emu: GainsightEmulator, client: httpx.Client
) -> None:
    """After the clock moves, ModifiedDate GTE returns exactly the records changed since."""
    acme = next(g for g, r in gs_emu.tables["company"].iter_rows() if r[1] == "Acme")
    gs_emu.clock.advance(DAY)
    gs_emu.update("Company", acme, {"Arr": 130_000})
    body = {
        "select": ["Name", "ModifiedDate"],
        "where": {"conditions": [cond("ModifiedDate", "GTE", "2023-11-15T00:00:00Z")]},
    }
    response = query(client, body)
    assert response.json()["data"] == [{"Name": "Acme", "ModifiedDate": T0 + DAY}]


def test_dropdowns_come_back_as_gsids_with_names_on_gr(
    gs_emu: GainsightEmulator, client: httpx.Client
) -> None:
    """Stage returns the item GSID, Stage__gr.Name its label; filters take either."""
    launched = gs_emu.picklists.gsid("COMPANY_STAGE", "Launched")
    assert launched is not None
    assert launched.startswith("1I00")
    body = {
        "select": ["Name", "Stage", "Stage__gr.Name"],
        "where": {"conditions": [cond("Stage", "EQ", "launched")]},
        "orderBy": {"Name": "asc"},
    }
    data = query(client, body).json()["data"]
    assert data == [
        {"Name": "Acme", "Stage": launched, "Stage__gr.Name": "Launched"},
        {"Name": "Gamma", "Stage": launched, "Stage__gr.Name": "Launched"},
    ]
    body["where"] = {"conditions": [cond("Stage", "EQ", launched)]}
    assert len(query(client, body).json()["data"]) == 2


def test_gsuser_query(client: httpx.Client) -> None:
    """GsUser reads through the same API, booleans as JSON booleans."""
    response = query(
        client,
        {
            "select": ["Gsid", "Name", "Email", "IsActiveUser", "ModifiedDate"],
            "where": {"conditions": [cond("IsActiveUser", "EQ", True)]},
            "orderBy": {"Email": "asc"},
        },
        obj="GsUser",
    )
    data = response.json()["data"]
    assert [r["Email"] for r in data] == ["Jane.Doe@vendor.com", "bob@vendor.com"]
    assert all(r["IsActiveUser"] is True and r["ModifiedDate"] == T0 for r in data)
    assert all(r["Gsid"].startswith("1P01") for r in data)


@pytest.mark.parametrize(
    ("field", "operator", "values", "expected"),
    [
        ("Name", "EQ", ["Acme"], ["Acme"]),
        ("Name", "EQ", ["acme"], []),  # STRING equality is case-sensitive
        ("Name", "NE", ["Acme"], ["Beta Corp", "Delta", "Gamma", "epsilon labs"]),
        ("Industry", "NE", ["Tech"], ["Beta Corp", "Delta", "Gamma"]),  # NE keeps nulls
        ("Arr", "LT", [40_000], ["epsilon labs"]),
        ("Arr", "LTE", [40_000], ["Beta Corp", "epsilon labs"]),
        ("Arr", "GT", [75_000], ["Acme"]),
        ("Arr", "GTE", [75_000], ["Acme", "Gamma"]),
        ("Arr", "BTW", [10_000, 75_000], ["Beta Corp", "Gamma", "epsilon labs"]),
        ("RenewalDate", "BTW", ["2024-03-01", "2024-06-30"], ["Acme", "Beta Corp", "epsilon labs"]),
        ("Name", "IN", ["Acme", "Gamma", "Nobody"], ["Acme", "Gamma"]),
        ("Name", "CONTAINS", ["CORP"], ["Beta Corp"]),
        ("Name", "STARTS_WITH", ["eps"], ["epsilon labs"]),
        ("Name", "ENDS_WITH", ["MA"], ["Gamma"]),
        ("Arr", "IS_NULL", [], ["Delta"]),
        ("Industry", "IS_NOT_NULL", [], ["Acme", "Beta Corp", "Gamma", "epsilon labs"]),
        ("RiskFlags__gc", "INCLUDES", ["no_csm"], ["Delta", "epsilon labs"]),
        ("RiskFlags__gc", "INCLUDES", ["RED_HEALTH", "X"], ["Delta"]),
        (
            "RiskFlags__gc",
            "EXCLUDES",
            ["RED_HEALTH"],
            ["Acme", "Beta Corp", "Gamma", "epsilon labs"],
        ),
        ("Csm__gr.Email", "IN", ["BOB@vendor.com"], ["Beta Corp", "epsilon labs"]),
        ("Csm__gr.Email", "IS_NULL", [], ["Delta"]),
        ("Csm__gr.IsActiveUser", "EQ", ["true"], ["Acme", "Beta Corp", "Gamma", "epsilon labs"]),
    ],
)
def test_condition_operators(
    client: httpx.Client, field: str, operator: str, values: list[Any], expected: list[str]
) -> None:
    """Each operator selects exactly the companies it should (fillers excluded)."""
    body = {
        "select": ["Name"],
        "where": {
            "conditions": [
                {"name": field, "alias": "A", "value": values, "operator": operator},
                {"name": "Name", "alias": "F", "value": FILLERS, "operator": "NE"},
            ],
            "expression": "A AND F",
        },
        "limit": 100,
    }
    got = query(client, body).json()["data"] or []
    assert sorted(r["Name"] for r in got) == sorted(expected)


@pytest.mark.parametrize(
    "where",
    [
        {"conditions": [cond("Name", "LIKE", "x")]},
        {"conditions": [{"name": "Name", "alias": "A", "value": "Acme", "operator": "EQ"}]},
        {"conditions": [cond("Name", "EQ", "Acme")], "expression": "A AND"},
        {"conditions": [cond("Name", "EQ", "Acme")], "expression": "(A"},
        {"conditions": [cond("Name", "EQ", "Acme")], "expression": "A OR B"},
        {"conditions": [cond("Arr", "BTW", 1)]},
        {"conditions": [cond("Arr", "CONTAINS", 1)]},
    ],
)
def test_malformed_where_is_refused(client: httpx.Client, where: dict[str, Any]) -> None:
    """Unknown operators, non-array values and broken expressions are 400 GSOBJ_1008."""
    response = query(client, {"select": ["Name"], "where": where})
    assert response.status_code == 400
    assert response.json()["errorCode"] == "GSOBJ_1008"


def test_filler_rows_exist(client: httpx.Client) -> None:
    """Sanity check for the operator table: the fillers are the other seven companies."""
    body = {"select": ["Name"], "where": {"conditions": [cond("Name", "STARTS_WITH", "Filler")]}}
    assert len(names(query(client, body))) == 7
