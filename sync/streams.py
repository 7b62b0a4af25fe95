"""The stream catalogue: every object teamsync reads, declared once.

A :class:`Stream` names the object, the fields pulled (each with the record-model attribute it
fills), the key and stamp fields, how deletes are seen, and the typed record model
(:mod:`sync.stages.records`).  Raw rows are stored in ``raw_records`` under
(``stream.system``, ``stream.object``).  The puller selects ``stream.fields``; the mapper
reads the stored rows back through ``stream.parse``; nothing else spells a field name.

    streams = catalogue(mapping)
    streams.sf_account.fields            # ('Id', 'Name', 'OwnerId', ...)
    streams.sf_account.parse(raw_data)   # SfAccount, or InvalidRecord
    streams.get("team-members")          # by --objects name, "salesforce.Account" or "Account"
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from config.errors import InvalidRecord
from mappings.schema import MappingFile
from sync.stages.records import (
    UNSTORABLE,
    GsCompany,
    GsUser,
    Record,
    SfAccount,
    SfOpportunity,
    SfTeamMember,
    SfUser,
)
from sync.types import System

_R = TypeVar("_R", bound=Record)

# The names ``teamsync backfill --objects`` takes -> stream names.
OPTIONS = {
    "accounts": "salesforce.Account",
    "opportunities": "salesforce.Opportunity",
    "users": "salesforce.User",
    "team-members": "salesforce.AccountTeamMember",
    "companies": "gainsight.Company",
    "gainsight-users": "gainsight.GsUser",
}


@dataclass(frozen=True)
class Column:
    """One pulled field and the record attribute it fills (None: stored raw only).

    ``group``: the attribute is a dict of several fields, keyed by field name.
    """

    field: str
    attr: str | None = None
    group: bool = False


@dataclass(frozen=True)
class Stream(Generic[_R]):
    system: System
    object: str
    key: str  # "Id" / "Gsid"
    stamp_field: str
    columns: tuple[Column, ...]
    model: type[_R]
    include_deleted: bool = False  # queryAll: deleted rows come back with IsDeleted
    parent_field: str | None = None  # the Salesforce Account the record belongs to
    match_field: str | None = None  # e-mail: people are matched across systems by it
    count_deletes: bool = False  # hard deletes: detect by count + id scan

    @property
    def name(self) -> str:
        return f"{self.system}.{self.object}"

    @cached_property
    def fields(self) -> tuple[str, ...]:
        """The fields to select, in declaration order, each once."""
        return tuple(dict.fromkeys(c.field for c in self.columns))

    @cached_property
    def _reads(self) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
        """(field, attribute) of the plain columns and of the grouped ones."""
        plain = tuple((c.field, c.attr) for c in self.columns if c.attr and not c.group)
        groups = tuple((c.field, c.attr) for c in self.columns if c.attr and c.group)
        return plain, groups

    def parse(self, data: Mapping[str, Any]) -> _R:
        """The typed record of one raw row; :class:`InvalidRecord` when it does not validate."""
        unstorable = data.get(UNSTORABLE)
        if unstorable:
            raise InvalidRecord(self.system, self.object, str(data.get(self.key)), str(unstorable))
        plain, groups = self._reads
        values: dict[str, Any] = {attr: data.get(f) for f, attr in plain}
        for f, attr in groups:
            values.setdefault(attr, {})[f] = data.get(f) or None
        try:
            return self.model.model_validate(values)
        except ValidationError as exc:
            record_id = str(data.get(self.key))
            raise InvalidRecord(self.system, self.object, record_id, _reason(exc)) from None


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)[:500]


def _cols(*pairs: tuple[str, str | None]) -> tuple[Column, ...]:
    return tuple(Column(f, a) for f, a in pairs)


@dataclass(frozen=True)
class Catalogue:
    """The streams of one mapping, in pull order."""

    sf_user: Stream[SfUser]
    sf_account: Stream[SfAccount]
    sf_opportunity: Stream[SfOpportunity]
    sf_team_member: Stream[SfTeamMember]
    gs_user: Stream[GsUser]
    gs_company: Stream[GsCompany]

    def __iter__(self) -> Iterator[Stream[Any]]:
        yield self.sf_user
        yield self.sf_account
        yield self.sf_opportunity
        yield self.sf_team_member
        yield self.gs_user
        yield self.gs_company

    def get(self, name: str) -> Stream[Any]:
        """A stream by its ``--objects`` name, ``system.Object`` or object name; KeyError."""
        name = OPTIONS.get(name, name)
        for s in self:
            if name == s.name or s.object.lower() == name.lower():
                return s
        raise KeyError(name)


def catalogue(mapping: MappingFile) -> Catalogue:
    """The streams teamsync pulls, with the fields the mapping names."""
    sf = mapping.salesforce
    gs = mapping.gainsight
    return Catalogue(
        sf_user=Stream(
            System.SALESFORCE,
            "User",
            "Id",
            "SystemModstamp",
            _cols(
                ("Id", "id"),
                ("Name", "name"),
                ("Email", "email"),
                ("IsActive", "active"),
                ("Title", "title"),
                ("ManagerId", "manager_id"),
                ("SystemModstamp", None),
            ),
            SfUser,
            match_field="Email",
        ),
        sf_account=Stream(
            System.SALESFORCE,
            "Account",
            "Id",
            "SystemModstamp",
            _cols(
                ("Id", "id"),
                ("Name", "name"),
                ("OwnerId", "owner_id"),
                ("Type", None),
                (sf.employees_field, "employees"),
                (sf.segment_field, "segment"),
                (sf.arr_field, "arr"),
                (sf.health_score_field, "health_score"),
                (sf.health_status_field, "health_status"),
                (sf.risk_flags_field, "risk_flags"),
                ("IsDeleted", "is_deleted"),
                ("SystemModstamp", None),
            ),
            SfAccount,
            include_deleted=True,
        ),
        sf_opportunity=Stream(
            System.SALESFORCE,
            "Opportunity",
            "Id",
            "SystemModstamp",
            _cols(
                ("Id", "id"),
                ("AccountId", "account_id"),
                ("OwnerId", "owner_id"),
                ("Name", None),
                ("Type", "type"),
                ("StageName", "stage"),
                ("IsClosed", "is_closed"),
                ("IsWon", "is_won"),
                ("CloseDate", "close_date"),
                ("Amount", "amount"),
                ("IsDeleted", None),
                ("SystemModstamp", None),
            ),
            SfOpportunity,
            include_deleted=True,
            parent_field="AccountId",
        ),
        sf_team_member=Stream(
            System.SALESFORCE,
            "AccountTeamMember",
            "Id",
            "SystemModstamp",
            _cols(
                ("Id", "id"),
                ("AccountId", "account_id"),
                ("UserId", "user_id"),
                ("TeamMemberRole", "team_role"),
                ("AccountAccessLevel", None),
                ("OpportunityAccessLevel", None),
                ("CaseAccessLevel", None),
                ("CreatedDate", "created"),
                ("SystemModstamp", None),
            ),
            SfTeamMember,
            parent_field="AccountId",
            count_deletes=True,
        ),
        gs_user=Stream(
            System.GAINSIGHT,
            "GsUser",
            "Gsid",
            "ModifiedDate",
            _cols(
                ("Gsid", "gsid"),
                ("Name", "name"),
                ("Email", "email"),
                ("IsActiveUser", "active"),
                ("ModifiedDate", None),
            ),
            GsUser,
            match_field="Email",
        ),
        gs_company=Stream(
            System.GAINSIGHT,
            "Company",
            "Gsid",
            "ModifiedDate",
            (
                *_cols(
                    ("Gsid", "gsid"),
                    ("Name", "name"),
                    (gs.account_link_field, None),  # the parent: RawRow.parent_id
                    (gs.arr_field, "arr"),
                    (gs.renewal_date_field, "renewal_date"),
                    (gs.csm_field, "csm"),
                    (f"{gs.csm_field}__gr.Email", "csm_email"),
                    (gs.score_field, "score"),
                    (gs.previous_score_field, "previous_score"),
                    (gs.trend_field, "trend"),
                    (gs.risk_flags_field, "risk_flags"),
                ),
                *(
                    (Column(gs.previous_score_date_field, "previous_score_date"),)
                    if gs.previous_score_date_field
                    else ()
                ),
                *(Column(f, "team_fields", group=True) for f in mapping.gainsight_team_fields()),
                Column("ModifiedDate", "modified"),
            ),
            GsCompany,
            parent_field=gs.account_link_field,
        ),
    )


__all__ = ["OPTIONS", "Catalogue", "Column", "Stream", "catalogue"]
