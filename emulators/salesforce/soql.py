"""The SOQL subset the emulator understands: tokenizer, recursive-descent parser, compiler.

    plan = compile_query("SELECT Id, Owner.Email FROM Account WHERE Name LIKE 'A%'",
                         tables, now_ms=clock.now_ms())
    ids = plan.execute(include_deleted=False)      # the ordered matching Ids (a cursor)
    records = [plan.render(tables["Account"].rows[i], "62.0") for i in ids[:2000]]

Supported (anything else is ``MALFORMED_QUERY``, as the real parser reports it):

* ``SELECT`` field paths (``Name``, ``Owner.Email``, ``Account.Owner.Email``) or ``COUNT()``;
  ``FROM`` one object; ``WHERE``; ``ORDER BY`` (``ASC``/``DESC``, ``NULLS FIRST``/``LAST``);
  ``LIMIT``; ``OFFSET`` (at most 2,000).
* Conditions: ``= != <> < <= > >=``, ``[NOT] IN (...)``, ``LIKE`` (``%``/``_``,
  case-insensitive), ``INCLUDES``/``EXCLUDES`` (multi-select picklists), ``NOT``, ``AND``,
  ``OR`` and parentheses.  As in real SOQL, ``AND`` and ``OR`` cannot be mixed without
  parentheses, and ``NOT`` only starts a condition (``WHERE NOT (...)``, ``(NOT A = 1)``).
* Literals: strings in single quotes with backslash escapes, numbers, ``true``/``false``,
  ``null``, dates ``2024-05-01``, datetimes ``2024-05-01T00:00:00Z`` / ``.000Z`` /
  ``+02:00`` / ``-0500``, and the relative date literals in :data:`RELATIVE_LITERALS`.

Semantics follow SOQL rather than SQL: string comparisons are case-insensitive, ``!=`` and
``NOT IN`` match null values, ordering puts nulls first for ``ASC`` and last for ``DESC``.
Id literals may be 15 or 18 characters (compared as 18).  A literal whose type does not fit
the field (a date on a datetime field, a quoted number ...) is refused with
``INVALID_QUERY_FILTER_OPERATOR`` and the real message text ("value of filter criterion for
field 'X' must be of type ..."); real Salesforce may file that case under ``INVALID_FIELD``.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulators.sfid import InvalidId, normalize
from emulators.store import FieldDef, ObjectSchema, Table

Row = list[Any]
Getter = Callable[[Row], Any]
Predicate = Callable[[Row], bool]

MAX_OFFSET = 2000

STRING_TYPES = frozenset(
    {"string", "textarea", "picklist", "multipicklist", "email", "url", "phone", "combobox"}
)
ID_TYPES = frozenset({"id", "reference"})
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})
FLOAT_TYPES = frozenset({"double", "currency", "percent"})

_INVALID_FIELD_HINT = (
    "If you are attempting to use a custom field, be sure to append the '__c' after the "
    "custom field name. Please reference your WSDL or the describe call for the appropriate "
    "names."
)
_INVALID_TYPE_HINT = (
    "If you are attempting to use a custom object, be sure to append the '__c' after the "
    "entity name. Please reference your WSDL or the describe call for the appropriate names."
)
_INVALID_REL_HINT = (
    "If you are attempting to use a custom relationship, be sure to append the '__r' after "
    "the custom relationship name. Please reference your WSDL or the describe call for the "
    "appropriate names."
)


class SoqlError(Exception):
    """A query the emulator refuses; ``code`` is the Salesforce errorCode."""

    def __init__(self, code: str, detail: str, pos: int | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.pos = pos

    def message(self, text: str) -> str:
        """The message as Salesforce words it: the query line, a caret, row and column."""
        if self.pos is None:
            return self.detail
        pos = min(max(self.pos, 0), len(text))
        row = text.count("\n", 0, pos) + 1
        line_start = text.rfind("\n", 0, pos) + 1
        line_end = text.find("\n", pos)
        line = text[line_start : line_end if line_end >= 0 else len(text)]
        col = pos - line_start + 1
        return f"\n{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{self.detail}"


# ---------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------

_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(Z|[+-]\d{2}:?\d{2})"
)
_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?![T\d])")
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?![\w.])")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPS = ("<=", ">=", "!=", "<>", "=", "<", ">")
_PUNCT = {"(": "LPAREN", ")": "RPAREN", ",": "COMMA", ".": "DOT", ":": "COLON"}
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


@dataclass(frozen=True)
class Token:
    kind: str  # IDENT STRING NUMBER DATE DATETIME OP LPAREN RPAREN COMMA DOT COLON EOF
    text: str  # source text (for messages)
    pos: int
    value: Any = None  # parsed literal value
    like: str | None = None  # for STRING: the LIKE pattern as a regular expression

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "IDENT" else ""


def tokenize(text: str) -> list[Token]:
    """Split a query into tokens; raises SoqlError(MALFORMED_QUERY) on a stray character."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "'":
            i = _string_token(text, i, tokens)
            continue
        if ch.isdigit() or (ch in "+-." and i + 1 < n and text[i + 1].isdigit()):
            m = _DATETIME_RE.match(text, i)
            if m:
                tokens.append(Token("DATETIME", m.group(0), i, _datetime_ms(m, i)))
                i = m.end()
                continue
            m = _DATE_RE.match(text, i)
            if m:
                tokens.append(Token("DATE", m.group(0), i, _date_str(m, i)))
                i = m.end()
                continue
            m = _NUMBER_RE.match(text, i)
            if m:
                raw = m.group(0)
                value: int | float = float(raw) if "." in raw else int(raw)
                tokens.append(Token("NUMBER", raw, i, value))
                i = m.end()
                continue
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: {_word_at(text, i)}", i)
        m = _IDENT_RE.match(text, i)
        if m:
            tokens.append(Token("IDENT", m.group(0), i))
            i = m.end()
            continue
        op = next((o for o in _OPS if text.startswith(o, i)), None)
        if op:
            tokens.append(Token("OP", op, i))
            i += len(op)
            continue
        if ch in _PUNCT:
            tokens.append(Token(_PUNCT[ch], ch, i))
            i += 1
            continue
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: {ch}", i)
    tokens.append(Token("EOF", "<EOF>", n))
    return tokens


