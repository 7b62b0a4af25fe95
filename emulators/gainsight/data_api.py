"""The MDA data APIs: ``POST /v1/data/objects/query/{Object}`` and Company writes."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulators.gainsight import errors as E
from emulators.gainsight.errors import FieldError, GainsightError, envelope
from emulators.gainsight.query import (
    Dialect,
    FieldPath,
    compile_where,
    select_rows,
)
from emulators.gainsight.tenant import DISPLAY_NAMES, Tenant, object_key
from emulators.gainsight.values import as_text, parse_number
from emulators.store import FieldDef

DEFAULT_READ_LIMIT = 100
KEY_TYPES = frozenset({"STRING", "GSID", "NUMBER", "EMAIL"})
MAX_KEYS = 3


@dataclass
class Outcome:
    """A handled call: HTTP status, JSON body and how many records it read or wrote."""

    status: int
    body: dict[str, Any]
    records: int = 0
    headers: dict[str, str] = field(default_factory=dict)


def _bad_request(detail: str) -> GainsightError:
    return GainsightError(400, E.VALIDATION, detail)


def _invalid_field(clause: str, name: str) -> GainsightError:
    return GainsightError(
        400, E.INVALID_FIELD, E.INVALID_FIELD_DESC, message=f"Unknown field in {clause}: {name}"
    )


DATA_DIALECT = Dialect(
    condition_key="name",
    invalid_field=_invalid_field,
    bad_request=_bad_request,
    bad_date=lambda name, value: GainsightError(
        400, E.BAD_DATETIME, f"Invalid dateTime format ({name}= {value})"
    ),
    bad_value=lambda name, value: GainsightError(
        400, E.INVALID_FIELD, E.INVALID_FIELD_DESC, message=f"Invalid value for {name}: {value!r}"
    ),
)


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw) if raw else None
    except ValueError as exc:
        raise _bad_request(f"Malformed JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise _bad_request("Request body must be a JSON object")
    return body


def parse_int(
    body: Mapping[str, Any], key: str, default: int, bad: Callable[[str], GainsightError]
) -> int:
    """``body[key]`` as an int (a numeric string too); absent or null gives ``default``."""
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise bad(f"{key} must be an integer")
    try:
        return int(value)
    except ValueError as exc:
        raise bad(f"{key} must be an integer") from exc


def parse_select(tenant: Tenant, obj: str, select: Any, invalid: Any, bad: Any) -> list[FieldPath]:
    if not isinstance(select, list) or not select or not all(isinstance(s, str) for s in select):
        raise bad("select must be a non-empty array of field names")
    paths: list[FieldPath] = []
    unknown: list[str] = []
    for text in select:
        path = tenant.resolver.resolve(obj, text)
        if path is None:
            unknown.append(text)
        else:
            paths.append(path)
    if unknown:
        raise invalid("select", ", ".join(unknown))
    return paths


def parse_order(
    tenant: Tenant, obj: str, order_by: Any, dialect: Dialect
) -> list[tuple[FieldPath, bool]]:
    if order_by is None:
        return []
    if not isinstance(order_by, dict):
        raise dialect.bad_request("orderBy must be an object {field: asc|desc}")
    order: list[tuple[FieldPath, bool]] = []
    for name, direction in order_by.items():
        path = tenant.resolver.resolve(obj, name)
        if path is None:
            raise dialect.invalid_field("orderBy", name)
        if not isinstance(direction, str) or direction.lower() not in ("asc", "desc"):
            raise dialect.bad_request(f"orderBy direction must be asc or desc ({name})")
        order.append((path, direction.lower() == "desc"))
    return order


_RANGE_OPERATORS = frozenset({"GT", "GTE", "LT", "LTE", "BTW"})


def _check_gsid_order(tenant: Tenant, body: Mapping[str, Any]) -> None:
    """G4 tenant switch: a tenant that cannot sort Gsid refuses keyset paging on it."""
    if tenant.gsid_sortable:
        return
    order_by = body.get("orderBy")
    if isinstance(order_by, dict) and any(str(k).lower() == "gsid" for k in order_by):
        raise GainsightError(400, E.VALIDATION, "Field is not sortable: Gsid")
    where = body.get("where")
    conditions = where.get("conditions") if isinstance(where, dict) else None
    for cond in conditions if isinstance(conditions, list) else ():
        if (
            isinstance(cond, dict)
            and str(cond.get("name") or "").lower() == "gsid"
            and str(cond.get("operator") or "").upper() in _RANGE_OPERATORS
        ):
            raise GainsightError(400, E.VALIDATION, "Operator not supported on Gsid")


def query(
    tenant: Tenant, obj: str, body: Mapping[str, Any], *, max_limit: int, no_data_status: int
) -> Outcome:
    """Read rows; dates come back as epoch ms, dropdowns as item GSIDs."""
    paths = parse_select(tenant, obj, body.get("select"), _invalid_field, _bad_request)
    _check_gsid_order(tenant, body)
    where = compile_where(
        body.get("where"),
        obj,
        tenant.resolver,
        tenant.picklists,
        DATA_DIALECT,
        time_zone=tenant.filter_time_zone,
    )
    order = parse_order(tenant, obj, body.get("orderBy"), DATA_DIALECT)
    limit = parse_int(body, "limit", DEFAULT_READ_LIMIT, _bad_request)
    offset = parse_int(body, "offset", 0, _bad_request)
    if limit < 1 or limit > max_limit:
        raise _bad_request(f"limit must be between 1 and {max_limit}")
    if offset < 0:
        raise _bad_request("offset must not be negative")
    rows = select_rows(tenant.tables[obj], where, order, offset, limit, tenant.sequence[obj])
    if not rows:
        body_out = envelope(None, result=False, code=E.NO_DATA, desc=E.NO_DATA_DESC)
        return Outcome(no_data_status, body_out, 0)
    data = [{p.text: p.getter(row) for p in paths} for row in rows]
    return Outcome(200, envelope(data), len(data))


# -- writes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LookupSpec:
    target: FieldDef  # the lookup field on the written record (e.g. Csm)
    lookup_object: str  # table key (e.g. "gsuser")
    fields: tuple[tuple[str, FieldDef], ...]  # (payload field, field on the lookup object)
    lookup_field: FieldDef  # whose value is written (normally Gsid)
    multi_match_error: bool
    on_no_match: str  # NULLABLE | DEFAULTVALUE | ERROR
    default: Any


def _parse_lookups(tenant: Tenant, obj: str, raw: Any) -> list[LookupSpec]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise _bad_request("lookups must be an object")
    schema = tenant.tables[obj].schema
    specs: list[LookupSpec] = []
    for target_name, cfg in raw.items():
        target = schema.field(target_name)
        if target is None or target.type != "LOOKUP":
            raise _invalid_field("lookups", target_name)
        if not isinstance(cfg, dict):
            raise _bad_request(f"lookups.{target_name} must be an object")
        lookup_object = object_key(str(cfg.get("objectName") or target.reference_to or ""))
        if lookup_object is None:
            raise _bad_request(
                f"lookups.{target_name}: unknown objectName {cfg.get('objectName')!r}"
            )
        lookup_schema = tenant.tables[lookup_object].schema
        fields_cfg = cfg.get("fields")
        if not isinstance(fields_cfg, dict) or not fields_cfg:
            raise _bad_request(f"lookups.{target_name}.fields must map payload fields to fields")
        pairs: list[tuple[str, FieldDef]] = []
        for payload_field, lookup_field_name in fields_cfg.items():
            fd = lookup_schema.field(str(lookup_field_name))
            if fd is None:
                raise _invalid_field("lookups", f"{lookup_schema.name}.{lookup_field_name}")
            pairs.append((payload_field, fd))
        result_field = lookup_schema.field(str(cfg.get("lookupField") or "Gsid"))
        if result_field is None:
            raise _invalid_field("lookups", f"{lookup_schema.name}.{cfg.get('lookupField')}")
        multi = str(cfg.get("multiMatchOption") or "FIRSTMATCH").upper()
        no_match = str(cfg.get("onNoMatch") or "ERROR").upper()
        if multi not in ("FIRSTMATCH", "MARKASERROR"):
            raise _bad_request(f"lookups.{target_name}.multiMatchOption: {multi}")
        if no_match not in ("NULLABLE", "DEFAULTVALUE", "ERROR"):
            raise _bad_request(f"lookups.{target_name}.onNoMatch: {no_match}")
        specs.append(
            LookupSpec(
                target,
                lookup_object,
                tuple(pairs),
                result_field,
                multi == "MARKASERROR",
                no_match,
                cfg.get("defaultValue"),
            )
        )
    return specs


def _norm(fd: FieldDef, value: Any) -> Any:
    if value is None:
        return None
    if fd.type in ("NUMBER", "CURRENCY", "PERCENTAGE"):
        return parse_number(value)
    text = as_text(value)
    if fd.type == "EMAIL" and text is not None:
        return text.lower()
    return text if text is not None else value


def _resolve_lookups(
    tenant: Tenant, specs: Sequence[LookupSpec], records: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any | FieldError]]:
    """Per record: {target field name: resolved value or the FieldError to report}."""
    out: list[dict[str, Any | FieldError]] = [{} for _ in records]
    for spec in specs:
        wanted: dict[int, tuple[Any, ...]] = {}
        for i, rec in enumerate(records):
            lowered = {k.lower(): v for k, v in rec.items()}
            if not any(p.lower() in lowered for p, _ in spec.fields):
                continue  # the payload does not use this lookup: leave the target alone
            values = tuple(_norm(fd, lowered.get(p.lower())) for p, fd in spec.fields)
            if all(v is None for v in values):
                out[i][spec.target.name] = None  # explicit null clears the lookup field
                continue
            wanted[i] = values
        if not wanted:
            continue
        needed = set(wanted.values())
        table = tenant.tables[spec.lookup_object]
        positions = [table.pos[fd.name.lower()] for _, fd in spec.fields]
        result_pos = table.pos[spec.lookup_field.name.lower()]
        matches: dict[tuple[Any, ...], list[Any]] = {}
        with table.lock:
            rows = list(table.rows.values())
        for row in rows:
            key = tuple(
                _norm(fd, row[p]) for (_, fd), p in zip(spec.fields, positions, strict=True)
            )
            if key in needed:
                matches.setdefault(key, []).append(row[result_pos])
        for i, key in wanted.items():
            found = matches.get(key, [])
            name = spec.target.name
            shown = ", ".join(f"{p} = {v}" for (p, _), v in zip(spec.fields, key, strict=True))
            if len(found) > 1 and spec.multi_match_error:
                out[i][name] = FieldError(
                    E.MULTIPLE_MATCHES,
                    f"Multiple records matched the lookup ({shown})",
                    name,
                    list(key),
                )
            elif found:
                out[i][name] = found[0]
            elif spec.on_no_match == "ERROR":
                out[i][name] = FieldError(
                    E.NO_DATA,
                    f"No entity matches the given criteria (lookup {name}: {shown})",
                    name,
                    list(key),
                )
            elif spec.on_no_match == "DEFAULTVALUE":
                out[i][name] = spec.default
            else:
                out[i][name] = None
    return out


def _parse_records(body: Mapping[str, Any], max_records: int) -> list[dict[str, Any]]:
    records = body.get("records")
    if not isinstance(records, list) or not records:
        raise _bad_request("records must be a non-empty array")
    if len(records) > max_records:
        raise GainsightError(
            400, E.TOO_MANY_RECORDS, f"Number of records exceeds the limit of {max_records}"
        )
    if not all(isinstance(r, dict) for r in records):
        raise _bad_request("each record must be an object")
    return records


def _check_fields(
    tenant: Tenant,
    obj: str,
    records: Sequence[Mapping[str, Any]],
    specs: Sequence[LookupSpec],
    *,
    insert: bool,
    keys: Sequence[FieldDef] = (),
) -> None:
    """Unknown or read-only fields are a mapping error: the whole call fails."""
    schema = tenant.tables[obj].schema
    sources = {p.lower() for spec in specs for p, _ in spec.fields}
    key_names = {k.name.lower() for k in keys}
    unknown: list[str] = []
    readonly: list[str] = []
    for rec in records:
        for name in rec:
            fd = schema.field(name)
            if fd is None:
                if name.lower() not in sources:
                    unknown.append(name)
            elif name.lower() not in key_names and not (fd.createable if insert else fd.updateable):
                if name.lower() not in sources:
                    readonly.append(fd.name)
    if unknown:
        raise GainsightError(
            400,
            E.INVALID_FIELD,
            E.INVALID_FIELD_DESC,
            message=f"Unknown field(s): {', '.join(sorted(set(unknown)))}",
        )
    if readonly:
        raise GainsightError(
            400,
            E.INVALID_FIELD,
            E.INVALID_FIELD_DESC,
            message=f"Field(s) not writable: {', '.join(sorted(set(readonly)))}",
        )


def _record_values(
    tenant: Tenant,
    obj: str,
    rec: Mapping[str, Any],
    lookups: Mapping[str, Any],
) -> tuple[dict[str, Any], list[FieldError]]:
    schema = tenant.tables[obj].schema
    values: dict[str, Any] = {}
    problems: list[FieldError] = []
    for name, raw in rec.items():
        fd = schema.field(name)
        if fd is None:
            continue  # a payload-only lookup source field
        if fd.name in lookups:
            continue  # the lookup's result replaces whatever the payload put in its target
        try:
            values[fd.name] = tenant.coerce(obj, fd, raw)
        except FieldError as err:
            problems.append(err)
    for target, resolved in lookups.items():
        if isinstance(resolved, FieldError):
            problems.append(resolved)
        else:
            values[target] = resolved
    return values, problems


def _error_entry(
    index: int, record: Mapping[str, Any], problems: Sequence[FieldError]
) -> dict[str, Any]:
    first = problems[0]
    return {
        "index": index,
        "record": dict(record),
        "errorCode": first.code,
        "errorDesc": first.desc,
        "errors": [p.detail() for p in problems],
    }


def _whole_batch_rejection(errors: list[dict[str, Any]]) -> Outcome:
    """G2: one invalid record fails the call; nothing is written and no per-record data
    says which (VERIFIED for insert, UNVERIFIED for update: the same assumed)."""
    first = errors[0]
    return Outcome(
        400, envelope(None, result=False, code=first["errorCode"], desc=first["errorDesc"]), 0
    )


def _write_outcome(
    count: int, records: list[dict[str, Any]], errors: list[dict[str, Any]]
) -> Outcome:
    data = {"count": count, "errors": errors or None, "records": records}
    if errors and not records:
        first = errors[0]
        body = envelope(data, result=False, code=first["errorCode"], desc=first["errorDesc"])
        return Outcome(400, body, 0)
    return Outcome(200, envelope(data), count)


def insert(tenant: Tenant, obj: str, body: Mapping[str, Any], *, max_records: int) -> Outcome:
    """``POST /v1/data/objects/{Object}``."""
    records = _parse_records(body, max_records)
    specs = _parse_lookups(tenant, obj, body.get("lookups"))
    _check_fields(tenant, obj, records, specs, insert=True)
    schema = tenant.tables[obj].schema
    with tenant.write_lock:
        resolved = _resolve_lookups(tenant, specs, records)
        staged: list[tuple[int, dict[str, Any]]] = []
        errors: list[dict[str, Any]] = []
        for i, rec in enumerate(records):
            values, problems = _record_values(tenant, obj, rec, resolved[i])
            for fd in schema.fields:
                if (
                    fd.required
                    and values.get(fd.name) is None
                    and not any(p.field == fd.name for p in problems)
                ):
                    problems.append(
                        FieldError(
                            E.NOT_NULLABLE, f"Invalid field value ({fd.name} = null)", fd.name
                        )
                    )
            if problems:
                errors.append(_error_entry(i, rec, problems))
            else:
                staged.append((i, values))
        if errors and tenant.profile.whole_batch_rejection:
            return _whole_batch_rejection(errors)
        written = [{"Gsid": tenant.insert(obj, values)} for _, values in staged]
    return _write_outcome(len(written), written, errors)


def parse_keys(tenant: Tenant, obj: str, keys_param: str | None) -> list[FieldDef]:
    if not keys_param or not keys_param.strip():
        raise _bad_request("keys query parameter is required for an update")
    names = [k.strip() for k in keys_param.split(",") if k.strip()]
    if not names or len(names) > MAX_KEYS:
        raise _bad_request(f"keys takes 1 to {MAX_KEYS} comma-separated fields")
    schema = tenant.tables[obj].schema
    keys: list[FieldDef] = []
    for name in names:
        fd = schema.field(name)
        if fd is None:
            raise _invalid_field("keys", name)
        if fd.type not in KEY_TYPES:
            raise _bad_request(f"{fd.name} ({fd.type}) cannot be used as a key")
        keys.append(fd)
    return keys


def _match_keys(
    tenant: Tenant, obj: str, keys: Sequence[FieldDef], key_values: Sequence[Any]
) -> list[str]:
    table = tenant.tables[obj]
    first, first_value = keys[0], key_values[0]
    indexed = {n.lower() for n in table.schema.indexes}
    if first.name == "Gsid":
        candidates: list[str] = [first_value] if first_value in table.rows else []
    elif first.name.lower() in indexed and first.type != "EMAIL":
        seq = tenant.sequence[obj]
        candidates = sorted(table.find(first.name, first_value), key=lambda g: seq.get(g, 0))
    else:
        candidates = table.ids()
    out = []
    for gsid in candidates:
        row = table.rows.get(gsid)
        if row is None:
            continue
        if all(
            _norm(fd, row[table.pos[fd.name.lower()]]) == _norm(fd, v)
            for fd, v in zip(keys, key_values, strict=True)
        ):
            out.append(gsid)
    return out


def update(
    tenant: Tenant, obj: str, body: Mapping[str, Any], keys_param: str | None, *, max_records: int
) -> Outcome:
    """``PUT /v1/data/objects/{Object}?keys=A,B``: records matched on all keys."""
    keys = parse_keys(tenant, obj, keys_param)
    records = _parse_records(body, max_records)
    specs = _parse_lookups(tenant, obj, body.get("lookups"))
    _check_fields(tenant, obj, records, specs, insert=False, keys=keys)
    with tenant.write_lock:
        resolved = _resolve_lookups(tenant, specs, records)
        staged: list[tuple[int, list[str], dict[str, Any]]] = []
        errors: list[dict[str, Any]] = []
        for i, rec in enumerate(records):
            lowered = {k.lower(): v for k, v in rec.items()}
            shown = {k.name: lowered.get(k.name.lower()) for k in keys}
            missing = [k for k in keys if lowered.get(k.name.lower()) is None]
            if missing:
                k = missing[0]
                err = (
                    FieldError(
                        E.INVALID_GSID,
                        "Either the Gainsight ID is invalid or missing, "
                        "please re-check your request.",
                        k.name,
                    )
                    if k.name == "Gsid"
                    else FieldError(
                        E.NOT_NULLABLE, f"Invalid field value ({k.name} = null)", k.name
                    )
                )
                errors.append(_error_entry(i, shown, [err]))
                continue
            values, problems = _record_values(tenant, obj, rec, resolved[i])
            refused = tenant.invalid_records.get(str(lowered.get("gsid")))
            if refused is not None:
                problems.append(FieldError(refused[0], refused[1], None))
            if problems:
                errors.append(_error_entry(i, shown, problems))
                continue
            key_values = [lowered[k.name.lower()] for k in keys]
            matched = _match_keys(tenant, obj, keys, key_values)
            if not matched:
                err = FieldError(E.NO_DATA, "No entity matches the given criteria", None, shown)
                errors.append(_error_entry(i, shown, [err]))
                continue
            for k in keys:
                values.pop(k.name, None)  # keys select the record; they are not rewritten
            staged.append((i, matched, values))
        if errors and tenant.profile.whole_batch_rejection:
            return _whole_batch_rejection(errors)
        written: list[dict[str, Any]] = []
        for i, matched, values in staged:
            for gsid in matched:
                tenant.update(obj, gsid, values)
                written.append({**records[i], "Gsid": gsid})
    return _write_outcome(len(written), written, errors)


def delete(tenant: Tenant, obj: str, gsid: str) -> Outcome:
    """``DELETE /v1/data/objects/{Object}/{GSID}``."""
    with tenant.write_lock:
        if not gsid or gsid not in tenant.tables[obj].rows:
            raise GainsightError(
                400,
                E.INVALID_GSID,
                "Either the Gainsight ID is invalid or missing, please re-check your request.",
            )
        tenant.delete(obj, gsid)
    data = {"count": 1, "errors": None, "records": [{"Gsid": gsid}]}
    return Outcome(200, envelope(data), 1)


def display(obj: str) -> str:
    return DISPLAY_NAMES[obj]
