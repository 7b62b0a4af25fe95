"""Gainsight CS (NXT) REST API emulator.

    emu = GainsightEmulator(clock=Clock(1_700_000_000_000))
    emu.load("gsuser", [{"Name": "Jane Doe", "Email": "jane@vendor.com"}])
    with EmulatorServer(emu, ssl_context=tls.server_context) as server:
        ...  # POST {server.url}/v1/data/objects/query/Company with header accesskey

Routes (object names in URLs match case-insensitively):

=====================================================  ===========================  =========
route                                                  operation (request log)      kind
=====================================================  ===========================  =========
``POST /v1/data/objects/query/{Company|GsUser}``       ``company.query`` ...        read
``POST /v1/data/objects/Company``                      ``company.insert``           write
``PUT /v1/data/objects/Company?keys=A,B``              ``company.update``           write
``DELETE /v1/data/objects/Company/{Gsid}``             ``company.delete``           write
``POST /v2/cockpit/cta/``                              ``cta.create``               write
``PUT /v2/cockpit/cta/``                               ``cta.update``               write
``POST /v2/cockpit/cta/list``                          ``cta.list``                 read
``GET /v2/cockpit/admin/picklist/lite?category=...``   ``cta.picklist``             read
``POST /v1/meta/services/objects/describe``            ``describe``                 read
``GET /v1/meta/services/objects/{Object}/describe``    ``describe``                 read
``GET|PUT /__emulator/faults``, ``GET /__emulator/log``, ``POST /__emulator/rate-limit/reset``
  (test controls: no auth, not rate limited, not logged)
=====================================================  ===========================  =========

Every API call: ``accesskey`` header check (401 ``GS_APIG_2401``), then the rate limit (fixed
windows of 60 s and one UTC day on the emulator clock; 429 ``GU_2400`` with ``Retry-After`` =
seconds left in the window; refused calls do not use quota), then ``faults.delay()`` and
``faults.http_fault()``.  Calls refused with 429 / 503 are logged with their operation and
status (``records`` 0).  Auth failures are logged as kind ``auth`` (operation ``auth``),
unknown routes as kind ``read``, operation ``unknown``, status 404 (not rate limited).

Choices the reference leaves UNVERIFIED (connectors must tolerate the real API differing):

- Writes partially failing: HTTP 200, ``result: true``, ``data: {"count": n, "errors": [{"index",
  "record", "errorCode", "errorDesc", "errors": [{"errorMessage", "errorCode", "fieldName",
  "invalidValue"}]}], "records": [...]}``; ``errors`` is null when none failed.  When every
  record fails: HTTP **400**, ``result: false``, top-level ``errorCode``/``errorDesc`` of the
  first failure, same ``data`` (``records: []``).  ``record`` echoes the key fields for an
  update, the whole record for an insert.  Insert answers ``records: [{"Gsid"}]``; update
  answers each record as sent plus its ``Gsid`` (one entry per matched row).
- Whole-call write errors (nothing written): more than 50 records -> 400 ``GSOBJ_1017``
  "Number of records exceeds the limit of 50"; unknown or read-only field -> 400 ``GSOBJ_1002``
  (field names in ``message``); bad lookup config / keys / body -> 400 ``GSOBJ_1008``.
- Per-record write errors: no record matches the keys -> ``GSOBJ_1011`` "No entity matches the
  given criteria"; lookup no match with ``onNoMatch: ERROR`` (the default) -> ``GSOBJ_1011``;
  ``MARKASERROR`` with several matches -> ``GSOBJ_1014``; a lookup field given a GSID that is
  not an existing row -> ``GSOBJ_1004``; over-long text -> ``GSOBJ_1001``; Date -> ``GSOBJ_1006``
  and DateTime -> ``GSOBJ_1005`` (as the error-code article splits them); wrong number ->
  ``GSOBJ_1002``; boolean -> ``GSOBJ_1008``; dropdown name unknown -> ``GSOBJ_1012``; required
  field null -> ``GSOBJ_1007``.  Dropdowns (Company Stage/Status) accept item names or GSIDs.
- Lookups: a record that carries none of a lookup's payload fields leaves the target alone;
  all of them null clears it.  Payload-only source fields (``CsmEmail``) are accepted only
  when a lookup names them.  Matching on EMAIL fields ignores case.
- Reads: ``limit`` defaults to 100; outside 1..5000 -> 400 ``GSOBJ_1008``.  Malformed query
  (operator, expression, non-array value) -> 400 ``GSOBJ_1008``.  Any bad date literal in a
  filter -> 400 ``GSOBJ_1005``.  No rows -> ``result: false`` ``GSOBJ_1011`` "No data found for
  given criteria", HTTP 200 (``no_data_status`` attribute).  Unknown object -> 400
  ``GSOBJ_1023``; unknown route -> 404 ``GSOBJ_1023``.  Matching rules: see
  :mod:`emulators.gainsight.query` (STRING equality is case-sensitive, EMAIL is not).
- CTA create / update answer ``data: [{"referenceId", "Gsid", "success", "errors": [{"errorCode",
  "errorDesc", "fieldName", "invalidValue"}]}]`` in request order; HTTP 200 ``result: true``
  when at least one item succeeded, otherwise 400 ``result: false``.  Create requires Name,
  CompanyId (or SFDCID), type and DueDate; status defaults to New, priority to Medium; owner
  is optional (``OwnerId`` or ``OwnerEmail``).  More than 50 items -> 400 ``COCKPIT_5102``.
- CTA list: rows always carry ``Gsid`` and the base id of each ``X__gr.*`` selection; DueDate
  is stored as a date (a time given on input is dropped, filters compare days) and renders as
  midnight UTC ``2020-04-14T00:00:00Z``; datetimes render like ``2020-04-14T11:30:00Z``
  (``.SSS`` only when non-zero); other dates ``YYYY-MM-DD``; no rows -> ``result: true``,
  ``data: []``; invalid select/where field -> 400 ``COCKPIT_5101``; other malformed input
  (``pageSize`` > 1000, ``name`` instead of ``fieldName``) -> 400 ``COCKPIT_5102``.
  Default order: creation order.
- Picklist lite: ``data: {"CTA_STATUS": [{"gsid", "name", "systemName", "displayOrder",
  "active", "closed"}], ...}``.
- Faults: 429 -> ``GU_2400`` envelope; 500 -> ``GU_1101`` envelope; 502/503/504 -> a plain-text
  body (as a gateway would send).  ``Retry-After`` from ``faults.retry_after_header()``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from emulators.faults import Faults
from emulators.gainsight import cockpit, data_api, describe
from emulators.gainsight import errors as E
from emulators.gainsight.data_api import Outcome, parse_body
from emulators.gainsight.errors import FieldError, GainsightError, envelope
from emulators.gainsight.picklists import Picklists
from emulators.gainsight.tenant import DISPLAY_NAMES, Tenant, object_key
from emulators.http import Request, Response
from emulators.profile import Profile, profile_named
from emulators.requestlog import Kind, RequestLog
from emulators.store import Clock, Table
from emulators.tamper import answer_before, rewrite

API = "gainsight"
MINUTE_MS = 60_000
DAY_MS = 86_400_000

_QUERY = re.compile(r"^/v1/data/objects/query/([^/]+)/?$", re.IGNORECASE)
_OBJECT = re.compile(r"^/v1/data/objects/([^/]+)/?$", re.IGNORECASE)
_OBJECT_ID = re.compile(r"^/v1/data/objects/([^/]+)/([^/]+)/?$", re.IGNORECASE)
_CTA = re.compile(r"^/v2/cockpit/cta/?$", re.IGNORECASE)
_CTA_LIST = re.compile(r"^/v2/cockpit/cta/list/?$", re.IGNORECASE)
_PICKLIST = re.compile(r"^/v2/cockpit/admin/picklist/lite/?$", re.IGNORECASE)
_DESCRIBE = re.compile(r"^/v1/meta/services/objects/describe/?$", re.IGNORECASE)
_DESCRIBE_ONE = re.compile(r"^/v1/meta/services/objects/([^/]+)/describe/?$", re.IGNORECASE)

Handler = Callable[[Request], Outcome]


class RateLimiter:
    """Fixed windows (a clock minute, a UTC day) counting every accepted call."""

    def __init__(self, clock: Clock, per_minute: int, per_day: int) -> None:
        self.clock = clock
        self.per_minute = per_minute
        self.per_day = per_day
        self._lock = threading.Lock()
        self._minute = (-1, 0)  # (window index, calls)
        self._day = (-1, 0)

    def acquire(self) -> tuple[str, int] | None:
        """Count a call, or refuse it: (reason, seconds until the window ends)."""
        now = self.clock.now_ms()
        minute, day = now // MINUTE_MS, now // DAY_MS
        with self._lock:
            m_calls = self._minute[1] if self._minute[0] == minute else 0
            d_calls = self._day[1] if self._day[0] == day else 0
            if d_calls >= self.per_day:
                return "day", _seconds_left(now, DAY_MS)
            if m_calls >= self.per_minute:
                return "minute", _seconds_left(now, MINUTE_MS)
            self._minute = (minute, m_calls + 1)
            self._day = (day, d_calls + 1)
        return None

    def reset(self) -> None:
        with self._lock:
            self._minute = (-1, 0)
            self._day = (-1, 0)


def _seconds_left(now: int, window: int) -> int:
    left_ms = window - now % window
    return max(1, -(-left_ms // 1000))


class GainsightEmulator:
    """The Gainsight REST API as an ``app(Request) -> Response`` callable."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        log: RequestLog | None = None,
        access_key: str = "teamsync-emulator-gainsight-key",
        rate_limit_per_minute: int = 100,
        daily_limit: int = 50_000,
        max_read_limit: int = 5_000,
        max_write_records: int = 50,
        profile: Profile | str | None = None,
    ) -> None:
        self.clock = clock or Clock()
        self.log = log or RequestLog()
        self.faults = Faults()
        self.profile = profile_named(profile)
        self.access_key = access_key
        self.max_read_limit = max_read_limit
        self.max_write_records = max_write_records
        self.no_data_status = 200  # the "No data found" envelope's HTTP status (200 or 400)
        self.picklists = Picklists()
        self._tenant = Tenant(self.clock, self.picklists, self.profile)
        self.tables: dict[str, Table] = self._tenant.tables
        self._limiter = RateLimiter(self.clock, rate_limit_per_minute, daily_limit)

    # -- settings --------------------------------------------------------------------------
    @property
    def rate_limit_per_minute(self) -> int:
        return self._limiter.per_minute

    @rate_limit_per_minute.setter
    def rate_limit_per_minute(self, value: int) -> None:
        self._limiter.per_minute = value

    @property
    def daily_limit(self) -> int:
        return self._limiter.per_day

    @daily_limit.setter
    def daily_limit(self, value: int) -> None:
        self._limiter.per_day = value

    def reset_rate_limit(self) -> None:
        self._limiter.reset()

    # -- tenant switches and an admin's configuration ---------------------------------------
    @property
    def gsid_sortable(self) -> bool:
        """G4 (UNVERIFIED): False refuses ordering and range filters on Gsid."""
        return self._tenant.gsid_sortable

    @gsid_sortable.setter
    def gsid_sortable(self, value: bool) -> None:
        self._tenant.gsid_sortable = bool(value)
        for table in self.tables.values():
            if table.schema.field("Gsid") is not None:
                table.schema.replace_field("Gsid", sortable=bool(value))

    @property
    def filter_time_zone(self) -> str | None:
        """G3 (UNVERIFIED): the zone date filter values without an offset are read in."""
        return self._tenant.filter_time_zone

    @filter_time_zone.setter
    def filter_time_zone(self, zone: str | None) -> None:
        if zone is not None:
            ZoneInfo(zone)  # unknown zones fail here, not in the middle of a query
        self._tenant.filter_time_zone = zone

    def refuse_record(self, gsid: str, code: str = "GSOBJ_1001", desc: str | None = None) -> None:
        """Make updates of this record fail validation (None code: stop refusing it)."""
        if not code:
            self._tenant.invalid_records.pop(gsid, None)
            return
        reason = desc or f"Field exceeds maximum allowed length (record {gsid})"
        self._tenant.invalid_records[gsid] = (code, reason)

    def remove_field(self, object_name: str, field_name: str) -> None:
        """This tenant has no such field (another edition, or never created by the admin)."""
        schema = self.tables[self._object(object_name)].schema
        schema.replace_field(field_name, readable=False)

    def score_gsid(self, score: float) -> str:
        """The scoring scheme row of a numeric score (strict profile)."""
        return self._tenant.score_gsid(score)

    def stored_score(self, value: Any, field_name: str = "CurrentScore") -> Any:
        """What Company.<field> stores for this score on this tenant (for tests writing raw
        rows): a number where the field is a number; where it is a scheme lookup (G1), the Gsid
        of a scheme row whose Score is ``value`` - any value, so poison reads through too."""
        if value is None or not self._tenant.score_is_lookup(field_name):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return self._tenant.score_gsid(value)
        return self._tenant.insert("scoringschemedefinition", {"Name": str(value), "Score": value})

    @property
    def delete_log(self) -> list[dict[str, Any]]:
        """Deleted records: ``{"RecordId", "ObjectName", "DeletedOn"}``."""
        return self._tenant.delete_log

    # -- seeding and "UI" helpers ------------------------------------------------------------
    def load(self, object_name: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Fast seeding: no validation, no log, no rate limit.  Returns rows loaded."""
        obj = self._object(object_name)
        tenant = self._tenant
        n = 0
        with tenant.write_lock:
            for row in rows:
                tenant.insert(obj, tenant.load_row(obj, row))
                n += 1
        return n

    def create(self, object_name: str, values: Mapping[str, Any]) -> str:
        """Create one record as a user in the UI would (validated); returns its Gsid."""
        obj = self._object(object_name)
        tenant = self._tenant
        with tenant.write_lock:
            if obj == "calltoaction":
                gsid, problems = cockpit.create_one(tenant, values)
                _raise_problems(problems)
                assert gsid is not None
                return gsid
            stored = self._validated(obj, values, create=True)
            return tenant.insert(obj, stored)

    def update(self, object_name: str, gsid: str, values: Mapping[str, Any]) -> None:
        """Change one record as a user in the UI would (validated, ModifiedDate moves)."""
        obj = self._object(object_name)
        tenant = self._tenant
        with tenant.write_lock:
            if gsid not in self.tables[obj].rows:
                raise KeyError(f"no {DISPLAY_NAMES[obj]} {gsid}")
            if obj == "calltoaction":
                _, problems = cockpit.update_one(tenant, {**values, "Gsid": gsid})
                _raise_problems(problems)
                return
            tenant.update(obj, gsid, self._validated(obj, values, create=False))

    def get(self, object_name: str, gsid: str) -> dict[str, Any] | None:
        """The stored record (dates as epoch ms, dropdowns as item GSIDs), or None."""
        return self.tables[self._object(object_name)].get(gsid)

    def _validated(self, obj: str, values: Mapping[str, Any], *, create: bool) -> dict[str, Any]:
        schema = self.tables[obj].schema
        out: dict[str, Any] = {}
        problems: list[FieldError] = []
        for name, given in values.items():
            fd = schema.field(name)
            if fd is None:
                raise KeyError(f"{schema.name} has no field {name!r}")
            raw = given
            if obj == "company" and isinstance(raw, int | float) and not isinstance(raw, bool):
                if self._tenant.score_is_lookup(fd.name):
                    raw = self._tenant.score_gsid(raw)  # a CSM picks a score in the UI
            try:
                out[fd.name] = self._tenant.coerce(obj, fd, raw)
            except FieldError as err:
                problems.append(err)
        if create:
            for fd in schema.fields:
                if fd.required and out.get(fd.name) is None:
                    problems.append(FieldError(E.NOT_NULLABLE, f"{fd.name} is required", fd.name))
        _raise_problems(problems)
        return out

    @staticmethod
    def _object(object_name: str) -> str:
        obj = object_key(object_name)
        if obj is None:
            raise KeyError(f"unknown Gainsight object {object_name!r}")
        return obj

    # -- HTTP --------------------------------------------------------------------------------
    def __call__(self, request: Request) -> Response:
        if request.path.startswith("/__emulator"):
            return self._admin(request)
        key = request.headers.get("accesskey")
        if key != self.access_key:
            self._record(request, None, "auth", "auth", 401, 0)
            body = envelope(
                None, result=False, code=E.UNAUTHORIZED, desc="Unauthorized", message="Unauthorized"
            )
            return Response.json(body, 401)
        route = self._route(request)
        if route is None:
            body = envelope(None, result=False, code=E.INVALID_PATH, desc=E.INVALID_PATH_DESC)
            self._record(request, None, "read", "unknown", 404, 0)
            return Response.json(body, 404)
        handler, obj, kind, operation = route
        refused = self._limiter.acquire()
        if refused is not None:
            window, seconds = refused
            self._record(request, obj, kind, operation, 429, 0)
            limit = self.rate_limit_per_minute if window == "minute" else self.daily_limit
            body = envelope(
                None,
                result=False,
                code=E.RATE_LIMITED,
                desc="Too many requests",
                message=f"Rate limit of {limit} calls per {window} exceeded",
            )
            return Response.json(body, 429, {"Retry-After": str(seconds)})
        self.faults.delay()
        status = self.faults.http_fault()
        if status is not None:
            self._record(request, obj, kind, operation, status, 0)
            return self._fault_response(status)
        rule = self.faults.tampering.take(operation, obj, before=True)
        if rule is not None:
            response = answer_before(rule)
            self._record(request, obj, kind, operation, response.status, 0)
            return response
        try:
            outcome = handler(request)
        except GainsightError as err:
            outcome = Outcome(err.status, err.body(), 0, err.headers)
        response = Response.json(outcome.body, outcome.status, outcome.headers)
        rule = self.faults.tampering.take(operation, obj, before=False)
        if rule is not None:
            response = rewrite(rule, response, API)
        self._record(request, obj, kind, operation, response.status, outcome.records)
        return response

    def _fault_response(self, status: int) -> Response:
        headers = self.faults.retry_after_header()
        if status == 429:
            body = envelope(None, result=False, code=E.RATE_LIMITED, desc="Too many requests")
            return Response.json(body, 429, headers)
        if status in (502, 503, 504):
            return Response.text("Service Unavailable", status, headers=headers)
        code = E.SERVER_ERROR if status >= 500 else None
        body = envelope(None, result=False, code=code, desc="Oops, something went wrong.")
        return Response.json(body, status, headers)

    def _route(self, request: Request) -> tuple[Handler, str | None, Kind, str] | None:
        method, path = request.method.upper(), request.path
        tenant = self._tenant
        if m := _QUERY.match(path):
            if method != "POST":
                return None
            obj = object_key(m.group(1))
            if obj not in ("company", "gsuser"):
                return _unknown_object(m.group(1)), m.group(1), "read", "query"

            def read(req: Request, obj: str = obj) -> Outcome:
                return data_api.query(
                    tenant,
                    obj,
                    parse_body(req.body),
                    max_limit=self.max_read_limit,
                    no_data_status=self.no_data_status,
                )

            return read, DISPLAY_NAMES[obj], "read", f"{obj}.query"
        if m := _CTA_LIST.match(path):
            if method != "POST":
                return None
            return (
                lambda req: cockpit.list_ctas(tenant, _cockpit_body(req)),
                "CallToAction",
                "read",
                "cta.list",
            )
        if _CTA.match(path):
            if method == "POST":
                return (
                    lambda req: cockpit.create(
                        tenant, _cockpit_body(req), max_items=self.max_write_records
                    ),
                    "CallToAction",
                    "write",
                    "cta.create",
                )
            if method == "PUT":
                return (
                    lambda req: cockpit.update(
                        tenant, _cockpit_body(req), max_items=self.max_write_records
                    ),
                    "CallToAction",
                    "write",
                    "cta.update",
                )
            return None
        if _DESCRIBE.match(path):
            if method != "POST":
                return None
            return (
                lambda req: describe.describe(tenant, describe.describe_body(parse_body(req.body))),
                None,
                "read",
                "describe",
            )
        if m := _DESCRIBE_ONE.match(path):
            if method != "GET":
                return None
            name = m.group(1)
            return (lambda req: describe.describe(tenant, [name]), name, "read", "describe")
        if _PICKLIST.match(path):
            if method != "GET":
                return None
            return (
                lambda req: cockpit.picklists(tenant, req.param("category")),
                "CallToAction",
                "read",
                "cta.picklist",
            )
        if m := _OBJECT.match(path):
            obj = object_key(m.group(1))
            if obj != "company":
                return _unknown_object(m.group(1)), m.group(1), "write", "write"
            if method == "POST":
                return (
                    lambda req: data_api.insert(
                        tenant, "company", parse_body(req.body), max_records=self.max_write_records
                    ),
                    "Company",
                    "write",
                    "company.insert",
                )
            if method == "PUT":
                return (
                    lambda req: data_api.update(
                        tenant,
                        "company",
                        parse_body(req.body),
                        req.param("keys"),
                        max_records=self.max_write_records,
                    ),
                    "Company",
                    "write",
                    "company.update",
                )
            if method == "DELETE":
                return (
                    lambda req: data_api.delete(tenant, "company", ""),
                    "Company",
                    "write",
                    "company.delete",
                )
            return None
        if m := _OBJECT_ID.match(path):
            obj = object_key(m.group(1))
            if obj != "company" or method != "DELETE":
                return None
            gsid = m.group(2)
            return (
                lambda req: data_api.delete(tenant, "company", gsid),
                "Company",
                "write",
                "company.delete",
            )
        return None

    def _record(
        self, request: Request, obj: str | None, kind: Kind, operation: str, status: int, n: int
    ) -> None:
        self.log.record(
            api=API,
            method=request.method,
            path=request.path,
            object=obj,
            kind=kind,
            operation=operation,
            status=status,
            records=n,
        )

    def _admin(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if path == "/__emulator/faults":
            if request.method == "PUT":
                settings = request.json() if request.body else {}
                fail_next = settings.pop("fail_next", None)
                tamper = settings.pop("tamper", [])
                try:
                    self.faults.configure(**settings)
                    self.faults.tamper_from_json(tamper)
                except (TypeError, ValueError) as exc:
                    return Response.json({"error": str(exc)}, 400)
                if fail_next:
                    self.faults.fail_next(*fail_next)
            return Response.json(self.faults.as_dict())
        if path == "/__emulator/log":
            return Response.json(self.log.snapshot())
        if path == "/__emulator/rate-limit/reset" and request.method == "POST":
            self.reset_rate_limit()
            return Response.empty(204)
        return Response.json({"error": "unknown emulator control"}, 404)


def _unknown_object(name: str) -> Handler:
    def handler(_: Request) -> Outcome:
        raise GainsightError(
            400, E.INVALID_PATH, E.INVALID_PATH_DESC, message=f"Requested object not found: {name}"
        )

    return handler


def _cockpit_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body) if request.body else None
    except ValueError as exc:
        raise GainsightError(400, E.COCKPIT_BAD_REQUEST, f"Malformed JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise GainsightError(400, E.COCKPIT_BAD_REQUEST, "Request body must be a JSON object")
    return body


def _raise_problems(problems: list[FieldError]) -> None:
    if problems:
        raise ValueError("; ".join(f"{p.code} {p.desc}" for p in problems))
