"""Who an alert goes to (the DCI row of its signal, from the mapping) and what it says: the
payload every sink renders.

Each kind of signal routes by its own row ([alerts] in the mapping): risk (red-health alerts,
the triage digest) by "Risk and Escalation Management", the handoff by "Sales to Customer
Success (CS) Handoff", coverage by its own row whose DRI is ``MANAGER``, the manager of the
role the signal is about.  Only people who hold a role, or roles the segment requires, are
listed: a segment that requires no SA never reads "no Solutions Architect".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mappings.rules import MappedAccount
from mappings.schema import MANAGER, MappingFile


def _member(mapped: MappedAccount, key: str, mapping: MappingFile) -> dict[str, Any]:
    member = mapped.team.get(key)
    role = mapping.roles[key].name
    if member is None or member.inactive:
        return {
            "role": key,
            "role_name": role,
            "name": None,
            "email": None,
            "missing": True,
            "inactive": bool(member is not None and member.inactive),
        }
    return {
        "role": key,
        "role_name": role,
        "name": member.person.name,
        "email": member.person.email,
        "missing": False,
        "inactive": False,
    }


def _manager(mapped: Any, subject_role: str | None, mapping: MappingFile) -> dict[str, Any]:
    person = (getattr(mapped, "managers", None) or {}).get(subject_role or "")
    of = mapping.roles[subject_role].name if subject_role in mapping.roles else "the role"
    return {
        "role": MANAGER,
        "role_name": f"Manager of the {of}",
        "name": person.name if person is not None else None,
        "email": person.email if person is not None else None,
        "missing": person is None,
        "inactive": False,
    }


def routing_manager(mapped: Any, role: str, mapping: MappingFile) -> dict[str, Any]:
    """ "The role's manager" of an account as a payload entry (missing when unresolved)."""
    return _manager(mapped, role, mapping)


def routing(
    mapped: Any, mapping: MappingFile, signal: str = "risk", subject_role: str | None = None
) -> dict[str, Any]:
    """The DCI row of ``signal``: DRI, consulted and informed, each with name and e-mail.

    A role is listed when someone holds it or the segment requires it (then as missing); the
    account owner holds one of SAE / AE depending on the segment, so the other is skipped.
    ``missing`` names the segment's required roles that are empty.
    """
    row = mapping.dci_row(signal)
    owner_role = mapping.owner_role_for(mapped.segment)
    required = set(getattr(mapped, "missing_roles", ()) or ())
    people: dict[str, list[dict[str, Any]]] = {"D": [], "C": [], "I": []}
    for key, letter in row.items():
        if key == MANAGER:
            people[letter].append(_manager(mapped, subject_role, mapping))
            continue
        role = mapping.roles[key]
        if role.source == "account_owner" and key != owner_role:
            continue
        member = mapped.team.get(key)
        present = member is not None and not member.inactive
        if not present and key not in required:
            continue  # nobody holds it and the segment does not require it
        people[letter].append(_member(mapped, key, mapping))
    missing = [mapping.roles[k].name for k in getattr(mapped, "missing_roles", ()) or ()]
    dri = people["D"][0] if people["D"] else None
    return {
        "activity": mapping.alerts.activity(signal) or "(the role's manager)",
        "dri": dri,
        "consulted": people["C"],
        "informed": people["I"],
        "missing": missing,
    }


def build_alert(
    kind: str,
    mapped: MappedAccount,
    *,
    previous_band: str | None,
    previous_score: float | None,
    key: str,
    now: datetime,
    mapping: MappingFile,
    salesforce_url: str | None,
    gainsight_url: str | None,
    signal: str = "risk",
    subject_role: str | None = None,
    title: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    team = routing(mapped, mapping, signal, subject_role)
    if title is None:
        title = alert_title(kind, mapped)
    missing = [f"no {role} assigned" for role in team["missing"]]
    return {
        "idempotency_key": key,
        "kind": kind,
        "signal": signal,
        "title": title,
        "occurred_at": now.isoformat(),
        "account": account_links(mapped, salesforce_url, gainsight_url),
        "health": {
            "score": mapped.health_score,
            "band": mapped.health_band,
            "previous_score": previous_score,
            "previous_band": previous_band,
            "trend": mapped.trend,
        },
        "flags": list(mapped.flags),
        "team": team,
        "missing": missing,
        **(extra or {}),
    }


def alert_title(kind: str, mapped: MappedAccount) -> str:
    """The title of a health alert: "Acme Corp turned Red — health 42"."""
    verb = {
        "entered_red": "turned Red",
        "reminder": "is still Red",
        "recovered": f"left Red ({mapped.health_band})",
        "already_red": "is Red (first run)",
    }.get(kind, kind)
    title = f"{mapped.name} {verb}"
    if mapped.health_score is not None:
        title += f" — health {mapped.health_score:g}"
    return title


def account_links(
    mapped: Any, salesforce_url: str | None, gainsight_url: str | None
) -> dict[str, Any]:
    """The account block of a payload: name, segment, ARR, renewal and links to both systems."""
    renewal = mapped.renewal
    sf_link = (
        f"{salesforce_url}/lightning/r/Account/{mapped.account_id}/view" if salesforce_url else None
    )
    gs_link = (
        f"{gainsight_url}/v1/ui/customersuccess360?cid={mapped.company_gsid}"
        if gainsight_url and mapped.company_gsid
        else None
    )
    return {
        "id": mapped.account_id,
        "name": mapped.name,
        "segment": mapped.segment,
        "lifecycle": mapped.lifecycle,
        "arr": mapped.arr,
        "days_to_renewal": renewal.days if renewal else None,
        "renewal_date": renewal.close_date.isoformat() if renewal else None,
        "salesforce_url": sf_link,
        "gainsight_url": gs_link,
        "gainsight_company_id": mapped.company_gsid,
    }
