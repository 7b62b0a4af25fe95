"""The state store on SQLite and PostgreSQL: migrations, schema checks, the run lock, upserts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text

from config.errors import LockHeld, StoreUnavailable
from sync.clock import utcnow
from sync.store import RawRow, Store
from sync.store.models import Base, Lock, RawRecord


def test_migrations_build_exactly_the_models(store: Store) -> None:
    """After `db upgrade` the database matches the models: autogenerate finds no difference."""
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert store.current_revision() == store.head_revision()


def test_upgrade_is_idempotent(store: Store) -> None:
    """Upgrading an up-to-date store changes nothing."""
    before, after = store.upgrade()
    assert before == after == store.head_revision()


def test_empty_store_is_created_on_first_check(database_url: str) -> None:
    """A run against an empty database creates the schema instead of failing."""
    fresh = Store(database_url)
    assert fresh.current_revision() is None
    fresh.check_schema()
    assert fresh.current_revision() == fresh.head_revision()


def test_store_at_an_unknown_revision_is_a_newer_schema(store: Store) -> None:
    """A revision this teamsync does not know was written by a newer one: the store is
    unavailable to this version (exit 5), and is not touched."""
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    with pytest.raises(StoreUnavailable, match="0099_future") as info:
        store.check_schema()
    assert info.value.problem == "newer schema"
    assert info.value.exit_code == 5
    with pytest.raises(StoreUnavailable):
        store.upgrade()
    assert store.current_revision() == "0099_future"


def test_unreachable_store_is_unavailable() -> None:
    """A store that cannot be reached fails clearly (exit 5), without printing its password."""
    bad = Store("postgresql+psycopg://teamsync:hunter2-secret@127.0.0.1:1/none")
    with pytest.raises(StoreUnavailable) as info:
        bad.check_schema()
    assert info.value.problem == "unreachable"
    assert "hunter2-secret" not in str(info.value)
    assert "\n" not in str(info.value)


def test_only_one_run_holds_the_lock(store: Store, database_url: str) -> None:
    """A second process-like holder is refused while the lock is held, and gets it after."""
    other = Store(database_url)
    with store.lock("run"), pytest.raises(LockHeld), other.lock("run"):
        pass
    with other.lock("run"):
        pass
    other.dispose()


def test_sqlite_lease_expires(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where OS file locks do not work, the lease row is the fallback: a lock whose lease ran
    out (a crashed holder) can be taken over."""
    monkeypatch.setattr("sync.store.lock._os_lock", lambda path, name: None)
    url = f"sqlite:///{tmp_path}/lease.db"
    store = Store(url)
    store.upgrade()
    with store.session() as s:
        s.add(
            Lock(
                name="run",
                holder="crashed-host:1:dead",
                acquired_at=utcnow() - timedelta(hours=2),
                lease_until=utcnow() - timedelta(hours=1),
            )
        )
    with store.lock("run") as held:
        held.renew()
        with store.session() as s:
            row = s.get(Lock, "run")
            assert row is not None
            assert row.holder != "crashed-host:1:dead"
            assert row.lease_until > utcnow()
    with store.session() as s:
        assert s.get(Lock, "run") is None


def test_upsert_raw_dedupes_and_replaces(store: Store) -> None:
    """Raw records are keyed by (system, object, id): the last version wins, no duplicates."""
    now = utcnow()
    with store.session() as s:
        store.upsert_raw(
            s,
            "salesforce",
            "Account",
            [RawRow("001A", {"v": 1}, now), RawRow("001A", {"v": 2}, now), RawRow("001B", {}, now)],
        )
    with store.session() as s:
        store.upsert_raw(
            s, "salesforce", "Account", [RawRow("001A", {"v": 3}, now, is_deleted=True)]
        )
        store.mark_raw_deleted(s, "salesforce", "Account", ["001B"])
    with store.session() as s:
        rows = {r.record_id: r for r in s.scalars(select(RawRecord))}
    assert set(rows) == {"001A", "001B"}
    assert rows["001A"].data == {"v": 3}
    assert rows["001A"].is_deleted
    assert rows["001B"].is_deleted
    assert rows["001A"].stamp == now


