"""Pure record shaping: REST records flattened, Bulk CSV typed like REST, ingest CSV built.

No I/O here; the client feeds these functions with responses and describe metadata.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connectors.dates import parse_datetime

# --- REST records ------------------------------------------------------------------------


_SCALARS = frozenset({str, int, float, bool})
_PLAIN = frozenset({str, int, bool, type(None)})


def flatten(record: Mapping[str, Any], expected: Sequence[str] = ()) -> dict[str, Any]:
    """A REST record without ``attributes``, parent relationships as ``Owner.Email`` keys.

    ``expected`` are the selected field paths; a null parent (``"Owner": null``) then still
    yields ``Owner.Email: None`` so every record of a query has the same keys.  Child
    subquery results become lists of flattened records (first page only).
    """
    out: dict[str, Any] = {}
    wanted = {path.lower(): path for path in expected if "." in path}
    _flatten_into(record, "", out, wanted)
    return out


def _flatten_into(
    record: Mapping[str, Any], prefix: str, out: dict[str, Any], wanted: dict[str, str]
) -> None:
    for key, value in record.items():
        if key == "attributes":
            continue
        path = prefix + key
        if value.__class__ in _SCALARS:  # the common case, without the ABC check below
            out[path] = value
            continue
        if isinstance(value, Mapping):
            if "attributes" in value:
                _flatten_into(value, path + ".", out, wanted)
                continue
            if "records" in value and "totalSize" in value:
                out[path] = [flatten(child) for child in value.get("records") or ()]
                continue
            out[path] = dict(value)  # compound field (address, location)
            continue
        if value is None and wanted:
            stem = path.lower() + "."
            nested = [orig for low, orig in wanted.items() if low.startswith(stem)]
            if nested:
                for orig in nested:
                    out[path + "." + orig[len(stem) :]] = None
                continue
        out[path] = value


# --- Bulk 2.0 query results ----------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """How one CSV column maps onto a REST record key and type."""

    key: str  # the key REST would use (describe's spelling)
    type: str  # describe field type ("string", "boolean", "datetime" ...)


def _datetime_rest(text: str) -> str:
    """Bulk ``2024-05-01T12:00:03.000Z`` -> REST ``2024-05-01T12:00:03.000+0000``."""
    if len(text) == 24 and text[23] == "Z" and text[19] == "." and text[10] == "T":
        try:  # the form Bulk sends: only the zone suffix differs
            dt.datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return text[:23] + "+0000"
    parsed = parse_datetime(text)
    if parsed is None:
        raise ValueError("empty date-time")
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}+0000"


def _text(text: str) -> Any:
    return text or None


def _boolean(text: str) -> Any:
    return text.lower() == "true" if text else None


def _int(text: str) -> Any:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def _double(text: str) -> Any:
    return float(text) if text else None


def _datetime(text: str) -> Any:
    if not text:
        return None
    try:
        return _datetime_rest(text)
    except ValueError:
        return text


_CONVERTERS: dict[str, Any] = {
    "boolean": _boolean,
    "int": _int,
    "double": _double,
    "currency": _double,
    "percent": _double,
    "datetime": _datetime,
}


def convert(text: str, type_: str) -> Any:
    """One Bulk CSV cell as the REST API would have typed it (empty -> None)."""
    return _CONVERTERS.get(type_, _text)(text)


def text_lines(text: str) -> Iterator[str]:
    """The lines of ``text``, each with its ``\n``, one at a time.  (``io.StringIO`` would copy
    a whole result chunk - tens of MB - into a buffer of four bytes a character; a quoted
    value spanning lines is put together by the csv reader.)"""
    start, size = 0, len(text)
    while start < size:
        end = text.find("\n", start)
        if end < 0:
            yield text[start:]
            return
        yield text[start : end + 1]
        start = end + 1


def csv_records(text: str, columns: Mapping[str, Column]) -> Iterator[dict[str, Any]]:
    """Typed records from one Bulk result chunk; unknown columns stay strings."""
    reader = csv.reader(text_lines(text))
    header = next(reader, None)
    if not header:
        return
    plan = [columns.get(name.lower(), Column(name, "string")) for name in header]
    keys = [col.key for col in plan]
    converters = [_CONVERTERS.get(col.type, _text) for col in plan]
    width = len(plan)
    for row in reader:
        if not row:
            continue
        cells = row if len(row) >= width else row + [""] * (width - len(row))
        yield {key: conv(cell) for key, conv, cell in zip(keys, converters, cells, strict=False)}


def csv_row_count(text: str) -> int:
    """How many records :func:`csv_records` makes of ``text``, without making them (the
    rows are parsed and dropped one by one: a result chunk's count is checked before any of
    its records is used, yet its records are never all in memory at once)."""
    reader = csv.reader(text_lines(text))
    if not next(reader, None):
        return 0
    return sum(1 for row in reader if row)


class UnorderedPage(list[dict[str, Any]]):
    """A page of a read whose rows come in no particular order (Bulk API 2.0 without ORDER
    BY): a caller must not checkpoint a position from its last row."""

    ordered = False


def pages(records: Iterable[dict[str, Any]], size: int) -> Iterator[UnorderedPage]:
    """Group records into lists of at most ``size`` (unordered: they come from Bulk)."""
    page = UnorderedPage()
    for record in records:
        page.append(record)
        if len(page) >= size:
            yield page
            page = UnorderedPage()
    if page:
        yield page


# --- writes --------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """A field value as the REST API takes it in JSON."""
    if value.__class__ in _PLAIN:  # the common case first, without the isinstance chain
        return value
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a finite number: {value!r}")
        return float(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("a naive datetime is ambiguous; give it a time zone")
        utc = value.astimezone(dt.UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        # Multi-select picklists are ';'-joined strings on the wire.
        return ";".join(str(v) for v in value)
    raise TypeError(f"cannot send a {type(value).__name__} to Salesforce")


def csv_cell(value: Any) -> str:
    """A field value as a Bulk 2.0 ingest CSV cell.

    None and "" become ``#N/A`` (set the field null): an empty cell would mean "leave it
    unchanged" to Bulk, while REST stores "" as null; both write paths must agree.
    """
    if value is None or value == "":
        return "#N/A"
    converted = jsonable(value)
    if isinstance(converted, bool):
        return "true" if converted else "false"
    if isinstance(converted, float):
        return format(Decimal(repr(converted)), "f")
    return str(converted)


def csv_line(cells: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


class ResultMatcher:
    """Maps Bulk 2.0 result rows back to input positions.

    Result rows echo the uploaded columns but come in no guaranteed order, so each input
    row is keyed by its uploaded cells; identical rows are interchangeable, so a queue per
    key is enough.  Should the echo differ in surrounding blanks, the cells are compared
    stripped; rows that carry an ``Id`` column fall back to matching on the Id alone.  The
    two fallback indexes are built the first time one is needed (an echo is normally exact),
    and a queue is a list: a job of 10,000 rows held three deques a row (~20 MB).
    """

    def __init__(self, header: Sequence[str]) -> None:
        self.header = list(header)
        self._added: list[tuple[int, tuple[str, ...]]] = []
        self._by_cells: dict[tuple[str, ...], list[int]] = {}
        self._by_stripped: dict[tuple[str, ...], list[int]] | None = None
        self._by_id: dict[str, list[int]] | None = None
        self._id_col = next((i for i, h in enumerate(self.header) if h.lower() == "id"), None)
        self._taken: set[int] = set()

    def add(self, index: int, cells: Sequence[str]) -> None:
        key = tuple(cells)
        self._added.append((index, key))
        self._by_cells.setdefault(key, []).append(index)

    def _stripped(self) -> dict[tuple[str, ...], list[int]]:
        if self._by_stripped is None:
            self._by_stripped = {}
            for index, cells in self._added:
                self._by_stripped.setdefault(tuple(c.strip() for c in cells), []).append(index)
        return self._by_stripped

    def _ids(self, col: int) -> dict[str, list[int]]:
        if self._by_id is None:
            self._by_id = {}
            for index, cells in self._added:
                self._by_id.setdefault(cells[col].strip().upper(), []).append(index)
        return self._by_id

    def _pop(self, queue: list[int] | None) -> int | None:
        while queue:
            index = queue.pop(0)
            if index not in self._taken:
                self._taken.add(index)
                return index
        return None

    def match(self, row: Mapping[str, str]) -> int | None:
        """The input index of one result row (as a DictReader row), or None."""
        cells = tuple(row.get(name, "") or "" for name in self.header)
        index = self._pop(self._by_cells.get(cells))
        if index is None:
            index = self._pop(self._stripped().get(tuple(c.strip() for c in cells)))
        if index is None and self._id_col is not None:
            rid = row.get(self.header[self._id_col]) or row.get("sf__Id") or ""
            index = self._pop(self._ids(self._id_col).get(rid.strip().upper()))
        return index


def result_rows(text: str) -> Iterator[dict[str, str]]:
    """Rows of a Bulk 2.0 results CSV (successful / failed / unprocessed)."""
    if not text or text.isspace():
        return
    yield from csv.DictReader(text_lines(text))
