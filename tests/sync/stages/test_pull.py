"""Incremental pulls: watermarks, lookback, resume after interruption, deletes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from config.settings import Settings
from emulators.runner import RunningEmulators, start_emulators
from emulators.tls import TlsMaterial
from mappings.schema import load_mapping
from sync.engine import build_clients
from sync.stages.pull import Puller
from sync.store import Store
from sync.store.models import RawRecord, Watermark
from sync.store.watermarks import lower_bound, next_watermark
from tests.sync.conftest import make_settings

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


# --- pure watermark maths ---------------------------------------------------------------------
def test_lower_bound_is_inclusive_with_lookback() -> None:
    """The next pull starts a lookback before the watermark; no watermark reads everything."""
    assert lower_bound(T0, timedelta(minutes=5)) == T0 - timedelta(minutes=5)
    assert lower_bound(None, timedelta(minutes=5)) is None


@pytest.mark.parametrize(
    ("previous", "max_seen", "started", "expected"),
    [
        (None, T0, T0 + timedelta(hours=1), T0),  # newest stamp seen
        (None, T0 + timedelta(hours=2), T0 + timedelta(hours=1), T0 + timedelta(hours=1)),
        (T0, None, T0 + timedelta(hours=1), T0),  # nothing new: unchanged
        (T0, T0 - timedelta(days=1), T0 + timedelta(hours=1), T0),  # never backwards
        (T0 + timedelta(hours=3), None, T0 + timedelta(hours=1), T0 + timedelta(hours=1)),
    ],
)
def test_watermark_never_passes_pull_start(
    previous: datetime | None, max_seen: datetime | None, started: datetime, expected: datetime
) -> None:
    """The watermark is the newest stamp seen, never past the pull's start, never backwards."""
    assert next_watermark(previous=previous, max_seen=max_seen, pull_started=started) == expected


# --- against the emulators ----------------------------------------------------------------------
@pytest.fixture
def big_upstream(tls: TlsMaterial, tmp_path: Path) -> Iterator[RunningEmulators]:
    """300 accounts: about 900 opportunities, several pages at batch size 200."""
    with start_emulators(accounts=300, seed=5, tls=tls, workdir=tmp_path / "upstream") as e:
        yield e


@pytest.fixture
def pull_settings(big_upstream: RunningEmulators, database_url: str) -> Settings:
    return make_settings(big_upstream, database_url)


def puller(settings: Settings, store: Store, **kw: object) -> Puller:
    sf, gs = build_clients(settings)
    return Puller(store, sf, gs, load_mapping(settings.mapping), batch_size=200, **kw)  # type: ignore[arg-type]


def stored(store: Store, system: str, obj: str, *, live: bool | None = None) -> set[str]:
    with store.session() as s:
        q = select(RawRecord.record_id).where(RawRecord.system == system, RawRecord.object == obj)
        if live is not None:
            q = q.where(RawRecord.is_deleted.is_(not live))
        return set(s.scalars(q))


def emulator_ids(upstream: RunningEmulators, obj: str, *, deleted: bool = True) -> set[str]:
    return {rid for rid, _ in upstream.salesforce.tables[obj].iter_rows(include_deleted=deleted)}


def test_interrupted_pull_resumes_without_losing_records(
    big_upstream: RunningEmulators, pull_settings: Settings, store: Store
) -> None:
    """A pull stopped after two pages resumes from its cursor and ends with every record."""
    pages = {"n": 0}

    def progress(stream: str, done: int, total: int | None) -> None:
        if stream == "salesforce.Opportunity":
            pages["n"] += 1

    first = puller(pull_settings, store, progress=progress, should_stop=lambda: pages["n"] >= 2)
    stats = first.pull(only=["salesforce.Opportunity"])
    assert stats["salesforce.Opportunity"].pages == 2
    with store.session() as s:
        wm = s.get(Watermark, "salesforce.Opportunity")
        assert wm is not None
        assert wm.pull_started_at is not None
        assert wm.cursor_id is not None
        assert wm.value is None
    partial = stored(store, "salesforce", "Opportunity")
    assert len(partial) == 400

    second = puller(pull_settings, store).pull(only=["salesforce.Opportunity"])
    assert second["salesforce.Opportunity"].resumed is True
    assert stored(store, "salesforce", "Opportunity") == emulator_ids(big_upstream, "Opportunity")
    with store.session() as s:
        wm = s.get(Watermark, "salesforce.Opportunity")
        assert wm is not None
        assert wm.pull_started_at is None
        assert wm.value is not None


