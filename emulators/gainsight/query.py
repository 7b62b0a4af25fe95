"""The query language shared by the data read API and the Cockpit (CTA) list API.

A query is compiled once into plain closures over the tables' compact rows:

- :class:`Resolver` turns ``Csm__gr.Email`` style paths (up to two ``__gr`` hops; a hop over
  a dropdown field reaches the item's ``Name`` / ``Gsid``) into getters.
- :func:`compile_where` turns ``where.conditions`` + ``where.expression`` into a predicate.
- :func:`select_rows` filters, orders and pages.

Matching rules (the reference does not pin them down; these are the emulator's choices):

- EMAIL fields: EQ / NE / IN compare case-insensitively.  STRING (and every other text type)
  compares case-sensitively for EQ / NE / IN / LT / GT ..., while CONTAINS / STARTS_WITH /
  ENDS_WITH are case-insensitive for all text.
- EQ and IN match any of the values; NE matches rows equal to none of them, *including*
  rows where the field is null.  LT/GT/LTE/GTE/BTW never match null.  BTW is inclusive.
- IS_NULL treats null and "" alike.  INCLUDES / EXCLUDES split the stored text on ``;``
  (multi-select) and test membership case-insensitively.
- Dropdown fields may be filtered by item GSID or by item name.
- ``expression`` takes AND / OR (any case) and parentheses; AND binds tighter than OR.
  Without an expression all conditions are ANDed.
- Ordering: nulls last ascending, first descending (PostgreSQL's default); ties keep the
  default order, which is insertion order.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from emulators.gainsight.errors import GainsightError
from emulators.gainsight.picklists import FIELD_CATEGORIES, Picklists
from emulators.gainsight.values import (
    DATE_TYPES,
    DAY_MS,
    NUMBER_TYPES,
    TEXT_TYPES,
    as_text,
    parse_bool,
    parse_datetime,
    parse_number,
)
from emulators.store import FieldDef, Table

Row = list[Any]
Getter = Callable[[Row], Any]
Step = Callable[[Any], Any]  # one hop of a path: row -> row / GSID -> name / row -> value
Predicate = Callable[[Row], bool]

MAX_HOPS = 2
OPERATORS = frozenset(
    {
        "EQ", "NE", "LT", "GT", "LTE", "GTE", "BTW", "IN", "CONTAINS", "STARTS_WITH",
        "ENDS_WITH", "IS_NULL", "IS_NOT_NULL", "INCLUDES", "EXCLUDES",
    }
)  # fmt: skip
_PICKLIST_FIELDS = {"name": FieldDef("Name", "STRING"), "gsid": FieldDef("Gsid", "GSID")}


@dataclass(frozen=True)
class FieldPath:
    """A resolved field reference as the caller spelled it."""

    text: str
    field: FieldDef  # the final field (its type drives parsing and rendering)
    getter: Getter
    hops: tuple[str, ...]  # lookup / dropdown fields traversed, e.g. ("TypeId",)
    category: str | None  # dropdown category when the final field is a dropdown


@dataclass(frozen=True)
class Dialect:
    """How one API spells conditions and reports query errors."""

    condition_key: str  # "name" (data API) or "fieldName" (Cockpit)
    invalid_field: Callable[[str, str], GainsightError]  # (clause, field text)
    bad_request: Callable[[str], GainsightError]
    bad_date: Callable[[str, Any], GainsightError]
    bad_value: Callable[[str, Any], GainsightError]


class Resolver:
    """Resolves field paths against the emulator's tables."""

    def __init__(self, tables: Mapping[str, Table], picklists: Picklists) -> None:
        self._tables = tables
        self._picklists = picklists

    def resolve(self, object_name: str, text: str) -> FieldPath | None:
        """The path's getter and final field, or None if any part is unknown."""
        if not isinstance(text, str):
            return None
        parts = text.strip().split(".")
        if any(not p for p in parts) or len(parts) > MAX_HOPS + 1:
            return None
        obj = object_name.lower()
        steps: list[Step] = []
        hops: list[str] = []
        category: str | None = None
        for part in parts[:-1]:
            if category is not None or not part.lower().endswith("__gr"):
                return None
            table = self._tables[obj]
            base = table.schema.field(part[:-4])
            if base is None:
                return None
            pos = table.pos[base.name.lower()]
            hops.append(base.name)
            if base.type == "DROPDOWN":
                category = FIELD_CATEGORIES.get((obj, base.name.lower()))
                if category is None:
                    return None
                steps.append(itemgetter(pos))
                continue
            target = (base.reference_to or "").lower()
            if base.type != "LOOKUP" or target not in self._tables:
                return None
            steps.append(_hop(self._tables[target].rows, pos))
            obj = target
        last = parts[-1]
        if category is not None:
            final = _PICKLIST_FIELDS.get(last.lower())
            if final is None:
                return None
            if final.name == "Name":
                steps.append(self._picklists.name)
            return FieldPath(text, final, _compose(steps), tuple(hops), None)
        fd = self._tables[obj].schema.field(last)
        if fd is None:
            return None
        steps.append(itemgetter(self._tables[obj].pos[fd.name.lower()]))
        final_category = (
            FIELD_CATEGORIES.get((obj, fd.name.lower())) if fd.type == "DROPDOWN" else None
        )
        return FieldPath(text, fd, _compose(steps), tuple(hops), final_category)


