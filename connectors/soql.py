"""Building SOQL safely: every value that reaches a query goes through this module.

    where = f"AccountId IN {id_list(ids)} AND SystemModstamp >= {literal(since)}"
    soql = select("AccountTeamMember", ["Id", "UserId", "User.Email"], where,
                  order_by=["SystemModstamp", "Id"], limit=500)

Strings are quoted with backslash escapes (so ``' OR Name != '`` stays one plain value),
ids are validated (15/18 characters, checksum) and normalised to 18 characters, field and
object names are checked against the API-name grammar.  Nothing here talks to the network.

The module also carries the few pieces of query *reading* the connector needs
(:func:`select_fields`, :func:`count_query`, :func:`bulk_incompatibility`); they understand
the queries :func:`select` builds and any ordinary SOQL text, skipping string literals.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from urllib.parse import urlencode

from connectors.batching import batched
from connectors.sfid import normalize

__all__ = [
    "bulk_incompatibility",
    "count_query",
    "encoded_length",
    "field",
    "from_object",
    "id_chunks",
    "id_list",
    "id_literal",
    "ids_per_query",
    "like",
    "literal",
    "quote",
    "select",
    "select_fields",
    "sobject_name",
    "without_order_by",
]

# Backslash first, so the escapes added for the other characters are not escaped again.
_ESCAPES = (
    ("\\", "\\\\"),
    ("'", "\\'"),
    ('"', '\\"'),
    ("\n", "\\n"),
    ("\r", "\\r"),
    ("\t", "\\t"),
    ("\b", "\\b"),
    ("\f", "\\f"),
)
# An API name: letters, digits and single underscores, optionally with a namespace prefix
# (``ns__``) and a type suffix (``__c``, ``__r`` ...).  Relationship paths go five deep.
_BASE = r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*"
_NAME = rf"(?:{_BASE}__)?{_BASE}(?:__[A-Za-z]+)?"
_NAME_RE = re.compile(_NAME)
_PATH_RE = re.compile(rf"{_NAME}(?:\.{_NAME}){{0,5}}")
_MAX_NAME = 120
_ORDER_RE = re.compile(
    r" *(?P<field>\S+)(?: +(?P<dir>ASC|DESC))?(?: +NULLS +(?P<nulls>FIRST|LAST))? *",
    re.IGNORECASE,
)


def quote(value: str) -> str:
    """A SOQL string literal: ``O'Brien`` -> ``'O\\'Brien'``."""
    if not isinstance(value, str):
        raise TypeError(f"quote() takes a str, not {type(value).__name__}")
    if "\x00" in value:
        raise ValueError("a SOQL string cannot contain a NUL character")
    for raw, escaped in _ESCAPES:
        value = value.replace(raw, escaped)
    return f"'{value}'"


def like(value: str, *, prefix: bool = False, suffix: bool = False) -> str:
    """A LIKE pattern matching ``value`` literally (``%`` and ``_`` escaped).

    ``prefix=True`` allows anything before it, ``suffix=True`` anything after:
    ``like("ac_me", suffix=True)`` -> ``'ac\\_me%'``.
    """
    body = quote(value)[1:-1].replace("%", "\\%").replace("_", "\\_")
    return "'" + ("%" if prefix else "") + body + ("%" if suffix else "") + "'"


def literal(value: object) -> str:
    """Any supported Python value as a SOQL literal.

    str -> quoted, bool -> true/false, None -> null, int/float/Decimal -> plain number,
    date -> ``YYYY-MM-DD``, aware datetime -> ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, floored to whole
    seconds, so an inclusive lower bound never skips a record).
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        number = Decimal(repr(value)) if isinstance(value, float) else value
        if not number.is_finite():
            raise ValueError(f"not a finite number: {value!r}")
        # SOQL has no exponent notation.
        text = format(number, "f")
        return "0" if text in ("-0", "-0.0") else text
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("a naive datetime is ambiguous in SOQL; give it a time zone")
        utc = value.astimezone(dt.UTC).replace(microsecond=0)
        return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%d")
    raise TypeError(f"no SOQL literal for {type(value).__name__}")


def id_literal(value: str) -> str:
    """A validated, quoted 18-character Id; :class:`~connectors.sfid.InvalidId` otherwise."""
    return quote(normalize(value))


