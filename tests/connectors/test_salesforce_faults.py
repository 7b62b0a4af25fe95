"""SalesforceClient under injected faults: 429/503, quota, budget, timeouts, dead servers."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.errors import QuotaExceeded, RequestRejected, UpstreamUnavailable
from connectors.retry import RetryPolicy
from connectors.salesforce import SalesforceClient, SalesforceConfig
from emulators.http import EmulatorServer
from emulators.salesforce import SalesforceEmulator
from emulators.salesforce.testing import SmallOrg, seed_small_org, serve, shared_credentials
from emulators.tls import TlsMaterial

SF = "salesforce"
COUNT = "SELECT COUNT() FROM Account"


@pytest.fixture
def sf_emu() -> SalesforceEmulator:
    return SalesforceEmulator(credentials=shared_credentials(), daily_api_max=1000)


@pytest.fixture
def org(sf_emu: SalesforceEmulator) -> SmallOrg:
    return seed_small_org(sf_emu, accounts=5)


def make(
    sf_emu: SalesforceEmulator,
    server: EmulatorServer,
    tls: TlsMaterial,
    waits: list[float],
    **kw: Any,
) -> SalesforceClient:
    kw.setdefault("retry", RetryPolicy(max_attempts=4, initial_backoff=0.25, jitter=0.0))
    config = SalesforceConfig(
        instance_url=server.url, access_token=sf_emu.issue_token(), ca_bundle=tls.ca_path, **kw
    )
    return SalesforceClient(config, sleep=waits.append)


@pytest.fixture
def client(
    sf_emu: SalesforceEmulator, server: EmulatorServer, tls: TlsMaterial, waits: list[float]
) -> SalesforceClient:
    return make(sf_emu, server, tls, waits)


@pytest.mark.usefixtures("org")
def test_429_and_503_are_retried_honouring_retry_after(
    client: SalesforceClient, sf_emu: SalesforceEmulator, waits: list[float]
) -> None:
    """429 and 503 answers are retried after the Retry-After the server sent."""
    sf_emu.faults.configure(retry_after_seconds=3)
    sf_emu.faults.fail_next(429, 503)
    assert client.count(COUNT) == 5
    assert waits == [3.0, 3.0]
    assert client.usage.calls["count"] == 3


@pytest.mark.usefixtures("org")
def test_without_retry_after_the_backoff_grows(
    client: SalesforceClient, sf_emu: SalesforceEmulator, waits: list[float]
) -> None:
    """Without Retry-After (Salesforce never sends one) the policy's backoff applies."""
    sf_emu.faults.configure(retry_after_seconds=None)
    sf_emu.faults.fail_next(503, 503, 503)
    assert client.count(COUNT) == 5
    assert waits == [0.25, 0.5, 1.0]


@pytest.mark.usefixtures("org")
def test_persistent_503_ends_in_upstream_unavailable(
    client: SalesforceClient, sf_emu: SalesforceEmulator, waits: list[float]
) -> None:
    """When every attempt fails the call raises UpstreamUnavailable after max_attempts."""
    sf_emu.faults.configure(rate_503=1.0, retry_after_seconds=1)
    with pytest.raises(UpstreamUnavailable) as info:
        client.count(COUNT)
    assert info.value.status == 503
    assert info.value.code == "SERVER_UNAVAILABLE"
    assert waits == [1.0, 1.0, 1.0]
    assert sf_emu.log.count(api=SF, operation="query") == 4


@pytest.mark.usefixtures("org")
def test_daily_quota_is_quota_exceeded_without_retries(
    client: SalesforceClient, sf_emu: SalesforceEmulator, waits: list[float]
) -> None:
    """403 REQUEST_LIMIT_EXCEEDED (TotalRequests) stops at once with QuotaExceeded."""
    sf_emu.faults.configure(daily_quota=sf_emu.api_usage)
    with pytest.raises(QuotaExceeded) as info:
        client.count(COUNT)
    assert info.value.code == "REQUEST_LIMIT_EXCEEDED"
    assert waits == []
    assert sf_emu.log.count(api=SF, operation="query") == 1


