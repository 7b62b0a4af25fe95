"""The Salesforce REST / Bulk 2.0 emulator: an ``app(Request) -> Response`` callable.

    emu = SalesforceEmulator()
    emu.load("User", users)
    with EmulatorServer(emu, ssl_context=tls.server_context) as server:
        sf = Salesforce(instance_url=server.url, session_id=emu.issue_token(), session=...)

Every data call (``/services/data/vNN.N/...``, 20.0 <= NN.N <= 66.0) goes through the same
gate: fault latency, session check (401 ``INVALID_SESSION_ID``), the daily quota (403
``REQUEST_LIMIT_EXCEEDED``), injected 429/503, then it counts one API request and is
answered with ``Sforce-Limit-Info: api-usage=N/M``.  Every call lands in the request log.

Admin endpoints for manual tries (not counted, no auth): ``GET|PUT|DELETE /__emulator/faults``,
``GET|DELETE /__emulator/log``, ``POST /__emulator/sessions/expire``,
``POST /__emulator/tokens``, ``GET|PUT /__emulator/clock``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from emulators.faults import Faults
from emulators.http import Request, Response
from emulators.profile import Profile, profile_named
from emulators.requestlog import Kind, RequestLog
from emulators.salesforce import schema as sf_schema
from emulators.salesforce.auth import SalesforceCredentials, Sessions, TokenEndpoint
from emulators.salesforce.bulk2 import RESULT_KINDS, Bulk2Api
from emulators.salesforce.composite import CollectionsApi, CompositeApi
from emulators.salesforce.context import ApiError, Call
from emulators.salesforce.org import Org, RecordFailure, SalesforceApiError
from emulators.salesforce.query import Cursors
from emulators.salesforce.rest import RestApi
from emulators.store import Clock, Table
from emulators.tamper import answer_before, rewrite

__all__ = ["SalesforceApiError", "SalesforceCredentials", "SalesforceEmulator"]

MIN_VERSION = 20.0
MAX_VERSION = 66.0
_DATA_PATH = re.compile(r"^/services/data/v(\d{2}\.\d)(?:/(.*))?$")
_SEASONS = ("Winter", "Spring", "Summer")

Handler = Callable[[Call], Response]


def _release_label(major: int) -> str:
    """v20.0 was Winter '11; three releases a year."""
    k = major - 20
    return f"{_SEASONS[k % 3]} '{11 + k // 3:02d}"


_FROM = re.compile(r"\bFROM\s+(\w+)", re.IGNORECASE)


def _query_object(request: Request) -> str | None:
    """The object a ``?q=`` query reads, for tamper rules matched before it runs."""
    match = _FROM.search(request.param("q") or "")
    return match.group(1) if match else None


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response.json([{"message": message, "errorCode": code}], status, headers)


