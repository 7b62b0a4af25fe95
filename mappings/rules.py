"""The account-team rules: pure functions from one account's inputs to its mapped model.

Nothing here does I/O; the engine gathers an :class:`AccountInput` per account from the
store and calls :func:`map_account`.  Every rule is driven by the
:class:`~mappings.schema.MappingFile`.

    mapped = map_account(inputs, mapping)
    mapped.segment, mapped.lifecycle, mapped.flags, mapped.team["CSM"]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from mappings.schema import MappingFile, Role


@dataclass(frozen=True)
class Person:
    """A user as seen from one account: ids in both systems where known."""

    name: str | None
    email: str | None  # lower case
    sf_user_id: str | None = None
    sf_active: bool | None = None  # None: no Salesforce user
    gs_user_id: str | None = None
    gs_active: bool | None = None  # None: no Gainsight user
    manager: Person | None = None  # the Salesforce user's manager (User.ManagerId)

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
    stage: str | None = None
    amount: float | None = None


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
    previous_score_date: date | None = None  # when Gainsight's previous score was taken


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
    # Opportunities whose handoff is done (its Handoff CTA was closed).
    handoffs_closed: frozenset[str] = frozenset()
    # People the mapping names by e-mail ([managers]), lower-case e-mail -> person.
    named_people: Mapping[str, Person] = field(default_factory=dict)
    # Every human-maintained team row vanished at once (an owner change without
    # KeepAccountTeam): raises TEAM_WIPED while it lasts.
    team_wiped: bool = False


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


@dataclass(frozen=True)
class HandoffDue:
    """The pre-sales -> post-sales handoff an opportunity at the technical win calls for."""

    opportunity_id: str
    stage: str | None
    since: date | None  # the close date of a won opportunity; unknown for an open one
    amount: float | None


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
    required_roles: list[str] = field(default_factory=list)  # required now (segment, conditions)
    missing_roles: list[str] = field(default_factory=list)  # required roles that are empty
    # Empty required roles with a deadline ([coverage]): the date it falls due.
    deadlines: dict[str, date] = field(default_factory=dict)
    overdue_roles: list[str] = field(default_factory=list)  # empty past their deadline
    pooled_roles: list[str] = field(default_factory=list)  # pooled in this segment
    handoff: HandoffDue | None = None
    # "The role's manager" for coverage and handoff escalations (resolved roles only).
    managers: dict[str, Person] = field(default_factory=dict)
    inactive_members: list[str] = field(default_factory=list)  # descriptions
    flags: list[str] = field(default_factory=list)
    # desired Salesforce rows of managed roles: user id -> (role key, TeamMemberRole)
    desired_rows: dict[str, tuple[str, str]] = field(default_factory=dict)
    # desired Gainsight Company team fields: field -> GsUser Gsid or None (absent: not managed now)
    desired_gs_fields: dict[str, str | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # things the plan cannot do (unresolved users)
    owner: Person | None = None  # the Salesforce account owner (a CTA owner of last resort)


def join_flags(flags: Iterable[str]) -> str | None:
    """Flags sorted and joined by ``;`` (None when there are none)."""
    values = sorted(set(flags))
    return ";".join(values) if values else None


def split_flags(value: str | None) -> frozenset[str]:
    if not value:
        return frozenset()
    return frozenset(v.strip() for v in value.split(";") if v.strip())


# --- what the rules look up for every account, worked out once per mapping ------------------
@dataclass(frozen=True)
class _Tables:
    team_role_keys: dict[str, str]  # every declared TeamMemberRole value -> role key
    renewal_types: frozenset[str]  # lower case
    handoff_order: dict[str, int]  # sales stage (lower case) -> position
    handoff_win_at: int | None  # None: the handoff stage is not in the sales process
    handoff_types: frozenset[str]  # lower case
    enabled: frozenset[str]
    precedence: dict[str, int]
    roles: tuple[tuple[str, Role], ...]
    # per segment, filled on first use
    pooled: dict[str, list[str]] = field(default_factory=dict)
    owner_role: dict[str, str | None] = field(default_factory=dict)


_TABLES: dict[int, tuple[MappingFile, _Tables]] = {}


def _tables(mapping: MappingFile) -> _Tables:
    """The mapping's derived tables (the mapping is immutable; it is kept here with them, so
    its id cannot be reused by another mapping while they are)."""
    hit = _TABLES.get(id(mapping))
    if hit is not None and hit[0] is mapping:
        return hit[1]
    h = mapping.handoff
    order = {stage.lower(): i for i, stage in enumerate(h.sales_process)} if h else {}
    tables = _Tables(
        team_role_keys={r.team_role: k for k, r in mapping.roles.items()},
        renewal_types=frozenset(t.lower() for t in mapping.renewal.opportunity_types),
        handoff_order=order,
        handoff_win_at=order.get(h.stage.lower()) if h else None,
        handoff_types=frozenset(t.lower() for t in h.opportunity_types) if h else frozenset(),
        enabled=frozenset(mapping.flags.enabled),
        precedence={k: i for i, k in enumerate(mapping.team.role_precedence)},
        roles=tuple(mapping.roles.items()),
    )
    if len(_TABLES) >= 64:
        _TABLES.clear()
    _TABLES[id(mapping)] = (mapping, tables)
    return tables


def _pooled_roles(segment: str, mapping: MappingFile, t: _Tables) -> list[str]:
    pooled = t.pooled.get(segment)
    if pooled is None:
        pooled = t.pooled[segment] = [k for k, r in t.roles if segment in r.pooled_segments]
    return list(pooled)


def _owner_role(segment: str, mapping: MappingFile, t: _Tables) -> str | None:
    if segment not in t.owner_role:
        t.owner_role[segment] = mapping.owner_role_for(segment)
    return t.owner_role[segment]


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
    types = _tables(mapping).renewal_types
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
    previous_date: date | None = None,
) -> bool:
    """The score fell by at least the threshold from a dated baseline inside the window.

    Baselines: teamsync's own observations dated inside the window (the store dates a score
    when it first sees it and again each time a run sees it unchanged), and Gainsight's
    previous score when its date is known and inside the window.  An undated previous score is
    no baseline: it may be a year old.
    """
    if score is None:
        return False
    since = today - timedelta(days=mapping.flags.health_drop_days)
    baseline = [s for when, s in history if s is not None and when.date() >= since]
    if previous_score is not None and previous_date is not None and previous_date >= since:
        baseline.append(previous_score)
    return bool(baseline) and max(baseline) - score >= mapping.flags.health_drop_points


def trend_of(
    score: float | None, history: Sequence[tuple[datetime, float | None]], reported: str | None
) -> str | None:
    """Up / Down against the last different observation in teamsync's history; when the
    history shows no change, Gainsight's own trend."""
    if score is not None:
        for _, earlier in reversed(history):
            if earlier is not None and earlier != score:
                return "Up" if score > earlier else "Down"
    return reported