def _word_at(text: str, i: int) -> str:
    m = re.compile(r"\S+").match(text, i)
    return m.group(0) if m else "<EOF>"


def _string_token(text: str, start: int, tokens: list[Token]) -> int:
    value: list[str] = []
    pattern: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n:
                break
            nxt = text[i + 1]
            if nxt in ("%", "_"):
                # \% and \_ are literal characters in a LIKE pattern.
                value.append(nxt)
                pattern.append(re.escape(nxt))
            elif nxt in _ESCAPES:
                value.append(_ESCAPES[nxt])
                pattern.append(re.escape(_ESCAPES[nxt]))
            else:
                raise SoqlError(
                    "MALFORMED_QUERY",
                    f"Invalid string literal '{text[start : i + 2]}'. Illegal character "
                    f"sequence '\\{nxt}' in string literal.",
                    i,
                )
            i += 2
            continue
        if ch == "'":
            tokens.append(
                Token(
                    "STRING",
                    text[start : i + 1],
                    start,
                    "".join(value),
                    "".join(pattern),
                )
            )
            return i + 1
        value.append(ch)
        pattern.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    raise SoqlError("MALFORMED_QUERY", "unexpected token: <EOF>", n)


def _datetime_ms(m: re.Match[str], pos: int) -> int:
    year, month, day, hour, minute, second = (int(m.group(k)) for k in range(1, 7))
    millis = int((m.group(7) or "0").ljust(3, "0"))
    zone = m.group(8)
    try:
        if zone == "Z":
            tz = dt.UTC
        else:
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            tz = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        value = dt.datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=tz)
    except ValueError as exc:
        raise SoqlError("MALFORMED_QUERY", f"invalid datetime: {m.group(0)}", pos) from exc
    return int(value.timestamp() * 1000)


def _date_str(m: re.Match[str], pos: int) -> str:
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
    except ValueError as exc:
        raise SoqlError("MALFORMED_QUERY", f"invalid date: {m.group(0)}", pos) from exc


# ---------------------------------------------------------------------------------------
# Syntax tree
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRef:
    parts: tuple[str, ...]
    pos: int


@dataclass(frozen=True)
class Literal:
    kind: str  # string number boolean null date datetime relative
    value: Any
    pos: int
    text: str
    like: str | None = None


@dataclass(frozen=True)
class Compare:
    field: FieldRef
    op: str  # = != < <= > >= LIKE IN NOT IN INCLUDES EXCLUDES
    values: tuple[Literal, ...]
    pos: int


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND OR
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Compare | BoolOp | Not


@dataclass(frozen=True)
class OrderItem:
    field: FieldRef
    descending: bool
    nulls_first: bool


@dataclass
class SelectStatement:
    fields: list[FieldRef]
    count: bool
    sobject: str
    sobject_pos: int
    where: Condition | None = None
    order: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None


_UNSUPPORTED = {
    "GROUP": "GROUP BY is not supported by the emulator",
    "HAVING": "HAVING is not supported by the emulator",
    "WITH": "WITH is not supported by the emulator",
    "FOR": "FOR clauses are not supported by the emulator",
    "UPDATE": "FOR UPDATE is not supported by the emulator",
    "USING": "USING SCOPE is not supported by the emulator",
    "TYPEOF": "TYPEOF is not supported by the emulator",
}
_KEYWORDS = frozenset(
    {
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "INCLUDES", "EXCLUDES",
        "ORDER", "BY", "ASC", "DESC", "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "NULL",
        "TRUE", "FALSE", "GROUP", "HAVING", "WITH", "FOR", "USING", "TYPEOF",
    }
)  # fmt: skip


