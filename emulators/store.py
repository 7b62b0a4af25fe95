"""In-memory record tables shared by the Salesforce and Gainsight emulators.

Rows are kept as compact lists (one slot per column) so that an org of 100,000 accounts
and 300,000 opportunities fits comfortably in memory.  Values are stored in one internal
representation per type, and each API layer renders them its own way:

=============  ====================================================
type           stored as
=============  ====================================================
datetime       ``int`` epoch milliseconds, UTC
date           Salesforce: ``str`` ``YYYY-MM-DD``; Gainsight: ``int`` epoch ms (midnight UTC)
boolean        ``bool``
numbers        ``int`` / ``float``
multipicklist  ``str`` with values joined by ``;`` (as Salesforce returns it)
everything     ``str`` or ``None``
else
=============  ====================================================

The table itself does no business validation (picklists, read-only fields, inactive users):
that is the job of each API layer, which knows the real error codes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulators.sfid import to18

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class Clock:
    """Wall clock in epoch milliseconds that tests can pin and move."""

    def __init__(self, fixed_ms: int | None = None) -> None:
        self._fixed = fixed_ms
        self._offset = 0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            base = self._fixed if self._fixed is not None else int(time.time() * 1000)
            return base + self._offset

    def set(self, epoch_ms: int) -> None:
        with self._lock:
            self._fixed = epoch_ms
            self._offset = 0

    def advance(self, ms: int) -> None:
        with self._lock:
            self._offset += ms

    def release(self) -> None:
        """Go back to the real time (keeping any advance)."""
        with self._lock:
            self._fixed = None


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str  # id reference string textarea picklist multipicklist boolean currency double int
    #             percent date datetime email url phone (Salesforce); Gainsight types map to these
    label: str | None = None
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    required: bool = False  # must be supplied on create
    reference_to: str | None = None
    relationship_name: str | None = None  # Owner for OwnerId; Csm__gr style for Gainsight
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    length: int | None = None
    default: Any = None
    calculated: bool = False  # derived by the emulator (User.Name, Opportunity.IsWon ...)
    filterable: bool = True
    custom: bool = False
    # Field-level security of the API user: an unreadable field is invisible to the API
    # (describe, queries and writes treat it as nonexistent); it stays a column internally.
    readable: bool = True
    sortable: bool = True  # Gainsight describe's ``sortable`` (a tenant may refuse Gsid)


@dataclass
class ObjectSchema:
    name: str
    key_prefix: str
    fields: list[FieldDef]
    soft_delete: bool = True  # deleted rows stay with IsDeleted = true (Recycle Bin)
    indexes: tuple[str, ...] = ()  # fields with an equality index (e.g. AccountId)
    label_plural: str | None = None
    _by_lower: dict[str, FieldDef] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        """Rebuild the name index (after a field definition was replaced)."""
        self._by_lower = {f.name.lower(): f for f in self.fields if f.readable}

    def field(self, name: str) -> FieldDef | None:
        """Case-insensitive lookup of a field the API user can see."""
        return self._by_lower.get(name.lower())

    @property
    def visible_fields(self) -> list[FieldDef]:
        """The fields the API user can see, in schema order."""
        return [f for f in self.fields if f.readable]

    def reference_by_relationship(self, relationship: str) -> FieldDef | None:
        rel = relationship.lower()
        for f in self.fields:
            if f.readable and f.relationship_name and f.relationship_name.lower() == rel:
                return f
        return None

    def replace_field(self, name: str, **changes: Any) -> FieldDef:
        """Change one field's definition in place (an admin's edit); returns the new one."""
        for i, f in enumerate(self.fields):
            if f.name.lower() == name.lower():
                self.fields[i] = dataclasses.replace(f, **changes)
                self.reindex()
                return self.fields[i]
        raise KeyError(f"{self.name} has no field {name!r}")

    def copy(self) -> ObjectSchema:
        """An independent copy (each emulator instance owns its schemas)."""
        return ObjectSchema(
            self.name,
            self.key_prefix,
            list(self.fields),
            soft_delete=self.soft_delete,
            indexes=self.indexes,
            label_plural=self.label_plural,
        )


class SalesforceIdFactory:
    """Deterministic 18-character Ids with the object's key prefix and a valid checksum."""

    def __init__(self, key_prefix: str, pod: str = "Tm") -> None:
        self._prefix = key_prefix + pod + "0"
        self._counter = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            self._counter += 1
            n = self._counter
        digits = []
        for _ in range(9):
            n, rem = divmod(n, 62)
            digits.append(_BASE62[rem])
        return to18(self._prefix + "".join(reversed(digits)))


class GsidFactory:
    """36-character upper-case Gainsight Ids: a family prefix plus a hash of a counter."""

    def __init__(self, prefix: str, salt: str = "") -> None:
        self._prefix = prefix
        self._salt = salt
        self._counter = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            self._counter += 1
            n = self._counter
        digest = hashlib.sha256(f"{self._prefix}:{self._salt}:{n}".encode()).hexdigest().upper()
        return (self._prefix + digest)[:36].ljust(36, "0")


