"""Dropdown (picklist) items: name <-> GSID, per category.

Categories: ``CTA_TYPE``, ``CTA_REASON``, ``CTA_STATUS``, ``CTA_PRIORITY`` (Cockpit) and
``COMPANY_STAGE``, ``COMPANY_STATUS`` (Company dropdown fields).  ``type``, ``reason``,
``status`` and ``priority`` are accepted as short names of the CTA categories.  Item GSIDs
(``1I00…``, 36 characters) are a hash of category and name, so they are the same in every
emulator instance.

    emu.picklists.gsid("status", "Closed Success")   # -> "1I00…"
    emu.picklists.name(gsid)                         # -> "Closed Success"
    emu.picklists.is_closed(gsid)                    # -> True
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from emulators.gainsight import schema

CTA_TYPE = "CTA_TYPE"
CTA_REASON = "CTA_REASON"
CTA_STATUS = "CTA_STATUS"
CTA_PRIORITY = "CTA_PRIORITY"
COMPANY_STAGE = "COMPANY_STAGE"
COMPANY_STATUS = "COMPANY_STATUS"

_ALIASES = {
    "type": CTA_TYPE,
    "reason": CTA_REASON,
    "status": CTA_STATUS,
    "priority": CTA_PRIORITY,
    "stage": COMPANY_STAGE,
}

# (object, field) -> category, for DROPDOWN fields.
FIELD_CATEGORIES: dict[tuple[str, str], str] = {
    ("company", "stage"): COMPANY_STAGE,
    ("company", "status"): COMPANY_STATUS,
    ("calltoaction", "typeid"): CTA_TYPE,
    ("calltoaction", "reasonid"): CTA_REASON,
    ("calltoaction", "statusid"): CTA_STATUS,
    ("calltoaction", "priorityid"): CTA_PRIORITY,
}


@dataclass(frozen=True)
class PicklistItem:
    gsid: str
    name: str
    category: str
    display_order: int
    closed: bool = False  # statuses only
    active: bool = True


def _gsid(category: str, name: str) -> str:
    digest = hashlib.sha1(f"{category}:{name}".encode()).hexdigest().upper()  # noqa: S324
    return ("1I00" + digest)[:36]


class Picklists:
    """All dropdown categories of the emulated tenant (thread-safe; items can be added)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_gsid: dict[str, PicklistItem] = {}
        self._by_name: dict[str, dict[str, PicklistItem]] = {}
        for name in schema.CTA_TYPES:
            self.add(CTA_TYPE, name)
        for name in schema.CTA_REASONS:
            self.add(CTA_REASON, name)
        for name in schema.CTA_PRIORITIES:
            self.add(CTA_PRIORITY, name)
        for name, closed in schema.CTA_STATUSES.items():
            self.add(CTA_STATUS, name, closed=closed)
        for name in schema.COMPANY_STAGES:
            self.add(COMPANY_STAGE, name)
        for name in schema.COMPANY_STATUSES:
            self.add(COMPANY_STATUS, name)

    @staticmethod
    def category(name: str) -> str:
        """Canonical category name for ``name`` (``status`` -> ``CTA_STATUS``)."""
        return _ALIASES.get(name.lower(), name.upper())

    def add(self, category: str, name: str, *, closed: bool = False) -> str:
        """Add an item (idempotent) and return its GSID."""
        cat = self.category(category)
        with self._lock:
            items = self._by_name.setdefault(cat, {})
            existing = items.get(name.lower())
            if existing is not None:
                return existing.gsid
            item = PicklistItem(_gsid(cat, name), name, cat, len(items) + 1, closed)
            items[name.lower()] = item
            self._by_gsid[item.gsid] = item
            return item.gsid

    def remove(self, category: str, name: str) -> bool:
        """Delete an item (an admin who never configured it); True when it existed."""
        cat = self.category(category)
        with self._lock:
            item = self._by_name.get(cat, {}).pop(name.strip().lower(), None)
            if item is None:
                return False
            self._by_gsid.pop(item.gsid, None)
            return True

    def gsid(self, category: str, name: str) -> str | None:
        """GSID of the item called ``name`` (case-insensitive) in ``category``, or None."""
        item = self._by_name.get(self.category(category), {}).get(name.strip().lower())
        return item.gsid if item else None

    def item(self, gsid: str) -> PicklistItem | None:
        return self._by_gsid.get(gsid)

    def name(self, gsid: str | None) -> str | None:
        item = self._by_gsid.get(gsid) if gsid else None
        return item.name if item else None

    def is_closed(self, gsid: str | None) -> bool:
        item = self._by_gsid.get(gsid) if gsid else None
        return bool(item and item.closed)

    def items(self, category: str) -> list[PicklistItem]:
        return list(self._by_name.get(self.category(category), {}).values())

    def resolve(self, category: str, value: str) -> str | None:
        """An item GSID from either its name or its GSID (the form writes accept)."""
        item = self._by_gsid.get(value)
        if item is not None and item.category == self.category(category):
            return item.gsid
        return self.gsid(category, value)
