"""The mapping file's schema: parsed and validated once at start-up, every problem listed.

    mapping = load_mapping(Path("mappings/default.toml"))
    mapping.roles["CSM"].team_role          # 'Customer Success Manager'
    mapping.band_for(50)                    # 'Red'

Field names in the file are checked against Salesforce / Gainsight API-name syntax because
they end up in SOQL and Gainsight queries.
"""

from __future__ import annotations

import re
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from config.errors import ConfigurationError

RoleSource = Literal["account_owner", "gainsight_csm", "team_member", "renewal_owner"]
Condition = Literal["always", "qualifying", "customer", "qualifying_customer", "renewal_window"]
FLAG_NAMES = (
    "RED_HEALTH",
    "YELLOW_HEALTH",
    "HEALTH_DROP",
    "RENEWAL_AT_RISK",
    "HANDOFF_DUE",
    "MISSING_<ROLE>",
    "OVERDUE_<ROLE>",
    "INACTIVE_MEMBER",
    "OVERSTAFFED",
    "TEAM_WIPED",
)
# Flags that are gone, and what took their place (named in the validation error).
RETIRED_FLAGS = {
    "NO_CSM": "merged into MISSING_<ROLE> / OVERDUE_<ROLE> (MISSING_CSM, OVERDUE_CSM), which "
    "follow the segment's required roles",
}
# Flags a Gainsight CTA can be opened for.
CTA_FLAGS = (
    "RED_HEALTH",
    "YELLOW_HEALTH",
    "RENEWAL_AT_RISK",
    "HEALTH_DROP",
    "HANDOFF_DUE",
    "INACTIVE_MEMBER",
    "OVERSTAFFED",
)
# Kinds of signal, each routed by its own row of the DCI matrix ([alerts]).
Signal = Literal["risk", "handoff", "coverage"]
# In a DCI row: the manager of the role the signal is about (coverage: the overdue role;
# handoff escalation: [handoff].escalate_to_manager_of).
MANAGER = "MANAGER"
# In gainsight.cta.owner_roles: the Salesforce account owner, whatever role (if any) they hold.
ACCOUNT_OWNER = "account_owner"
# Deadline triggers: the first Closed Won opportunity, the renewal window opening, the
# technical win (the handoff's trigger).
DeadlineTrigger = Literal["first_won", "renewal_window", "technical_win"]
Weekday = Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
WEEKDAYS: tuple[str, ...] = get_args(Weekday)
_SF_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
_GS_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
_ROLE_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,39}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_GS_LOOKUP_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}__gr\.[A-Za-z][A-Za-z0-9_]{0,79}$")

