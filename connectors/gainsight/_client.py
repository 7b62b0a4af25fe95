"""The Gainsight CS REST client: reads with keyset paging, writes in batches, CTAs.

Every call goes through the sliding-window limiter and the shared retry policy, and every
response through :func:`~connectors.gainsight._classify.classify`.
"""

from __future__ import annotations

import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx
import structlog

from config.errors import ConfigurationError
from connectors.errors import (
    QuotaExceeded,
    RetryableError,
    UpstreamUnavailable,
)
from connectors.gainsight._classify import (
    API,
    Verdict,
    breach,
    classify,
    describe,
    is_no_data,
    shorten,
)
from connectors.gainsight._config import (
    MAX_CTA_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Condition,
    GainsightConfig,
    build_where,
)
from connectors.gainsight._describe import (
    CTA_CATEGORIES,
    ObjectInfo,
    PicklistItem,
    parse_objects,
    parse_picklists,
)
from connectors.gainsight._results import WriteResult, first, map_write_results
from connectors.gainsight.ratelimit import SlidingWindowLimiter
from connectors.paginators import (
    KeysetPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    PagingError,
)
from connectors.retry import call_with_retry, parse_retry_after
from connectors.tls import ssl_context

log = structlog.get_logger("connectors.gainsight")

MISSING_KEY = "MISSING_KEY"
OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"
MAX_UPDATE_KEYS = 3
CTA_PATH = "/v2/cockpit/cta/"
CTA_LIST_PATH = "/v2/cockpit/cta/list"
DESCRIBE_PATH = "/v1/meta/services/objects/describe"
PICKLIST_PATH = "/v2/cockpit/admin/picklist/lite"
# A write refused with result: false and one of these statuses is about its records (one
# invalid record fails the whole batch, G2); other refusals are about the call itself.
_RECORD_REFUSAL_STATUSES = frozenset({200, 400, 422})
_CALL_CODES = frozenset({"GSOBJ_1017", "GSOBJ_1023", "COCKPIT_5102"})
_FIELD_IN_DESC = re.compile(r"\(\s*([A-Za-z][A-Za-z0-9_]*)\s*(?:=|\))")
# Offset paging (a tenant that cannot sort Gsid) orders by an immutable field.
OFFSET_ORDER_FIELD = "CreatedDate"
# CTA record keys given by picklist name, and the lookup path that reads the name back.
_CTA_NAME_PATHS = {
    "type": "TypeId__gr.Name",
    "reason": "ReasonId__gr.Name",
    "status": "StatusId__gr.Name",
    "priority": "PriorityId__gr.Name",
}
# Failures before the request surely left us: safe to retry even a non-idempotent call.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_STALE_PAGES_LIMIT = 3


class OutcomeUnknown(UpstreamUnavailable):
    """A write's answer was lost or unreadable after the request was sent: it may have been
    applied.  Never repeated blindly; CTA writes are verified by listing instead."""


def _same_text(a: Any, b: Any) -> bool:
    return str(a or "").strip().lower() == str(b or "").strip().lower()


def _with_gsid(select: Sequence[str]) -> list[str]:
    fields = list(select)
    if not any(f.lower() == "gsid" for f in fields):
        fields.insert(0, "Gsid")
    return fields


