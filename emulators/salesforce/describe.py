"""Describe payloads (global, per object, basic info) built from the schemas."""

from __future__ import annotations

from typing import Any

from emulators.salesforce.org import field_label
from emulators.store import FieldDef, ObjectSchema

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
}
_NO_LENGTH = frozenset(
    {"id", "reference", "boolean", "int", "double", "currency", "percent", "date", "datetime"}
)
_SORTABLE_EXCLUDED = frozenset({"textarea", "multipicklist"})

# Parent -> child relationship names (the real ones where the standard objects have them).
_CHILD_RELATIONSHIPS = {
    ("Account", "AccountTeamMember", "AccountId"): "AccountTeamMembers",
    ("Account", "Opportunity", "AccountId"): "Opportunities",
    ("Account", "Account", "ParentId"): "ChildAccounts",
    ("User", "User", "ManagerId"): "ManagedUsers",
}


def _label(schema: ObjectSchema) -> str:
    return {"AccountTeamMember": "Account Team Member"}.get(schema.name, schema.name)


_READ_ONLY_OBJECTS = frozenset({"Organization"})


def _urls(name: str, prefix: str) -> dict[str, str]:
    base = f"{prefix}/sobjects/{name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def _flags(schema: ObjectSchema) -> dict[str, Any]:
    undeletable = schema.soft_delete
    return {
        "activateable": False,
        "createable": schema.name not in _READ_ONLY_OBJECTS,
        "custom": False,
        "customSetting": False,
        "deletable": schema.name not in _READ_ONLY_OBJECTS,
        "deprecatedAndHidden": False,
        "feedEnabled": False,
        "layoutable": schema.name != "AccountTeamMember",
        "mergeable": schema.name == "Account",
        "mruEnabled": schema.name != "AccountTeamMember",
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "searchable": schema.name != "AccountTeamMember",
        "triggerable": True,
        "undeletable": undeletable,
        "updateable": schema.name not in _READ_ONLY_OBJECTS,
    }


def sobject_summary(schema: ObjectSchema, prefix: str) -> dict[str, Any]:
    """One entry of the global describe / the ``objectDescribe`` of basic info."""
    return {
        "name": schema.name,
        "label": _label(schema),
        "labelPlural": schema.label_plural or f"{_label(schema)}s",
        "keyPrefix": schema.key_prefix,
        **_flags(schema),
        "urls": _urls(schema.name, prefix),
    }


def global_describe(schemas: list[ObjectSchema], prefix: str) -> dict[str, Any]:
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [sobject_summary(s, prefix) for s in schemas],
    }


def basic_info(schema: ObjectSchema, prefix: str) -> dict[str, Any]:
    return {"objectDescribe": sobject_summary(schema, prefix), "recentItems": []}


def describe_field(f: FieldDef) -> dict[str, Any]:
    ftype = f.type
    is_ref = ftype == "reference"
    length = 0 if ftype in _NO_LENGTH else (f.length or 255)
    if ftype == "id":
        length = 18
    return {
        "name": f.name,
        "label": field_label(f),
        "type": ftype,
        "soapType": _SOAP_TYPES.get(ftype, "xsd:string"),
        "length": length,
        "byteLength": length * 3,
        "precision": 18 if ftype in ("currency", "double") else 3 if ftype == "percent" else 0,
        "scale": 2 if ftype in ("currency", "double", "percent") else 0,
        "digits": 8 if ftype == "int" else 0,
        "nillable": f.nillable,
        "createable": f.createable,
        "updateable": f.updateable,
        "defaultedOnCreate": f.default is not None or f.name in (
            "Id", "OwnerId", "CreatedDate", "CreatedById", "LastModifiedDate",
            "LastModifiedById", "SystemModstamp", "IsDeleted",
        ),
        "calculated": f.calculated,
        "custom": f.custom,
        "externalId": False,
        "idLookup": f.name in {"Id", "Username"},
        "unique": f.name == "Username",
        "caseSensitive": False,
        "filterable": f.filterable,
        "sortable": f.filterable and ftype not in _SORTABLE_EXCLUDED,
        "groupable": ftype not in ("double", "currency", "percent", "datetime", "textarea"),
        "aggregatable": True,
        "nameField": f.name == "Name",
        "restrictedPicklist": f.restricted,
        "dependentPicklist": False,
        "htmlFormatted": False,
        "defaultValue": f.default if ftype in ("boolean", "picklist") else None,
        "picklistValues": [
            {"active": True, "defaultValue": v == f.default, "label": v, "validFor": None,
             "value": v}
            for v in f.picklist
        ],
        "referenceTo": [f.reference_to] if is_ref and f.reference_to else [],
        "relationshipName": f.relationship_name if is_ref else None,
        "relationshipOrder": None,
        "cascadeDelete": False,
        "deprecatedAndHidden": False,
    }  # fmt: skip


def describe_sobject(
    schema: ObjectSchema, all_schemas: list[ObjectSchema], prefix: str
) -> dict[str, Any]:
    """``GET /sobjects/{name}/describe``."""
    children = []
    for child in all_schemas:
        for f in child.visible_fields:
            if f.type == "reference" and f.reference_to == schema.name:
                rel = _CHILD_RELATIONSHIPS.get((schema.name, child.name, f.name))
                children.append(
                    {
                        "childSObject": child.name,
                        "field": f.name,
                        "relationshipName": rel,
                        "cascadeDelete": schema.name == "Account"
                        and rel is not None
                        and f.name == "AccountId",
                        "restrictedDelete": False,
                        "deprecatedAndHidden": False,
                    }
                )
    return {
        **sobject_summary(schema, prefix),
        "childRelationships": children,
        "recordTypeInfos": [],
        "supportedScopes": [{"label": "All", "name": "everything"}],
        "fields": [describe_field(f) for f in schema.visible_fields],
    }