class SalesforceEmulator:
    """A fake Salesforce org served over REST and Bulk API 2.0."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        log: RequestLog | None = None,
        credentials: SalesforceCredentials | None = None,
        daily_api_max: int = 5_000_000,
        session_ttl_seconds: int = 7200,
        profile: Profile | str | None = None,
    ) -> None:
        self.clock = clock or Clock()
        self.log = log or RequestLog()
        self.faults = Faults()
        self.profile = profile_named(profile)
        self.credentials = credentials or SalesforceCredentials()
        self.daily_api_max = daily_api_max
        self.org = Org(self.clock, profile=self.profile)
        self.sessions = Sessions(
            self.clock, self.faults, self.credentials.static_token, session_ttl_seconds
        )
        self.token_endpoint = TokenEndpoint(
            self.credentials,
            self.sessions,
            self.clock,
            self.org.org_id,
            self.org.integration_user_id,
            my_domain_rule=self.profile.my_domain_rule,
            is_sandbox=lambda: self.org.is_sandbox,
        )
        self.cursors = Cursors(self.clock)
        self.rest = RestApi(self)
        self.collections = CollectionsApi(self)
        self.composite = CompositeApi(self)
        self.bulk2 = Bulk2Api(self)
        self._usage_lock = threading.Lock()
        self._api_usage = 0

    # -- public state ------------------------------------------------------------------------
    @property
    def tables(self) -> dict[str, Table]:
        return self.org.tables

    @property
    def api_usage(self) -> int:
        """Calls counted against the daily allocation so far."""
        return self._api_usage

    @api_usage.setter
    def api_usage(self, value: int) -> None:
        with self._usage_lock:
            self._api_usage = value

    @property
    def api_max(self) -> int:
        """The allocation shown in ``Sforce-Limit-Info`` and ``/limits`` (the quota if set)."""
        quota = self.faults.settings.daily_quota
        return quota if quota is not None else self.daily_api_max

    def limits(self) -> dict[str, Any]:
        """The ``/limits`` body."""
        used = self._api_usage
        api_max = self.api_max

        def entry(maximum: int, used: int = 0) -> dict[str, int]:
            return {"Max": maximum, "Remaining": max(0, maximum - used)}

        return {
            "ConcurrentAsyncGetReportInstances": entry(200),
            "ConcurrentSyncReportRuns": entry(20),
            "DailyApiRequests": entry(api_max, used),
            "DailyAsyncApexExecutions": entry(250_000),
            "DailyBulkApiBatches": entry(15_000, self.bulk2.batches_used),
            "DailyBulkV2QueryFileStorageMB": entry(976_562),
            "DailyBulkV2QueryJobs": entry(10_000, self.bulk2.query_jobs_used),
            "DataStorageMB": entry(1_024, sum(len(t) for t in self.tables.values()) // 500),
            "FileStorageMB": entry(1_024),
            "HourlyTimeBasedWorkflow": entry(1_000),
        }

    # -- an admin's Setup pages (org configuration; not logged, not counted) -----------------
    def add_picklist_values(self, object_name: str, field_name: str, *values: str) -> None:
        """Add values to a picklist (e.g. Team Roles: Setup > Account Teams > Team Roles)."""
        schema = self.org.schema_of(self._name(object_name))
        fdef = schema.field(field_name)
        if fdef is None:
            raise KeyError(f"{schema.name} has no field {field_name!r}")
        merged = tuple(dict.fromkeys((*fdef.picklist, *values)))
        schema.replace_field(fdef.name, picklist=merged)

    def remove_picklist_values(self, object_name: str, field_name: str, *values: str) -> None:
        schema = self.org.schema_of(self._name(object_name))
        fdef = schema.field(field_name)
        if fdef is None:
            raise KeyError(f"{schema.name} has no field {field_name!r}")
        drop = set(values)
        schema.replace_field(fdef.name, picklist=tuple(v for v in fdef.picklist if v not in drop))

    def picklist_values(self, object_name: str, field_name: str) -> tuple[str, ...]:
        fdef = self.org.schema_of(self._name(object_name)).field(field_name)
        return fdef.picklist if fdef is not None else ()

    def set_field_access(
        self, object_name: str, field_name: str, *, readable: bool = True, editable: bool = True
    ) -> None:
        """Field-level security of the integration user: hide a field, or make it read-only."""
        schema = self.org.schema_of(self._name(object_name))
        original = next((f for f in schema.fields if f.name.lower() == field_name.lower()), None)
        if original is None:
            raise KeyError(f"{schema.name} has no field {field_name!r}")
        base = sf_schema.OBJECTS[schema.name].field(original.name)
        assert base is not None
        schema.replace_field(
            original.name,
            readable=readable,
            createable=base.createable and editable,
            updateable=base.updateable and editable,
        )

    def remove_field(self, object_name: str, field_name: str) -> None:
        """The field does not exist in this org (never created, or deleted)."""
        self.set_field_access(object_name, field_name, readable=False, editable=False)

    def set_org_defaults(self, **levels: str) -> None:
        """Organization-wide defaults: ``set_org_defaults(Opportunity="Edit", Case="Read")``."""
        self.org.set_org_defaults(**levels)

    @property
    def account_teams_enabled(self) -> bool:
        return "AccountTeamMember" not in self.org.hidden_objects

    @account_teams_enabled.setter
    def account_teams_enabled(self, enabled: bool) -> None:
        if enabled:
            self.org.hidden_objects.discard("AccountTeamMember")
        else:
            self.org.hidden_objects.add("AccountTeamMember")

    @property
    def is_sandbox(self) -> bool:
        return self.org.is_sandbox

    @is_sandbox.setter
    def is_sandbox(self, value: bool) -> None:
        self.org.is_sandbox = value

    def prepare_for_teamsync(self, team_roles: Iterable[str] = sf_schema.TEAM_ROLES) -> None:
        """What the admin checklist asks for: the Team Role values teamsync writes and reads."""
        self.add_picklist_values("AccountTeamMember", "TeamMemberRole", *team_roles)

    # -- helpers for tests ("a human in the UI") --------------------------------------------
    def load(self, object_name: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Seed rows fast: no validation, no log; fills calculated fields. Returns rows loaded."""
        return self.org.load(object_name, rows)

    def _direct(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except RecordFailure as exc:
            if exc.status == 404:
                raise SalesforceApiError(
                    404,
                    [
                        {
                            "message": "The requested resource does not exist",
                            "errorCode": "NOT_FOUND",
                        }
                    ],
                ) from None
            raise SalesforceApiError(exc.status, [e.rest() for e in exc.errors]) from None

    def _name(self, object_name: str) -> str:
        table = self.org.table(object_name)
        if table is None:
            raise SalesforceApiError(
                404,
                [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}],
            )
        return table.schema.name

    def create(self, object_name: str, values: Mapping[str, Any]) -> str:
        """Create with API validation; not logged, not counted."""
        name = self._name(object_name)
        return str(self._direct(lambda: self.org.create(name, values)))

    def update(
        self,
        object_name: str,
        record_id: str,
        values: Mapping[str, Any],
        *,
        keep_account_team: bool = False,
    ) -> None:
        """Update with API validation (another integration's call); an Account owner change
        deletes the account team under the strict profile unless ``keep_account_team``."""
        name = self._name(object_name)
        self._direct(
            lambda: self.org.update(
                name,
                self.org.canonical_id(name, record_id),
                values,
                keep_account_team=keep_account_team,
            )
        )

    def delete(self, object_name: str, record_id: str) -> None:
        name = self._name(object_name)
        self._direct(lambda: self.org.delete(name, self.org.canonical_id(name, record_id)))

    def get(self, object_name: str, record_id: str) -> dict[str, Any] | None:
        """Internal values of a row (soft-deleted rows included, with IsDeleted), or None."""
        name = self._name(object_name)
        try:
            rid = self.org.canonical_id(name, record_id)
        except RecordFailure:
            return None
        return self.org.tables[name].get(rid, include_deleted=True)

    def issue_token(self) -> str:
        """A fresh valid session token, as the OAuth endpoint would issue."""
        return self.sessions.issue()

    def expire_sessions(self) -> None:
        """Every issued session (the static one too) becomes invalid."""
        self.sessions.expire_all()

    # -- HTTP --------------------------------------------------------------------------------
    def __call__(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        base_url = f"https://{request.headers.get('Host') or 'localhost'}"
        if path == "/services/oauth2/token":
            rule = self.faults.tampering.take("oauth.token", None, before=True)
            if rule is not None:
                response = answer_before(rule)
                self._record(request, None, "auth", "oauth.token.tampered", response.status, 0)
                return response
            response, grant = self.token_endpoint(request, base_url)
            rule = self.faults.tampering.take("oauth.token", None, before=False)
            if rule is not None:
                response = rewrite(rule, response, "salesforce")
            self._record(request, None, "auth", f"oauth.token.{grant}", response.status, 0)
            return response
        if path == "/__emulator" or path.startswith("/__emulator/"):
            return self._admin(request, path)
        if path == "/services/data":
            return self._versions(request)
        m = _DATA_PATH.match(path)
        if m is None or not MIN_VERSION <= float(m.group(1)) <= MAX_VERSION:
            response = _error(404, "NOT_FOUND", "The requested resource does not exist")
            self._record(request, None, "read", "not_found", 404, 0)
            return response
        version = m.group(1)
        segments = [s for s in (m.group(2) or "").split("/") if s]
        call = Call(request, request.method.upper(), version, segments, base_url)
        route_error: ApiError | None = None
        handler: Handler | None = None
        try:
            handler = self._resolve(call)
        except ApiError as exc:
            route_error = exc
        self.faults.delay()
        refused = self._gate(request)
        if refused is not None:
            response = refused
        else:
            with self._usage_lock:
                self._api_usage += 1
            rule = self.faults.tampering.take(
                call.operation, call.object or _query_object(request), before=True
            )
            if rule is not None:
                response = answer_before(rule)
                call.records = 0
            elif route_error is not None or handler is None:
                response = (route_error or ApiError.not_found()).response()
            else:
                response = self._run(handler, call)
                rule = self.faults.tampering.take(call.operation, call.object, before=False)
                if rule is not None:
                    response = rewrite(rule, response, "salesforce")
        response.headers["Sforce-Limit-Info"] = f"api-usage={self._api_usage}/{self.api_max}"
        records = call.records if response.status < 400 else 0
        self._record(request, call.object, call.kind, call.operation, response.status, records)
        return response

    def _run(self, handler: Handler, call: Call) -> Response:
        try:
            return handler(call)
        except ApiError as exc:
            return exc.response()
        except RecordFailure as exc:
            return ApiError.from_failure(exc).response()

    def _gate(self, request: Request) -> Response | None:
        """Session, quota and injected faults; None lets the call through."""
        header = request.headers.get("Authorization") or ""
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not self.sessions.use(token.strip()):
            return _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        quota = self.faults.settings.daily_quota
        if quota is not None and self._api_usage >= quota:
            return _error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        status = self.faults.http_fault()
        if status is None:
            return None
        retry = self.faults.retry_after_header()
        if status == 429:
            return _error(429, "REQUEST_LIMIT_EXCEEDED", "Too many requests", retry)
        if status == 503:
            return _error(503, "SERVER_UNAVAILABLE", "Server unavailable", retry)
        if status == 401:
            return _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if status == 403:
            return _error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        return _error(status, "UNKNOWN_EXCEPTION", "An unexpected error occurred", retry)

    def _record(
        self,
        request: Request,
        obj: str | None,
        kind: Kind,
        operation: str,
        status: int,
        records: int,
    ) -> None:
        self.log.record(
            api="salesforce",
            method=request.method,
            path=request.path,
            object=obj,
            kind=kind,
            operation=operation,
            status=status,
            records=records,
        )

    def _versions(self, request: Request) -> Response:
        versions = [
            {
                "label": _release_label(major),
                "url": f"/services/data/v{major}.0",
                "version": f"{major}.0",
            }
            for major in range(int(MIN_VERSION), int(MAX_VERSION) + 1)
        ]
        self._record(request, None, "read", "versions", 200, 0)
        return Response.json(versions)

    # -- routing -----------------------------------------------------------------------------
    def _resolve(self, call: Call) -> Handler:
        """Pick the handler and fill in object / kind / operation for the log."""
        seg = call.segments
        n = len(seg)
        head = seg[0].lower() if seg else ""
        method = call.method

        def allow(*methods: str) -> None:
            if method not in methods:
                raise ApiError.of(
                    405,
                    "METHOD_NOT_ALLOWED",
                    f"HTTP Method '{method}' not allowed. Allowed are {','.join(methods)}",
                )

        def op(operation: str, kind: Kind = "read", obj: str | None = None) -> None:
            call.operation = operation
            call.kind = kind
            if obj is not None:
                table = self.org.table(obj)
                call.object = table.schema.name if table is not None else obj

        if n == 0:
            allow("GET")
            op("resources")
            return self._resources
        if head == "limits" and n == 1:
            allow("GET")
            op("limits")
            return self.rest.limits
        if head in ("query", "queryall") and n in (1, 2):
            allow("GET")
            if n == 1:
                op("query" if head == "query" else "query_all")
                return self.rest.query
            op("query_more")
            return self.rest.query_more
        if head == "sobjects":
            return self._resolve_sobjects(call, allow, op)
        if head == "composite":
            if n == 1:
                allow("POST")
                op("composite")
                return self.composite.composite
            if seg[1].lower() == "sobjects":
                if n == 2:
                    allow("POST", "PATCH", "DELETE")
                    if method == "POST":
                        op("collections.create", "write")
                        return self.collections.create
                    if method == "PATCH":
                        op("collections.update", "write")
                        return self.collections.update
                    op("collections.delete", "write")
                    return self.collections.delete
                if n == 3:
                    allow("GET", "POST")
                    op("collections.retrieve", "read", seg[2])
                    return self.collections.retrieve
                if n == 4:
                    op("collections.upsert", "write", seg[2])
                    raise ApiError.of(
                        404,
                        "NOT_FOUND",
                        f"Provided external ID field does not exist or is not accessible: {seg[3]}",
                    )
        if head == "jobs" and n >= 2:
            return self._resolve_jobs(call, allow, op)
        raise ApiError.not_found()

    def _resolve_sobjects(
        self, call: Call, allow: Callable[..., None], op: Callable[..., None]
    ) -> Handler:
        seg = call.segments
        n = len(seg)
        method = call.method
        if n == 1:
            allow("GET")
            op("describe.global")
            return self.rest.global_describe
        obj = seg[1]
        if n == 2:
            allow("GET", "POST")
            if method == "GET":
                op("sobject.info", "read", obj)
                return self.rest.basic_info
            op("sobject.create", "write", obj)
            return self.rest.create
        third = seg[2].lower()
        if n == 3 and third == "describe":
            allow("GET")
            op("describe", "read", obj)
            return self.rest.describe
        if n == 3 and third in ("updated", "deleted"):
            allow("GET")
            op(f"sobject.{third}", "read", obj)
            return self.rest.updated if third == "updated" else self.rest.deleted
        if n == 3:
            allow("GET", "PATCH", "DELETE")
            if method == "GET":
                op("sobject.get", "read", obj)
                return self.rest.retrieve
            if method == "PATCH":
                op("sobject.update", "write", obj)
                return self.rest.update
            op("sobject.delete", "write", obj)
            return self.rest.delete
        if n == 4:
            op("sobject.external_id", "write" if method != "GET" else "read", obj)
            return self.rest.external_id
        raise ApiError.not_found()

    def _resolve_jobs(
        self, call: Call, allow: Callable[..., None], op: Callable[..., None]
    ) -> Handler:
        seg = call.segments
        n = len(seg)
        method = call.method
        family = seg[1].lower()
        api = self.bulk2
        if family == "ingest":
            kind: Kind = "write"
            if n == 2:
                allow("GET", "POST")
                if method == "POST":
                    op("bulk2.ingest.create", kind)
                    return api.ingest_create
                op("bulk2.ingest.list", kind)
                return api.ingest_list
            if n == 3:
                allow("GET", "PATCH", "DELETE")
                if method == "GET":
                    op("bulk2.ingest.status", kind)
                    return api.ingest_status
                if method == "PATCH":
                    op("bulk2.ingest.state", kind)
                    return api.ingest_state
                op("bulk2.ingest.delete", kind)
                return api.ingest_delete
            if n == 4 and seg[3].lower() == "batches":
                allow("PUT")
                op("bulk2.ingest.upload", kind)
                return api.ingest_upload
            if n == 4 and seg[3].lower() in RESULT_KINDS:
                allow("GET")
                op(f"bulk2.ingest.{RESULT_KINDS[seg[3].lower()]}_results", kind)
                return api.ingest_results
        if family == "query":
            if n == 2:
                allow("GET", "POST")
                if method == "POST":
                    op("bulk2.query.create")
                    return api.query_create
                op("bulk2.query.list")
                return api.query_list
            if n == 3:
                allow("GET", "PATCH", "DELETE")
                if method == "GET":
                    op("bulk2.query.status")
                    return api.query_status
                if method == "PATCH":
                    op("bulk2.query.abort")
                    return api.query_state
                op("bulk2.query.delete")
                return api.query_delete
            if n == 4 and seg[3].lower() == "results":
                allow("GET")
                op("bulk2.query.results")
                return api.query_results
        raise ApiError.not_found()

    def _resources(self, call: Call) -> Response:
        prefix = call.data_prefix
        names = ("sobjects", "query", "queryAll", "limits", "composite", "jobs")
        return Response.json({name: f"{prefix}/{name}" for name in names})

    # -- composite subrequests ---------------------------------------------------------------
    def dispatch_subrequest(
        self, parent: Call, request: Request, body: Any
    ) -> tuple[Response, Call | None]:
        """Serve one composite subrequest: same routing, no gate, no count, no log."""
        path = request.path.rstrip("/")
        m = _DATA_PATH.match(path)
        if m is None or not MIN_VERSION <= float(m.group(1)) <= MAX_VERSION:
            return _error(404, "NOT_FOUND", "The requested resource does not exist"), None
        segments = [s for s in (m.group(2) or "").split("/") if s]
        if (
            segments
            and segments[0].lower() in ("composite", "jobs")
            and not (
                len(segments) >= 2
                and segments[0].lower() == "composite"
                and segments[1].lower() == "sobjects"
            )
        ):
            return _error(
                400,
                "INVALID_API_INPUT",
                f"The resource {path} is not supported in a composite request",
            ), None
        call = Call(request, request.method.upper(), m.group(1), segments, parent.base_url, body)
        try:
            handler = self._resolve(call)
        except ApiError as exc:
            return exc.response(), call
        return self._run(handler, call), call

    # -- admin -------------------------------------------------------------------------------
    def _admin(self, request: Request, path: str) -> Response:
        what = path[len("/__emulator") :].strip("/")
        method = request.method.upper()
        try:
            body = request.json() if request.body else {}
        except ValueError:
            return Response.json({"error": "invalid JSON"}, 400)
        if what == "faults":
            if method in ("PUT", "POST", "PATCH"):
                settings = dict(body)
                fail_next = settings.pop("fail_next", None)
                tamper = settings.pop("tamper", [])
                try:
                    self.faults.configure(**settings)
                    self.faults.tamper_from_json(tamper)
                except (TypeError, ValueError) as exc:
                    return Response.json({"error": str(exc)}, 400)
                if fail_next:
                    self.faults.fail_next(*fail_next)
            elif method == "DELETE":
                self.faults.reset()
            return Response.json(self.faults.as_dict())
        if what == "log":
            if method == "DELETE":
                self.log.reset()
            return Response.json(self.log.snapshot())
        if what == "sessions/expire" and method == "POST":
            self.expire_sessions()
            return Response.empty(204)
        if what == "tokens" and method == "POST":
            return Response.json({"access_token": self.issue_token()})
        if what == "clock":
            if method in ("PUT", "POST"):
                if "set_ms" in body:
                    self.clock.set(int(body["set_ms"]))
                if "advance_ms" in body:
                    self.clock.advance(int(body["advance_ms"]))
            return Response.json({"now_ms": self.clock.now_ms()})
        if what == "usage":
            return Response.json({"api_usage": self._api_usage, "api_max": self.api_max})
        return Response.json({"error": f"unknown admin resource: {what}"}, 404)
