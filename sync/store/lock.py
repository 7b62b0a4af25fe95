"""The run lock: one teamsync run at a time per store.

PostgreSQL: an advisory lock held on a dedicated connection (released by the server when the
session dies), per store schema.  SQLite: an operating-system lock (``flock``, via
``filelock``) on a file beside the database, ``teamsync.db.lock`` (0600), released by the
kernel when the process dies: a SIGKILLed run never locks out the next one.  Where such locks
do not work (some network file systems) or there is no file (``:memory:``), a lease row in
``locks`` that the holder renews while it works is the fallback.

Take the lock before touching the schema: first-run creation and migrations happen under it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from filelock import FileLock, Timeout
from sqlalchemy import delete, text, update
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError

from config.errors import LockHeld
from sync.clock import utcnow
from sync.store.models import Lock

if TYPE_CHECKING:
    from sync.store.store import Store

log = structlog.get_logger("teamsync.store")


def lock_path(url: str, name: str = "run") -> Path | None:
    """The lock file beside a SQLite database file (None: no file to put it beside)."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - the store reports a malformed URL itself
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
        if not database or "mode=memory" in str(url):
            return None
    suffix = ".lock" if name == "run" else f".{name}.lock"
    return Path(database).with_name(Path(database).name + suffix)


@contextmanager
def hold(store: Store, name: str, *, lease_seconds: int = 900) -> Iterator[RunLock]:
    """Hold the named lock for the block; LockHeld if another process has it."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    if store.dialect == "postgresql":
        with store.errors():
            conn = store.engine.connect()
        try:
            with store.errors():
                # One store schema per org may share a database: the lock is per schema.
                database, schema = conn.execute(
                    text("SELECT current_database(), current_schema()")
                ).one()
                key = _advisory_key(f"{database}:{schema}:{name}")
                got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
                conn.commit()
            if not got:
                raise LockHeld(f"another teamsync run holds the lock {name!r}")
            try:
                yield RunLock(store, name, holder, lease_seconds, pg_connection=conn)
            finally:
                with contextlib.suppress(Exception):  # a dead connection released it already
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
        finally:
            with contextlib.suppress(Exception):
                conn.close()
        return
    path = lock_path(store.url, name)
    if path is not None:
        file_lock = _os_lock(path, name)
        if file_lock is not None:
            try:
                yield RunLock(store, name, holder, lease_seconds, os_lock=True)
            finally:
                file_lock.release()
            return
    # Fallback: the lease row needs the schema, so it is created first here.
    store.check_schema()
    run_lock = RunLock(store, name, holder, lease_seconds)
    run_lock.acquire()
    try:
        yield run_lock
    finally:
        run_lock.release()


class RunLock:
    """A held lock; on SQLite a lease row that the holder renews while it works."""

    def __init__(
        self,
        store: Store,
        name: str,
        holder: str,
        lease_seconds: int,
        *,
        pg_connection: Connection | None = None,
        os_lock: bool = False,
    ) -> None:
        self.store = store
        self.name = name
        self.holder = holder
        self.lease = timedelta(seconds=lease_seconds)
        self._pg = pg_connection
        self._os = os_lock

    def acquire(self) -> None:
        now = utcnow()
        with self.store.session() as s:
            current = s.get(Lock, self.name, with_for_update=True)
            if current is not None and current.lease_until > now and current.holder != self.holder:
                raise LockHeld(
                    f"another teamsync run ({current.holder}) holds the lock {self.name!r} "
                    f"until {current.lease_until.isoformat(timespec='seconds')}"
                )
            if current is None:
                s.add(
                    Lock(
                        name=self.name,
                        holder=self.holder,
                        acquired_at=now,
                        lease_until=now + self.lease,
                    )
                )
            else:
                current.holder = self.holder
                current.acquired_at = now
                current.lease_until = now + self.lease
        # Two processes racing for a free lock: the primary key lets only one insert win.

    def renew(self) -> None:
        """Extend the lease (the fallback); a no-op with the OS and advisory locks."""
        if self._pg is not None or self._os:
            return
        with self.store.session() as s:
            s.execute(
                update(Lock)
                .where(Lock.name == self.name, Lock.holder == self.holder)
                .values(lease_until=utcnow() + self.lease)
            )

    def release(self) -> None:
        if self._pg is not None or self._os:
            return
        try:
            with self.store.session() as s:
                s.execute(delete(Lock).where(Lock.name == self.name, Lock.holder == self.holder))
        except IntegrityError:  # pragma: no cover - nothing sensible to do on release
            pass


def _os_lock(path: Path, name: str) -> FileLock | None:
    """The held OS lock on ``path``; LockHeld when another process holds it; None when the
    file system cannot lock (then the lease row is used)."""
    lock = FileLock(
        str(path),
        timeout=0,
        mode=0o600,
        thread_local=False,
        fallback_to_soft=False,  # a soft (existence) lock would outlive a killed process
        preserve_lock_file=True,  # unlinking a flock file races with the next locker
    )
    try:
        lock.acquire()
    except Timeout:
        raise LockHeld(
            f"another teamsync run holds the lock {name!r} ({path} is locked by a live process)"
        ) from None
    except OSError as exc:
        if not path.parent.is_dir():
            return None  # the store itself reports a missing directory
        log.warning("OS file lock unavailable; using the lease row", path=str(path), error=str(exc))
        return None
    return lock


def _advisory_key(name: str) -> int:
    digest = hashlib.sha256(f"teamsync:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
