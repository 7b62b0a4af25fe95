"""GainsightClient: describe, Cockpit picklists, and reads on a tenant that cannot sort Gsid."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.gainsight import Condition, GainsightClient, GainsightConfig
from connectors.paginators import OffsetPaginator, PagingError
from emulators.gainsight import GainsightEmulator
from emulators.http import Request, Response
from emulators.inprocess import app_transport
from emulators.store import Clock

T0 = 1_767_225_600_000


def make(gs_emu: GainsightEmulator, app: Any = None, **config: Any) -> GainsightClient:
    settings = GainsightConfig("https://tenant.example", access_key=gs_emu.access_key, **config)
    return GainsightClient(settings, transport=app_transport(app or gs_emu), sleep=lambda _s: None)


@pytest.fixture
def gs_emu() -> GainsightEmulator:
    emulator = GainsightEmulator(clock=Clock(T0), profile="strict")
    emulator.load("company", [{"Name": f"Company {i:03d}", "CurrentScore": i} for i in range(25)])
    return emulator


def test_describe_reads_types_lookups_and_sortability(gs_emu: GainsightEmulator) -> None:
    """One call describes both objects; the score is a lookup to the scheme, the team fields
    look up GsUser, Gsid is sortable; the answer is cached."""
    client = make(gs_emu)
    described = client.describe("Company", "GsUser")
    company = described["company"]
    score = company.field("CurrentScore")
    assert score is not None
    assert score.is_lookup
    assert score.looks_up("ScoringSchemeDefinition")
    team = company.field("AccountExecutive__gc")
    assert team is not None
    assert team.looks_up("gsuser")
    assert described["gsuser"].field("IsActiveUser") is not None
    assert client.gsid_sortable("Company") is True
    client.describe("Company")
    assert gs_emu.log.count(operation="describe") == 1


def test_describe_of_an_unknown_object_leaves_it_out(gs_emu: GainsightEmulator) -> None:
    """An object the tenant lacks is absent (one call for both, then one each)."""
    described = make(gs_emu).describe("Company", "Nope__gc")
    assert set(described) == {"company"}


def test_cta_picklists_by_category(gs_emu: GainsightEmulator) -> None:
    """The Cockpit names the tenant has, per category, with closed statuses marked."""
    gs_emu.picklists.remove("reason", "Renewal at Risk")
    picklists = make(gs_emu).cta_picklists()
    reasons = {item.name for item in picklists["CTA_REASON"]}
    assert "Red Health" in reasons
    assert "Renewal at Risk" not in reasons
    closed = {item.name for item in picklists["CTA_STATUS"] if item.closed}
    assert "Closed Success" in closed
    assert {"Risk"} <= {item.name for item in picklists["CTA_TYPE"]}


def read_all(client: GainsightClient, **kw: Any) -> list[str]:
    return [r["Name"] for page in client.query("Company", ["Name"], **kw) for r in page]


def test_gsid_not_sortable_falls_back_to_offset_paging(gs_emu: GainsightEmulator) -> None:
    """G4: describe says Gsid cannot be sorted; the read pages by offset in CreatedDate order
    with an overlap and still returns every company once."""
    gs_emu.gsid_sortable = False
    client = make(gs_emu, page_size=10)
    client.describe("Company")
    assert client.gsid_sortable("Company") is False
    names = read_all(client)
    assert sorted(names) == [f"Company {i:03d}" for i in range(25)]
    assert len(names) == 25
    bodies = [c for c in gs_emu.log.calls(operation="company.query") if c.status == 200]
    assert len(bodies) == 3


def test_keyset_refused_without_describe_is_an_upstream_refusal(gs_emu: GainsightEmulator) -> None:
    """Without describe (or a fact passed in) the client tries keyset paging; the tenant's
    refusal is a clear error, and set_gsid_sortable switches paging over."""
    gs_emu.gsid_sortable = False
    client = make(gs_emu, page_size=10)
    with pytest.raises(Exception, match="sortable"):
        read_all(client)
    client.set_gsid_sortable("Company", False)
    assert len(read_all(client)) == 25


class DeleteBetweenPages:
    """Delete the first ``n`` companies right after the first page is answered."""

    def __init__(self, gs_emu: GainsightEmulator, n: int) -> None:
        self.gs_emu, self.n, self.pages = gs_emu, n, 0

    def __call__(self, request: Request) -> Response:
        answer = self.gs_emu(request)
        if "/query/" in request.path:
            self.pages += 1
            if self.pages == 1:
                table = self.gs_emu.tables["company"]
                for gsid in list(table.ids())[: self.n]:
                    table.delete(gsid, hard=True)
                    self.gs_emu._tenant.sequence["company"].pop(gsid, None)
        return answer


@pytest.mark.parametrize("deleted", [1, 3])
def test_offset_paging_survives_deletes_between_pages(
    gs_emu: GainsightEmulator, deleted: int
) -> None:
    """Deletes before the window shift the rows forward; the overlap (or a step back when the
    shift is larger) means no surviving company is skipped."""
    gs_emu.gsid_sortable = False
    client = make(gs_emu, DeleteBetweenPages(gs_emu, deleted), page_size=10)
    client.set_gsid_sortable("Company", False)
    names = read_all(client, conditions=[Condition("Name", "STARTS_WITH", ["Company"])])
    survivors = {f"Company {i:03d}" for i in range(deleted, 25)}
    assert survivors <= set(names)
    assert len(names) == len(set(names))


def test_offset_paginator_gives_up_when_rows_keep_shifting() -> None:
    """A window that never overlaps what was read is a paging fault, not a silent skip."""
    pages = OffsetPaginator(page_size=2, overlap=1, max_steps_back=1)
    pages.update([{"Gsid": "a"}, {"Gsid": "b"}])
    assert pages.offset == 1
    pages.update([{"Gsid": "x"}, {"Gsid": "y"}])  # neither overlap row seen: step back
    assert pages.offset == 0
    pages.offset = 1
    with pytest.raises(PagingError):
        pages.update([{"Gsid": "p"}, {"Gsid": "q"}])


@pytest.fixture
def pages() -> OffsetPaginator:
    return OffsetPaginator(page_size=3, overlap=1)


def test_offset_paginator_drops_rows_seen_and_stops_on_a_short_page(
    pages: OffsetPaginator,
) -> None:
    """Overlapping rows are not yielded twice; a short page is the last."""
    assert [r["Gsid"] for r in pages.update([{"Gsid": "a"}, {"Gsid": "b"}, {"Gsid": "c"}])] == [
        "a",
        "b",
        "c",
    ]
    assert pages.offset == 2
    assert [r["Gsid"] for r in pages.update([{"Gsid": "c"}, {"Gsid": "d"}])] == ["d"]
    assert pages.has_next is False
