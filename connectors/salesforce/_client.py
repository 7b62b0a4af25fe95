"""SalesforceClient: teamsync's typed port over simple-salesforce.

The client owns everything simple-salesforce leaves to its caller: authentication (OAuth is
teamsync's own token request), session renewal (once per call), retries, timeouts, the API
budget, paging, Bulk 2.0 job polling and error translation.  simple-salesforce is built
from a bare session id, so its own recursive 401 retry never runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, Literal, TypeVar

import orjson
import requests
import structlog
from simple_salesforce.api import Salesforce
from simple_salesforce.bulk2 import (
    MAX_INGEST_JOB_FILE_SIZE,
    Operation,
    ResultsType,
    SFBulk2Handler,
    SFBulk2Type,
    _Bulk2Client,
)
from structlog.typing import FilteringBoundLogger

from connectors import soql as soqlmod
from connectors.batching import batched
from connectors.contract import refuse_redirects, renamed
from connectors.errors import (
    AuthenticationError,
    ContractViolation,
    QuotaExceeded,
    RedirectRefused,
    RequestRejected,
    RetryableError,
    UpstreamUnavailable,
)
from connectors.retry import call_with_retry, parse_retry_after
from connectors.salesforce import _contract as contract
from connectors.salesforce._auth import Token, request_token
from connectors.salesforce._config import (
    ORG_DEFAULT_FIELDS,
    ApiUsage,
    OrgInfo,
    SalesforceConfig,
    WriteResult,
)
from connectors.salesforce._errors import (
    API,
    Call,
    SessionExpired,
    bulk_error,
    error_info,
    short,
    translate,
)
from connectors.salesforce._records import (
    Column,
    ResultMatcher,
    csv_cell,
    csv_line,
    csv_records,
    csv_row_count,
    flatten,
    jsonable,
    pages,
    result_rows,
)
from connectors.sfid import InvalidId, normalize
from connectors.tls import requests_session

T = TypeVar("T")
WriteOp = Literal["create", "update", "delete"]

COLLECTION_SIZE = 200  # sObject Collections take at most 200 records a call
MIN_BATCH, MAX_BATCH = 200, 2000  # Sforce-Query-Options batchSize bounds
LOCK_CODE = "UNABLE_TO_LOCK_ROW"
_BULK_OPERATIONS = {
    "create": Operation.insert,
    "update": Operation.update,
    "delete": Operation.delete,
}
_COMPOUND_TYPES = frozenset({"address", "location"})


class _Salesforce(Salesforce):
    """simple-salesforce with responses parsed by orjson into plain dicts (the library's own
    parse builds an OrderedDict per record: about seven times slower on query pages)."""

    def parse_result_to_json(self, result: requests.Response) -> Any:
        try:
            return orjson.loads(result.content)
        except orjson.JSONDecodeError:
            return super().parse_result_to_json(result)  # the library's own error


class SalesforceClient:
    """Reads and writes one Salesforce org.

        client = SalesforceClient(SalesforceConfig(instance_url=..., access_token=...))
        for page in client.query(soqlmod.select("Account", ["Id", "Owner.Email"])):
            ...
        results = client.update("Account", [{"Id": "001…", "Health_Score__c": 72}])

    Pages are lists of flat dicts (``Owner.Email`` keys, no ``attributes``).  Writes return
    one :class:`WriteResult` per input record, in input order; record-level failures never
    raise.  Whole-call failures raise the :mod:`connectors.errors` tree (a write spanning
    several calls that fails part-way raises too: the next run reconciles what landed).
    One client serves one thread.
    """

    bulk_result_chunk: int = 50_000  # maxRecords per Bulk query results call
    # Salesforce takes 100 MB of CSV per upload; keep a margin for the encoding.
    bulk_upload_bytes: int = MAX_INGEST_JOB_FILE_SIZE - 1024 * 1024

    def __init__(
        self,
        config: SalesforceConfig,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        log: FilteringBoundLogger | None = None,
    ) -> None:
        self.config = config
        self.usage = ApiUsage()
        self._sleep = sleep
        self._log: FilteringBoundLogger = log or structlog.get_logger("teamsync.salesforce")
        self._session = session or requests_session(config.ca_bundle, timeout=config.timeout)
        # Token and API calls alike: a 3xx raises RedirectRefused and is never followed.
        refuse_redirects(self._session, api=API)
        self._session.hooks.setdefault("response", []).append(self._on_response)
        self._last = threading.local()
        self._sf: Salesforce | None = None
        self._describes: dict[str, dict[str, Any]] = {}

    # --- plumbing -------------------------------------------------------------------------

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Session hook: keep the headers simple-salesforce's exceptions drop, and the usage."""
        self._last.headers = response.headers
        info = response.headers.get("Sforce-Limit-Info")
        if info:
            usage = Salesforce.parse_api_usage(info).get("api-usage")
            if usage is not None:
                self.usage.used, self.usage.max = usage.used, usage.total

    def _retry_after(self) -> float | None:
        headers = getattr(self._last, "headers", None)
        return parse_retry_after(headers.get("Retry-After")) if headers is not None else None

    def connect(self) -> None:
        """Obtain a session (static token, client credentials or JWT bearer) and build the
        simple-salesforce client.  Called lazily by the first API call too."""
        if self.config.access_token:
            token = Token(self.config.access_token, self.config.instance_url)
        else:
            token = self._request_token()
        self._build(token)
        self._log.info(
            "salesforce.connected", auth_mode=self.config.auth_mode, instance=self._sf_host()
        )

    def _sf_host(self) -> str | None:
        return self._sf.sf_instance if self._sf is not None else None

    def _build(self, token: Token) -> None:
        self._sf = _Salesforce(
            instance_url=token.instance_url,
            session_id=token.access_token,
            session=self._session,
            version=self.config.api_version,
        )

    def _request_token(self) -> Token:
        call = Call("auth")

        def attempt() -> Token:
            self.usage.calls["auth"] += 1
            try:
                return request_token(self.config, self._session)
            except RedirectRefused as exc:
                raise renamed(exc, call.describe()) from None
            except requests.RequestException as exc:
                error = translate(exc, call, retry_after=self._retry_after())
                if error is None:
                    raise
                raise error from exc

        return call_with_retry(
            attempt,
            self.config.retry,
            api=API,
            sleep=self._sleep,
            on_retry=partial(self._log_retry, call),
        )

    def _renew(self) -> None:
        self._build(self._request_token())
        self._log.info("salesforce.session_renewed", auth_mode=self.config.oauth_mode)

    def _log_retry(self, call: Call, error: RetryableError, wait: float) -> None:
        self._log.warning(
            "salesforce.retry",
            operation=call.operation,
            object=call.object_name,
            status=error.status,
            code=error.code,
            wait=round(wait, 3),
        )

    def _check_budget(self, call: Call) -> None:
        used, total = self.usage.used, self.usage.max
        if used is not None and total and used >= self.config.api_budget * total:
            raise QuotaExceeded(
                f"{API} {call.operation}: API usage {used}/{total} has reached teamsync's "
                f"budget of {self.config.api_budget:.0%} of the daily allocation; not sent",
                api=API,
                code="API_BUDGET",
            )

    def _attempt(self, call: Call, fn: Callable[[Salesforce], T]) -> T:
        if self._sf is None:
            self.connect()
        assert self._sf is not None
        self._check_budget(call)
        self.usage.calls[call.operation] += 1
        self._last.headers = None
        try:
            return fn(self._sf)
        except Exception as exc:
            error = translate(exc, call, retry_after=self._retry_after())
            if error is None or error is exc:
                raise
            raise error from exc

    def _call(self, call: Call, fn: Callable[[Salesforce], T]) -> T:
        """One API call: budget check, retries, and one session renewal on a 401."""
        renewed = False
        while True:
            try:
                return call_with_retry(
                    partial(self._attempt, call, fn),
                    self.config.retry,
                    api=API,
                    sleep=self._sleep,
                    on_retry=partial(self._log_retry, call),
                )
            except SessionExpired as exc:
                if self.config.oauth_mode is None:
                    raise AuthenticationError(
                        f"{call.describe()}: session refused (INVALID_SESSION_ID) and a static "
                        "access token cannot be renewed",
                        api=API,
                        status=exc.status,
                        code=exc.code,
                    ) from exc
                if renewed:
                    raise AuthenticationError(
                        f"{call.describe()}: session refused again right after renewal",
                        api=API,
                        status=exc.status,
                        code=exc.code,
                    ) from exc
                renewed = True
                self._log.info("salesforce.session_expired", operation=call.operation)
                self._renew()

    def _bulk(self, sf: Salesforce, object_name: str) -> _Bulk2Client:
        """simple-salesforce's Bulk 2.0 primitives, bound to the current session."""
        handler = SFBulk2Handler(sf.session_id, sf.bulk2_url, session=sf.session)
        return SFBulk2Type(object_name, sf.bulk2_url, handler.headers, sf.session)._client

    # --- metadata -------------------------------------------------------------------------

    def describe(self, object_name: str) -> dict[str, Any]:
        """``sobjects/{object}/describe``, cached for the life of the client."""
        name = soqlmod.sobject_name(object_name)
        cached = self._describes.get(name.lower())
        if cached is None:
            result = self._call(
                Call("describe", name),
                lambda sf: sf.restful(f"sobjects/{name}/describe", timeout=self.config.timeout),
            )
            if not isinstance(result, dict) or not isinstance(result.get("fields"), list):
                raise ContractViolation(
                    f"{API} describe {name}: response breaks its contract: "
                    "expected an object with a fields list",
                    api=API,
                )
            cached = self._describes[name.lower()] = result
        return cached

    def describe_if_exists(self, object_name: str) -> dict[str, Any] | None:
        """Like :meth:`describe`, but None when the object is not there for this user (not
        enabled in the org, e.g. AccountTeamMember without Account Teams, or no access)."""
        try:
            return self.describe(object_name)
        except RequestRejected as exc:
            if exc.status == 404 or exc.code in ("NOT_FOUND", "INVALID_TYPE"):
                return None
            raise

    def organization(self) -> OrgInfo:
        """The org's type and organization-wide sharing defaults (one query)."""
        fields = ("Id", "IsSandbox", "OrganizationType", *ORG_DEFAULT_FIELDS.values())
        rows = [
            row
            for page in self.query(soqlmod.select("Organization", fields), allow_bulk=False)
            for row in page
        ]
        if len(rows) != 1:
            raise RequestRejected(
                f"{API} query Organization: expected one row, got {len(rows)}", api=API
            )
        row = rows[0]
        return OrgInfo(
            org_id=str(row.get("Id") or ""),
            is_sandbox=row.get("IsSandbox") is True,
            org_type=str(row.get("OrganizationType") or ""),
            defaults={
                obj: str(row.get(name) or "None") for obj, name in ORG_DEFAULT_FIELDS.items()
            },
        )

    def limits(self) -> dict[str, Any]:
        """The org's ``/limits``; also refreshes :attr:`usage` from ``DailyApiRequests``."""
        result = self._call(Call("limits"), lambda sf: sf.limits(timeout=self.config.timeout))
        daily = result.get("DailyApiRequests") if isinstance(result, dict) else None
        if isinstance(daily, dict) and "Max" in daily and "Remaining" in daily:
            self.usage.max = int(daily["Max"])
            self.usage.used = int(daily["Max"]) - int(daily["Remaining"])
        return dict(result)

    # --- reads ----------------------------------------------------------------------------

    def count(self, soql: str, *, include_deleted: bool = False) -> int:
        """The number of rows a query matches (``SELECT COUNT() …``; one call)."""
        items = [i.replace(" ", "").upper() for i in soqlmod.select_fields(soql)]
        text = soql if items == ["COUNT()"] else soqlmod.count_query(soql)
        call = Call("count", soqlmod.from_object(text))
        page = self._call(
            call,
            lambda sf: sf.query(text, include_deleted=include_deleted, timeout=self.config.timeout),
        )
        return contract.count_page(page, call)

    def query(
        self,
        soql: str,
        *,
        include_deleted: bool = False,
        batch_size: int = 2000,
        allow_bulk: bool = True,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of flat records for a SOQL query, streamed.

        REST first (``query`` / ``queryAll``, ``Sforce-Query-Options: batchSize``, then
        ``nextRecordsUrl``).  When the first page says more than ``bulk_query_threshold``
        rows match, the query can run in Bulk 2.0 and ``allow_bulk`` is set, the REST cursor
        is dropped *before any record is yielded* and the whole result is streamed from one
        Bulk 2.0 query job instead, its CSV values typed as REST types them (describe
        metadata).  So every record comes from exactly one source: none lost, none doubled.
        Bulk pages hold at most ``batch_size`` records too.  The Bulk job is sent without the
        query's ORDER BY (which disables PK chunking, so large jobs time out); its pages are
        :class:`UnorderedPage` (``page.ordered`` is False), REST pages keep the query's order.
        """
        size = min(MAX_BATCH, max(MIN_BATCH, int(batch_size)))
        object_name = soqlmod.from_object(soql)
        expected = _selected_paths(soql)
        options = {"Sforce-Query-Options": f"batchSize={size}"}
        operation = "queryAll" if include_deleted else "query"
        timeout = self.config.timeout

        first_call = Call(operation, object_name)
        page = contract.query_page(
            self._call(
                first_call,
                lambda sf: sf.query(
                    soql, include_deleted=include_deleted, headers=options, timeout=timeout
                ),
            ),
            first_call,
        )
        total = int(page["totalSize"])
        if allow_bulk and total > self.config.bulk_query_threshold and not page["done"]:
            reason = soqlmod.bulk_incompatibility(soql)
            if reason is None and len(expected) != len(soqlmod.select_fields(soql)):
                reason = "a SELECT item that is not a plain field"
            columns: dict[str, Column] = {}
            if reason is None and object_name:
                columns, reason = self._bulk_columns(object_name, expected)
            if reason is None and object_name:
                self._log.info(
                    "salesforce.query.bulk",
                    object=object_name,
                    total=total,
                    threshold=self.config.bulk_query_threshold,
                )
                # Without ORDER BY (S6): the pages come unordered (UnorderedPage).
                bulk_soql = soqlmod.without_order_by(soql)
                yield from self._bulk_query(bulk_soql, object_name, include_deleted, size, columns)
                return
            self._log.info("salesforce.query.rest", object=object_name, total=total, reason=reason)

        seen = 0
        more = Call(f"{operation}.more", object_name)
        first = True
        while True:
            records = [flatten(r, expected) for r in page["records"]]
            seen += len(records)
            # Checked before a record is yielded: a page that lies about its count (an
            # empty "done" page of a non-empty result) must not be read as absence.
            contract.query_progress(page, first, seen, total, more if not first else first_call)
            first = False
            if records:
                yield records
            if page["done"]:
                return
            next_url = str(page["nextRecordsUrl"])
            page = contract.query_page(
                self._call(
                    more, partial(_query_more, url=next_url, headers=options, timeout=timeout)
                ),
                more,
            )

    def _bulk_columns(
        self, object_name: str, paths: Sequence[str]
    ) -> tuple[dict[str, Column], str | None]:
        """CSV column -> (REST key, type) for the selected paths, or why Bulk cannot serve."""
        columns: dict[str, Column] = {}
        for path in paths:
            segments = path.split(".")
            current, keys = object_name, list[str]()
            for segment in segments[:-1]:
                hop = self._relationship(current, segment, segments[len(keys) + 1])
                if hop is None:
                    break
                keys.append(hop[0])
                current = hop[1]
            else:
                leaf = _field_named(self.describe(current), segments[-1])
                if leaf is not None:
                    type_ = str(leaf.get("type") or "string")
                    if type_ in _COMPOUND_TYPES:
                        return {}, f"compound field {path}"
                    keys.append(str(leaf["name"]))
                    columns[path.lower()] = Column(".".join(keys), type_)
                    continue
            columns[path.lower()] = Column(path, "string")
        return columns, None

    def _relationship(self, object_name: str, name: str, next_field: str) -> tuple[str, str] | None:
        """(relationshipName, target object) of a parent relationship; for polymorphic
        ones the first target that has ``next_field``."""
        for item in self.describe(object_name).get("fields") or ():
            if str(item.get("relationshipName") or "").lower() != name.lower():
                continue
            targets = [str(t) for t in item.get("referenceTo") or ()]
            for target in targets:
                if len(targets) == 1 or _field_named(self.describe(target), next_field) is not None:
                    return str(item["relationshipName"]), target
        return None

    def _bulk_query(
        self,
        soql: str,
        object_name: str,
        include_deleted: bool,
        size: int,
        columns: Mapping[str, Column],
    ) -> Iterator[list[dict[str, Any]]]:
        operation = Operation.query_all if include_deleted else Operation.query
        create = Call("bulk2.query.create_job", object_name)
        job = contract.job_info(
            self._call(
                create, lambda sf: self._bulk(sf, object_name).create_job(operation, query=soql)
            ),
            create,
        )
        job_id = str(job["id"])
        info = self._wait_for_job(job_id, True, object_name)
        results = Call("bulk2.query.results", object_name)
        expected = contract.job_count(info, "numberRecordsProcessed", results)
        locator = ""
        seen = 0
        while True:
            chunk: Mapping[str, Any] = self._call(
                results, partial(self._query_results, object_name, job_id, locator)
            )
            text = chunk.get("records") if isinstance(chunk, Mapping) else None
            if not isinstance(text, str):
                raise ContractViolation(
                    f"{results.describe()}: response breaks its contract: no CSV body", api=API
                )
            header = contract.csv_header(text, [], results, "query results")
            contract.csv_columns_match(header, list(columns), results)
            # Counted before a record is used; then typed page by page (a chunk of 50,000
            # records as dicts would be ~70 MB, its CSV text a few).
            count = csv_row_count(text)
            if count and count != chunk.get("number_of_records"):
                raise ContractViolation(
                    f"{results.describe()}: response breaks its contract: a results chunk of "
                    f"{count} rows says Sforce-NumberOfRecords "
                    f"{chunk.get('number_of_records')}",
                    api=API,
                )
            seen += count
            locator = str(chunk.get("locator") or "")
            yield from pages(csv_records(text, columns), size)
            del chunk, text  # the next chunk is fetched without this one still held
            if not locator or locator == "null":
                if seen != expected:
                    raise ContractViolation(
                        f"{results.describe()}: response breaks its contract: the results held "
                        f"{seen} rows but the job processed {expected}",
                        api=API,
                    )
                return

    def _query_results(
        self, object_name: str, job_id: str, locator: str, sf: Salesforce
    ) -> Mapping[str, Any]:
        client = self._bulk(sf, object_name)
        try:
            return client.get_query_results(job_id, locator, self.bulk_result_chunk)
        except (KeyError, ValueError) as exc:
            if isinstance(exc, requests.exceptions.JSONDecodeError):
                raise
            # simple-salesforce reads Sforce-NumberOfRecords as an int and decodes UTF-8.
            raise ContractViolation(
                f"{API} bulk2.query.results {object_name}: response breaks its contract: "
                "no Sforce-NumberOfRecords count or a body that is not UTF-8",
                api=API,
            ) from exc

    def _wait_for_job(self, job_id: str, is_query: bool, object_name: str) -> dict[str, Any]:
        """Poll a Bulk 2.0 job until it ends; ``config.bulk_poll`` bounds the waiting."""
        kind = "query" if is_query else "ingest"
        waited = 0.0
        waits = self.config.bulk_poll.waits()
        poll = Call(f"bulk2.{kind}.poll", object_name)
        while True:
            info = contract.job_info(
                self._call(poll, lambda sf: self._bulk(sf, object_name).get_job(job_id, is_query)),
                poll,
                job_id,
            )
            state = str(info["state"])
            if state == "JobComplete":
                return dict(info)
            if state in ("Failed", "Aborted"):
                reason = short(info.get("errorMessage") or "no error message")
                raise RequestRejected(
                    f"{API} bulk2.{kind} {object_name} job {job_id} ended {state}: {reason}",
                    api=API,
                    code=f"BULK_JOB_{state.upper()}",
                )
            wait = next(waits, None)
            if wait is None:
                self._abort_job(job_id, is_query, object_name)
                raise UpstreamUnavailable(
                    f"{API} bulk2.{kind} {object_name} job {job_id} still {state} after "
                    f"{waited:.0f}s of polling; aborted",
                    api=API,
                    code="BULK_JOB_TIMEOUT",
                )
            self._sleep(wait)
            waited += wait

    def _abort_job(self, job_id: str, is_query: bool, object_name: str) -> None:
        """Best effort: a job we give up on should not go on running."""
        try:
            self._call(
                Call("bulk2.abort", object_name),
                lambda sf: self._bulk(sf, object_name).abort_job(job_id, is_query),
            )
        except (RequestRejected, UpstreamUnavailable, AuthenticationError, QuotaExceeded):
            self._log.warning("salesforce.bulk.abort_failed", job=job_id, object=object_name)

    # --- writes ---------------------------------------------------------------------------

    def create(self, object_name: str, records: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        """Insert records (no ``Id``); results carry the new ids."""
        return self._write("create", object_name, list(records))

    def update(self, object_name: str, records: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        """Update records; each carries its ``Id``.  A None value sets the field null."""
        return self._write("update", object_name, list(records))

    def delete(self, object_name: str, ids: Sequence[str]) -> list[WriteResult]:
        """Delete records by id."""
        return self._write("delete", object_name, [{"Id": rid} for rid in ids])

    def _write(
        self, op: WriteOp, object_name: str, records: list[Mapping[str, Any]]
    ) -> list[WriteResult]:
        name = soqlmod.sobject_name(object_name)
        results: list[WriteResult | None] = [None] * len(records)
        pending: list[tuple[int, dict[str, Any]]] = []
        for index, record in enumerate(records):
            prepared = _prepare(op, index, record)
            if isinstance(prepared, WriteResult):
                results[index] = prepared
            else:
                pending.append((index, prepared))

        attempt = 0
        while pending:
            outcome = self._submit(op, name, pending)
            locked: list[tuple[int, dict[str, Any]]] = []
            for index, prepared in pending:
                result = outcome[index]
                results[index] = result
                if not result.success and result.code == LOCK_CODE:
                    locked.append((index, prepared))
            if not locked or attempt >= self.config.lock_retries:
                break
            wait = self.config.retry.backoff(attempt)
            self._log.info(
                "salesforce.write.lock_retry",
                operation=op,
                object=name,
                records=len(locked),
                attempt=attempt + 1,
                wait=wait,
            )
            self._sleep(wait)
            attempt += 1
            pending = locked

        final = [r for r in results if r is not None]
        assert len(final) == len(records)
        failed = sum(1 for r in final if not r.success)
        self._log.info(
            "salesforce.write", operation=op, object=name, records=len(final), failed=failed
        )
        return final

    def _submit(
        self, op: WriteOp, object_name: str, pending: Sequence[tuple[int, dict[str, Any]]]
    ) -> dict[int, WriteResult]:
        if len(pending) > self.config.bulk_threshold:
            return self._bulk_ingest(op, object_name, pending)
        return self._collections(op, object_name, pending)

    def _collections(
        self, op: WriteOp, object_name: str, pending: Sequence[tuple[int, dict[str, Any]]]
    ) -> dict[int, WriteResult]:
        out: dict[int, WriteResult] = {}
        timeout = self.config.timeout
        call = Call(f"collections.{op}", object_name, idempotent=op != "create")
        for chunk in batched(pending, COLLECTION_SIZE):
            send = partial(_send_collection, op, object_name, chunk, timeout)
            response = self._call(call, send)
            items = contract.collection_results(response, len(chunk), call)
            for (index, record), item in zip(chunk, items, strict=True):
                out[index] = _collection_result(op, index, record, item)
        return out

    def _bulk_ingest(
        self, op: WriteOp, object_name: str, pending: Sequence[tuple[int, dict[str, Any]]]
    ) -> dict[int, WriteResult]:
        header = _ingest_header(op, pending)
        head = csv_line(header)
        parts: list[tuple[list[tuple[int, dict[str, Any]]], list[str]]] = []
        size = len(head.encode())
        for index, record in pending:
            cells = [csv_cell(record[k]) if k in record else "" for k in header]
            line = csv_line(cells)
            length = len(line.encode())
            if not parts or size + length > self.bulk_upload_bytes:
                parts.append(([], []))
                size = len(head.encode())
            parts[-1][0].append((index, record))
            parts[-1][1].append(line)
            size += length
        out: dict[int, WriteResult] = {}
        for rows, lines in parts:
            out.update(self._ingest_job(op, object_name, header, rows, head + "".join(lines)))
        return out

    def _ingest_job(
        self,
        op: WriteOp,
        object_name: str,
        header: list[str],
        rows: Sequence[tuple[int, dict[str, Any]]],
        data: str,
    ) -> dict[int, WriteResult]:
        create = Call("bulk2.ingest.create_job", object_name)
        job = contract.job_info(
            self._call(
                create, lambda sf: self._bulk(sf, object_name).create_job(_BULK_OPERATIONS[op])
            ),
            create,
        )
        job_id = str(job["id"])
        self._log.info(
            "salesforce.bulk.ingest",
            operation=op,
            object=object_name,
            job=job_id,
            records=len(rows),
        )
        try:
            self._call(
                Call("bulk2.ingest.upload", object_name),
                lambda sf: self._bulk(sf, object_name).upload_job_data(job_id, data),
            )
            self._call(
                Call("bulk2.ingest.close", object_name),
                lambda sf: self._bulk(sf, object_name).close_job(job_id),
            )
        except Exception:
            self._abort_job(job_id, False, object_name)
            raise
        job_info = self._wait_for_job(job_id, False, object_name)
        # Result files the job info says are empty are not fetched (one call each saved).
        results_call = Call("bulk2.ingest.results", object_name)
        failed_count = contract.job_count(job_info, "numberRecordsFailed", results_call)
        processed_count = contract.job_count(job_info, "numberRecordsProcessed", results_call)
        if failed_count > processed_count or processed_count > len(rows):
            raise ContractViolation(
                f"{results_call.describe()}: response breaks its contract: job {job_id} "
                f"counts {processed_count} processed, {failed_count} failed of {len(rows)} sent",
                api=API,
            )
        required: dict[str, list[str]] = {
            ResultsType.successful: ["sf__Id", "sf__Created", *header],
            ResultsType.failed: ["sf__Id", "sf__Error", *header],
            ResultsType.unprocessed: list(header),
        }

        def results(kind: str) -> str:
            text = self._call(
                results_call,
                lambda sf: self._bulk(sf, object_name).get_ingest_results(job_id, kind),
            )
            if not isinstance(text, str):
                raise ContractViolation(
                    f"{results_call.describe()}: response breaks its contract: no CSV body",
                    api=API,
                )
            contract.csv_header(text, required[kind], results_call, f"{kind} results")
            return text

        matcher = ResultMatcher(header)
        by_index = dict(rows)
        for index, record in rows:
            matcher.add(index, [csv_cell(record[k]) if k in record else "" for k in header])
        out: dict[int, WriteResult] = {}
        unmatched = 0
        # Result files are kept as text, counted, then read row by row (not as lists of
        # dicts: a 10,000-row job's successful results alone would be ~6 MB of them).
        succeeded_text = results(ResultsType.successful)
        failed_text = "" if failed_count == 0 else results(ResultsType.failed)
        all_processed = processed_count >= len(rows)
        unprocessed_text = "" if all_processed else results(ResultsType.unprocessed)
        counted = (
            csv_row_count(succeeded_text),
            csv_row_count(failed_text),
            csv_row_count(unprocessed_text),
        )
        if counted != (processed_count - failed_count, failed_count, len(rows) - processed_count):
            raise ContractViolation(
                f"{results_call.describe()}: response breaks its contract: job {job_id} result "
                f"files hold {counted[0]} successful, {counted[1]} failed, {counted[2]} "
                f"unprocessed rows; the job counted {processed_count} processed, "
                f"{failed_count} failed of {len(rows)} sent",
                api=API,
            )
        for row in result_rows(succeeded_text):
            found = matcher.match(row)
            if found is None:
                unmatched += 1
                continue
            rid = row.get("sf__Id") or by_index[found].get("Id")
            out[found] = WriteResult(found, rid or None, True)
        for row in result_rows(failed_text):
            found = matcher.match(row)
            if found is None:
                unmatched += 1
                continue
            info = bulk_error(row.get("sf__Error") or "")
            rid = row.get("sf__Id") or by_index[found].get("Id")
            out[found] = WriteResult(found, rid or None, False, info.code, info.message)
        for row in result_rows(unprocessed_text):
            found = matcher.match(row)
            if found is None:
                unmatched += 1
                continue
            out[found] = WriteResult(
                found,
                by_index[found].get("Id"),
                False,
                "UNPROCESSED",
                "Bulk 2.0 did not process this record",
            )
        for index, record in rows:
            if index not in out:
                out[index] = WriteResult(
                    index,
                    record.get("Id"),
                    False,
                    "BULK_RESULT_MISSING",
                    f"job {job_id} reported no result for this record",
                )
        if unmatched:
            self._log.warning(
                "salesforce.bulk.unmatched_results", job=job_id, object=object_name, rows=unmatched
            )
        return out


# --- helpers ------------------------------------------------------------------------------


def _query_more(
    sf: Salesforce, *, url: str, headers: dict[str, str], timeout: tuple[float, float]
) -> Any:
    return sf.query_more(url, identifier_is_url=True, headers=headers, timeout=timeout)


def _send_collection(
    op: WriteOp,
    object_name: str,
    chunk: Sequence[tuple[int, Mapping[str, Any]]],
    timeout: tuple[float, float],
    sf: Salesforce,
) -> Any:
    """One sObject Collections call (allOrNone=false: each record stands alone)."""
    if op == "delete":
        params = {"ids": ",".join(str(r["Id"]) for _, r in chunk), "allOrNone": "false"}
        return sf.restful("composite/sobjects", params=params, method="DELETE", timeout=timeout)
    body = {
        "allOrNone": False,
        "records": [{"attributes": {"type": object_name}, **r} for _, r in chunk],
    }
    method = "POST" if op == "create" else "PATCH"
    return sf.restful("composite/sobjects", method=method, json=body, timeout=timeout)


def _selected_paths(soql: str) -> list[str]:
    """The plain field paths of the SELECT list (no functions, no subqueries)."""
    try:
        items = soqlmod.select_fields(soql)
    except ValueError:
        return []
    paths = []
    for item in items:
        try:
            paths.append(soqlmod.field(item))
        except ValueError:
            continue
    return paths


def _field_named(describe: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    for item in describe.get("fields") or ():
        if str(item.get("name") or "").lower() == name.lower():
            return dict(item)
    return None


def _prepare(op: WriteOp, index: int, record: Mapping[str, Any]) -> dict[str, Any] | WriteResult:
    """The record as it goes on the wire, or a local failure (never sent)."""

    def fail(code: str, message: str, fields: tuple[str, ...] = ()) -> WriteResult:
        return WriteResult(index, record_id, False, code, message, fields)

    record_id: str | None = None
    if not isinstance(record, Mapping):
        return fail("INVALID_RECORD", f"expected a mapping, got {type(record).__name__}")
    id_keys = [k for k in record if isinstance(k, str) and k.lower() == "id"]
    raw_id = record[id_keys[0]] if id_keys else None
    if op == "create":
        if raw_id is not None:
            return fail(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                "a record to create must not carry an Id",
                ("Id",),
            )
    else:
        if raw_id is None:
            return fail("MISSING_ID", f"a record to {op} needs its Id", ("Id",))
        try:
            record_id = normalize(raw_id)
        except InvalidId:
            return fail("MALFORMED_ID", f"not a valid Salesforce Id: {str(raw_id)[:40]!r}", ("Id",))
    if op == "delete":
        return {"Id": record_id}
    out: dict[str, Any] = {"Id": record_id} if record_id else {}
    for key, value in record.items():
        if key in id_keys:
            continue
        try:
            soqlmod.field(key)
        except ValueError:
            return fail("INVALID_FIELD", f"not a field name: {str(key)[:80]!r}")
        if "." in key:
            return fail("INVALID_FIELD", f"cannot write a relationship path: {key}", (key,))
        try:
            out[key] = jsonable(value)
        except (TypeError, ValueError) as exc:
            return fail("INVALID_VALUE", f"{key}: {exc}", (key,))
    return out


def _collection_result(
    op: WriteOp, index: int, record: Mapping[str, Any], item: Any
) -> WriteResult:
    own_id = record.get("Id")
    if not isinstance(item, Mapping):
        return WriteResult(index, own_id, False, "NO_RESULT", "the API returned no result for it")
    rid = item.get("id") or own_id
    if item.get("success"):
        return WriteResult(index, str(rid) if rid else None, True)
    info = error_info(item.get("errors") or [])
    return WriteResult(
        index, str(rid) if rid else None, False, info.code or "UNKNOWN", info.message, info.fields
    )


def _ingest_header(op: WriteOp, pending: Sequence[tuple[int, Mapping[str, Any]]]) -> list[str]:
    if op == "delete":
        return ["Id"]
    header: dict[str, None] = {"Id": None} if op == "update" else {}
    for _, record in pending:
        for key in record:
            header.setdefault(key, None)
    return list(header)