def id_list(values: Iterable[str]) -> str:
    """``('001…','001…')`` for ``IN``: validated, de-duplicated, first-seen order kept."""
    seen: dict[str, None] = {}
    for value in values:
        seen.setdefault(normalize(value), None)
    if not seen:
        raise ValueError("an IN list needs at least one Id")
    return "(" + ",".join(quote(v) for v in seen) + ")"


# A REST call's URI and headers together may not exceed 16,384 bytes (414 / 431 beyond).
# A query is sent as ``GET …/query?q=<SOQL, URL-encoded>``: keep the encoded SOQL well below,
# leaving room for the path and the headers (a long bearer token, the query options).
MAX_QUERY_URI_BYTES = 12_000


def encoded_length(soql: str) -> int:
    """Bytes the SOQL takes in a query URI (form-encoded, as the REST client sends it)."""
    return len(urlencode({"q": soql})) - 2


def ids_per_query(render: Callable[[str], str], *, budget: int = MAX_QUERY_URI_BYTES) -> int:
    """How many Ids fit in the IN list of ``render(id_list(...))`` within ``budget`` bytes of
    query URI (every Id costs the same once encoded: 18 characters, two quotes, a comma)."""
    one = encoded_length(render(id_list(["000000000000000AAA"])))
    per_id = encoded_length(",'000000000000000AAA'")
    return max(1, (budget - one) // per_id + 1)


def id_chunks(
    ids: Sequence[str], render: Callable[[str], str], *, budget: int = MAX_QUERY_URI_BYTES
) -> Iterator[list[str]]:
    """Split ``ids`` into as few lists as possible such that ``render(id_list(chunk))`` - the
    whole query with the IN list - stays within ``budget`` bytes of query URI."""
    if not ids:
        return
    size = ids_per_query(render, budget=budget)
    for part in batched(ids, size):
        yield list(part)


def field(name: str) -> str:
    """Validate a field API name or relationship path (``Owner.Email``); returns it."""
    if not isinstance(name, str) or len(name) > 6 * _MAX_NAME or not _PATH_RE.fullmatch(name):
        raise ValueError(f"not a SOQL field name: {str(name)[:80]!r}")
    return name


def sobject_name(name: str) -> str:
    """Validate an sObject API name (``Account``, ``ns__Thing__c``); returns it."""
    if not isinstance(name, str) or len(name) > _MAX_NAME or not _NAME_RE.fullmatch(name):
        raise ValueError(f"not an sObject name: {str(name)[:80]!r}")
    return name


def _order_item(item: str) -> str:
    m = _ORDER_RE.fullmatch(item) if isinstance(item, str) else None
    if not m:
        raise ValueError(f"not an ORDER BY item: {str(item)[:80]!r}")
    parts = [field(m["field"])]
    if m["dir"]:
        parts.append(m["dir"].upper())
    if m["nulls"]:
        parts.append("NULLS " + m["nulls"].upper())
    return " ".join(parts)


def select(
    object_name: str,
    fields: Sequence[str],
    where: str | None = None,
    order_by: Sequence[str] = (),
    limit: int | None = None,
) -> str:
    """``SELECT … FROM … [WHERE …] [ORDER BY …] [LIMIT n]`` from validated parts.

    ``where`` is SOQL text the caller assembled with :func:`literal` & co.
    """
    if isinstance(fields, str):
        raise TypeError("fields must be a sequence of names, not one string")
    names: dict[str, str] = {}
    for name in fields:
        names.setdefault(field(name).lower(), name)
    if not names:
        raise ValueError("SELECT needs at least one field")
    columns, sobject = ", ".join(names.values()), sobject_name(object_name)
    soql = f"SELECT {columns} FROM {sobject}"  # noqa: S608 - every part is validated
    if where is not None and where.strip():
        soql += f" WHERE {where.strip()}"
    if order_by:
        if isinstance(order_by, str):
            raise TypeError("order_by must be a sequence of items, not one string")
        soql += " ORDER BY " + ", ".join(_order_item(item) for item in order_by)
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"LIMIT must be a non-negative int, not {limit!r}")
        soql += f" LIMIT {limit}"
    return soql


# --- reading queries ---------------------------------------------------------------------

_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _top_level_words(soql: str) -> list[tuple[str, int, int]]:
    """(UPPER word, start, depth) for every bare word outside string literals."""
    words: list[tuple[str, int, int]] = []
    depth = 0
    i, n = 0, len(soql)
    while i < n:
        ch = soql[i]
        if ch == "'":
            i += 1
            while i < n and soql[i] != "'":
                i += 2 if soql[i] == "\\" else 1
            i += 1
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        else:
            m = _WORD_RE.match(soql, i)
            if m and (i == 0 or not (soql[i - 1].isalnum() or soql[i - 1] in "_.")):
                words.append((m.group(0).upper(), i, depth))
                i = m.end()
                continue
            if m:
                i = m.end()
                continue
        i += 1
    return words


