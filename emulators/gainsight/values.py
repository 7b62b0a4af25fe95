"""Value parsing and rendering for the Gainsight emulator.

Internally dates and datetimes are epoch milliseconds (UTC; a date is midnight UTC).  Input
formats accepted wherever a date is expected (filters and writes)::

    1712345678000            epoch ms (JSON number, or a string of digits)
    2024-04-05               yyyy-MM-dd
    2024-04-05 10:30:00      yyyy-MM-dd HH:mm:ss (optionally .SSS)
    04-05-2024               MM-dd-yyyy (the Company "Read API" doc sample form)
    2024-04-05T10:30:00Z     ISO-8601 with T, optional fraction, Z or +hh:mm (naive = UTC)

The reference leaves the time zone of filter values undocumented (G3); the emulator reads a
value without an offset as UTC, or in the tenant's ``filter_time_zone`` when that switch is set
(filters only: stored data and writes stay UTC).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

DAY_MS = 86_400_000
TEXT_TYPES = frozenset({"STRING", "EMAIL", "GSID", "LOOKUP", "DROPDOWN", "URL", "RICHTEXTAREA"})
NUMBER_TYPES = frozenset({"NUMBER", "CURRENCY", "PERCENTAGE"})
DATE_TYPES = frozenset({"DATE", "DATETIME"})

_YMD = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_YMD_HMS = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?$")
_MDY = re.compile(r"^(\d{2})-(\d{2})-(\d{4})$")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$")
_DIGITS = re.compile(r"^-?\d{1,15}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _ms(dt: datetime, zone: str | None = None) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(zone) if zone else UTC)
    return int(dt.timestamp() * 1000)


def parse_datetime(value: Any, time_zone: str | None = None) -> int | None:
    """Epoch ms for any accepted date/datetime form, or None when it is not one.

    Text without an offset is read in ``time_zone`` (default UTC)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if _DIGITS.match(text):
            return int(text)
        if m := _YMD.match(text):
            return _ms(datetime(int(m[1]), int(m[2]), int(m[3])), time_zone)
        if m := _YMD_HMS.match(text):
            millis = int((m[7] or "0").ljust(3, "0"))
            dt = datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]))
            return _ms(dt, time_zone) + millis
        if m := _MDY.match(text):
            return _ms(datetime(int(m[3]), int(m[1]), int(m[2])), time_zone)
        if _ISO.match(text):
            iso = text
            # fromisoformat takes at most 6 fraction digits.
            iso = re.sub(r"(\.\d{6})\d+", r"\1", iso)
            return _ms(datetime.fromisoformat(iso), time_zone)
    except ValueError:
        return None
    return None


def parse_date(value: Any) -> int | None:
    """Like :func:`parse_datetime`, truncated to midnight UTC."""
    ms = parse_datetime(value)
    return None if ms is None else ms - ms % DAY_MS


def iso_datetime(ms: int) -> str:
    """Render like Java's ``Instant.toString()``: ``2020-04-14T11:30:00Z`` / ``...:00.123Z``."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    frac = ms % 1000
    return f"{base}.{frac:03d}Z" if frac else f"{base}Z"


def iso_date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def parse_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def parse_number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return float(text)
        except ValueError:
            return None
    return None


def as_text(value: Any) -> str | None:
    """JSON scalars as text (numbers and booleans the way JSON spells them)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def is_email(value: str) -> bool:
    return bool(_EMAIL.match(value))
