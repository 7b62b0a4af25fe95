"""sObject Collections (``/composite/sobjects``) and Composite (``/composite``).

Collections: at most 200 records (more: the whole call is refused with ``EXCEEDED_ID_LIMIT``
and nothing is written); results in request order, errors with ``statusCode``.  With
``allOrNone`` every record is still attempted, so each bad record reports its own error; then
everything is rolled back and the good records report ``ALL_OR_NONE_OPERATION_ROLLED_BACK``.

Composite: at most 25 subrequests, ``@{ref.path}`` references (``@{refA.id}``,
``@{refQ.records[0].Id}``), ``allOrNone`` with ``PROCESSING_HALTED``.  With ``allOrNone``
true, the first failing subrequest stops the run; it keeps its own error, every other
subrequest (earlier ones are rolled back) answers 400 ``PROCESSING_HALTED``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from emulators.http import Headers, Request, Response
from emulators.salesforce.context import ApiError, Call
from emulators.salesforce.org import ErrorItem, RecordFailure
from emulators.salesforce.rest import lock_error

if TYPE_CHECKING:
    from emulators.salesforce.app import SalesforceEmulator

MAX_COLLECTION_RECORDS = 200
MAX_RETRIEVE_IDS = 2000
MAX_SUBREQUESTS = 25

ROLLED_BACK = ErrorItem(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header",
    (),
)
HALTED = ErrorItem(
    "PROCESSING_HALTED",
    "The transaction was rolled back since another operation in the same transaction failed.",
    None,
)
_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
_REF_STEP = re.compile(r"\.([A-Za-z0-9_]+)|\[(\d+)\]")
_REFERENCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")


def _too_many() -> ApiError:
    return ApiError.of(
        400,
        "EXCEEDED_ID_LIMIT",
        f"record limit reached. cannot submit more than {MAX_COLLECTION_RECORDS} records into "
        "this call",
    )


class CollectionsApi:
    """``/composite/sobjects`` handlers."""

    def __init__(self, emu: SalesforceEmulator) -> None:
        self.emu = emu
        self.org = emu.org

    def _body(self, call: Call) -> tuple[list[Any], bool]:
        body = call.json()
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise ApiError.of(
                400, "JSON_PARSER_ERROR", "The request body must be an object with a records list"
            )
        records = body["records"]
        if len(records) > MAX_COLLECTION_RECORDS:
            raise _too_many()
        return records, bool(body.get("allOrNone", False))

    def _type_of(self, record: Any) -> str:
        if not isinstance(record, dict):
            raise RecordFailure([ErrorItem("JSON_PARSER_ERROR", "Each record must be an object")])
        attributes = record.get("attributes")
        type_name = attributes.get("type") if isinstance(attributes, dict) else None
        if not type_name:
            raise RecordFailure(
                [ErrorItem("INVALID_TYPE", "sObject type must be specified in attributes.type")]
            )
        table = self.org.table(str(type_name))
        if table is None:
            raise RecordFailure(
                [ErrorItem("INVALID_TYPE", f"sObject type '{type_name}' is not supported.")]
            )
        return table.schema.name

    def create(self, call: Call) -> Response:
        records, all_or_none = self._body(call)

        def one(record: Any) -> dict[str, Any]:
            name = self._type_of(record)
            if self.emu.faults.lock_row(None):
                raise RecordFailure([lock_error(None)])
            return {"id": self.org.create(name, record), "success": True, "errors": []}

        return self._run(call, records, one, all_or_none, keep_id=False)

    def update(self, call: Call) -> Response:
        records, all_or_none = self._body(call)

        def one(record: Any) -> dict[str, Any]:
            name = self._type_of(record)
            raw_id = record.get("Id") or record.get("id")
            if not raw_id:
                raise RecordFailure(
                    [ErrorItem("MISSING_ARGUMENT", "Id not specified in an update call", ())]
                )
            rid = self.org.canonical_id(name, raw_id)
            values = {k: v for k, v in record.items() if k.lower() != "id"}
            if self.emu.faults.lock_row(rid):
                raise RecordFailure([lock_error(rid)])
            self.org.update(name, rid, values)
            return {"id": rid, "success": True, "errors": []}

        return self._run(call, records, one, all_or_none, keep_id=True)

    def delete(self, call: Call) -> Response:
        ids = [i for i in (call.param("ids") or "").split(",") if i.strip()]
        if not ids:
            raise ApiError.of(400, "MISSING_ARGUMENT", "ids parameter is required", [])
        if len(ids) > MAX_COLLECTION_RECORDS:
            raise _too_many()
        all_or_none = (call.param("allOrNone") or "").lower() == "true"

        def one(raw_id: Any) -> dict[str, Any]:
            raw = str(raw_id).strip()
            name = self.org.object_of(raw) if len(raw) in (15, 18) else None
            if name is None:
                raise RecordFailure([ErrorItem("MALFORMED_ID", f"malformed id {raw}", ())])
            rid = self.org.canonical_id(name, raw)
            if self.emu.faults.lock_row(rid):
                raise RecordFailure([lock_error(rid)])
            self.org.delete(name, rid)
            return {"id": rid, "success": True, "errors": []}

        return self._run(call, ids, one, all_or_none, keep_id=True)

    def _run(
        self,
        call: Call,
        items: list[Any],
        one: Callable[[Any], dict[str, Any]],
        all_or_none: bool,
        *,
        keep_id: bool,
    ) -> Response:
        results: list[dict[str, Any]] = []
        failed = False
        objects: set[str] = set()
        with self.org.lock:
            savepoint = self.org.begin()
            rollback = True
            try:
                for item in items:
                    try:
                        result = one(item)
                        objects.add(self.org.object_of(result["id"]) or "")
                    except RecordFailure as exc:
                        failed = True
                        result = {"success": False, "errors": [e.result() for e in exc.errors]}
                        if keep_id:
                            raw = item.get("Id") if isinstance(item, dict) else item
                            result = {"id": raw, **result}
                    results.append(result)
                rollback = all_or_none and failed
            finally:
                self.org.end(savepoint, rollback=rollback)
        if all_or_none and failed:
            for i, result in enumerate(results):
                if result["success"]:
                    entry: dict[str, Any] = {"success": False, "errors": [ROLLED_BACK.result()]}
                    if keep_id:
                        entry = {"id": result["id"], **entry}
                    results[i] = entry
        call.records = sum(1 for r in results if r["success"])
        if len(objects) == 1:
            call.object = objects.pop()
        return Response.json(results)

    def retrieve(self, call: Call) -> Response:
        table = self.org.table(call.object or "")
        if table is None:
            raise ApiError.not_found()
        name = table.schema.name
        if call.method == "POST":
            body = call.json()
            if not isinstance(body, dict):
                raise ApiError.of(400, "JSON_PARSER_ERROR", "Expected a JSON object")
            raw_ids = body.get("ids") or []
            raw_fields = body.get("fields") or []
        else:
            raw_ids = [i for i in (call.param("ids") or "").split(",") if i]
            raw_fields = [f for f in (call.param("fields") or "").split(",") if f]
        if not raw_ids or not raw_fields:
            raise ApiError.of(400, "MISSING_ARGUMENT", "ids and fields are required", [])
        if len(raw_ids) > MAX_RETRIEVE_IDS:
            raise ApiError.of(
                400, "EXCEEDED_ID_LIMIT", f"cannot retrieve more than {MAX_RETRIEVE_IDS} records"
            )
        names = [str(f).strip() for f in raw_fields]
        for n in names:
            if table.schema.field(n) is None:
                raise ApiError.of(
                    400, "INVALID_FIELD", f"No such column '{n}' on sobject of type {name}"
                )
        out: list[dict[str, Any] | None] = []
        for raw in raw_ids:
            try:
                rid = self.org.canonical_id(name, raw)
            except RecordFailure as exc:
                raise ApiError.from_failure(exc) from None
            row = table.rows.get(rid)
            if row is None or table.is_deleted(rid):
                out.append(None)
            else:
                out.append(self.org.render(name, row, call.version, names))
        call.records = sum(1 for r in out if r is not None)
        return Response.json(out)


class CompositeApi:
    """``POST /composite``."""

    def __init__(self, emu: SalesforceEmulator) -> None:
        self.emu = emu
        self.org = emu.org

    def composite(self, call: Call) -> Response:
        body = call.json()
        subs = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(subs, list) or not subs:
            raise ApiError.of(
                400, "JSON_PARSER_ERROR", "compositeRequest is required and must be a list"
            )
        if len(subs) > MAX_SUBREQUESTS:
            raise ApiError.of(
                400,
                "LIMIT_EXCEEDED",
                f"Composite request exceeds the maximum of {MAX_SUBREQUESTS} subrequests",
            )
        seen: set[str] = set()
        for sub in subs:
            if not isinstance(sub, dict) or not all(
                isinstance(sub.get(k), str) for k in ("method", "url", "referenceId")
            ):
                raise ApiError.of(
                    400, "JSON_PARSER_ERROR", "Each subrequest needs method, url and referenceId"
                )
            ref = sub["referenceId"]
            if not _REFERENCE_ID.match(ref) or ref in seen:
                raise ApiError.of(400, "INVALID_API_INPUT", f"Invalid referenceId: {ref}")
            seen.add(ref)
        all_or_none = bool(body.get("allOrNone", False))
        if any(sub["method"].upper() != "GET" for sub in subs):
            call.kind = "write"

        outputs: dict[str, Any] = {}
        responses: list[dict[str, Any]] = []
        failed_at: int | None = None
        with self.org.lock:
            savepoint = self.org.begin()
            try:
                for index, sub in enumerate(subs):
                    ref = sub["referenceId"]
                    if failed_at is not None:
                        responses.append(_halted(ref))
                        continue
                    try:
                        url = _resolve(sub["url"], outputs, url=True)
                        sub_body = _resolve(sub.get("body"), outputs, url=False)
                    except _UnresolvedError as exc:
                        entry = _entry(ref, 400, [_invalid_reference(exc.args[0])], {})
                    else:
                        entry = self._dispatch(call, sub, url, sub_body, ref)
                    responses.append(entry)
                    if entry["httpStatusCode"] < 300:
                        outputs[ref] = entry["body"]
                    elif all_or_none:
                        failed_at = index
            finally:
                self.org.end(savepoint, rollback=failed_at is not None)
        if failed_at is not None:
            responses = [
                r if i == failed_at else _halted(r["referenceId"]) for i, r in enumerate(responses)
            ]
        return Response.json({"compositeResponse": responses})

    def _dispatch(
        self, call: Call, sub: dict[str, Any], url: Any, body: Any, ref: str
    ) -> dict[str, Any]:
        method = sub["method"].upper()
        parts = urlsplit(str(url))
        headers = dict(call.request.headers.items())
        extra_headers = sub.get("httpHeaders")
        if isinstance(extra_headers, dict):
            headers.update({str(k).lower(): str(v) for k, v in extra_headers.items()})
        request = Request(
            method=method,
            path=unquote(parts.path),
            raw_path=str(url),
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=Headers(headers.items()),
            body=json.dumps(body).encode() if body is not None else b"",
        )
        response, sub_call = self.emu.dispatch_subrequest(call, request, body)
        call.records += sub_call.records if sub_call is not None else 0
        parsed: Any = json.loads(response.body) if response.body else None
        out_headers: dict[str, str] = {}
        if response.status == 201 and isinstance(parsed, dict) and "id" in parsed:
            obj = self.org.object_of(parsed["id"]) or ""
            out_headers["Location"] = f"{call.data_prefix}/sobjects/{obj}/{parsed['id']}"
        return {
            "body": parsed,
            "httpHeaders": out_headers,
            "httpStatusCode": response.status,
            "referenceId": ref,
        }


class _UnresolvedError(Exception):
    pass


def _entry(
    ref: str, status: int, errors: list[ErrorItem], headers: dict[str, str]
) -> dict[str, Any]:
    return {
        "body": [e.rest() for e in errors],
        "httpHeaders": headers,
        "httpStatusCode": status,
        "referenceId": ref,
    }


def _halted(ref: str) -> dict[str, Any]:
    return _entry(ref, 400, [HALTED], {})


def _invalid_reference(expression: str) -> ErrorItem:
    ref = expression.split(".", 1)[0].split("[", 1)[0]
    return ErrorItem(
        "PROCESSING_HALTED",
        f"Invalid reference specified. No value for {expression} found in {ref}. Provided "
        f"referenceId ('{ref}') must be from a previous subrequest.",
        None,
    )


def _lookup(outputs: dict[str, Any], ref: str, path: str) -> Any:
    expression = ref + path
    if ref not in outputs:
        raise _UnresolvedError(expression)
    value = outputs[ref]
    for m in _REF_STEP.finditer(path):
        key, index = m.group(1), m.group(2)
        if key is not None:
            if not isinstance(value, dict):
                raise _UnresolvedError(expression)
            if key in value:
                value = value[key]
            else:
                match = next((k for k in value if k.lower() == key.lower()), None)
                if match is None:
                    raise _UnresolvedError(expression)
                value = value[match]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                raise _UnresolvedError(expression)
            value = value[int(index)]
    if value is None:
        raise _UnresolvedError(expression)
    return value


def _resolve(value: Any, outputs: dict[str, Any], *, url: bool) -> Any:
    """Replace ``@{ref.path}`` in strings (recursively through the body)."""
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value)
        if whole and not url:
            return _lookup(outputs, whole.group(1), whole.group(2))
        return _REFERENCE.sub(lambda m: str(_lookup(outputs, m.group(1), m.group(2))), value)
    if isinstance(value, dict):
        return {k: _resolve(v, outputs, url=url) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, outputs, url=url) for v in value]
    return value
