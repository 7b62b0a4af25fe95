"""Typed, validated views of pulled raw records (the boundary between the APIs and the rules).

A record that does not validate raises :class:`InvalidRecord` with a short reason; the mapper
quarantines it and leaves the account it belongs to untouched for this run.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from config.errors import InvalidRecord
from connectors.sfid import InvalidId, normalize
from mappings.schema import MappingFile
from sync.stages.pull import parse_epoch_ms, parse_sf_datetime


def _sf_id(value: Any) -> Any:
    if value is None or value == "":
        return None
    try:
        return normalize(value)
    except InvalidId as exc:
        raise ValueError(str(exc)) from None


def _blank_none(value: Any) -> Any:
    return None if value == "" else value


def _sf_dt(value: Any) -> Any:
    return parse_sf_datetime(value) if isinstance(value, str) else value


def _ms_dt(value: Any) -> Any:
    return parse_epoch_ms(value)


def _gs_date(value: Any) -> Any:
    if value in (None, ""):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        moment = parse_epoch_ms(value)
        return moment.date() if moment else None
    return value


def _email(value: Any) -> Any:
    if value in (None, ""):
        return None
    return str(value).strip().lower()


SfId = Annotated[str | None, BeforeValidator(_sf_id)]
SfDateTime = Annotated[datetime | None, BeforeValidator(_sf_dt)]
MsDateTime = Annotated[datetime | None, BeforeValidator(_ms_dt)]
GsDate = Annotated[date | None, BeforeValidator(_gs_date)]
Email = Annotated[str | None, BeforeValidator(_email)]
OptStr = Annotated[str | None, BeforeValidator(_blank_none)]
OptFloat = Annotated[float | None, BeforeValidator(_blank_none)]
OptInt = Annotated[int | None, BeforeValidator(_blank_none)]
Score = Annotated[Annotated[float, Field(ge=0, le=100)] | None, BeforeValidator(_blank_none)]
Count = Annotated[Annotated[int, Field(ge=0)] | None, BeforeValidator(_blank_none)]


class _Rec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


R = TypeVar("R", bound=_Rec)


class SfUser(_Rec):
    id: SfId
    name: OptStr = None
    email: Email = None
    active: bool = True
    title: OptStr = None


class SfAccount(_Rec):
    id: SfId
    name: str
    owner_id: SfId = None
    segment: OptStr = None
    employees: Count = None
    arr: OptFloat = None
    health_score: OptFloat = None
    health_status: OptStr = None
    risk_flags: OptStr = None
    is_deleted: bool = False


class SfOpportunity(_Rec):
    id: SfId
    account_id: SfId = None
    owner_id: SfId = None
    type: OptStr = None
    is_closed: bool = False
    is_won: bool = False
    close_date: date | None = None


class SfTeamMember(_Rec):
    id: SfId
    account_id: SfId
    user_id: SfId
    team_role: OptStr = None
    created: SfDateTime = None


class GsUser(_Rec):
    gsid: str
    name: OptStr = None
    email: Email = None
    active: bool | None = True


class GsCompany(_Rec):
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
    modified: MsDateTime = None


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)[:500]


def _validate(model: type[R], system: str, obj: str, rid: str, values: dict[str, Any]) -> R:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise InvalidRecord(system, obj, rid, _reason(exc)) from None


def sf_user(data: dict[str, Any]) -> SfUser:
    rid = str(data.get("Id"))
    return _validate(
        SfUser,
        "salesforce",
        "User",
        rid,
        {
            "id": data.get("Id"),
            "name": data.get("Name"),
            "email": data.get("Email"),
            "active": data.get("IsActive") if data.get("IsActive") is not None else True,
            "title": data.get("Title"),
        },
    )


def sf_account(data: dict[str, Any], mapping: MappingFile) -> SfAccount:
    f = mapping.salesforce
    return _validate(
        SfAccount,
        "salesforce",
        "Account",
        str(data.get("Id")),
        {
            "id": data.get("Id"),
            "name": data.get("Name"),
            "owner_id": data.get("OwnerId"),
            "segment": data.get(f.segment_field),
            "employees": data.get(f.employees_field),
            "arr": data.get(f.arr_field),
            "health_score": data.get(f.health_score_field),
            "health_status": data.get(f.health_status_field),
            "risk_flags": data.get(f.risk_flags_field),
            "is_deleted": bool(data.get("IsDeleted")),
        },
    )


def sf_opportunity(data: dict[str, Any]) -> SfOpportunity:
    return _validate(
        SfOpportunity,
        "salesforce",
        "Opportunity",
        str(data.get("Id")),
        {
            "id": data.get("Id"),
            "account_id": data.get("AccountId"),
            "owner_id": data.get("OwnerId"),
            "type": data.get("Type"),
            "is_closed": bool(data.get("IsClosed")),
            "is_won": bool(data.get("IsWon")),
            "close_date": data.get("CloseDate") or None,
        },
    )


def sf_team_member(data: dict[str, Any]) -> SfTeamMember:
    return _validate(
        SfTeamMember,
        "salesforce",
        "AccountTeamMember",
        str(data.get("Id")),
        {
            "id": data.get("Id"),
            "account_id": data.get("AccountId"),
            "user_id": data.get("UserId"),
            "team_role": data.get("TeamMemberRole"),
            "created": data.get("CreatedDate"),
        },
    )


def gs_user(data: dict[str, Any]) -> GsUser:
    return _validate(
        GsUser,
        "gainsight",
        "GsUser",
        str(data.get("Gsid")),
        {
            "gsid": data.get("Gsid"),
            "name": data.get("Name"),
            "email": data.get("Email"),
            "active": data.get("IsActiveUser"),
        },
    )


def gs_company(data: dict[str, Any], mapping: MappingFile) -> GsCompany:
    g = mapping.gainsight
    team = {name: data.get(name) or None for name in mapping.gainsight_team_fields()}
    return _validate(
        GsCompany,
        "gainsight",
        "Company",
        str(data.get("Gsid")),
        {
            "gsid": data.get("Gsid"),
            "name": data.get("Name"),
            "account_link": data.get(g.account_link_field),
            "csm": data.get(g.csm_field),
            "csm_email": data.get(f"{g.csm_field}__gr.Email"),
            "score": data.get(g.score_field),
            "previous_score": data.get(g.previous_score_field),
            "trend": data.get(g.trend_field),
            "arr": data.get(g.arr_field),
            "renewal_date": data.get(g.renewal_date_field),
            "team_fields": team,
            "risk_flags": data.get(g.risk_flags_field),
            "modified": data.get("ModifiedDate"),
        },
    )
