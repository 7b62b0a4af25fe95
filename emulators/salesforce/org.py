"""The org's records and the write rules every API surface shares.

REST CRUD, sObject Collections, Composite and Bulk API 2.0 all write through :class:`Org`,
so a record is validated the same way whichever door it comes through.  Validation
failures raise :class:`RecordFailure` carrying Salesforce error items; each API layer renders
them its own way (``errorCode`` lists, ``statusCode`` entries, ``CODE:message`` CSV cells).

Writes are made under ``Org.lock``.  Every write pushes an undo step while a transaction is
open (:meth:`Org.begin` / :meth:`Org.end`), which is how ``allOrNone`` rolls back.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from emulators.profile import LENIENT, Profile
from emulators.salesforce import schema as sf_schema
from emulators.salesforce.soql import FLOAT_TYPES, STRING_TYPES, Slot, render_object
from emulators.sfid import InvalidId, normalize, to18
from emulators.store import Clock, FieldDef, ObjectSchema, SalesforceIdFactory, Table

ACCESS_RANK = {"None": 0, "Read": 1, "Edit": 2, "ReadEditTransfer": 2, "All": 3}
CONTROLLED_BY_PARENT = "ControlledByParent"
DEFAULT_ACCESS_FIELDS = {
    "Account": "DefaultAccountAccess",
    "Opportunity": "DefaultOpportunityAccess",
    "Case": "DefaultCaseAccess",
    "Contact": "DefaultContactAccess",
}
ATM_ACCESS_FIELDS = (
    ("AccountAccessLevel", "Account"),
    ("OpportunityAccessLevel", "Opportunity"),
    ("CaseAccessLevel", "Case"),
    ("ContactAccessLevel", "Contact"),
)
PHOTO_URL = "/profilephoto/005/T"


@dataclass(frozen=True)
class ErrorItem:
    """One Salesforce error: rendered as ``errorCode`` (REST) or ``statusCode`` (results)."""

    code: str
    message: str
    fields: tuple[str, ...] | None = ()

    def rest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            out["fields"] = list(self.fields)
        return out

    def result(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": list(self.fields or ())}

    def csv(self) -> str:
        return f"{self.code}:{self.message}"


class RecordFailure(Exception):
    """A write refused with these errors (HTTP status for single-record calls)."""

    def __init__(self, errors: list[ErrorItem], status: int = 400) -> None:
        super().__init__("; ".join(e.csv() for e in errors))
        self.errors = errors
        self.status = status


class SalesforceApiError(Exception):
    """Raised by the emulator's direct helpers: ``status`` and the REST error list."""

    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        codes = ", ".join(str(e.get("errorCode")) for e in errors)
        super().__init__(f"{status} {codes}")
        self.status = status
        self.errors = errors


def fail(
    code: str, message: str, fields: Iterable[str] | None = (), status: int = 400
) -> RecordFailure:
    return RecordFailure(
        [ErrorItem(code, message, None if fields is None else tuple(fields))], status
    )


def field_label(fdef: FieldDef) -> str:
    """ "Account ID" for AccountId, the label or the name otherwise (used in messages)."""
    if fdef.label:
        return fdef.label
    if fdef.type in ("reference", "id") and fdef.name.endswith("Id") and len(fdef.name) > 2:
        return f"{fdef.name[:-2]} ID"
    return fdef.name


