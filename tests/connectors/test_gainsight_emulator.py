"""GainsightClient against the Gainsight emulator over real HTTPS (integration)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.errors import AuthenticationError, QuotaExceeded, UpstreamUnavailable
from connectors.gainsight import Condition, GainsightClient, GainsightConfig
from connectors.retry import RetryPolicy
from emulators.gainsight import GainsightEmulator
from emulators.gainsight.testing import AppSwitch
from emulators.http import EmulatorServer, Request, Response
from emulators.store import Clock
from emulators.tls import TlsMaterial

T0 = 1_700_000_000_000
KEY = "teamsync-emulator-gainsight-key"


class Time:
    """One fake time for client and emulator: the client's sleeps move both clocks."""

    def __init__(self, emu_clock: Clock) -> None:
        self.emu_clock = emu_clock
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.emu_clock.advance(round(seconds * 1000))


@pytest.fixture(scope="module")
def server(tls: TlsMaterial) -> Iterator[tuple[AppSwitch, str]]:
    """One HTTPS server for the module; each test puts its own emulator behind it."""
    switch = AppSwitch()
    with EmulatorServer(switch, ssl_context=tls.server_context) as srv:
        yield switch, srv.url


@pytest.fixture
def gs_emu(
    server: tuple[AppSwitch, str], request: pytest.FixtureRequest
) -> Iterator[GainsightEmulator]:
    switch, _ = server
    profile = getattr(request, "param", "strict")
    emulator = GainsightEmulator(clock=Clock(T0), profile=profile)
    emulator.load(
        "gsuser",
        [
            {"Name": "Jane Doe", "Email": "jane@vendor.com"},
            {"Name": "Bob Roe", "Email": "bob@vendor.com"},
        ],
    )
    switch.target = emulator
    yield emulator
    switch.target = None


@pytest.fixture
def fake_time(gs_emu: GainsightEmulator) -> Time:
    return Time(gs_emu.clock)


ClientFactory = Callable[..., GainsightClient]


@pytest.fixture
def make_client(
    server: tuple[AppSwitch, str], tls: TlsMaterial, fake_time: Time
) -> Iterator[ClientFactory]:
    clients: list[GainsightClient] = []

    def make(**overrides: Any) -> GainsightClient:
        settings: dict[str, Any] = {
            "ca_bundle": tls.ca_path,
            "retry": RetryPolicy(max_attempts=4, initial_backoff=1.0, jitter=0.0),
            **overrides,
        }
        key = settings.pop("access_key", KEY)
        config = GainsightConfig(server[1], key, **settings)
        client = GainsightClient(config, sleep=fake_time.sleep, clock=fake_time)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def load_companies(gs_emu: GainsightEmulator, n: int) -> list[str]:
    gs_emu.load(
        "company",
        [
            {"Name": f"Company {i:03d}", "SfdcAccountId": f"001{i:012d}AAA", "Arr": 1000 * i}
            for i in range(n)
        ],
    )
    return gs_emu.tables["company"].ids()


def user_gsid(gs_emu: GainsightEmulator, email: str) -> str:
    table = gs_emu.tables["gsuser"]
    (gsid,) = [g for g in table.ids() if table.value(g, "Email") == email]
    return gsid


# -- reads ---------------------------------------------------------------------------------


def test_keyset_paging_reads_every_company_exactly_once(
    gs_emu: GainsightEmulator, make_client: ClientFactory
) -> None:
    """23 companies at 5 a page: 5 calls, every Gsid once, dates as epoch ms."""
    gsids = load_companies(gs_emu, 23)
    client = make_client(page_size=5)
    pages = list(client.query("Company", ["Name", "Arr", "ModifiedDate"]))
    seen = [row["Gsid"] for page in pages for row in page]
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert sorted(seen) == sorted(gsids)
    assert len(set(seen)) == 23
    assert all(isinstance(row["ModifiedDate"], int) for page in pages for row in page)
    assert gs_emu.log.count(api="gainsight", operation="company.query") == 5
    assert client.calls["query:Company"] == 5


def test_keyset_paging_with_a_filter(gs_emu: GainsightEmulator, make_client: ClientFactory) -> None:
    """User conditions are ANDed with the keyset condition on every page."""
    load_companies(gs_emu, 20)
    client = make_client()
    rows = [
        r
        for page in client.query(
            "Company", ["Arr"], conditions=[Condition("Arr", "GTE", [12000])], page_size=3
        )
        for r in page
    ]
    assert sorted(r["Arr"] for r in rows) == [1000 * i for i in range(12, 20)]


