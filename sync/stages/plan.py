"""Plan: desired state versus actual state, as the smallest set of operations.

Operations are plain records (system, object, action, target, payload, reason) so that a
plan can be shown (``teamsync plan``), stored, checked by the mass-change safeguard and then
executed in as few API calls as the APIs allow.

Only what the mapping declares as managed is ever touched: team rows in managed roles, the
health and risk fields, the Company team lookups and risk flags, and CTAs teamsync opened or
adopted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from mappings.rules import AccountInput, MappedAccount, TeamRow, join_flags, split_flags
from mappings.schema import ACCOUNT_OWNER, MappingFile
from sync.types import Action, OpenCta, System

SF = System.SALESFORCE
GS = System.GAINSIGHT
ATM = "AccountTeamMember"
ACCOUNT = "Account"
COMPANY = "Company"
CTA = "CallToAction"


@dataclass
class Op:
    system: System
    object: str
    action: Action
    target_id: str | None
    account_id: str | None
    payload: dict[str, Any]
    reason: str
    previous: dict[str, Any] | None = None
    destructive: bool = False  # takes away an existing managed assignment


@dataclass
class PlanCounts:
    by_kind: dict[str, int] = field(default_factory=dict)  # "salesforce.AccountTeamMember.create"
    destructive: dict[str, int] = field(default_factory=lambda: {SF: 0, GS: 0})
    managed_known: dict[str, int] = field(default_factory=lambda: {SF: 0, GS: 0})
    # Records that vanished from this run's pulls, per system (absence is not deletion
    # without corroboration: they count toward the safeguard like removals).
    vanished: dict[str, int] = field(default_factory=lambda: {SF: 0, GS: 0})

    def add(self, ops: Iterable[Op]) -> None:
        for op in ops:
            key = f"{op.system}.{op.object}.{op.action}"
            self.by_kind[key] = self.by_kind.get(key, 0) + 1
            if op.destructive:
                self.destructive[op.system] = self.destructive.get(op.system, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


def _differs(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is not b
    if math.isnan(a) or math.isnan(b):  # unreadable (garbage in a field teamsync owns)
        return True
    return abs(float(a) - float(b)) > 1e-9


def _had_value(value: Any) -> bool:
    """A real value in a managed field (garbage teamsync overwrites is none)."""
    if value is None or value == "":
        return False
    return not (isinstance(value, float) and math.isnan(value))


UNKNOWN_BAND = "Unknown"


class Planner:
    def __init__(
        self,
        mapping: MappingFile,
        access: Mapping[str, str] | None = None,
        *,
        fallback_owner: str | None = None,
    ) -> None:
        """``access``: the levels new team rows get (from the org's sharing defaults, S1);
        None sends the mapping's ``team.access``.  ContactAccessLevel is never sent.
        ``fallback_owner``: the Gsid of ``gainsight.cta.fallback_owner_email``."""
        self.mapping = mapping
        self.fallback_owner = fallback_owner
        # (account id, flag) of CTAs not opened for want of an owner (the engine reports them).
        self.unowned: list[tuple[str, str]] = []
        self.managed_values = mapping.managed_team_roles()
        chosen = access if access is not None else mapping.team.access
        self.access: dict[str, str] = {
            str(k): str(v) for k, v in chosen.items() if str(k) != "ContactAccessLevel"
        }

    # --- Salesforce team rows -------------------------------------------------------------
    def team_ops(
        self,
        account_id: str,
        desired: dict[str, tuple[str, str]],
        rows: Sequence[TeamRow],
        mapped: MappedAccount | None = None,
    ) -> list[Op]:
        """Create / change / delete team rows of managed roles so that ``desired`` holds.

        ``rows`` are the actual rows (anything with ``id``, ``user_id``, ``team_role``).
        Rows in unmanaged roles are never touched.  ``mapped`` (when given) lets each
        operation's reason name the people involved.
        """
        ops: list[Op] = []
        by_user = {r.user_id: r for r in rows}
        access = self.access
        team = mapped.team if mapped is not None else {}
        for user_id, (key, team_role) in sorted(desired.items()):
            row = by_user.get(user_id)
            role_name = self.mapping.roles[key].name
            holder = team.get(key)
            who = _name(holder.person) if holder is not None else "this person"
            why = _source_words(self.mapping, key, mapped)
            if row is None:
                ops.append(
                    Op(
                        SF,
                        ATM,
                        Action.CREATE,
                        None,
                        account_id,
                        {
                            "AccountId": account_id,
                            "UserId": user_id,
                            "TeamMemberRole": team_role,
                            **access,
                        },
                        f"{who} is the {role_name} ({why}) and has no team row",
                    )
                )
            elif row.team_role in self.managed_values and row.team_role != team_role:
                ops.append(
                    Op(
                        SF,
                        ATM,
                        Action.UPDATE,
                        row.id,
                        account_id,
                        {"Id": row.id, "TeamMemberRole": team_role},
                        f"{who}'s team row says {row.team_role} but they are the {role_name} "
                        f"({why})",
                        previous={"TeamMemberRole": row.team_role, "UserId": user_id},
                        destructive=True,
                    )
                )
        for row in rows:
            if row.team_role in self.managed_values and row.user_id not in desired:
                person = getattr(row, "person", None)
                leaving = _name(person) if person is not None else "this person"
                ops.append(
                    Op(
                        SF,
                        ATM,
                        Action.DELETE,
                        row.id,
                        account_id,
                        {"Id": row.id},
                        f"{leaving} is no longer the {row.team_role}: "
                        + self._successor(self.managed_values[row.team_role], mapped),
                        previous={"TeamMemberRole": row.team_role, "UserId": row.user_id},
                        destructive=True,
                    )
                )
        return ops

    def cta_owner(self, mapped: MappedAccount, signal: str = "risk") -> str | None:
        """The Gsid a new CTA is owned by: :func:`cta_owner` (the signal's DCI row, then
        ``gainsight.cta.owner_roles``), else the configured fallback owner."""
        return cta_owner(mapped, signal, self.mapping) or self.fallback_owner

    # --- everything for one account -------------------------------------------------------
    def account_ops(
        self,
        inp: AccountInput,
        mapped: MappedAccount,
        open_ctas: Sequence[OpenCta] = (),
        today: date | None = None,
    ) -> list[Op]:
        m = self.mapping
        ops = self.team_ops(inp.id, mapped.desired_rows, inp.team_rows, mapped)

        # Salesforce Account: health and risk fields.
        sf = m.salesforce
        changes: dict[str, Any] = {}
        previous: dict[str, Any] = {}
        clears = False  # a managed field that had a value is cleared: counts as a removal
        if _differs(mapped.health_score, inp.health_score_actual):
            changes[sf.health_score_field] = mapped.health_score
            # An unreadable value (NaN) is recorded as null: JSON (PostgreSQL) has no NaN.
            previous[sf.health_score_field] = (
                inp.health_score_actual if _had_value(inp.health_score_actual) else None
            )
            clears = clears or (mapped.health_score is None and _had_value(inp.health_score_actual))
        if (inp.health_status_actual or None) != mapped.health_band:
            changes[sf.health_status_field] = mapped.health_band
            previous[sf.health_status_field] = inp.health_status_actual
            clears = clears or (
                mapped.health_band in (None, UNKNOWN_BAND)
                and _had_value(inp.health_status_actual)
                and inp.health_status_actual != UNKNOWN_BAND
            )
        if split_flags(inp.risk_flags_actual) != frozenset(mapped.flags):
            changes[sf.risk_flags_field] = join_flags(mapped.flags)
            previous[sf.risk_flags_field] = inp.risk_flags_actual
            clears = clears or (not mapped.flags and bool(split_flags(inp.risk_flags_actual)))
        if changes:
            ops.append(
                Op(
                    SF,
                    ACCOUNT,
                    Action.UPDATE,
                    inp.id,
                    inp.id,
                    {"Id": inp.id, **changes},
                    _field_reason(
                        m,
                        mapped,
                        inp.health_score_actual,
                        inp.health_status_actual,
                        inp.risk_flags_actual,
                        changes,
                    ),
                    previous=previous,
                    destructive=clears,
                )
            )

        company = inp.company
        if company is None:
            return ops

        # Gainsight Company: team lookups and risk flags.
        gs_changes: dict[str, Any] = {}
        gs_previous: dict[str, Any] = {}
        destructive = False
        for gs_field, want in sorted(mapped.desired_gs_fields.items()):
            have = company.team_fields.get(gs_field)
            if (have or None) != (want or None):
                gs_changes[gs_field] = want
                gs_previous[gs_field] = have
                destructive = destructive or bool(have)
        flags_field = m.gainsight.risk_flags_field
        if split_flags(company.risk_flags) != frozenset(mapped.flags):
            gs_changes[flags_field] = join_flags(mapped.flags)
            gs_previous[flags_field] = company.risk_flags
            destructive = destructive or (
                not mapped.flags and bool(split_flags(company.risk_flags))
            )
        if gs_changes:
            ops.append(
                Op(
                    GS,
                    COMPANY,
                    Action.UPDATE,
                    company.gsid,
                    inp.id,
                    {"Gsid": company.gsid, **gs_changes},
                    _company_reason(m, mapped, company.risk_flags, gs_changes),
                    previous=gs_previous,
                    destructive=destructive,
                )
            )

        # CTAs: one open per active flag; closed when the flag clears.  A "risk" CTA opens only
        # for accounts in [risk].lifecycles (prospects keep their flags, get no Risk CTA); each
        # CTA is owned by the DRI of its signal's DCI row.
        cta = m.gainsight.cta
        day = today or inp.today
        for flag, cfg in sorted(cta.flags.items()):
            active = flag in mapped.flags
            linked = [c for c in open_ctas if c.flag == flag]
            if active and not linked:
                if cfg.signal == "risk" and mapped.lifecycle not in m.risk.lifecycles:
                    continue
                owner_gsid = self.cta_owner(mapped, cfg.signal)
                if owner_gsid is None:
                    # Every CTA carries an owner (a tenant may refuse one without): none found.
                    self.unowned.append((inp.id, flag))
                    continue
                due = cfg.due_in_days if cfg.due_in_days is not None else cta.due_in_days
                record: dict[str, Any] = {
                    "Name": cfg.name.format(account=mapped.name),
                    "CompanyId": company.gsid,
                    "type": cfg.type or cta.type,
                    "reason": cfg.reason,
                    "priority": cfg.priority or cta.priority,
                    "status": cta.status,
                    "DueDate": (day + timedelta(days=due)).isoformat(),
                    "OwnerId": owner_gsid,
                }
                if cfg.comments_from == "handoff.checklist" and m.handoff is not None:
                    record["Comments"] = "\n".join(
                        f"{i}. {task}" for i, task in enumerate(m.handoff.checklist, 1)
                    )
                about: dict[str, Any] = {"flag": flag}
                if cfg.signal == "handoff" and mapped.handoff is not None:
                    about["subject"] = mapped.handoff.opportunity_id
                ops.append(
                    Op(
                        GS,
                        CTA,
                        Action.CREATE,
                        None,
                        inp.id,
                        record,
                        f"{_flag_words(flag, mapped)}, and no open {record['type']} CTA "
                        f"'{cfg.reason}' exists",
                        previous=about,
                    )
                )
            elif not active:
                for c in linked:
                    if c.origin == "adopted" and not cta.close_adopted:
                        continue
                    ops.append(
                        Op(
                            GS,
                            CTA,
                            Action.CLOSE,
                            c.cta_gsid,
                            inp.id,
                            {"Gsid": c.cta_gsid, "status": cta.closed_status},
                            f"{flag} has cleared (health {mapped.health_band}"
                            + (
                                f", score {_num(mapped.health_score)})"
                                if mapped.health_score is not None
                                else ")"
                            ),
                            previous={"flag": flag, "origin": c.origin},
                        )
                    )
        return ops

    def _successor(self, key: str, mapped: MappedAccount | None) -> str:
        """Who holds the role now (or why nobody does), in words."""
        role = self.mapping.roles[key]
        if mapped is None:
            return "per its source of truth"
        holder = mapped.team.get(key)
        if holder is not None:
            why = _source_words(self.mapping, key, mapped)
            return f"the {role.name} is now {_name(holder.person)} ({why})"
        if role.source == "account_owner":
            return f"the account owner holds another role in the {mapped.segment} segment"
        if role.source == "gainsight_csm":
            return "the Gainsight company names no Customer Success Manager"
        if role.source == "renewal_owner":
            return "no open renewal is inside the renewal window"
        return "per its source of truth"


def _name(person: Any) -> str:
    """A person in a reason: the name (the plan shows the e-mail beside the change)."""
    name = getattr(person, "name", None)
    email = getattr(person, "email", None)
    return str(name or email or getattr(person, "sf_user_id", None) or "an unknown user")


def _num(value: float | None) -> str:
    if value is None:
        return "none"
    return f"{value:g}"


def _source_words(mapping: MappingFile, key: str, mapped: MappedAccount | None) -> str:
    source = mapping.roles[key].source
    if source == "account_owner":
        return "owns the account in Salesforce"
    if source == "gainsight_csm":
        return "the CSM on the Gainsight company"
    if source == "renewal_owner":
        renewal = mapped.renewal if mapped is not None else None
        if renewal is not None:
            return f"owns the renewal closing {renewal.close_date.isoformat()}"
        return "owns the open renewal"
    return "on the account team"


_FLAG_WORDS = {
    "RED_HEALTH": "health is Red",
    "YELLOW_HEALTH": "health is Yellow (triage)",
    "RENEWAL_AT_RISK": "the renewal is inside its window and health is not Green",
    "HEALTH_DROP": "the health score dropped sharply",
    "HANDOFF_DUE": "an opportunity reached the technical win: the handoff to CS is due",
    "INACTIVE_MEMBER": "a team member is inactive",
    "OVERSTAFFED": "the account carries a fuller team than it qualifies for",
}


def _flag_words(flag: str, mapped: MappedAccount) -> str:
    words = _FLAG_WORDS.get(flag)
    if words is None and flag.startswith("MISSING_"):
        words = f"a required {flag.removeprefix('MISSING_')} is missing"
    if words is None and flag.startswith("OVERDUE_"):
        words = f"a required {flag.removeprefix('OVERDUE_')} is overdue"
    words = words or f"flag {flag} is raised"
    if flag in ("RED_HEALTH", "HEALTH_DROP") and mapped.health_score is not None:
        words += f" (score {_num(mapped.health_score)})"
    return words


def _flag_change(before: str | None, after: Iterable[str]) -> str:
    old = split_flags(before)
    new = frozenset(after)
    parts = [f"+{f}" for f in sorted(new - old)] + [f"-{f}" for f in sorted(old - new)]
    return "risk flags " + " ".join(parts)


def _field_reason(
    m: MappingFile,
    mapped: MappedAccount,
    score: float | None,
    status: str | None,
    flags: str | None,
    changes: dict[str, Any],
) -> str:
    sf = m.salesforce
    parts = []
    if sf.health_score_field in changes or sf.health_status_field in changes:
        was = status or "empty"
        if score is not None:
            was = f"{_num(score)} ({status or 'no band'})"
        if mapped.health_score is None:
            parts.append(
                f"Gainsight has no health score ({mapped.health_band}); Salesforce shows {was}"
            )
        else:
            now = f"{_num(mapped.health_score)} ({mapped.health_band})"
            parts.append(f"Gainsight's health score is {now}; Salesforce shows {was}")
    if sf.risk_flags_field in changes:
        parts.append(_flag_change(flags, mapped.flags))
    return "; ".join(parts)


def _company_reason(
    m: MappingFile, mapped: MappedAccount, flags: str | None, changes: dict[str, Any]
) -> str:
    fields = m.gainsight_team_fields()
    roles = sorted(
        {m.roles[k].name for f in changes if f in fields for k in fields[f] if k in mapped.team}
        | {
            m.roles[fields[f][0]].name
            for f in changes
            if f in fields and not any(k in mapped.team for k in fields[f])
        }
    )
    parts = []
    if roles:
        parts.append("the company's team lookups follow the account team: " + ", ".join(roles))
    if m.gainsight.risk_flags_field in changes:
        parts.append(_flag_change(flags, mapped.flags))
    return "; ".join(parts)


def cta_owner(mapped: MappedAccount, signal: str, mapping: MappingFile) -> str | None:
    """The GsUser a CTA of this signal goes to: the DRI of its DCI row, else the row's
    consulted then informed roles (in row order), else the first of
    ``gainsight.cta.owner_roles`` (``account_owner``: the Salesforce account owner) - whoever
    holds the role with an active Gainsight user."""
    row = mapping.dci_row(signal)
    order = [k for letter in ("D", "C", "I") for k, v in row.items() if v == letter]
    for key in [*order, *mapping.gainsight.cta.owner_roles]:
        if key == ACCOUNT_OWNER:
            person = mapped.owner
            if (
                person is not None
                and person.sf_active is not False
                and person.gs_user_id
                and person.gs_active is not False
            ):
                return str(person.gs_user_id)
            continue
        member = mapped.team.get(key)
        if member is None or member.inactive:
            continue
        if member.person.gs_user_id and member.person.gs_active is not False:
            return str(member.person.gs_user_id)
    return None


def safeguard_refusal(counts: PlanCounts, percent: float, minimum: int) -> list[str]:
    """Reasons to refuse the plan (empty: allowed).

    Refused when, in either system, what the run would take away (managed assignments removed
    or reassigned, managed fields that had a value cleared, and records that vanished from
    its pulls) is above ``percent`` of what is known *and* at least ``minimum``.
    """
    reasons = []
    for system in (SF, GS):
        removed = counts.destructive.get(system, 0)
        vanished = counts.vanished.get(system, 0)
        taken = removed + vanished
        known = counts.managed_known.get(system, 0) + vanished
        if taken >= minimum and taken > known * percent / 100.0:
            detail = f"removes, reassigns or clears {removed}"
            if vanished:
                detail += f" and {vanished} records vanished from its pulls"
            reasons.append(
                f"{system}: the plan {detail}, {taken} of {known} known "
                f"(more than {percent:g}% and at least {minimum})"
            )
    return reasons