class GainsightClient:
    """A synchronous Gainsight client.

        with GainsightClient(config) as gs:
            for page in gs.query("Company", ["Name", "Csm__gr.Email"]):
                ...
            results = gs.update("Company", [{"Gsid": gsid, "RiskFlags__gc": "NO_CSM"}])

    ``calls`` counts the HTTP requests sent (retries included) by kind (``read``/``write``)
    and by operation (``query:Company``, ``update:Company``, ``cta_list``, ...).
    """

    def __init__(
        self,
        config: GainsightConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.calls: Counter[str] = Counter()
        self._sleep = sleep
        self._described: dict[str, ObjectInfo | None] = {}
        self._gsid_sortable: dict[str, bool] = {}
        self.limiter = SlidingWindowLimiter(
            config.rate_limit_per_minute, 60.0, clock=clock, sleep=sleep
        )
        headers = {
            "accesskey": config.access_key,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "teamsync",
        }
        timeout = httpx.Timeout(config.read_timeout, connect=config.connect_timeout)
        # Redirects are never followed: the access key must not travel to another host.
        if transport is not None:
            self._http = httpx.Client(
                base_url=config.base_url,
                headers=headers,
                timeout=timeout,
                transport=transport,
                follow_redirects=False,
            )
        else:
            self._http = httpx.Client(
                base_url=config.base_url,
                headers=headers,
                timeout=timeout,
                verify=ssl_context(config.ca_bundle),
                follow_redirects=False,
            )

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- metadata ----------------------------------------------------------------------

    def describe(self, *object_names: str) -> dict[str, ObjectInfo]:
        """Describe objects (one call; cached for the life of the client).

        Returns {lower-case object name: ObjectInfo}; an object the tenant does not know is
        absent from the answer.  Also tells :meth:`query` whether ``Gsid`` can be sorted on.
        """
        wanted = [n for n in object_names if n.lower() not in self._described]
        if wanted:
            found = self._describe(wanted)
            if len(wanted) > 1 and not found:
                # One unknown name fails the whole call: ask one by one.
                for name in wanted:
                    found.update(self._describe([name]))
            for name in wanted:
                self._described[name.lower()] = found.get(name.lower())
        return {
            n.lower(): info
            for n in object_names
            if (info := self._described.get(n.lower())) is not None
        }

    def _describe(self, names: Sequence[str]) -> dict[str, ObjectInfo]:
        operation = "describe"
        verdict = self._call("POST", DESCRIBE_PATH, operation, "read", {"objectNames": list(names)})
        if verdict.kind == "refused":
            if (
                "NOT_FOUND" in (verdict.code or "").upper()
                or "not found" in (verdict.desc or "").lower()
            ):
                return {}
            raise verdict.error(operation)
        data = verdict.body.get("data") if isinstance(verdict.body, dict) else None
        return parse_objects(data)

    def cta_picklists(
        self, categories: Sequence[str] = CTA_CATEGORIES
    ) -> dict[str, list[PicklistItem]]:
        """The tenant's Cockpit picklists (types, reasons, statuses, priorities), by category."""
        operation = "cta_picklist"
        params = {"category": ",".join(categories)}
        verdict = self._call("GET", PICKLIST_PATH, operation, "read", None, params=params)
        if verdict.kind == "refused":
            raise verdict.error(operation)
        data = verdict.body.get("data") if isinstance(verdict.body, dict) else None
        return parse_picklists(data)

    def gsid_sortable(self, object_name: str) -> bool:
        """False when describe said the tenant cannot sort ``Gsid`` (else True: try keyset)."""
        if object_name.lower() in self._gsid_sortable:
            return self._gsid_sortable[object_name.lower()]
        info = self._described.get(object_name.lower())
        gsid = info.field("Gsid") if info is not None else None
        return gsid is None or (gsid.sortable and gsid.filterable)

    def set_gsid_sortable(self, object_name: str, sortable: bool) -> None:
        """Tell the client what an earlier describe said (facts cached by the caller)."""
        self._gsid_sortable[object_name.lower()] = sortable

    # -- reads -------------------------------------------------------------------------

    def query(
        self,
        object_name: str,
        select: Sequence[str],
        *,
        conditions: Sequence[Condition] = (),
        page_size: int | None = None,
        after: str | None = None,
        keyset: bool | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of rows, keyset-paged on ``Gsid`` (always selected); dates stay epoch ms.

        ``after``: start after this Gsid (resuming an interrupted read).  ``keyset`` None:
        keyset paging unless describe said ``Gsid`` is not sortable; then (or with False) the
        read is offset-paged in ``CreatedDate`` order with an overlap, and ``after`` is
        ignored (an interrupted read starts over; the rows are upserted, nothing is lost).
        """
        size = page_size or self.config.page_size
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ConfigurationError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        fields = _with_gsid(select)
        path = f"/v1/data/objects/query/{quote(object_name, safe='')}"
        operation = f"query:{object_name}"
        if keyset is None:
            keyset = self.gsid_sortable(object_name)
        if not keyset:
            yield from self._offset_query(path, operation, fields, conditions, size)
            return
        pages = KeysetPaginator(page_size=size, key="Gsid", after=after)
        while pages.has_next:
            page_conditions = list(conditions)
            if pages.after is not None:
                page_conditions.append(Condition("Gsid", "GT", [pages.after]))
            body: dict[str, Any] = {"select": fields}
            where = build_where(page_conditions)
            if where:
                body["where"] = where
            body.update({"orderBy": {"Gsid": "asc"}, "limit": size, "offset": 0})
            rows = self._rows(self._call("POST", path, operation, "read", body), operation)
            try:
                pages.update(rows)
            except PagingError as exc:
                raise breach(operation, str(exc)) from None
            if rows:
                log.debug("gainsight.page", operation=operation, rows=len(rows))
                yield rows

    def _offset_query(
        self,
        path: str,
        operation: str,
        fields: list[str],
        conditions: Sequence[Condition],
        size: int,
    ) -> Iterator[list[dict[str, Any]]]:
        overlap = min(50, size // 10)
        pages = OffsetPaginator(page_size=size, key="Gsid", overlap=overlap)
        where = build_where(conditions)
        log.info("gainsight.offset_paging", operation=operation, page_size=size, overlap=overlap)
        while pages.has_next:
            body: dict[str, Any] = {"select": fields}
            if where:
                body["where"] = where
            body.update(
                {"orderBy": {OFFSET_ORDER_FIELD: "asc"}, "limit": size, "offset": pages.offset}
            )
            rows = self._rows(self._call("POST", path, operation, "read", body), operation)
            try:
                fresh = pages.update(rows)
            except PagingError as exc:
                raise breach(operation, str(exc)) from None
            if fresh:
                yield fresh

    def cta_list(
        self,
        select: Sequence[str],
        *,
        conditions: Sequence[Condition] = (),
        expression: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of CTAs (1-based ``pageNumber`` until a short page), de-duplicated by Gsid.

        The Cockpit's sort order is undocumented, so pages may overlap while CTAs change;
        a CTA is yielded once however many pages show it.  CTA dates are ISO strings.
        """
        size = min(self.config.cta_page_size, MAX_CTA_PAGE_SIZE)
        fields = _with_gsid(select)
        where = build_where(conditions, expression, key="fieldName")
        operation = "cta_list"
        pages = PageNumberPaginator(page_size=size, key="Gsid", stale_limit=_STALE_PAGES_LIMIT)
        while pages.has_next:
            body: dict[str, Any] = {"select": fields}
            if where:
                body["where"] = where
            body.update({"pageSize": size, "pageNumber": pages.page})
            rows = self._rows(self._call("POST", CTA_LIST_PATH, operation, "read", body), operation)
            try:
                fresh = pages.update(rows)
            except PagingError as exc:
                raise breach(operation, str(exc)) from None
            if fresh:
                yield fresh

    # -- writes ------------------------------------------------------------------------

    def update(
        self,
        object_name: str,
        records: Sequence[Mapping[str, Any]],
        *,
        keys: Sequence[str] = ("Gsid",),
        lookups: Mapping[str, Any] | None = None,
    ) -> list[WriteResult]:
        """``PUT /v1/data/objects/{obj}?keys=...`` in batches; one result per record, in order."""
        if not 1 <= len(keys) <= MAX_UPDATE_KEYS or not all(keys):
            raise ConfigurationError(f"update takes 1 to {MAX_UPDATE_KEYS} key fields")
        return self._write(
            "PUT",
            f"/v1/data/objects/{quote(object_name, safe='')}",
            f"update:{object_name}",
            records,
            update=True,
            keys=tuple(keys),
            lookups=lookups,
        )

    def insert(
        self,
        object_name: str,
        records: Sequence[Mapping[str, Any]],
        *,
        lookups: Mapping[str, Any] | None = None,
    ) -> list[WriteResult]:
        """``POST /v1/data/objects/{obj}`` in batches; ``id`` is the new record's Gsid."""
        return self._write(
            "POST",
            f"/v1/data/objects/{quote(object_name, safe='')}",
            f"insert:{object_name}",
            records,
            update=False,
            lookups=lookups,
        )

    def cta_create(self, records: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        """``POST /v2/cockpit/cta/``; ``id`` is the new CTA's Gsid.

        Each record is sent as ``{"record": {...}}`` with ``referenceId`` set to its position
        in the batch (any referenceId of the caller's is replaced: results come by index).
        """
        return self._write("POST", CTA_PATH, "cta_create", records, update=False, cta=True)

    def cta_update(self, records: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        """``PUT /v2/cockpit/cta/``; every record carries the CTA ``Gsid`` (e.g. to close it)."""
        return self._write(
            "PUT", CTA_PATH, "cta_update", records, update=True, keys=("Gsid",), cta=True
        )

    def _write(
        self,
        method: str,
        path: str,
        operation: str,
        records: Sequence[Mapping[str, Any]],
        *,
        update: bool,
        keys: tuple[str, ...] = (),
        lookups: Mapping[str, Any] | None = None,
        cta: bool = False,
    ) -> list[WriteResult]:
        results: list[WriteResult | None] = [None] * len(records)
        ready: list[_Item] = []
        for index, record in enumerate(records):
            missing = [k for k in keys if first(record, k) in (None, "")]
            if missing:
                # Refused locally: sent, it would fail anyway and could sink its whole batch.
                results[index] = WriteResult(
                    index, None, False, MISSING_KEY, f"missing key field(s): {', '.join(missing)}",
                    tuple(missing),
                )  # fmt: skip
            else:
                ready.append((index, record))
        spec = _WriteSpec(method, path, operation, update, keys, lookups, cta)
        for result in self._write_queue(spec, ready):
            results[result.index] = result
        return [r for r in results if r is not None]

    # A batch in which one record fails validation may be rejected whole, with no per-record
    # data (G2).  The batch is then narrowed down: send the first half of the set known to
    # fail; if it goes through, the culprit is in the second half (not sent: it would fail);
    # if it fails too, keep narrowing it and put the second half back at the front of the
    # queue (usually fine, it rides along with the next batch).  The culprit's reason is the
    # answer of the smallest rejected set whose other records all went through, so it is
    # never sent alone.  One culprit in a batch of 50 costs ceil(log2 50) = 6 extra calls.

    def _write_queue(self, spec: _WriteSpec, ready: list[_Item]) -> list[WriteResult]:
        done: dict[int, WriteResult] = {}
        queue: deque[_Item] = deque(ready)
        size = self.config.write_batch
        while queue:
            batch = [queue.popleft() for _ in range(min(size, len(queue)))]
            before = len(done)
            outcome = self._send(spec, batch)
            if isinstance(outcome, list):
                done.update((r.index, r) for r in outcome)
            elif self._mostly_failing(done):
                # Most records fail here (a mapping or configuration problem, likely):
                # narrowing would cost more calls than sending them one by one.
                for item in batch:
                    single = self._send(spec, [item])
                    assert isinstance(single, list)  # one record: never a rejection to narrow
                    done.update((r.index, r) for r in single)
            else:
                aside: list[list[_Item]] = []
                self._narrow(spec, batch, outcome, done, aside)
                for part in reversed(aside):
                    queue.extendleft(reversed(part))
            added = list(done.values())[before:]
            log.info(
                "gainsight.write",
                operation=spec.operation,
                records=len(batch),
                written=sum(1 for r in added if r.success),
                failed=sum(1 for r in added if not r.success),
            )
        return [done[index] for index, _ in ready]

    @staticmethod
    def _mostly_failing(done: Mapping[int, WriteResult]) -> bool:
        """Four culprits or more so far, and at least half the records decided."""
        failed = sum(1 for r in done.values() if not r.success)
        return failed >= 4 and failed * 2 >= len(done)

    def _narrow(
        self,
        spec: _WriteSpec,
        failing: list[_Item],
        rejection: Verdict,
        done: dict[int, WriteResult],
        aside: list[list[_Item]],
    ) -> None:
        """``failing`` was rejected whole: find one culprit, write what goes through on the
        way and set aside (in ``aside``) the parts not known either way."""
        known_bad = failing
        while len(known_bad) > 1:
            half = len(known_bad) // 2
            left, right = known_bad[:half], known_bad[half:]
            outcome = self._send(spec, left)
            if isinstance(outcome, list):
                done.update((r.index, r) for r in outcome)
                if all(r.success for r in outcome):
                    known_bad = right  # the left half went through: the culprit is on the right
                    continue
                aside.append(right)  # the culprit was named in the left half's own answer
                return
            aside.append(right)
            known_bad, rejection = left, outcome
        ((index, record),) = known_bad
        done[index] = self._refused(spec, index, record, rejection)

    def _refused(
        self, spec: _WriteSpec, index: int, record: Mapping[str, Any], verdict: Verdict
    ) -> WriteResult:
        gsid = first(record, "Gsid") if spec.update else None
        # The reason names the field the way the error codes article shows: "(Name = value)".
        named = _FIELD_IN_DESC.search(verdict.desc or "")
        fields = (named.group(1),) if named and named.group(1) in record else ()
        return WriteResult(
            index,
            gsid if isinstance(gsid, str) else None,
            False,
            verdict.code or "REFUSED",
            shorten(verdict.desc) if verdict.desc else "the API refused this record",
            fields,
        )

    def _send(self, spec: _WriteSpec, items: list[_Item], *, verified: bool = False) -> Outcome:
        """One write call for ``items``: per-record results, or the verdict of a whole
        rejection (more than one record, no per-record data) for the caller to narrow."""
        refs = [str(pos) for pos in range(len(items))] if spec.cta else None
        body: dict[str, Any]
        if spec.cta:
            body = {
                "requests": [
                    {"record": {**record, "referenceId": ref}}
                    for (_, record), ref in zip(items, refs or (), strict=True)
                ]
            }
        else:
            body = {"records": [dict(record) for _, record in items]}
            if spec.lookups:
                body["lookups"] = dict(spec.lookups)
        params = {"keys": ",".join(spec.keys)} if spec.update and not spec.cta else None
        try:
            verdict = self._call(
                spec.method,
                spec.path,
                spec.operation,
                "write",
                body,
                params=params,
                idempotent=spec.update and not spec.cta,
                outcome_unknown=spec.cta,
            )
        except OutcomeUnknown as exc:
            if verified:
                reason = f"the answer was lost again after verification: {exc}"
                return [
                    WriteResult(i, None, False, OUTCOME_UNKNOWN, shorten(reason)) for i, _ in items
                ]
            return self._verify_ctas(spec, items, exc)
        if verdict.kind == "refused" and not verdict.has_data:
            if verdict.status not in _RECORD_REFUSAL_STATUSES or verdict.code in _CALL_CODES:
                raise verdict.error(spec.operation)  # about the call, not about a record
            if len(items) > 1:
                return verdict
            ((index, record),) = items
            return [self._refused(spec, index, record, verdict)]
        # A JSON answer that breaks its contract (wrong counts ...) stays fatal: the next
        # run lists open CTAs before creating and adopts what this call made.
        return self._batch_results(
            verdict,
            spec.operation,
            [record for _, record in items],
            [index for index, _ in items],
            spec.update,
            spec.keys,
            refs,
        )

    # -- CTA writes whose answer was lost: verified by listing, never repeated blindly ----

    def _verify_ctas(
        self, spec: _WriteSpec, items: list[_Item], cause: OutcomeUnknown
    ) -> list[WriteResult]:
        """List what the lost call may have done; send again only what it did not do."""
        log.warning("gainsight.cta.verify", operation=spec.operation, records=len(items))
        applied = self._applied_cta_updates(items) if spec.update else self._created_ctas(items)
        results: dict[int, WriteResult] = {}
        resend: list[_Item] = []
        for index, record in items:
            if index in applied:
                results[index] = WriteResult(
                    index, applied[index], True, None, "confirmed by listing after a lost answer"
                )
            elif not spec.update and not first(record, "CompanyId"):
                # Without a company it cannot be looked for: sending it again could duplicate.
                results[index] = WriteResult(
                    index, None, False, OUTCOME_UNKNOWN, shorten(f"not verifiable: {cause}")
                )
            else:
                resend.append((index, record))
        if resend:
            outcome = self._send(spec, resend, verified=True)
            if isinstance(outcome, list):
                results.update((r.index, r) for r in outcome)
            else:
                done: dict[int, WriteResult] = {}
                aside: list[list[_Item]] = []
                self._narrow(spec, resend, outcome, done, aside)
                results.update(done)
                rest = [item for part in aside for item in part]
                results.update((r.index, r) for r in self._write_queue(spec, rest))
        return [results[index] for index, _ in items]

    def _created_ctas(self, items: list[_Item]) -> dict[int, str]:
        """Batch index -> Gsid of an open CTA matching each record (company, name, type,
        reason): what the lost create call made, or an equal one someone else opened."""
        companies = sorted({str(c) for _, r in items if (c := first(r, "CompanyId"))})
        if not companies:
            return {}
        select = ["Gsid", "CompanyId", "Name", _CTA_NAME_PATHS["type"], _CTA_NAME_PATHS["reason"]]
        rows = [
            row
            for page in self.cta_list(
                select,
                conditions=[
                    Condition("CompanyId", "IN", companies),
                    Condition("IsClosed", "EQ", [False]),
                ],
            )
            for row in page
        ]
        found: dict[int, str] = {}
        taken: set[str] = set()
        for index, record in items:
            for row in rows:
                gsid = first(row, "Gsid")
                if not isinstance(gsid, str) or gsid in taken:
                    continue
                if (
                    _same_text(first(row, "CompanyId"), first(record, "CompanyId"))
                    and _same_text(first(row, "Name"), first(record, "Name"))
                    and _same_text(first(row, _CTA_NAME_PATHS["type"]), first(record, "type"))
                    and _same_text(first(row, _CTA_NAME_PATHS["reason"]), first(record, "reason"))
                ):
                    found[index] = gsid
                    taken.add(gsid)
                    break
        return found

    def _applied_cta_updates(self, items: list[_Item]) -> dict[int, str]:
        """Batch index -> Gsid of each CTA whose listed values already match the update."""
        gsids = sorted({str(g) for _, r in items if (g := first(r, "Gsid"))})
        select = ["Gsid", "Name", *_CTA_NAME_PATHS.values()]
        rows = {
            str(first(row, "Gsid")): row
            for page in self.cta_list(select, conditions=[Condition("Gsid", "IN", gsids)])
            for row in page
        }
        applied: dict[int, str] = {}
        for index, record in items:
            gsid = str(first(record, "Gsid"))
            row = rows.get(gsid)
            if row is None:
                continue
            checks = []
            for key, value in record.items():
                low = key.lower()
                if low in ("gsid", "referenceid"):
                    continue
                listed = first(row, _CTA_NAME_PATHS[low]) if low in _CTA_NAME_PATHS else None
                if low in _CTA_NAME_PATHS or low == "name":
                    checks.append(_same_text(listed if low != "name" else row.get("Name"), value))
                else:
                    checks.append(False)  # not verifiable by listing: send it again
            if checks and all(checks):
                applied[index] = gsid
        return applied

    @staticmethod
    def _batch_results(
        verdict: Verdict,
        operation: str,
        batch: Sequence[Mapping[str, Any]],
        indices: Sequence[int],
        update: bool,
        keys: Sequence[str],
        refs: Sequence[str] | None,
    ) -> list[WriteResult]:
        failed_code: str | None = None
        failed_message: str | None = None
        if verdict.kind == "refused":
            # result: false about the records themselves (all failed, or no key matched).
            failed_code = verdict.code or "REFUSED"
            failed_message = shorten(verdict.desc) if verdict.desc else None
        data = verdict.body.get("data") if isinstance(verdict.body, dict) else None
        if verdict.kind == "ok":
            _check_write_data(data, operation, len(batch), cta=refs is not None)
        return map_write_results(
            batch,
            indices,
            data,
            update=update,
            keys=keys,
            refs=refs,
            failed_code=failed_code,
            failed_message=failed_message,
        )

    # -- plumbing ----------------------------------------------------------------------

    @staticmethod
    def _rows(verdict: Verdict, operation: str) -> list[dict[str, Any]]:
        """Rows of a read: ``data`` as a list or ``{"records": [...]}``.

        Only the documented "No data found" failure means no rows; a ``result: true`` whose
        ``data`` is missing, null or of another shape breaks the contract (exit 3) and is
        never read as an empty result.
        """
        if verdict.kind == "refused":
            if verdict.no_data:
                return []
            if verdict.has_data and is_no_data(verdict.code, verdict.desc):
                # "No data found" that carries rows contradicts itself.
                raise breach(operation, "a no-data answer that carries rows", verdict.status)
            raise verdict.error(operation)
        body = verdict.body if isinstance(verdict.body, dict) else {}
        if "data" not in body:
            raise breach(operation, "result: true without data", verdict.status)
        data = body["data"]
        if isinstance(data, dict):
            keys = [k for k in ("records", "Records") if k in data]
            if not keys:
                raise breach(operation, "data is an object without records", verdict.status)
            data = data[keys[0]]
        if data is None:
            raise breach(operation, "data is null", verdict.status)
        if not isinstance(data, list):
            raise breach(operation, f"data is a {type(data).__name__}, not a list of rows")
        if not all(isinstance(row, dict) for row in data):
            raise breach(operation, "data holds something that is not a row object")
        return data

    def _call(
        self,
        method: str,
        path: str,
        operation: str,
        kind: str,
        body: Mapping[str, Any] | None,
        *,
        params: Mapping[str, str] | None = None,
        idempotent: bool = True,
        outcome_unknown: bool = False,
    ) -> Verdict:
        """One API call with limiter, retries and classification; ``ok`` or ``refused``.

        ``outcome_unknown``: an answer lost or unreadable after the request was sent (a
        transport error, a 5xx, a 2xx that is not JSON or cut off) raises
        :class:`OutcomeUnknown` instead of being retried or failing the run (the caller
        verifies what happened by listing).  A JSON answer that breaks its contract stays a
        ContractViolation.
        """

        def attempt() -> Verdict:
            self.limiter.acquire()
            self.calls[kind] += 1
            self.calls[operation] += 1
            try:
                response = self._http.request(
                    method, path, json=dict(body) if body is not None else None, params=params
                )
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}: {shorten(str(exc), 80)}"
                if not idempotent and not isinstance(exc, _NOT_SENT):
                    # The request may have been applied; repeating it could duplicate records.
                    error = OutcomeUnknown if outcome_unknown else UpstreamUnavailable
                    raise error(
                        f"{API} {operation}: outcome unknown ({reason}); not repeated", api=API
                    ) from exc
                raise RetryableError(f"{API} {operation}: {reason}", api=API) from exc
            verdict = classify(
                response.status_code,
                response.content,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                location=response.headers.get("Location"),
            )
            if outcome_unknown and (
                (verdict.kind == "retry" and verdict.status not in (408, 429))
                or (verdict.kind in ("reject", "contract") and 200 <= verdict.status < 300)
            ):
                raise OutcomeUnknown(
                    describe(operation, verdict.status, verdict.code, verdict.desc)
                    + "; the request may have been applied, not repeated",
                    api=API,
                    status=verdict.status,
                    code=verdict.code,
                )
            if (
                verdict.kind == "retry"
                and verdict.retry_after is not None
                and verdict.retry_after > self.config.retry.max_total_wait
            ):
                # Told to wait longer than any retry budget (the daily allocation is used
                # up): sleeping on it would only delay the same failure.
                raise QuotaExceeded(
                    describe(operation, verdict.status, verdict.code, "retry after "
                             f"{verdict.retry_after:.0f} s exceeds the retry budget"),
                    api=API, status=verdict.status, code=verdict.code,
                )  # fmt: skip
            if verdict.kind in ("auth", "retry", "reject", "redirect", "contract"):
                raise verdict.error(operation)
            return verdict

        def on_retry(exc: RetryableError, wait: float) -> None:
            log.warning(
                "gainsight.retry",
                operation=operation,
                status=exc.status,
                code=exc.code,
                wait_seconds=round(wait, 3),
            )

        return call_with_retry(
            attempt, self.config.retry, api=API, sleep=self._sleep, on_retry=on_retry
        )


def _check_write_data(data: Any, operation: str, sent: int, *, cta: bool) -> None:
    """A successful write's ``data`` has a result shape and no more results than records
    sent (the per-record shapes themselves are UNVERIFIED; see ``_results``)."""
    if data is None:
        raise breach(operation, "result: true without data")
    if isinstance(data, list):
        if len(data) > sent or (cta and len(data) != sent):
            raise breach(operation, f"{len(data)} results for {sent} records sent")
        return
    if not isinstance(data, Mapping):
        raise breach(operation, f"data is a {type(data).__name__}, not a write result")
    lowered = {str(k).lower(): v for k, v in data.items()}
    count = lowered.get("count")
    if count is not None and (
        isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= sent
    ):
        raise breach(operation, f"count {count!r} for {sent} records sent")
    records = lowered.get("records")
    if records is not None and (not isinstance(records, list) or len(records) > sent):
        raise breach(operation, f"records is not a list of at most {sent} results")
    errors = lowered.get("errors")
    if isinstance(errors, list) and len(errors) > sent:
        raise breach(operation, f"{len(errors)} errors for {sent} records sent")


_Item = tuple[int, Mapping[str, Any]]  # (index in the caller's records, record)
Outcome = list[WriteResult] | Verdict  # per-record results, or a whole rejection to narrow


@dataclass(frozen=True)
class _WriteSpec:
    method: str
    path: str
    operation: str
    update: bool
    keys: tuple[str, ...]
    lookups: Mapping[str, Any] | None
    cta: bool


__all__ = ["GainsightClient", "OutcomeUnknown"]
