"""What each Salesforce endpoint promises, checked before a body is used.

    page = query_page(body, Call("query", "Account"))   # raises ContractViolation

A body that breaks its endpoint's shape is never read as "no records": an HTML page with a 200,
a page without ``records``, ``done: false`` without ``nextRecordsUrl``, a Collections answer
with one result too few, a Bulk 2.0 job without an id, a results CSV without its ``sf__``
columns.  Messages name the call and what was wrong, never the body.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from connectors.errors import ContractViolation
from connectors.salesforce._errors import API, Call
from connectors.salesforce._records import text_lines

_HTML = re.compile(r"\s*<")  # a body whose first non-blank character is "<"

BULK_STATES = frozenset(
    {"Open", "UploadComplete", "InProgress", "JobComplete", "Failed", "Aborted"}
)


def _breach(call: Call, what: str) -> ContractViolation:
    return ContractViolation(f"{call.describe()}: response breaks its contract: {what}", api=API)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _count(value: Any) -> int | None:
    """A non-negative JSON integer (never a boolean, a float or a string)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def query_page(body: Any, call: Call) -> Mapping[str, Any]:
    """A REST query page: ``totalSize`` (int), ``done`` (bool), ``records`` (list of objects)
    and, when not done, ``nextRecordsUrl`` (a ``/services/data/...`` path)."""
    if not isinstance(body, Mapping):
        raise _breach(call, f"expected a query page object, got {_kind(body)}")
    if _count(body.get("totalSize")) is None:
        raise _breach(call, f"totalSize is {_kind(body.get('totalSize'))}, not a count")
    done = body.get("done")
    if not isinstance(done, bool):
        raise _breach(call, f"done is {_kind(done)}, not a boolean")
    records = body.get("records")
    if not isinstance(records, list):
        raise _breach(call, f"records is {_kind(records)}, not a list")
    if not all(isinstance(r, Mapping) for r in records):
        raise _breach(call, "records holds something that is not a record object")
    if not done:
        url = body.get("nextRecordsUrl")
        if not isinstance(url, str) or not url.startswith("/services/data/"):
            raise _breach(call, "done is false but nextRecordsUrl is missing or not an API path")
        if not records:
            raise _breach(call, "an empty page that says more records follow")
    return body


def count_page(body: Any, call: Call) -> int:
    """``SELECT COUNT()``: ``totalSize`` is the count."""
    page = query_page(body, call)
    return int(page["totalSize"])


def query_progress(page: Mapping[str, Any], first: bool, seen: int, total: int, call: Call) -> None:
    """Counts across the pages of one cursor.

    ``totalSize`` is fixed when the query runs, and the first page is rendered then too, so a
    first page that is also the last holds exactly ``totalSize`` records.  Later pages can
    be shorter (rows hard-deleted since the query ran are skipped), never longer.
    """
    if int(page["totalSize"]) != total:
        raise _breach(call, "totalSize changed between pages of one query")
    if seen > total:
        raise _breach(call, f"the pages held {seen} records but totalSize said {total}")
    if first and page["done"] and seen != total:
        raise _breach(call, f"a single page of {seen} records but totalSize said {total}")


def collection_results(body: Any, sent: int, call: Call) -> list[Mapping[str, Any]]:
    """sObject Collections: one result object per record sent, each with a boolean
    ``success`` (and, on failure, an ``errors`` list)."""
    if not isinstance(body, list):
        raise _breach(call, f"expected a result list, got {_kind(body)}")
    if len(body) != sent:
        raise _breach(call, f"{len(body)} results for {sent} records sent")
    for item in body:
        if not isinstance(item, Mapping) or not isinstance(item.get("success"), bool):
            raise _breach(call, "a result without a boolean success")
        if not item["success"] and not isinstance(item.get("errors"), list):
            raise _breach(call, "a failed result without an errors list")
        rid = item.get("id")
        if rid is not None and not isinstance(rid, str):
            raise _breach(call, f"a result id that is {_kind(rid)}, not a string")
    return list(body)


def job_info(body: Any, call: Call, job_id: str | None = None) -> Mapping[str, Any]:
    """A Bulk 2.0 job info: an ``id`` (the one asked about) and a known ``state``."""
    if not isinstance(body, Mapping):
        raise _breach(call, f"expected a job info object, got {_kind(body)}")
    if not isinstance(body.get("id"), str) or not body["id"]:
        raise _breach(call, "a job info without an id")
    if job_id is not None and body["id"] != job_id:
        raise _breach(call, "the job info is about another job")
    if body.get("state") not in BULK_STATES:
        raise _breach(call, "a job info without a known state")
    return body


def job_count(info: Mapping[str, Any], name: str, call: Call) -> int:
    """A count of a finished job (``numberRecordsProcessed`` ...): present and an integer."""
    value = info.get(name)
    # Bulk 2.0 sends these as JSON numbers; a numeric string is tolerated.
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    count = _count(value)
    if count is None:
        raise _breach(call, f"{name} is {_kind(info.get(name))}, not a count")
    return count


def csv_header(text: str, required: Collection[str], call: Call, what: str) -> list[str]:
    """The header of a Bulk 2.0 CSV, which must hold every ``required`` column (compared
    case-insensitively).  An empty body is no CSV at all."""
    # No copy of the body (a Bulk result chunk is tens of MB): no strip(), no StringIO.
    if not text or text.isspace():
        raise _breach(call, f"an empty {what} body (not even a header)")
    if _HTML.match(text):
        raise _breach(call, f"the {what} body is not CSV (an HTML page?)")
    try:
        header = next(csv.reader(text_lines(text)), [])
    except csv.Error:
        raise _breach(call, f"the {what} body is not CSV") from None
    have = {h.strip().lower() for h in header}
    missing = [c for c in required if c.lower() not in have]
    if missing:
        raise _breach(call, f"the {what} CSV lacks the column(s) {', '.join(sorted(missing))}")
    return header


def csv_columns_match(header: Sequence[str], expected: Sequence[str], call: Call) -> None:
    """A Bulk query results CSV has exactly the selected columns."""
    have = sorted(h.strip().lower() for h in header)
    want = sorted(e.lower() for e in expected)
    if have != want:
        raise _breach(call, "the results CSV columns are not the selected fields")