@pytest.mark.parametrize("status", [200, 400])
def test_no_data_envelope_is_an_empty_result(
    gs_emu: GainsightEmulator, make_client: ClientFactory, status: int
) -> None:
    """The "No data found" envelope (HTTP 200 or 400) reads as no rows."""
    gs_emu.no_data_status = status
    load_companies(gs_emu, 3)
    client = make_client()
    assert (
        list(client.query("Company", ["Name"], conditions=[Condition("Name", "EQ", ["x"])])) == []
    )
    assert client.calls["read"] == 1


def test_users_are_read_with_the_same_paging(
    gs_emu: GainsightEmulator, make_client: ClientFactory
) -> None:
    """GsUser reads page the same way and return e-mails and activity."""
    rows = [r for p in make_client().query("GsUser", ["Email", "IsActiveUser"]) for r in p]
    assert sorted(r["Email"] for r in rows) == ["bob@vendor.com", "jane@vendor.com"]


# -- writes --------------------------------------------------------------------------------


@pytest.mark.parametrize(("gs_emu", "calls"), [("lenient", 3), ("strict", 16)], indirect=["gs_emu"])
def test_120_updates_report_per_record_failures_and_the_rest_commit(
    gs_emu: GainsightEmulator, make_client: ClientFactory, calls: int
) -> None:
    """120 updates with 2 bad records: the bad records fail alone, the rest commit.  A tenant
    answering per record needs 3 calls; a strict one rejects the 2 batches whole and the
    client narrows them down (16 calls: 3 + 6-7 per culprit)."""
    gsids = load_companies(gs_emu, 120)
    jane = user_gsid(gs_emu, "jane@vendor.com")
    records: list[dict[str, Any]] = [
        {"Gsid": g, "RiskFlags__gc": "NO_CSM", "AccountExecutive__gc": jane} for g in gsids
    ]
    records[7]["AccountExecutive__gc"] = "1P01NOTAUSER0000000000000000000000000"
    records[64]["Gsid"] = "1P02DOESNOTEXIST00000000000000000000"
    client = make_client()
    results = client.update("Company", records)

    assert gs_emu.log.count(api="gainsight", operation="company.update") == calls
    assert client.calls["write"] == calls
    assert [r.index for r in results] == list(range(120))
    failed = {r.index: r.code for r in results if not r.success}
    assert set(failed) == {7, 64}
    assert failed[64] == "GSOBJ_1011"
    assert failed[7] == "GSOBJ_1004"
    assert results[7].fields == ("AccountExecutive__gc",)
    for i, gsid in enumerate(gsids):
        stored = gs_emu.get("company", gsid)
        assert stored is not None
        committed = stored["RiskFlags__gc"] == "NO_CSM"
        assert committed is (i not in (7, 64)), i
    assert results[0].id == gsids[0]


def test_update_with_email_lookup(gs_emu: GainsightEmulator, make_client: ClientFactory) -> None:
    """A lookups block resolves a payload e-mail into the GsUser lookup field."""
    (gsid,) = load_companies(gs_emu, 1)
    lookups = {
        "SolutionsArchitect__gc": {
            "fields": {"SaEmail": "Email"},
            "lookupField": "Gsid",
            "objectName": "GsUser",
            "multiMatchOption": "FIRSTMATCH",
            "onNoMatch": "ERROR",
        }
    }
    results = make_client().update(
        "Company", [{"Gsid": gsid, "SaEmail": "BOB@vendor.com"}], lookups=lookups
    )
    assert [(r.success, r.id) for r in results] == [(True, gsid)]
    stored = gs_emu.get("company", gsid)
    assert stored is not None
    assert stored["SolutionsArchitect__gc"] == user_gsid(gs_emu, "bob@vendor.com")


def test_all_failed_batch_comes_back_as_record_failures(
    gs_emu: GainsightEmulator, make_client: ClientFactory
) -> None:
    """A batch where every record fails (HTTP 400 result:false) does not raise."""
    results = make_client().update(
        "Company", [{"Gsid": "1P02NOPE1", "Arr": 1}, {"Gsid": "1P02NOPE2", "Arr": 2}]
    )
    assert [(r.success, r.code, r.id) for r in results] == [
        (False, "GSOBJ_1011", "1P02NOPE1"),
        (False, "GSOBJ_1011", "1P02NOPE2"),
    ]


def test_insert_maps_new_gsids_and_failures(
    gs_emu: GainsightEmulator, make_client: ClientFactory
) -> None:
    """Inserted records get their new Gsid; a record missing its Name fails alone."""
    records: list[dict[str, Any]] = [
        {"Name": "Acme", "Arr": 10},
        {"Arr": 20},
        {"Name": "Globex", "Arr": 30},
    ]
    results = make_client().insert("Company", records)
    assert [(r.index, r.success, r.code) for r in results] == [
        (0, True, None),
        (1, False, "GSOBJ_1007"),
        (2, True, None),
    ]
    for result, name in ((results[0], "Acme"), (results[2], "Globex")):
        assert result.id is not None
        stored = gs_emu.get("company", result.id)
        assert stored is not None
        assert stored["Name"] == name


