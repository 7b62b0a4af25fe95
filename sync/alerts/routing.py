"""Who an alert goes to (the DCI row of the mapping) and what it says: the payload every sink
renders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mappings.rules import MappedAccount
from mappings.schema import MappingFile


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


def routing(mapped: MappedAccount, mapping: MappingFile) -> dict[str, Any]:
    """The DCI row for alerts: DRI, consulted and informed, each with name and e-mail."""
    row = mapping.dci[mapping.alerts.routing_activity]
    owner_role = mapping.owner_role_for(mapped.segment)
    people: dict[str, list[dict[str, Any]]] = {"D": [], "C": [], "I": []}
    for key, letter in row.items():
        role = mapping.roles[key]
        # The account owner holds one of SAE / AE depending on the segment: skip the other.
        if role.source == "account_owner" and key != owner_role:
            continue
        if role.engaged == "renewal_window" and not (
            key in mapped.team or (mapped.renewal is not None and mapped.renewal.in_window)
        ):
            continue  # no renewal in the window: the RM is not expected
        people[letter].append(_member(mapped, key, mapping))
    missing = [p["role_name"] for group in people.values() for p in group if p["missing"]]
    dri = people["D"][0] if people["D"] else None
    return {
        "activity": mapping.alerts.routing_activity,
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
) -> dict[str, Any]:
    team = routing(mapped, mapping)
    sf_link = (
        f"{salesforce_url}/lightning/r/Account/{mapped.account_id}/view" if salesforce_url else None
    )
    gs_link = (
        f"{gainsight_url}/v1/ui/customersuccess360?cid={mapped.company_gsid}"
        if gainsight_url and mapped.company_gsid
        else None
    )
    verb = {
        "entered_red": "turned Red",
        "reminder": "is still Red",
        "recovered": f"left Red ({mapped.health_band})",
    }.get(kind, kind)
    title = f"{mapped.name} {verb}"
    if mapped.health_score is not None:
        title += f" — health {mapped.health_score:g}"
    missing = [f"no {role} assigned" for role in team["missing"]]
    return {
        "idempotency_key": key,
        "kind": kind,
        "title": title,
        "occurred_at": now.isoformat(),
        "account": {
            "id": mapped.account_id,
            "name": mapped.name,
            "segment": mapped.segment,
            "lifecycle": mapped.lifecycle,
            "arr": mapped.arr,
            "days_to_renewal": mapped.renewal.days if mapped.renewal else None,
            "renewal_date": mapped.renewal.close_date.isoformat() if mapped.renewal else None,
            "salesforce_url": sf_link,
            "gainsight_url": gs_link,
            "gainsight_company_id": mapped.company_gsid,
        },
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
    }
