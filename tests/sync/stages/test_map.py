"""The mapper over a store seeded with raw rows (no API): what each account's chunk holds,
which accounts are left out and why, and what recording a chunk writes.  SQLite, and
PostgreSQL when TEAMSYNC_TEST_DATABASE_URL is set."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from mappings.schema import MappingFile
from sync.stages.map import MappedChunk, Mapper
from sync.stages.pull import _row
from sync.store import Store
from sync.store.models import Account, CtaLink, HealthObservation
from sync.streams import Catalogue, Stream, catalogue

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OWNER, CSM_SF = "005000000000001AAA", "005000000000002AAA"
CSM_GS = "1P01CSM"
ACME, GLOBEX, GONE, BROKEN = (f"00100000000000{n}AAA" for n in range(1, 5))


def raw(stream: Stream[Any], **attrs: Any) -> dict[str, Any]:
    fields = {c.attr: c.field for c in stream.columns if c.attr and not c.group}
    data = {fields[name]: value for name, value in attrs.items()}
    data.setdefault(stream.stamp_field, "2026-03-01T00:00:00.000+0000")
    return data


def seed(store: Store, streams: Catalogue, rows: dict[str, list[dict[str, Any]]]) -> None:
    with store.session() as s:
        for name, records in rows.items():
            stream = getattr(streams, name)
            pulled = [_row(stream, data) for data in records]
            store.upsert_raw(s, stream.system, stream.object, pulled)


@pytest.fixture
def streams(mapping: MappingFile) -> Catalogue:
    return catalogue(mapping)


@pytest.fixture
def seeded(store: Store, streams: Catalogue, mapping: MappingFile) -> Store:
    """Acme (Enterprise customer, CSM in Gainsight), Globex (SMB prospect), an account deleted
    in Salesforce, and one whose opportunity does not validate."""
    sf, gs = streams, mapping.gainsight
    opp = sf.sf_opportunity
    seed(store, streams, {
        "sf_user": [
            raw(sf.sf_user, id=OWNER, name="Olive Owner", email="olive@example.com", active=True),
            raw(sf.sf_user, id=CSM_SF, name="Casey", email="casey@example.com", active=True),
        ],
        "sf_account": [
            raw(sf.sf_account, id=ACME, name="Acme", owner_id=OWNER, segment="Enterprise",
                arr=120_000),
            raw(sf.sf_account, id=GLOBEX, name="Globex", owner_id=OWNER, segment="SMB"),
            raw(sf.sf_account, id=GONE, name="Gone", owner_id=OWNER, is_deleted=True),
            raw(sf.sf_account, id=BROKEN, name="Broken", owner_id=OWNER),
        ],
        "sf_opportunity": [
            raw(opp, id="006000000000001AAA", account_id=ACME, owner_id=OWNER, type="New Business",
                is_closed=True, is_won=True, close_date="2025-01-15"),
            raw(opp, id="006000000000002AAA", account_id=BROKEN, close_date="someday"),
        ],
        "sf_team_member": [
            raw(sf.sf_team_member, id="01M000000000001AAA", account_id=ACME, user_id=CSM_SF,
                team_role="Customer Success Manager"),
        ],
        "gs_user": [raw(sf.gs_user, gsid=CSM_GS, name="Casey", email="casey@example.com")],
        "gs_company": [
            {**raw(sf.gs_company, gsid="1P02ACME", name="Acme", csm=CSM_GS, score=35),
             gs.account_link_field: ACME},
        ],
    })  # fmt: skip
    with store.session() as s:
        s.add(
            CtaLink(
                cta_gsid="CTA1",
                account_id=ACME,
                company_gsid="1P02ACME",
                flag="RED_HEALTH",
                origin="opened",
                status="open",
                opened_at=NOW,
                run_id="r0",
            )
        )
    return store


def mapped(store: Store, mapping: MappingFile, **kw: Any) -> list[MappedChunk]:
    return list(Mapper(store, mapping, clock=lambda: NOW, **kw).chunks())


def test_one_chunk_holds_each_account_once(seeded: Store, mapping: MappingFile) -> None:
    """Live, valid accounts are items (in Id order); the deleted one is listed as deleted;
    the one with a bad opportunity is skipped and the opportunity reported invalid."""
    (chunk,) = mapped(seeded, mapping)
    assert [i.mapped.account_id for i in chunk.items] == [ACME, GLOBEX]
    assert chunk.deleted == [GONE]
    assert chunk.skipped == [BROKEN]
    assert [(e.object_name, e.record_id) for e in chunk.invalid] == [
        ("Opportunity", "006000000000002AAA")
    ]
    assert chunk.mapped_at == NOW


@pytest.mark.parametrize(
    ("account_id", "segment", "customer", "team", "band"),
    [
        (ACME, "Enterprise", True, {"SAE": "olive@example.com", "CSM": "casey@example.com"}, "Red"),
        (GLOBEX, "SMB", False, {"AE": "olive@example.com"}, "Unknown"),
    ],
)
def test_account_is_mapped_from_both_systems(
    seeded: Store,
    mapping: MappingFile,
    account_id: str,
    segment: str,
    customer: bool,
    team: dict[str, str],
    band: str,
) -> None:
    """Segment, lifecycle, team (people matched across systems by e-mail) and health band."""
    (chunk,) = mapped(seeded, mapping)
    item = next(i for i in chunk.items if i.mapped.account_id == account_id)
    m = item.mapped
    assert (m.segment, m.is_customer, m.health_band) == (segment, customer, band)
    assert {k: v.person.email for k, v in m.team.items() if k in team} == team


def test_planner_inputs_come_with_the_chunk(seeded: Store, mapping: MappingFile) -> None:
    """The open CTAs of each company and the managed assignments known are loaded once per
    chunk: the planner and the safeguard query nothing themselves."""
    (chunk,) = mapped(seeded, mapping)
    acme = next(i for i in chunk.items if i.mapped.account_id == ACME)
    assert [(c.cta_gsid, c.flag) for c in acme.open_ctas] == [("CTA1", "RED_HEALTH")]
    assert acme.managed_sf_rows == 1  # the CSM row
    assert chunk.managed_sf_rows == 1


@pytest.mark.parametrize(("size", "chunks"), [(1, 4), (3, 2), (4, 1), (500, 1)])
def test_chunk_size(seeded: Store, mapping: MappingFile, size: int, chunks: int) -> None:
    """Accounts are walked in chunks of chunk_size (deleted ones count toward a chunk)."""
    assert len(mapped(seeded, mapping, chunk_size=size)) == chunks


def test_only_the_given_accounts(seeded: Store, mapping: MappingFile) -> None:
    """chunks(ids) maps just those accounts (the re-map after a team re-read)."""
    (chunk,) = list(Mapper(seeded, mapping, clock=lambda: NOW).chunks([GLOBEX]))
    assert [i.mapped.account_id for i in chunk.items] == [GLOBEX]


def test_mapping_writes_nothing_recording_does(seeded: Store, mapping: MappingFile) -> None:
    """Mapping alone leaves the model tables empty; record() writes each account and a health
    observation only when the score or band changed."""

    def counts() -> tuple[int, int]:
        with seeded.session() as s:
            accounts = s.scalar(select(func.count()).select_from(Account))
            observations = s.scalar(select(func.count()).select_from(HealthObservation))
        return int(accounts or 0), int(observations or 0)

    mapper = Mapper(seeded, mapping, clock=lambda: NOW)
    (chunk,) = list(mapper.chunks())
    assert counts() == (0, 0)
    assert mapper.record(chunk) == set()
    assert counts() == (2, 2)
    (again,) = list(mapper.chunks())
    mapper.record(again)
    assert counts() == (2, 2)  # same score and band: no new observation


def test_users_read_once_a_run_and_a_bad_one_refused_in_every_chunk(
    seeded: Store, streams: Catalogue, mapping: MappingFile
) -> None:
    """Chunks of one run share the users they look up; a user that does not parse is refused
    again in every chunk that needs it (each of its accounts is left out), while the people
    every chunk shares map the same in each."""
    seed(seeded, streams, {"sf_user": [raw(streams.sf_user, id=OWNER, active="maybe")]})
    chunks = mapped(seeded, mapping, chunk_size=1)
    skipped = [a for c in chunks for a in c.skipped]
    assert skipped == [ACME, GLOBEX, BROKEN]  # every live account is the owner's
    refused = [(e.object_name, e.record_id) for c in chunks for e in c.invalid]
    assert refused.count(("User", OWNER)) == 3
    seed(seeded, streams, {"sf_user": [raw(streams.sf_user, id=OWNER, name="Olive Owner",
                                           email="olive@example.com", active=True)]})  # fmt: skip
    chunks = mapped(seeded, mapping, chunk_size=1)
    teams = [{k: m.person.email for k, m in i.mapped.team.items()} for c in chunks for i in c.items]
    assert teams == [
        {"SAE": "olive@example.com", "CSM": "casey@example.com"},
        {"AE": "olive@example.com"},
    ]
