"""Hostile answers, per endpoint: redirects, HTML with a 200, cut-off bodies, missing or null
``data``, valid-but-empty pages, wrong counts and wrong types.

A rule names the call it applies to by the request log's ``operation`` (a prefix up to a dot:
``"query"`` matches ``query`` but not ``query_more``; ``"collections"`` matches every
``collections.*``; ``"oauth.token"`` the token endpoint) and optionally its object:

    emu.salesforce.faults.tamper("redirect", operation="oauth.token",
                                 location="http://127.0.0.1:9/steal", status=307)
    emu.gainsight.faults.tamper("drop", operation="company.query", path="data")
    emu.salesforce.faults.tamper("empty_page", operation="query", object="AccountTeamMember")

or over HTTP: ``PUT /__emulator/faults {"tamper": [{"kind": "html", "operation": "query"}]}``.

Kinds (``before`` rules answer instead of the emulator, so nothing is applied; ``after``
rules rewrite the real answer, so a write has happened when the client reads the lie):

==============  =======  ======================================================================
kind            when     answer
==============  =======  ======================================================================
``redirect``    before   ``status`` (302) with ``Location: location``
``html``        after    an HTML page with status 200 (``before`` too, with ``when="before"``)
``truncate``    after    the body cut to half its bytes (a matching Content-Length)
``drop``        after    the JSON key at ``path`` removed (``data``, ``records``, ``done``, …)
``set``         after    the JSON key at ``path`` set to ``value`` (null, a string, a number …)
``merge``       after    the keys of ``value`` (an object) set at the top of the JSON body
``empty_page``  after    a well-formed empty answer: Salesforce ``{"totalSize": 0, "done":
                         true, "records": []}`` / ``[]``; Gainsight ``data: []`` (``value:
                         "no_data"``: the documented "No data found" failure instead)
``wrong_count`` after    one result too few: the last record / result / CSV row dropped
                         (Gainsight writes: ``count`` one higher; Bulk job info: one more
                         processed)
``csv_header``  after    a CSV body's header with its first column renamed
==============  =======  ======================================================================

``path`` is a dot path into the JSON body (``data.records``); on a list body it applies to
every item (``success`` on a Collections answer).
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from emulators.http import Response

KINDS = frozenset(
    {
        "redirect",
        "html",
        "truncate",
        "drop",
        "set",
        "merge",
        "empty_page",
        "wrong_count",
        "csv_header",
    }
)
HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>Sign in</title></head>"
    "<body><form action='/login'>Session expired, please sign in.</form></body></html>"
)


@dataclass
class Tamper:
    """One hostile-answer rule; ``times`` None means every matching call."""

    kind: str
    operation: str | None = None
    object: str | None = None
    times: int | None = 1
    skip: int = 0  # let this many matching calls through first
    status: int = 302
    location: str | None = None
    path: str | None = None
    value: Any = None
    when: str | None = None  # "before" / "after"; default by kind
    hits: int = field(default=0)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown tamper kind {self.kind!r} (known: {sorted(KINDS)})")
        if self.kind == "redirect" and not self.location:
            raise ValueError("a redirect needs a location")
        if self.kind in ("drop", "set") and not self.path:
            raise ValueError(f"{self.kind} needs a path")
        if self.kind == "merge" and not isinstance(self.value, dict):
            raise ValueError("merge needs an object value")
        if self.when not in (None, "before", "after"):
            raise ValueError("when is 'before' or 'after'")

    @property
    def before(self) -> bool:
        return (self.when or ("before" if self.kind == "redirect" else "after")) == "before"

    def matches(self, operation: str, obj: str | None) -> bool:
        if self.operation is not None and not (
            operation == self.operation or operation.startswith(self.operation + ".")
        ):
            return False
        return self.object is None or (obj or "").lower() == self.object.lower()


class TamperRules:
    """Thread-safe list of rules; the first live rule matching a call is used (and counted)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Tamper] = []

    def add(self, rule: Tamper) -> Tamper:
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, operation: str, obj: str | None, *, before: bool) -> Tamper | None:
        """The rule for this call, if any.  Emulators ask twice: ``before=True`` before they
        act (redirects, a proxy page) and ``before=False`` once the answer is there (the
        object a query or a Collections call is about is known only then)."""
        with self._lock:
            for rule in self._rules:
                if rule.before != before:
                    continue
                if rule.times is not None and rule.times <= 0:
                    continue
                if not rule.matches(operation, obj):
                    continue
                if rule.skip > 0:
                    rule.skip -= 1
                    continue
                if rule.times is not None:
                    rule.times -= 1
                rule.hits += 1
                return rule
        return None

    def as_list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(r) for r in self._rules]