class Parser:
    """Recursive-descent parser producing a :class:`SelectStatement`."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # -- helpers ----------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "EOF":
            self.i += 1
        return tok

    def unexpected(self, tok: Token | None = None) -> SoqlError:
        tok = tok or self.tok
        if tok.upper in _UNSUPPORTED:
            return SoqlError("MALFORMED_QUERY", _UNSUPPORTED[tok.upper], tok.pos)
        return SoqlError("MALFORMED_QUERY", f"unexpected token: {tok.text}", tok.pos)

    def keyword(self, word: str) -> bool:
        if self.tok.upper == word:
            self.advance()
            return True
        return False

    def expect_keyword(self, word: str) -> Token:
        if self.tok.upper != word:
            raise self.unexpected()
        return self.advance()

    def expect(self, kind: str) -> Token:
        if self.tok.kind != kind:
            raise self.unexpected()
        return self.advance()

    # -- grammar ----------------------------------------------------------------------
    def parse(self) -> SelectStatement:
        self.expect_keyword("SELECT")
        fields, count = self.select_list()
        self.expect_keyword("FROM")
        obj = self.tok
        if obj.kind != "IDENT" or obj.upper in _KEYWORDS:
            raise self.unexpected()
        self.advance()
        stmt = SelectStatement(fields, count, obj.text, obj.pos)
        if self.keyword("WHERE"):
            stmt.where = self.condition()
        if self.tok.upper == "ORDER":
            self.advance()
            self.expect_keyword("BY")
            stmt.order = self.order_list()
        if self.keyword("LIMIT"):
            stmt.limit = self.integer()
        if self.keyword("OFFSET"):
            stmt.offset = self.integer()
        if self.tok.kind != "EOF":
            raise self.unexpected()
        return stmt

    def select_list(self) -> tuple[list[FieldRef], bool]:
        fields: list[FieldRef] = []
        count = False
        while True:
            tok = self.tok
            if tok.kind == "LPAREN":
                raise SoqlError(
                    "MALFORMED_QUERY", "subqueries are not supported by the emulator", tok.pos
                )
            if tok.kind != "IDENT" or tok.upper in _KEYWORDS - {"FROM"}:
                raise self.unexpected()
            if tok.upper == "FROM":
                raise self.unexpected()
            if self.tokens[self.i + 1].kind == "LPAREN":
                self.advance()
                self.advance()
                if tok.upper == "COUNT" and self.tok.kind == "RPAREN":
                    self.advance()
                    count = True
                else:
                    raise SoqlError(
                        "MALFORMED_QUERY",
                        f"{tok.text}() with arguments and other functions are not supported "
                        "by the emulator (only COUNT())",
                        tok.pos,
                    )
            else:
                fields.append(self.field_ref())
            if self.tok.kind != "COMMA":
                break
            self.advance()
        if count and fields:
            raise SoqlError(
                "MALFORMED_QUERY",
                "COUNT() cannot be combined with other fields in the select list",
                fields[0].pos,
            )
        return fields, count

    def field_ref(self) -> FieldRef:
        tok = self.tok
        if tok.kind != "IDENT" or tok.upper in _KEYWORDS:
            raise self.unexpected()
        parts = [self.advance().text]
        while self.tok.kind == "DOT":
            self.advance()
            nxt = self.tok
            if nxt.kind != "IDENT":
                raise self.unexpected()
            parts.append(self.advance().text)
        return FieldRef(tuple(parts), tok.pos)

    def integer(self) -> int:
        tok = self.tok
        if tok.kind != "NUMBER" or not isinstance(tok.value, int) or tok.value < 0:
            raise self.unexpected()
        self.advance()
        return int(tok.value)

    def condition(self) -> Condition:
        if self.tok.upper == "NOT":
            self.advance()
            return Not(self.simple())
        first = self.simple()
        op = self.tok.upper
        if op not in ("AND", "OR"):
            return first
        items = [first]
        while self.tok.upper == op:
            self.advance()
            items.append(self.simple())
        if self.tok.upper in ("AND", "OR"):
            # Mixing AND and OR needs parentheses in SOQL.
            raise self.unexpected()
        return BoolOp(op, tuple(items))

    def simple(self) -> Condition:
        if self.tok.kind == "LPAREN":
            self.advance()
            inner = self.condition()
            self.expect("RPAREN")
            return inner
        return self.comparison()

    def comparison(self) -> Compare:
        if self.tok.kind == "IDENT" and self.tokens[self.i + 1].kind == "LPAREN":
            raise SoqlError(
                "MALFORMED_QUERY",
                f"functions in WHERE ({self.tok.text}) are not supported by the emulator",
                self.tok.pos,
            )
        ref = self.field_ref()
        tok = self.tok
        if tok.kind == "OP":
            self.advance()
            op = "!=" if tok.text == "<>" else tok.text
            return Compare(ref, op, (self.literal(),), tok.pos)
        word = tok.upper
        if word == "NOT":
            self.advance()
            self.expect_keyword("IN")
            return Compare(ref, "NOT IN", self.literal_list(), tok.pos)
        if word in ("IN", "INCLUDES", "EXCLUDES"):
            self.advance()
            return Compare(ref, word, self.literal_list(), tok.pos)
        if word == "LIKE":
            self.advance()
            value = self.literal()
            return Compare(ref, "LIKE", (value,), tok.pos)
        raise self.unexpected()

    def literal_list(self) -> tuple[Literal, ...]:
        if self.tok.kind != "LPAREN":
            raise self.unexpected()
        self.advance()
        if self.tok.upper == "SELECT":
            raise SoqlError(
                "MALFORMED_QUERY",
                "semi-join subqueries are not supported by the emulator",
                self.tok.pos,
            )
        values = [self.literal()]
        while self.tok.kind == "COMMA":
            self.advance()
            values.append(self.literal())
        self.expect("RPAREN")
        return tuple(values)

    def literal(self) -> Literal:
        tok = self.tok
        kind = tok.kind
        if kind == "STRING":
            self.advance()
            return Literal("string", tok.value, tok.pos, tok.text, tok.like)
        if kind == "NUMBER":
            self.advance()
            return Literal("number", tok.value, tok.pos, tok.text)
        if kind == "DATE":
            self.advance()
            return Literal("date", tok.value, tok.pos, tok.text)
        if kind == "DATETIME":
            self.advance()
            return Literal("datetime", tok.value, tok.pos, tok.text)
        if kind == "IDENT":
            word = tok.upper
            if word in ("TRUE", "FALSE"):
                self.advance()
                return Literal("boolean", word == "TRUE", tok.pos, tok.text)
            if word == "NULL":
                self.advance()
                return Literal("null", None, tok.pos, tok.text)
            if word in RELATIVE_LITERALS:
                self.advance()
                return Literal("relative", (word, None), tok.pos, tok.text)
            if word in RELATIVE_N_LITERALS:
                self.advance()
                if self.tok.kind != "COLON":
                    raise self.unexpected()
                self.advance()
                n = self.integer()
                return Literal("relative", (word, n), tok.pos, f"{tok.text}:{n}")
        raise self.unexpected()

    def order_list(self) -> list[OrderItem]:
        items: list[OrderItem] = []
        while True:
            ref = self.field_ref()
            descending = False
            if self.keyword("DESC"):
                descending = True
            else:
                self.keyword("ASC")
            nulls_first = not descending
            if self.keyword("NULLS"):
                if self.keyword("FIRST"):
                    nulls_first = True
                else:
                    self.expect_keyword("LAST")
                    nulls_first = False
            items.append(OrderItem(ref, descending, nulls_first))
            if self.tok.kind != "COMMA":
                return items
            self.advance()


def parse(text: str) -> SelectStatement:
    """Parse a SOQL query; raises SoqlError."""
    return Parser(text).parse()


# ---------------------------------------------------------------------------------------
# Relative date literals
# ---------------------------------------------------------------------------------------

RELATIVE_LITERALS = frozenset(
    {
        "YESTERDAY", "TODAY", "TOMORROW", "LAST_WEEK", "THIS_WEEK", "NEXT_WEEK",
        "LAST_MONTH", "THIS_MONTH", "NEXT_MONTH", "LAST_90_DAYS", "NEXT_90_DAYS",
        "THIS_QUARTER", "LAST_QUARTER", "NEXT_QUARTER", "THIS_YEAR", "LAST_YEAR", "NEXT_YEAR",
        "THIS_FISCAL_YEAR", "LAST_FISCAL_YEAR", "NEXT_FISCAL_YEAR",
    }
)  # fmt: skip
RELATIVE_N_LITERALS = frozenset(
    {"LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO", "LAST_N_MONTHS", "NEXT_N_MONTHS"}
)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def relative_range(word: str, n: int | None, today: dt.date) -> tuple[dt.date, dt.date]:
    """The half-open day range [start, end) a relative date literal covers (UTC org).

    ``LAST_N_DAYS:n`` covers today and the n days before it; ``NEXT_N_DAYS:n`` starts
    tomorrow and covers n days; weeks start on Sunday; fiscal years are calendar years.
    """
    day = dt.timedelta(days=1)
    if word == "YESTERDAY":
        return today - day, today
    if word == "TODAY":
        return today, today + day
    if word == "TOMORROW":
        return today + day, today + 2 * day
    if word.endswith("_WEEK"):
        start = today - dt.timedelta(days=(today.weekday() + 1) % 7)
        shift = {"LAST_WEEK": -7, "THIS_WEEK": 0, "NEXT_WEEK": 7}[word]
        start += dt.timedelta(days=shift)
        return start, start + 7 * day
    if word.endswith("_MONTH"):
        first = today.replace(day=1)
        shift = {"LAST_MONTH": -1, "THIS_MONTH": 0, "NEXT_MONTH": 1}[word]
        return _add_months(first, shift), _add_months(first, shift + 1)
    if word.endswith("_QUARTER"):
        first = dt.date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
        shift = {"LAST_QUARTER": -3, "THIS_QUARTER": 0, "NEXT_QUARTER": 3}[word]
        return _add_months(first, shift), _add_months(first, shift + 3)
    if word.endswith("_YEAR"):
        shift = -1 if word.startswith("LAST") else 1 if word.startswith("NEXT") else 0
        return dt.date(today.year + shift, 1, 1), dt.date(today.year + shift + 1, 1, 1)
    if word == "LAST_90_DAYS":
        return relative_range("LAST_N_DAYS", 90, today)
    if word == "NEXT_90_DAYS":
        return relative_range("NEXT_N_DAYS", 90, today)
    count = n or 0
    if word == "LAST_N_DAYS":
        return today - count * day, today + day
    if word == "NEXT_N_DAYS":
        return today + day, today + (count + 1) * day
    if word == "N_DAYS_AGO":
        return today - count * day, today - (count - 1) * day
    if word == "LAST_N_MONTHS":
        first = today.replace(day=1)
        return _add_months(first, -count), first
    if word == "NEXT_N_MONTHS":
        first = today.replace(day=1)
        return _add_months(first, 1), _add_months(first, 1 + count)
    raise ValueError(word)


def _day_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


# ---------------------------------------------------------------------------------------
# Rendering helpers (shared with the REST layer)
# ---------------------------------------------------------------------------------------


def format_datetime(ms: int) -> str:
    """Epoch ms -> ``2024-05-01T12:00:03.000+0000`` (the REST API's JSON format)."""
    value = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}+0000"


