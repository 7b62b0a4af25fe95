"""Plan: desired state versus actual state, as the smallest set of operations.

Operations are plain records (system, object, action, target, payload, reason) so that a
plan can be shown (``teamsync plan``), stored, checked by the mass-change safeguard and then
executed in as few API calls as the APIs allow.

Only what the mapping declares as managed is ever touched: team rows in managed roles, the
health and risk fields, the Company team lookups and risk flags, and CTAs teamsync opened or
adopted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from mappings.rules import AccountInput, MappedAccount, join_flags, split_flags
from mappings.schema import MappingFile

SF = "salesforce"
GS = "gainsight"
ATM = "AccountTeamMember"
ACCOUNT = "Account"
COMPANY = "Company"
CTA = "CallToAction"


@dataclass
class Op:
    system: str
    object: str
    action: str  # create / update / delete / close
    target_id: str | None
    account_id: str | None
    payload: dict[str, Any]
    reason: str
    previous: dict[str, Any] | None = None
    destructive: bool = False  # takes away an existing managed assignment

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class OpenCta:
    cta_gsid: str
    flag: str
    origin: str  # opened / adopted


@dataclass
class PlanCounts:
    by_kind: dict[str, int] = field(default_factory=dict)  # "salesforce.AccountTeamMember.create"
    destructive: dict[str, int] = field(default_factory=lambda: {SF: 0, GS: 0})
    managed_known: dict[str, int] = field(default_factory=lambda: {SF: 0, GS: 0})

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
    return abs(float(a) - float(b)) > 1e-9


class Planner:
    def __init__(self, mapping: MappingFile) -> None:
        self.mapping = mapping
        self.managed_values = mapping.managed_team_roles()

    # --- Salesforce team rows -------------------------------------------------------------
    def team_ops(
        self, account_id: str, desired: dict[str, tuple[str, str]], rows: Sequence[Any]
    ) -> list[Op]:
        """Create / change / delete team rows of managed roles so that ``desired`` holds.

        ``rows`` are the actual rows (anything with ``id``, ``user_id``, ``team_role``).
        Rows in unmanaged roles are never touched.
        """
        ops: list[Op] = []
        by_user = {r.user_id: r for r in rows}
        access: dict[str, Any] = {str(k): v for k, v in self.mapping.team.access.items()}
        for user_id, (key, team_role) in sorted(desired.items()):
            row = by_user.get(user_id)
            role_name = self.mapping.roles[key].name
            if row is None:
                ops.append(
                    Op(
                        SF,
                        ATM,
                        "create",
                        None,
                        account_id,
                        {
                            "AccountId": account_id,
                            "UserId": user_id,
                            "TeamMemberRole": team_role,
                            **access,
                        },
                        f"{role_name} has no team row",
                    )
                )
            elif row.team_role in self.managed_values and row.team_role != team_role:
                ops.append(
                    Op(
                        SF,
                        ATM,
                        "update",
                        row.id,
                        account_id,
                        {"Id": row.id, "TeamMemberRole": team_role},
                        f"row holds {row.team_role!r} but the person is the {role_name}",
                        previous={"TeamMemberRole": row.team_role, "UserId": user_id},
                        destructive=True,
                    )
                )
        for row in rows:
            if row.team_role in self.managed_values and row.user_id not in desired:
                ops.append(
                    Op(
                        SF,
                        ATM,
                        "delete",
                        row.id,
                        account_id,
                        {"Id": row.id},
                        f"{row.team_role} is no longer this person per its source of truth",
                        previous={"TeamMemberRole": row.team_role, "UserId": row.user_id},
                        destructive=True,
                    )
                )
        return ops

    # --- everything for one account -------------------------------------------------------
    def account_ops(
        self,
        inp: AccountInput,
        mapped: MappedAccount,
        open_ctas: Sequence[OpenCta] = (),
        today: date | None = None,
    ) -> list[Op]:
        m = self.mapping
        ops = self.team_ops(inp.id, mapped.desired_rows, inp.team_rows)

        # Salesforce Account: health and risk fields.
        sf = m.salesforce
        changes: dict[str, Any] = {}
        previous: dict[str, Any] = {}
        if _differs(mapped.health_score, inp.health_score_actual):
            changes[sf.health_score_field] = mapped.health_score
            previous[sf.health_score_field] = inp.health_score_actual
        if (inp.health_status_actual or None) != mapped.health_band:
            changes[sf.health_status_field] = mapped.health_band
            previous[sf.health_status_field] = inp.health_status_actual
        if split_flags(inp.risk_flags_actual) != frozenset(mapped.flags):
            changes[sf.risk_flags_field] = join_flags(mapped.flags)
            previous[sf.risk_flags_field] = inp.risk_flags_actual
        if changes:
            ops.append(
                Op(
                    SF,
                    ACCOUNT,
                    "update",
                    inp.id,
                    inp.id,
                    {"Id": inp.id, **changes},
                    "health / risk fields differ: " + ", ".join(sorted(changes)),
                    previous=previous,
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
        if gs_changes:
            ops.append(
                Op(
                    GS,
                    COMPANY,
                    "update",
                    company.gsid,
                    inp.id,
                    {"Gsid": company.gsid, **gs_changes},
                    "company fields differ: " + ", ".join(sorted(gs_changes)),
                    previous=gs_previous,
                    destructive=destructive,
                )
            )

        # Risk CTAs: one open per active flag; closed when the flag clears.
        cta = m.gainsight.cta
        day = today or inp.today
        for flag, cfg in sorted(cta.flags.items()):
            active = flag in mapped.flags
            linked = [c for c in open_ctas if c.flag == flag]
            if active and not linked:
                owner = mapped.team.get("CSM")
                owner_gsid = None
                if owner is not None and not owner.inactive and owner.person.gs_active is not False:
                    owner_gsid = owner.person.gs_user_id
                if owner_gsid is None:
                    for key in ("SAE", "AE"):
                        member = mapped.team.get(key)
                        if member and member.person.gs_user_id and member.person.gs_active:
                            owner_gsid = member.person.gs_user_id
                            break
                record: dict[str, Any] = {
                    "Name": cfg.name.format(account=mapped.name),
                    "CompanyId": company.gsid,
                    "type": cta.type,
                    "reason": cfg.reason,
                    "priority": cta.priority,
                    "status": cta.status,
                    "DueDate": (day + timedelta(days=cta.due_in_days)).isoformat(),
                }
                if owner_gsid:
                    record["OwnerId"] = owner_gsid
                ops.append(
                    Op(
                        GS,
                        CTA,
                        "create",
                        None,
                        inp.id,
                        record,
                        f"flag {flag} is active and no {cta.type} CTA '{cfg.reason}' is open",
                        previous={"flag": flag},
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
                            "close",
                            c.cta_gsid,
                            inp.id,
                            {"Gsid": c.cta_gsid, "status": cta.closed_status},
                            f"flag {flag} has cleared",
                            previous={"flag": flag, "origin": c.origin},
                        )
                    )
        return ops


def safeguard_refusal(counts: PlanCounts, percent: float, minimum: int) -> list[str]:
    """Reasons to refuse the plan (empty: allowed).

    Refused when, in either system, the assignments the plan takes away are above ``percent``
    of that system's managed assignments currently known *and* at least ``minimum``.
    """
    reasons = []
    for system in (SF, GS):
        taken = counts.destructive.get(system, 0)
        known = counts.managed_known.get(system, 0)
        if taken >= minimum and taken > known * percent / 100.0:
            reasons.append(
                f"{system}: the plan removes or reassigns {taken} of {known} managed assignments "
                f"(more than {percent:g}% and at least {minimum})"
            )
    return reasons
