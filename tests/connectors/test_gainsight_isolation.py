"""GainsightClient on a strict tenant: a write rejected whole is narrowed down to its culprits
(G2), CTA answers that are lost are verified by listing, never repeated blindly (G6).

In-process (``emulators.inprocess``): the emulator's request log counts the calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors.gainsight import GainsightClient, GainsightConfig
from emulators.gainsight import GainsightEmulator
from emulators.http import Request, Response
from emulators.inprocess import app_transport
from emulators.store import Clock

T0 = 1_767_225_600_000
NOT_A_USER = "1P01NOTAUSER0000000000000000000000000"


def make(app: Callable[[Request], Response], gs_emu: GainsightEmulator) -> GainsightClient:
    config = GainsightConfig("https://tenant.example", access_key=gs_emu.access_key)
    return GainsightClient(config, transport=app_transport(app), sleep=lambda _s: None)


@pytest.fixture
def gs_emu() -> GainsightEmulator:
    emulator = GainsightEmulator(clock=Clock(T0), profile="strict")
    emulator.load("gsuser", [{"Name": "Jane Doe", "Email": "jane@vendor.com"}])
    emulator.load("company", [{"Name": f"Company {i:03d}"} for i in range(120)])
    return emulator


def companies(gs_emu: GainsightEmulator) -> list[str]:
    return list(gs_emu.tables["company"].ids())


def jane(gs_emu: GainsightEmulator) -> str:
    return next(iter(gs_emu.tables["gsuser"].ids()))


def updates(gs_emu: GainsightEmulator, n: int, bad: set[int]) -> list[dict[str, Any]]:
    return [
        {"Gsid": g, "RiskFlags__gc": "NO_CSM", "AccountExecutive__gc": NOT_A_USER if i in bad
         else jane(gs_emu)}
        for i, g in enumerate(companies(gs_emu)[:n])
    ]  # fmt: skip


def written(gs_emu: GainsightEmulator, n: int) -> list[bool]:
    return [
        gs_emu.tables["company"].value(g, "RiskFlags__gc") == "NO_CSM"
        for g in companies(gs_emu)[:n]
    ]


@pytest.mark.parametrize(("culprit", "calls"), [(0, 7), (24, 8), (25, 7), (49, 7)])
def test_one_invalid_company_in_50_is_found_and_the_other_49_written(
    gs_emu: GainsightEmulator, culprit: int, calls: int
) -> None:
    """One bad record in a batch of 50: the culprit fails with the API's reason, 49 are
    written; 7-8 calls (the floor is 1)."""
    results = make(gs_emu, gs_emu).update("Company", updates(gs_emu, 50, {culprit}))
    failed = {r.index: (r.code, r.message) for r in results if not r.success}
    assert list(failed) == [culprit]
    assert failed[culprit][0] == "GSOBJ_1004"
    assert "AccountExecutive__gc" in str(failed[culprit][1])
    assert written(gs_emu, 50) == [i != culprit for i in range(50)]
    assert gs_emu.log.count(operation="company.update") == calls


def test_clean_batches_cost_one_call_each(gs_emu: GainsightEmulator) -> None:
    """Nothing invalid: 120 updates, 3 calls (the floor)."""
    results = make(gs_emu, gs_emu).update("Company", updates(gs_emu, 120, set()))
    assert all(r.success for r in results)
    assert gs_emu.log.count(operation="company.update") == 3


@pytest.mark.parametrize(("bad", "calls"), [({7, 64}, 16), ({3, 17, 30, 41, 48}, 32)])
def test_several_culprits_cost_about_log2_calls_each(
    gs_emu: GainsightEmulator, bad: set[int], calls: int
) -> None:
    """k culprits: each is found and fails alone; every other record is written."""
    n = 120 if max(bad) > 49 else 50
    results = make(gs_emu, gs_emu).update("Company", updates(gs_emu, n, bad))
    assert {r.index for r in results if not r.success} == bad
    assert written(gs_emu, n) == [i not in bad for i in range(n)]
    assert gs_emu.log.count(operation="company.update") == calls


def test_every_record_invalid_fails_each_with_its_reason(gs_emu: GainsightEmulator) -> None:
    """The worst case stays bounded: after four culprits with half the records failing the
    rest go one by one (8 bad records: 8 failures, 18 calls; 50 bad: 71 calls)."""
    results = make(gs_emu, gs_emu).update("Company", updates(gs_emu, 8, set(range(8))))
    assert [r.code for r in results] == ["GSOBJ_1004"] * 8
    assert gs_emu.log.count(operation="company.update") == 18


def test_lenient_tenant_reports_per_record_failures_in_one_call() -> None:
    """On a tenant that answers per record (the lenient reading) nothing is narrowed."""
    gs_emu = GainsightEmulator(clock=Clock(T0), profile="lenient")
    gs_emu.load("gsuser", [{"Name": "Jane Doe", "Email": "jane@vendor.com"}])
    gs_emu.load("company", [{"Name": f"Company {i}"} for i in range(50)])
    results = make(gs_emu, gs_emu).update("Company", updates(gs_emu, 50, {10, 20}))
    assert {r.index for r in results if not r.success} == {10, 20}
    assert gs_emu.log.count(operation="company.update") == 1


def cta(gs_emu: GainsightEmulator, i: int, **extra: Any) -> dict[str, Any]:
    return {
        "Name": f"Red health: Company {i:03d}",
        "CompanyId": companies(gs_emu)[i],
        "type": "Risk",
        "reason": "Red Health",
        "priority": "High",
        "status": "New",
        "DueDate": "2026-01-08",
        "OwnerId": jane(gs_emu),
        **extra,
    }


def test_cta_create_batch_with_one_bad_reason(gs_emu: GainsightEmulator) -> None:
    """One CTA with a reason the tenant lacks: 9 created once each, the bad one fails."""
    records = [cta(gs_emu, i) for i in range(10)]
    records[6]["reason"] = "Because"
    results = make(gs_emu, gs_emu).cta_create(records)
    assert [r.success for r in results] == [i != 6 for i in range(10)]
    assert results[6].code == "GSOBJ_1012"
    assert len(gs_emu.tables["calltoaction"]) == 9
    assert len({r.id for r in results if r.success}) == 9


class LoseAnswers:
    """Serve the emulator but lose the answer of the first ``times`` calls of one kind:
    ``apply`` decides whether the request reached the tenant first."""

    def __init__(
        self,
        gs_emu: GainsightEmulator,
        method: str,
        *,
        apply: bool,
        times: int = 1,
        status: int = 502,
    ) -> None:
        self.gs_emu, self.method, self.apply = gs_emu, method, apply
        self.left, self.status = times, status

    def __call__(self, request: Request) -> Response:
        if request.method == self.method and request.path.rstrip("/") == "/v2/cockpit/cta":
            if self.left > 0:
                self.left -= 1
                if self.apply:
                    self.gs_emu(request)
                return Response.text("<html>upstream timed out</html>", self.status)
        return self.gs_emu(request)


@pytest.mark.parametrize("status", [502, 200])
def test_lost_create_answer_is_verified_by_listing_not_repeated(
    gs_emu: GainsightEmulator, status: int
) -> None:
    """The create went through but its answer was lost (a gateway error, or a 200 that is
    not JSON): the client lists, finds all three, and does not create them again."""
    app = LoseAnswers(gs_emu, "POST", apply=True, status=status)
    results = make(app, gs_emu).cta_create([cta(gs_emu, i) for i in range(3)])
    assert [r.success for r in results] == [True, True, True]
    assert len(gs_emu.tables["calltoaction"]) == 3
    assert sorted(r.id for r in results) == sorted(gs_emu.tables["calltoaction"].ids())  # type: ignore[type-var]
    assert gs_emu.log.count(operation="cta.create") == 1
    assert gs_emu.log.count(operation="cta.list") == 1


def test_lost_create_that_never_landed_is_sent_once_more(gs_emu: GainsightEmulator) -> None:
    """The request never reached the tenant: listing finds nothing, so it is sent again."""
    app = LoseAnswers(gs_emu, "POST", apply=False)
    results = make(app, gs_emu).cta_create([cta(gs_emu, i) for i in range(3)])
    assert all(r.success for r in results)
    assert len(gs_emu.tables["calltoaction"]) == 3
    assert gs_emu.log.count(operation="cta.create") == 1  # the lost call never reached the tenant


def test_lost_update_answer_is_verified_by_listing(gs_emu: GainsightEmulator) -> None:
    """A close whose answer was lost: listing shows it closed, nothing is sent again."""
    client = make(gs_emu, gs_emu)
    (created,) = client.cta_create([cta(gs_emu, 0)])
    assert created.id is not None
    app = LoseAnswers(gs_emu, "PUT", apply=True)
    (closed,) = make(app, gs_emu).cta_update([{"Gsid": created.id, "status": "Closed Success"}])
    assert (closed.success, closed.id) == (True, created.id)
    assert gs_emu.get("cta", created.id)["IsClosed"] is True  # type: ignore[index]
    assert gs_emu.log.count(operation="cta.update") == 1
