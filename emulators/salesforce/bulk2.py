"""Bulk API 2.0: ingest jobs and query jobs (reference section 10).

Processing is synchronous: an ingest job is processed when it is closed
(``PATCH {"state":"UploadComplete"}`` answers ``UploadComplete``; the first status poll
sees ``JobComplete``), and a query job runs when it is created.  Rows go through the same
validation as sObject Collections.  Query results are rendered per chunk from the live
rows (like REST paging), with the header in SELECT order, relationship columns as
``Owner.Email``, every value quoted and nulls as empty, unquoted fields.  ``Sforce-Locator``
is the base64 of the next offset (opaque to clients) or ``null`` on the last chunk.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emulators.http import Response
from emulators.salesforce.context import ApiError, Call
from emulators.salesforce.org import ErrorItem, RecordFailure
from emulators.salesforce.rest import lock_error
from emulators.salesforce.soql import QueryPlan, format_datetime
from emulators.sfid import InvalidId, normalize
from emulators.store import SalesforceIdFactory

if TYPE_CHECKING:
    from emulators.salesforce.app import SalesforceEmulator

DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
QUERY_OPERATIONS = ("query", "queryAll")
DEFAULT_MAX_RECORDS = 50_000
RESULT_KINDS = {
    "successfulresults": "successful",
    "failedresults": "failed",
    "unprocessedrecords": "unprocessed",
}


@dataclass
class _Job:
    id: str
    object: str
    operation: str
    column_delimiter: str
    line_ending: str
    api_version: str
    created_ms: int
    state: str
    modified_ms: int
    created_by: str
    error_message: str | None = None

    @property
    def delimiter(self) -> str:
        return DELIMITERS[self.column_delimiter]

    @property
    def newline(self) -> str:
        return LINE_ENDINGS[self.line_ending]

    def base_info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": format_datetime(self.created_ms),
            "systemModstamp": format_datetime(self.modified_ms),
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.api_version),
            "lineEnding": self.line_ending,
            "columnDelimiter": self.column_delimiter,
        }


@dataclass
class IngestJob(_Job):
    external_id_field: str | None = None
    uploads: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    successful: list[tuple[str, bool, list[str]]] = field(default_factory=list)
    failed: list[tuple[str, str, list[str]]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)
    processing_ms: int = 0

    def info(self, *, full: bool) -> dict[str, Any]:
        out = self.base_info()
        if self.external_id_field:
            out["externalIdFieldName"] = self.external_id_field
        if self.state == "Open":
            out["contentUrl"] = f"services/data/v{self.api_version}/jobs/ingest/{self.id}/batches"
        if full:
            out.update(
                {
                    "jobType": "V2Ingest",
                    "numberRecordsProcessed": len(self.successful) + len(self.failed),
                    "numberRecordsFailed": len(self.failed),
                    "retries": 0,
                    "totalProcessingTime": self.processing_ms,
                    "apiActiveProcessingTime": self.processing_ms,
                    "apexProcessingTime": 0,
                }
            )
            if self.error_message:
                out["errorMessage"] = self.error_message
        return out


@dataclass
class QueryJob(_Job):
    query: str = ""
    plan: QueryPlan | None = None
    ids: list[str] = field(default_factory=list)

    def info(self, *, full: bool) -> dict[str, Any]:
        out = self.base_info()
        if full:
            out.update(
                {
                    "jobType": "V2Query",
                    "numberRecordsProcessed": len(self.ids),
                    "retries": 0,
                    "totalProcessingTime": 0,
                    "isPkChunkingSupported": True,
                }
            )
            if self.error_message:
                out["errorMessage"] = self.error_message
        return out


def _bulk_error(status: int, code: str, message: str) -> ApiError:
    return ApiError(status, [ErrorItem(code, message, None)])


def _csv_text(rows: list[list[str | None]], delimiter: str, newline: str) -> str:
    """Every value quoted; None as an empty, unquoted field."""
    out = io.StringIO()
    for row in rows:
        out.write(
            delimiter.join("" if v is None else '"' + v.replace('"', '""') + '"' for v in row)
        )
        out.write(newline)
    return out.getvalue()


class Bulk2Api:
    """``/jobs/ingest`` and ``/jobs/query`` handlers."""

    def __init__(self, emu: SalesforceEmulator) -> None:
        self.emu = emu
        self.org = emu.org
        self._ids = SalesforceIdFactory("750")
        self._lock = threading.Lock()
        self.ingest_jobs: dict[str, IngestJob] = {}
        self.query_jobs: dict[str, QueryJob] = {}
        self.batches_used = 0
        self.query_jobs_used = 0

    # -- shared ------------------------------------------------------------------------------
    def _format(self, body: dict[str, Any]) -> tuple[str, str]:
        delimiter = str(body.get("columnDelimiter") or "COMMA").upper()
        line_ending = str(body.get("lineEnding") or "LF").upper()
        if delimiter not in DELIMITERS:
            raise _bulk_error(400, "INVALIDJOB", f"Invalid columnDelimiter: {delimiter}")
        if line_ending not in LINE_ENDINGS:
            raise _bulk_error(400, "INVALIDJOB", f"Invalid lineEnding: {line_ending}")
        content_type = str(body.get("contentType") or "CSV").upper()
        if content_type != "CSV":
            raise _bulk_error(400, "INVALIDJOB", f"Invalid contentType: {content_type}")
        return delimiter, line_ending

    def _job_id(self, call: Call) -> str:
        raw = call.segments[2]
        try:
            return normalize(raw)
        except InvalidId:
            raise _bulk_error(404, "NOT_FOUND", f"Job not found: {raw}") from None

    # -- ingest ------------------------------------------------------------------------------
    def ingest_create(self, call: Call) -> Response:
        body = call.json()
        if not isinstance(body, dict):
            raise _bulk_error(400, "INVALIDJOB", "Expected a JSON object")
        operation = str(body.get("operation") or "")
        if operation not in INGEST_OPERATIONS:
            raise _bulk_error(400, "INVALIDJOB", f"Invalid operation: {operation or 'null'}")
        table = self.org.table(str(body.get("object") or ""))
        if table is None:
            raise _bulk_error(
                400, "INVALIDJOB", f"Unable to find object: {body.get('object') or 'null'}"
            )
        external = body.get("externalIdFieldName")
        if operation == "upsert":
            if not external:
                raise _bulk_error(
                    400, "INVALIDJOB", "External ID field is required for upsert operations"
                )
            if str(external).lower() != "id":
                raise _bulk_error(
                    400,
                    "INVALIDJOB",
                    f"Field {external} on {table.schema.name} is not an External ID field",
                )
        delimiter, line_ending = self._format(body)
        now = self.emu.clock.now_ms()
        job = IngestJob(
            id=self._ids(),
            object=table.schema.name,
            operation=operation,
            column_delimiter=delimiter,
            line_ending=line_ending,
            api_version=call.version,
            created_ms=now,
            state="Open",
            modified_ms=now,
            created_by=self.org.integration_user_id,
            external_id_field="Id" if operation == "upsert" else None,
        )
        with self._lock:
            self.ingest_jobs[job.id] = job
        call.object = job.object
        return Response.json(job.info(full=False))

    def _ingest_job(self, call: Call) -> IngestJob:
        job = self.ingest_jobs.get(self._job_id(call))
        if job is None:
            raise _bulk_error(404, "NOT_FOUND", f"Job not found: {call.segments[2]}")
        call.object = job.object
        return job

    def ingest_list(self, call: Call) -> Response:
        with self._lock:
            jobs = list(self.ingest_jobs.values())
        return Response.json(
            {"done": True, "records": [j.info(full=False) for j in jobs], "nextRecordsUrl": None}
        )

    def ingest_status(self, call: Call) -> Response:
        return Response.json(self._ingest_job(call).info(full=True))

    def ingest_upload(self, call: Call) -> Response:
        job = self._ingest_job(call)
        if job.state != "Open":
            raise _bulk_error(
                409, "INVALIDJOBSTATE", f"Job {job.id} is not Open (state {job.state})"
            )
        try:
            text = call.request.body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _bulk_error(400, "INVALIDJOB", "CSV data must be UTF-8") from None
        if not text.strip():
            raise _bulk_error(400, "INVALIDJOB", "No content found in the request body")
        job.uploads.append(text)
        job.modified_ms = self.emu.clock.now_ms()
        with self._lock:
            self.batches_used += 1
        return Response.empty(201)

    def ingest_state(self, call: Call) -> Response:
        job = self._ingest_job(call)
        body = call.json()
        state = body.get("state") if isinstance(body, dict) else None
        if state == "UploadComplete":
            call.operation = "bulk2.ingest.close"
            if job.state != "Open":
                raise _bulk_error(
                    409, "INVALIDJOBSTATE", f"Job {job.id} is not Open (state {job.state})"
                )
            job.state = "UploadComplete"
            job.modified_ms = self.emu.clock.now_ms()
            answer = job.info(full=False)
            self._process(job)
            call.records = len(job.successful)
            return Response.json(answer)
        if state == "Aborted":
            call.operation = "bulk2.ingest.abort"
            if job.state not in ("Open", "UploadComplete", "InProgress"):
                raise _bulk_error(
                    409, "INVALIDJOBSTATE", f"Job {job.id} can not be aborted (state {job.state})"
                )
            job.state = "Aborted"
            job.modified_ms = self.emu.clock.now_ms()
            header, rows = self._parse(job)
            job.header = header
            job.unprocessed = rows
            return Response.json(job.info(full=False))
        raise _bulk_error(400, "INVALIDJOB", f"Invalid state: {state}")

    def ingest_delete(self, call: Call) -> Response:
        job = self._ingest_job(call)
        if job.state in ("Open", "InProgress"):
            raise _bulk_error(
                409, "INVALIDJOBSTATE", f"Job {job.id} can not be deleted (state {job.state})"
            )
        with self._lock:
            self.ingest_jobs.pop(job.id, None)
        return Response.empty(204)

    def ingest_results(self, call: Call) -> Response:
        job = self._ingest_job(call)
        kind = RESULT_KINDS[call.segments[3].lower()]
        if kind != "unprocessed" and job.state not in ("JobComplete", "Failed", "Aborted"):
            raise _bulk_error(
                409, "INVALIDJOBSTATE", f"Job {job.id} has not finished (state {job.state})"
            )
        rows: list[list[str | None]]
        if kind == "successful":
            rows = [["sf__Id", "sf__Created", *job.header]]
            rows += [
                [rid, "true" if created else "false", *vals]
                for rid, created, vals in job.successful
            ]
        elif kind == "failed":
            rows = [["sf__Id", "sf__Error", *job.header]]
            rows += [[rid, err, *vals] for rid, err, vals in job.failed]
        else:
            rows = [list(job.header)] if job.header else []
            rows += [list(r) for r in job.unprocessed] if job.header else []
        call.records = max(0, len(rows) - 1)
        return Response.text(_csv_text(rows, job.delimiter, job.newline), content_type="text/csv")

    def _parse(self, job: IngestJob) -> tuple[list[str], list[list[str]]]:
        header: list[str] = []
        rows: list[list[str]] = []
        for text in job.uploads:
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=job.delimiter)
            lines = [line for line in reader if line]
            if not lines:
                continue
            if not header:
                header = [h.strip() for h in lines[0]]
            rows.extend(lines[1:])
        return header, rows

    def _process(self, job: IngestJob) -> None:
        started = self.emu.clock.now_ms()
        header, rows = self._parse(job)
        job.header = header
        table = self.org.tables[job.object]
        for column in header:
            if table.schema.field(column) is None:
                job.state = "Failed"
                job.error_message = f"InvalidBatch : Field name not found : {column}"
                job.unprocessed = rows
                return
        id_column = next((i for i, h in enumerate(header) if h.lower() == "id"), None)
        if job.operation in ("update", "delete", "hardDelete") and id_column is None:
            job.state = "Failed"
            job.error_message = "InvalidBatch : Field name not found : Id"
            job.unprocessed = rows
            return
        for values in rows:
            if len(values) != len(header):
                error = ErrorItem(
                    "INVALID_INPUT",
                    f"Row has {len(values)} columns, the header has {len(header)}",
                )
                raw_id = (
                    values[id_column] if id_column is not None and id_column < len(values) else ""
                )
                job.failed.append((raw_id, error.csv(), values))
                continue
            self._process_row(job, header, values, id_column)
        job.state = "JobComplete"
        job.processing_ms = max(1, self.emu.clock.now_ms() - started)
        job.modified_ms = self.emu.clock.now_ms()

    def _process_row(
        self, job: IngestJob, header: list[str], values: list[str], id_column: int | None
    ) -> None:
        record = dict(zip(header, values, strict=True))
        raw_id = values[id_column].strip() if id_column is not None else ""
        name = job.object
        faults = self.emu.faults
        try:
            operation = job.operation
            if operation == "upsert":
                operation = "update" if raw_id else "insert"
            if operation == "insert":
                if faults.lock_row(None):
                    raise RecordFailure([lock_error(None)])
                rid = self.org.create(name, record, csv=True)
                job.successful.append((rid, True, values))
                return
            rid = self.org.canonical_id(name, raw_id)
            if faults.lock_row(rid):
                raise RecordFailure([lock_error(rid)])
            if operation == "update":
                fields = {k: v for k, v in record.items() if k.lower() != "id"}
                self.org.update(name, rid, fields, csv=True)
            else:
                self.org.delete(name, rid, hard=operation == "hardDelete")
            job.successful.append((rid, False, values))
        except RecordFailure as exc:
            job.failed.append(
                (raw_id if job.operation != "insert" else "", exc.errors[0].csv(), values)
            )

    # -- query -------------------------------------------------------------------------------
    def query_create(self, call: Call) -> Response:
        body = call.json()
        if not isinstance(body, dict):
            raise _bulk_error(400, "INVALIDJOB", "Expected a JSON object")
        operation = str(body.get("operation") or "")
        if operation not in QUERY_OPERATIONS:
            raise _bulk_error(400, "INVALIDJOB", f"Invalid operation: {operation or 'null'}")
        delimiter, line_ending = self._format(body)
        text = str(body.get("query") or "")
        plan: QueryPlan = self.emu.rest.compile(text)
        if plan.count_only:
            raise _bulk_error(
                400, "INVALIDJOB", "Aggregate queries (COUNT()) are not supported by Bulk API 2.0"
            )
        if plan.statement.offset is not None:
            raise _bulk_error(400, "INVALIDJOB", "OFFSET is not supported by Bulk API 2.0")
        now = self.emu.clock.now_ms()
        job = QueryJob(
            id=self._ids(),
            object=plan.sobject,
            operation=operation,
            column_delimiter=delimiter,
            line_ending=line_ending,
            api_version=call.version,
            created_ms=now,
            state="UploadComplete",
            modified_ms=now,
            created_by=self.org.integration_user_id,
            query=text,
            plan=plan,
        )
        answer = job.info(full=False)
        job.ids = plan.execute(include_deleted=operation == "queryAll")
        job.state = "JobComplete"
        limit = self.emu.profile.bulk_order_by_max_rows
        if plan.statement.order and limit is not None and len(job.ids) > limit:
            # S6: ORDER BY disables PK chunking; a large query then times out.  The job
            # fails the way Salesforce reports a timed-out query (message UNVERIFIED).
            job.ids = []
            job.state = "Failed"
            job.error_message = (
                "QUERY_TIMEOUT: Your query request was running for too long. "
                "ORDER BY disables PK chunking for Bulk API 2.0 queries."
            )
        with self._lock:
            self.query_jobs[job.id] = job
            self.query_jobs_used += 1
        call.object = job.object
        return Response.json(answer)

    def _query_job(self, call: Call) -> QueryJob:
        job = self.query_jobs.get(self._job_id(call))
        if job is None:
            raise _bulk_error(404, "NOT_FOUND", f"Job not found: {call.segments[2]}")
        call.object = job.object
        return job

    def query_list(self, call: Call) -> Response:
        with self._lock:
            jobs = list(self.query_jobs.values())
        return Response.json(
            {"done": True, "records": [j.info(full=False) for j in jobs], "nextRecordsUrl": None}
        )

    def query_status(self, call: Call) -> Response:
        return Response.json(self._query_job(call).info(full=True))

    def query_state(self, call: Call) -> Response:
        job = self._query_job(call)
        body = call.json()
        if not isinstance(body, dict) or body.get("state") != "Aborted":
            raise _bulk_error(400, "INVALIDJOB", "Only the Aborted state can be set")
        if job.state in ("JobComplete", "Failed", "Aborted"):
            raise _bulk_error(
                409, "INVALIDJOBSTATE", f"Job {job.id} can not be aborted (state {job.state})"
            )
        job.state = "Aborted"
        return Response.json(job.info(full=False))

    def query_delete(self, call: Call) -> Response:
        job = self._query_job(call)
        with self._lock:
            self.query_jobs.pop(job.id, None)
        return Response.empty(204)

    def query_results(self, call: Call) -> Response:
        job = self._query_job(call)
        if job.state != "JobComplete" or job.plan is None:
            raise _bulk_error(
                412,
                "JOB_NOT_COMPLETE",
                f"can only download query results of successfully completed bulk job {job.id}",
            )
        offset = 0
        locator = call.param("locator")
        if locator and locator != "null":
            try:
                padded = locator + "=" * (-len(locator) % 4)
                offset = int(base64.b64decode(padded, validate=True).decode("ascii"))
            except (binascii.Error, ValueError, UnicodeDecodeError):
                raise _bulk_error(400, "INVALIDLOCATOR", f"Invalid locator: {locator}") from None
        try:
            max_records = int(call.param("maxRecords") or DEFAULT_MAX_RECORDS)
        except ValueError:
            raise _bulk_error(400, "INVALIDJOB", "maxRecords must be a number") from None
        max_records = max(1, max_records)
        plan = job.plan
        rows_by_id = plan.table.rows
        chunk_ids = job.ids[offset : offset + max_records]
        rows: list[list[str | None]] = [list(plan.csv_header())]
        for rid in chunk_ids:
            row = rows_by_id.get(rid)
            if row is not None:
                rows.append(plan.csv_row(row))
        end = offset + max_records
        next_locator = (
            base64.b64encode(str(end).encode()).decode().rstrip("=")
            if end < len(job.ids)
            else "null"
        )
        call.records = len(rows) - 1
        return Response.text(
            _csv_text(rows, job.delimiter, job.newline),
            content_type="text/csv",
            headers={
                "Sforce-NumberOfRecords": str(len(rows) - 1),
                "Sforce-Locator": next_locator,
            },
        )