def _clause_bounds(soql: str) -> tuple[int, int, int]:
    """Positions of the top-level SELECT, FROM and the clause after FROM's object name."""
    words = [(w, pos) for w, pos, depth in _top_level_words(soql) if depth == 0]
    select_at = next((pos for w, pos in words if w == "SELECT"), -1)
    from_at = next((pos for w, pos in words if w == "FROM" and pos > select_at), -1)
    if select_at < 0 or from_at < 0:
        raise ValueError("not a SELECT … FROM … query")
    return select_at, from_at, len(soql)


def select_fields(soql: str) -> list[str]:
    """The items of the top-level SELECT list, as written (``Owner.Email``, ``COUNT()`` …)."""
    select_at, from_at, _ = _clause_bounds(soql)
    body = soql[select_at + len("SELECT") : from_at]
    items: list[str] = []
    depth, start = 0, 0
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "'":
            i += 1
            while i < len(body) and body[i] != "'":
                i += 2 if body[i] == "\\" else 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(body[start:i].strip())
            start = i + 1
        i += 1
    items.append(body[start:].strip())
    return [item for item in items if item]


def from_object(soql: str) -> str | None:
    """The object name after the top-level FROM (None when it cannot be read)."""
    try:
        _, from_at, _ = _clause_bounds(soql)
    except ValueError:
        return None
    m = _WORD_RE.match(soql[from_at + len("FROM") :].lstrip())
    return m.group(0) if m else None


def count_query(soql: str) -> str:
    """``SELECT COUNT() FROM …`` for a query (its WHERE kept, ORDER BY dropped)."""
    select_at, from_at, _ = _clause_bounds(soql)
    rest = soql[from_at:]
    words = [(w, pos) for w, pos, depth in _top_level_words(rest) if depth == 0]
    order_at = next((pos for w, pos in words if w == "ORDER"), None)
    if order_at is not None:
        after = next((pos for w, pos in words if pos > order_at and w in ("LIMIT", "OFFSET")), None)
        rest = rest[:order_at] + (rest[after:] if after is not None else "")
    return f"{soql[:select_at]}SELECT COUNT() {rest.strip()}".strip()


def without_order_by(soql: str) -> str:
    """The query without its top-level ORDER BY (LIMIT / OFFSET kept).

    Bulk API 2.0 runs a query with ORDER BY without PK chunking, and a large one then times
    out (S6): Bulk jobs are sent without it and ordered or checkpointed by the client."""
    words = [(w, pos) for w, pos, depth in _top_level_words(soql) if depth == 0]
    order_at = next((pos for w, pos in words if w == "ORDER"), None)
    if order_at is None:
        return soql
    after = next((pos for w, pos in words if pos > order_at and w in ("LIMIT", "OFFSET")), None)
    rest = soql[after:] if after is not None else ""
    return (soql[:order_at].rstrip() + (" " + rest if rest else "")).strip()


_BULK_UNSUPPORTED = {
    "GROUP": "GROUP BY",
    "OFFSET": "OFFSET",
    "TYPEOF": "TYPEOF",
    "COUNT": "aggregate function",
    "COUNT_DISTINCT": "aggregate function",
    "SUM": "aggregate function",
    "AVG": "aggregate function",
    "MIN": "aggregate function",
    "MAX": "aggregate function",
    "WITH": "WITH clause",
    "FOR": "FOR clause",
}


def bulk_incompatibility(soql: str) -> str | None:
    """Why Bulk API 2.0 cannot run this query (None when it can, as far as text shows).

    Bulk 2.0 refuses GROUP BY, OFFSET, TYPEOF, aggregate functions and parent-to-child
    subqueries; compound fields need describe metadata and are checked by the client.
    """
    for word, pos, depth in _top_level_words(soql):
        if word == "SELECT" and depth > 0:
            return "subquery"
        reason = _BULK_UNSUPPORTED.get(word)
        if reason is None:
            continue
        if reason == "aggregate function":
            # Only a call counts: ``Max__c`` is a field, ``MAX(`` a function.
            after = soql[pos + len(word) :].lstrip()
            if not after.startswith("("):
                continue
        return reason
    return None
