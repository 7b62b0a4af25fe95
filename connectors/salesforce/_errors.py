"""The one place Salesforce answers are classified: status + errorCode -> what to do next.

    error = classify(403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED",
                            "message": "TotalRequests Limit exceeded."}], Call("query"))
    isinstance(error, QuotaExceeded)  # True

:func:`translate` maps the exceptions simple-salesforce and requests raise into
:mod:`connectors.errors` the same way.  Messages name the API, the operation, the object,
the record id and the error code; they never carry a token or a whole response body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
import urllib3.exceptions
from simple_salesforce.exceptions import SalesforceBulkV2LoadError, SalesforceError

from config.errors import InvalidRecord, TeamsyncError
from connectors.contract import renamed
from connectors.errors import (
    AuthenticationError,
    ContractViolation,
    QuotaExceeded,
    RedirectRefused,
    RequestRejected,
    RetryableError,
    UpstreamUnavailable,
)

API = "salesforce"

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRYABLE_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "QUERY_TIMEOUT"})
# A 403 with these codes means the integration user / org cannot use the API at all.
ACCESS_CODES = frozenset({"API_DISABLED_FOR_ORG", "API_CURRENTLY_DISABLED"})
# Codes about the query or request as a whole, never about one record.
CALL_CODES = frozenset(
    {
        "MALFORMED_QUERY",
        "INVALID_FIELD",
        "INVALID_TYPE",
        "INVALID_QUERY_LOCATOR",
        "JSON_PARSER_ERROR",
    }
)

_MESSAGE_LIMIT = 200


@dataclass(frozen=True)
class Call:
    """What a request is about, for classification and for messages."""

    operation: str  # "query", "collections.update", "bulk2.ingest.poll", ...
    object_name: str | None = None
    record_id: str | None = None
    # False for calls that must not be repeated when the server may already have acted
    # (creating records): an answer lost in transit then fails the run instead.
    idempotent: bool = True

    def describe(self) -> str:
        parts = [API, self.operation]
        if self.object_name:
            parts.append(self.object_name)
        if self.record_id:
            parts.append(self.record_id)
        return " ".join(parts)


class SessionExpired(AuthenticationError):
    """401 INVALID_SESSION_ID: the client renews an OAuth session once, then gives up."""


@dataclass(frozen=True)
class ErrorInfo:
    code: str | None
    message: str | None
    fields: tuple[str, ...] = ()


def short(text: object, limit: int = _MESSAGE_LIMIT) -> str:
    """First line of ``text``, cut to ``limit`` characters: enough to diagnose, no bodies."""
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def error_info(body: Any) -> ErrorInfo:
    """The first error of a Salesforce error body, whatever its shape.

    REST: ``[{"errorCode", "message", "fields"}]``; collections: ``statusCode``; OAuth:
    ``{"error", "error_description"}``; anything else (HTML from an edge proxy) -> no code.
    """
    item: Any = body
    if isinstance(body, list) and body:
        item = body[0]
    if isinstance(item, Mapping):
        code = item.get("errorCode") or item.get("statusCode") or item.get("error")
        message = item.get("message") or item.get("error_description")
        raw_fields = item.get("fields") or ()
        fields = tuple(str(f) for f in raw_fields) if isinstance(raw_fields, list) else ()
        return ErrorInfo(str(code) if code else None, short(message) if message else None, fields)
    return ErrorInfo(None, None)


def _text(call: Call, status: int | None, info: ErrorInfo) -> str:
    head = call.describe()
    detail = " ".join(p for p in (f"HTTP {status}" if status else "", info.code or "") if p)
    text = f"{head}: {detail}" if detail else head
    return f"{text}: {info.message}" if info.message else text


def classify(
    status: int,
    body: Any,
    call: Call,
    *,
    retry_after: float | None = None,
) -> TeamsyncError:
    """The exception to raise for an error answer (status >= 300)."""
    info = error_info(body)
    code, message = info.code, info.message or ""
    text = _text(call, status, info)
    if status == 401 or code == "INVALID_SESSION_ID":
        return SessionExpired(text, api=API, status=status, code=code or "INVALID_SESSION_ID")
    if code == "REQUEST_LIMIT_EXCEEDED":
        # The daily allocation is spent: waiting minutes will not help.  Any other limit
        # (ConcurrentPerOrgLongTxn ...) frees up when other requests finish.
        if "TotalRequests" in message:
            return QuotaExceeded(text, api=API, status=status, code=code)
        return RetryableError(text, api=API, status=status, code=code, retry_after=retry_after)
    if code in RETRYABLE_CODES or status in RETRYABLE_STATUSES:
        return RetryableError(text, api=API, status=status, code=code, retry_after=retry_after)
    if status == 403 and code in ACCESS_CODES:
        return AuthenticationError(text, api=API, status=status, code=code)
    if call.record_id and status in (400, 404) and code not in CALL_CODES:
        return InvalidRecord(
            API,
            call.object_name or "",
            call.record_id,
            info.message or code or f"HTTP {status}",
            code=code or ("NOT_FOUND" if status == 404 else None),
            fields=info.fields,
            message=text,
        )
    return RequestRejected(text, api=API, status=status, code=code)


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when the connection failed before the request could reach the server."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def translate(
    exc: BaseException, call: Call, *, retry_after: float | None = None
) -> TeamsyncError | None:
    """The teamsync error for a foreign exception, or None when it is not ours to map."""
    if isinstance(exc, RedirectRefused):
        return renamed(exc, call.describe())
    if isinstance(exc, TeamsyncError):
        return exc
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        # A whole answer that is not JSON (an HTML page with a 200, a cut-off body): the
        # endpoint broke its contract; nothing in it may be read as "no records".
        return ContractViolation(
            f"{call.describe()}: the response is not the JSON this endpoint promises "
            "(an HTML page or a truncated body?)",
            api=API,
            code="BAD_RESPONSE",
        )
    if isinstance(exc, SalesforceError):
        return classify(exc.status, exc.content, call, retry_after=retry_after)
    if isinstance(exc, SalesforceBulkV2LoadError):
        return RequestRejected(f"{call.describe()}: Bulk 2.0 refused the upload", api=API)
    if isinstance(exc, requests.exceptions.SSLError):
        return UpstreamUnavailable(
            f"{call.describe()}: TLS verification failed (check TEAMSYNC_CA_BUNDLE): "
            f"{short(type(exc).__name__)}",
            api=API,
            code="TLS_ERROR",
        )
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        kind = "timeout" if isinstance(exc, requests.Timeout) else "connection error"
        code = "TIMEOUT" if isinstance(exc, requests.Timeout) else "CONNECTION_ERROR"
        if call.idempotent or (isinstance(exc, requests.ConnectionError) and _never_sent(exc)):
            return RetryableError(f"{call.describe()}: {kind}", api=API, code=code)
        return UpstreamUnavailable(
            f"{call.describe()}: {kind} after the request was sent; not repeated because "
            "the server may have acted on it (the next run reconciles)",
            api=API,
            code=code,
        )
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        if call.idempotent:
            return RetryableError(
                f"{call.describe()}: truncated or unreadable response", api=API, code="BAD_RESPONSE"
            )
        return UpstreamUnavailable(
            f"{call.describe()}: unreadable response to a request that may have been applied",
            api=API,
            code="BAD_RESPONSE",
        )
    if isinstance(exc, requests.RequestException):
        # Anything else requests raises (bad URL, too many redirects ...) is not transient.
        return UpstreamUnavailable(
            f"{call.describe()}: HTTP client error {type(exc).__name__}", api=API, code="HTTP_ERROR"
        )
    return None


_BULK_ERROR = re.compile(r"\s*([A-Z][A-Z0-9_]*)\s*:(.*)", re.DOTALL)


def bulk_error(text: str) -> ErrorInfo:
    """``sf__Error`` of a Bulk 2.0 failed-results row: ``CODE:message`` (or free text)."""
    m = _BULK_ERROR.match(text or "")
    if m:
        return ErrorInfo(m.group(1), short(m.group(2).strip(" :-")) or None)
    return ErrorInfo("BULK_ERROR", short(text) or None)
