"""Object describe (the Data Management "Describe OMD" API) built from the tenant's schemas.

``POST /v1/meta/services/objects/describe`` with ``{"objectNames": [...]}`` (the documented
sample request, VERIFIED via tap-gainsight's doc fixtures) and
``GET /v1/meta/services/objects/{object}/describe`` (OBSERVED in several public clients) both
answer ``data: [{"objectName", "label", "objectType", "fields": [...]}]``.  Each field carries
``fieldName``, ``dataType`` and ``meta`` with ``filterable`` / ``sortable`` / ``createable`` /
``updateable`` / ``required`` / ``nillable`` / ``hasLookup`` and, for lookups,
``lookupDetail.lookupObjects[].objectName`` (shape VERIFIED from the doc sample; dropdowns are
``PICKLIST`` with ``options`` as recorded from a live tenant, OBSERVED).  An unknown object is
``result: false`` with ``title: OBJECT_NOT_FOUND`` (doc sample; HTTP status UNVERIFIED: 400).
"""

from __future__ import annotations

from typing import Any

from emulators.gainsight import errors as E
from emulators.gainsight.data_api import Outcome
from emulators.gainsight.errors import GainsightError, envelope
from emulators.gainsight.picklists import FIELD_CATEGORIES
from emulators.gainsight.tenant import Tenant, object_key
from emulators.store import FieldDef, ObjectSchema

_SYSTEM_FIELDS = frozenset({"gsid", "createddate", "modifieddate", "createdby", "modifiedby"})
_DATA_TYPES = {"DROPDOWN": "PICKLIST"}


def not_found(name: str) -> GainsightError:
    err = GainsightError(400, "OBJECT_NOT_FOUND", "Requested object not found.")
    err.message = f"Requested object not found: {name}"
    return err


def _field(tenant: Tenant, obj: str, schema: ObjectSchema, f: FieldDef) -> dict[str, Any]:
    low = f.name.lower()
    group = "SYSTEM" if low in _SYSTEM_FIELDS else ("CUSTOM" if f.custom else "STANDARD")
    meta: dict[str, Any] = {
        "properties": {"sourceType": "GSID" if f.type == "LOOKUP" else f.type},
        "filterable": f.filterable,
        "sortable": f.sortable,
        "groupable": True,
        "createable": f.createable,
        "updateable": f.updateable,
        "formulaField": False,
        "hasLookup": f.type == "LOOKUP",
        "required": f.required,
        "richText": False,
        "nillable": f.nillable and not f.required,
        "readOnly": not (f.createable or f.updateable),
        "dependentPicklist": False,
        "fieldGroupType": group,
        "selfLookup": (f.reference_to or "").lower() == obj,
        "indexed": low in {i.lower() for i in schema.indexes} or low == "gsid",
        "decimalPlaces": 0,
        "hidden": False,
        "nameField": low == "name",
        "aggregatable": True,
    }
    if f.length:
        meta["length"] = f.length
    out: dict[str, Any] = {
        "fieldName": f.name,
        "label": f.label or f.name,
        "dataType": _DATA_TYPES.get(f.type, f.type),
        "objectName": schema.name,
        "meta": meta,
    }
    if f.type == "LOOKUP" and f.reference_to:
        target = tenant.tables[(f.reference_to or "").lower()].schema
        meta["lookupDetail"] = {
            "lookupName": f.relationship_name or f"{f.name}__gr",
            "fieldName": "Gsid",
            "fieldDBName": "gsid",
            "fieldLabel": "GSID",
            "lookupObjects": [{"objectName": target.name, "label": target.name}],
        }
    category = FIELD_CATEGORIES.get((obj, low)) if f.type == "DROPDOWN" else None
    if category is not None:
        meta["properties"]["PICKLIST_CATEGORY_ID"] = category
        out["options"] = [
            {
                "active": item.active,
                "defaultValue": False,
                "label": item.name,
                "value": item.gsid,
                "displayOrder": item.display_order,
                "systemName": item.name,
            }
            for item in tenant.picklists.items(category)
        ]
    return out


def describe_object(tenant: Tenant, name: str) -> dict[str, Any]:
    obj = object_key(name)
    if obj is None:
        raise not_found(name)
    schema = tenant.tables[obj].schema
    return {
        "objectName": schema.name,
        "label": schema.name,
        "objectType": "STANDARD",
        "labelPlural": schema.label_plural or schema.name,
        "keyPrefix": schema.key_prefix,
        "fields": [_field(tenant, obj, schema, f) for f in schema.visible_fields],
    }


def describe(tenant: Tenant, names: list[str]) -> Outcome:
    data = [describe_object(tenant, n) for n in names]
    return Outcome(200, envelope(data), len(data))


def describe_body(body: Any) -> list[str]:
    """The object names of a ``POST .../describe`` body."""
    names = body.get("objectNames") if isinstance(body, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise GainsightError(400, E.VALIDATION, "objectNames must be a non-empty array")
    return names


__all__ = ["describe", "describe_body", "describe_object", "not_found"]