def handoff_of(
    opps: Sequence[Opportunity],
    segment: str,
    arr: float | None,
    today: date,
    closed: frozenset[str],
    mapping: MappingFile,
) -> HandoffDue | None:
    """The handoff due on an account: its earliest opportunity of a handoff type at or past
    the technical-win stage (a won one only within the window), unless that handoff is done.

    With ``qualifying_only`` the account must be CSM-qualifying by its ARR or, before the
    sale, by the opportunity's amount.
    """
    h = mapping.handoff
    if h is None:
        return None
    tables = _tables(mapping)
    order = tables.handoff_order
    win_at = tables.handoff_win_at
    if win_at is None:
        raise KeyError(h.stage.lower())
    types = tables.handoff_types
    threshold = mapping.min_arr_for(segment)
    found: list[Opportunity] = []
    for o in opps:
        if (o.type or "").lower() not in types or (o.is_closed and not o.is_won):
            continue
        if o.is_won:
            if o.close_date is None or (today - o.close_date).days > h.window_days:
                continue
        elif order.get((o.stage or "").lower(), -1) < win_at:
            continue
        if h.qualifying_only and max(arr or 0.0, o.amount or 0.0) < threshold:
            continue
        found.append(o)
    if not found:
        return None
    first = min(found, key=lambda o: (o.close_date or date.max, o.id))
    if first.id in closed:
        return None
    return HandoffDue(
        first.id, first.stage, first.close_date if first.is_won else None, first.amount
    )


def deadline_of(
    role: str,
    first_won: date | None,
    renewal: Renewal | None,
    mapping: MappingFile,
) -> date | None:
    """When an empty required role falls due ([coverage]); None: no deadline or trigger."""
    rule = mapping.coverage.get(role)
    if rule is None:
        return None
    start: date | None = None
    if rule.after == "first_won":
        start = first_won
    elif rule.after == "renewal_window" and renewal is not None:
        start = renewal.close_date - timedelta(days=mapping.renewal.window_days)
    return start + timedelta(days=rule.days) if start is not None else None


def manager_of(
    role: str, team: Mapping[str, Member], inp: AccountInput, mapping: MappingFile
) -> Person | None:
    """ "The role's manager": the holder's manager (User.ManagerId); for an empty role the
    first of [managers] that resolves (the account owner's manager, or a named person)."""

    def usable(p: Person | None) -> bool:
        return p is not None and p.sf_active is not False

    member = team.get(role)
    if member is not None and not member.inactive and usable(member.person.manager):
        return member.person.manager
    for source in mapping.managers_for(role):
        if source == "owner_manager":
            candidate = inp.owner.manager if inp.owner is not None else None
        else:
            candidate = inp.named_people.get(source.lower())
        if usable(candidate):
            return candidate
    return None


