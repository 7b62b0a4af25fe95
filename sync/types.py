"""The vocabulary of a run, as types: systems, statuses, operation kinds, run stats.

Values are ``StrEnum`` members, so they are stored, logged and compared as the plain strings
they always were (``System.SALESFORCE == "salesforce"``).

    >>> System.SALESFORCE == "salesforce", f"{Action.CREATE}"
    (True, 'create')
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Literal


class System(StrEnum):
    SALESFORCE = "salesforce"
    GAINSIGHT = "gainsight"


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"  # finished, some records failed (exit 1)
    FAILED = "failed"
    REFUSED = "refused"  # the mass-change safeguard (exit 4)
    INTERRUPTED = "interrupted"  # SIGTERM: stopped early, the next run resumes
    DRY_RUN = "dry_run"


class Action(StrEnum):
    """What an operation does to its record."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    CLOSE = "close"  # a Gainsight CTA


class OpStatus(StrEnum):
    PLANNED = "planned"
    DONE = "done"
    FAILED = "failed"
    ADOPTED = "adopted"  # a CTA create answered by an open CTA that already existed


PullMode = Literal["incremental", "full", "backfill"]
CtaOrigin = Literal["opened", "adopted"]
QuarantineStage = Literal["map", "push"]


@dataclass(frozen=True)
class OpenCta:
    """A Gainsight CTA teamsync opened or adopted and that is still open (a planner input)."""

    cta_gsid: str
    flag: str
    origin: str  # CtaOrigin, as stored


@dataclass
class PushSummary:
    succeeded: dict[str, int] = field(default_factory=dict)  # "salesforce.Account.update": n
    failed: dict[str, int] = field(default_factory=dict)
    adopted_ctas: int = 0


@dataclass
class RunStats:
    """What a run did, stage by stage; None: the stage was not reached.

    Stored as JSON in ``runs.stats`` (:meth:`as_json`, the keys of the stages reached) and
    shown by ``teamsync status`` and the run summary.
    """

    version: str | None = None  # the teamsync that ran
    pulled: dict[str, dict[str, Any]] | None = None  # stream -> its pull stats
    mapped: int | None = None  # accounts mapped
    segments: dict[str, int] | None = None
    flags: dict[str, int] | None = None
    invalid_records: int | None = None
    skipped_accounts: int | None = None
    vanished: dict[str, int] | None = None  # records gone from a pull, per stream
    held_back: int | None = None  # operations of dismissed quarantined records
    plan: dict[str, int] | None = None  # "system.Object.action" -> operations
    plan_destructive: dict[str, int] | None = None
    managed_known: dict[str, int] | None = None
    safeguard: list[str] | None = None  # a dry run: why a real run would be refused
    approved_plan: dict[str, Any] | None = None  # run --plan: what was applied / skipped
    marked_deleted: int | None = None  # vanished records marked deleted (plan passed)
    reread_next_run: list[str] | None = None  # refused: streams read again in full next run
    pushed: PushSummary | None = None
    alerts: dict[str, Any] | None = None  # sink -> counts, or {"error": ...}
    interrupted_at: str | None = None  # SIGTERM: where the run stopped
    error: str | None = None
    seconds: float | None = None
    phases: dict[str, float] | None = None  # phase -> wall seconds
    api: dict[str, Any] | None = None
    quarantined_open: int | None = None
    pruned: dict[str, Any] | None = None  # retention: rows pruned per table
    preflight: dict[str, Any] | None = None  # when checked, cached or not, risky / missing
    gainsight_full: bool | None = None  # the Gainsight streams were read in full
    ctas_without_owner: int | None = None  # CTAs not opened: nobody could own them
    team_wipes: int | None = None  # accounts whose human-maintained team rows all vanished
    # open Handoff CTAs read back: open / closed_in_gainsight / read_all (1: each by Gsid)
    handoff_ctas: dict[str, int] | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, PushSummary):
                value = {
                    "succeeded": dict(value.succeeded),
                    "failed": dict(value.failed),
                    "adopted_ctas": value.adopted_ctas,
                }
            out[f.name] = value
        return out


__all__ = [
    "Action",
    "CtaOrigin",
    "OpStatus",
    "OpenCta",
    "PullMode",
    "PushSummary",
    "QuarantineStage",
    "RunStats",
    "RunStatus",
    "System",
]