# --- answers ------------------------------------------------------------------------------
def answer_before(rule: Tamper) -> Response:
    """The answer of a ``before`` rule (the emulator does not act on the request)."""
    if rule.kind == "redirect":
        return Response.text(
            f"<html><body>Moved: <a href='{rule.location}'>here</a></body></html>",
            rule.status,
            content_type="text/html;charset=UTF-8",
            headers={"Location": str(rule.location)},
        )
    return Response.text(HTML_PAGE, 200, content_type="text/html;charset=UTF-8")


def rewrite(rule: Tamper, response: Response, api: str) -> Response:
    """The real answer rewritten by an ``after`` rule."""
    if rule.kind == "redirect":
        return answer_before(rule)
    if rule.kind == "html":
        return Response.text(HTML_PAGE, 200, content_type="text/html;charset=UTF-8")
    if rule.kind == "truncate":
        cut = response.body[: max(1, len(response.body) // 2)]
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return Response(response.status, cut, headers)
    if rule.kind == "csv_header":
        return _csv_header(response)
    body: Any
    try:
        body = json.loads(response.body) if response.body else None
    except ValueError:
        body = None
    if rule.kind == "wrong_count" and body is None and response.body:
        return _csv_wrong_count(response)
    if rule.kind == "drop":
        _at_path(body, str(rule.path), drop=True)
    elif rule.kind == "set":
        _at_path(body, str(rule.path), value=rule.value)
    elif rule.kind == "merge" and isinstance(body, dict):
        body.update(rule.value)
    elif rule.kind == "empty_page":
        body = _empty(body, api, rule.value)
    elif rule.kind == "wrong_count":
        body = _wrong_count(body, api)
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return Response.json(body, 200 if rule.kind == "empty_page" else response.status, headers)


def _at_path(body: Any, path: str, *, drop: bool = False, value: Any = None) -> None:
    if isinstance(body, list):
        for item in body:
            _at_path(item, path, drop=drop, value=value)
        return
    keys = path.split(".")
    node = body
    i = 0
    # A key may hold dots itself (Gainsight's ``CurrentScore__gr.Score``): the longest key
    # present wins.
    while i < len(keys) - 1 and not (isinstance(node, dict) and ".".join(keys[i:]) in node):
        node = node.get(keys[i]) if isinstance(node, dict) else None
        i += 1
        if isinstance(node, list):
            for item in node:
                _at_path(item, ".".join(keys[i:]), drop=drop, value=value)
            return
    last = ".".join(keys[i:])
    if not isinstance(node, dict):
        return
    if drop:
        node.pop(last, None)
    else:
        node[last] = value


def _empty(body: Any, api: str, variant: Any) -> Any:
    if api == "salesforce":
        if isinstance(body, list):
            return []
        return {"totalSize": 0, "done": True, "records": []}
    if variant == "no_data":
        return {
            "result": False,
            "errorCode": "GSOBJ_1XXX",
            "errorDesc": "No data found for given criteria",
            "requestId": "00000000-0000-4000-8000-000000000000",
            "data": None,
            "message": None,
        }
    out = dict(body) if isinstance(body, dict) else {"result": True}
    data = out.get("data")
    out["data"] = {**data, "records": []} if isinstance(data, dict) else []
    return out


def _wrong_count(body: Any, api: str) -> Any:
    if isinstance(body, list):
        return body[:-1]
    if not isinstance(body, dict):
        return body
    if api == "salesforce":
        if isinstance(body.get("records"), list) and body["records"]:
            body["records"] = body["records"][:-1]
        elif "numberRecordsProcessed" in body:
            body["numberRecordsProcessed"] = int(body["numberRecordsProcessed"]) + 1
        return body
    data = body.get("data")
    if isinstance(data, list) and data:
        body["data"] = data[:-1]
    elif isinstance(data, dict):
        if isinstance(data.get("count"), int):
            data["count"] = data["count"] + 1
        elif isinstance(data.get("records"), list) and data["records"]:
            data["records"] = data["records"][:-1]
    return body


def _csv_wrong_count(response: Response) -> Response:
    lines = response.body.decode("utf-8").splitlines(keepends=True)
    body = "".join(lines[:-1] if len(lines) > 1 else lines).encode()
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return Response(response.status, body, headers)


def _csv_header(response: Response) -> Response:
    text = response.body.decode("utf-8")
    head, sep, rest = text.partition("\n")
    cells = head.split(",")
    if cells:
        cells[0] = '"Unexpected_Column"'
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return Response(response.status, (",".join(cells) + sep + rest).encode(), headers)


__all__ = ["KINDS", "Tamper", "TamperRules", "answer_before", "rewrite"]
