"""The state store: ORM tables (``models``), the store and its bulk helpers (``store``), the run
lock (``lock``), watermark maths (``watermarks``) and the Alembic migrations (``migrations/``)."""

from sync.store.lock import RunLock
from sync.store.store import IN_LIST, RawRow, Store, live_accounts, quarantine

__all__ = ["IN_LIST", "RawRow", "RunLock", "Store", "live_accounts", "quarantine"]
