"""REST resources: query, sObject CRUD and describe, limits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulators.http import Response
from emulators.salesforce import describe
from emulators.salesforce.context import ApiError, Call
from emulators.salesforce.org import ErrorItem, RecordFailure, parse_datetime
from emulators.salesforce.query import batch_size
from emulators.salesforce.soql import SoqlError, compile_query, format_datetime

if TYPE_CHECKING:
    from emulators.salesforce.app import SalesforceEmulator


def lock_error(record_id: str | None) -> ErrorItem:
    return ErrorItem(
        "UNABLE_TO_LOCK_ROW",
        f"unable to obtain exclusive access to this record or 1 records: {record_id or ''}",
        (),
    )


class RestApi:
    """Handlers for the plain REST resources; each takes a :class:`Call`."""

    def __init__(self, emu: SalesforceEmulator) -> None:
        self.emu = emu
        self.org = emu.org

    # -- query -------------------------------------------------------------------------------
    def compile(self, text: str | None) -> Any:
        if text is None or not text.strip():
            raise ApiError.of(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            return compile_query(text, self.org.api_tables, now_ms=self.emu.clock.now_ms())
        except SoqlError as exc:
            raise ApiError.of(400, exc.code, exc.message(text)) from None

    def query(self, call: Call) -> Response:
        include_deleted = call.segments[0].lower() == "queryall"
        plan = self.compile(call.param("q"))
        call.object = plan.sobject
        ids = plan.execute(include_deleted=include_deleted)
        if plan.count_only:
            return Response.json({"totalSize": len(ids), "done": True, "records": []})
        size = batch_size(call.request.headers.get("Sforce-Query-Options"))
        page = self.emu.cursors.first_page(plan, ids, size, call.version)
        call.records = len(page["records"])
        return Response.json(page)

    def query_more(self, call: Call) -> Response:
        size = batch_size(call.request.headers.get("Sforce-Query-Options"))
        page, call.object = self.emu.cursors.next_page(call.segments[1], size, call.version)
        call.records = len(page["records"])
        return Response.json(page)

    # -- describe and limits -----------------------------------------------------------------
    def global_describe(self, call: Call) -> Response:
        schemas = [t.schema for t in self.org.api_tables.values()]
        return Response.json(describe.global_describe(schemas, call.data_prefix))

    def basic_info(self, call: Call) -> Response:
        table = self._table(call)
        return Response.json(describe.basic_info(table.schema, call.data_prefix))

    def describe(self, call: Call) -> Response:
        table = self._table(call)
        schemas = [t.schema for t in self.org.api_tables.values()]
        return Response.json(describe.describe_sobject(table.schema, schemas, call.data_prefix))

    def limits(self, call: Call) -> Response:
        return Response.json(self.emu.limits())

    # -- single-record CRUD -------------------------------------------------------------------
    def _table(self, call: Call) -> Any:
        name = call.object or ""
        table = self.org.table(name)
        if table is None:
            raise ApiError.not_found()
        return table

    def _record_id(self, call: Call) -> str:
        try:
            return self.org.canonical_id(self._table(call).schema.name, call.segments[2])
        except RecordFailure as exc:
            raise ApiError.from_failure(exc) from None

    def create(self, call: Call) -> Response:
        name = self._table(call).schema.name
        body = call.json()
        if not isinstance(body, dict):
            raise ApiError.of(400, "JSON_PARSER_ERROR", "Expected a JSON object")
        attributes = body.get("attributes")
        if isinstance(attributes, dict) and attributes.get("type") not in (None, name):
            raise ApiError.of(
                400, "INVALID_TYPE", f"sObject type in attributes does not match {name}"
            )
        if self.emu.faults.lock_row(None):
            raise ApiError(400, [lock_error(None)])
        try:
            rid = self.org.create(name, body)
        except RecordFailure as exc:
            raise ApiError.from_failure(exc) from None
        call.records = 1
        return Response.json({"id": rid, "success": True, "errors": []}, 201)

    def retrieve(self, call: Call) -> Response:
        table = self._table(call)
        rid = self._record_id(call)
        row = table.rows.get(rid)
        if row is None or table.is_deleted(rid):
            raise ApiError.not_found()
        names = None
        fields_param = call.param("fields")
        if fields_param:
            names = [n.strip() for n in fields_param.split(",") if n.strip()]
            for n in names:
                if table.schema.field(n) is None:
                    raise ApiError.of(
                        400,
                        "INVALID_FIELD",
                        f"No such column '{n}' on sobject of type {table.schema.name}",
                    )
        call.records = 1
        return Response.json(self.org.render(table.schema.name, row, call.version, names))

    def update(self, call: Call) -> Response:
        name = self._table(call).schema.name
        rid = self._record_id(call)
        body = call.json()
        if not isinstance(body, dict):
            raise ApiError.of(400, "JSON_PARSER_ERROR", "Expected a JSON object")
        if self.emu.faults.lock_row(rid):
            raise ApiError(400, [lock_error(rid)])
        try:
            self.org.update(name, rid, body)
        except RecordFailure as exc:
            raise ApiError.from_failure(exc) from None
        call.records = 1
        return Response.empty(204)

    def delete(self, call: Call) -> Response:
        name = self._table(call).schema.name
        rid = self._record_id(call)
        if self.emu.faults.lock_row(rid):
            raise ApiError(400, [lock_error(rid)])
        try:
            self.org.delete(name, rid)
        except RecordFailure as exc:
            raise ApiError.from_failure(exc) from None
        call.records = 1
        return Response.empty(204)

    def external_id(self, call: Call) -> Response:
        raise ApiError.of(
            404,
            "NOT_FOUND",
            f"Provided external ID field does not exist or is not accessible: {call.segments[2]}",
        )

    # -- changed / deleted windows ------------------------------------------------------------
    def _window(self, call: Call) -> tuple[int, int]:
        try:
            start = parse_datetime(call.param("start") or "")
            end = parse_datetime(call.param("end") or "")
        except ValueError:
            raise ApiError.of(
                400, "INVALID_REPLICATION_DATE", "start and end must be ISO-8601 datetimes"
            ) from None
        return start, end

    def updated(self, call: Call) -> Response:
        table = self._table(call)
        start, end = self._window(call)
        stamp = table.pos["systemmodstamp"]
        ids = [rid for rid, row in table.iter_rows() if start <= row[stamp] < end]
        call.records = len(ids)
        return Response.json({"ids": ids, "latestDateCovered": format_datetime(end)})

    def deleted(self, call: Call) -> Response:
        table = self._table(call)
        start, end = self._window(call)
        stamp = table.pos["systemmodstamp"]
        deleted_pos = table.pos["isdeleted"]
        found = [
            {"id": rid, "deletedDate": format_datetime(row[stamp])}
            for rid, row in table.iter_rows(include_deleted=True)
            if row[deleted_pos] and start <= row[stamp] < end
        ]
        call.records = len(found)
        return Response.json(
            {
                "deletedRecords": found,
                "earliestDateAvailable": format_datetime(start),
                "latestDateCovered": format_datetime(end),
            }
        )
