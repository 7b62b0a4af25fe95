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

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from config.errors import ConfigurationError, StoreUnavailable
from config.settings import normalize_database_url
from connectors.batching import batched
from sync.clock import utcnow
from sync.store.errors import store_errors
from sync.store.lock import RunLock, hold
from sync.store.models import Account, RawRecord

IN_LIST = 500  # ids per SQL IN (...): far below every driver's parameter limit

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@dataclass(frozen=True)
class RawRow:
    """One pulled record, ready to be upserted into ``raw_records``."""

    record_id: str
    data: dict[str, Any]
    stamp: datetime | None
    is_deleted: bool = False
    parent_id: str | None = None
    match_key: str | None = None


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
            {
                "system": system,
                "object": object_name,
                "record_id": r.record_id,
                "parent_id": r.parent_id,
                "match_key": r.match_key,
                "stamp": r.stamp,
                "is_deleted": r.is_deleted,
                "data": r.data,
                "pulled_at": now,
            }
            for r in by_id.values()
        ]
        table = RawRecord.__table__
        dialect = self.dialect
        insert_fn: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # Stay below SQLite's bound-parameter limit.
        step = 500 if dialect == "sqlite" else 2000
        for part in batched(values, step):
            stmt = insert_fn(table).values(part)
            stmt = stmt.on_conflict_do_update(
                index_elements=["system", "object", "record_id"],
                set_={
                    c: stmt.excluded[c]
                    for c in ("parent_id", "match_key", "stamp", "is_deleted", "data", "pulled_at")
                },
            )
            session.execute(stmt)
        return len(values)

    def upsert(
        self,
        session: Session,
        model: type[Any],
        values: Sequence[dict[str, Any]],
        keys: Sequence[str],
    ) -> None:
        """Insert rows or update them in place when their key exists (one statement per batch)."""
        if not values:
            return
        table = model.__table__
        insert_fn: Any = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        columns = [c for c in values[0] if c not in keys]
        step = max(1, (900 if self.dialect == "sqlite" else 20000) // max(1, len(values[0])))
        for part in batched(values, step):
            stmt = insert_fn(table).values(list(part))
            stmt = stmt.on_conflict_do_update(
                index_elements=list(keys), set_={c: stmt.excluded[c] for c in columns}
            )
            session.execute(stmt)

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
        row = session.get(RawRecord, (system, object_name, record_id))
        if row is None:
            self.upsert_raw(
                session,
                system,
                object_name,
                [RawRow(record_id=record_id, data=dict(fields), stamp=None, parent_id=parent_id)],
            )
            return
        row.data = {**(row.data or {}), **fields}  # a new dict: JSON columns track assignment
        row.is_deleted = False

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


def _make_engine(url: str, *, echo: bool, busy_timeout: float = 30.0) -> Engine:
    if url.startswith("sqlite"):
        # hide_parameters: no SQL parameter (account names, e-mails) in any error message.
        engine = create_engine(
            url, echo=echo, hide_parameters=True, connect_args={"timeout": busy_timeout}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            if ":memory:" not in url and url not in ("sqlite://", "sqlite:///"):
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cur.close()

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, hide_parameters=True)


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
