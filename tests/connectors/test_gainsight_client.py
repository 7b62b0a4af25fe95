"""GainsightClient over mocked HTTP (respx): requests sent, tolerant parsing, retries, limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from structlog.testing import capture_logs

from connectors.errors import (
    AuthenticationError,
    ContractViolation,
    QuotaExceeded,
    RedirectRefused,
    RequestRejected,
    UpstreamUnavailable,
)
from connectors.gainsight import Condition, GainsightClient, GainsightConfig
from connectors.retry import RetryPolicy

BASE = "https://acme.gainsightcloud.com"
KEY = "gs-access-key-0123456789abcdef"
QUERY = f"{BASE}/v1/data/objects/query/Company"
COMPANY = f"{BASE}/v1/data/objects/Company"
CTA = f"{BASE}/v2/cockpit/cta/"
CTA_LIST = f"{BASE}/v2/cockpit/cta/list"


class FakeClock:
    """Monotonic time that moves only when the client sleeps."""

    def __init__(self) -> None:
        self.now = 5000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def env(data: Any = None, *, result: bool = True, code: str | None = None,
        desc: str | None = None) -> dict[str, Any]:  # fmt: skip
    return {"result": result, "errorCode": code, "errorDesc": desc, "requestId": "r",
            "data": data, "message": None}  # fmt: skip


def gsid(i: int) -> str:
    return f"1P02{i:032d}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=True) as mock:
        yield mock


def make_client(clock: FakeClock, **overrides: Any) -> GainsightClient:
    settings: dict[str, Any] = {
        "retry": RetryPolicy(max_attempts=4, initial_backoff=1.0, jitter=0.0),
        **overrides,
    }
    return GainsightClient(GainsightConfig(BASE, KEY, **settings), sleep=clock.sleep, clock=clock)


def body_of(call: Any) -> Any:
    return json.loads(call.request.content)


# -- reads ---------------------------------------------------------------------------------


def test_query_sends_headers_and_keyset_pages(router: respx.MockRouter, clock: FakeClock) -> None:
    """Pages are asked with Gsid GT last, ordered by Gsid, Gsid selected, accesskey sent."""
    rows = [{"Gsid": gsid(i), "Name": f"C{i}"} for i in range(5)]
    route = router.post(QUERY).mock(
        side_effect=[
            httpx.Response(200, json=env(rows[:2])),
            httpx.Response(200, json=env(rows[2:4])),
            httpx.Response(200, json=env(rows[4:])),
        ]
    )
    client = make_client(clock)
    cond = Condition("ModifiedDate", "GTE", ["2024-02-05 00:00:00"])
    pages = list(client.query("Company", ["Name"], conditions=[cond], page_size=2))
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [r["Gsid"] for p in pages for r in p] == [r["Gsid"] for r in rows]
    assert route.call_count == 3
    first, second = body_of(route.calls[0]), body_of(route.calls[1])
    assert first["select"] == ["Gsid", "Name"]
    assert first["orderBy"] == {"Gsid": "asc"}
    assert first["limit"] == 2
    assert first["offset"] == 0
    assert first["where"]["expression"] == "A"
    assert second["where"] == {
        "conditions": [
            {
                "name": "ModifiedDate",
                "alias": "A",
                "value": ["2024-02-05 00:00:00"],
                "operator": "GTE",
            },
            {"name": "Gsid", "alias": "B", "value": [gsid(1)], "operator": "GT"},
        ],
        "expression": "A AND B",
    }
    headers = route.calls[0].request.headers
    assert headers["accesskey"] == KEY
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"
    assert client.calls["read"] == 3
    assert client.calls["query:Company"] == 3


def test_explicit_timeouts(clock: FakeClock) -> None:
    """The HTTP client carries the configured connect and read timeouts."""
    client = make_client(clock, connect_timeout=3.0, read_timeout=45.0)
    timeout = client._http.timeout
    assert (timeout.connect, timeout.read) == (3.0, 45.0)


def test_query_accepts_data_records_form(router: respx.MockRouter, clock: FakeClock) -> None:
    """data as {"records": [...]} is read like a list."""
    router.post(QUERY).mock(
        return_value=httpx.Response(200, json=env({"records": [{"Gsid": gsid(1)}]}))
    )
    pages = list(make_client(clock).query("Company", ["Gsid"]))
    assert pages == [[{"Gsid": gsid(1)}]]


@pytest.mark.parametrize(
    ("status", "code", "desc"),
    [
        (200, "GSOBJ_1XXX", "No data found for given criteria"),
        (400, "GSOBJ_1011", "No entity matches the given criteria"),
        (400, None, "No data found for given criteria"),
    ],
)
def test_no_data_envelope_is_an_empty_result(
    router: respx.MockRouter, clock: FakeClock, status: int, code: str | None, desc: str
) -> None:
    """The documented no-data failure (200 or 400) ends the read without error or retry."""
    route = router.post(QUERY).mock(
        return_value=httpx.Response(status, json=env(None, result=False, code=code, desc=desc))
    )
    client = make_client(clock)
    assert list(client.query("Company", ["Name"])) == []
    assert route.call_count == 1
    assert clock.sleeps == []


def test_no_data_after_a_full_page_ends_the_read(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """A full last page followed by "No data found" yields just the rows."""
    router.post(QUERY).mock(
        side_effect=[
            httpx.Response(200, json=env([{"Gsid": gsid(1)}, {"Gsid": gsid(2)}])),
            httpx.Response(200, json=env(None, result=False, code="GSOBJ_1011", desc="No data")),
        ]
    )
    pages = list(make_client(clock).query("Company", ["Name"], page_size=2))
    assert [len(p) for p in pages] == [2]


def test_invalid_field_is_rejected(router: respx.MockRouter, clock: FakeClock) -> None:
    """GSOBJ_1002 raises RequestRejected at once (no retry), naming the code."""
    route = router.post(QUERY).mock(
        return_value=httpx.Response(
            400,
            json=env(
                None,
                result=False,
                code="GSOBJ_1002",
                desc="Invalid field, please re-check data mapping",
            ),
        )
    )
    with pytest.raises(RequestRejected, match="GSOBJ_1002"):
        list(make_client(clock).query("Company", ["Nope"]))
    assert route.call_count == 1


def test_keyset_without_progress_is_refused(router: respx.MockRouter, clock: FakeClock) -> None:
    """A server that ignores Gsid GT (same page again) stops the read instead of looping."""
    page = env([{"Gsid": gsid(1)}, {"Gsid": gsid(2)}])
    router.post(QUERY).mock(return_value=httpx.Response(200, json=page))
    with pytest.raises(ContractViolation, match="no progress") as info:
        list(make_client(clock).query("Company", ["Name"], page_size=2))
    assert info.value.exit_code == 3


def test_429_with_retry_after_is_waited_out(router: respx.MockRouter, clock: FakeClock) -> None:
    """A 429 GU_2400 with Retry-After sleeps that long (injected sleep), then succeeds."""
    route = router.post(QUERY).mock(
        side_effect=[
            httpx.Response(429, json=env(None, result=False, code="GU_2400"),
                           headers={"Retry-After": "17"}),
            httpx.Response(200, json=env([{"Gsid": gsid(1)}])),
        ]
    )  # fmt: skip
    client = make_client(clock)
    assert list(client.query("Company", ["Name"])) == [[{"Gsid": gsid(1)}]]
    assert clock.sleeps == [17.0]
    assert route.call_count == 2
    assert client.calls["read"] == 2


def test_html_502_from_a_proxy_is_retried(router: respx.MockRouter, clock: FakeClock) -> None:
    """An HTML 502 (not JSON) is transient: retried with backoff, then succeeds."""
    router.post(QUERY).mock(
        side_effect=[
            httpx.Response(502, text="<html><h1>502 Bad Gateway</h1></html>",
                           headers={"Content-Type": "text/html"}),
            httpx.Response(200, json=env([{"Gsid": gsid(1)}])),
        ]
    )  # fmt: skip
    assert len(list(make_client(clock).query("Company", ["Name"]))) == 1
    assert clock.sleeps == [1.0]


def test_exhausted_retries_raise_upstream_unavailable(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """503 on every attempt ends in UpstreamUnavailable after max_attempts calls."""
    route = router.post(QUERY).mock(return_value=httpx.Response(503, text="Service Unavailable"))
    with pytest.raises(UpstreamUnavailable, match="503"):
        list(make_client(clock).query("Company", ["Name"]))
    assert route.call_count == 4
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_retry_after_beyond_the_budget_is_quota_exceeded(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """A 429 asking for hours (daily allocation used up) raises QuotaExceeded without sleeping."""
    route = router.post(QUERY).mock(
        return_value=httpx.Response(
            429, json=env(None, result=False, code="GU_2400"), headers={"Retry-After": "30000"}
        )
    )
    with pytest.raises(QuotaExceeded, match="GU_2400"):
        list(make_client(clock).query("Company", ["Name"]))
    assert route.call_count == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(401, json=env(None, result=False, code="GS_APIG_2401", desc="Unauthorized")),
        httpx.Response(200, json=env(None, result=False, code="GS_APIG_2401", desc="Unauthorized")),
        httpx.Response(400, json=env(None, result=False, code="GSOBJ_1024",
                                     desc="Invalid authorization headers")),
    ],
    ids=["401", "200 result false", "GSOBJ_1024"],
)  # fmt: skip
def test_auth_failures_raise_authentication_error(
    router: respx.MockRouter, clock: FakeClock, response: httpx.Response
) -> None:
    """Every auth-failure form raises AuthenticationError at once, without the key in it."""
    route = router.post(QUERY).mock(return_value=response)
    with pytest.raises(AuthenticationError) as info:
        list(make_client(clock).query("Company", ["Name"]))
    assert route.call_count == 1
    assert KEY not in str(info.value)


def test_connection_errors_are_retried_for_reads(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """A connect error and a read timeout on a read are retried."""
    router.post(QUERY).mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.ReadTimeout("slow"),
            httpx.Response(200, json=env([{"Gsid": gsid(1)}])),
        ]
    )
    assert len(list(make_client(clock).query("Company", ["Name"]))) == 1
    assert len(clock.sleeps) == 2


def test_ambiguous_timeout_on_insert_is_not_repeated(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """A read timeout after an insert was sent is not retried (it may have been applied)."""
    route = router.post(COMPANY).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(UpstreamUnavailable, match="outcome unknown"):
        make_client(clock).insert("Company", [{"Name": "Acme"}])
    assert route.call_count == 1


def test_connect_error_on_insert_is_retried(router: respx.MockRouter, clock: FakeClock) -> None:
    """A connect error never reached the server, so even an insert is retried."""
    router.post(COMPANY).mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.Response(200, json=env({"count": 1, "records": [{"Gsid": gsid(9)}]})),
        ]
    )
    results = make_client(clock).insert("Company", [{"Name": "Acme"}])
    assert [(r.success, r.id) for r in results] == [(True, gsid(9))]


def test_redirects_are_not_followed(router: respx.MockRouter, clock: FakeClock) -> None:
    """A 302 to another host is an upstream fault naming status and host, never the path:
    the access key never leaves the configured host."""
    route = router.post(QUERY).mock(
        return_value=httpx.Response(302, headers={"Location": "https://evil.example/login?k=1"})
    )
    with pytest.raises(RedirectRefused) as info:
        list(make_client(clock).query("Company", ["Name"]))
    assert info.value.exit_code == 3
    assert str(info.value) == (
        "gainsight query:Company: HTTP 302 redirect to https://evil.example refused "
        "(redirects are never followed)"
    )
    assert route.call_count == 1


def test_logs_never_carry_the_key(router: respx.MockRouter, clock: FakeClock) -> None:
    """Retry log lines name operation, status and code, and never the access key."""
    router.post(QUERY).mock(
        side_effect=[
            httpx.Response(429, json=env(None, result=False, code="GU_2400"),
                           headers={"Retry-After": "1"}),
            httpx.Response(200, json=env([{"Gsid": gsid(1)}])),
        ]
    )  # fmt: skip
    with capture_logs() as logs:
        list(make_client(clock).query("Company", ["Name"]))
    retry = [entry for entry in logs if entry["event"] == "gainsight.retry"]
    assert retry == [
        {"event": "gainsight.retry", "log_level": "warning", "operation": "query:Company",
         "status": 429, "code": "GU_2400", "wait_seconds": 1.0}
    ]  # fmt: skip
    assert KEY not in repr(logs)


def test_client_limiter_keeps_calls_per_window(router: respx.MockRouter, clock: FakeClock) -> None:
    """With a limit of 10 a minute, 25 reads never put more than 10 starts in any 60 s."""
    stamps: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        stamps.append(clock.now)
        return httpx.Response(200, json=env([{"Gsid": gsid(1)}]))

    router.post(QUERY).mock(side_effect=answer)
    client = make_client(clock, rate_limit_per_minute=10)
    for _ in range(25):
        list(client.query("Company", ["Name"]))
    worst = max(sum(1 for t in stamps if s <= t < s + 60.0) for s in stamps)
    assert worst == 10
    assert stamps[-1] - stamps[0] >= 120.0


# -- writes --------------------------------------------------------------------------------


def test_120_updates_take_three_calls_with_per_record_failures(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """120 records go out as 50 + 50 + 20 (keys and lookups on each); failures map back."""
    records = [{"Gsid": gsid(i), "RiskFlags__gc": "NO_CSM"} for i in range(120)]
    lookups = {"Csm": {"fields": {"CsmEmail": "Email"}, "lookupField": "Gsid",
                       "objectName": "GsUser", "multiMatchOption": "FIRSTMATCH",
                       "onNoMatch": "ERROR"}}  # fmt: skip

    def answer(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)["records"]
        bad = [i for i, r in enumerate(sent) if r["Gsid"] in (gsid(7), gsid(110))]
        ok = [r for i, r in enumerate(sent) if i not in bad]
        errors = [{"index": i, "record": {"Gsid": sent[i]["Gsid"]}, "errorCode": "GSOBJ_1011",
                   "errorDesc": "No entity matches the given criteria"} for i in bad]  # fmt: skip
        data = {"count": len(ok), "errors": errors or None, "records": ok}
        return httpx.Response(200, json=env(data))

    route = router.put(COMPANY).mock(side_effect=answer)
    client = make_client(clock)
    results = client.update("Company", records, lookups=lookups)
    assert route.call_count == 3
    sizes = [len(body_of(c)["records"]) for c in route.calls]
    assert sizes == [50, 50, 20]
    assert all(c.request.url.params["keys"] == "Gsid" for c in route.calls)
    assert all(body_of(c)["lookups"] == lookups for c in route.calls)
    assert [r.index for r in results] == list(range(120))
    failed = [(r.index, r.code) for r in results if not r.success]
    assert failed == [(7, "GSOBJ_1011"), (110, "GSOBJ_1011")]
    assert all(r.id == gsid(r.index) for r in results)
    assert client.calls["write"] == 3
    assert client.calls["update:Company"] == 3


def test_update_keys_and_missing_key_values(router: respx.MockRouter, clock: FakeClock) -> None:
    """Several keys go comma-joined; a record without a key value fails locally, unsent."""
    route = router.put(COMPANY).mock(
        return_value=httpx.Response(200, json=env({"count": 1, "records": [
            {"Name": "Acme", "SfdcAccountId": "001A", "Arr": 5, "Gsid": gsid(3)}]}))
    )  # fmt: skip
    results = make_client(clock).update(
        "Company",
        [{"Name": "Acme", "SfdcAccountId": "001A", "Arr": 5}, {"Name": "NoSfdc", "Arr": 1}],
        keys=("Name", "SfdcAccountId"),
    )
    assert route.calls[0].request.url.params["keys"] == "Name,SfdcAccountId"
    assert len(body_of(route.calls[0])["records"]) == 1
    assert [(r.index, r.success, r.id, r.code) for r in results] == [
        (0, True, gsid(3), None), (1, False, None, "MISSING_KEY"),
    ]  # fmt: skip
    assert results[1].fields == ("SfdcAccountId",)


def test_all_failed_batch_is_record_failures_not_an_error(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """400 result:false with data fails each record with its code; the call does not raise."""
    data = {"count": 0, "records": [], "errors": [
        {"index": 0, "errorCode": "GSOBJ_1006", "errorDesc": "Invalid date"},
        {"index": 1, "errorCode": "GSOBJ_1001", "errorDesc": "Too long"}]}  # fmt: skip
    router.put(COMPANY).mock(
        return_value=httpx.Response(400, json=env(data, result=False, code="GSOBJ_1006",
                                                  desc="Invalid date"))
    )  # fmt: skip
    results = make_client(clock).update("Company", [{"Gsid": gsid(0)}, {"Gsid": gsid(1)}])
    assert [(r.success, r.code) for r in results] == [(False, "GSOBJ_1006"), (False, "GSOBJ_1001")]


def test_update_no_match_without_data_fails_the_batch_records(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """result:false "No entity matches" with data null fails every record of the batch."""
    router.put(COMPANY).mock(
        return_value=httpx.Response(400, json=env(None, result=False, code="GSOBJ_1011",
                                                  desc="No entity matches the given criteria"))
    )  # fmt: skip
    results = make_client(clock).update("Company", [{"Gsid": gsid(0)}, {"Gsid": gsid(1)}])
    assert [(r.success, r.code, r.id) for r in results] == [
        (False, "GSOBJ_1011", gsid(0)), (False, "GSOBJ_1011", gsid(1)),
    ]  # fmt: skip


def test_refusal_without_data_fails_the_single_record(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """result: false without per-record data about one record: that record fails with the
    API's code and reason; the run goes on (G2)."""
    router.put(COMPANY).mock(
        return_value=httpx.Response(400, json=env(None, result=False, code="GSOBJ_1002",
                                                  desc="Invalid field mapping"))
    )  # fmt: skip
    (result,) = make_client(clock).update("Company", [{"Gsid": gsid(0), "Bogus": 1}])
    assert (result.success, result.code, result.id) == (False, "GSOBJ_1002", gsid(0))
    assert result.message == "Invalid field mapping"