def required_roles(
    segment: str, qualifying: bool, customer: bool, in_window: bool, mapping: MappingFile
) -> list[str]:
    out = []
    conditions = mapping.conditions
    for key in mapping.required_for(segment):
        cond = conditions.get(key, "always")
        if cond == "always":
            ok = True
        elif cond == "qualifying":
            ok = qualifying
        else:
            ok = {
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
        owner=inp.owner,
    )

    # Who holds each role, from its source of truth.
    tables = _tables(mapping)
    for key, role in tables.roles:
        member: Member | None = None
        if role.source == "account_owner":
            if inp.owner is not None and _owner_role(segment, mapping, tables) == key:
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
    team_keys = tables.team_role_keys
    remaining_rows = [r for r in inp.team_rows if r.team_role not in managed_values]
    inactive: dict[str, tuple[str | None, str]] = {}  # person -> (role key, description)
    for key, member in sorted(out.team.items()):
        if member.inactive:
            inactive.setdefault(member.person.key, (key, f"{key}: {_label(member.person)}"))
    for row in remaining_rows:
        if row.person.sf_active is False:
            inactive.setdefault(
                row.person.key,
                (
                    team_keys.get(row.team_role or ""),
                    f"{row.team_role or 'member'}: {_label(row.person)}",
                ),
            )
    out.inactive_members = [text for _, text in inactive.values()]
    active_roles = {k for k, m in out.team.items() if not m.inactive}

    # Required roles and coverage: an empty required role is missing; with a deadline
    # ([coverage]) it is pending until the deadline and overdue after it.
    enabled = tables.enabled
    out.required_roles = required_roles(segment, qualifying, customer, in_window, mapping)
    out.missing_roles = [k for k in out.required_roles if k not in active_roles]
    if "OVERDUE_<ROLE>" in enabled:
        for key in out.missing_roles:
            due = deadline_of(key, first_won, renewal, mapping)
            if due is not None:
                out.deadlines[key] = due
                if inp.today > due:
                    out.overdue_roles.append(key)
    out.pooled_roles = _pooled_roles(segment, mapping, tables)
    out.handoff = handoff_of(
        inp.opportunities, segment, inp.arr, inp.today, inp.handoffs_closed, mapping
    )
    wanted_managers = set(out.overdue_roles)
    if mapping.handoff is not None:
        wanted_managers.add(mapping.handoff.escalate_to_manager_of)
    for key in sorted(wanted_managers):
        manager = manager_of(key, out.team, inp, mapping)
        if manager is not None:
            out.managers[key] = manager

    # Desired Salesforce rows for managed roles: one row per person, role by precedence; a
    # person who already has a row in an unmanaged role keeps it as it is.
    rows_by_user = {r.user_id: r for r in inp.team_rows}
    precedence = tables.precedence
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

    # Desired Gainsight Company team fields (a role pooled in this segment is not written
    # unless the mapping says so: the field is left as it is).
    if company is not None:
        for gs_field, all_keys in mapping.gainsight_team_fields().items():
            keys = [
                k for k in all_keys if k not in out.pooled_roles or mapping.roles[k].write_pooled
            ]
            if not keys:
                continue
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

    # Risk flags: one condition, one flag.
    flags: set[str] = set()
    if "RED_HEALTH" in enabled and band == mapping.health.red:
        flags.add("RED_HEALTH")
    if "YELLOW_HEALTH" in enabled and band == mapping.health.yellow:
        flags.add("YELLOW_HEALTH")
    previous_date = company.previous_score_date if company else None
    if "HEALTH_DROP" in enabled and health_drop(
        score, previous, inp.score_history, inp.today, mapping, previous_date
    ):
        flags.add("HEALTH_DROP")
    if "RENEWAL_AT_RISK" in enabled and in_window and band in mapping.flags.renewal_at_risk_bands:
        flags.add("RENEWAL_AT_RISK")
    if "HANDOFF_DUE" in enabled and out.handoff is not None:
        flags.add("HANDOFF_DUE")
    if "MISSING_<ROLE>" in enabled:
        flags.update(f"MISSING_{k}" for k in out.missing_roles if k not in out.deadlines)
    flags.update(f"OVERDUE_{k}" for k in out.overdue_roles)
    # An inactive holder of a required role is already told by that role's flag.
    if "INACTIVE_MEMBER" in enabled and any(
        role not in out.missing_roles for role, _ in inactive.values()
    ):
        flags.add("INACTIVE_MEMBER")
    if "TEAM_WIPED" in enabled and inp.team_wiped:
        flags.add("TEAM_WIPED")
    if "OVERSTAFFED" in enabled and not qualifying and mapping.flags.overstaffed_roles:
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
