"""The account-team rules: pure functions from one account's inputs to its mapped model.

Nothing here does I/O; the engine gathers an :class:`AccountInput` per account from the
store and calls :func:`map_account`.  Every rule is driven by the
:class:`~mappings.schema.MappingFile`.

    mapped = map_account(inputs, mapping)
    mapped.segment, mapped.lifecycle, mapped.flags, mapped.team["CSM"]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from mappings.schema import MappingFile


@dataclass(frozen=True)
class Person:
    """A user as seen from one account: ids in both systems where known."""

    name: str | None
    email: str | None  # lower case
    sf_user_id: str | None = None
    sf_active: bool | None = None  # None: no Salesforce user
    gs_user_id: str | None = None
    gs_active: bool | None = None  # None: no Gainsight user

    @property
    def key(self) -> str:
        return self.sf_user_id or self.gs_user_id or self.email or ""


@dataclass(frozen=True)
class TeamRow:
    """An existing AccountTeamMember row."""

    id: str
    user_id: str
    team_role: str | None
    person: Person
    created: datetime | None = None


@dataclass(frozen=True)
class Opportunity:
    id: str
    type: str | None
    is_closed: bool
    is_won: bool
    close_date: date | None
    owner: Person | None


@dataclass(frozen=True)
class CompanyInput:
    gsid: str
    name: str | None
    csm: Person | None
    score: float | None
    previous_score: float | None
    trend: str | None
    arr: float | None
    team_fields: dict[str, str | None]  # Company lookup field -> GsUser Gsid (actual)
    risk_flags: str | None  # actual value of the risk-flags field


@dataclass(frozen=True)
class AccountInput:
    id: str
    name: str
    owner: Person | None
    segment_raw: str | None
    employees: int | None
    arr: float | None
    opportunities: Sequence[Opportunity]
    team_rows: Sequence[TeamRow]
    company: CompanyInput | None
    score_history: Sequence[tuple[datetime, float | None]]  # earlier observations, oldest first
    today: date
    # actual values of the fields teamsync writes on the Account
    health_score_actual: float | None = None
    health_status_actual: str | None = None
    risk_flags_actual: str | None = None


@dataclass(frozen=True)
class Member:
    """Who holds a role on the account, and where that came from."""

    role: str
    person: Person
    source: str  # account_owner / gainsight_csm / team_member / renewal_owner

    @property
    def inactive(self) -> bool:
        # Inactive in the system of record for the role, or in Salesforce where the row lives.
        if self.source == "gainsight_csm":
            return self.person.gs_active is False or self.person.sf_active is False
        return self.person.sf_active is False


@dataclass(frozen=True)
class Renewal:
    opportunity_id: str
    close_date: date
    days: int
    in_window: bool
    owner: Person | None


@dataclass
class MappedAccount:
    account_id: str
    name: str
    segment: str
    segment_source: str  # field / fallback / default
    lifecycle: str
    is_customer: bool
    first_won: date | None
    arr: float | None
    qualifying: bool
    renewal: Renewal | None
    company_gsid: str | None
    health_score: float | None
    health_band: str
    previous_score: float | None
    trend: str | None
    team: dict[str, Member] = field(default_factory=dict)  # role key -> member (present roles)
    missing_roles: list[str] = field(default_factory=list)  # required roles that are empty
    inactive_members: list[str] = field(default_factory=list)  # descriptions
    flags: list[str] = field(default_factory=list)
    # desired Salesforce rows of managed roles: user id -> (role key, TeamMemberRole)
    desired_rows: dict[str, tuple[str, str]] = field(default_factory=dict)
    # desired Gainsight Company team fields: field -> GsUser Gsid or None (absent: not managed now)
    desired_gs_fields: dict[str, str | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # things the plan cannot do (unresolved users)


def join_flags(flags: Iterable[str]) -> str | None:
    """Flags sorted and joined by ``;`` (None when there are none)."""
    values = sorted(set(flags))
    return ";".join(values) if values else None


def split_flags(value: str | None) -> frozenset[str]:
    if not value:
        return frozenset()
    return frozenset(v.strip() for v in value.split(";") if v.strip())


# --- individual rules -----------------------------------------------------------------------
def segment_of(
    segment_raw: str | None, employees: int | None, mapping: MappingFile
) -> tuple[str, str]:
    """(segment, where it came from): the Account field, else the employee-count fallback."""
    if segment_raw:
        for value in mapping.segments.values:
            if segment_raw.strip().lower() == value.lower():
                return value, "field"
    if employees is not None:
        for rule in mapping.segments.fallback:
            if employees >= rule.min_employees:
                return rule.segment, "fallback"
        return mapping.segments.default, "fallback"
    return mapping.segments.default, "default"


def is_qualifying(arr: float | None, segment: str, mapping: MappingFile) -> bool:
    """CSM-qualifying: ARR at or above the segment's threshold."""
    return arr is not None and arr >= mapping.min_arr_for(segment)