def test_rejection_without_an_envelope_still_raises(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """A 4xx that is not a Gainsight refusal (no result: false) fails the call."""
    router.put(COMPANY).mock(return_value=httpx.Response(404, json={"message": "no route"}))
    with pytest.raises(RequestRejected):
        make_client(clock).update("Company", [{"Gsid": gsid(0), "Bogus": 1}])


def test_no_records_no_calls(clock: FakeClock) -> None:
    """Writing nothing makes no call."""
    client = make_client(clock)
    assert client.update("Company", []) == []
    assert client.cta_create([]) == []
    assert client.calls == {}


# -- CTAs ----------------------------------------------------------------------------------


def test_cta_create_sends_requests_records_with_reference_ids(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """CTA create wraps records as requests[].record with referenceId; ids come back by ref."""

    def answer(request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)["requests"]
        data = [{"referenceId": it["record"]["referenceId"], "Gsid": f"1S01{i}", "success": True,
                 "errors": []} for i, it in reversed(list(enumerate(items)))]  # fmt: skip
        return httpx.Response(200, json=env(data))

    route = router.post(CTA).mock(side_effect=answer)
    records = [{"Name": f"Red health: A{i}", "CompanyId": gsid(i), "type": "Risk",
                "reason": "Red Health", "referenceId": "mine"} for i in range(3)]  # fmt: skip
    results = make_client(clock, write_batch=2).cta_create(records)
    assert route.call_count == 2
    sent = body_of(route.calls[0])["requests"]
    assert sent[0]["record"]["Name"] == "Red health: A0"
    assert [s["record"]["referenceId"] for s in sent] == ["0", "1"]
    assert [(r.index, r.id, r.success) for r in results] == [
        (0, "1S010", True), (1, "1S011", True), (2, "1S010", True),
    ]  # fmt: skip


def test_cta_update_requires_gsid(router: respx.MockRouter, clock: FakeClock) -> None:
    """CTA update PUTs records carrying Gsid; one without it fails locally."""
    route = router.put(CTA).mock(
        return_value=httpx.Response(200, json=env([{"referenceId": "0", "Gsid": "1S01",
                                                    "success": True, "errors": []}]))
    )  # fmt: skip
    results = make_client(clock).cta_update(
        [{"Gsid": "1S01", "status": "Closed Success"}, {"status": "Closed Success"}]
    )
    assert body_of(route.calls[0]) == {
        "requests": [{"record": {"Gsid": "1S01", "status": "Closed Success", "referenceId": "0"}}]
    }
    assert [(r.success, r.id, r.code) for r in results] == [
        (True, "1S01", None), (False, None, "MISSING_KEY"),
    ]  # fmt: skip


def test_cta_list_pages_until_short_page_and_dedupes(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """pageNumber counts from 1 until a short page; a CTA seen on two pages comes once."""
    ctas = [{"Gsid": f"1S0{i}", "Name": f"N{i}"} for i in range(6)]
    route = router.post(
        CTA_LIST
    ).mock(
        side_effect=[
            httpx.Response(200, json=env(ctas[0:3])),
            httpx.Response(200, json=env(ctas[2:5])),  # overlaps: the list moved under us
            httpx.Response(200, json=env(ctas[5:6])),
        ]
    )
    conditions = [Condition("CompanyId", "EQ", [gsid(1)]), Condition("IsClosed", "EQ", [False])]
    client = make_client(clock, cta_page_size=3)
    pages = list(client.cta_list(["Name"], conditions=conditions))
    assert [r["Gsid"] for p in pages for r in p] == [c["Gsid"] for c in ctas]
    sent = [body_of(c) for c in route.calls]
    assert [s["pageNumber"] for s in sent] == [1, 2, 3]
    assert all(s["pageSize"] == 3 for s in sent)
    assert sent[0]["select"] == ["Gsid", "Name"]
    assert sent[0]["where"]["conditions"][0] == {
        "fieldName": "CompanyId",
        "alias": "A",
        "value": [gsid(1)],
        "operator": "EQ",
    }
    assert sent[0]["where"]["expression"] == "A AND B"


def test_cta_list_invalid_select_is_rejected(router: respx.MockRouter, clock: FakeClock) -> None:
    """COCKPIT_5101 (invalid select) raises RequestRejected."""
    router.post(CTA_LIST).mock(
        return_value=httpx.Response(400, json=env({}, result=False, code="COCKPIT_5101",
                                                  desc="Invalid fields in select clause - x"))
    )  # fmt: skip
    with pytest.raises(RequestRejected, match="COCKPIT_5101"):
        list(make_client(clock).cta_list(["x"]))


def test_cta_list_ignoring_page_number_is_caught(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """A server returning the same full page for every pageNumber stops after a few pages."""
    page = env([{"Gsid": "1S01"}, {"Gsid": "1S02"}])
    route = router.post(CTA_LIST).mock(return_value=httpx.Response(200, json=page))
    with pytest.raises(ContractViolation, match="brought nothing new"):
        list(make_client(clock, cta_page_size=2).cta_list(["Name"]))
    assert route.call_count == 4
