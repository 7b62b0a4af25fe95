"""The store fails loudly and distinctly: each way it can fail is StoreUnavailable (exit 5)
with one line naming the problem, never a traceback or a SQL parameter."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError

from config.errors import LockHeld, StoreUnavailable
from sync.clock import utcnow
from sync.store import RawRow, Store
from sync.store.lock import lock_path

PG_URL = os.environ.get("TEAMSYNC_TEST_DATABASE_URL", "")
needs_pg = pytest.mark.skipif(
    not PG_URL.startswith("postgresql"), reason="needs TEAMSYNC_TEST_DATABASE_URL (PostgreSQL)"
)
SECRET_NAME = "Ada Lovelace <ada@secret.example>"


def write_raw(store: Store, data: dict[str, Any], record_id: str = "001A") -> None:
    with store.session() as s:
        store.upsert_raw(s, "salesforce", "Account", [RawRow(record_id, data, utcnow())])


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'teamsync.db'}", busy_timeout=0.2)
    store.upgrade()
    yield store
    store.dispose()


def test_corrupt_file(tmp_path: Path) -> None:
    """A file that is not a SQLite database: corrupt."""
    path = tmp_path / "teamsync.db"
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 200)
    with pytest.raises(StoreUnavailable) as info:
        Store(f"sqlite:///{path}").check_schema()
    assert info.value.problem == "corrupt"
    assert info.value.exit_code == 5
    assert "\n" not in str(info.value)


def test_locked_database(sqlite_store: Store) -> None:
    """Another process holding the write lock past the busy timeout: locked."""
    database = sqlite_store.engine.url.database
    assert database is not None
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable) as info:
            write_raw(sqlite_store, {"Name": SECRET_NAME})
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert info.value.problem == "locked"
    assert SECRET_NAME not in str(info.value)


def test_disk_full(sqlite_store: Store) -> None:
    """No room left for the database (SQLITE_FULL): full."""

    @event.listens_for(sqlite_store.engine, "connect")
    def _tiny(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA max_page_count = 1")

    sqlite_store.engine.dispose()
    with pytest.raises(StoreUnavailable) as info:
        write_raw(sqlite_store, {"Name": SECRET_NAME * 2000})
    assert info.value.problem == "full"
    assert SECRET_NAME not in str(info.value)


def test_read_only_database(sqlite_store: Store) -> None:
    """A database opened read-only (the file's owner forbids writes): no privileges."""
    database = sqlite_store.engine.url.database
    read_only = Store(f"sqlite:///file:{database}?mode=ro&uri=true")
    with pytest.raises(StoreUnavailable) as info:
        write_raw(read_only, {"Name": SECRET_NAME})
    assert info.value.problem == "no privileges"
    read_only.dispose()


def test_missing_directory_is_unreachable(tmp_path: Path) -> None:
    """A database in a directory that does not exist: unreachable."""
    store = Store(f"sqlite:///{tmp_path / 'gone' / 'teamsync.db'}")
    with pytest.raises(StoreUnavailable) as info:
        store.check_schema()
    assert info.value.problem == "unreachable"


def test_data_errors_stay_with_the_caller(sqlite_store: Store) -> None:
    """An error about one statement's data is not "the store is down": the session leaves it
    for per-record handling, and its message carries no parameter."""
    with pytest.raises(SQLAlchemyError) as info, sqlite_store.session() as s:
        s.execute(text("INSERT INTO locks (name) VALUES (:n)"), {"n": SECRET_NAME})
    assert not isinstance(info.value, StoreUnavailable)
    assert SECRET_NAME not in str(info.value)
    assert "parameters hidden" in str(info.value)


@needs_pg
def test_postgres_connection_killed_mid_run() -> None:
    """The server ends the store's connection (pg_terminate_backend): killed."""
    store = Store(PG_URL)
    admin = create_engine(PG_URL)
    try:

        def killed_mid_session() -> None:
            with store.session() as s:
                pid = s.execute(text("SELECT pg_backend_pid()")).scalar()
                with admin.begin() as conn:
                    conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                s.execute(text("SELECT 1"))

        with pytest.raises(StoreUnavailable) as info:
            killed_mid_session()
        assert info.value.problem == "killed"
    finally:
        store.dispose()
        admin.dispose()


@needs_pg
def test_postgres_missing_privileges() -> None:
    """A role that may not use the store's schema: no privileges, password never shown."""
    role = f"ts_noprivs_{uuid.uuid4().hex[:8]}"
    schema = f"ts_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        conn.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}'"))
    owner = Store(f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}")
    owner.upgrade()
    owner.dispose()
    with admin.begin() as conn:  # it may see the schema, not read its tables
        conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}'))
    base = PG_URL.replace("postgres@", f"{role}:pw-{role}@", 1)
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    denied = Store(url)
    try:
        with pytest.raises(StoreUnavailable) as info, denied.session() as s:
            s.execute(text("SELECT count(*) FROM raw_records"))
        assert info.value.problem == "no privileges"
        assert f"pw-{role}" not in str(info.value)
    finally:
        denied.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


@needs_pg
def test_postgres_data_error_hides_parameters() -> None:
    """A NUL byte refused by PostgreSQL: the error names no parameter value."""
    store = Store(PG_URL)
    try:
        with pytest.raises(SQLAlchemyError) as info, store.session() as s:
            s.execute(text("SELECT CAST(:v AS text)"), {"v": SECRET_NAME + "\x00"})
        assert not isinstance(info.value, StoreUnavailable)
        assert SECRET_NAME not in str(info.value)
    finally:
        store.dispose()


# --- the SQLite run lock ---------------------------------------------------------------------
def test_os_lock_file_beside_the_database_is_private(tmp_path: Path) -> None:
    """The lock is a 0600 file beside the database; a second holder is refused at once."""
    url = f"sqlite:///{tmp_path / 'teamsync.db'}"
    first, second = Store(url), Store(url)
    path = lock_path(url)
    assert path == tmp_path / "teamsync.db.lock"
    with first.lock("run"):
        assert path.stat().st_mode & 0o777 == 0o600
        with pytest.raises(LockHeld, match="locked by a live process"), second.lock("run"):
            pass
    with second.lock("run"):
        pass


def test_lock_of_a_killed_holder_is_free_at_once(tmp_path: Path) -> None:
    """A process SIGKILLed while it holds the lock does not keep it: the kernel releases it."""
    url = f"sqlite:///{tmp_path / 'teamsync.db'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import os, sys, time
            from sync.store import Store
            with Store({url!r}).lock("run"):
                print("held", flush=True)
                time.sleep(60)
        """)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld), Store(url).lock("run"):
            pass
        holder.kill()
        holder.wait(timeout=10)
        with Store(url).lock("run"):
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)


def test_cli_reports_a_corrupt_store_in_one_line(tmp_path: Path) -> None:
    """`teamsync status` on a corrupt file: exit 5, one line naming the problem, no traceback."""
    from typer.testing import CliRunner

    from sync.cli.app import app

    path = tmp_path / "teamsync.db"
    path.write_bytes(b"garbage, not SQLite " * 100)
    env = {k: None for k in os.environ if k.startswith("TEAMSYNC_")}
    env.update(TEAMSYNC_DATABASE_URL=f"sqlite:///{path}", TEAMSYNC_LOG_FORMAT="console")
    result = CliRunner().invoke(app, ["status"], env=env)
    assert result.exit_code == 5, result.output
    assert "is corrupt or not a teamsync store" in result.output
    assert "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1