def lifecycle_of(opps: Sequence[Opportunity], mapping: MappingFile) -> tuple[str, date | None]:
    """(lifecycle, first Closed Won date): Customer from the first won opportunity on."""
    won = [o.close_date for o in opps if o.is_won and o.close_date is not None]
    won_any = any(o.is_won for o in opps)
    if won_any:
        return mapping.lifecycle.customer, (min(won) if won else None)
    return mapping.lifecycle.prospect, None


def next_renewal(opps: Sequence[Opportunity], today: date, mapping: MappingFile) -> Renewal | None:
    """The earliest open renewal (an overdue one included) and whether its window is open."""
    types = {t.lower() for t in mapping.renewal.opportunity_types}
    open_renewals = [
        o
        for o in opps
        if not o.is_closed and o.close_date is not None and (o.type or "").lower() in types
    ]
    if not open_renewals:
        return None
    nxt = min(open_renewals, key=lambda o: (o.close_date or date.max, o.id))
    assert nxt.close_date is not None
    days = (nxt.close_date - today).days
    return Renewal(nxt.id, nxt.close_date, days, days <= mapping.renewal.window_days, nxt.owner)


def health_drop(
    score: float | None,
    previous_score: float | None,
    history: Sequence[tuple[datetime, float | None]],
    today: date,
    mapping: MappingFile,
) -> bool:
    """Score fell by at least the threshold from the highest score seen within the window."""
    if score is None:
        return False
    since = datetime.combine(
        today - timedelta(days=mapping.flags.health_drop_days), datetime.min.time()
    )
    baseline = [s for when, s in history if s is not None and when.replace(tzinfo=None) >= since]
    if previous_score is not None:
        baseline.append(previous_score)
    return bool(baseline) and max(baseline) - score >= mapping.flags.health_drop_points


def trend_of(
    score: float | None, history: Sequence[tuple[datetime, float | None]], reported: str | None
) -> str | None:
    """Up / Down / Same against the last different observation, else Gainsight's own trend."""
    if score is not None:
        for _, earlier in reversed(history):
            if earlier is not None and earlier != score:
                return "Up" if score > earlier else "Down"
        if any(s is not None for _, s in history):
            return "Same"
    return reported


def required_roles(
    segment: str, qualifying: bool, customer: bool, in_window: bool, mapping: MappingFile
) -> list[str]:
    out = []
    conditions = mapping.conditions
    for key in mapping.required_for(segment):
        cond = conditions.get(key, "always")
        ok = {
            "always": True,
            "qualifying": qualifying,
            "customer": customer,
            "qualifying_customer": qualifying and customer,
            "renewal_window": in_window,
        }[cond]
        if ok:
            out.append(key)
    return out


def _pick_team_member(rows: Sequence[TeamRow], team_role: str) -> TeamRow | None:
    """The row holding a people-maintained role: active users first, then the oldest."""
    candidates = [r for r in rows if r.team_role == team_role]
    if not candidates:
        return None
    candidates.sort(key=lambda r: (r.person.sf_active is False, r.created or datetime.max, r.id))
    return candidates[0]


def _label(person: Person) -> str:
    return person.name or person.email or person.key


