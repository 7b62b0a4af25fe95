"""The state store: engine, schema version, the run lock and the bulk helpers the engine uses.

    store = Store("sqlite:///teamsync.db")
    store.upgrade()                 # teamsync db upgrade
    store.check_schema()            # runs refuse a store that is not at the head revision
    with store.lock("run", holder) ...   # one run at a time
    with store.session() as s: ...

SQLite is the embedded default (WAL mode, a lock row with a lease); PostgreSQL is the
production store (an advisory lock held on a dedicated connection).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, Table, bindparam, create_engine, event, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from config.errors import ConfigurationError, StoreUnavailable
from config.settings import normalize_database_url
from connectors.batching import batched
from sync.clock import utcnow
from sync.store.errors import store_errors
from sync.store.lock import RunLock, hold
from sync.store.models import Account, RawRecord, UtcDateTime

IN_LIST = 500  # ids per SQL IN (...): far below every driver's parameter limit

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class RawRow(NamedTuple):
    """One pulled record, ready to be upserted into ``raw_records`` (a named tuple: one is
    built for every record pulled)."""

    record_id: str
    data: dict[str, Any]
    stamp: datetime | None
    is_deleted: bool = False
    parent_id: str | None = None
    match_key: str | None = None


_RAW_COLUMNS = ("record_id", "parent_id", "match_key", "stamp", "is_deleted", "data")
_RAW_KEYS = ("system", "object", "record_id")
_RAW_TABLE: Table = RawRecord.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class PreparedUpsert:
    """One upsert statement compiled for one dialect, run with the driver's ``executemany``.

    Values go through the same bind processors SQLAlchemy would apply (aware datetimes to
    the stored form, JSON serialisation, booleans), so rows written here read back exactly
    like rows written through the ORM; what is skipped is building and compiling a
    statement per batch.
    """

    sql: str
    columns: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    named: bool
    order: tuple[int, ...]  # positional drivers: the statement's parameter order
    # PostgreSQL: COPY into a temporary staging table, then one INSERT … SELECT … ON CONFLICT.
    copy: tuple[str, str, str, str] | None = None  # create stage, COPY, merge, empty stage
    key_index: tuple[int, ...] = ()

    @classmethod
    def build(
        cls, dialect: Dialect, table: Table, columns: Sequence[str], keys: Sequence[str]
    ) -> PreparedUpsert:
        insert_fn: Any = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        stmt = insert_fn(table).values({c: bindparam(c) for c in columns})
        updates = [c for c in columns if c not in keys]
        if updates:
            stmt = stmt.on_conflict_do_update(
                index_elements=list(keys), set_={c: stmt.excluded[c] for c in updates}
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
        compiled = stmt.compile(dialect=dialect)
        names = list(compiled.positiontup or []) if dialect.positional else list(compiled.binds)
        missing = set(names) - set(columns)
        if missing or len(names) != len(columns):
            raise ValueError(f"upsert into {table.name}: give every column ({sorted(missing)})")
        processors = tuple(_bind_processor(table.c[c].type, dialect) for c in columns)
        order = tuple(columns.index(n) for n in names)
        copy = None
        if dialect.name == "postgresql":
            quote = dialect.identifier_preparer.quote
            target = dialect.identifier_preparer.format_table(table)
            stage = quote(f"ts_stage_{table.name}")
            cols = ", ".join(quote(c) for c in columns)
            conflict = ", ".join(quote(k) for k in keys)
            action = (
                "DO UPDATE SET " + ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in updates)
                if updates
                else "DO NOTHING"
            )
            copy = (
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} "
                f"(LIKE {target} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
                f"COPY {stage} ({cols}) FROM STDIN",
                # Identifiers only (the model's own, quoted by the dialect); no values.
                f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {stage} "  # noqa: S608
                f"ON CONFLICT ({conflict}) {action}",
                f"DELETE FROM {stage}",  # noqa: S608
            )
        return cls(
            compiled.string,
            tuple(columns),
            processors,
            not dialect.positional,
            order,
            copy,
            tuple(columns.index(k) for k in keys),
        )

    def execute(
        self,
        connection: Connection,
        rows: Sequence[Sequence[Any]],
        constants: Sequence[Any] = (),
    ) -> None:
        """Run for every row; ``constants`` (the last columns, the same for every row) are
        converted once."""
        width = len(self.columns) - len(constants)
        procs = self.processors
        tail = [v if p is None else p(v) for p, v in zip(procs[width:], constants, strict=True)]
        active = [(i, p) for i, p in enumerate(procs[:width]) if p is not None]
        params: list[Any] = []
        for row in rows:
            values = list(row)
            for i, p in active:
                values[i] = p(values[i])
            if tail:
                values.extend(tail)
            params.append(values)
        if self.copy is not None:
            self._copy(connection, params)
            return
        if self.named:
            cols = self.columns
            params = [dict(zip(cols, v, strict=True)) for v in params]
        elif len(self.order) > 1 and self.order != tuple(range(len(self.order))):
            pick = itemgetter(*self.order)
            params = [pick(v) for v in params]
        else:
            params = [tuple(v) for v in params]
        connection.exec_driver_sql(self.sql, params)

    def _copy(self, connection: Connection, params: list[list[Any]]) -> None:
        """COPY the rows into the staging table and merge them in one statement; a key
        given twice keeps its last row (one statement cannot update a row twice)."""
        assert self.copy is not None
        create, copy_sql, merge, empty = self.copy
        by_key: dict[tuple[Any, ...], list[Any]] = {}
        for values in params:
            by_key[tuple(values[i] for i in self.key_index)] = values
        connection.exec_driver_sql(create)
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(copy_sql) as copy:
                for values in by_key.values():
                    copy.write_row(values)
        except connection.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                copy_sql, None, exc, connection.dialect.loaded_dbapi.Error
            ) from exc
        finally:
            cursor.close()
        connection.exec_driver_sql(merge)
        connection.exec_driver_sql(empty)


def _sqlite_utc_text(value: datetime | None) -> str | None:
    """An aware datetime as SQLAlchemy's SQLite ``DATETIME`` stores it (naive UTC text,
    ``YYYY-MM-DD HH:MM:SS.ffffff``): what ``UtcDateTime`` + the dialect would write, in
    one C call instead of two Python layers (a pulled page has one per row)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store; use timezone-aware UTC")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _bind_processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    if dialect.name == "sqlite" and isinstance(type_, UtcDateTime):
        return _sqlite_utc_text
    return type_.dialect_impl(dialect).bind_processor(dialect)  # type: ignore[no-any-return]


