"""The run lock: one teamsync run at a time per store.

PostgreSQL: an advisory lock held on a dedicated connection (released by the server when the
session dies), per store schema.  SQLite: a lease row in ``locks`` that the holder renews
while it works.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from config.errors import LockHeld
from sync.clock import utcnow
from sync.store.models import Lock

if TYPE_CHECKING:
    from sync.store.store import Store


@contextmanager
def hold(store: Store, name: str, *, lease_seconds: int = 900) -> Iterator[RunLock]:
    """Hold the named lock for the block; LockHeld if another process has it."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    if store.dialect == "postgresql":
        conn = store.engine.connect()
        try:
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
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        finally:
            conn.close()
        return
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
    ) -> None:
        self.store = store
        self.name = name
        self.holder = holder
        self.lease = timedelta(seconds=lease_seconds)
        self._pg = pg_connection

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
        """Extend the lease (SQLite); a no-op with PostgreSQL advisory locks."""
        if self._pg is not None:
            return
        with self.store.session() as s:
            s.execute(
                update(Lock)
                .where(Lock.name == self.name, Lock.holder == self.holder)
                .values(lease_until=utcnow() + self.lease)
            )

    def release(self) -> None:
        if self._pg is not None:
            return
        try:
            with self.store.session() as s:
                s.execute(delete(Lock).where(Lock.name == self.name, Lock.holder == self.holder))
        except IntegrityError:  # pragma: no cover - nothing sensible to do on release
            pass


def _advisory_key(name: str) -> int:
    digest = hashlib.sha256(f"teamsync:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
