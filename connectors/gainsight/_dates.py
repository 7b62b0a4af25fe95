"""Gainsight date values: the data APIs answer in epoch milliseconds, the Cockpit in ISO text."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DIGITS = re.compile(r"^-?\d{1,16}(\.\d+)?$")
_MDY = re.compile(r"^(\d{2})-(\d{2})-(\d{4})$")
_MS = timedelta(milliseconds=1)


def epoch_ms_to_datetime(value: Any) -> datetime | None:
    """An aware UTC datetime from epoch ms (number or digits) or ISO text; None if not a date.

    Text without an offset is read as UTC.  Unparseable values give None rather than an
    error: one odd value in a pulled row must not stop a run.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    try:
        if isinstance(value, int | float):
            return _EPOCH + timedelta(milliseconds=value)
        if not isinstance(value, str):
            return None
        text = value.strip()
        if not text:
            return None
        if _DIGITS.match(text):
            return _EPOCH + timedelta(milliseconds=float(text))
        if m := _MDY.match(text):  # MM-dd-yyyy, the form of the Company read doc sample
            return datetime(int(m[3]), int(m[1]), int(m[2]), tzinfo=UTC)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(_trim_fraction(text))
    except (ValueError, OverflowError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _trim_fraction(text: str) -> str:
    # fromisoformat takes at most 6 fraction digits; some APIs send 9.
    return re.sub(r"(\.\d{6})\d+", r"\1", text)


def datetime_to_epoch_ms(value: datetime | date) -> int:
    """Whole epoch milliseconds; a naive datetime is taken as UTC, a date as midnight UTC."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(), tzinfo=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _MS


def filter_datetime(value: datetime) -> str:
    """A DateTime filter literal, ``yyyy-MM-dd HH:mm:ss`` in UTC (the delete-log doc form).

    The time zone the API reads filter values in is undocumented: incremental readers must
    overlap their windows (the lookback) rather than trust this to the second.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
