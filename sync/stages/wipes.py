"""Wiped teams: every human-maintained team row of an account gone at once.

Since Winter '21 an Account owner change made through the API deletes the whole account team
unless the caller sends ``OwnerChangeOptions`` KeepAccountTeam (``reference/real-tenants.md``
S7).  teamsync re-creates the rows it manages; the rows people maintain (Solutions Architect,
Executive Sponsor, anything in an unmanaged role) it cannot restore.  So when an account loses
all of them in one run, it is flagged ``TEAM_WIPED`` and the DRI is told who was lost (from
the store's last copy of the rows), until a human-maintained row is back or
``flags.team_wiped_days`` have passed.

    states = wipe_states(session, accounts, vanished_rows, live_unmanaged, now=now, days=14)
    states["001…"].wiped     # flag it
    states["001…"].new       # first seen this run: the engine records it, the alerter tells
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sync.store.models import RawRecord, TeamWipe
from sync.types import System

ATM = "AccountTeamMember"


@dataclass
class WipeState:
    """One account's wipe, if any: the rows lost (new this run) or the open record."""

    wiped: bool = False
    new: bool = False  # first seen in this run (to be recorded)
    lost: list[dict[str, Any]] = field(default_factory=list)  # {"row_id", "user_id", "role"}
    open_id: int | None = None  # the recorded wipe still open
    resolve_id: int | None = None  # a recorded wipe to close: a human-maintained row is back


def wipe_states(
    s: Session,
    account_ids: Iterable[str],
    vanished: frozenset[str],
    live_unmanaged: Mapping[str, int],
    *,
    managed_roles: Iterable[str],
    now: datetime,
    days: int,
) -> dict[str, WipeState]:
    """The wipe state of each account that has one (absent: no wipe, nothing to close).

    ``vanished``: team row ids gone from this run's reads; ``live_unmanaged``: per account,
    the human-maintained rows it still has.
    """
    ids = sorted(set(account_ids))
    managed = set(managed_roles)
    since = now - timedelta(days=days)
    lost: dict[str, list[dict[str, Any]]] = {}
    opened: dict[str, TeamWipe] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        if vanished:
            for row in s.scalars(
                select(RawRecord).where(
                    RawRecord.system == System.SALESFORCE,
                    RawRecord.object == ATM,
                    RawRecord.parent_id.in_(chunk),
                    RawRecord.is_deleted.is_(False),
                )
            ):
                data = row.data or {}
                role = data.get("TeamMemberRole")
                if row.record_id not in vanished or role in managed:
                    continue
                lost.setdefault(row.parent_id or "", []).append(
                    {"row_id": row.record_id, "user_id": data.get("UserId"), "role": role}
                )
        for found in s.scalars(
            select(TeamWipe).where(
                TeamWipe.account_id.in_(chunk),
                TeamWipe.resolved_at.is_(None),
                TeamWipe.detected_at >= since,
            )
        ):
            opened[found.account_id] = found
    out: dict[str, WipeState] = {}
    for account_id in ids:
        still = live_unmanaged.get(account_id, 0)
        wipe = opened.get(account_id)
        if still:
            if wipe is not None:
                out[account_id] = WipeState(resolve_id=wipe.id)
            continue
        if wipe is not None:
            out[account_id] = WipeState(wiped=True, lost=list(wipe.lost or []), open_id=wipe.id)
        elif lost.get(account_id):
            out[account_id] = WipeState(wiped=True, new=True, lost=lost[account_id])
    return out


def people(s: Session, lost: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lost rows with the person's name and e-mail from the store's users."""
    user_ids = sorted({str(r["user_id"]) for r in lost if r.get("user_id")})
    users: dict[str, dict[str, Any]] = {}
    if user_ids:
        for row in s.scalars(
            select(RawRecord).where(
                RawRecord.system == System.SALESFORCE,
                RawRecord.object == "User",
                RawRecord.record_id.in_(user_ids),
            )
        ):
            users[row.record_id] = row.data or {}
    out = []
    for r in lost:
        user = users.get(str(r.get("user_id")), {})
        out.append({**r, "name": user.get("Name"), "email": user.get("Email")})
    return out


__all__ = ["WipeState", "people", "wipe_states"]