def _mask_url(url: str) -> str:
    """The database URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL must still produce a message
        return "<unparseable database URL>"


class Store:
    """Access to the state store; one instance per process."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        must_exist: bool = False,
        busy_timeout: float = 30.0,
    ) -> None:
        """``must_exist``: refuse a SQLite file that is not there instead of creating it (for
        commands that only read: ``status``, ``audit``)."""
        url = normalize_database_url(url)
        self.url = url
        if must_exist:
            _require_existing_sqlite(url)
        else:
            _create_private_sqlite(url)
        try:
            self.engine: Engine = _make_engine(url, echo=echo, busy_timeout=busy_timeout)
        except ImportError as exc:
            if url.startswith("postgresql"):
                raise ConfigurationError(
                    f"cannot open the store {_mask_url(url)}: the PostgreSQL driver (psycopg) is "
                    "not installed; install teamsync with the postgres extra: "
                    "pip install 'teamsync[postgres]'"
                ) from exc
            raise ConfigurationError(
                f"cannot open the store {_mask_url(url)}: a database driver is missing "
                f"({exc.name or type(exc).__name__})"
            ) from exc
        except (SQLAlchemyError, ValueError) as exc:
            raise ConfigurationError(
                f"cannot open the store {_mask_url(url)}: {type(exc).__name__}"
            ) from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._prepared: dict[tuple[str, tuple[str, ...], tuple[str, ...]], PreparedUpsert] = {}

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def safe_url(self) -> str:
        return _mask_url(self.url)

    # --- sessions -------------------------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error.

        A store that cannot be used raises StoreUnavailable (exit 5, one line); an error
        about one statement's data (IntegrityError, DataError) stays as it is for the caller.
        """
        with store_errors(self.safe_url), self._sessions() as session, session.begin():
            yield session

    def errors(self) -> AbstractContextManager[None]:
        """``with store.errors(): ...`` for code that uses the engine directly."""
        return store_errors(self.safe_url)

    def dispose(self) -> None:
        self.engine.dispose()

    # --- schema ---------------------------------------------------------------------------
    def _alembic_config(self, connection: Connection) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.attributes["connection"] = connection
        return cfg

    def head_revision(self) -> str:
        script = ScriptDirectory(str(_MIGRATIONS))
        head = script.get_current_head()
        assert head is not None
        return head

    def current_revision(self) -> str | None:
        with store_errors(self.safe_url), self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def upgrade(self, revision: str = "head") -> tuple[str | None, str]:
        """Apply migrations up to ``revision``; returns (before, after)."""
        before = self.current_revision()
        if before is not None and not self._is_behind(before):
            raise self._newer(before)
        with store_errors(self.safe_url), self.engine.begin() as conn:
            command.upgrade(self._alembic_config(conn), revision)
        after = self.current_revision()
        assert after is not None
        return before, after

    def check_schema(self, *, create_if_empty: bool = True, allow_behind: bool = False) -> None:
        """Refuse to run against a store at another schema version.

        An empty store (no tables yet, e.g. the default SQLite file on a first run) is
        created on the spot; a store at an older revision needs ``teamsync db upgrade``
        (``allow_behind``: the caller migrates it, see ``upgrade_if_behind``).
        """
        current = self.current_revision()
        head = self.head_revision()
        if current == head:
            return
        if current is not None and not self._is_behind(current):
            raise self._newer(current)
        if current is None and not self._has_tables():
            if create_if_empty:
                self.upgrade()
                return
            raise ConfigurationError(
                f"the store {self.safe_url} is empty (nothing has run against it yet): run "
                "`teamsync run` or `teamsync db upgrade` first, or check TEAMSYNC_DATABASE_URL"
            )
        if allow_behind and current is not None and self._is_behind(current):
            return
        raise ConfigurationError(
            f"the store {self.safe_url} is at schema revision {current or 'none'} but this "
            f"teamsync needs {head}: run `teamsync db upgrade`"
        )

    def _newer(self, current: str) -> StoreUnavailable:
        return StoreUnavailable(
            f"the store {self.safe_url} is at schema revision {current}, which this teamsync "
            f"(head {self.head_revision()}) does not know: a newer teamsync migrated it; run "
            "that version (or restore a backup)",
            problem="newer schema",
        )

    def _is_behind(self, current: str) -> bool:
        """True when ``current`` is an older revision of this teamsync's migration chain."""
        script = ScriptDirectory(str(_MIGRATIONS))
        return any(rev.revision == current for rev in script.walk_revisions())

    def upgrade_if_behind(self) -> tuple[str | None, str] | None:
        """TEAMSYNC_AUTO_MIGRATE: apply pending migrations (call with the run lock held)."""
        current = self.current_revision()
        head = self.head_revision()
        if current == head:
            return None
        return self.upgrade()

    def _has_tables(self) -> bool:
        from sqlalchemy import inspect

        with store_errors(self.safe_url):
            return bool(inspect(self.engine).get_table_names())

    # --- bulk writes ----------------------------------------------------------------------
    def prepared_upsert(
        self, table: Table, columns: Sequence[str], keys: Sequence[str]
    ) -> PreparedUpsert:
        """The ``INSERT … ON CONFLICT (keys) DO UPDATE`` of ``columns`` into ``table``,
        compiled once per process for this store's dialect and reused for every batch."""
        cache_key = (table.name, tuple(columns), tuple(keys))
        prepared = self._prepared.get(cache_key)
        if prepared is None:
            prepared = PreparedUpsert.build(self.engine.dialect, table, columns, keys)
            self._prepared[cache_key] = prepared
        return prepared

    def bulk_upsert(
        self,
        session: Session,
        table: Table,
        columns: Sequence[str],
        keys: Sequence[str],
        rows: Sequence[Sequence[Any]],
        constants: dict[str, Any] | None = None,
    ) -> int:
        """Insert or update ``rows`` (tuples in ``columns`` order) with one ``executemany`` of
        one prepared statement, in the session's transaction.  ``constants`` are further
        columns with the same value in every row."""
        if not rows:
            return 0
        extra = constants or {}
        prepared = self.prepared_upsert(table, (*columns, *extra), keys)
        prepared.execute(session.connection(), rows, tuple(extra.values()))
        return len(rows)

    # --- raw snapshots --------------------------------------------------------------------
    def upsert_raw(
        self, session: Session, system: str, object_name: str, rows: Sequence[RawRow]
    ) -> int:
        """Insert or replace raw records (de-duplicated by id, last one wins)."""
        if not rows:
            return 0
        now = utcnow()
        by_id: dict[str, RawRow] = {}
        for row in rows:
            by_id[row.record_id] = row
        values = [
            (r.record_id, r.parent_id, r.match_key, r.stamp, r.is_deleted, r.data)
            for r in by_id.values()
        ]
        return self.bulk_upsert(
            session,
            _RAW_TABLE,
            _RAW_COLUMNS,
            _RAW_KEYS,
            values,
            {"system": system, "object": object_name, "pulled_at": now},
        )

    def upsert(
        self,
        session: Session,
        model: type[Any],
        values: Sequence[dict[str, Any]],
        keys: Sequence[str],
    ) -> None:
        """Insert rows or update them in place when their key exists (one prepared statement,
        executed for all rows at once)."""
        if not values:
            return
        columns = tuple(values[0])
        rows = [tuple(v[c] for c in columns) for v in values]
        self.bulk_upsert(session, model.__table__, columns, keys, rows)

    def touch_raw(
        self, session: Session, system: str, object_name: str, record_ids: Sequence[str]
    ) -> None:
        """Mark records as seen by this pull (``pulled_at``) without rewriting them."""
        now = utcnow()
        for start in range(0, len(record_ids), 500):
            session.execute(
                update(RawRecord)
                .where(
                    RawRecord.system == system,
                    RawRecord.object == object_name,
                    RawRecord.record_id.in_(record_ids[start : start + 500]),
                )
                .values(pulled_at=now)
            )

    def mark_raw_deleted(
        self, session: Session, system: str, object_name: str, record_ids: Iterable[str]
    ) -> int:
        ids = list(record_ids)
        total = 0
        for part in batched(ids, IN_LIST):
            result = session.execute(
                update(RawRecord)
                .where(
                    RawRecord.system == system,
                    RawRecord.object == object_name,
                    RawRecord.record_id.in_(part),
                )
                .values(is_deleted=True)
            )
            total += int(getattr(result, "rowcount", 0) or 0)
        return total

    def write_through(
        self,
        session: Session,
        system: str,
        object_name: str,
        record_id: str,
        fields: dict[str, Any],
        *,
        parent_id: str | None = None,
    ) -> None:
        """Record a successful write in the store's copy of the record.

        An update merges the written fields into the stored record; a record the store does not
        hold yet (a create) is added with them.  The record's stamp is left alone, so the next
        incremental pull still reads the record back and replaces this copy with the system's
        own.  Without this a partial pull (a backfill of some objects, or of a past window)
        right after a run would plan the same writes again.
        """
        self.write_through_many(session, system, object_name, [(record_id, fields, parent_id)])

    def write_through_many(
        self,
        session: Session,
        system: str,
        object_name: str,
        writes: Sequence[tuple[str, dict[str, Any], str | None]],
    ) -> None:
        """:meth:`write_through` for a batch of (record id, fields written, parent id): one
        read of the stored copies and one bulk upsert per thousand records (a Bulk job's
        ten thousand are done in slices, so memory stays bounded)."""
        if len(writes) > 1000:
            for start in range(0, len(writes), 1000):
                self.write_through_many(session, system, object_name, writes[start : start + 1000])
            return
        if not writes:
            return
        merged: dict[str, tuple[dict[str, Any], str | None]] = {}
        for record_id, fields, parent_id in writes:
            before = merged.get(record_id)
            if before is None:
                merged[record_id] = (dict(fields), parent_id)
            else:
                merged[record_id] = ({**before[0], **fields}, parent_id or before[1])
        ids = list(merged)
        stored: dict[str, Any] = {}
        for start in range(0, len(ids), 500):
            for row in session.execute(
                select(
                    RawRecord.record_id,
                    RawRecord.parent_id,
                    RawRecord.match_key,
                    RawRecord.stamp,
                    RawRecord.data,
                    RawRecord.pulled_at,
                ).where(
                    RawRecord.system == system,
                    RawRecord.object == object_name,
                    RawRecord.record_id.in_(ids[start : start + 500]),
                )
            ):
                stored[row.record_id] = row
        now = utcnow()
        rows = []
        for record_id, (fields, parent_id) in merged.items():
            old = stored.get(record_id)
            if old is None:
                rows.append((record_id, parent_id, None, None, False, fields, now))
            else:
                data = {**(old.data or {}), **fields}
                rows.append(
                    (record_id, old.parent_id, old.match_key, old.stamp, False, data, old.pulled_at)
                )
        self.bulk_upsert(
            session,
            _RAW_TABLE,
            ("record_id", "parent_id", "match_key", "stamp", "is_deleted", "data", "pulled_at"),
            _RAW_KEYS,
            rows,
            {"system": system, "object": object_name},
        )

    # --- the run lock ---------------------------------------------------------------------
    def lock(self, name: str, *, lease_seconds: int = 900) -> AbstractContextManager[RunLock]:
        """Hold the named lock for the block; LockHeld if another process has it."""
        return hold(self, name, lease_seconds=lease_seconds)


