"""The one place that decides what a Gainsight response means.

Every response is checked, including a 200: Gainsight reports failures inside the envelope
(``result: false`` + ``errorCode``), sometimes with a 200.

=========================================  ==========================================
status / body                              verdict
=========================================  ==========================================
401, 403, ``GS_APIG_2401``, ``GSOBJ_1024``  ``auth``   → AuthenticationError (any status)
429, ``GU_2400``, 408, 5xx                  ``retry``  → RetryableError (Retry-After kept)
any 3xx                                     ``redirect`` → RedirectRefused (never followed)
2xx that is not a JSON envelope object      ``contract`` → ContractViolation (HTML with a
with ``result`` true or false               200, a cut-off body, a list, no ``result``)
non-JSON 4xx                                ``reject`` → RequestRejected
``result: false`` below 500                 ``refused`` (``no_data`` / ``has_data`` flags
                                            let reads and writes decide)
other 4xx                                   ``reject`` → RequestRejected
2xx with ``result: true``                   ``ok`` (the caller checks ``data``)
=========================================  ==========================================

"No data" is only ever the documented failure: ``result: false`` with ``GSOBJ_1XXX`` /
``GSOBJ_1011`` (or, without a code, the documented text) and no rows in ``data``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from connectors.contract import redirect_refused
from connectors.errors import (
    AuthenticationError,
    ContractViolation,
    FatalError,
    RequestRejected,
    RetryableError,
)

API = "gainsight"
AUTH_CODES = frozenset({"GS_APIG_2401", "GSOBJ_1024"})
RATE_CODES = frozenset({"GU_2400"})
NO_DATA_CODES = frozenset({"GSOBJ_1011", "GSOBJ_1XXX"})
NO_DATA_TEXTS = ("no data found for given criteria", "no entity matches the given criteria")
MAX_DESC = 120

Kind = Literal["ok", "refused", "auth", "retry", "reject", "redirect", "contract"]


@dataclass(frozen=True)
class Verdict:
    """What one response means; ``body`` is the parsed JSON (None when not JSON)."""

    kind: Kind
    status: int
    body: Any = None
    code: str | None = None
    desc: str | None = None
    no_data: bool = False  # the documented "No data found" failure
    has_data: bool = False  # a refusal that still carries a non-empty ``data``
    retry_after: float | None = None
    location: str | None = None  # a redirect's Location header

    def error(self, operation: str) -> RetryableError | FatalError:
        """The exception for a failed call (``refused`` becomes RequestRejected)."""
        if self.kind == "redirect":
            return redirect_refused(f"{API} {operation}", self.status, self.location, api=API)
        if self.kind == "contract":
            return breach(operation, self.desc or "unexpected response", self.status)
        message = describe(operation, self.status, self.code, self.desc)
        if self.kind == "auth":
            return AuthenticationError(message, api=API, status=self.status, code=self.code)
        if self.kind == "retry":
            return RetryableError(
                message, api=API, status=self.status, code=self.code, retry_after=self.retry_after
            )
        return RequestRejected(message, api=API, status=self.status, code=self.code)


def describe(operation: str, status: int | None, code: str | None, desc: str | None) -> str:
    """``gainsight query:Company: HTTP 400 GSOBJ_1002 Invalid field...`` — never a whole body."""
    parts = [f"{API} {operation}:"]
    if status is not None:
        parts.append(f"HTTP {status}")
    if code:
        parts.append(code)
    if desc:
        parts.append(shorten(desc))
    return " ".join(parts)


def breach(operation: str, what: str, status: int | None = None) -> ContractViolation:
    """The error for a response that breaks its endpoint's contract (never quoting it)."""
    return ContractViolation(
        f"{API} {operation}: response breaks its contract: {what}", api=API, status=status
    )


def shorten(text: str, limit: int = MAX_DESC) -> str:
    """One line, at most ``limit`` characters (errorDesc can embed record values)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def parse_json(content: bytes) -> tuple[bool, Any]:
    """(is_json, value) for a response body."""
    if not content or not content.strip():
        return False, None
    try:
        return True, orjson.loads(content)
    except orjson.JSONDecodeError:
        pass  # what orjson refuses and json reads (NaN, huge integers) is judged later
    try:
        return True, json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return False, None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _non_empty(value: Any) -> bool:
    return value is not None and not (isinstance(value, dict | list) and not value)


def is_no_data(code: str | None, desc: str | None) -> bool:
    """The documented "No data found" failure: its codes, or its text without a code."""
    if code is not None:
        return code in NO_DATA_CODES
    lowered = " ".join((desc or "").lower().split()).rstrip(".")
    return lowered in NO_DATA_TEXTS


def classify(
    status: int,
    content: bytes,
    *,
    retry_after: float | None = None,
    location: str | None = None,
) -> Verdict:
    """Classify one HTTP response (status + body); never raises."""
    if 300 <= status < 400:
        return Verdict("redirect", status, location=location)
    is_json, body = parse_json(content)
    retryable_status = status in {408, 429} or status >= 500
    if not is_json:
        if status in (401, 403):
            return Verdict("auth", status)
        if retryable_status:
            return Verdict("retry", status, desc="non-JSON response", retry_after=retry_after)
        if 200 <= status < 300:
            what = "an empty body" if not content.strip() else "not JSON (an HTML page?)"
            if content.strip() and content.lstrip()[:1] in (b"{", b"["):
                what = "truncated or malformed JSON"
            return Verdict("contract", status, desc=what)
        return Verdict("reject", status, desc="non-JSON response (a proxy page?)")

    envelope = body if isinstance(body, dict) else {}
    code = _text(envelope.get("errorCode")) or _text(envelope.get("title"))
    desc = _text(envelope.get("errorDesc")) or _text(envelope.get("message"))
    result = envelope.get("result")
    if isinstance(result, str):  # tolerate "false" / "true" as text
        result = {"false": False, "true": True}.get(result.strip().lower())

    def verdict(kind: Kind, **extra: Any) -> Verdict:
        values: dict[str, Any] = {"code": code, "desc": desc, **extra}
        return Verdict(kind, status, body, **values)

    if status in (401, 403) or code in AUTH_CODES:
        return verdict("auth")
    if retryable_status or code in RATE_CODES:
        return verdict("retry", retry_after=retry_after)
    if not isinstance(body, dict):
        if 200 <= status < 300:
            return Verdict("contract", status, desc=f"a JSON {type(body).__name__}, not an "
                           "envelope object")  # fmt: skip
        return verdict("reject", desc="response is not a JSON object")
    if result is False or (result is None and status >= 400):
        has_data = _non_empty(envelope.get("data"))
        return verdict("refused", no_data=is_no_data(code, desc) and not has_data,
                       has_data=has_data)  # fmt: skip
    if not 200 <= status < 300:
        return verdict("reject")
    if result is not True:
        return Verdict("contract", status, body, desc="an envelope without result: true")
    return verdict("ok")
