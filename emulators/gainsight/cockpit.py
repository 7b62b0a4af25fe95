"""The Cockpit CTA APIs: create, update, list, and the picklist lookup.

``POST /v2/cockpit/cta/`` and ``PUT /v2/cockpit/cta/`` take ``{"requests": [{"record": {...}}]}``
with type / reason / status / priority given by name; ``POST /v2/cockpit/cta/list`` reads with
``fieldName`` conditions and 1-based pages; CTA dates are ISO strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from emulators.gainsight import errors as E
from emulators.gainsight.data_api import Outcome, parse_int, parse_order, parse_select
from emulators.gainsight.errors import FieldError, GainsightError, envelope
from emulators.gainsight.picklists import CTA_STATUS
from emulators.gainsight.query import Dialect, FieldPath, compile_where, select_rows
from emulators.gainsight.tenant import Tenant
from emulators.gainsight.values import DATE_TYPES, as_text, iso_date, iso_datetime

OBJ = "calltoaction"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
DEFAULT_STATUS = "New"
DEFAULT_PRIORITY = "Medium"
# Record keys that name a picklist item, and the CTA field that stores its GSID.
NAME_KEYS = {"type": "TypeId", "reason": "ReasonId", "status": "StatusId", "priority": "PriorityId"}
# DueDate is a date field, but the Cockpit renders it with a time ("2020-04-14T11:30:00Z").
DATETIME_RENDERED = frozenset({"duedate"})
REQUIRED_ON_CREATE = ("Name", "CompanyId", "TypeId", "DueDate")


def _bad_request(detail: str) -> GainsightError:
    return GainsightError(400, E.COCKPIT_BAD_REQUEST, detail, data={})


def _invalid_field(clause: str, name: str) -> GainsightError:
    return GainsightError(
        400, E.COCKPIT_INVALID_FIELD, f"Invalid fields in {clause} clause - {name}", data={}
    )


COCKPIT_DIALECT = Dialect(
    condition_key="fieldName",
    invalid_field=_invalid_field,
    bad_request=_bad_request,
    bad_date=lambda name, value: _bad_request(f"Invalid date value ({name} = {value})"),
    bad_value=lambda name, value: _bad_request(f"Invalid value ({name} = {value})"),
)


def render(path: FieldPath, value: Any) -> Any:
    if value is None or path.field.type not in DATE_TYPES:
        return value
    if path.field.type == "DATETIME" or path.field.name.lower() in DATETIME_RENDERED:
        return iso_datetime(value)
    return iso_date(value)


def list_ctas(tenant: Tenant, body: Mapping[str, Any]) -> Outcome:
    """``POST /v2/cockpit/cta/list``; an empty page is ``result: true`` with ``data: []``."""
    paths = parse_select(tenant, OBJ, body.get("select"), _invalid_field, _bad_request)
    where = compile_where(
        body.get("where"), OBJ, tenant.resolver, tenant.picklists, COCKPIT_DIALECT
    )
    order = parse_order(tenant, OBJ, body.get("orderBy"), COCKPIT_DIALECT)
    page_size = parse_int(body, "pageSize", DEFAULT_PAGE_SIZE, _bad_request)
    page_number = parse_int(body, "pageNumber", 1, _bad_request)
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise _bad_request(f"pageSize must be between 1 and {MAX_PAGE_SIZE}")
    if page_number < 1:
        raise _bad_request("pageNumber starts at 1")
    table = tenant.tables[OBJ]
    rows = select_rows(
        table, where, order, (page_number - 1) * page_size, page_size, tenant.sequence[OBJ]
    )
    gsid_pos = table.pos["gsid"]
    # The documented sample answers with Gsid and the base id of every __gr selection even
    # when they were not selected.
    extras = []
    for path in paths:
        if path.hops and path.hops[0] not in extras:
            extras.append(path.hops[0])
    extra_pos = [(name, table.pos[name.lower()]) for name in extras]
    data = []
    for row in rows:
        item: dict[str, Any] = {"Gsid": row[gsid_pos]}
        for name, pos in extra_pos:
            item[name] = row[pos]
        for path in paths:
            item[path.text] = render(path, path.getter(row))
        data.append(item)
    return Outcome(200, envelope(data), len(data))


def _requests(body: Mapping[str, Any], max_items: int) -> list[dict[str, Any]]:
    items = body.get("requests")
    if not isinstance(items, list) or not items:
        raise _bad_request("requests must be a non-empty array")
    if len(items) > max_items:
        raise _bad_request(f"Number of records exceeds the limit of {max_items}")
    records = []
    for item in items:
        record = item.get("record") if isinstance(item, dict) else None
        if not isinstance(record, dict):
            raise _bad_request('each request must be {"record": {...}}')
        records.append(record)
    return records


def cta_values(
    tenant: Tenant, record: Mapping[str, Any], *, create: bool
) -> tuple[dict[str, Any], list[FieldError]]:
    """CTA field values from a request record (names resolved), and what was wrong with it."""
    schema = tenant.tables[OBJ].schema
    values: dict[str, Any] = {}
    problems: list[FieldError] = []
    for key, raw in record.items():
        low = key.lower()
        try:
            if low in ("referenceid", "gsid"):
                continue
            if low in NAME_KEYS:
                values[NAME_KEYS[low]] = _picklist(tenant, low, raw)
            elif low == "owneremail":
                values["OwnerId"] = _owner_by_email(tenant, raw)
            elif low == "sfdcid":
                values["CompanyId"] = _company_by_sfdc_id(tenant, raw)
            else:
                fd = schema.field(key)
                if fd is None:
                    raise FieldError(E.INVALID_FIELD, f"{E.INVALID_FIELD_DESC} ({key})", key, raw)
                if not (fd.createable if create else fd.updateable):
                    raise FieldError(
                        E.INVALID_FIELD, f"Field is not editable ({fd.name})", fd.name, raw
                    )
                values[fd.name] = tenant.coerce(OBJ, fd, raw)
        except FieldError as err:
            problems.append(err)
    if create:
        values.setdefault("StatusId", tenant.picklists.gsid(CTA_STATUS, DEFAULT_STATUS))
        values.setdefault("PriorityId", tenant.picklists.gsid("priority", DEFAULT_PRIORITY))
        failed = {p.field for p in problems}
        required: tuple[str, ...] = REQUIRED_ON_CREATE
        if tenant.profile.cta_owner_required:
            # G6 is UNVERIFIED: the strict profile takes the stricter reading.
            required = (*required, "OwnerId")
            failed |= {"OwnerId"} if "OwnerEmail" in failed else set()
        for name in required:
            if values.get(name) is None and name not in failed:
                problems.append(
                    FieldError(E.NOT_NULLABLE, f"Invalid field value ({name} = null)", name)
                )
    return values, problems


def _picklist(tenant: Tenant, key: str, raw: Any) -> str | None:
    if raw is None:
        if key in ("type", "status"):
            raise FieldError(E.NOT_NULLABLE, f"Invalid field value ({key} = null)", key)
        return None
    text = as_text(raw) or ""
    gsid = tenant.picklists.resolve(key, text)
    if gsid is None:
        raise FieldError(
            E.BAD_PICKLIST,
            f"Invalid/Inactive value provided for picklist. ({key} = {text}).",
            key,
            [text],
        )
    return gsid


def _owner_by_email(tenant: Tenant, raw: Any) -> str | None:
    if raw is None:
        return None
    email = (as_text(raw) or "").strip().lower()
    table = tenant.tables["gsuser"]
    pos = table.pos["email"]
    with table.lock:
        rows = list(table.rows.items())
    for gsid, row in rows:
        if isinstance(row[pos], str) and row[pos].lower() == email:
            return gsid
    raise FieldError(
        E.NO_DATA, f"No entity matches the given criteria (OwnerEmail = {raw})", "OwnerEmail", raw
    )


def _company_by_sfdc_id(tenant: Tenant, raw: Any) -> str | None:
    from emulators.sfid import InvalidId, to18

    if raw is None:
        return None
    text = as_text(raw) or ""
    table = tenant.tables["company"]
    candidates = {text}
    try:
        full = to18(text)
        candidates |= {full, full[:15]}
    except InvalidId:
        pass
    seq = tenant.sequence["company"]
    found: set[str] = set()
    for value in candidates:
        found |= table.find("SfdcAccountId", value)
    if not found:
        raise FieldError(
            E.NO_DATA, f"No entity matches the given criteria (SFDCID = {text})", "SFDCID", text
        )
    return min(found, key=lambda g: seq.get(g, 0))


def _status_effects(tenant: Tenant, values: dict[str, Any], was_closed: bool) -> None:
    """Closing sets IsClosed and ClosedDate; moving back to an open status reopens."""
    if "StatusId" not in values:
        return
    closed = tenant.picklists.is_closed(values["StatusId"])
    values["IsClosed"] = closed
    if closed and not was_closed:
        values["ClosedDate"] = tenant.clock.now_ms()
    elif not closed:
        values["ClosedDate"] = None


def _item(reference: Any, gsid: str | None, problems: list[FieldError]) -> dict[str, Any]:
    return {
        "referenceId": reference,
        "Gsid": gsid,
        "success": not problems,
        "errors": [
            {
                "errorCode": p.code,
                "errorDesc": p.desc,
                "fieldName": p.field,
                "invalidValue": p.value,
            }
            for p in problems
        ],
    }


def _items_outcome(items: list[dict[str, Any]]) -> Outcome:
    ok = sum(1 for item in items if item["success"])
    if not ok:
        first = items[0]["errors"][0]
        body = envelope(items, result=False, code=first["errorCode"], desc=first["errorDesc"])
        return Outcome(400, body, 0)
    return Outcome(200, envelope(items), ok)


def create_one(
    tenant: Tenant, record: Mapping[str, Any], *, check_only: bool = False
) -> tuple[str | None, list[FieldError]]:
    values, problems = cta_values(tenant, record, create=True)
    if problems or check_only:
        return None, problems
    _status_effects(tenant, values, was_closed=False)
    return tenant.insert(OBJ, values), []


def update_one(
    tenant: Tenant, record: Mapping[str, Any], *, check_only: bool = False
) -> tuple[str | None, list[FieldError]]:
    lowered = {k.lower(): v for k, v in record.items()}
    gsid = lowered.get("gsid")
    table = tenant.tables[OBJ]
    if not isinstance(gsid, str) or gsid not in table.rows:
        return None, [
            FieldError(
                E.INVALID_GSID,
                "Either the Gainsight ID is invalid or missing, please re-check your request.",
                "Gsid",
                gsid,
            )
        ]
    values, problems = cta_values(tenant, record, create=False)
    if problems or check_only:
        return gsid, problems
    _status_effects(tenant, values, was_closed=bool(table.value(gsid, "IsClosed")))
    tenant.update(OBJ, gsid, values)
    return gsid, []


def create(tenant: Tenant, body: Mapping[str, Any], *, max_items: int) -> Outcome:
    """``POST /v2/cockpit/cta/``: one result per request item, in request order."""
    return _write_each(tenant, body, max_items, create_one)


def update(tenant: Tenant, body: Mapping[str, Any], *, max_items: int) -> Outcome:
    """``PUT /v2/cockpit/cta/``: the record carries the CTA ``Gsid``."""
    return _write_each(tenant, body, max_items, update_one)


class _WriteOne(Protocol):
    def __call__(
        self, tenant: Tenant, record: Mapping[str, Any], *, check_only: bool = False
    ) -> tuple[str | None, list[FieldError]]: ...


def _write_each(
    tenant: Tenant,
    body: Mapping[str, Any],
    max_items: int,
    write_one: _WriteOne,
) -> Outcome:
    records = _requests(body, max_items)
    items = []
    with tenant.write_lock:
        if tenant.profile.whole_batch_rejection:
            # G2 applied to the Cockpit too (UNVERIFIED, the stricter reading): one invalid
            # item fails the call, nothing is written, no per-item results.
            for record in records:
                _, problems = write_one(tenant, record, check_only=True)
                if problems:
                    first = problems[0]
                    body_out = envelope(None, result=False, code=first.code, desc=first.desc)
                    return Outcome(400, body_out, 0)
        for record in records:
            gsid, problems = write_one(tenant, record)
            items.append(_item(record.get("referenceId"), gsid, problems))
    return _items_outcome(items)


def picklists(tenant: Tenant, categories: str | None) -> Outcome:
    """``GET /v2/cockpit/admin/picklist/lite?category=CTA_STATUS,...``."""
    wanted = [c.strip() for c in (categories or "").split(",") if c.strip()] or [
        "CTA_TYPE",
        "CTA_REASON",
        "CTA_STATUS",
        "CTA_PRIORITY",
    ]
    data: dict[str, list[dict[str, Any]]] = {}
    for category in wanted:
        items = tenant.picklists.items(category)
        if not items:
            raise _bad_request(f"Unknown picklist category {category}")
        data[category.upper()] = [
            {
                "gsid": item.gsid,
                "name": item.name,
                "systemName": item.name,
                "displayOrder": item.display_order,
                "active": item.active,
                **({"closed": item.closed} if item.category == CTA_STATUS else {}),
            }
            for item in items
        ]
    return Outcome(200, envelope(data), sum(len(v) for v in data.values()))