class Table:
    """All rows of one object, keyed by Id (insertion order preserved)."""

    def __init__(
        self,
        schema: ObjectSchema,
        id_factory: Callable[[], str],
        clock: Clock,
        *,
        id_field: str = "Id",
        created_field: str | None = "CreatedDate",
        modified_fields: tuple[str, ...] = ("LastModifiedDate", "SystemModstamp"),
        deleted_field: str | None = "IsDeleted",
        stamp_resolution_ms: int = 1000,
    ) -> None:
        self.schema = schema
        self.columns: list[str] = [f.name for f in schema.fields]
        self.pos: dict[str, int] = {name.lower(): i for i, name in enumerate(self.columns)}
        self.rows: dict[str, list[Any]] = {}
        self.lock = threading.RLock()
        self._id_factory = id_factory
        self._clock = clock
        self._id_pos = self.pos[id_field.lower()]
        self._created_pos = self.pos.get(created_field.lower()) if created_field else None
        self._modified_pos = [self.pos[f.lower()] for f in modified_fields if f.lower() in self.pos]
        self._deleted_pos = self.pos.get(deleted_field.lower()) if deleted_field else None
        self._resolution = max(1, stamp_resolution_ms)
        self._indexes: dict[int, dict[Any, set[str]]] = {
            self.pos[name.lower()]: {} for name in schema.indexes
        }
        self._defaults = [f.default for f in schema.fields]

    # -- stamps ------------------------------------------------------------------------
    def stamp(self) -> int:
        """Current time at the table's stamp resolution (Salesforce: whole seconds)."""
        now = self._clock.now_ms()
        return now - now % self._resolution

    # -- writes ------------------------------------------------------------------------
    def new_id(self) -> str:
        return self._id_factory()

    def insert(self, values: Mapping[str, Any], *, record_id: str | None = None) -> str:
        """Insert a row (no validation); fills Id, audit stamps and IsDeleted."""
        row = list(self._defaults)
        for name, value in values.items():
            row[self.pos[name.lower()]] = value
        rid = record_id or row[self._id_pos] or self._id_factory()
        row[self._id_pos] = rid
        now = self.stamp()
        if self._created_pos is not None and row[self._created_pos] is None:
            row[self._created_pos] = now
        for p in self._modified_pos:
            if row[p] is None:
                row[p] = now
        if self._deleted_pos is not None and row[self._deleted_pos] is None:
            row[self._deleted_pos] = False
        with self.lock:
            if rid in self.rows:
                raise KeyError(f"duplicate id {rid}")
            self.rows[rid] = row
            self._index_add(rid, row)
        return rid

    def bulk_load(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Fast insert for seeding; returns the number of rows loaded."""
        n = 0
        for values in records:
            self.insert(values)
            n += 1
        return n

    def update(self, record_id: str, values: Mapping[str, Any], *, touch: bool = True) -> None:
        with self.lock:
            row = self.rows[record_id]
            self._index_remove(record_id, row)
            for name, value in values.items():
                row[self.pos[name.lower()]] = value
            if touch:
                now = self.stamp()
                for p in self._modified_pos:
                    # Stamps never go backwards for a record, even if the clock is moved back.
                    row[p] = max(now, row[p] or 0)
            self._index_add(record_id, row)

    def delete(self, record_id: str, *, hard: bool | None = None) -> None:
        """Soft delete (IsDeleted = true, kept for queryAll) unless hard or the object says so."""
        with self.lock:
            row = self.rows[record_id]
            if hard or (hard is None and not self.schema.soft_delete) or self._deleted_pos is None:
                self._index_remove(record_id, row)
                del self.rows[record_id]
                return
            row[self._deleted_pos] = True
            now = self.stamp()
            for p in self._modified_pos:
                row[p] = max(now, row[p] or 0)

    def undelete(self, record_id: str) -> None:
        with self.lock:
            if self._deleted_pos is None:
                return
            row = self.rows[record_id]
            row[self._deleted_pos] = False
            now = self.stamp()
            for p in self._modified_pos:
                row[p] = max(now, row[p] or 0)

    # -- reads -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self.rows

    def raw(self, record_id: str) -> list[Any] | None:
        return self.rows.get(record_id)

    def is_deleted(self, record_id: str) -> bool:
        row = self.rows.get(record_id)
        if row is None:
            return True
        return bool(self._deleted_pos is not None and row[self._deleted_pos])

    def get(self, record_id: str, *, include_deleted: bool = False) -> dict[str, Any] | None:
        """A copy of the row as {FieldName: value}, or None."""
        row = self.rows.get(record_id)
        if row is None:
            return None
        if not include_deleted and self._deleted_pos is not None and row[self._deleted_pos]:
            return None
        return dict(zip(self.columns, row, strict=True))

    def value(self, record_id: str, field_name: str) -> Any:
        row = self.rows[record_id]
        return row[self.pos[field_name.lower()]]

    def ids(self) -> list[str]:
        with self.lock:
            return list(self.rows)

    def iter_rows(self, *, include_deleted: bool = False) -> Iterator[tuple[str, list[Any]]]:
        """(id, row) pairs over a snapshot of the Ids; rows are the live lists."""
        deleted = self._deleted_pos
        for rid in self.ids():
            row = self.rows.get(rid)
            if row is None:
                continue
            if not include_deleted and deleted is not None and row[deleted]:
                continue
            yield rid, row

    def find(self, field_name: str, value: Any) -> set[str]:
        """Ids whose field equals value, via the equality index (field must be indexed)."""
        p = self.pos[field_name.lower()]
        with self.lock:
            return set(self._indexes[p].get(value, ()))

    # -- indexes -----------------------------------------------------------------------
    def _index_add(self, rid: str, row: list[Any]) -> None:
        for p, index in self._indexes.items():
            index.setdefault(row[p], set()).add(rid)

    def _index_remove(self, rid: str, row: list[Any]) -> None:
        for p, index in self._indexes.items():
            bucket = index.get(row[p])
            if bucket is not None:
                bucket.discard(rid)
                if not bucket:
                    del index[row[p]]