SfField = Annotated[str, Field(pattern=_SF_FIELD.pattern)]
GsField = Annotated[str, Field(pattern=_GS_FIELD.pattern)]
# A path through one Gainsight lookup: ``CurrentScore__gr.Score``.
GsLookupPath = Annotated[str, Field(pattern=_GS_LOOKUP_PATH.pattern)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FallbackRule(_Strict):
    segment: str
    min_employees: int = Field(ge=0)


class Segments(_Strict):
    values: list[str] = Field(min_length=1)
    fallback: list[FallbackRule] = []
    default: str


class Role(_Strict):
    name: str
    team_role: str = Field(min_length=1, max_length=80)
    source: RoleSource
    segments: list[str] | None = None  # account_owner only: which segments the owner holds it in
    managed: bool = False
    gainsight_field: GsField | None = None
    engaged: Literal["always", "renewal_window"] = "always"
    # Segments where the role is pooled (not aligned with account teams): a holder there is
    # not written to gainsight_field unless write_pooled.
    pooled_segments: list[str] = []
    write_pooled: bool = False


class Team(_Strict):
    role_precedence: list[str]
    access: dict[
        Literal[
            "AccountAccessLevel",
            "OpportunityAccessLevel",
            "CaseAccessLevel",
            "ContactAccessLevel",
        ],
        Literal["None", "Read", "Edit", "All"],
    ] = {}


class CsmQualifying(_Strict):
    min_arr: float = Field(ge=0)
    per_segment: dict[str, float] = {}


class Lifecycle(_Strict):
    prospect: str = "Prospect"
    customer: str = "Customer"


class Risk(_Strict):
    # Lifecycles whose accounts get red-health alerts, Risk CTAs and the triage digest;
    # every account keeps its flags.
    lifecycles: list[str] = Field(default_factory=lambda: ["Customer"], min_length=1)


class Triage(_Strict):
    # The periodic triage digest (one per DRI of the risk row) of accounts in these bands.
    bands: list[str] = Field(default_factory=lambda: ["Yellow"])
    every_days: int = Field(7, ge=1)
    weekday: Weekday = "Monday"


class Handoff(_Strict):
    # The org's sales process (Opportunity.StageName values) in order, and the stage at which
    # the technical win is reached: an opportunity at or past it triggers the handoff.
    sales_process: list[str] = Field(min_length=1)
    stage: str
    opportunity_types: list[str] = Field(min_length=1)
    # A Closed Won opportunity older than this no longer opens a handoff.
    window_days: int = Field(90, ge=0)
    # Only for accounts that are (or, by the opportunity's amount, will be) CSM-qualifying.
    qualifying_only: bool = True
    escalate_after_days: int = Field(14, ge=1)
    escalate_to_manager_of: str = "CSM"
    checklist: list[str] = []


class Deadline(_Strict):
    days: int = Field(ge=0)
    after: DeadlineTrigger


class Managers(_Strict):
    # For an empty role, "the role's manager" is the first of these that resolves:
    # "owner_manager" (the account owner's manager) or an e-mail address (that Salesforce user).
    when_unassigned: list[str] = Field(default_factory=lambda: ["owner_manager"])
    by_role: dict[str, list[str]] = {}


class Renewal(_Strict):
    opportunity_types: list[str] = Field(min_length=1)
    window_days: int = Field(ge=0)


class Band(_Strict):
    band: str = Field(min_length=1)
    upto: float


class Health(_Strict):
    bands: list[Band] = Field(min_length=1)
    unknown: str = "Unknown"
    red: str = "Red"
    yellow: str = "Yellow"
    green: str = "Green"


class Flags(_Strict):
    enabled: list[str]
    health_drop_points: float = Field(15, gt=0)
    health_drop_days: int = Field(30, ge=1)
    renewal_at_risk_bands: list[str]
    overstaffed_roles: list[str] = []
    # TEAM_WIPED: every human-maintained team row of an account disappeared at once (since
    # Winter '21 an owner change through the API deletes the account team); raised until a
    # human-maintained row is back, or for at most this many days.
    team_wiped_days: int = Field(14, ge=1)


class SalesforceFields(_Strict):
    segment_field: SfField
    arr_field: SfField
    employees_field: SfField
    health_score_field: SfField
    health_status_field: SfField
    risk_flags_field: SfField


class CtaFlag(_Strict):
    reason: str = Field(min_length=1)
    name: str = Field(min_length=1)
    # The signal decides who owns the CTA (the DRI of its DCI row) and, for "risk", which
    # lifecycles get one ([risk].lifecycles).
    signal: Literal["risk", "handoff"] = "risk"
    type: str | None = None  # default: [gainsight.cta].type
    priority: str | None = None  # default: [gainsight.cta].priority
    due_in_days: int | None = Field(None, ge=0)
    # Lines of the CTA's Comments (e.g. "handoff.checklist" puts the handoff checklist there).
    comments_from: Literal["handoff.checklist"] | None = None


class Cta(_Strict):
    type: str = "Risk"
    priority: str = "High"
    status: str = "New"
    closed_status: str = "Closed Success"
    due_in_days: int = Field(7, ge=0)
    close_adopted: bool = True
    flags: dict[str, CtaFlag] = {}
    # Every CTA is sent with an owner: after its signal's DCI row, the first of these roles
    # (or "account_owner": the Salesforce account owner) whose person has an active Gainsight
    # user, else the fallback owner (checked by preflight); no owner at all: the CTA is not
    # opened and the account is quarantined with the reason.
    owner_roles: list[str] = ["CSM", "SAE", "AE", ACCOUNT_OWNER]
    fallback_owner_email: str | None = None


class GainsightFields(_Strict):
    account_link_field: GsField
    csm_field: GsField
    score_field: GsField
    previous_score_field: GsField
    # Scorecards 2.0: when describe says a score field is a lookup to the scoring scheme, the
    # number is read through it (no configuration needed for the default names).
    score_lookup_path: GsLookupPath = "CurrentScore__gr.Score"
    previous_score_lookup_path: GsLookupPath = "PreviousScore__gr.Score"
    # The date Gainsight's previous score was taken (a Company date field); without it the
    # previous score is undated and never a HEALTH_DROP baseline.
    previous_score_date_field: GsField | None = None
    trend_field: GsField
    arr_field: GsField
    renewal_date_field: GsField
    risk_flags_field: GsField
    cta: Cta = Cta()

    @model_validator(mode="after")
    def _lookup_paths(self) -> GainsightFields:
        problems = [
            f"gainsight.{name}_lookup_path {path!r} must start with {field}__gr."
            for name, field, path in (
                ("score", self.score_field, self.score_lookup_path),
                ("previous_score", self.previous_score_field, self.previous_score_lookup_path),
            )
            if not path.lower().startswith(f"{field.lower()}__gr.")
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self


class CsmBook(_Strict):
    """CSM book of business in `status` / `audit` (reporting only: nothing is written)."""

    max_accounts: int = Field(25, ge=1)  # CSM_OVERLOADED above this many accounts
    max_arr: float | None = Field(None, gt=0)  # ... or above this ARR (None: not checked)


class Alerts(_Strict):
    # Each kind of signal routes by its own row of the DCI matrix.
    routing_activity: str  # risk: red-health alerts, the triage digest, Risk CTAs
    handoff_activity: str | None = None  # the handoff CTA (default: routing_activity)
    coverage_activity: str | None = None  # overdue coverage (default: MANAGER alone)

    def activity(self, signal: str) -> str | None:
        if signal == "handoff":
            return self.handoff_activity or self.routing_activity
        if signal == "coverage":
            return self.coverage_activity
        return self.routing_activity


class MappingFile(_Strict):
    version: Literal[1]
    segments: Segments
    roles: dict[str, Role] = Field(min_length=1)
    team: Team
    required_roles: dict[str, list[str] | dict[str, Condition]]
    csm_qualifying: CsmQualifying
    lifecycle: Lifecycle = Lifecycle()
    risk: Risk = Risk()
    triage: Triage = Triage()
    handoff: Handoff | None = None
    coverage: dict[str, Deadline] = {}
    managers: Managers = Managers()
    renewal: Renewal
    health: Health
    flags: Flags
    salesforce: SalesforceFields
    gainsight: GainsightFields
    dci: dict[str, dict[str, Literal["D", "C", "I"]]]
    alerts: Alerts
    csm_book: CsmBook = CsmBook()

    @field_validator("roles")
    @classmethod
    def _role_keys(cls, roles: dict[str, Role]) -> dict[str, Role]:
        bad = [k for k in roles if not _ROLE_KEY.match(k)]
        if bad:
            raise ValueError(f"role keys must be UPPER_SNAKE_CASE: {', '.join(bad)}")
        if MANAGER in roles:
            raise ValueError(f"{MANAGER} is reserved (the role's manager in a DCI row)")
        return roles

    @model_validator(mode="after")
    def _cross_references(self) -> MappingFile:
        problems: list[str] = []
        segs = set(self.segments.values)
        roles = self.roles
        if self.segments.default not in segs:
            problems.append(f"segments.default {self.segments.default!r} is not a segment")
        for rule in self.segments.fallback:
            if rule.segment not in segs:
                problems.append(f"segments.fallback: unknown segment {rule.segment!r}")
        team_roles: dict[str, str] = {}
        owner_segments: dict[str, str] = {}
        for key, role in roles.items():
            if role.team_role in team_roles:
                problems.append(
                    f"roles.{key}: team_role {role.team_role!r} is also used by "
                    f"roles.{team_roles[role.team_role]}"
                )
            team_roles[role.team_role] = key
            if role.source == "account_owner":
                for seg in role.segments or self.segments.values:
                    if seg not in segs:
                        problems.append(f"roles.{key}.segments: unknown segment {seg!r}")
                    elif seg in owner_segments:
                        problems.append(
                            f"roles.{key}: the account owner already holds roles."
                            f"{owner_segments[seg]} in segment {seg!r}"
                        )
                    else:
                        owner_segments[seg] = key
            elif role.segments is not None:
                problems.append(f"roles.{key}.segments only applies to source = account_owner")
            if role.source == "team_member" and role.managed:
                problems.append(
                    f"roles.{key}: a team_member role is maintained by people and cannot be managed"
                )
        for key in self.team.role_precedence:
            if key not in roles:
                problems.append(f"team.role_precedence: unknown role {key!r}")
        for key, role in roles.items():
            if role.managed and key not in self.team.role_precedence:
                problems.append(f"team.role_precedence must list managed role {key!r}")
        conditions = self.required_roles.get("conditions", {})
        if isinstance(conditions, list):
            problems.append("required_roles.conditions must be a table of role = condition")
            conditions = {}
        for key in conditions:
            if key not in roles:
                problems.append(f"required_roles.conditions: unknown role {key!r}")
        for seg, needed in self.required_roles.items():
            if seg == "conditions":
                continue
            if seg not in segs:
                problems.append(f"required_roles: unknown segment {seg!r}")
            if not isinstance(needed, list):
                problems.append(f"required_roles.{seg} must be a list of role keys")
                continue
            for key in needed:
                if key not in roles:
                    problems.append(f"required_roles.{seg}: unknown role {key!r}")
        for seg in self.csm_qualifying.per_segment:
            if seg not in segs:
                problems.append(f"csm_qualifying.per_segment: unknown segment {seg!r}")
        uppers = [b.upto for b in self.health.bands]
        if uppers != sorted(uppers) or len(set(uppers)) != len(uppers):
            problems.append("health.bands: upper bounds must strictly increase")
        if uppers and uppers[0] < 0:
            problems.append("health.bands: the first band's upper bound must be >= 0")
        names = [b.band for b in self.health.bands]
        if len(set(names)) != len(names):
            problems.append("health.bands: band names must be unique")
        for label, name in (("red", self.health.red), ("green", self.health.green)):
            if name not in names:
                problems.append(f"health.{label} {name!r} is not one of the bands")
        for band in self.flags.renewal_at_risk_bands:
            if band not in [*names, self.health.unknown]:
                problems.append(f"flags.renewal_at_risk_bands: unknown band {band!r}")
        for flag in self.flags.enabled:
            if flag in RETIRED_FLAGS:
                problems.append(f"flags.enabled: {flag} was {RETIRED_FLAGS[flag]}")
            elif flag not in FLAG_NAMES:
                problems.append(f"flags.enabled: unknown flag {flag!r} (known: {FLAG_NAMES})")
        for key in self.flags.overstaffed_roles:
            if key not in roles:
                problems.append(f"flags.overstaffed_roles: unknown role {key!r}")
        for flag, cfg in self.gainsight.cta.flags.items():
            if flag not in CTA_FLAGS:
                problems.append(f"gainsight.cta.flags: unsupported flag {flag!r}")
            if cfg.comments_from == "handoff.checklist" and self.handoff is None:
                problems.append(f"gainsight.cta.flags.{flag}: comments_from needs [handoff]")
        for key in self.gainsight.cta.owner_roles:
            if key not in roles and key != ACCOUNT_OWNER:
                problems.append(f"gainsight.cta.owner_roles: unknown role {key!r}")
        for activity, row in self.dci.items():
            for key in row:
                if key not in roles and key != MANAGER:
                    problems.append(f"dci.{activity!r}: unknown role {key!r}")
        for label in ("routing_activity", "handoff_activity", "coverage_activity"):
            activity = getattr(self.alerts, label)
            if activity is None:
                continue
            if activity not in self.dci:
                problems.append(f"alerts.{label} {activity!r} not in dci")
            elif "D" not in self.dci[activity].values():
                problems.append(f"dci.{activity!r} names no DRI (D)")
        for key, role in roles.items():
            for seg in role.pooled_segments:
                if seg not in segs:
                    problems.append(f"roles.{key}.pooled_segments: unknown segment {seg!r}")
        for lifecycle in self.risk.lifecycles:
            if lifecycle not in (self.lifecycle.prospect, self.lifecycle.customer):
                problems.append(f"risk.lifecycles: unknown lifecycle {lifecycle!r}")
        for band in self.triage.bands:
            if band not in names:
                problems.append(f"triage.bands: unknown band {band!r}")
        if self.health.yellow not in names:
            problems.append(f"health.yellow {self.health.yellow!r} is not one of the bands")
        if self.handoff is not None:
            stages = [st.lower() for st in self.handoff.sales_process]
            if self.handoff.stage.lower() not in stages:
                problems.append(
                    f"handoff.stage {self.handoff.stage!r} is not in handoff.sales_process"
                )
            if self.handoff.escalate_to_manager_of not in roles:
                problems.append(
                    f"handoff.escalate_to_manager_of: unknown role "
                    f"{self.handoff.escalate_to_manager_of!r}"
                )
        for key, deadline in self.coverage.items():
            if key not in roles:
                problems.append(f"coverage: unknown role {key!r}")
            if deadline.after == "technical_win" and self.handoff is None:
                problems.append(f"coverage.{key}.after = 'technical_win' needs [handoff]")
        for key in self.managers.by_role:
            if key not in roles:
                problems.append(f"managers.by_role: unknown role {key!r}")
        for source in [
            *self.managers.when_unassigned,
            *(x for v in self.managers.by_role.values() for x in v),
        ]:
            if source != "owner_manager" and not _EMAIL.match(source):
                problems.append(
                    f"managers: {source!r} is neither 'owner_manager' nor an e-mail address"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # --- helpers used by the rules ------------------------------------------------------
    @property
    def conditions(self) -> dict[str, Condition]:
        raw = self.required_roles.get("conditions", {})
        return dict(raw) if isinstance(raw, dict) else {}

    def required_for(self, segment: str) -> list[str]:
        raw = self.required_roles.get(segment, [])
        return list(raw) if isinstance(raw, list) else []

    def managed_team_roles(self) -> dict[str, str]:
        """Salesforce TeamMemberRole value -> role key, for managed roles (worked out once:
        the rules ask for it for every account; do not modify the answer)."""
        return self._managed_team_roles

    def team_role_keys(self) -> dict[str, str]:
        """Every declared TeamMemberRole value -> role key."""
        return {r.team_role: k for k, r in self.roles.items()}

    def owner_role_for(self, segment: str) -> str | None:
        for key, role in self.roles.items():
            if role.source == "account_owner" and (
                role.segments is None or segment in role.segments
            ):
                return key
        return None

    def min_arr_for(self, segment: str) -> float:
        return self.csm_qualifying.per_segment.get(segment, self.csm_qualifying.min_arr)

    def band_for(self, score: float | None) -> str:
        """Health band of a score: the first band whose upper bound it does not exceed."""
        if score is None:
            return self.health.unknown
        for band in self.health.bands:
            if score <= band.upto:
                return band.band
        return self.health.bands[-1].band

    def cta_type(self, flag: str) -> str:
        cfg = self.gainsight.cta.flags[flag]
        return cfg.type or self.gainsight.cta.type

    def dci_row(self, signal: str) -> dict[str, Literal["D", "C", "I"]]:
        """The DCI row a kind of signal routes by (coverage without a row: the manager)."""
        activity = self.alerts.activity(signal)
        if activity is None:
            return {MANAGER: "D"}
        return dict(self.dci[activity])

    def managers_for(self, role: str) -> list[str]:
        """Where "the role's manager" comes from when the role is empty."""
        return list(self.managers.by_role.get(role, self.managers.when_unassigned))

    def gainsight_team_fields(self) -> dict[str, list[str]]:
        """Company lookup field -> the role keys written into it (first present wins; worked
        out once, do not modify the answer)."""
        return self._gainsight_team_fields

    @cached_property
    def _managed_team_roles(self) -> dict[str, str]:
        return {r.team_role: k for k, r in self.roles.items() if r.managed}

    @cached_property
    def _gainsight_team_fields(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for key, role in self.roles.items():
            if role.gainsight_field:
                out.setdefault(role.gainsight_field, []).append(key)
        return out


def load_mapping(path: Path) -> MappingFile:
    """Read and validate a mapping file; ConfigurationError lists every problem."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigurationError(f"mapping file not found: {path}") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"mapping file {path} is not valid TOML: {exc}") from exc
    try:
        return MappingFile.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if loc:
                problems.append(f"{loc}: {msg}")
            else:
                problems.extend(part.strip() for part in msg.split("; "))
        raise ConfigurationError(f"invalid mapping file {path}", problems) from None
