"""Store failures, named: what went wrong with the state store, in one line, exit 5.

    with store_errors(store.safe_url):
        ...                               # SQLAlchemy errors leave as StoreUnavailable

    problem_of(exc)  # "unreachable" | "killed" | "locked" | "full" | "corrupt" |
                     # "no privileges" | None (a statement refused: data, constraint)

Engines are built with ``hide_parameters=True``, and messages are made from the driver's first
line only: no SQL statement, no parameter (account names, e-mails) reaches a log line or a
message.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from config.errors import StoreUnavailable

# PostgreSQL SQLSTATE classes and codes (https://www.postgresql.org/docs/current/errcodes-appendix.html)
_PG_KILLED = {"57P01", "57P02", "57P03", "57P05", "57014"}  # admin shutdown, crash, cancel
_PG_PRIVILEGES = {"42501"}  # insufficient_privilege
_PG_LOCKED = {"55P03", "40P01"}  # lock_not_available, deadlock
_PG_CORRUPT = {"XX001", "XX002"}  # data_corrupted, index_corrupted
_PG_SCHEMA = {"42P01", "42703", "3F000"}  # undefined table / column, invalid schema

_SQLITE_TEXTS = (
    ("database is locked", "locked"),
    ("database table is locked", "locked"),
    ("database or disk is full", "full"),
    ("disk i/o error", "full"),
    ("file is not a database", "corrupt"),
    ("database disk image is malformed", "corrupt"),
    ("malformed database schema", "corrupt"),
    ("no such table", "corrupt"),
    ("no such column", "corrupt"),
    ("attempt to write a readonly database", "no privileges"),
    ("unable to open database file", "unreachable"),
    ("readonly database", "no privileges"),
)

_WHAT = {
    "unreachable": "cannot be reached",
    "killed": "lost its connection mid-run (server stopped or connection killed)",
    "locked": "is locked by another process",
    "full": "is full (no space left for the database)",
    "corrupt": "is corrupt or not a teamsync store",
    "no privileges": "refuses access (missing privileges)",
    "unavailable": "failed",
}


def problem_of(exc: BaseException) -> str | None:
    """The store problem behind ``exc``, or None for an error about one statement's data."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, sqlite3.Error):
        text = str(orig).lower()
        for fragment, problem in _SQLITE_TEXTS:
            if fragment in text:
                return problem
        if isinstance(orig, sqlite3.OperationalError | sqlite3.DatabaseError) and not isinstance(
            orig, sqlite3.IntegrityError | sqlite3.DataError | sqlite3.ProgrammingError
        ):
            return "unavailable"
        return None
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        if sqlstate in _PG_KILLED:
            return "killed"
        if sqlstate in _PG_PRIVILEGES:
            return "no privileges"
        if sqlstate in _PG_LOCKED:
            return "locked"
        if sqlstate in _PG_CORRUPT or sqlstate in _PG_SCHEMA:
            return "corrupt"
        if sqlstate.startswith("53"):  # insufficient resources: disk full, out of memory
            return "full"
        if sqlstate.startswith("08"):  # connection exception
            return "unreachable"
        return None
    module = type(orig).__module__
    name = type(orig).__name__
    if module.startswith("psycopg") and name in ("OperationalError", "InterfaceError"):
        # No SQLSTATE: the connection failed to open, or broke outside a statement.
        text = str(orig).lower()
        if any(w in text for w in ("closed", "terminat", "lost", "consuming input")):
            return "killed"
        return "unreachable"
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return "killed"
    return None


def first_line(exc: BaseException) -> str:
    """The driver's own first line, without SQL, parameters or DETAIL lines."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return text[:200]


def store_unavailable(exc: BaseException, safe_url: str) -> StoreUnavailable:
    """The one-line error for ``exc`` (any SQLAlchemy / driver error)."""
    problem = problem_of(exc) or "unavailable"
    what = _WHAT.get(problem, "failed")
    detail = first_line(exc) if problem_of(exc) else f"{type(exc).__name__}: {first_line(exc)}"
    return StoreUnavailable(f"the store {safe_url} {what}: {detail}", problem=problem)


@contextmanager
def store_errors(safe_url: str) -> Iterator[None]:
    """SQLAlchemy errors that mean the store cannot be used leave as StoreUnavailable; errors
    about one statement's data (a poison record) stay as they are for the caller."""
    try:
        yield
    except SQLAlchemyError as exc:
        if problem_of(exc) is None:
            raise
        raise store_unavailable(exc, safe_url) from exc
    except sqlite3.Error as exc:
        if problem_of(exc) is None:
            raise
        raise store_unavailable(exc, safe_url) from exc


__all__ = ["first_line", "problem_of", "store_errors", "store_unavailable"]