def test_incremental_pull_reads_only_changes_and_late_commits(
    big_upstream: RunningEmulators, pull_settings: Settings, store: Store
) -> None:
    """After a full first pull, the next reads records changed since the watermark minus the
    lookback - including one committed late with a slightly older stamp."""
    p = puller(pull_settings, store)
    p.pull(only=["salesforce.Account"])
    with store.session() as s:
        wm = s.get(Watermark, "salesforce.Account")
        assert wm is not None
        assert wm.value is not None
        watermark = wm.value
    some = sorted(emulator_ids(big_upstream, "Account", deleted=False))[3]
    big_upstream.salesforce.update("Account", some, {"Name": "Renamed Inc"})
    late_ms = int((watermark - timedelta(minutes=2)).timestamp() * 1000)
    owner = big_upstream.salesforce.get("Account", some)["OwnerId"]  # type: ignore[index]
    big_upstream.salesforce.load(
        "Account", [{"Name": "Late Commit LLC", "OwnerId": owner, "SystemModstamp": late_ms}]
    )
    big_upstream.log.reset()
    stats = puller(pull_settings, store).pull(only=["salesforce.Account"])
    names = set()
    with store.session() as s:
        for rec in s.scalars(
            select(RawRecord).where(RawRecord.object == "Account", RawRecord.pulled_at >= watermark)
        ):
            names.add(rec.data["Name"])
    assert {"Renamed Inc", "Late Commit LLC"} <= names
    assert stats["salesforce.Account"].records < 20  # not a full re-read
    assert big_upstream.log.count(api="salesforce", object="Account") == 1


def test_deletes_are_seen(
    big_upstream: RunningEmulators, pull_settings: Settings, store: Store
) -> None:
    """Recycle-Bin deletes arrive via queryAll; hard-deleted team rows via the count check."""
    puller(pull_settings, store).pull()
    account_id = sorted(emulator_ids(big_upstream, "Account", deleted=False))[5]
    atm_table = big_upstream.salesforce.tables["AccountTeamMember"]
    atm_id = sorted(emulator_ids(big_upstream, "AccountTeamMember"))[0]
    assert atm_table.get(atm_id)["AccountId"] != account_id  # type: ignore[index]
    big_upstream.salesforce.delete("Account", account_id)
    big_upstream.salesforce.delete("AccountTeamMember", atm_id)
    second = puller(pull_settings, store)
    stats = second.pull()
    assert account_id in stored(store, "salesforce", "Account", live=False)
    # A hard delete is absence: collected, not marked, until the engine's safeguard passes.
    assert stats["salesforce.AccountTeamMember"].extra["vanished"] == 1
    assert second.vanished.of("salesforce", "AccountTeamMember") == {atm_id}
    assert atm_id in stored(store, "salesforce", "AccountTeamMember", live=True)
    assert second.vanished.apply(store) == 1
    assert atm_id in stored(store, "salesforce", "AccountTeamMember", live=False)
    # The live team rows in the store match Salesforce exactly again.
    assert stored(store, "salesforce", "AccountTeamMember", live=True) == emulator_ids(
        big_upstream, "AccountTeamMember"
    )


def test_full_pull_marks_unseen_records_deleted(
    big_upstream: RunningEmulators, pull_settings: Settings, store: Store
) -> None:
    """--full re-reads everything and marks what no longer exists (no delete feed) as gone."""
    puller(pull_settings, store).pull(only=["gainsight.Company"])
    companies = big_upstream.gainsight.tables["company"]
    victim = sorted(companies.ids())[0]
    companies.delete(victim, hard=True)
    puller(pull_settings, store).pull(only=["gainsight.Company"])
    assert victim not in stored(store, "gainsight", "Company", live=False)  # incremental: unseen
    full = puller(pull_settings, store)
    stats = full.pull(full=True, only=["gainsight.Company"])
    assert stats["gainsight.Company"].mode == "full"
    assert full.vanished.of("gainsight", "Company") == {victim}
    assert victim not in stored(store, "gainsight", "Company", live=False)  # not yet
    full.vanished.apply(store)
    assert victim in stored(store, "gainsight", "Company", live=False)
    with store.session() as s:
        live = s.scalar(
            select(func.count())
            .select_from(RawRecord)
            .where(RawRecord.object == "Company", RawRecord.is_deleted.is_(False))
        )
    assert live == len(companies)


def test_backfill_window_leaves_watermarks_alone(
    big_upstream: RunningEmulators, pull_settings: Settings, store: Store
) -> None:
    """A backfill re-pulls a window through its own cursor; the main watermark is unchanged."""
    p = puller(pull_settings, store)
    p.pull(only=["salesforce.Opportunity"])
    with store.session() as s:
        before = s.get(Watermark, "salesforce.Opportunity").value  # type: ignore[union-attr]
    now = datetime.now(UTC)
    stats = puller(pull_settings, store).pull(
        window=(now - timedelta(days=400), now + timedelta(days=1)),
        only=["salesforce.Opportunity"],
    )
    assert stats["salesforce.Opportunity"].mode == "backfill"
    assert stats["salesforce.Opportunity"].records == len(emulator_ids(big_upstream, "Opportunity"))
    with store.session() as s:
        assert s.get(Watermark, "salesforce.Opportunity").value == before  # type: ignore[union-attr]


