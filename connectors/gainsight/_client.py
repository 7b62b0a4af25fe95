"""The Gainsight CS REST client: reads with keyset paging, writes in batches, CTAs.

Every call goes through the sliding-window limiter and the shared retry policy, and every
response through :func:`~connectors.gainsight._classify.classify`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx
import structlog

from config.errors import ConfigurationError
from connectors.errors import QuotaExceeded, RetryableError, UpstreamUnavailable
from connectors.gainsight._classify import API, Verdict, breach, classify, describe, shorten
from connectors.gainsight._config import (
    MAX_CTA_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Condition,
    GainsightConfig,
    build_where,
)
from connectors.gainsight._results import WriteResult, first, map_write_results
from connectors.gainsight.ratelimit import SlidingWindowLimiter
from connectors.paginators import KeysetPaginator, PageNumberPaginator, PagingError
from connectors.retry import call_with_retry, parse_retry_after
from connectors.tls import ssl_context

log = structlog.get_logger("connectors.gainsight")

MISSING_KEY = "MISSING_KEY"
MAX_UPDATE_KEYS = 3
CTA_PATH = "/v2/cockpit/cta/"
CTA_LIST_PATH = "/v2/cockpit/cta/list"
# Failures before the request surely left us: safe to retry even a non-idempotent call.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_STALE_PAGES_LIMIT = 3


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

    # -- reads -------------------------------------------------------------------------

    def query(
        self,
        object_name: str,
        select: Sequence[str],
        *,
        conditions: Sequence[Condition] = (),
        page_size: int | None = None,
        after: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of rows, keyset-paged on ``Gsid`` (always selected); dates stay epoch ms.

        ``after``: start after this Gsid (resuming an interrupted read).
        """
        size = page_size or self.config.page_size
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ConfigurationError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        fields = _with_gsid(select)
        path = f"/v1/data/objects/query/{quote(object_name, safe='')}"
        operation = f"query:{object_name}"
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
        ready: list[tuple[int, Mapping[str, Any]]] = []
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
        params = {"keys": ",".join(keys)} if update and not cta else None
        batch_size = self.config.write_batch
        for start in range(0, len(ready), batch_size):
            chunk = ready[start : start + batch_size]
            indices = [index for index, _ in chunk]
            batch = [record for _, record in chunk]
            refs = [str(pos) for pos in range(len(batch))] if cta else None
            body: dict[str, Any]
            if cta:
                body = {
                    "requests": [
                        {"record": {**record, "referenceId": ref}}
                        for record, ref in zip(batch, refs or (), strict=True)
                    ]
                }
            else:
                body = {"records": [dict(record) for record in batch]}
                if lookups:
                    body["lookups"] = dict(lookups)
            verdict = self._call(
                method, path, operation, "write", body, params=params, idempotent=update
            )
            outcome = self._batch_results(verdict, operation, batch, indices, update, keys, refs)
            for result in outcome:
                results[result.index] = result
            log.info(
                "gainsight.write",
                operation=operation,
                records=len(batch),
                failed=sum(1 for result in outcome if not result.success),
            )
        return [r for r in results if r is not None]

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
            if not (verdict.has_data or verdict.no_data):
                raise verdict.error(operation)
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
        body: Mapping[str, Any],
        *,
        params: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> Verdict:
        """One API call with limiter, retries and classification; ``ok`` or ``refused``."""

        def attempt() -> Verdict:
            self.limiter.acquire()
            self.calls[kind] += 1
            self.calls[operation] += 1
            try:
                response = self._http.request(method, path, json=body, params=params)
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}: {shorten(str(exc), 80)}"
                if not idempotent and not isinstance(exc, _NOT_SENT):
                    # The request may have been applied; repeating it could duplicate records.
                    raise UpstreamUnavailable(
                        f"{API} {operation}: outcome unknown ({reason}); not repeated", api=API
                    ) from exc
                raise RetryableError(f"{API} {operation}: {reason}", api=API) from exc
            verdict = classify(
                response.status_code,
                response.content,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                location=response.headers.get("Location"),
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


__all__ = ["GainsightClient"]