# --- the whole account ----------------------------------------------------------------------
def map_account(inp: AccountInput, mapping: MappingFile) -> MappedAccount:
    """Map one account onto the account-team model (segment, lifecycle, team, flags, desired)."""
    segment, segment_source = segment_of(inp.segment_raw, inp.employees, mapping)
    lifecycle, first_won = lifecycle_of(inp.opportunities, mapping)
    customer = lifecycle == mapping.lifecycle.customer
    qualifying = is_qualifying(inp.arr, segment, mapping)
    renewal = next_renewal(inp.opportunities, inp.today, mapping)
    in_window = bool(renewal and renewal.in_window)
    company = inp.company
    score = company.score if company else None
    band = mapping.band_for(score)
    previous = company.previous_score if company else None
    out = MappedAccount(
        account_id=inp.id,
        name=inp.name,
        segment=segment,
        segment_source=segment_source,
        lifecycle=lifecycle,
        is_customer=customer,
        first_won=first_won,
        arr=inp.arr,
        qualifying=qualifying,
        renewal=renewal,
        company_gsid=company.gsid if company else None,
        health_score=score,
        health_band=band,
        previous_score=previous,
        trend=trend_of(score, inp.score_history, company.trend if company else None),
    )

    # Who holds each role, from its source of truth.
    for key, role in mapping.roles.items():
        member: Member | None = None
        if role.source == "account_owner":
            if inp.owner is not None and mapping.owner_role_for(segment) == key:
                member = Member(key, inp.owner, role.source)
        elif role.source == "gainsight_csm":
            if company is not None and company.csm is not None:
                member = Member(key, company.csm, role.source)
        elif role.source == "team_member":
            row = _pick_team_member(inp.team_rows, role.team_role)
            if row is not None:
                member = Member(key, row.person, role.source)
        elif role.source == "renewal_owner":
            if renewal is not None and renewal.owner is not None:
                member = Member(key, renewal.owner, role.source)
        if member is None:
            continue
        if role.engaged == "renewal_window" and not in_window:
            continue
        out.team[key] = member

    # Inactive people: never written, the role counts as missing, the account is flagged.
    # Flags describe the account as it will be once the plan is applied, so rows that the
    # plan removes (managed roles held by inactive users) do not count.
    managed_values = mapping.managed_team_roles()
    remaining_rows = [r for r in inp.team_rows if r.team_role not in managed_values]
    inactive: dict[str, str] = {}
    for key, member in sorted(out.team.items()):
        if member.inactive:
            inactive.setdefault(member.person.key, f"{key}: {_label(member.person)}")
    for row in remaining_rows:
        if row.person.sf_active is False:
            inactive.setdefault(
                row.person.key, f"{row.team_role or 'member'}: {_label(row.person)}"
            )
    out.inactive_members = list(inactive.values())
    active_roles = {k for k, m in out.team.items() if not m.inactive}

    needed = required_roles(segment, qualifying, customer, in_window, mapping)
    out.missing_roles = [k for k in needed if k not in active_roles]

    # Desired Salesforce rows for managed roles: one row per person, role by precedence; a
    # person who already has a row in an unmanaged role keeps it as it is.
    rows_by_user = {r.user_id: r for r in inp.team_rows}
    precedence = {k: i for i, k in enumerate(mapping.team.role_precedence)}
    wanted: dict[str, list[str]] = {}
    for key, member in out.team.items():
        role = mapping.roles[key]
        if not role.managed or member.inactive:
            continue
        user_id = member.person.sf_user_id
        if user_id is None:
            out.notes.append(
                f"{key} {member.person.email or member.person.name}: no active Salesforce user "
                "with this e-mail; team row not written"
            )
            continue
        existing = rows_by_user.get(user_id)
        if existing is not None and existing.team_role not in managed_values:
            continue  # an unmanaged row for this person already covers the role
        wanted.setdefault(user_id, []).append(key)
    for user_id, keys in wanted.items():
        key = min(keys, key=lambda k: precedence.get(k, len(precedence)))
        out.desired_rows[user_id] = (key, mapping.roles[key].team_role)

    # Desired Gainsight Company team fields.
    if company is not None:
        for gs_field, keys in mapping.gainsight_team_fields().items():
            holder = next((out.team[k] for k in keys if k in out.team), None)
            if holder is None or holder.inactive:
                out.desired_gs_fields[gs_field] = None
            elif holder.person.gs_user_id is None:
                out.notes.append(
                    f"{gs_field}: {holder.person.email or holder.person.name} has no Gainsight "
                    "user; field left as it is"
                )
            elif holder.person.gs_active is False:
                out.desired_gs_fields[gs_field] = None
            else:
                out.desired_gs_fields[gs_field] = holder.person.gs_user_id

    # Risk flags.
    enabled = set(mapping.flags.enabled)
    flags: set[str] = set()
    if "RED_HEALTH" in enabled and band == mapping.health.red:
        flags.add("RED_HEALTH")
    if "HEALTH_DROP" in enabled and health_drop(
        score, previous, inp.score_history, inp.today, mapping
    ):
        flags.add("HEALTH_DROP")
    if "RENEWAL_AT_RISK" in enabled and in_window and band in mapping.flags.renewal_at_risk_bands:
        flags.add("RENEWAL_AT_RISK")
    no_csm = customer and qualifying and "CSM" in mapping.roles and "CSM" not in active_roles
    if "NO_CSM" in enabled and no_csm:
        flags.add("NO_CSM")
    if (
        "HANDOFF_DUE" in enabled
        and no_csm
        and first_won is not None
        and (inp.today - first_won).days <= mapping.lifecycle.handoff_window_days
    ):
        flags.add("HANDOFF_DUE")
    if "MISSING_<ROLE>" in enabled:
        flags.update(f"MISSING_{k}" for k in out.missing_roles)
    if "INACTIVE_MEMBER" in enabled and out.inactive_members:
        flags.add("INACTIVE_MEMBER")
    if "OVERSTAFFED" in enabled and not qualifying and mapping.flags.overstaffed_roles:
        team_keys = mapping.team_role_keys()
        carried = set(active_roles)
        carried |= {
            team_keys[r.team_role]
            for r in remaining_rows
            if r.team_role in team_keys and r.person.sf_active is not False
        }
        if set(mapping.flags.overstaffed_roles) <= carried:
            flags.add("OVERSTAFFED")
    out.flags = sorted(flags)
    return out
