"""SalesforceClient writes against the emulator: Collections, Bulk 2.0 ingest, row locks."""

from __future__ import annotations

import math
from typing import Any

import pytest

from connectors.retry import RetryPolicy
from connectors.salesforce import SalesforceClient, SalesforceConfig, WriteResult
from emulators.http import EmulatorServer
from emulators.salesforce import SalesforceEmulator
from emulators.salesforce.testing import SmallOrg, seed_small_org
from emulators.tls import TlsMaterial

SF = "salesforce"


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
    kw.setdefault("retry", RetryPolicy(max_attempts=3, initial_backoff=0.5, jitter=0.0))
    config = SalesforceConfig(
        instance_url=server.url, access_token=sf_emu.issue_token(), ca_bundle=tls.ca_path, **kw
    )
    return SalesforceClient(config, sleep=waits.append)


@pytest.fixture
def client(
    sf_emu: SalesforceEmulator, server: EmulatorServer, tls: TlsMaterial, waits: list[float]
) -> SalesforceClient:
    return make(sf_emu, server, tls, waits)


def accounts(org: SmallOrg, n: int, prefix: str = "New") -> list[dict[str, Any]]:
    return [
        {"Name": f"{prefix} {i:04d}", "OwnerId": org.users[i % 3], "NumberOfEmployees": i}
        for i in range(n)
    ]


def assert_in_order(results: list[WriteResult], n: int) -> None:
    assert [r.index for r in results] == list(range(n))


@pytest.mark.parametrize("n", [1, 200, 201, 450])
def test_create_uses_one_collections_call_per_200(
    n: int, client: SalesforceClient, sf_emu: SalesforceEmulator, org: SmallOrg
) -> None:
    """n records take ceil(n/200) Collections calls; each result carries its new id."""
    rows = accounts(org, n)
    results = client.create("Account", rows)
    assert_in_order(results, n)
    assert all(r.success for r in results)
    assert sf_emu.log.count(api=SF, operation="collections.create") == math.ceil(n / 200)
    for row, result in zip(rows, results, strict=True):
        assert result.id is not None
        stored = sf_emu.get("Account", result.id)
        assert stored is not None
        assert stored["Name"] == row["Name"]


def test_update_and_delete_in_collections(
    client: SalesforceClient, sf_emu: SalesforceEmulator, org: SmallOrg
) -> None:
    """Updates (None clears a field) and deletes go 200 a call and land in the org."""
    created = client.create("Account", accounts(org, 250))
    ids = [r.id for r in created if r.id]
    updates = [{"Id": rid, "NumberOfEmployees": None, "Name": f"Renamed {rid}"} for rid in ids]
    results = client.update("Account", updates)
    assert all(r.success for r in results)
    assert [r.id for r in results] == ids
    assert sf_emu.log.count(api=SF, operation="collections.update") == 2
    stored = sf_emu.get("Account", ids[-1])
    assert stored is not None
    assert (stored["Name"], stored["NumberOfEmployees"]) == (f"Renamed {ids[-1]}", None)
    deleted = client.delete("Account", ids)
    assert all(r.success for r in deleted)
    assert sf_emu.log.count(api=SF, operation="collections.delete") == 2
    gone = sf_emu.get("Account", ids[0])
    assert gone is not None
    assert gone["IsDeleted"] is True


def test_record_failures_are_returned_not_raised(
    client: SalesforceClient, sf_emu: SalesforceEmulator, org: SmallOrg
) -> None:
    """Refused records come back as failures with their code; the others succeed."""
    rows: list[dict[str, Any]] = accounts(org, 4)
    rows[1] = {"OwnerId": org.users[0]}  # Name is required
    rows[2] = {"Name": "Inactive owner", "OwnerId": org.inactive_user}
    results = client.create("Account", rows)
    assert_in_order(results, 4)
    assert [r.success for r in results] == [True, False, False, True]
    assert results[1].code == "REQUIRED_FIELD_MISSING"
    assert results[1].id is None
    assert results[2].code is not None
    assert sf_emu.log.count(api=SF, operation="collections.create") == 1


def test_locally_invalid_records_are_never_sent(
    client: SalesforceClient, sf_emu: SalesforceEmulator, org: SmallOrg
) -> None:
    """A malformed id fails locally; a call with nothing valid makes no request."""
    results = client.update("Account", [{"Id": "001-not-an-id", "Name": "x"}])
    assert results == [
        WriteResult(0, None, False, "MALFORMED_ID", "not a valid Salesforce Id: '001-not-an-id'",
                    ("Id",))
    ]  # fmt: skip
    assert client.delete("Account", []) == []
    assert sf_emu.log.count(api=SF, kind="write") == 0


def test_delete_of_unknown_id_is_a_record_failure(
    client: SalesforceClient, sf_emu: SalesforceEmulator, org: SmallOrg
) -> None:
    """Deleting an id that does not exist fails that record only."""
    missing = sf_emu.tables["Account"].new_id()
    results = client.delete("Account", [org.accounts[0], missing])
    assert [r.success for r in results] == [True, False]
    assert results[1].id == missing
    assert results[1].code is not None