# -- limits, retries, failures ---------------------------------------------------------------


def test_limiter_keeps_under_the_server_limit(
    gs_emu: GainsightEmulator, make_client: ClientFactory, fake_time: Time
) -> None:
    """Client and server both at 5 a minute: 12 reads, no 429, spread over 2+ minutes."""
    load_companies(gs_emu, 2)
    gs_emu.rate_limit_per_minute = 5
    client = make_client(rate_limit_per_minute=5)
    for _ in range(12):
        list(client.query("Company", ["Name"]))
    statuses = [c.status for c in gs_emu.log.calls(operation="company.query")]
    assert statuses == [200] * 12
    assert fake_time.now - 100.0 >= 120.0
    assert client.calls["read"] == 12


def test_429_with_retry_after_is_waited_out(
    gs_emu: GainsightEmulator, make_client: ClientFactory, fake_time: Time
) -> None:
    """Over the server's limit: a 429 GU_2400 with Retry-After is slept out, then succeeds."""
    load_companies(gs_emu, 2)
    gs_emu.rate_limit_per_minute = 3
    client = make_client()
    for _ in range(4):
        assert len([r for p in client.query("Company", ["Name"]) for r in p]) == 2
    statuses = [c.status for c in gs_emu.log.calls(operation="company.query")]
    assert statuses == [200, 200, 200, 429, 200]
    left_in_minute = 60 - (T0 % 60_000) / 1000  # the emulator's Retry-After (fixed windows)
    assert fake_time.sleeps == [left_in_minute]


def test_daily_quota_used_up_raises_quota_exceeded(
    gs_emu: GainsightEmulator, make_client: ClientFactory, fake_time: Time
) -> None:
    """The emulator's daily limit (429, Retry-After until midnight) is QuotaExceeded at once."""
    load_companies(gs_emu, 1)
    gs_emu.daily_limit = 2
    client = make_client()
    for _ in range(2):
        list(client.query("Company", ["Name"]))
    with pytest.raises(QuotaExceeded):
        list(client.query("Company", ["Name"]))
    assert fake_time.sleeps == []
    assert [c.status for c in gs_emu.log.calls(operation="company.query")] == [200, 200, 429]


def test_exhausted_retries_raise_upstream_unavailable(
    gs_emu: GainsightEmulator, make_client: ClientFactory
) -> None:
    """503 on every attempt: UpstreamUnavailable after max_attempts calls."""
    gs_emu.faults.fail_next(503, 503, 503, 503)
    client = make_client()
    with pytest.raises(UpstreamUnavailable, match="503"):
        list(client.query("Company", ["Name"]))
    assert gs_emu.log.count(operation="company.query") == 4


def test_emulator_gateway_error_is_retried(
    gs_emu: GainsightEmulator, make_client: ClientFactory, fake_time: Time
) -> None:
    """The emulator's plain-text 502 is retried and the read then succeeds."""
    load_companies(gs_emu, 1)
    gs_emu.faults.fail_next(502)
    rows = [r for p in make_client().query("Company", ["Name"]) for r in p]
    assert len(rows) == 1
    assert fake_time.sleeps == [1.0]


def test_proxy_html_502_is_retried(
    server: tuple[AppSwitch, str],
    gs_emu: GainsightEmulator,
    make_client: ClientFactory,
    fake_time: Time,
) -> None:
    """An HTML 502 from a proxy in front of the API is retried, then the real answer is read."""
    load_companies(gs_emu, 1)
    switch, _ = server
    answered: list[int] = []

    def proxy(request: Request) -> Response:
        if not answered:
            answered.append(502)
            html = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
            return Response.text(html, 502, content_type="text/html")
        return gs_emu(request)

    switch.target = proxy
    rows = [r for p in make_client().query("Company", ["Name"]) for r in p]
    assert len(rows) == 1
    assert answered == [502]
    assert fake_time.sleeps == [1.0]


def test_wrong_key_raises_authentication_error(
    gs_emu: GainsightEmulator, make_client: ClientFactory
) -> None:
    """A refused access key (401 GS_APIG_2401) raises AuthenticationError, once, no key shown."""
    client = make_client(access_key="wrong-key-abcdefghij")
    with pytest.raises(AuthenticationError, match="GS_APIG_2401") as info:
        list(client.query("Company", ["Name"]))
    assert "wrong-key-abcdefghij" not in str(info.value)
    assert client.calls["read"] == 1


