"""The emulated tenant's data: tables, dropdowns and value validation shared by every API."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from typing import Any

from emulators.gainsight import errors as E
from emulators.gainsight.errors import FieldError
from emulators.gainsight.picklists import FIELD_CATEGORIES, Picklists
from emulators.gainsight.query import Resolver
from emulators.gainsight.schema import COMPANY_SCORE_LOOKUPS, OBJECTS, SCORING_SCHEME
from emulators.gainsight.values import (
    NUMBER_TYPES,
    as_text,
    is_email,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_number,
)
from emulators.profile import LENIENT, Profile
from emulators.store import Clock, FieldDef, GsidFactory, Table

DISPLAY_NAMES = {name: schema.name for name, schema in OBJECTS.items()}
_OBJECT_ALIASES = {"cta": "calltoaction", "user": "gsuser"}
_DEFAULT_LENGTH = {"STRING": 255, "URL": 2000, "GSID": 36, "EMAIL": 255, "RICHTEXTAREA": 131_072}
_CTA_NAME_KEYS = {
    "type": "TypeId",
    "reason": "ReasonId",
    "status": "StatusId",
    "priority": "PriorityId",
}


def object_key(name: str) -> str | None:
    """The lower-case table key for an object name in any case, or None."""
    key = name.strip().lower()
    key = _OBJECT_ALIASES.get(key, key)
    return key if key in OBJECTS else None


SCORE_FIELDS = ("CurrentScore", "PreviousScore")
SCHEME = SCORING_SCHEME.name.lower()


class Tenant:
    """Tables keyed by lower-case object name, plus the order rows were inserted in.

    Tenant switches (both readings of an UNVERIFIED fact; off in every profile):
    ``gsid_sortable`` False refuses ordering and range filters on Gsid (G4);
    ``filter_time_zone`` reads date filter values without an offset in that zone (G3).
    """

    def __init__(self, clock: Clock, picklists: Picklists, profile: Profile = LENIENT) -> None:
        self.clock = clock
        self.picklists = picklists
        self.profile = profile
        self.gsid_sortable = True
        self.filter_time_zone: str | None = None
        # Test seam: records (by Gsid) this tenant refuses as invalid on update, with the
        # code and reason it gives (a validation rule, a value another integration broke...).
        self.invalid_records: dict[str, tuple[str, str]] = {}
        self.tables: dict[str, Table] = {
            key: Table(
                schema.copy(),
                GsidFactory(schema.key_prefix),
                clock,
                id_field="Gsid",
                created_field="CreatedDate",
                modified_fields=("ModifiedDate",),
                deleted_field=None,
                stamp_resolution_ms=1,
            )
            for key, schema in OBJECTS.items()
        }
        self.resolver = Resolver(self.tables, picklists)
        # Insertion sequence per object: the default (unordered) result order, which must
        # stay stable between calls so that offset paging is deterministic.
        self.sequence: dict[str, dict[str, int]] = {key: {} for key in self.tables}
        self._counter = itertools.count(1)
        self.write_lock = threading.RLock()
        self.delete_log: list[dict[str, Any]] = []
        if profile.score_lookup:
            company = self.tables["company"].schema
            for lookup in COMPANY_SCORE_LOOKUPS:
                company.replace_field(
                    lookup.name,
                    type=lookup.type,
                    reference_to=lookup.reference_to,
                    relationship_name=lookup.relationship_name,
                )
            for score in range(101):  # the numeric scheme's possible scores
                self.score_gsid(score)

    # -- scoring scheme (G1) -----------------------------------------------------------------
    def score_is_lookup(self, field_name: str) -> bool:
        fd = self.tables["company"].schema.field(field_name)
        return fd is not None and fd.type == "LOOKUP" and (fd.reference_to or "").lower() == SCHEME

    def score_gsid(self, score: float | int) -> str:
        """The scheme row of a numeric score (created when the scheme lacks it)."""
        table = self.tables[SCHEME]
        value: float | int = int(score) if float(score).is_integer() else float(score)
        found = table.find("Score", value)
        if found:
            return min(found, key=lambda g: self.sequence[SCHEME].get(g, 0))
        return self.insert(SCHEME, {"Name": str(value), "Score": value, "SchemeType": "NUMERIC"})

    # -- rows ------------------------------------------------------------------------------
    def insert(self, obj: str, values: Mapping[str, Any]) -> str:
        if obj == "gsuser" and not values.get("Name"):
            values = {**values, "Name": _full_name(values)}
        gsid = self.tables[obj].insert(values)
        self.sequence[obj][gsid] = next(self._counter)
        return gsid

    def update(self, obj: str, gsid: str, values: Mapping[str, Any]) -> None:
        self.tables[obj].update(gsid, values)

    def delete(self, obj: str, gsid: str) -> None:
        self.tables[obj].delete(gsid, hard=True)
        self.sequence[obj].pop(gsid, None)
        self.delete_log.append(
            {"RecordId": gsid, "ObjectName": DISPLAY_NAMES[obj], "DeletedOn": self.clock.now_ms()}
        )

    def load_row(self, obj: str, row: Mapping[str, Any]) -> dict[str, Any]:
        """Seeding conversions: dropdown / CTA picklist names to GSIDs, date strings to ms."""
        schema = self.tables[obj].schema
        out: dict[str, Any] = {}
        for key, raw in row.items():
            value = raw
            if obj == "calltoaction" and key.lower() in _CTA_NAME_KEYS:
                target = _CTA_NAME_KEYS[key.lower()]
                if value is not None:
                    gsid = self.picklists.resolve(key.lower(), str(value))
                    if gsid is None:
                        raise ValueError(f"unknown CTA {key} {value!r}")
                    value = gsid
                out[target] = value
                continue
            fd = schema.field(key)
            if fd is None:
                raise KeyError(f"{schema.name} has no field {key!r}")
            if obj == "company" and isinstance(value, int | float) and self.score_is_lookup(key):
                value = self.score_gsid(value)
            elif isinstance(value, str) and fd.type in ("DATE", "DATETIME"):
                parsed = parse_date(value) if fd.type == "DATE" else parse_datetime(value)
                if parsed is None:
                    raise ValueError(f"bad date {value!r} for {fd.name}")
                value = parsed
            elif isinstance(value, str) and fd.type == "DROPDOWN":
                category = FIELD_CATEGORIES.get((obj, fd.name.lower()))
                value = (self.picklists.resolve(category, value) if category else None) or value
            out[fd.name] = value
        if obj == "calltoaction" and out.get("StatusId"):
            closed = self.picklists.is_closed(out["StatusId"])
            out["IsClosed"] = closed
            if closed and out.get("ClosedDate") is None:
                out["ClosedDate"] = out.get("ModifiedDate") or self.clock.now_ms()
        return out

    # -- validation ------------------------------------------------------------------------
    def coerce(self, obj: str, fd: FieldDef, value: Any) -> Any:
        """A write value in its stored form; raises :class:`FieldError` when it is invalid."""
        name = fd.name
        if value is None:
            if fd.required or not fd.nillable:
                raise FieldError(E.NOT_NULLABLE, f"Invalid field value ({name} = null)", name)
            return None
        ftype = fd.type
        if ftype in ("DATE", "DATETIME"):
            parsed = parse_date(value) if ftype == "DATE" else parse_datetime(value)
            if parsed is None:
                code = E.BAD_DATE if ftype == "DATE" else E.BAD_DATETIME
                raise FieldError(code, f"Invalid dateTime format ({name}= {value})", name, value)
            return parsed
        if ftype in NUMBER_TYPES:
            number = parse_number(value)
            if number is None:
                raise FieldError(
                    E.INVALID_FIELD, f"{E.INVALID_FIELD_DESC} ({name} = {value})", name, value
                )
            return number
        if ftype == "BOOLEAN":
            flag = parse_bool(value)
            if flag is None:
                raise FieldError(
                    E.VALIDATION, f"Invalid Boolean Value: {value} ({name} = {value})", name, value
                )
            return flag
        text = as_text(value)
        if text is None:
            raise FieldError(E.INVALID_FIELD, f"{E.INVALID_FIELD_DESC} ({name})", name, value)
        if ftype == "DROPDOWN":
            category = FIELD_CATEGORIES.get((obj, name.lower()))
            gsid = self.picklists.resolve(category, text) if category else None
            if gsid is None:
                raise FieldError(
                    E.BAD_PICKLIST,
                    f"Invalid/Inactive value provided for picklist. ({name} = {text}).",
                    name,
                    [text],
                )
            return gsid
        if ftype == "LOOKUP":
            target = (fd.reference_to or "").lower()
            if not text or text not in self.tables[target].rows:
                raise FieldError(
                    E.INVALID_GSID,
                    "Either the Gainsight ID is invalid or missing, please re-check your "
                    f"request. ({name} = {text})",
                    name,
                    text,
                )
            return text
        limit = fd.length or _DEFAULT_LENGTH.get(ftype, 255)
        if len(text) > limit:
            raise FieldError(
                E.FIELD_TOO_LONG, f"Field exceeds maximum allowed length ({name})", name, text
            )
        if ftype == "EMAIL" and not is_email(text):
            raise FieldError(
                E.INVALID_FIELD, f"{E.INVALID_FIELD_DESC} ({name} = {text})", name, text
            )
        return text


def _full_name(values: Mapping[str, Any]) -> str | None:
    parts = [values.get("FirstName"), values.get("LastName")]
    name = " ".join(str(p) for p in parts if p)
    return name or None