def test_records_the_store_holds_at_the_same_stamp_are_not_rewritten(
    big_upstream: RunningEmulators, pull_settings: Settings, store: Store
) -> None:
    """An incremental re-read (the lookback window) skips records the store holds at the same
    (Id, SystemModstamp) with the same content - they are only marked as seen - and stores the
    changed ones; a stored copy that differs at the same stamp is replaced, not trusted."""
    puller(pull_settings, store).pull(only=["salesforce.Account"])
    live = sorted(emulator_ids(big_upstream, "Account", deleted=False))
    changed, tampered, untouched = live[3], live[4], live[5]
    big_upstream.salesforce.update("Account", changed, {"Name": "Renamed Inc"})
    with store.session() as s:
        row = s.get(RawRecord, ("salesforce", "Account", tampered))
        assert row is not None
        real_name = row.data["Name"]
        row.data = {**row.data, "Name": "stored copy"}  # same stamp, other content
        kept = s.get(RawRecord, ("salesforce", "Account", untouched))
        assert kept is not None
        seen_before = kept.pulled_at
    wide = puller(pull_settings, store, lookback=timedelta(days=3650))  # re-reads everything
    stats = wide.pull(only=["salesforce.Account"])["salesforce.Account"]
    assert stats.records >= len(live)
    # all but the renamed, the tampered and the (Recycle Bin) deleted ones
    assert stats.extra["unchanged"] == stats.records - 2 - stats.deleted
    with store.session() as s:
        kept = s.get(RawRecord, ("salesforce", "Account", untouched))
        fixed = s.get(RawRecord, ("salesforce", "Account", tampered))
        renamed = s.get(RawRecord, ("salesforce", "Account", changed))
        assert kept is not None
        assert fixed is not None
        assert renamed is not None
        assert kept.pulled_at > seen_before  # seen by this pull: a full pull won't delete it
        assert fixed.data["Name"] == real_name
        assert renamed.data["Name"] == "Renamed Inc"


def test_gainsight_is_pulled_beside_salesforce_and_a_failure_stops_both(
    big_upstream: RunningEmulators, pull_settings: Settings, store: Store
) -> None:
    """The Gainsight streams run in a worker thread while Salesforce pulls; when one system
    fails, the other stops after its current page and the error is raised."""
    import threading

    p = puller(pull_settings, store)
    threads: dict[str, str] = {}
    gs_query = p.gs.query

    def spy_gs(*args: object, **kw: object) -> Iterator[list[dict[str, object]]]:
        threads[str(args[0])] = threading.current_thread().name
        yield from gs_query(*args, **kw)  # type: ignore[arg-type]

    p.gs.query = spy_gs  # type: ignore[method-assign]
    stats = p.pull()
    assert set(stats) == {s.name for s in p.streams}  # every stream, in catalogue order
    assert list(stats) == [s.name for s in p.streams]
    # each page is fetched by the stream's prefetch thread, itself inside the Gainsight worker
    assert threads == {"GsUser": "pull gainsight.GsUser", "Company": "pull gainsight.Company"}

    def failing_sf(*args: object, **kw: object) -> Iterator[list[dict[str, object]]]:
        raise RuntimeError("salesforce is down")
        yield []

    p2 = puller(pull_settings, store, lookback=timedelta(days=3650))
    p2.sf.query = failing_sf  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="salesforce is down"):
        p2.pull(full=True)
    assert not [t for t in threading.enumerate() if t.name.startswith("pull ")]


def test_team_reread_asks_for_as_many_accounts_a_query_as_the_uri_allows(
    big_upstream: RunningEmulators, pull_settings: Settings, store: Store
) -> None:
    """Planning in bulk: the re-read of 300 accounts' teams is one query (about 440 Ids fit in
    a query URI), not one per 200 accounts; what it finds matches what was pulled."""
    from urllib.parse import urlencode

    from connectors import soql

    p = puller(pull_settings, store)
    p.pull(only=["salesforce.AccountTeamMember"])
    accounts = sorted(emulator_ids(big_upstream, "Account", deleted=False))
    capacity = p.team_reread_capacity()
    assert 400 <= capacity <= 500
    assert len(urlencode({"q": p._team_query(soql.id_list(accounts[:capacity]))})) <= 12_002
    big_upstream.log.reset()
    changed = p.refresh_team_members(accounts)
    assert changed == set()  # nothing changed since the pull
    queries = big_upstream.log.count(api="salesforce", object="AccountTeamMember", kind="read")
    assert queries == -(-len(accounts) // capacity) == 1