def test_bulk_upsert_reads_back_like_the_orm_and_keeps_the_last_duplicate(store: Store) -> None:
    """The prepared-statement path (executemany on SQLite, COPY + merge on PostgreSQL) stores
    values exactly as the ORM would: aware datetimes, JSON, booleans, NULLs; within one batch
    and across two batches of one transaction the last row for a key wins; comparisons on the
    stored datetimes order them as the ORM's do."""
    from datetime import UTC, datetime

    from sync.store.models import Account

    early = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)  # no microseconds: same stored form
    late = datetime(2026, 1, 1, 12, 0, 0, 500, tzinfo=UTC)
    with store.session() as s:
        s.add(
            RawRecord(
                system="salesforce",
                object="User",
                record_id="005O",
                parent_id=None,
                match_key="orm@x",
                stamp=early,
                is_deleted=False,
                data={"a": [1, None]},
                pulled_at=early,
            )
        )
    with store.session() as s:
        store.upsert_raw(
            s,
            "salesforce",
            "User",
            [
                RawRow("005B", {"n": 1}, late, match_key="b@x"),
                RawRow("005B", {"n": 2, "nested": {"x": "é"}}, early, match_key="b@x"),
                RawRow("005C", {}, None, is_deleted=True, parent_id="001P"),
            ],
        )
        store.upsert_raw(s, "salesforce", "User", [RawRow("005C", {"v": 3}, late)])
    with store.session() as s:
        rows = {r.record_id: r for r in s.scalars(select(RawRecord))}
        newer = set(s.scalars(select(RawRecord.record_id).where(RawRecord.stamp > early)))
    assert rows["005B"].data == {"n": 2, "nested": {"x": "é"}}
    assert rows["005B"].stamp == early
    assert rows["005B"].stamp.tzinfo is not None
    assert rows["005B"].match_key == "b@x"
    assert rows["005B"].is_deleted is False
    assert rows["005C"].data == {"v": 3}
    assert rows["005C"].stamp == late
    assert rows["005C"].parent_id is None
    assert rows["005C"].is_deleted is False
    assert rows["005O"].data == {"a": [1, None]}
    assert rows["005O"].stamp == early
    assert newer == {"005C"}

    values = {
        "account_id": "001000000000001AAA",
        "name": "Acme",
        "segment": "SMB",
        "segment_source": "field",
        "lifecycle": "customer",
        "is_customer": True,
        "first_won": None,
        "arr": 10.5,
        "qualifying": False,
        "renewal_opportunity_id": None,
        "renewal_date": None,
        "days_to_renewal": None,
        "in_renewal_window": False,
        "company_gsid": None,
        "health_score": None,
        "health_band": "Unknown",
        "previous_score": None,
        "trend": None,
        "team": {"AE": {"email": "a@x"}},
        "missing_roles": [],
        "inactive_members": [],
        "flags": ["NO_CSM"],
        "notes": [],
        "deleted": False,
        "mapped_at": late,
        "mapped_run_id": None,
    }
    with store.session() as s:
        store.upsert(s, Account, [values, {**values, "name": "Acme 2"}], ["account_id"])
    with store.session() as s:
        store.upsert(s, Account, [{**values, "arr": 11.0}], ["account_id"])
    with store.session() as s:
        (account,) = s.scalars(select(Account))
    assert (account.name, account.arr, account.team) == ("Acme", 11.0, {"AE": {"email": "a@x"}})
    assert account.flags == ["NO_CSM"]
    assert account.mapped_at == late


def test_naive_datetimes_are_refused(store: Store) -> None:
    """Every datetime in the store is timezone-aware UTC; a naive one is a bug, not data."""
    from datetime import datetime

    naive = Lock(name="x", holder="h", acquired_at=datetime(2026, 1, 1), lease_until=utcnow())
    with store.session() as s:
        s.add(naive)
        with pytest.raises(Exception, match="naive datetime"):
            s.flush()
        s.rollback()


def test_lock_is_per_store_schema(store: Store, database_url: str) -> None:
    """Two orgs' stores in one PostgreSQL database (one schema each) do not block each other."""
    if store.dialect != "postgresql":
        pytest.skip("schemas are a PostgreSQL matter")
    import uuid

    schema = f"ts_{uuid.uuid4().hex[:12]}"
    with store.engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    base = database_url.split("?", maxsplit=1)[0]
    other = Store(f"{base}?options=-csearch_path%3D{schema}")
    try:
        with store.lock("run"), other.lock("run"):
            pass
    finally:
        other.dispose()
        with store.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def test_fast_sqlite_datetime_binding_matches_sqlalchemys() -> None:
    """The prepared upsert binds aware datetimes on SQLite in one call; the stored text is
    exactly what ``UtcDateTime`` + SQLAlchemy's SQLite ``DATETIME`` would write (any offset,
    microseconds, years below 1000), and a naive datetime is refused the same way."""
    from datetime import UTC, datetime, timedelta, timezone

    from sqlalchemy.dialects import sqlite

    from sync.store.models import UtcDateTime
    from sync.store.store import _bind_processor

    dialect = sqlite.dialect()
    slow = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    fast = _bind_processor(UtcDateTime(), dialect)
    assert slow is not None
    assert fast is not None
    assert fast is not slow
    values = [
        None,
        datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC),
        datetime(2026, 1, 1, 12, 0, 0, 500, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 3, 1, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2026, 3, 1, 1, 30, tzinfo=timezone(timedelta(hours=-8))),
    ]
    assert [fast(v) for v in values] == [slow(v) for v in values]
    with pytest.raises(ValueError, match="naive datetime"):
        fast(datetime(2026, 1, 1))
