"""``/query`` and ``/queryAll``: server-side cursors and paging.

A query materialises only the ordered list of matching Ids (the cursor); every page renders
just its own records from the live rows.  So a page shows each record's values *at the time
the page is served*: a record changed after the query started shows its new values, a record
soft-deleted since still appears (with ``IsDeleted`` true if selected), and a record
hard-deleted since (team members, users) is skipped, so that page is shorter.  ``totalSize``
stays the count at query time.

Locators look like ``01gTm0000000001AAA``; ``nextRecordsUrl`` is
``/services/data/vNN.N/query/{locator}-{offset}``.  Cursors expire after 15 minutes without
use (emulator clock) and at most ``max_open`` stay open (the least recently used goes).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from emulators.salesforce.context import ApiError
from emulators.salesforce.soql import QueryPlan
from emulators.store import Clock, SalesforceIdFactory

DEFAULT_BATCH = 2000
MIN_BATCH = 200
MAX_BATCH = 2000
CURSOR_IDLE_MS = 15 * 60 * 1000
MAX_OPEN_CURSORS = 50


def batch_size(header: str | None) -> int | None:
    """``Sforce-Query-Options: batchSize=N`` clamped to 200..2000 (None when absent/bad)."""
    if not header:
        return None
    for part in header.split(","):
        key, _, value = part.partition("=")
        if key.strip().lower() == "batchsize":
            try:
                n = int(value.strip())
            except ValueError:
                return None
            return min(MAX_BATCH, max(MIN_BATCH, n))
    return None


@dataclass
class Cursor:
    locator: str
    plan: QueryPlan
    ids: list[str]
    batch: int
    last_used_ms: int


class Cursors:
    """Open query cursors, keyed by locator (thread-safe)."""

    def __init__(
        self, clock: Clock, *, idle_ms: int = CURSOR_IDLE_MS, max_open: int = MAX_OPEN_CURSORS
    ) -> None:
        self._clock = clock
        self._idle_ms = idle_ms
        self._max_open = max_open
        self._lock = threading.Lock()
        self._open: OrderedDict[str, Cursor] = OrderedDict()
        self._ids = SalesforceIdFactory("01g")

    def __len__(self) -> int:
        return len(self._open)

    def first_page(
        self, plan: QueryPlan, ids: list[str], batch: int | None, version: str
    ) -> dict[str, Any]:
        size = batch or DEFAULT_BATCH
        if len(ids) <= size:
            return self._page(plan, ids, 0, size, version, None)
        cursor = Cursor(self._ids(), plan, ids, size, self._clock.now_ms())
        with self._lock:
            self._open[cursor.locator] = cursor
            while len(self._open) > self._max_open:
                self._open.popitem(last=False)
        return self._page(plan, ids, 0, size, version, cursor.locator)

    def next_page(self, token: str, batch: int | None, version: str) -> tuple[dict[str, Any], str]:
        """Serve ``{locator}-{offset}`` -> (page, sObject name).

        400 INVALID_QUERY_LOCATOR when the locator is unknown or expired.
        """
        locator, _, offset_text = token.rpartition("-")
        now = self._clock.now_ms()
        with self._lock:
            cursor = self._open.get(locator) if offset_text.isdigit() else None
            if cursor is not None and now - cursor.last_used_ms > self._idle_ms:
                del self._open[locator]
                cursor = None
            if cursor is None or int(offset_text) >= len(cursor.ids):
                raise ApiError.of(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            cursor.last_used_ms = now
            self._open.move_to_end(locator)
        size = batch or cursor.batch
        page = self._page(cursor.plan, cursor.ids, int(offset_text), size, version, locator)
        return page, cursor.plan.sobject

    def _page(
        self,
        plan: QueryPlan,
        ids: list[str],
        offset: int,
        size: int,
        version: str,
        locator: str | None,
    ) -> dict[str, Any]:
        rows = plan.table.rows
        records = []
        for rid in ids[offset : offset + size]:
            row = rows.get(rid)
            if row is not None:  # hard-deleted since the query ran
                records.append(plan.render(row, version))
        end = offset + size
        page: dict[str, Any] = {"totalSize": len(ids), "done": end >= len(ids)}
        if end < len(ids):
            page["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{end}"
        page["records"] = records
        return page