def _hop(rows: Mapping[str, Row], pos: int) -> Step:
    def step(row: Row) -> Any:
        ref = row[pos]
        return rows.get(ref) if ref else None

    return step


def _compose(steps: Sequence[Step]) -> Getter:
    if len(steps) == 1:
        return steps[0]

    def get(row: Row) -> Any:
        cur: Any = row
        for step in steps:
            if cur is None:
                return None
            cur = step(cur)
        return cur

    return get


# -- conditions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    path: FieldPath
    operator: str
    values: tuple[Any, ...]
    predicate: Predicate


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def parse_value(
    path: FieldPath,
    value: Any,
    picklists: Picklists,
    dialect: Dialect,
    time_zone: str | None = None,
) -> Any:
    """A filter literal converted to the stored representation of the path's field."""
    if value is None:
        return None
    ftype = path.field.type
    if ftype in DATE_TYPES:
        ms = parse_datetime(value, time_zone)
        if ms is None:
            raise dialect.bad_date(path.text, value)
        return ms - ms % DAY_MS if ftype == "DATE" else ms
    if ftype in NUMBER_TYPES:
        number = parse_number(value)
        if number is None:
            raise dialect.bad_value(path.text, value)
        return number
    if ftype == "BOOLEAN":
        flag = parse_bool(value)
        if flag is None:
            raise dialect.bad_value(path.text, value)
        return flag
    text = as_text(value)
    if text is None:
        raise dialect.bad_value(path.text, value)
    if path.category is not None:
        return picklists.resolve(path.category, text) or text
    return text


def build_condition(
    path: FieldPath,
    operator: Any,
    raw_values: Any,
    picklists: Picklists,
    dialect: Dialect,
    time_zone: str | None = None,
) -> Condition:
    if not isinstance(operator, str) or operator.upper() not in OPERATORS:
        raise dialect.bad_request(f"Invalid operator {operator!r} for {path.text}")
    op = operator.upper()
    if raw_values is None and op in ("IS_NULL", "IS_NOT_NULL"):
        raw_values = []
    if not isinstance(raw_values, list):
        raise dialect.bad_request(f"Condition value must be an array ({path.text})")
    values = tuple(parse_value(path, v, picklists, dialect, time_zone) for v in raw_values)
    predicate = _predicate(path, op, values, dialect)
    return Condition(path, op, values, predicate)


def _predicate(path: FieldPath, op: str, values: tuple[Any, ...], dialect: Dialect) -> Predicate:
    g = path.getter
    ftype = path.field.type
    is_text = ftype in TEXT_TYPES

    def need(n: int | None) -> None:
        if (n is None and not values) or (n is not None and len(values) != n):
            what = "at least one value" if n is None else f"exactly {n} value(s)"
            raise dialect.bad_request(f"Operator {op} needs {what} ({path.text})")
        if n is not None and any(v is None for v in values):
            raise dialect.bad_request(f"Operator {op} does not take null ({path.text})")

    if op in ("EQ", "IN", "NE"):
        need(None)
        if ftype == "EMAIL":
            lowered = frozenset(_lower(v) for v in values)
            if op == "NE":
                return lambda row: _lower(g(row)) not in lowered
            return lambda row: _lower(g(row)) in lowered
        members = frozenset(values)
        if op == "NE":
            return lambda row: g(row) not in members
        return lambda row: g(row) in members
    if op in ("LT", "GT", "LTE", "GTE"):
        need(1)
        return _compare(g, op, values[0])
    if op == "BTW":
        need(2)
        low, high = values

        def between(row: Row) -> bool:
            v = g(row)
            try:
                return v is not None and low <= v <= high
            except TypeError:
                return False

        return between
    if op in ("CONTAINS", "STARTS_WITH", "ENDS_WITH"):
        need(None)
        if not is_text:
            raise dialect.bad_request(f"Operator {op} applies to text fields only ({path.text})")
        needles = tuple(str(v).lower() for v in values if v is not None)

        def text_match(row: Row) -> bool:
            v = g(row)
            if not isinstance(v, str):
                return False
            low = v.lower()
            if op == "CONTAINS":
                return any(n in low for n in needles)
            if op == "STARTS_WITH":
                return low.startswith(needles)
            return low.endswith(needles)

        return text_match
    if op == "IS_NULL":
        return lambda row: g(row) in (None, "")
    if op == "IS_NOT_NULL":
        return lambda row: g(row) not in (None, "")
    # INCLUDES / EXCLUDES on multi-select text (values joined by ";").
    need(None)
    wanted = frozenset(str(v).lower() for v in values if v is not None)

    def includes(row: Row) -> bool:
        v = g(row)
        items = {p.strip().lower() for p in v.split(";")} if isinstance(v, str) else set()
        return bool(items & wanted)

    if op == "INCLUDES":
        return includes
    return lambda row: not includes(row)


