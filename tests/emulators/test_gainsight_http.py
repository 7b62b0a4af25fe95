"""The Gainsight emulator's auth, rate limits, fault injection, request log and test helpers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectors.tls import ssl_context
from emulators.gainsight import GainsightEmulator
from emulators.gainsight.testing import AppSwitch
from emulators.http import EmulatorServer
from emulators.store import Clock
from emulators.tls import TlsMaterial

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z: 20 s into its minute
QUERY = "/v1/data/objects/query/Company"
BODY = {"select": ["Gsid", "Name"], "limit": 10}


@pytest.fixture
def gs_emu() -> GainsightEmulator:
    # Lenient: the request-log test counts the records of a partly failing write (G2 reading).
    gs_emu = GainsightEmulator(clock=Clock(T0), rate_limit_per_minute=3, profile="lenient")
    gs_emu.load("company", [{"Name": "Acme"}, {"Name": "Beta"}])
    return gs_emu


@pytest.fixture(scope="module")
def switch(tls: TlsMaterial) -> Iterator[tuple[AppSwitch, str]]:
    app = AppSwitch()
    with EmulatorServer(app, ssl_context=tls.server_context) as server:
        yield app, server.url


@pytest.fixture
def client(
    gs_emu: GainsightEmulator, switch: tuple[AppSwitch, str], tls: TlsMaterial
) -> Iterator[httpx.Client]:
    app, url = switch
    app.target = gs_emu
    with httpx.Client(
        base_url=url, verify=ssl_context(tls.ca_path), headers={"AccessKey": gs_emu.access_key}
    ) as http:
        yield http
    app.target = None


def test_auth_failure_envelope(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """A wrong or missing access key is 401 with the GS_APIG_2401 envelope; nothing is read."""
    for headers in ({"accesskey": "wrong"}, {"accesskey": ""}):
        response = client.post(QUERY, json=BODY, headers=headers)
        assert response.status_code == 401
        payload = response.json()
        assert payload["result"] is False
        assert payload["errorCode"] == "GS_APIG_2401"
        assert payload["errorDesc"] == "Unauthorized"
        assert payload["message"] == "Unauthorized"
        assert payload["data"] is None
        assert len(payload["requestId"]) == 36
    assert gs_emu.log.count(kind="auth") == 2
    assert gs_emu.log.count(kind="read") == 0


def test_header_name_is_case_insensitive(client: httpx.Client) -> None:
    """AccessKey / accesskey / ACCESSKEY all authenticate."""
    for name in ("accesskey", "ACCESSKEY", "Accesskey"):
        client.headers.pop("AccessKey", None)
        client.headers.pop("accesskey", None)
        response = client.post(QUERY, json=BODY, headers={name: GainsightEmulator().access_key})
        assert response.json()["result"] is True


def test_rate_limit_429_then_allowed_after_the_window(
    gs_emu: GainsightEmulator, client: httpx.Client
) -> None:
    """Past the per-minute limit calls get 429 GU_2400 with Retry-After; the next window admits."""
    for _ in range(3):
        assert client.post(QUERY, json=BODY).status_code == 200
    refused = client.post(QUERY, json=BODY)
    assert refused.status_code == 429
    payload = refused.json()
    assert payload["result"] is False
    assert payload["errorCode"] == "GU_2400"
    assert refused.headers["Retry-After"] == "40"  # the window started 20 s ago
    # Writes share the same budget.
    write = client.post("/v1/data/objects/Company", json={"records": [{"Name": "X"}]})
    assert write.status_code == 429
    assert len(gs_emu.tables["company"]) == 2
    gs_emu.clock.advance(39_000)
    assert client.post(QUERY, json=BODY).headers["Retry-After"] == "1"
    gs_emu.clock.advance(1_000)
    assert client.post(QUERY, json=BODY).status_code == 200
    assert gs_emu.log.count(operation="company.query") == 6
    assert len([c for c in gs_emu.log.calls(operation="company.query") if c.status == 429]) == 2


def test_daily_limit(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """The daily quota refuses calls until the next UTC day, whatever the minute window says."""
    gs_emu.daily_limit = 2
    gs_emu.rate_limit_per_minute = 100
    assert client.post(QUERY, json=BODY).status_code == 200
    assert client.post(QUERY, json=BODY).status_code == 200
    gs_emu.clock.advance(120_000)
    refused = client.post(QUERY, json=BODY)
    assert refused.status_code == 429
    seconds_to_midnight = (86_400_000 - (T0 + 120_000) % 86_400_000) // 1000
    assert int(refused.headers["Retry-After"]) == seconds_to_midnight
    gs_emu.clock.advance(seconds_to_midnight * 1000)
    assert client.post(QUERY, json=BODY).status_code == 200


def test_reset_rate_limit(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """reset_rate_limit() gives a fresh window at once."""
    for _ in range(3):
        client.post(QUERY, json=BODY)
    assert client.post(QUERY, json=BODY).status_code == 429
    gs_emu.reset_rate_limit()
    assert client.post(QUERY, json=BODY).status_code == 200


def test_injected_faults(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """faults.fail_next(429, 503, 500) answers those statuses in turn, then serves normally."""
    gs_emu.rate_limit_per_minute = 100
    gs_emu.faults.configure(retry_after_seconds=7)
    gs_emu.faults.fail_next(429, 503, 500)
    first = client.post(QUERY, json=BODY)
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "7"
    assert first.json()["errorCode"] == "GU_2400"
    second = client.post(QUERY, json=BODY)
    assert second.status_code == 503
    assert second.headers["Retry-After"] == "7"
    third = client.post(QUERY, json=BODY)
    assert third.status_code == 500
    assert third.json()["errorCode"] == "GU_1101"
    assert client.post(QUERY, json=BODY).status_code == 200


def test_fault_controls_over_http(gs_emu: GainsightEmulator, client: httpx.Client) -> None:
    """PUT /__emulator/faults configures faults without an access key."""
    gs_emu.rate_limit_per_minute = 100
    response = client.put(
        "/__emulator/faults", json={"fail_next": [503]}, headers={"AccessKey": ""}
    )
    assert response.json()["scheduled"] == [503]
    assert client.post(QUERY, json=BODY).status_code == 503
    assert client.post(QUERY, json=BODY).status_code == 200


def test_request_log_counts_reads_and_writes(
    gs_emu: GainsightEmulator, client: httpx.Client
) -> None:
    """Each call is logged with its object, kind, operation and record count."""
    gs_emu.rate_limit_per_minute = 100
    client.post(QUERY, json=BODY)  # 2 rows
    client.post("/v1/data/objects/query/GsUser", json={"select": ["Name"]})  # no data
    client.post("/v1/data/objects/Company", json={"records": [{"Name": "C"}, {"Name": "D"}]})
    acme = gs_emu.tables["company"].ids()[0]
    client.put(
        "/v1/data/objects/Company",
        params={"keys": "Gsid"},
        json={"records": [{"Gsid": acme, "Arr": 1}, {"Gsid": "nope", "Arr": 2}]},
    )
    cta: dict[str, Any] = {
        "Name": "n", "CompanyId": acme, "DueDate": "2025-01-01", "type": "Risk",
    }  # fmt: skip
    client.post("/v2/cockpit/cta/", json={"requests": [{"record": cta}]})
    client.post("/v2/cockpit/cta/list", json={"select": ["Name"]})
    log = gs_emu.log
    assert log.count(api="gainsight", kind="read") == 3
    assert log.count(api="gainsight", kind="write") == 3
    assert log.count(object="Company", kind="read", operation="company.query") == 1
    assert log.records(operation="company.query") == 2
    assert log.count(object="GsUser", operation="gsuser.query") == 1
    assert log.records(operation="company.insert") == 2
    assert log.records(operation="company.update") == 1
    assert log.records(object="CallToAction", operation="cta.create") == 1
    assert log.records(operation="cta.list") == 1
    assert {c.path for c in log.calls(operation="cta.list")} == {"/v2/cockpit/cta/list"}


def test_unknown_route(client: httpx.Client) -> None:
    """An unknown path answers 404 with the GSOBJ_1023 envelope."""
    response = client.get("/v1/nothing/here")
    assert response.status_code == 404
    assert response.json()["errorCode"] == "GSOBJ_1023"


def test_malformed_json_body(client: httpx.Client) -> None:
    """A body that is not JSON is a 400 envelope, not a server error."""
    response = client.post(
        QUERY, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["result"] is False


def test_ui_helpers_validate(gs_emu: GainsightEmulator) -> None:
    """create()/update() validate like the API; get() returns stored values; no log entries."""
    gsid = gs_emu.create("Company", {"Name": "Helper Co", "RenewalDate": "2025-01-31"})
    row = gs_emu.get("company", gsid)
    assert row is not None
    assert row["RenewalDate"] == 1_738_281_600_000
    with pytest.raises(ValueError, match="GSOBJ_1006"):
        gs_emu.update("Company", gsid, {"RenewalDate": "not a date"})
    with pytest.raises(ValueError, match="GSOBJ_1007"):
        gs_emu.create("Company", {"Arr": 1})
    with pytest.raises(KeyError):
        gs_emu.create("Company", {"Name": "X", "Nope": 1})
    gs_emu.clock.advance(1_000)
    gs_emu.update("company", gsid, {"Stage": "Churn"})
    row = gs_emu.get("company", gsid)
    assert row is not None
    assert row["ModifiedDate"] == T0 + 1_000
    assert row["Stage"] == gs_emu.picklists.gsid("COMPANY_STAGE", "Churn")
    user = gs_emu.create("GsUser", {"FirstName": "Ann", "LastName": "Lee", "Email": "ann@x.io"})
    assert gs_emu.get("gsuser", user)["Name"] == "Ann Lee"  # type: ignore[index]
    assert gs_emu.log.count() == 0


def test_load_returns_count_and_keeps_given_ids(gs_emu: GainsightEmulator) -> None:
    """load() keeps Gsid and stamps given by the caller and returns how many rows it loaded."""
    gsid = gs_emu.tables["company"].new_id()
    n = gs_emu.load("Company", [{"Gsid": gsid, "Name": "Seeded", "ModifiedDate": 5}])
    assert n == 1
    row = gs_emu.get("company", gsid)
    assert row is not None
    assert row["ModifiedDate"] == 5
    assert row["CreatedDate"] == T0
