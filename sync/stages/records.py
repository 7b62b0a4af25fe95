"""Typed, validated views of pulled raw records (the boundary between the APIs and the rules).

Each model is filled from a raw row by its stream (:mod:`sync.streams`, which says which field
fills which attribute); a record that does not validate raises
:class:`~config.errors.InvalidRecord` with a short reason, and the mapper quarantines it and
leaves the account it belongs to untouched for this run.
"""

from __future__ import annotations

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


def _blank_none(value: Any) -> Any:
    return None if value == "" else value


def _falsy_none(value: Any) -> Any:
    return value or None


def _truthy(value: Any) -> bool:
    return bool(value)


def _none_true(value: Any) -> Any:
    return True if value is None else value


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
OptFloat = Annotated[float | None, BeforeValidator(_blank_none)]
Flag = Annotated[bool, BeforeValidator(_truthy)]  # absent or null: False
Active = Annotated[bool, BeforeValidator(_none_true)]  # absent or null: True
Score = Annotated[Annotated[float, Field(ge=0, le=100)] | None, BeforeValidator(_blank_none)]
Count = Annotated[Annotated[int, Field(ge=0)] | None, BeforeValidator(_blank_none)]


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class SfUser(Record):
    id: SfId
    name: OptStr = None
    email: Email = None
    active: Active = True
    title: OptStr = None


class SfAccount(Record):
    id: SfId
    name: str
    owner_id: SfId = None
    segment: OptStr = None
    employees: Count = None
    arr: OptFloat = None
    health_score: OptFloat = None
    health_status: OptStr = None
    risk_flags: OptStr = None
    is_deleted: Flag = False


class SfOpportunity(Record):
    id: SfId
    account_id: SfId = None
    owner_id: SfId = None
    type: OptStr = None
    is_closed: Flag = False
    is_won: Flag = False
    close_date: OptDate = None


class SfTeamMember(Record):
    id: SfId
    account_id: SfId
    user_id: SfId
    team_role: OptStr = None
    created: DateTime = None


class GsUser(Record):
    gsid: str
    name: OptStr = None
    email: Email = None
    active: bool | None = True


class GsCompany(Record):
    gsid: str
    name: OptStr = None
    account_link: OptStr = None
    csm: OptStr = None
    csm_email: Email = None
    score: Score = None
    previous_score: Score = None
    trend: OptStr = None
    arr: OptFloat = None
    renewal_date: GsDate = None
    team_fields: dict[str, str | None] = {}
    risk_flags: OptStr = None
    modified: DateTime = None