def _require_existing_sqlite(url: str) -> None:
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - reported when the engine is made
        return
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):
        return  # a URI file name: SQLite's own rules
    if not Path(database).exists():
        raise ConfigurationError(
            f"no store at {Path(database).resolve()}: nothing has run against it yet, or "
            "TEAMSYNC_DATABASE_URL points elsewhere (this command never creates a store)"
        )


def _create_private_sqlite(url: str) -> None:
    """Create a new SQLite file as 0600 (its -wal and -shm files take the same mode): the
    store holds names, e-mails and health scores."""
    from sync.store.lock import lock_path

    lock = lock_path(url)
    if lock is None:
        return
    database = lock.with_name(lock.name[: -len(".lock")])
    if database.exists() or not database.parent.is_dir():
        return
    try:
        fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return  # created by another process meanwhile, or not creatable: SQLite reports it
    os.fchmod(fd, 0o600)
    os.close(fd)


def _json_dumps(value: Any) -> str:
    """JSON columns are written with orjson (an order of magnitude faster than ``json``);
    what it refuses (integers beyond 64 bits, non-string keys) falls back to ``json``."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value)


def _make_engine(url: str, *, echo: bool, busy_timeout: float = 30.0) -> Engine:
    json_args: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if url.startswith("sqlite"):
        # hide_parameters: no SQL parameter (account names, e-mails) in any error message.
        engine = create_engine(
            url,
            echo=echo,
            hide_parameters=True,
            connect_args={"timeout": busy_timeout},
            **json_args,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            if ":memory:" not in url and url not in ("sqlite://", "sqlite:///"):
                cur.execute("PRAGMA journal_mode=WAL")
                # A pull commits every page: checkpoint the WAL every ~40 MB rather than every
                # 4 MB (the default), so pages rewritten by several commits are copied once.
                cur.execute("PRAGMA wal_autocheckpoint=10000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cur.close()

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, hide_parameters=True, **json_args)


def quarantine(
    session: Session,
    *,
    system: str,
    object_name: str,
    record_id: str,
    stage: str,
    code: str | None,
    reason: str,
    now: datetime,
    run_id: str | None,
    account_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    """Record (or re-record) a failed record; an earlier entry is reopened and counted."""
    from sync.store.models import QuarantinedRecord

    record_id = record_id[:64]
    account_id = account_id[:18] if account_id else None
    current = session.scalar(
        select(QuarantinedRecord).where(
            QuarantinedRecord.system == system,
            QuarantinedRecord.object == object_name,
            QuarantinedRecord.record_id == record_id,
            QuarantinedRecord.stage == stage,
        )
    )
    reason = reason[:2000]
    if current is None:
        session.add(
            QuarantinedRecord(
                system=system,
                object=object_name,
                record_id=record_id,
                stage=stage,
                account_id=account_id,
                code=code,
                reason=reason,
                payload=payload,
                first_seen=now,
                last_seen=now,
                attempts=1,
                run_id=run_id,
            )
        )
        return
    current.code = code
    current.reason = reason
    current.account_id = account_id or current.account_id
    if payload is not None:
        current.payload = payload
    current.last_seen = now
    current.attempts = (current.attempts or 0) + 1
    current.resolved_at = None
    current.run_id = run_id


def live_accounts(store: Store, batch: int = 1000) -> Iterator[Account]:
    """Every mapped account not deleted, in Id order, read in batches (reports, the audit)."""
    last = ""
    while True:
        with store.session() as s:
            rows = list(
                s.scalars(
                    select(Account)
                    .where(Account.deleted.is_(False), Account.account_id > last)
                    .order_by(Account.account_id)
                    .limit(batch)
                )
            )
        if not rows:
            return
        last = rows[-1].account_id
        yield from rows
