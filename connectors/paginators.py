"""Paginators: the state of walking a paged read, as small objects without I/O.

A client asks the paginator what to request next, sends it, and hands the rows back with
``update``; the paginator says whether there is a next page and refuses an answer that would
make paging loop forever, or that is longer or out of the order asked for (an upstream fault,
never an empty result).

    pages = KeysetPaginator(page_size=2, after=None)
    pages.update([{"Gsid": "a"}, {"Gsid": "b"}])
    pages.after, pages.has_next          # ('b', True): next ask for Gsid > 'b'
    pages.update([{"Gsid": "c"}])
    pages.has_next                       # False: a short page is the last
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

_Row = TypeVar("_Row", bound=Mapping[str, Any])


class PagingError(ValueError):
    """The server's pages cannot be walked (no key, no progress); the client says which API."""


def _key_of(row: Mapping[str, Any], key: str) -> Any:
    """The key's value, matched case-insensitively (Gainsight echoes field names loosely)."""
    lowered = key.lower()
    for name, value in row.items():
        if str(name).lower() == lowered and value is not None:
            return value
    return None


@dataclass
class KeysetPaginator:
    """Keyset paging on a string key: each page asks for ``key > after``, ordered by key.

    ``after`` starts at a resume point (None: from the beginning).  A page shorter than
    ``page_size`` (or empty) is the last.
    """

    page_size: int
    key: str = "Gsid"
    after: str | None = None
    has_next: bool = True

    def update(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            self.has_next = False
            return
        if len(rows) > self.page_size:
            raise PagingError(f"{len(rows)} rows on a page of at most {self.page_size}")
        keys = [k for k in (_key_of(row, self.key) for row in rows) if isinstance(k, str) and k]
        if len(keys) != len(rows):
            raise PagingError(f"rows without a {self.key}; keyset paging impossible")
        if keys != sorted(keys) or len(set(keys)) != len(keys):
            raise PagingError(f"rows not in the {self.key} order asked for")
        if self.after is not None and keys[0] <= self.after:
            # The server ignored "key > after": paging on would loop or repeat rows.
            raise PagingError("keyset paging made no progress")
        self.after = keys[-1]
        self.has_next = len(rows) >= self.page_size


@dataclass
class PageNumberPaginator:
    """1-based page numbers until a short page; rows already seen (by key) are dropped.

    For APIs whose sort order is undocumented: pages may overlap while records change, so a
    record is yielded once however many pages show it.  ``stale_limit`` full pages in a row
    with nothing new mean the page number is being ignored.
    """

    page_size: int
    key: str = "Gsid"
    stale_limit: int = 3
    page: int = 1
    has_next: bool = True
    _seen: set[str] = field(default_factory=set)
    _stale: int = 0

    def update(self, rows: Sequence[_Row]) -> list[_Row]:
        """The rows not seen before; moves to the next page (or stops)."""
        if len(rows) > self.page_size:
            raise PagingError(f"{len(rows)} rows on a page of at most {self.page_size}")
        fresh: list[_Row] = []
        for row in rows:
            key = _key_of(row, self.key)
            if isinstance(key, str):
                if key in self._seen:
                    continue
                self._seen.add(key)
            fresh.append(row)
        if len(rows) < self.page_size:
            self.has_next = False
            return fresh
        self._stale = 0 if fresh else self._stale + 1
        if self._stale >= self.stale_limit:
            raise PagingError(
                f"{self._stale} full pages in a row brought nothing new (is the page number "
                "ignored?)"
            )
        self.page += 1
        return fresh


@dataclass
class OffsetPaginator:
    """Offset paging on an immutable order (e.g. CreatedDate), for when the key cannot be
    sorted on (a Gainsight tenant whose Gsid is not sortable).

    Each page after the first starts ``overlap`` rows before the end of what was read; rows
    already seen (by key) are dropped.  A delete between two pages shifts later rows forward;
    a shift up to ``overlap`` rows is covered, and when none of the overlap rows is seen again
    the paginator steps one page back (at most ``max_steps_back`` times in a row) so no row
    is skipped.
    """

    page_size: int
    key: str = "Gsid"
    overlap: int = 0
    max_steps_back: int = 3
    offset: int = 0
    has_next: bool = True
    _seen: set[str] = field(default_factory=set)
    _steps_back: int = 0

    def update(self, rows: Sequence[_Row]) -> list[_Row]:
        """The rows not seen before; moves the offset on (or back, or stops)."""
        keys = []
        for row in rows:
            key = _key_of(row, self.key)
            if key is None:
                raise PagingError(f"rows without a {self.key}; offset paging impossible")
            keys.append(str(key))
        head = keys[: min(self.overlap, self.offset)]
        # Deletes before the window shift rows forward; up to ``overlap`` rows of shift are
        # covered by the overlap.  When none of the overlap rows was seen before, the shift
        # was larger and rows may have slipped past: step a page back.
        shifted = bool(head) and not any(k in self._seen for k in head)
        fresh: list[_Row] = []
        for row, key in zip(rows, keys, strict=True):
            if key in self._seen:
                continue
            self._seen.add(key)
            fresh.append(row)
        if shifted:
            self._steps_back += 1
            if self._steps_back > self.max_steps_back:
                raise PagingError("rows keep shifting between pages; offset paging gave up")
            self.offset = max(0, self.offset - self.page_size)
            return fresh
        self._steps_back = 0
        if len(rows) < self.page_size:
            self.has_next = False
            return fresh
        self.offset = self.offset + len(rows) - self.overlap
        return fresh


__all__ = ["KeysetPaginator", "OffsetPaginator", "PageNumberPaginator", "PagingError"]
