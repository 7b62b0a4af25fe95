"""Typed, validated views of pulled raw records (the boundary between the APIs and the rules).

Each model is filled from a raw row by its stream (:mod:`sync.streams`, which says which field
fills which attribute); a record that does not validate raises
:class:`~config.errors.InvalidRecord` with a short reason, and the mapper quarantines it and
leaves the account it belongs to untouched for this run.

Read fields are strict: a boolean or a word is never a number, ``"false"`` is never true.
Fields teamsync itself owns (the health and risk fields it writes back, the Company team
lookups) are lenient instead: garbage there is not a reason to skip the account, it is simply
overwritten (an unreadable number reads as NaN, which differs from every value).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from connectors.dates import parse_datetime
from connectors.sfid import InvalidId, normalize


def _sf_id(value: Any) -> Any:
    if value is None or value == "":
        return None
    try:
        return normalize(value)
    except InvalidId as exc:
        raise ValueError(str(exc)) from None


def _required_sf_id(value: Any) -> str:
    if value is None or value == "":
        raise ValueError("missing (null)")
    return str(_sf_id(value))


def _blank_none(value: Any) -> Any:
    return None if value == "" else value


def _falsy_none(value: Any) -> Any:
    return value or None


_BOOL_TEXT = {"true": True, "false": False}


def _boolean(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOL_TEXT:
        return _BOOL_TEXT[value.strip().lower()]
    raise ValueError(f"expected a boolean, got {_kind(value)}")


def _truthy(value: Any) -> bool:
    return _boolean(value, False)


def _none_true(value: Any) -> bool:
    return _boolean(value, True)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "text"
    return f"a {type(value).__name__}"


def _number(value: Any) -> float | None:
    """A finite number, or None for null / blank; a boolean or a word is never a number."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("a boolean, not a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError("text, not a number") from None
    else:
        raise ValueError(f"{_kind(value)}, not a number")
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _count(value: Any) -> int | None:
    number = _number(value)
    if number is None:
        return None
    if not number.is_integer():
        raise ValueError("not a whole number")
    return int(number)


def _owned_number(value: Any) -> float | None:
    """A field teamsync writes: garbage reads as NaN (it differs, so it is overwritten)."""
    try:
        return _number(value)
    except ValueError:
        return math.nan


def _owned_text(value: Any) -> str | None:
    """A field teamsync writes: anything that is not text is kept as its text (so it differs
    from what teamsync wants there and is overwritten)."""
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else repr(value)[:255]


def _gs_date(value: Any) -> Any:
    if value in (None, ""):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        moment = parse_datetime(value)
        return moment.date() if moment else None
    return value


def _email(value: Any) -> Any:
    if value in (None, ""):
        return None
    return str(value).strip().lower()


SfId = Annotated[str | None, BeforeValidator(_sf_id)]
DateTime = Annotated[datetime | None, BeforeValidator(parse_datetime)]
GsDate = Annotated[date | None, BeforeValidator(_gs_date)]
OptDate = Annotated[date | None, BeforeValidator(_falsy_none)]
Email = Annotated[str | None, BeforeValidator(_email)]
OptStr = Annotated[str | None, BeforeValidator(_blank_none)]
OptFloat = Annotated[float | None, BeforeValidator(_number)]
Flag = Annotated[bool, BeforeValidator(_truthy)]  # absent or null: False
Active = Annotated[bool, BeforeValidator(_none_true)]  # absent or null: True
Score = Annotated[Annotated[float, Field(ge=0, le=100)] | None, BeforeValidator(_number)]
Count = Annotated[Annotated[int, Field(ge=0)] | None, BeforeValidator(_count)]
OwnedFloat = Annotated[float | None, BeforeValidator(_owned_number)]
OwnedStr = Annotated[str | None, BeforeValidator(_owned_text)]


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class SfUser(Record):
    id: SfId
    name: OptStr = None
    email: Email = None
    active: Active = True
    title: OptStr = None
    manager_id: SfId = None


class SfAccount(Record):
    id: SfId
    name: str
    owner_id: SfId = None
    segment: OptStr = None
    employees: Count = None
    arr: OptFloat = None
    health_score: OwnedFloat = None  # teamsync writes these three: garbage is overwritten
    health_status: OwnedStr = None
    risk_flags: OwnedStr = None
    is_deleted: Flag = False


class SfOpportunity(Record):
    id: SfId
    account_id: SfId = None
    owner_id: SfId = None
    type: OptStr = None
    is_closed: Flag = False
    is_won: Flag = False
    close_date: OptDate = None
    stage: OptStr = None
    amount: OptFloat = None


class SfTeamMember(Record):
    id: Annotated[str, BeforeValidator(_required_sf_id)]
    account_id: SfId
    user_id: Annotated[str, BeforeValidator(_required_sf_id)]  # a row without a user is poison
    team_role: OptStr = None
    created: DateTime = None


class GsUser(Record):
    gsid: str
    name: OptStr = None
    email: Email = None
    active: Annotated[bool, BeforeValidator(_none_true)] = True


class GsCompany(Record):
    gsid: str
    name: OptStr = None
    csm: OptStr = None
    csm_email: Email = None
    score: Score = None
    previous_score: Score = None
    previous_score_date: GsDate = None
    trend: OptStr = None
    arr: OptFloat = None
    renewal_date: GsDate = None
    team_fields: dict[str, OwnedStr] = {}  # teamsync writes these: garbage is overwritten
    risk_flags: OwnedStr = None
    modified: DateTime = None


# --- storable text -----------------------------------------------------------------------------
UNSTORABLE = "__teamsync_unstorable__"  # marker key: why a raw record cannot be used


_SIMPLE = frozenset({int, bool, type(None)})


def _plain_text(text: str) -> bool:
    """Text both databases store as it is: no NUL byte, no lone surrogate."""
    if "\x00" in text:
        return False
    if text.isascii():  # O(1) in CPython: no surrogate possible
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _plain(record: Mapping[str, Any]) -> bool:
    """True when ``record`` is flat and needs no change to be stored (checked cheaply)."""
    for key, value in record.items():
        if key.__class__ is not str or not _plain_text(key):
            return False
        cls = value.__class__
        if cls is str:
            if not _plain_text(value):
                return False
        elif cls is float:
            if not math.isfinite(value):
                return False
        elif cls not in _SIMPLE:
            return False  # nested or unusual values: the full walk below
    return True


def storable(record: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of ``record`` that both databases can store, and what had to change.

    PostgreSQL refuses NUL bytes in text (and in JSON), lone surrogates cannot be encoded and
    JSON has no NaN: such values are replaced (U+FFFD, null) and named, so that the record is
    stored, then quarantined with that reason instead of failing the whole page.
    """
    if _plain(record):  # the common case: flat, finite, valid text without NUL bytes
        return dict(record), []
    problems: list[str] = []

    def clean(value: Any, path: str) -> Any:
        if isinstance(value, str):
            text = value
            if "\x00" in text:
                problems.append(f"{path}: NUL byte in text")
                text = text.replace("\x00", "\ufffd")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                problems.append(f"{path}: text that is not valid Unicode")
                text = text.encode("utf-8", "replace").decode("utf-8")
            return text
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{path}: not a finite number")
            return None
        if isinstance(value, Mapping):
            return {clean(str(k), path): clean(v, f"{path}.{k}" if path else str(k))
                    for k, v in value.items()}  # fmt: skip
        if isinstance(value, list | tuple):
            return [clean(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    out = {clean(str(k), ""): clean(v, str(k)) for k, v in record.items()}
    return out, problems