def format_datetime_csv(ms: int) -> str:
    """Epoch ms -> ``2024-05-01T12:00:03.000Z`` (the Bulk API CSV format)."""
    value = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def csv_value(value: Any, ftype: str) -> str | None:
    """A stored value as Bulk API CSV text (None stays None: an empty field)."""
    if value is None:
        return None
    if ftype == "datetime":
        return format_datetime_csv(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------------------------
# Compilation
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedField:
    """A field path resolved against the schemas: how to read it from a base row."""

    path: tuple[str, ...]  # canonical names: relationship names then the field name
    field: FieldDef  # the final field
    getter: Getter
    hops: tuple[tuple[int, Table, str], ...]  # (reference column, parent table, rel. name)

    @property
    def name(self) -> str:
        return ".".join(self.path)


def resolve_field(
    ref: FieldRef, schema: ObjectSchema, tables: Mapping[str, Table]
) -> ResolvedField:
    """Resolve ``Owner.Email`` style paths; raises SoqlError(INVALID_FIELD)."""
    parts = list(ref.parts)
    if len(parts) > 1 and parts[0].lower() == schema.name.lower():
        if schema.reference_by_relationship(parts[0]) is None:
            parts = parts[1:]  # "Account.Name" FROM Account: the object name as a prefix
    current = schema
    hops: list[tuple[int, Table, str]] = []
    canonical: list[str] = []
    for rel in parts[:-1]:
        ref_field = current.reference_by_relationship(rel)
        target = ref_field.reference_to if ref_field is not None else None
        if ref_field is None or target is None or target not in tables:
            raise SoqlError(
                "INVALID_FIELD",
                f"Didn't understand relationship '{rel}' in field path. {_INVALID_REL_HINT}",
                ref.pos,
            )
        table = tables[current.name]
        parent = tables[target]
        hops.append((table.pos[ref_field.name.lower()], parent, ref_field.relationship_name or ""))
        canonical.append(ref_field.relationship_name or rel)
        current = parent.schema
    fdef = current.field(parts[-1])
    if fdef is None:
        raise SoqlError(
            "INVALID_FIELD",
            f"No such column '{parts[-1]}' on entity '{current.name}'. {_INVALID_FIELD_HINT}",
            ref.pos,
        )
    canonical.append(fdef.name)
    column = tables[current.name].pos[fdef.name.lower()]
    getter: Getter = operator.itemgetter(column)
    for ref_col, parent, _ in reversed(hops):
        getter = _hop(ref_col, parent.rows, getter)
    return ResolvedField(tuple(canonical), fdef, getter, tuple(hops))


def _hop(ref_col: int, parent_rows: dict[str, Row], inner: Getter) -> Getter:
    def get(row: Row) -> Any:
        parent_id = row[ref_col]
        if parent_id is None:
            return None
        parent = parent_rows.get(parent_id)
        return None if parent is None else inner(parent)

    return get


def _type_error(fdef: FieldDef, lit: Literal) -> SoqlError:
    ftype = fdef.type
    if ftype in STRING_TYPES or ftype in ID_TYPES:
        detail = (
            f"value of filter criterion for field '{fdef.name}' must be of type string and "
            "should be enclosed in quotes"
        )
    else:
        soap = {"datetime": "dateTime", "currency": "double", "percent": "double"}.get(ftype, ftype)
        detail = (
            f"value of filter criterion for field '{fdef.name}' must be of type {soap} and "
            "should not be enclosed in quotes"
        )
    return SoqlError("INVALID_QUERY_FILTER_OPERATOR", detail, lit.pos)


class _Compiler:
    def __init__(self, schema: ObjectSchema, tables: Mapping[str, Table], today: dt.date):
        self.schema = schema
        self.tables = tables
        self.today = today

    def condition(self, cond: Condition) -> Predicate:
        if isinstance(cond, BoolOp):
            preds = [self.condition(c) for c in cond.items]
            if cond.op == "AND":
                return lambda row: all(p(row) for p in preds)
            return lambda row: any(p(row) for p in preds)
        if isinstance(cond, Not):
            inner = self.condition(cond.item)
            return lambda row: not inner(row)
        return self.compare(cond)

    # The value a literal takes for a field of this type (or a (lo, hi) range).
    def value_for(self, fdef: FieldDef, lit: Literal) -> Any:
        ftype = fdef.type
        kind = lit.kind
        if kind == "null":
            return None
        if ftype in ID_TYPES:
            if kind != "string":
                raise _type_error(fdef, lit)
            try:
                return normalize(lit.value)
            except InvalidId:
                raise SoqlError(
                    "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {lit.value}", lit.pos
                ) from None
        if ftype in STRING_TYPES:
            if kind != "string":
                raise _type_error(fdef, lit)
            return lit.value.lower()
        if ftype == "boolean":
            if kind != "boolean":
                raise _type_error(fdef, lit)
            return lit.value
        if ftype in NUMBER_TYPES:
            if kind != "number":
                raise _type_error(fdef, lit)
            return lit.value
        if ftype == "date":
            if kind == "date":
                return lit.value
            if kind == "relative":
                lo, hi = relative_range(lit.value[0], lit.value[1], self.today)
                return (lo.isoformat(), hi.isoformat())
            raise _type_error(fdef, lit)
        if ftype == "datetime":
            if kind == "datetime":
                return lit.value
            if kind == "relative":
                lo, hi = relative_range(lit.value[0], lit.value[1], self.today)
                return (_day_ms(lo), _day_ms(hi))
            raise _type_error(fdef, lit)
        raise SoqlError(
            "INVALID_QUERY_FILTER_OPERATOR",
            f"field '{fdef.name}' can not be filtered in a query call",
            lit.pos,
        )

    def compare(self, cmp: Compare) -> Predicate:
        rf = resolve_field(cmp.field, self.schema, self.tables)
        fdef = rf.field
        if not fdef.filterable:
            raise SoqlError(
                "INVALID_FIELD",
                f"field '{fdef.name}' can not be filtered in a query call",
                cmp.field.pos,
            )
        get = rf.getter
        op = cmp.op
        ftype = fdef.type
        text_like = ftype in STRING_TYPES
        if op == "LIKE":
            lit = cmp.values[0]
            if lit.kind != "string" or not (text_like or ftype in ID_TYPES):
                raise SoqlError(
                    "INVALID_QUERY_FILTER_OPERATOR",
                    f"invalid operator on field '{fdef.name}': LIKE",
                    cmp.pos,
                )
            regex = re.compile(lit.like or "", re.IGNORECASE | re.DOTALL)
            match = regex.fullmatch
            return lambda row: (v := get(row)) is not None and match(v) is not None
        if op in ("INCLUDES", "EXCLUDES"):
            if ftype != "multipicklist":
                raise SoqlError(
                    "INVALID_QUERY_FILTER_OPERATOR",
                    f"invalid operator on field '{fdef.name}': {op}",
                    cmp.pos,
                )
            wanted = []
            for lit in cmp.values:
                if lit.kind != "string":
                    raise _type_error(fdef, lit)
                wanted.append(frozenset(x.strip().lower() for x in lit.value.split(";")))

            def includes(row: Row) -> bool:
                v = get(row)
                have = {x.lower() for x in v.split(";")} if v else set()
                return any(w <= have for w in wanted)

            if op == "INCLUDES":
                return includes
            return lambda row: not includes(row)
        if op in ("IN", "NOT IN"):
            values = [self.value_for(fdef, lit) for lit in cmp.values]
            if any(isinstance(v, tuple) for v in values):
                raise SoqlError(
                    "INVALID_QUERY_FILTER_OPERATOR",
                    "date literals with a range are not supported in IN by the emulator",
                    cmp.pos,
                )
            has_null = any(v is None for v in values)
            wanted_set = frozenset(v for v in values if v is not None)
            norm = _normaliser(fdef)

            def member(row: Row) -> bool:
                v = get(row)
                if v is None:
                    return has_null
                return norm(v) in wanted_set

            if op == "IN":
                return member
            return lambda row: not member(row)
        # Plain comparison operators.
        lit = cmp.values[0]
        value = self.value_for(fdef, lit)
        if value is None:
            if op == "=":
                return lambda row: get(row) is None
            if op == "!=":
                return lambda row: get(row) is not None
            raise SoqlError(
                "INVALID_QUERY_FILTER_OPERATOR",
                f"invalid operator on field '{fdef.name}' with a null value: {op}",
                cmp.pos,
            )
        if ftype == "boolean" and op not in ("=", "!="):
            raise SoqlError(
                "INVALID_QUERY_FILTER_OPERATOR",
                f"invalid operator on field '{fdef.name}': {op}",
                cmp.pos,
            )
        if isinstance(value, tuple):
            return _range_predicate(get, op, value[0], value[1])
        if ftype == "multipicklist" and op in ("=", "!="):
            wanted_mp = frozenset(x.strip() for x in value.split(";"))

            def mp_equal(row: Row) -> bool:
                v = get(row)
                return v is not None and frozenset(x.lower() for x in v.split(";")) == wanted_mp

            return mp_equal if op == "=" else (lambda row: not mp_equal(row))
        if text_like:
            return _text_predicate(get, op, value)
        return _plain_predicate(get, op, value)

    def order_key(self, item: OrderItem) -> SortPass:
        rf = resolve_field(item.field, self.schema, self.tables)
        if not rf.field.filterable:
            raise SoqlError(
                "INVALID_FIELD",
                f"field '{rf.field.name}' can not be sorted in a query call",
                item.field.pos,
            )
        return SortPass(rf.getter, rf.field.type in STRING_TYPES, item.descending, item.nulls_first)


@dataclass(frozen=True)
class SortPass:
    """One ORDER BY item: how to read the value and where nulls go."""

    getter: Getter
    lower: bool
    descending: bool
    nulls_first: bool
    is_id: bool = False  # the row's own Id: the key is the Id string itself

    def apply(self, ids: list[str], rows: Mapping[str, Row]) -> list[str]:
        """Stable sort of ``ids`` by this key.

        Keys are plain values (no per-row tuples): allocating hundreds of thousands of
        containers would wake the cyclic garbage collector, which then walks every row of
        every table.  Nulls are split off instead and put back at the right end.
        """
        if self.is_id:
            return sorted(ids, reverse=self.descending)
        get = self.getter
        lower = self.lower
        present: list[str] = []
        keys: list[Any] = []
        nulls: list[str] = []
        for rid in ids:
            v = get(rows[rid])
            if v is None:
                nulls.append(rid)
            else:
                present.append(rid)
                keys.append(v.lower() if lower else v)
        order = sorted(range(len(keys)), key=keys.__getitem__, reverse=self.descending)
        values = [present[i] for i in order]
        return nulls + values if self.nulls_first else values + nulls


def _normaliser(fdef: FieldDef) -> Callable[[Any], Any]:
    if fdef.type in STRING_TYPES:
        return str.lower
    return _identity


def _identity(value: Any) -> Any:
    return value


def _text_predicate(get: Getter, op: str, value: str) -> Predicate:
    if op == "=":
        return lambda row: (v := get(row)) is not None and v.lower() == value
    if op == "!=":
        return lambda row: (v := get(row)) is None or v.lower() != value
    cmp = _CMP[op]
    return lambda row: (v := get(row)) is not None and cmp(v.lower(), value)


def _plain_predicate(get: Getter, op: str, value: Any) -> Predicate:
    if op == "=":
        return lambda row: get(row) == value
    if op == "!=":
        return lambda row: get(row) != value
    cmp = _CMP[op]
    return lambda row: (v := get(row)) is not None and cmp(v, value)


def _range_predicate(get: Getter, op: str, lo: Any, hi: Any) -> Predicate:
    if op == "=":
        return lambda row: (v := get(row)) is not None and lo <= v < hi
    if op == "!=":
        return lambda row: (v := get(row)) is None or not lo <= v < hi
    if op == "<":
        return lambda row: (v := get(row)) is not None and v < lo
    if op == "<=":
        return lambda row: (v := get(row)) is not None and v < hi
    if op == ">":
        return lambda row: (v := get(row)) is not None and v >= hi
    return lambda row: (v := get(row)) is not None and v >= lo  # >=


_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


# ---------------------------------------------------------------------------------------
# The compiled query
# ---------------------------------------------------------------------------------------


@dataclass
class Slot:
    """One key of a rendered record: a plain field or a relationship object."""

    name: str
    column: int | None = None  # plain field column
    ftype: str = ""
    ref_column: int | None = None  # relationship: reference column on this row
    parent: Table | None = None
    children: list[Slot] = field(default_factory=list)


@dataclass
class QueryPlan:
    """A parsed and resolved query, ready to run against the tables."""

    text: str
    statement: SelectStatement
    table: Table
    fields: list[ResolvedField]
    predicate: Predicate | None
    order_keys: list[SortPass]
    candidates: Callable[[], list[str]] | None  # index lookup narrowing the scan
    slots: list[Slot]

    @property
    def sobject(self) -> str:
        return self.table.schema.name

    @property
    def count_only(self) -> bool:
        return self.statement.count

    def execute(self, *, include_deleted: bool) -> list[str]:
        """The Ids of the matching rows, ordered, after OFFSET and LIMIT."""
        table = self.table
        pred = self.predicate
        deleted = table.pos.get("isdeleted") if not include_deleted else None
        rows = table.rows
        with table.lock:  # writers would otherwise resize the dict under the scan
            items: Iterable[tuple[str, Row]]
            if self.candidates is not None:
                items = [(rid, rows[rid]) for rid in sorted(self.candidates()) if rid in rows]
            else:
                items = rows.items()
            if deleted is not None:
                if pred is None:
                    ids = [rid for rid, row in items if not row[deleted]]
                else:
                    ids = [rid for rid, row in items if not row[deleted] and pred(row)]
            elif pred is None:
                ids = [rid for rid, _ in items]
            else:
                ids = [rid for rid, row in items if pred(row)]
            # Sort by the last key first: each pass is a stable sort.
            for sort_pass in reversed(self.order_keys):
                ids = sort_pass.apply(ids, rows)
        start = self.statement.offset or 0
        stop = None if self.statement.limit is None else start + self.statement.limit
        return ids[start:stop] if start or stop is not None else ids

    def render(self, row: Row, version: str) -> dict[str, Any]:
        """One record as the REST API returns it (JSON-ready)."""
        prefix = f"/services/data/v{version}/sobjects/"
        return render_object(row, self.table, self.slots, prefix)

    def csv_header(self) -> list[str]:
        return [f.name for f in self.fields]

    def csv_row(self, row: Row) -> list[str | None]:
        return [csv_value(f.getter(row), f.field.type) for f in self.fields]


def render_object(row: Row, table: Table, slots: list[Slot], prefix: str) -> dict[str, Any]:
    name = table.schema.name
    rid = row[table.pos["id"]]
    out: dict[str, Any] = {"attributes": {"type": name, "url": f"{prefix}{name}/{rid}"}}
    for slot in slots:
        if slot.column is not None:
            v = row[slot.column]
            if v is not None:
                if slot.ftype == "datetime":
                    v = format_datetime(v)
                elif slot.ftype in FLOAT_TYPES and not isinstance(v, float):
                    v = float(v)  # currency, double and percent render as JSON decimals
            out[slot.name] = v
        else:
            parent_id = row[slot.ref_column] if slot.ref_column is not None else None
            parent_row = None
            if parent_id is not None and slot.parent is not None:
                parent_row = slot.parent.rows.get(parent_id)
            if parent_row is None or slot.parent is None:
                out[slot.name] = None
            else:
                out[slot.name] = render_object(parent_row, slot.parent, slot.children, prefix)
    return out


def _build_slots(fields: list[ResolvedField], base: Table) -> list[Slot]:
    slots: list[Slot] = []
    for rf in fields:
        level = slots
        table = base
        for ref_col, parent, rel in rf.hops:
            slot = next((s for s in level if s.column is None and s.name == rel), None)
            if slot is None:
                slot = Slot(rel, ref_column=ref_col, parent=parent)
                level.append(slot)
            level = slot.children
            table = parent
        level.append(
            Slot(rf.field.name, column=table.pos[rf.field.name.lower()], ftype=rf.field.type)
        )
    return slots


def _index_candidates(
    where: Condition | None, schema: ObjectSchema, table: Table, compiler: _Compiler
) -> Callable[[], list[str]] | None:
    """For ``Id``/indexed-field equality or IN at the top level of the WHERE, an index lookup.

    The full predicate still runs on the candidates, so this only narrows the scan.
    """
    if where is None:
        return None
    terms: Sequence[Condition] = (
        where.items if isinstance(where, BoolOp) and where.op == "AND" else (where,)
    )
    indexed = {name.lower() for name in schema.indexes}
    for term in terms:
        if not isinstance(term, Compare) or term.op not in ("=", "IN"):
            continue
        if len(term.field.parts) != 1:
            continue
        fdef = schema.field(term.field.parts[0])
        if fdef is None:
            continue
        key = fdef.name.lower()
        if key != "id" and key not in indexed:
            continue
        values = [compiler.value_for(fdef, lit) for lit in term.values]
        if any(v is None or isinstance(v, tuple) for v in values):
            continue
        if key == "id":
            ids = list(dict.fromkeys(values))
            return lambda: ids
        field_name = fdef.name

        def lookup(values: list[Any] = values, field_name: str = field_name) -> list[str]:
            found: set[str] = set()
            for v in values:
                found |= table.find(field_name, v)
            return list(found)

        return lookup
    return None


def compile_query(text: str, tables: Mapping[str, Table], *, now_ms: int) -> QueryPlan:
    """Parse and resolve a query against the tables; raises SoqlError."""
    stmt = parse(text)
    table = next((t for name, t in tables.items() if name.lower() == stmt.sobject.lower()), None)
    if table is None:
        raise SoqlError(
            "INVALID_TYPE",
            f"sObject type '{stmt.sobject}' is not supported. {_INVALID_TYPE_HINT}",
            stmt.sobject_pos,
        )
    schema = table.schema
    today = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).date()
    compiler = _Compiler(schema, tables, today)
    fields: list[ResolvedField] = []
    seen: set[str] = set()
    for ref in stmt.fields:
        rf = resolve_field(ref, schema, tables)
        if rf.name.lower() in seen:
            raise SoqlError("MALFORMED_QUERY", f"duplicate field selected: {rf.name}", ref.pos)
        seen.add(rf.name.lower())
        fields.append(rf)
    if stmt.offset is not None and stmt.offset > MAX_OFFSET:
        raise SoqlError(
            "NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}"
        )
    predicate = compiler.condition(stmt.where) if stmt.where is not None else None
    order_keys = [compiler.order_key(item) for item in stmt.order]
    candidates = _index_candidates(stmt.where, schema, table, compiler)
    return QueryPlan(
        text=text,
        statement=stmt,
        table=table,
        fields=fields,
        predicate=predicate,
        order_keys=order_keys,
        candidates=candidates,
        slots=_build_slots(fields, table),
    )
