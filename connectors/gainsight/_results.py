"""Per-record results of a Gainsight write, mapped back to input order.

The partial-failure shapes of the Company and Cockpit write APIs are UNVERIFIED, so this
accepts every plausible one:

* ``data: {"count", "records": [{"Gsid"}...], "errors": [{index|record|Gsid|referenceId,
  errorCode|code, errorDesc|message, errors: [{fieldName...}]}]}``
* ``data`` as a list of per-item results (``referenceId`` / ``Gsid`` / ``success`` /
  ``errors``), or of bare echoes / Gsid strings;
* ``data`` as a dict keyed by referenceId (values: item dicts, Gsid strings or lists);
* ``data: null`` / count only.

A record is a success only on evidence; what cannot be attributed is failed with code
``UNCONFIRMED`` (or, after ``result: false``, with the call's own error code); a record
faulted without an error code gets ``FAILED``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.gainsight._classify import shorten

UNCONFIRMED = "UNCONFIRMED"  # the response neither confirmed nor faulted the record
FAILED = "FAILED"  # faulted by the response, which gave no error code
_RESULT_KEYS = frozenset({"records", "errors", "count", "failed", "failures", "successes"})


@dataclass(frozen=True)
class WriteResult:
    """The outcome for one input record; ``index`` is its position in the caller's sequence."""

    index: int
    id: str | None
    success: bool
    code: str | None = None
    message: str | None = None
    fields: tuple[str, ...] = ()


def first(entry: Mapping[str, Any], *names: str) -> Any:
    """The first non-null value among ``names``, matched case-insensitively."""
    lowered = {str(k).lower(): v for k, v in entry.items()}
    for name in names:
        value = lowered.get(name.lower())
        if value is not None:
            return value
    return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().lower() == b.strip().lower()
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


def error_details(entry: Any) -> tuple[str | None, str | None, tuple[str, ...]]:
    """(code, short message, fields) from one error entry of any plausible shape."""
    if isinstance(entry, str):
        return None, shorten(entry), ()
    if not isinstance(entry, Mapping):
        return None, None, ()
    code = first(entry, "errorCode", "code", "error_code")
    desc = first(entry, "errorDesc", "message", "errorMessage", "description")
    fields: list[str] = []

    def add_fields(value: Any) -> None:
        if isinstance(value, str) and value:
            fields.append(value)
        elif isinstance(value, list):
            fields.extend(str(v) for v in value if isinstance(v, str) and v)

    add_fields(first(entry, "fieldName", "field", "fields"))
    nested = first(entry, "errors", "fieldErrors", "error")
    if isinstance(nested, Mapping):
        nested = [nested]
    if isinstance(nested, str):
        desc = desc or nested
    elif isinstance(nested, list):
        for item in nested:
            if isinstance(item, Mapping):
                add_fields(first(item, "fieldName", "field", "fields"))
                code = code or first(item, "errorCode", "code")
                desc = desc or first(item, "errorDesc", "errorMessage", "message")
            elif isinstance(item, str):
                desc = desc or item
    return (
        str(code) if code is not None else None,
        shorten(str(desc)) if desc is not None else None,
        tuple(dict.fromkeys(fields)),
    )


class _Batch:
    """One batch being attributed: who failed, who is confirmed, who is still unknown."""

    def __init__(
        self,
        records: Sequence[Mapping[str, Any]],
        indices: Sequence[int],
        keys: Sequence[str],
        refs: Sequence[str] | None,
        update: bool,
    ) -> None:
        self.records = records
        self.indices = indices
        self.keys = tuple(keys)
        self.refs = refs
        self.update = update
        self.results: dict[int, WriteResult] = {}

    def undecided(self) -> list[int]:
        return [pos for pos in range(len(self.records)) if pos not in self.results]

    def input_gsid(self, pos: int) -> str | None:
        value = first(self.records[pos], "Gsid")
        return value if isinstance(value, str) else None

    def locate(self, entry: Mapping[str, Any]) -> int | None:
        """The batch position an entry talks about, if it can be told."""
        open_positions = self.undecided()
        index = _as_int(first(entry, "index", "recordIndex", "rowIndex"))
        if index is not None and index in open_positions:
            return index
        ref = first(entry, "referenceId", "refId", "reference")
        if ref is not None and self.refs is not None:
            for pos in open_positions:
                if self.refs[pos] == str(ref):
                    return pos
        gsid = first(entry, "Gsid", "id")
        if isinstance(gsid, str):
            for pos in open_positions:
                if self.input_gsid(pos) == gsid:
                    return pos
        echo = first(entry, "record")
        if not isinstance(echo, Mapping):
            echo = entry
        return self._match_echo(echo, open_positions)

    def _match_echo(self, echo: Mapping[str, Any], positions: Sequence[int]) -> int | None:
        lowered = {str(k).lower(): v for k, v in echo.items()}
        if self.update and self.keys:
            names = [k.lower() for k in self.keys]
            if not all(n in lowered for n in names):
                return None
        else:
            ignore = {"gsid", "referenceid", "index", "success", "errors", "errorcode", "errordesc"}
            names = [n for n in lowered if n not in ignore]
            if not names:
                return None
        for pos in positions:
            mine = {str(k).lower(): v for k, v in self.records[pos].items()}
            if all(n in mine and _same(mine[n], lowered[n]) for n in names):
                return pos
        return None

    def fail(
        self, pos: int, code: str | None, message: str | None, fields: tuple[str, ...]
    ) -> None:
        ident = self.input_gsid(pos) if self.update else None
        self.results[pos] = WriteResult(
            self.indices[pos], ident, False, code or FAILED, message, fields
        )

    def succeed(self, pos: int, gsid: Any, message: str | None = None) -> None:
        ident = gsid if isinstance(gsid, str) and gsid else None
        if self.update:
            ident = self.input_gsid(pos) or ident
        self.results[pos] = WriteResult(self.indices[pos], ident, True, None, message)