def _compare(g: Getter, op: str, bound: Any) -> Predicate:
    def check(row: Row) -> bool:
        v = g(row)
        if v is None:
            return False
        try:
            if op == "LT":
                return bool(v < bound)
            if op == "GT":
                return bool(v > bound)
            if op == "LTE":
                return bool(v <= bound)
            return bool(v >= bound)
        except TypeError:
            return False

    return check


# -- expressions -----------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(\(|\)|[A-Za-z0-9_]+)")


def _tokenize(expression: str, dialect: Dialect) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = expression.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise dialect.bad_request(f"Invalid expression: {expression!r}")
        tokens.append(m.group(1))
        pos = m.end()
    return tokens


Node = tuple[str, Any]  # ("alias", name) | ("and", [nodes]) | ("or", [nodes])


def parse_expression(expression: str, dialect: Dialect) -> Node:
    """Parse ``A AND (B OR C)`` into a small tree."""
    tokens = _tokenize(expression, dialect)
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        tok = peek()
        if tok is None:
            raise dialect.bad_request(f"Invalid expression: {expression!r}")
        pos += 1
        return tok

    def parse_or() -> Node:
        items = [parse_and()]
        while (tok := peek()) is not None and tok.upper() == "OR":
            take()
            items.append(parse_and())
        return items[0] if len(items) == 1 else ("or", items)

    def parse_and() -> Node:
        items = [parse_atom()]
        while (tok := peek()) is not None and tok.upper() == "AND":
            take()
            items.append(parse_atom())
        return items[0] if len(items) == 1 else ("and", items)

    def parse_atom() -> Node:
        tok = take()
        if tok == "(":
            node = parse_or()
            if take() != ")":
                raise dialect.bad_request(f"Invalid expression: {expression!r}")
            return node
        if tok == ")" or tok.upper() in ("AND", "OR"):
            raise dialect.bad_request(f"Invalid expression: {expression!r}")
        return ("alias", tok)

    if not tokens:
        raise dialect.bad_request("Empty expression")
    tree = parse_or()
    if pos != len(tokens):
        raise dialect.bad_request(f"Invalid expression: {expression!r}")
    return tree


def _compile_node(node: Node, conditions: Mapping[str, Condition], dialect: Dialect) -> Predicate:
    kind, payload = node
    if kind == "alias":
        cond = conditions.get(payload)
        if cond is None:
            raise dialect.bad_request(f"Unknown alias {payload!r} in expression")
        return cond.predicate
    parts = [_compile_node(child, conditions, dialect) for child in payload]
    if kind == "and":
        return lambda row: all(p(row) for p in parts)
    return lambda row: any(p(row) for p in parts)


@dataclass(frozen=True)
class Where:
    predicate: Predicate | None
    # Conditions that every matching row must satisfy (top-level AND), used to narrow by index.
    required: tuple[Condition, ...]