@pytest.mark.usefixtures("org")
def test_api_budget_stops_before_the_org_runs_dry(
    sf_emu: SalesforceEmulator, server: EmulatorServer, tls: TlsMaterial, waits: list[float]
) -> None:
    """Once Sforce-Limit-Info shows usage at the budget, no further call is sent."""
    client = make(sf_emu, server, tls, waits, api_budget=0.5)
    sf_emu.api_usage = 498
    assert client.count(COUNT) == 5  # usage unknown until this answer: 499/1000
    assert client.count(COUNT) == 5  # 500/1000
    assert (client.usage.used, client.usage.max) == (500, 1000)
    with pytest.raises(QuotaExceeded, match="budget") as info:
        client.count(COUNT)
    assert info.value.code == "API_BUDGET"
    assert sf_emu.log.count(api=SF, operation="query") == 2
    assert sf_emu.api_usage == 500


@pytest.mark.usefixtures("org")
def test_read_timeout_on_a_read_is_retried(
    sf_emu: SalesforceEmulator, server: EmulatorServer, tls: TlsMaterial, waits: list[float]
) -> None:
    """A read that times out is repeated (it is safe), then gives up."""
    client = make(sf_emu, server, tls, waits, read_timeout=0.2)
    sf_emu.faults.configure(latency_ms=400)
    with pytest.raises(UpstreamUnavailable) as info:
        client.count(COUNT)
    assert info.value.code == "TIMEOUT"
    assert len(waits) == 3


def test_read_timeout_on_a_create_is_not_repeated(
    sf_emu: SalesforceEmulator,
    server: EmulatorServer,
    tls: TlsMaterial,
    waits: list[float],
    org: SmallOrg,
) -> None:
    """A create whose answer is lost is not sent again: the server may have acted on it."""
    client = make(sf_emu, server, tls, waits, read_timeout=0.2)
    sf_emu.faults.configure(latency_ms=400)
    with pytest.raises(UpstreamUnavailable, match="not repeated"):
        client.create("Account", [{"Name": "Once only", "OwnerId": org.users[0]}])
    assert waits == []
    assert sf_emu.log.count(api=SF, operation="collections.create") <= 1


def test_unreachable_server_is_upstream_unavailable(tls: TlsMaterial, waits: list[float]) -> None:
    """Connection refused is retried (nothing was sent), then UpstreamUnavailable."""
    sf_emu = SalesforceEmulator(credentials=shared_credentials())
    with serve(sf_emu, tls) as server:
        url = server.url
    config = SalesforceConfig(
        instance_url=url,
        access_token="00Dx!token",
        ca_bundle=tls.ca_path,
        retry=RetryPolicy(max_attempts=3, initial_backoff=0.01),
    )
    client = SalesforceClient(config, sleep=waits.append)
    with pytest.raises(UpstreamUnavailable) as info:
        client.create("Account", [{"Name": "x"}])
    assert info.value.code == "CONNECTION_ERROR"
    assert len(waits) == 2


def test_failed_bulk_job_is_request_rejected(
    sf_emu: SalesforceEmulator,
    server: EmulatorServer,
    tls: TlsMaterial,
    waits: list[float],
    org: SmallOrg,
) -> None:
    """A Bulk 2.0 job that ends Failed (unknown column) raises RequestRejected naming it."""
    client = make(sf_emu, server, tls, waits, bulk_threshold=2)
    rows = [{"Name": f"x{i}", "Nope__c": "y"} for i in range(3)]
    with pytest.raises(RequestRejected, match="ended Failed") as info:
        client.create("Account", rows)
    assert info.value.code == "BULK_JOB_FAILED"
    assert "Nope__c" in str(info.value)