def _split(data: Any) -> tuple[list[Any], list[Any], int | None, bool]:
    """(confirmations, errors, count, successes_listed) from ``data`` of any shape."""
    oks: list[Any] = []
    errors: list[Any] = []
    count: int | None = None

    def item(entry: Any, ref: str | None = None) -> None:
        if isinstance(entry, str):
            oks.append({"Gsid": entry, **({"referenceId": ref} if ref is not None else {})})
            return
        if isinstance(entry, list):
            for sub in entry:
                item(sub, ref)
            return
        if not isinstance(entry, Mapping):
            return
        if ref is not None and first(entry, "referenceId") is None:
            entry = {**entry, "referenceId": ref}
        flag = first(entry, "success", "isSuccess")
        if isinstance(flag, str):
            flag = {"true": True, "false": False}.get(flag.strip().lower())
        if flag is False or (flag is None and first(entry, "errors", "errorCode", "error")):
            errors.append(entry)
        else:
            oks.append(entry)

    if isinstance(data, list):
        for entry in data:
            item(entry)
        return oks, errors, None, True
    if not isinstance(data, Mapping):
        return oks, errors, None, False
    lowered = {str(k).lower(): v for k, v in data.items()}
    if set(lowered) & _RESULT_KEYS:
        records = lowered.get("records")
        if records is None:
            records = lowered.get("successes")
        listed = isinstance(records, list)
        for entry in records if isinstance(records, list) else ():
            item(entry)
        failures = lowered.get("errors") or lowered.get("failed") or lowered.get("failures")
        if isinstance(failures, list):
            errors.extend(failures)
        elif isinstance(failures, Mapping):  # keyed by referenceId / index
            for key, value in failures.items():
                values = value if isinstance(value, list) else [value]
                for one in values:
                    if isinstance(one, Mapping):
                        errors.append({"referenceId": str(key), "index": key, **one})
                    else:
                        errors.append({"referenceId": str(key), "index": key, "message": one})
        count = _as_int(lowered.get("count"))
        return oks, errors, count, listed
    for key, value in data.items():  # keyed by referenceId
        item(value, str(key))
    return oks, errors, None, bool(data)


def map_write_results(
    records: Sequence[Mapping[str, Any]],
    indices: Sequence[int],
    data: Any,
    *,
    update: bool,
    keys: Sequence[str] = (),
    refs: Sequence[str] | None = None,
    failed_code: str | None = None,
    failed_message: str | None = None,
) -> list[WriteResult]:
    """Attribute one batch's response ``data`` to its records, in input order.

    ``failed_code`` is set when the whole call said ``result: false``: records the response
    neither confirms nor faults individually then fail with that code.
    """
    batch = _Batch(records, indices, keys, refs, update)
    oks, errors, count, listed = _split(data)

    orphans: list[Any] = []
    for entry in errors:
        pos = batch.locate(entry) if isinstance(entry, Mapping) else None
        if pos is None:
            orphans.append(entry)
        else:
            batch.fail(pos, *error_details(entry))

    unplaced: list[Any] = []
    for entry in oks:
        pos = batch.locate(entry)
        if pos is None:
            unplaced.append(entry)
        else:
            batch.succeed(pos, first(entry, "Gsid", "id"))
    open_positions = batch.undecided()
    if unplaced and len(unplaced) == len(open_positions) and not orphans:
        # Bare new Gsids (an insert): the API lists them in input order.
        for pos, entry in zip(open_positions, unplaced, strict=True):
            batch.succeed(pos, first(entry, "Gsid", "id"))

    open_positions = batch.undecided()
    if failed_code is None and not listed and not orphans and open_positions:
        # No successes listed (only errors, a count, or nothing): with ``result: true`` the
        # rest went through, unless a count says otherwise.
        if count is None or count == len(open_positions):
            for pos in open_positions:
                batch.succeed(pos, None, None if update else "the API returned no id")

    open_positions = batch.undecided()
    if orphans and len(orphans) == len(open_positions):
        for pos, entry in zip(open_positions, orphans, strict=True):
            batch.fail(pos, *error_details(entry))

    for pos in batch.undecided():
        batch.fail(
            pos,
            failed_code or UNCONFIRMED,
            failed_message or "the API did not confirm this record",
            (),
        )
    return [batch.results[pos] for pos in range(len(records))]
