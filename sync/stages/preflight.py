"""Preflight: every prerequisite of a real org and tenant, as a checklist an admin can act on.

    report = Preflight(settings, mapping, sf, gs).run(full=True)
    report.blocking          # the checks that would stop a run (exit 2), each with its fix
    report.facts             # what a run needs: score paths, Gsid sortable, access levels

Each check is ``ok``, ``missing`` (blocks a run: something an admin must set up) or ``risky``
(a run works, with a cost or a caveat the line names).  The facts in
``reference/real-tenants.md`` behind them: S1 (access levels vs organization-wide defaults),
S2 (Team Role / restricted picklist values), S3 (field-level security), S4 (Account Teams),
S5 (My Domain, JWT audience), G1 (score lookups), G4 (Gsid sortable), G5 (field names), G6
(Cockpit configuration), G8 (team fields as GsUser lookups).

``teamsync preflight`` runs everything; ``teamsync run`` runs the cheap part (describes, the
organization row and the Cockpit picklists: about seven calls), keeps the report in the store
for a day, and refuses with exit 2 before writing anything while a check is missing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import structlog

from config.errors import ConfigurationError
from config.settings import Settings
from connectors.errors import AuthenticationError, FatalError
from mappings.schema import MappingFile
from sync.clock import utcnow
from sync.streams import catalogue

log = structlog.get_logger("teamsync.preflight")

Status = Literal["ok", "missing", "risky"]
OK: Status = "ok"
MISSING: Status = "missing"
RISKY: Status = "risky"

LOGIN_HOSTS = frozenset({"login.salesforce.com", "test.salesforce.com"})
PRODUCTION_AUDIENCE = "https://login.salesforce.com"
SANDBOX_AUDIENCE = "https://test.salesforce.com"

# AccountTeamMember access fields and the object whose organization-wide default bounds them
# (S1).  ContactAccessLevel is never sent: it cannot be set when contact sharing is
# Controlled by Parent, and teamsync has no use for it.
ACCESS_FIELDS = {
    "AccountAccessLevel": "Account",
    "OpportunityAccessLevel": "Opportunity",
    "CaseAccessLevel": "Case",
}
# What a team row can carry per field, lowest first ("All" is not valid in create calls).
ACCESS_VALUES = {
    "AccountAccessLevel": ("Read", "Edit"),
    "OpportunityAccessLevel": ("None", "Read", "Edit"),
    "CaseAccessLevel": ("None", "Read", "Edit"),
}
ACCESS_RANK = {"None": 0, "Read": 1, "Edit": 2, "ReadEditTransfer": 2, "All": 3}
NUMBER_TYPES = frozenset({"NUMBER", "CURRENCY", "PERCENTAGE", "DOUBLE", "INTEGER", "DECIMAL"})
TEXT_TYPES = frozenset({"STRING", "TEXT", "RICHTEXTAREA", "TEXTAREA"})


@dataclass(frozen=True)
class Check:
    """One line of the checklist."""

    key: str  # stable identifier, e.g. "salesforce.field.Account.Health_Score__c"
    title: str  # what is checked
    status: Status
    detail: str = ""  # what was found
    fix: str | None = None  # the exact change an admin makes (None when ok)
    system: str = "salesforce"

    @property
    def blocking(self) -> bool:
        return self.status == MISSING


@dataclass
class Facts:
    """What a run needs to know about the org and tenant (read by preflight)."""

    score_field: str | None = None  # the path the score is read from (None: as mapped)
    previous_score_field: str | None = None
    gsid_sortable: dict[str, bool] = field(default_factory=dict)
    org_defaults: dict[str, str] = field(default_factory=dict)
    access: dict[str, str] | None = None  # levels for new team rows (None: as configured)
    is_sandbox: bool | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Facts:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Report:
    checks: list[Check]
    facts: Facts
    checked_at: datetime
    full: bool
    fingerprint: str = ""

    @property
    def blocking(self) -> list[Check]:
        return [c for c in self.checks if c.blocking]

    @property
    def risky(self) -> list[Check]:
        return [c for c in self.checks if c.status == RISKY]

    @property
    def ok(self) -> bool:
        return not self.blocking

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "full": self.full,
            "checked_at": self.checked_at.isoformat(),
            "fingerprint": self.fingerprint,
            "summary": {
                status: sum(1 for c in self.checks if c.status == status)
                for status in (OK, RISKY, MISSING)
            },
            "checks": [asdict(c) for c in self.checks],
            "facts": asdict(self.facts),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        return cls(
            checks=[Check(**c) for c in data.get("checks") or ()],
            facts=Facts.from_dict(data.get("facts") or {}),
            checked_at=datetime.fromisoformat(str(data["checked_at"])),
            full=bool(data.get("full")),
            fingerprint=str(data.get("fingerprint") or ""),
        )


class PreflightFailed(ConfigurationError):
    """A prerequisite is missing: nothing was written (exit 2); the report says what to fix."""

    def __init__(self, report: Report) -> None:
        self.report = report
        lines = [f"{c.title}: {c.detail} -> {c.fix}" for c in report.blocking]
        super().__init__(
            f"preflight: {len(lines)} prerequisite(s) missing; nothing was written "
            "(run `teamsync preflight` for the whole checklist)",
            lines,
        )


def preflight_from_settings(
    settings: Settings,
    mapping: MappingFile,
    *,
    full: bool = True,
    clock: Callable[[], datetime] = utcnow,
) -> Report:
    """``teamsync preflight``: build the connectors from settings (a connector whose settings
    are refused becomes a checklist line, not an error) and run every check."""
    from sync.engine import build_gainsight, build_salesforce

    settings_problems: list[Check] = []
    sf: Any = None
    gs: Any = None
    for system, build in (("salesforce", build_salesforce), ("gainsight", build_gainsight)):
        try:
            settings.require(system)
            client = build(settings)
        except ConfigurationError as exc:
            problems = exc.problems or [str(exc)]
            settings_problems.append(
                Check(
                    f"{system}.settings",
                    f"{system.capitalize()} connection settings",
                    MISSING,
                    "; ".join(problems)[:500],
                    "fix the TEAMSYNC_* settings listed (README: Configuration)",
                    system,
                )
            )
            continue
        if system == "salesforce":
            sf = client
        else:
            gs = client
    checker = Preflight(settings, mapping, sf, gs, clock=clock)
    report = checker.run(full=full)
    host_refused = any(c.key == "salesforce.auth.host" and c.blocking for c in report.checks)
    extra = [
        c
        for c in settings_problems
        # A login host refused for client credentials is already its own line.
        if not (host_refused and c.key == "salesforce.settings" and "My Domain" in c.detail)
    ]
    report.checks = extra + report.checks
    return report


def store_preflight(store: Any, kind: str, report: Report) -> None:
    """Keep ``report`` as the last one of its kind (``cheap`` / ``full``)."""
    from sync.store.models import PreflightReport

    with store.session() as s:
        row = s.get(PreflightReport, kind)
        if row is None:
            row = PreflightReport(kind=kind)
            s.add(row)
        row.fingerprint = report.fingerprint
        row.ok = report.ok
        row.report = report.to_dict()
        row.checked_at = report.checked_at


# --- pure helpers ---------------------------------------------------------------------------
def effective_access(
    configured: Mapping[str, str], defaults: Mapping[str, str]
) -> dict[str, str] | None:
    """The access levels to send for a new team row: per object max(configured, org-wide
    default); when none is above its default, the first that can be is raised one step.
    None when no level can be above its default (a team row cannot be created)."""
    out: dict[str, str] = {}
    above = False
    for name, obj in ACCESS_FIELDS.items():
        values = ACCESS_VALUES[name]
        default = defaults.get(obj, "None")
        floor = ACCESS_RANK.get(default, 0)
        target = max(floor, ACCESS_RANK.get(configured.get(name) or default, 0))
        candidates = [v for v in values if ACCESS_RANK[v] >= target]
        # The lowest level that satisfies both (the highest a row can carry when the default
        # is above anything a team row can hold: then nothing is above it).
        level = candidates[0] if candidates else values[-1]
        out[name] = level
        above = above or ACCESS_RANK[level] > floor
    if above:
        return out
    for name, obj in ACCESS_FIELDS.items():
        floor = ACCESS_RANK.get(defaults.get(obj, "None"), 0)
        higher = [v for v in ACCESS_VALUES[name] if ACCESS_RANK[v] > floor]
        if higher:
            out[name] = higher[0]
            return out
    return None


def fingerprint(settings: Settings, mapping: MappingFile) -> str:
    """What a cached report depends on: the mapping and where/how teamsync connects."""
    parts = {
        "mapping": mapping.model_dump(mode="json"),
        "salesforce": settings.salesforce_instance_url,
        "auth": settings.salesforce_auth_mode(),
        "aud": settings.salesforce_jwt_audience,
        "gainsight": settings.gainsight_base_url,
    }
    raw = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def expand_flags(mapping: MappingFile) -> list[str]:
    """Every flag value teamsync may write (MISSING_<ROLE> spelled out per required role,
    OVERDUE_<ROLE> per required role with a [coverage] deadline)."""
    out: list[str] = []
    required: set[str] = set()
    for seg in mapping.segments.values:
        required.update(mapping.required_for(seg))
    for flag in mapping.flags.enabled:
        if flag == "MISSING_<ROLE>":
            out.extend(f"MISSING_{k}" for k in sorted(required))
        elif flag == "OVERDUE_<ROLE>":
            out.extend(f"OVERDUE_{k}" for k in sorted(required & set(mapping.coverage)))
        else:
            out.append(flag)
    return out


def _host(url: str | None) -> str:
    return (urlsplit(url or "").hostname or "").lower()


def _base(path: str) -> str:
    """``Csm__gr.Email`` -> ``Csm`` (the field on the object itself)."""
    head = path.split(".", 1)[0]
    return head[:-4] if head.lower().endswith("__gr") else head


# --- the checks -----------------------------------------------------------------------------
class Preflight:
    """Runs the checks against live clients (``sf`` / ``gs``: the connectors)."""

    def __init__(
        self,
        settings: Settings,
        mapping: MappingFile,
        sf: Any,
        gs: Any,
        *,
        clock: Callable[[], datetime] = utcnow,
        raise_upstream: bool = False,
    ) -> None:
        """``raise_upstream``: an API that cannot be reached or refuses the credentials
        raises its error (exit 3, what a run does) instead of becoming a checklist line."""
        self.settings = settings
        self.mapping = mapping
        self.sf = sf
        self.gs = gs
        self.clock = clock
        self.raise_upstream = raise_upstream
        self.checks: list[Check] = []
        self.facts = Facts()
        self._jwt_audience: str | None = None

    def add(
        self,
        key: str,
        title: str,
        status: Status,
        detail: str = "",
        fix: str | None = None,
        system: str = "salesforce",
    ) -> None:
        self.checks.append(Check(key, title, status, detail, fix if status != OK else None, system))

    def run(self, *, full: bool) -> Report:
        """Every check (``full``) or the cheap part a run needs."""
        self.checks, self.facts = [], Facts()
        self._auth_settings()
        if self.sf is not None:
            self._salesforce()
        if self.gs is not None:
            self._gainsight(full=full)
        report = Report(
            self.checks,
            self.facts,
            self.clock(),
            full,
            fingerprint(self.settings, self.mapping),
        )
        log.info(
            "preflight",
            full=full,
            ok=sum(1 for c in self.checks if c.status == OK),
            risky=len(report.risky),
            missing=len(report.blocking),
        )
        return report

    # --- settings ---------------------------------------------------------------------------
    def _auth_settings(self) -> None:
        s = self.settings
        host = _host(s.salesforce_instance_url)
        mode = s.salesforce_auth_mode()
        title = "Salesforce instance URL fits the auth flow"
        if mode == "client_credentials" and host in LOGIN_HOSTS:
            self.add(
                "salesforce.auth.host",
                title,
                MISSING,
                f"client credentials against {host}: the flow only works on the org's My Domain",
                "set TEAMSYNC_SALESFORCE_INSTANCE_URL to the My Domain URL (Setup > My Domain), "
                "e.g. https://acme.my.salesforce.com",
            )
        else:
            self.add("salesforce.auth.host", title, OK, f"{mode or 'no'} credentials, {host}")
        if mode == "jwt":
            from connectors.salesforce import jwt_audience_for

            aud = s.salesforce_jwt_audience or jwt_audience_for(s.salesforce_instance_url or "")
            how = "as set" if s.salesforce_jwt_audience else "derived from the host"
            self._jwt_audience = aud
            self.add("salesforce.auth.jwt_audience", "JWT audience", OK, f"{aud} ({how})")
        else:
            self._jwt_audience = None

    # --- Salesforce -------------------------------------------------------------------------
    def _salesforce(self) -> None:
        try:
            org = self.sf.organization()
        except (AuthenticationError, FatalError) as exc:
            if self.raise_upstream:
                raise
            auth = isinstance(exc, AuthenticationError)
            if auth and self._jwt_audience is not None and "audience" in str(exc).lower():
                other = (
                    SANDBOX_AUDIENCE
                    if self._jwt_audience.rstrip("/") == PRODUCTION_AUDIENCE
                    else PRODUCTION_AUDIENCE
                )
                self.checks = [c for c in self.checks if c.key != "salesforce.auth.jwt_audience"]
                self.add(
                    "salesforce.auth.jwt_audience",
                    "JWT audience",
                    MISSING,
                    f"the org refused the audience {self._jwt_audience}",
                    f"a sandbox needs TEAMSYNC_SALESFORCE_JWT_AUDIENCE={SANDBOX_AUDIENCE} (or its "
                    "<domain>--<sandbox>.sandbox.my.salesforce.com URL as the instance, which "
                    f"derives it); production {PRODUCTION_AUDIENCE}; here try {other}",
                )
            self.add(
                "salesforce.api",
                "Salesforce API access for the integration user",
                MISSING,
                str(exc)[:300],
                "check the connected app (consumer key / secret or certificate), that it is "
                "approved for the integration user, and that the user's profile or permission "
                "set has API Enabled"
                if auth
                else "check TEAMSYNC_SALESFORCE_INSTANCE_URL and that the org answers",
            )
            return
        self.add(
            "salesforce.api",
            "Salesforce API access for the integration user",
            OK,
            f"{org.org_type or 'org'} {org.org_id}{' (sandbox)' if org.is_sandbox else ''}",
        )
        self.facts.is_sandbox = org.is_sandbox
        self.facts.org_defaults = dict(org.defaults)
        if self._jwt_audience is not None:
            want = SANDBOX_AUDIENCE if org.is_sandbox else PRODUCTION_AUDIENCE
            if self._jwt_audience.rstrip("/") not in (want, (self.settings.salesforce_instance_url
                                                           or "").rstrip("/")):  # fmt: skip
                self.checks = [c for c in self.checks if c.key != "salesforce.auth.jwt_audience"]
                self.add(
                    "salesforce.auth.jwt_audience",
                    "JWT audience",
                    MISSING,
                    f"{self._jwt_audience} for a {'sandbox' if org.is_sandbox else 'production'}"
                    " org",
                    f"set TEAMSYNC_SALESFORCE_JWT_AUDIENCE={want} (or unset it to derive it)",
                )
        described: dict[str, dict[str, Any] | None] = {}
        for obj in ("Account", "Opportunity", "User", "AccountTeamMember"):
            described[obj] = self.sf.describe_if_exists(obj)
        atm = described["AccountTeamMember"]
        self.add(
            "salesforce.account_teams",
            "Account Teams enabled (AccountTeamMember describable)",
            OK if atm is not None else MISSING,
            "" if atm is not None else "AccountTeamMember is not available to the integration user",
            "Setup > Account Teams > Enable Account Teams (and give the integration user Read "
            "and Edit on Account)",
        )
        self._salesforce_fields(described)
        if atm is not None:
            self._team_roles(atm)
        if described["Account"] is not None:
            self._account_picklists(described["Account"])
        self._sharing()

    def _sf_needs(self) -> dict[str, dict[str, str]]:
        """{object: {field: "read" | "update" | "create" | "create+update"}}."""
        streams = catalogue(self.mapping)
        needs: dict[str, dict[str, str]] = {}
        for stream in (streams.sf_user, streams.sf_account, streams.sf_opportunity,
                       streams.sf_team_member):  # fmt: skip
            for name in stream.fields:
                needs.setdefault(stream.object, {})[name.split(".")[0]] = "read"
        sf = self.mapping.salesforce
        for name in (sf.health_score_field, sf.health_status_field, sf.risk_flags_field):
            needs["Account"][name] = "update"
        atm = needs["AccountTeamMember"]
        for name in ("AccountId", "UserId", *ACCESS_FIELDS):
            atm[name] = "create"
        atm["TeamMemberRole"] = "create+update"
        return needs

    def _salesforce_fields(self, described: Mapping[str, dict[str, Any] | None]) -> None:
        for obj, needs in self._sf_needs().items():
            info = described.get(obj)
            if info is None:
                continue
            fields = {str(f.get("name", "")).lower(): f for f in info.get("fields") or ()}
            fine = 0
            for name, need in sorted(needs.items()):
                f = fields.get(name.lower())
                key = f"salesforce.field.{obj}.{name}"
                title = f"{obj}.{name} {'readable' if need == 'read' else 'writable'}"
                if f is None:
                    self.add(
                        key,
                        title,
                        MISSING,
                        "not visible to the integration user (missing, or no field-level "
                        "read access)",
                        f"create {obj}.{name} (or fix the mapping) and give the integration "
                        f"user's permission set Read{'' if need == 'read' else ' and Edit'} "
                        f"access to it (Field-Level Security)",
                    )
                    continue
                lacking = [
                    word
                    for word, flag in (("create", "createable"), ("update", "updateable"))
                    if word in need and not f.get(flag)
                ]
                if lacking:
                    self.add(
                        key,
                        title,
                        MISSING,
                        f"readable but not {' / '.join(w + 'able' for w in lacking)}",
                        f"give the integration user's permission set Edit access to "
                        f"{obj}.{name} (Field-Level Security)",
                    )
                    continue
                fine += 1
            self.add(
                f"salesforce.fields.{obj}",
                f"{obj}: mapped fields",
                OK if fine == len(needs) else MISSING,
                f"{fine} of {len(needs)} fields readable / writable as needed",
                "see the field lines above",
            )

    @staticmethod
    def _picklist(describe: Mapping[str, Any], name: str) -> tuple[set[str], bool] | None:
        for f in describe.get("fields") or ():
            if str(f.get("name", "")).lower() == name.lower():
                values = {
                    str(v.get("value"))
                    for v in f.get("picklistValues") or ()
                    if v.get("active", True) is not False
                }
                return values, bool(f.get("restrictedPicklist"))
        return None

    def _team_roles(self, atm: Mapping[str, Any]) -> None:
        found = self._picklist(atm, "TeamMemberRole")
        values = found[0] if found else set()
        for key, role in self.mapping.roles.items():
            present = role.team_role in values
            written = role.managed
            self.add(
                f"salesforce.team_role.{key}",
                f"Team Role '{role.team_role}' ({key})",
                OK if present else (MISSING if written else RISKY),
                "in the Team Role picklist"
                if present
                else (
                    "missing: teamsync writes rows in this role"
                    if written
                    else "missing: people cannot add rows in this role, teamsync reads none"
                ),
                f"Setup > Account Teams > Team Roles: add '{role.team_role}'",
            )

    def _account_picklists(self, account: Mapping[str, Any]) -> None:
        sf = self.mapping.salesforce
        health = self.mapping.health
        wanted = {
            sf.health_status_field: [b.band for b in health.bands] + [health.unknown],
            sf.risk_flags_field: expand_flags(self.mapping),
        }
        for name, needed in wanted.items():
            found = self._picklist(account, name)
            if found is None:
                continue  # reported by the field checks
            values, restricted = found
            absent = [v for v in needed if v not in values]
            if not absent:
                detail = "every value present"
            elif not restricted:
                detail = f"not restricted; values not in the list yet: {', '.join(absent)}"
            else:
                detail = f"restricted picklist lacks: {', '.join(absent)}"
            self.add(
                f"salesforce.picklist.Account.{name}",
                f"Account.{name} values",
                OK if not absent or not restricted else MISSING,
                detail,
                f"Setup > Object Manager > Account > {name}: add the values "
                f"{', '.join(absent)} (or unrestrict the picklist)",
            )

    def _sharing(self) -> None:
        defaults = self.facts.org_defaults
        configured = {str(k): str(v) for k, v in self.mapping.team.access.items()}
        access = effective_access(configured, defaults)
        shown = ", ".join(f"{obj} {defaults.get(obj, '?')}" for obj in ACCESS_FIELDS.values())
        if access is None:
            self.add(
                "salesforce.sharing",
                "Access levels for new team members vs organization-wide defaults",
                MISSING,
                f"defaults {shown}: no access level can be above its default, so Salesforce "
                "refuses every new team member",
                "Setup > Sharing Settings: make one of Account, Opportunity or Case Private "
                "or Public Read Only",
            )
            return
        self.facts.access = access
        raised = {
            k: v
            for k, v in access.items()
            if ACCESS_RANK[v] > ACCESS_RANK.get(configured.get(k, "None"), 0)
        }
        note = (
            "; ContactAccessLevel is not sent (contact sharing is Controlled by Parent)"
            if defaults.get("Contact") == "ControlledByParent"
            else ""
        )
        self.add(
            "salesforce.sharing",
            "Access levels for new team members vs organization-wide defaults",
            RISKY if raised else OK,
            f"defaults {shown}; new rows get "
            + ", ".join(f"{k} {v}" for k, v in access.items())
            + (f" (raised: {', '.join(sorted(raised))})" if raised else "")
            + note,
            "nothing to do unless the raised levels are too wide: then tighten the "
            "organization-wide defaults (Setup > Sharing Settings) or team.access in the mapping",
        )

    # --- Gainsight --------------------------------------------------------------------------
    def _gs_needs(self) -> dict[str, dict[str, str]]:
        streams = catalogue(self.mapping)
        needs: dict[str, dict[str, str]] = {}
        for stream in (streams.gs_user, streams.gs_company):
            for path in stream.fields:
                needs.setdefault(stream.object, {})[_base(path)] = "read"
        written = (*self.mapping.gainsight_team_fields(), self.mapping.gainsight.risk_flags_field)
        for name in written:
            needs["Company"][name] = "update"
        return needs

    def _gainsight(self, *, full: bool) -> None:
        try:
            described = self.gs.describe("Company", "GsUser")
        except (AuthenticationError, FatalError) as exc:
            if self.raise_upstream:
                raise
            auth = isinstance(exc, AuthenticationError)
            self.add(
                "gainsight.api",
                "Gainsight API access",
                MISSING,
                str(exc)[:300],
                "generate a REST API access key (Administration > Connectors 2.0 > Gainsight "
                "API) and set TEAMSYNC_GAINSIGHT_ACCESS_KEY"
                if auth
                else "check TEAMSYNC_GAINSIGHT_BASE_URL and that the tenant answers",
                system="gainsight",
            )
            return
        self.add("gainsight.api", "Gainsight API access", OK, "describe answered", "", "gainsight")
        for obj, needs in self._gs_needs().items():
            info = described.get(obj.lower())
            if info is None:
                self.add(
                    f"gainsight.object.{obj}",
                    f"Gainsight object {obj}",
                    MISSING,
                    "not described by the tenant",
                    "check the object name and the access key's permissions",
                    system="gainsight",
                )
                continue
            missing = [n for n in sorted(needs) if info.field(n) is None]
            for name in missing:
                self.add(
                    f"gainsight.field.{obj}.{name}",
                    f"{obj}.{name} exists",
                    MISSING,
                    "no such field on this tenant (a query selecting it fails as a whole)",
                    f"create {obj}.{name} in Data Management, or set the mapping's gainsight "
                    "field names to this tenant's (mappings/*.toml [gainsight])",
                    system="gainsight",
                )
            read_only = [
                n
                for n, need in sorted(needs.items())
                if need == "update" and (f := info.field(n)) is not None and not f.updateable
            ]
            for name in read_only:
                self.add(
                    f"gainsight.field.{obj}.{name}",
                    f"{obj}.{name} writable",
                    MISSING,
                    "not updateable",
                    f"make {obj}.{name} editable in Data Management",
                    system="gainsight",
                )
            self.add(
                f"gainsight.fields.{obj}",
                f"{obj}: mapped fields",
                OK if not missing and not read_only else MISSING,
                f"{len(needs) - len(missing) - len(read_only)} of {len(needs)} fields as needed",
                "see the field lines above",
                system="gainsight",
            )
            gsid = info.field("Gsid")
            sortable = gsid is None or (gsid.sortable and gsid.filterable)
            self.facts.gsid_sortable[obj] = sortable
            self.add(
                f"gainsight.gsid_sortable.{obj}",
                f"{obj}.Gsid sortable and filterable (keyset paging)",
                OK if sortable else RISKY,
                "keyset paging on Gsid"
                if sortable
                else "not sortable: reads page by offset in CreatedDate order instead (an "
                "interrupted read starts over)",
                "nothing to do (paging falls back); ask Gainsight support to make Gsid sortable "
                "for faster reads",
                system="gainsight",
            )
        company = described.get("company")
        if company is not None:
            self._scores(company)
            self._team_fields(company)
        self._cockpit()
        if full:
            self._fallback_owner()

    def _scores(self, company: Any) -> None:
        g = self.mapping.gainsight
        for attr, name, path in (
            ("score_field", g.score_field, g.score_lookup_path),
            ("previous_score_field", g.previous_score_field, g.previous_score_lookup_path),
        ):
            f = company.field(name)
            if f is None:
                continue  # reported as a missing field
            if f.is_lookup:
                setattr(self.facts, attr, path)
                status, detail = OK, f"a lookup (Scorecards 2.0): the number is read as {path}"
            elif f.data_type in NUMBER_TYPES:
                status, detail = OK, f"a number ({f.data_type}): read as it is"
            else:
                status, detail = MISSING, f"a {f.data_type}, neither a number nor a lookup"
            self.add(
                f"gainsight.score.{name}",
                f"Company.{name} is a score",
                status,
                detail,
                f"map gainsight.{attr} to the Company field that holds the overall score",
                system="gainsight",
            )

    def _team_fields(self, company: Any) -> None:
        for name in self.mapping.gainsight_team_fields():
            f = company.field(name)
            if f is None:
                continue
            good = f.is_lookup and (not f.lookup_objects or f.looks_up("GsUser"))
            self.add(
                f"gainsight.team_field.{name}",
                f"Company.{name} is a GSID lookup to GsUser",
                OK if good else MISSING,
                f"{f.data_type}"
                + (f" to {', '.join(f.lookup_objects)}" if f.lookup_objects else ""),
                f"recreate Company.{name} as a Lookup field to User (GsUser) in Data Management",
                system="gainsight",
            )
        flags = company.field(self.mapping.gainsight.risk_flags_field)
        if flags is not None:
            self.add(
                f"gainsight.team_field.{flags.name}",
                f"Company.{flags.name} is text",
                OK if flags.data_type in TEXT_TYPES else MISSING,
                flags.data_type,
                f"recreate Company.{flags.name} as a String field (flags joined by ';')",
                system="gainsight",
            )

    def _cockpit(self) -> None:
        cta = self.mapping.gainsight.cta
        if not cta.flags:
            return
        try:
            picklists = self.gs.cta_picklists()
        except FatalError as exc:
            self.add(
                "gainsight.cockpit",
                "Cockpit picklists readable",
                MISSING,
                str(exc)[:300],
                "check that Cockpit is enabled and the access key may read its configuration",
                system="gainsight",
            )
            return

        def names(category: str) -> set[str]:
            return {i.name.lower() for i in picklists.get(category, []) if i.active}

        wanted: list[tuple[str, str, str, str]] = [
            ("CTA_TYPE", "type", cta.type, "gainsight.cta.type"),
            ("CTA_PRIORITY", "priority", cta.priority, "gainsight.cta.priority"),
            ("CTA_STATUS", "status", cta.status, "gainsight.cta.status"),
            ("CTA_STATUS", "closed status", cta.closed_status, "gainsight.cta.closed_status"),
        ]
        for flag, cfg in sorted(cta.flags.items()):
            wanted.append(("CTA_REASON", f"reason for {flag}", cfg.reason,
                           f"gainsight.cta.flags.{flag}.reason"))  # fmt: skip
            # A flag's own type / priority (the Handoff CTA is a Lifecycle CTA).
            if cfg.type and cfg.type.lower() != cta.type.lower():
                wanted.append(("CTA_TYPE", f"type for {flag}", cfg.type,
                               f"gainsight.cta.flags.{flag}.type"))  # fmt: skip
            if cfg.priority and cfg.priority.lower() != cta.priority.lower():
                wanted.append(("CTA_PRIORITY", f"priority for {flag}", cfg.priority,
                               f"gainsight.cta.flags.{flag}.priority"))  # fmt: skip
        for category, what, value, setting in wanted:
            present = value.lower() in names(category)
            self.add(
                f"gainsight.cockpit.{setting.removeprefix('gainsight.cta.')}",
                f"Cockpit {what} '{value}'",
                OK if present else MISSING,
                "configured" if present else f"not among the tenant's {category} values",
                f"Administration > Cockpit Configuration: add {what} '{value}'"
                + (" to its CTA type" if category == "CTA_REASON" else "")
                + f", or set {setting} in the mapping to an existing value",
                system="gainsight",
            )
        statuses = {i.name.lower(): i for i in picklists.get("CTA_STATUS", [])}
        closed = statuses.get(cta.closed_status.lower())
        if closed is not None and closed.closed is False:
            self.add(
                "gainsight.cockpit.closed_status_closes",
                f"Cockpit status '{cta.closed_status}' closes a CTA",
                MISSING,
                "the status is an open one",
                "set gainsight.cta.closed_status to a closed status",
                system="gainsight",
            )

    def _fallback_owner(self) -> None:
        email = self.mapping.gainsight.cta.fallback_owner_email
        if not email:
            self.add(
                "gainsight.cta.fallback_owner",
                "CTA fallback owner",
                RISKY if self.mapping.gainsight.cta.flags else OK,
                "none configured: a CTA for an account without a CSM or owner with a Gainsight "
                "user is not opened (quarantined)",
                "set gainsight.cta.fallback_owner_email in the mapping to a CS manager's e-mail",
                system="gainsight",
            )
            return
        from connectors.gainsight import Condition

        by_email = [Condition("Email", "EQ", [email])]
        pages = self.gs.query("GsUser", ["Gsid", "Email", "IsActiveUser"], conditions=by_email)
        rows = [r for page in pages for r in page]
        active = [r for r in rows if r.get("IsActiveUser") is not False]
        self.add(
            "gainsight.cta.fallback_owner",
            f"CTA fallback owner {email}",
            OK if active else MISSING,
            "an active Gainsight user" if active else "no active Gainsight user with this e-mail",
            "set gainsight.cta.fallback_owner_email to an active Gainsight user's e-mail",
            system="gainsight",
        )


__all__ = [
    "ACCESS_FIELDS",
    "Check",
    "Facts",
    "Preflight",
    "PreflightFailed",
    "Report",
    "effective_access",
    "expand_flags",
    "fingerprint",
    "preflight_from_settings",
    "store_preflight",
]