def parse_datetime(text: str) -> int:
    """ISO-8601 text (``Z``, ``+0000`` or ``+00:00`` offsets) -> epoch ms; ValueError if bad."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    m = re.fullmatch(r"(.*[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)([+-]\d{2})(\d{2})", value)
    if m:
        value = f"{m.group(1)}{m.group(2)}:{m.group(3)}"
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)


class Org:
    """Tables plus validation, derived fields, cascades and undo."""

    def __init__(
        self,
        clock: Clock,
        *,
        org_id: str = "00DTm0000000001",
        integration_user_id: str = "005Tm0000000000",
        profile: Profile = LENIENT,
    ) -> None:
        self.clock = clock
        self.profile = profile
        self.org_id = to18(org_id)
        self.integration_user_id = to18(integration_user_id)
        # Each org owns copies of the schemas: admins change picklists and field security.
        self.tables: dict[str, Table] = {
            name: Table(s.copy(), SalesforceIdFactory(s.key_prefix), clock)
            for name, s in sf_schema.OBJECTS.items()
        }
        self.by_prefix: dict[str, str] = {t.schema.key_prefix: n for n, t in self.tables.items()}
        # Objects the API user cannot see (AccountTeamMember while Account Teams are off).
        self.hidden_objects: set[str] = set()
        if profile.default_team_roles_only:
            self.tables["AccountTeamMember"].schema.replace_field(
                "TeamMemberRole", picklist=sf_schema.DEFAULT_TEAM_ROLES
            )
        # Organization-wide defaults that AccountTeamMember access levels are checked against.
        self.tables["Organization"].insert(
            {
                "Id": self.org_id,
                "Name": "teamsync emulator org",
                "OrganizationType": "Enterprise Edition",
                "IsSandbox": False,
                "InstanceName": "TM1",
                "DefaultAccountAccess": "Read",
                "DefaultOpportunityAccess": "None",
                "DefaultCaseAccess": "None",
                "DefaultContactAccess": (
                    CONTROLLED_BY_PARENT if profile.contact_controlled_by_parent else "None"
                ),
            },
            record_id=self.org_id,
        )
        self.lock = threading.RLock()
        self.hard_deleted: set[str] = set()
        self._undo: list[Callable[[], None]] = []
        self._depth = 0

    # -- organization settings (an admin's Setup pages) ------------------------------------
    @property
    def org_defaults(self) -> dict[str, str]:
        """Organization-wide default access per object (``{"Account": "Read", ...}``)."""
        row = self.tables["Organization"].get(self.org_id) or {}
        return {obj: str(row.get(name) or "None") for obj, name in DEFAULT_ACCESS_FIELDS.items()}

    def set_org_defaults(self, **levels: str) -> None:
        """``set_org_defaults(Opportunity="Edit", Case="Read")`` (Setup > Sharing Settings)."""
        table = self.tables["Organization"]
        changes: dict[str, str] = {}
        for obj, level in levels.items():
            name = DEFAULT_ACCESS_FIELDS.get(obj)
            if name is None:
                raise KeyError(f"no organization-wide default for {obj!r}")
            fdef = table.schema.fields[table.pos[name.lower()]]
            if level not in fdef.picklist:
                raise ValueError(f"{name}: {level!r} is not one of {', '.join(fdef.picklist)}")
            changes[name] = level
        with self.lock:
            table.update(self.org_id, changes)

    @property
    def is_sandbox(self) -> bool:
        return bool(self.tables["Organization"].value(self.org_id, "IsSandbox"))

    @is_sandbox.setter
    def is_sandbox(self, value: bool) -> None:
        with self.lock:
            self.tables["Organization"].update(self.org_id, {"IsSandbox": bool(value)})

    def schema_of(self, object_name: str) -> ObjectSchema:
        table = self.tables.get(object_name)
        if table is None:
            raise KeyError(f"unknown object {object_name!r}")
        return table.schema

    # -- lookups -------------------------------------------------------------------------
    def table(self, object_name: str) -> Table | None:
        """The table an API call names (case-insensitive); None for unknown or hidden ones."""
        table = self.tables.get(object_name)
        if table is None:
            for name, t in self.tables.items():
                if name.lower() == object_name.lower():
                    table = t
                    break
        if table is None or table.schema.name in self.hidden_objects:
            return None
        return table

    @property
    def api_tables(self) -> dict[str, Table]:
        """The tables the API user can see (queries resolve against these)."""
        return {n: t for n, t in self.tables.items() if n not in self.hidden_objects}

    def object_of(self, record_id: str) -> str | None:
        """The object an Id belongs to (by key prefix), or None."""
        return self.by_prefix.get(record_id[:3])

    def canonical_id(self, object_name: str, value: Any) -> str:
        """A 15/18-char Id for this object -> its 18-char form; RecordFailure MALFORMED_ID."""
        table = self.tables[object_name]
        label = f"{object_name} ID"
        if not isinstance(value, str):
            raise fail("MALFORMED_ID", f"{label}: id value of incorrect type: {value}", ["Id"])
        try:
            rid = normalize(value)
        except InvalidId:
            raise fail(
                "MALFORMED_ID", f"{label}: id value of incorrect type: {value}", ["Id"]
            ) from None
        if rid[:3] != table.schema.key_prefix:
            raise fail("MALFORMED_ID", f"{label}: id value of incorrect type: {value}", ["Id"])
        return rid

    # -- transactions ----------------------------------------------------------------------
    def begin(self) -> int:
        """Open a (nested) transaction; returns a savepoint.  Caller holds ``lock``."""
        self._depth += 1
        return len(self._undo)

    def end(self, savepoint: int, *, rollback: bool) -> None:
        if rollback:
            while len(self._undo) > savepoint:
                self._undo.pop()()
        self._depth -= 1
        if self._depth == 0:
            self._undo.clear()

    def _push(self, step: Callable[[], None]) -> None:
        if self._depth:
            self._undo.append(step)

    # -- seeding -----------------------------------------------------------------------------
    def load(self, object_name: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Fast path: insert rows as given, filling only calculated fields and stamps."""
        table = self.tables[object_name]
        user_table = self.tables["User"]
        title_pos = user_table.pos["title"]
        n = 0
        with self.lock:
            for values in rows:
                row = dict(values)
                modstamp = row.get("SystemModstamp")
                lastmod = row.get("LastModifiedDate")
                if modstamp is None and lastmod is not None:
                    row["SystemModstamp"] = lastmod
                elif lastmod is None and modstamp is not None:
                    row["LastModifiedDate"] = modstamp
                if row.get("CreatedDate") is None and (modstamp or lastmod) is not None:
                    row["CreatedDate"] = min(x for x in (modstamp, lastmod) if x is not None)
                if object_name == "User":
                    row["Name"] = _full_name(row.get("FirstName"), row.get("LastName"))
                elif object_name == "Opportunity":
                    _derive_stage(row, explicit=set(row))
                elif object_name == "AccountTeamMember":
                    user = user_table.rows.get(row.get("UserId") or "")
                    row.setdefault("Title", user[title_pos] if user else None)
                    row.setdefault("PhotoUrl", PHOTO_URL)
                table.insert(row)
                n += 1
        return n

    # -- writes ------------------------------------------------------------------------------
    def create(self, object_name: str, values: Mapping[str, Any], *, csv: bool = False) -> str:
        """Validate and insert; returns the new Id or raises RecordFailure."""
        table = self.tables[object_name]
        schema = table.schema
        with self.lock:
            clean = self._clean(schema, values, creating=True, csv=csv)
            if schema.field("OwnerId") is not None and clean.get("OwnerId") is None:
                clean["OwnerId"] = self.integration_user_id  # the running user owns it
            merged: dict[str, Any] = {f.name: f.default for f in schema.fields}
            merged.update(clean)
            missing = [f.name for f in schema.fields if f.required and merged.get(f.name) is None]
            if missing:
                raise fail(
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(missing)}]",
                    missing,
                )
            self._check_references(schema, clean, object_name)
            self._object_rules(object_name, merged, None, clean)
            insert = dict(clean)
            self._derive(object_name, merged, insert, creating=True)
            insert["CreatedById"] = self.integration_user_id
            insert["LastModifiedById"] = self.integration_user_id
            rid = table.insert(insert)
            self._push(lambda: table.delete(rid, hard=True))
            return rid

    def update(
        self,
        object_name: str,
        record_id: str,
        values: Mapping[str, Any],
        *,
        csv: bool = False,
        keep_account_team: bool = False,
    ) -> None:
        """Validate and update; raises RecordFailure (404 NOT_FOUND for unknown Ids).

        Under the strict profile an Account owner change deletes the account's team unless
        ``keep_account_team`` (the SOAP OwnerChangeOptions header KeepAccountTeam, or the UI
        checkbox; the REST, Collections and Bulk doors have no such option).
        """
        table = self.tables[object_name]
        schema = table.schema
        with self.lock:
            row = self._live_row(object_name, record_id)
            clean = self._clean(schema, values, creating=False, csv=csv)
            nulled = [
                f.name
                for name, v in clean.items()
                if v is None
                and (f := schema.field(name)) is not None
                and (f.required or not f.nillable)
            ]
            if nulled:
                raise fail(
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(nulled)}]",
                    nulled,
                )
            self._check_references(schema, clean, object_name)
            merged = dict(zip(table.columns, row, strict=True))
            merged.update(clean)
            self._object_rules(object_name, merged, record_id, clean)
            changes = dict(clean)
            self._derive(object_name, merged, changes, creating=False)
            changes["LastModifiedById"] = self.integration_user_id
            old = list(row)
            owner_changed = (
                object_name == "Account"
                and "OwnerId" in clean
                and clean["OwnerId"] != row[table.pos["ownerid"]]
            )
            table.update(record_id, changes)
            self._push(lambda: self._restore(table, record_id, old))
            if owner_changed and self.profile.owner_change_wipes_team and not keep_account_team:
                # Since Winter '21 an API owner change deletes the whole account team.
                atm = self.tables["AccountTeamMember"]
                for atm_id in sorted(atm.find("AccountId", record_id)):
                    self._delete_one(atm, atm_id, hard=True)

    def delete(self, object_name: str, record_id: str, *, hard: bool = False) -> None:
        """Delete (Recycle Bin unless hard or the object deletes hard); cascades from Account."""
        table = self.tables[object_name]
        with self.lock:
            self._live_row(object_name, record_id)
            if object_name == "Organization":
                raise fail(
                    "INSUFFICIENT_ACCESS_OR_READONLY",
                    "insufficient access rights on object id",
                    [],
                )
            if object_name == "Account":
                for opp_id in self.tables["Opportunity"].find("AccountId", record_id):
                    if not self.tables["Opportunity"].is_deleted(opp_id):
                        self._delete_one(self.tables["Opportunity"], opp_id, hard=hard)
                for atm_id in self.tables["AccountTeamMember"].find("AccountId", record_id):
                    self._delete_one(self.tables["AccountTeamMember"], atm_id, hard=True)
            self._delete_one(table, record_id, hard=hard)

    def _delete_one(self, table: Table, record_id: str, *, hard: bool) -> None:
        old = list(table.rows[record_id])
        really_hard = hard or not table.schema.soft_delete
        table.delete(record_id, hard=really_hard)
        if really_hard:
            self.hard_deleted.add(record_id)

            def undo() -> None:
                self.hard_deleted.discard(record_id)
                table.insert(dict(zip(table.columns, old, strict=True)), record_id=record_id)

            self._push(undo)
        else:
            self._push(lambda: self._restore(table, record_id, old))

    @staticmethod
    def _restore(table: Table, record_id: str, old: list[Any]) -> None:
        table.update(record_id, dict(zip(table.columns, old, strict=True)), touch=False)

    def _live_row(self, object_name: str, record_id: str) -> list[Any]:
        table = self.tables[object_name]
        row = table.rows.get(record_id)
        if row is None:
            if record_id in self.hard_deleted:
                raise fail("ENTITY_IS_DELETED", "entity is deleted", [], status=404)
            raise fail("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [], status=404)
        if table.is_deleted(record_id):
            raise fail("ENTITY_IS_DELETED", "entity is deleted", [])
        return row

    # -- validation --------------------------------------------------------------------------
    def _clean(
        self,
        schema: ObjectSchema,
        values: Mapping[str, Any],
        *,
        creating: bool,
        csv: bool,
    ) -> dict[str, Any]:
        clean: dict[str, Any] = {}
        readonly: list[str] = []
        for key, raw in values.items():
            if key == "attributes":
                continue
            fdef = schema.field(key)
            if fdef is None:
                raise fail(
                    "INVALID_FIELD",
                    f"No such column '{key}' on sobject of type {schema.name}",
                    None,
                )
            if fdef.name == "Id":
                if creating:
                    if raw in (None, ""):
                        continue
                    raise fail(
                        "INVALID_FIELD_FOR_INSERT_UPDATE",
                        "cannot specify Id in an insert call",
                        ["Id"],
                    )
                continue  # the Id of the record being updated (collections send it)
            if csv and raw == "":
                continue  # an empty CSV cell leaves the field alone
            if not (fdef.createable if creating else fdef.updateable):
                readonly.append(fdef.name)
                continue
            clean[fdef.name] = self._coerce(fdef, raw, csv=csv)
        if readonly:
            raise fail(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(readonly)}. Please check the "
                "security settings of this field and verify that it is read/write for your "
                "profile or permission set.",
                readonly,
            )
        return clean

    def _coerce(self, fdef: FieldDef, raw: Any, *, csv: bool) -> Any:
        if raw is None or (csv and raw == "#N/A"):
            return None
        ftype = fdef.type
        label = field_label(fdef)

        def bad() -> RecordFailure:
            return fail(
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                f"{label}: value not of required type: {raw}",
                [fdef.name],
            )

        if ftype in STRING_TYPES or ftype in ("id", "reference"):
            if isinstance(raw, bool | dict | list):
                raise bad()
            value = str(raw)
            if ftype in ("id", "reference"):
                return value
            if fdef.length and len(value) > fdef.length:
                raise fail(
                    "STRING_TOO_LONG",
                    f"{label}: data value too large: {value[:80]} (max length={fdef.length})",
                    [fdef.name],
                )
            if ftype == "picklist" and fdef.restricted and value not in fdef.picklist:
                raise _bad_picklist(fdef, value)
            if ftype == "multipicklist":
                parts = list(dict.fromkeys(p.strip() for p in value.split(";") if p.strip()))
                if fdef.restricted:
                    for part in parts:
                        if part not in fdef.picklist:
                            raise _bad_picklist(fdef, part)
                return ";".join(parts) if parts else None
            return value
        if ftype == "boolean":
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.strip().lower() in ("true", "false", "1", "0"):
                return raw.strip().lower() in ("true", "1")
            raise bad()
        if ftype == "int" or ftype in FLOAT_TYPES:
            if isinstance(raw, bool):
                raise bad()
            number: float | int
            if isinstance(raw, int | float):
                number = raw
            elif isinstance(raw, str):
                try:
                    number = float(raw.strip())
                except ValueError:
                    raise bad() from None
            else:
                raise bad()
            if ftype == "int":
                if float(number) != int(number):
                    raise bad()
                return int(number)
            return float(number)
        if ftype == "date":
            if not isinstance(raw, str):
                raise bad()
            text = raw.strip()[:10] if csv else raw.strip()
            try:
                return dt.date.fromisoformat(text).isoformat()
            except ValueError:
                raise bad() from None
        if ftype == "datetime":
            if not isinstance(raw, str):
                raise bad()
            try:
                return parse_datetime(raw)
            except ValueError:
                raise bad() from None
        return raw

    def _check_references(
        self, schema: ObjectSchema, clean: dict[str, Any], object_name: str
    ) -> None:
        """Reference fields: well-formed, right object, live target, active owner/user."""
        for name, value in list(clean.items()):
            fdef = schema.field(name)
            if fdef is None or fdef.type != "reference" or value is None or not fdef.reference_to:
                continue
            target = self.tables.get(fdef.reference_to)
            label = field_label(fdef)
            try:
                rid = normalize(value)
            except InvalidId:
                raise fail(
                    "MALFORMED_ID", f"{label}: id value of incorrect type: {value}", [name]
                ) from None
            if target is None or rid[:3] != target.schema.key_prefix:
                raise fail("MALFORMED_ID", f"{label}: id value of incorrect type: {value}", [name])
            clean[name] = rid
            if rid == self.integration_user_id:
                continue
            row = target.rows.get(rid)
            if row is None or target.is_deleted(rid):
                raise fail("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [name])
            if fdef.reference_to == "User" and name in ("OwnerId", "UserId"):
                if not row[target.pos["isactive"]]:
                    raise fail(
                        "INACTIVE_OWNER_OR_USER",
                        f"operation performed with inactive user [{rid}] as owner of "
                        f"{object_name.lower()}",
                        [name],
                    )

    def _object_rules(
        self,
        object_name: str,
        merged: Mapping[str, Any],
        record_id: str | None,
        sent: Mapping[str, Any],
    ) -> None:
        if object_name == "AccountTeamMember":
            self._atm_rules(merged, record_id, sent)
        elif object_name == "User":
            username = (merged.get("Username") or "").lower()
            users = self.tables["User"]
            pos = users.pos["username"]
            for uid, row in list(users.rows.items()):
                if uid != record_id and (row[pos] or "").lower() == username:
                    raise fail(
                        "DUPLICATE_USERNAME",
                        "Duplicate Username.The username already exists in this or another "
                        "Salesforce organization. Usernames must be unique across all "
                        "Salesforce organizations.",
                        ["Username"],
                    )

    def _atm_rules(
        self, merged: Mapping[str, Any], record_id: str | None, sent: Mapping[str, Any]
    ) -> None:
        atm = self.tables["AccountTeamMember"]
        account_id, user_id = merged.get("AccountId"), merged.get("UserId")
        if record_id is None and account_id and user_id:
            user_pos = atm.pos["userid"]
            for other in atm.find("AccountId", account_id):
                if atm.rows[other][user_pos] == user_id:
                    raise fail(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: UserId duplicates value on record with id: "
                        f"{other}",
                        ["UserId"],
                    )
        above = False
        defaults = self.org_defaults
        for fname, obj in ATM_ACCESS_FIELDS:
            default = defaults.get(obj, "None")
            if default == CONTROLLED_BY_PARENT:
                if sent.get(fname) is not None:
                    raise fail(
                        "FIELD_INTEGRITY_EXCEPTION",
                        f"{fname}: cannot be set when contact sharing is Controlled by Parent",
                        [fname],
                    )
                continue
            level = merged.get(fname) or default
            if ACCESS_RANK[level] < ACCESS_RANK[default]:
                raise fail(
                    "FIELD_INTEGRITY_EXCEPTION",
                    f"{fname}: access level {level} is below the organization-wide default "
                    f"({default})",
                    [fname],
                )
            above = above or ACCESS_RANK[level] > ACCESS_RANK[default]
        if not above:
            raise fail(
                "FIELD_INTEGRITY_EXCEPTION",
                "At least one access level must be greater than the organization-wide default",
                [f for f, obj in ATM_ACCESS_FIELDS if defaults.get(obj) != CONTROLLED_BY_PARENT],
            )

    def _derive(
        self,
        object_name: str,
        merged: dict[str, Any],
        changes: dict[str, Any],
        *,
        creating: bool,
    ) -> None:
        """Fill calculated fields into ``changes`` (and ``merged``)."""
        if object_name == "Opportunity" and (creating or "StageName" in changes):
            derived = dict(merged)
            explicit: set[str] = {
                k for k in ("Probability", "ForecastCategoryName") if k in changes
            }
            _derive_stage(derived, explicit=explicit)
            for key in ("IsClosed", "IsWon", "Probability", "ForecastCategoryName"):
                changes[key] = merged[key] = derived[key]
        elif object_name == "User" and (
            creating or "FirstName" in changes or "LastName" in changes
        ):
            changes["Name"] = merged["Name"] = _full_name(
                merged.get("FirstName"), merged.get("LastName")
            )
        elif object_name == "AccountTeamMember" and creating:
            users = self.tables["User"]
            user = users.rows.get(merged.get("UserId") or "")
            changes["Title"] = user[users.pos["title"]] if user else None
            changes["PhotoUrl"] = PHOTO_URL

    # -- reads -------------------------------------------------------------------------------
    def render(
        self, object_name: str, row: list[Any], version: str, names: list[str] | None = None
    ) -> dict[str, Any]:
        """A record as JSON (all fields, or ``names``) with ``attributes``."""
        table = self.tables[object_name]
        fields = (
            table.schema.visible_fields
            if names is None
            else [f for n in names if (f := table.schema.field(n)) is not None]
        )
        slots = [Slot(f.name, column=table.pos[f.name.lower()], ftype=f.type) for f in fields]
        return render_object(row, table, slots, f"/services/data/v{version}/sobjects/")


def _bad_picklist(fdef: FieldDef, value: str) -> RecordFailure:
    return fail(
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        f"bad value for restricted picklist field: {value}",
        [fdef.name],
    )


def _full_name(first: Any, last: Any) -> str:
    return " ".join(str(p) for p in (first, last) if p)


def _derive_stage(row: dict[str, Any], *, explicit: set[str]) -> None:
    stage = sf_schema.OPPORTUNITY_STAGES.get(row.get("StageName") or "")
    if stage is None:
        return
    is_closed, is_won, probability, forecast = stage
    row["IsClosed"] = is_closed
    row["IsWon"] = is_won
    if "Probability" not in explicit or row.get("Probability") is None:
        row["Probability"] = float(probability)
    if "ForecastCategoryName" not in explicit or row.get("ForecastCategoryName") is None:
        row["ForecastCategoryName"] = forecast
