"""The one parser for date-time values the APIs send.

Salesforce sends ISO-8601 text (``2024-05-01T12:00:03.000+0000``, Bulk CSV ``...Z``);
Gainsight's data APIs send epoch milliseconds and its Cockpit ISO text.  Python 3.11's
``datetime.fromisoformat`` reads ``Z``, ``+0000`` and nine fraction digits, so this is the
only parsing teamsync does itself:

    >>> parse_datetime("2024-05-01T12:00:03.000+0000")
    datetime.datetime(2024, 5, 1, 12, 0, 3, tzinfo=datetime.timezone.utc)
    >>> parse_datetime(1714564803000)
    datetime.datetime(2024, 5, 1, 12, 0, 3, tzinfo=datetime.timezone.utc)
    >>> parse_datetime("") is None
    True
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DIGITS = re.compile(r"^-?\d{1,16}(\.\d+)?$")
_MDY = re.compile(r"^(\d{2})-(\d{2})-(\d{4})$")


def parse_datetime(value: object) -> datetime | None:
    """An aware UTC datetime from epoch milliseconds (a number or digits), ISO-8601 text
    (no offset: UTC), ``MM-dd-yyyy`` (a Gainsight doc form), a date or a datetime.

    None for None and blank text; ``ValueError`` for anything else that is not a date-time.
    """
    if value is None:
        return None
    if value.__class__ is str and len(value) >= 19 and value[10] == "T":
        # The common case (a Salesforce stamp): ISO text as sent, no stripping or patterns.
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass  # the full path below says why (or reads a form with blanks around it)
        else:
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=UTC)
            return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)
    if isinstance(value, bool):
        raise ValueError("a boolean is not a date-time")
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    try:
        if isinstance(value, int | float):
            return _EPOCH + timedelta(milliseconds=value)
        if not isinstance(value, str):
            raise ValueError(f"a {type(value).__name__} is not a date-time")
        text = value.strip()
        if not text:
            return None
        if _DIGITS.match(text):
            return _EPOCH + timedelta(milliseconds=float(text))
        if m := _MDY.match(text):
            return datetime(int(m[3]), int(m[1]), int(m[2]), tzinfo=UTC)
        parsed = datetime.fromisoformat(text)
    except OverflowError as exc:
        raise ValueError("date-time out of range") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


__all__ = ["parse_datetime"]