def test_locked_rows_are_resubmitted_alone_and_succeed(
    client: SalesforceClient, sf_emu: SalesforceEmulator, org: SmallOrg, waits: list[float]
) -> None:
    """UNABLE_TO_LOCK_ROW records (only those) are re-sent after a backoff and succeed."""
    locked = set(org.accounts[1:3])
    sf_emu.faults.configure(lock_row_ids=locked)
    updates = [{"Id": rid, "NumberOfEmployees": 7} for rid in org.accounts]
    results = client.update("Account", updates)
    assert all(r.success for r in results)
    assert_in_order(results, len(updates))
    calls = sf_emu.log.calls(api=SF, operation="collections.update")
    assert [c.records for c in calls] == [3, 2]
    assert waits == [0.5]
    assert all((sf_emu.get("Account", rid) or {})["NumberOfEmployees"] == 7 for rid in org.accounts)


def test_lock_retries_are_bounded(
    sf_emu: SalesforceEmulator,
    server: EmulatorServer,
    tls: TlsMaterial,
    waits: list[float],
    org: SmallOrg,
) -> None:
    """Records still locked after lock_retries re-submissions are returned as failures."""
    client = make(sf_emu, server, tls, waits, lock_retries=2)
    sf_emu.faults.configure(lock_row_rate=1.0)
    results = client.update("Account", [{"Id": rid, "Name": "x"} for rid in org.accounts[:2]])
    assert [r.code for r in results] == ["UNABLE_TO_LOCK_ROW"] * 2
    assert not any(r.success for r in results)
    assert sf_emu.log.count(api=SF, operation="collections.update") == 3
    assert waits == [0.5, 1.0]


def test_bulk_ingest_above_threshold_maps_results_to_input_order(
    sf_emu: SalesforceEmulator,
    server: EmulatorServer,
    tls: TlsMaterial,
    waits: list[float],
    org: SmallOrg,
) -> None:
    """More records than bulk_threshold go in one Bulk 2.0 job; failures and successes come
    back per record in input order, each id belonging to its own input row."""
    client = make(sf_emu, server, tls, waits, bulk_threshold=100)
    rows = accounts(org, 250, prefix="Bulk")
    rows[7] = {"OwnerId": org.users[0], "NumberOfEmployees": 1}  # no Name
    rows[200] = dict(rows[199])  # an identical twin of its neighbour
    results = client.create("Account", rows)
    assert_in_order(results, 250)
    assert sf_emu.log.count(api=SF, operation="bulk2.ingest.create") == 1
    assert sf_emu.log.count(api=SF, operation="collections.create") == 0
    assert [i for i, r in enumerate(results) if not r.success] == [7]
    assert results[7].code == "REQUIRED_FIELD_MISSING"
    assert results[199].id != results[200].id
    for row, result in zip(rows, results, strict=True):
        if result.success:
            assert result.id is not None
            assert (sf_emu.get("Account", result.id) or {})["Name"] == row["Name"]


def test_bulk_update_and_delete(
    sf_emu: SalesforceEmulator,
    server: EmulatorServer,
    tls: TlsMaterial,
    waits: list[float],
    org: SmallOrg,
) -> None:
    """Bulk update sets nulls with #N/A and leaves absent fields alone; bulk delete by id."""
    client = make(sf_emu, server, tls, waits, bulk_threshold=100)
    ids = [r.id for r in client.create("Account", accounts(org, 150)) if r.id]
    updates: list[dict[str, Any]] = [{"Id": rid, "NumberOfEmployees": None} for rid in ids]
    updates[0] = {"Id": ids[0], "Name": "Only the name"}
    results = client.update("Account", updates)
    assert all(r.success for r in results)
    assert [r.id for r in results] == ids
    first, last = sf_emu.get("Account", ids[0]) or {}, sf_emu.get("Account", ids[-1]) or {}
    assert (first["Name"], first["NumberOfEmployees"]) == ("Only the name", 0)
    assert last["NumberOfEmployees"] is None
    missing = sf_emu.tables["Account"].new_id()
    deleted = client.delete("Account", [*ids, missing])
    assert [r.success for r in deleted] == [True] * 150 + [False]
    assert deleted[-1].id == missing
    assert sf_emu.log.count(api=SF, operation="bulk2.ingest.create") == 3


def test_bulk_lock_failures_are_resubmitted(
    sf_emu: SalesforceEmulator,
    server: EmulatorServer,
    tls: TlsMaterial,
    waits: list[float],
    org: SmallOrg,
) -> None:
    """Records a Bulk job reports as locked are re-sent (by Collections, being few)."""
    client = make(sf_emu, server, tls, waits, bulk_threshold=100)
    ids = [r.id for r in client.create("Account", accounts(org, 150)) if r.id]
    sf_emu.faults.configure(lock_row_ids=set(ids[10:13]))
    results = client.update("Account", [{"Id": rid, "Name": "Locked?"} for rid in ids])
    assert all(r.success for r in results)
    assert [c.records for c in sf_emu.log.calls(api=SF, operation="collections.update")] == [3]
    assert waits[-1] == 0.5
