"""What a Gainsight tenant says about its objects and Cockpit picklists.

``POST /v1/meta/services/objects/describe`` (``{"objectNames": [...]}``; shape VERIFIED from
the documented sample) answers ``data: [{"objectName", "fields": [{"fieldName", "dataType",
"meta": {"filterable", "sortable", "createable", "updateable", "lookupDetail":
{"lookupObjects": [{"objectName"}]}}}]}]``.  ``GET /v2/cockpit/admin/picklist/lite?category=``
(OBSERVED path) answers ``data: {"CTA_REASON": [{"gsid", "name", "active", ...}]}``.  Both are
parsed tolerantly: names compare case-insensitively, missing flags read as permissive (the
server refusing a request is what decides, describe only warns early).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CTA_CATEGORIES = ("CTA_TYPE", "CTA_REASON", "CTA_STATUS", "CTA_PRIORITY")


@dataclass(frozen=True)
class FieldInfo:
    """One field of a described object."""

    name: str
    data_type: str  # STRING, NUMBER, LOOKUP, GSID, PICKLIST, DATE, DATETIME, ...
    filterable: bool = True
    sortable: bool = True
    createable: bool = True
    updateable: bool = True
    lookup_objects: tuple[str, ...] = ()  # target object names of a LOOKUP

    @property
    def is_lookup(self) -> bool:
        return self.data_type.upper() == "LOOKUP" or bool(self.lookup_objects)

    def looks_up(self, object_name: str) -> bool:
        return any(o.lower() == object_name.lower() for o in self.lookup_objects)


@dataclass(frozen=True)
class ObjectInfo:
    """A described object: its fields by lower-case name."""

    name: str
    fields: Mapping[str, FieldInfo] = field(default_factory=dict)

    def field(self, name: str) -> FieldInfo | None:
        return self.fields.get(name.lower())


@dataclass(frozen=True)
class PicklistItem:
    name: str
    gsid: str | None
    active: bool = True
    closed: bool | None = None  # statuses only


def _flag(meta: Mapping[str, Any], name: str) -> bool:
    value = meta.get(name)
    if isinstance(value, str):
        return value.strip().lower() != "false"
    return value is not False


def parse_field(raw: Mapping[str, Any]) -> FieldInfo | None:
    name = raw.get("fieldName") or raw.get("name")
    if not isinstance(name, str) or not name:
        return None
    meta = raw.get("meta") if isinstance(raw.get("meta"), Mapping) else {}
    assert isinstance(meta, Mapping)
    detail = meta.get("lookupDetail")
    targets: list[str] = []
    if isinstance(detail, Mapping):
        for obj in detail.get("lookupObjects") or ():
            if isinstance(obj, Mapping) and isinstance(obj.get("objectName"), str):
                targets.append(obj["objectName"])
    return FieldInfo(
        name=name,
        data_type=str(raw.get("dataType") or raw.get("type") or "STRING").upper(),
        filterable=_flag(meta, "filterable"),
        sortable=_flag(meta, "sortable"),
        createable=_flag(meta, "createable"),
        updateable=_flag(meta, "updateable"),
        lookup_objects=tuple(targets),
    )


def parse_objects(data: Any) -> dict[str, ObjectInfo]:
    """``data`` of a describe answer -> {lower-case object name: ObjectInfo}."""
    items = data if isinstance(data, list) else [data] if isinstance(data, Mapping) else []
    out: dict[str, ObjectInfo] = {}
    for item in items:
        if not isinstance(item, Mapping):
            continue
        name = item.get("objectName") or item.get("name")
        if not isinstance(name, str) or not name:
            continue
        fields: dict[str, FieldInfo] = {}
        for raw in item.get("fields") or ():
            if isinstance(raw, Mapping) and (info := parse_field(raw)) is not None:
                fields[info.name.lower()] = info
        out[name.lower()] = ObjectInfo(name, fields)
    return out


def parse_picklists(data: Any) -> dict[str, list[PicklistItem]]:
    """``data`` of a picklist-lite answer -> {CATEGORY: items}."""
    out: dict[str, list[PicklistItem]] = {}
    if not isinstance(data, Mapping):
        return out
    for category, items in data.items():
        parsed: list[PicklistItem] = []
        for item in items if isinstance(items, list) else ():
            if not isinstance(item, Mapping):
                continue
            name = item.get("name") or item.get("label") or item.get("systemName")
            if not isinstance(name, str):
                continue
            gsid = item.get("gsid") or item.get("value") or item.get("id")
            closed = item.get("closed")
            parsed.append(
                PicklistItem(
                    name,
                    str(gsid) if gsid else None,
                    active=item.get("active") is not False,
                    closed=closed if isinstance(closed, bool) else None,
                )
            )
        out[str(category).upper()] = parsed
    return out


__all__ = [
    "CTA_CATEGORIES",
    "FieldInfo",
    "ObjectInfo",
    "PicklistItem",
    "parse_field",
    "parse_objects",
    "parse_picklists",
]