def test_auth_failure_inside_a_200_raises_authentication_error(
    server: tuple[AppSwitch, str], gs_emu: GainsightEmulator, make_client: ClientFactory
) -> None:
    """A gateway answering 200 with result:false GS_APIG_2401 is an auth failure too."""
    switch, _ = server

    def gateway(request: Request) -> Response:
        return Response.json(
            {"result": False, "errorCode": "GS_APIG_2401", "errorDesc": "Unauthorized",
             "requestId": "0a719c1a", "message": "Unauthorized"},
            200,
        )  # fmt: skip

    switch.target = gateway
    with pytest.raises(AuthenticationError):
        make_client().update("Company", [{"Gsid": "1P02X", "Arr": 1}])


# -- CTAs ----------------------------------------------------------------------------------

CTA_SELECT = ["Name", "CompanyId", "TypeId__gr.Name", "ReasonId__gr.Name", "StatusId__gr.Name",
              "OwnerId__gr.Email", "DueDate", "IsClosed"]  # fmt: skip


def risk_cta(company: str, owner: str, reason: str = "Red Health") -> dict[str, Any]:
    return {
        "Name": f"{reason}: Company",
        "CompanyId": company,
        "OwnerId": owner,
        "DueDate": "2025-10-10",
        "type": "Risk",
        "reason": reason,
        "status": "New",
        "priority": "High",
    }


def open_risk(company: str) -> list[Condition]:
    return [
        Condition("CompanyId", "EQ", [company]),
        Condition("TypeId__gr.Name", "EQ", ["Risk"]),
        Condition("IsClosed", "EQ", [False]),
    ]


@pytest.mark.parametrize(("gs_emu", "calls"), [("lenient", 1), ("strict", 4)], indirect=["gs_emu"])
def test_cta_create_list_close_round_trip(
    gs_emu: GainsightEmulator, make_client: ClientFactory, calls: int
) -> None:
    """Open two risk CTAs (one bad fails alone), find them open, close one, list again.
    Strict: the batch is rejected whole and narrowed down (4 create calls)."""
    (company,) = load_companies(gs_emu, 1)
    jane = user_gsid(gs_emu, "jane@vendor.com")
    client = make_client()
    created = client.cta_create(
        [
            risk_cta(company, jane),
            risk_cta(company, jane, reason="No Such Reason"),
            risk_cta(company, jane, reason="Renewal at Risk"),
        ]
    )
    assert [(r.success, r.code) for r in created] == [
        (True, None),
        (False, "GSOBJ_1012"),
        (True, None),
    ]
    red, renewal = created[0].id, created[2].id
    assert red is not None
    assert renewal is not None
    assert red.startswith("1S01")
    assert renewal != red
    assert gs_emu.log.count(operation="cta.create") == calls
    assert len(gs_emu.tables["calltoaction"]) == 2

    rows = [r for p in client.cta_list(CTA_SELECT, conditions=open_risk(company)) for r in p]
    assert {r["Gsid"]: r["ReasonId__gr.Name"] for r in rows} == {
        red: "Red Health",
        renewal: "Renewal at Risk",
    }
    assert all(r["OwnerId__gr.Email"] == "jane@vendor.com" for r in rows)
    assert all(r["DueDate"].startswith("2025-10-10T") for r in rows)  # Cockpit dates are ISO

    closed = client.cta_update([{"Gsid": red, "status": "Closed Success"}])
    assert [(r.success, r.id) for r in closed] == [(True, red)]
    still_open = [r["Gsid"] for p in client.cta_list(CTA_SELECT, conditions=open_risk(company))
                  for r in p]  # fmt: skip
    assert still_open == [renewal]
    stored = gs_emu.get("cta", red)
    assert stored is not None
    assert stored["IsClosed"] is True


def test_cta_list_pages_read_every_cta_once(
    gs_emu: GainsightEmulator, make_client: ClientFactory
) -> None:
    """Seven CTAs at 3 a page: three calls (1-based pages), each CTA once."""
    (company,) = load_companies(gs_emu, 1)
    jane = user_gsid(gs_emu, "jane@vendor.com")
    client = make_client(cta_page_size=3)
    created = client.cta_create([risk_cta(company, jane) for _ in range(7)])
    assert all(r.success for r in created)
    pages = list(client.cta_list(["Name"], conditions=open_risk(company)))
    assert sorted(r["Gsid"] for p in pages for r in p) == sorted(r.id for r in created if r.id)
    assert gs_emu.log.count(operation="cta.list") == 3


def test_cta_list_with_no_match_is_empty(
    gs_emu: GainsightEmulator, make_client: ClientFactory
) -> None:
    """A CTA list matching nothing (data: []) yields no pages."""
    (company,) = load_companies(gs_emu, 1)
    assert list(make_client().cta_list(["Name"], conditions=open_risk(company))) == []