def compile_where(
    where: Any,
    object_name: str,
    resolver: Resolver,
    picklists: Picklists,
    dialect: Dialect,
    *,
    time_zone: str | None = None,
) -> Where:
    if where is None:
        return Where(None, ())
    if not isinstance(where, dict):
        raise dialect.bad_request("where must be an object")
    raw_conditions = where.get("conditions") or []
    if not isinstance(raw_conditions, list):
        raise dialect.bad_request("where.conditions must be an array")
    by_alias: dict[str, Condition] = {}
    ordered: list[Condition] = []
    for i, raw in enumerate(raw_conditions):
        if not isinstance(raw, dict):
            raise dialect.bad_request("Each condition must be an object")
        if raw.get("associatedRecord"):
            # Cockpit linked-object filters: the emulator keeps no associated records.
            cond = Condition(_NO_PATH, "EQ", (), lambda row: False)
        else:
            name = raw.get(dialect.condition_key)
            if not isinstance(name, str) or not name:
                raise dialect.bad_request(f"Condition {i} has no {dialect.condition_key!r}")
            path = resolver.resolve(object_name, name)
            if path is None:
                raise dialect.invalid_field("where", name)
            cond = build_condition(
                path, raw.get("operator"), raw.get("value"), picklists, dialect, time_zone
            )
        alias = raw.get("alias")
        if alias is not None:
            if not isinstance(alias, str) or alias in by_alias:
                raise dialect.bad_request(f"Invalid or duplicate alias {alias!r}")
            by_alias[alias] = cond
        ordered.append(cond)
    expression = where.get("expression")
    if not ordered:
        return Where(None, ())
    if expression is None or (isinstance(expression, str) and not expression.strip()):
        preds = [c.predicate for c in ordered]
        predicate: Predicate = (
            preds[0] if len(preds) == 1 else (lambda row: all(p(row) for p in preds))
        )
        return Where(predicate, tuple(ordered))
    if not isinstance(expression, str):
        raise dialect.bad_request("where.expression must be a string")
    tree = parse_expression(expression, dialect)
    predicate = _compile_node(tree, by_alias, dialect)
    required: tuple[Condition, ...] = ()
    if tree[0] == "alias":
        required = (by_alias[tree[1]],)
    elif tree[0] == "and":
        required = tuple(by_alias[child[1]] for child in tree[1] if child[0] == "alias")
    return Where(predicate, required)


_NO_PATH = FieldPath(
    "associatedRecord", FieldDef("associatedRecord", "STRING"), lambda r: None, (), None
)


# -- execution -------------------------------------------------------------------------


def _candidates(table: Table, required: Iterable[Condition], id_field: str) -> set[str] | None:
    """Ids that can possibly match, from an equality index, or None to scan everything."""
    indexed = {name.lower() for name in table.schema.indexes}
    for cond in required:
        path = cond.path
        if cond.operator not in ("EQ", "IN") or path.hops or path.field.type == "EMAIL":
            continue
        if not all(isinstance(v, str) for v in cond.values):
            continue
        name = path.field.name.lower()
        if name == id_field.lower():
            return {v for v in cond.values if v in table.rows}
        if name in indexed:
            found: set[str] = set()
            for v in cond.values:
                found |= table.find(name, v)
            return found
    return None


def select_rows(
    table: Table,
    where: Where,
    order: Sequence[tuple[FieldPath, bool]],
    offset: int,
    limit: int,
    sequence: Mapping[str, int],
    *,
    id_field: str = "Gsid",
) -> list[Row]:
    """Matching rows, ordered (``(path, descending)`` pairs), from ``offset``, at most ``limit``."""
    predicate = where.predicate
    ids = _candidates(table, where.required, id_field)
    if ids is not None:
        ordered_ids = sorted(ids, key=lambda rid: sequence.get(rid, 0))
        source: Iterable[Row] = [r for r in (table.rows.get(i) for i in ordered_ids) if r]
    else:
        with table.lock:
            source = list(table.rows.values())
    if not order:
        # Default order is insertion order, so the scan can stop once the page is full.
        out: list[Row] = []
        skip = offset
        for row in source:
            if predicate is None or predicate(row):
                if skip:
                    skip -= 1
                    continue
                out.append(row)
                if len(out) >= limit:
                    break
        return out
    rows = [r for r in source if predicate is None or predicate(r)]
    wanted = offset + limit
    directions = {desc for _, desc in order}
    if len(directions) == 1:
        desc = directions.pop()
        getters = [_sort_key(p) for p, _ in order]

        def key(row: Row) -> tuple[Any, ...]:
            return tuple(k(row) for k in getters)

        if wanted < len(rows) // 2:
            pick = heapq.nlargest if desc else heapq.nsmallest
            rows = pick(wanted, rows, key=key)
        else:
            rows.sort(key=key, reverse=desc)
    else:
        for path, desc in reversed(order):
            rows.sort(key=_sort_key(path), reverse=desc)
    return rows[offset:wanted]


def _sort_key(path: FieldPath) -> Callable[[Row], tuple[int, Any]]:
    g = path.getter

    def key(row: Row) -> tuple[int, Any]:
        v = g(row)
        return (1, 0) if v is None else (0, v)

    return key
