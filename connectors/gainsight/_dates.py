"""Gainsight date values out: epoch milliseconds and filter literals (parsing is
:func:`connectors.dates.parse_datetime`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


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
