"""Approved plans: ``teamsync plan --out plan.json``, then ``teamsync run --plan plan.json``.

A plan file holds every operation of a plan (with a readable summary beside its Ids), the
fingerprint of the inputs it was computed from and a SHA-256 over its content.  A run given an
approved plan re-computes the plan as usual and then:

- refuses (exit 4) when the plan file is older than the allowed age, or was made for another
  org or mapping, or when the re-computed plan holds any operation that is not in the approved
  plan exactly (a new operation, or one whose content changed);
- otherwise applies the re-computed operations (all of which were approved) and reports the
  approved operations it skipped because they are no longer needed, and why.

Operations are compared by digest: system, object, action, account, target (the row / company /
CTA, or for a create the user or flag it is about) and payload.  A CTA's due date is left out
of the digest: it is computed from the day of the run.

    approved = ApprovedPlan.load(Path("plan.json"))
    approved.check_age(now, max_age=timedelta(hours=24))
    approved.check_fingerprint(current_fingerprint)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from config.errors import ConfigurationError, SafeguardRefused

PLAN_FORMAT = "teamsync-plan/1"
_VOLATILE = frozenset({"DueDate"})


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def op_target(
    obj: str, action: str, target_id: str | None, payload: Mapping[str, Any], previous: Any
) -> str:
    """What an operation is about, stable across re-computations."""
    if target_id:
        return target_id
    if obj == "AccountTeamMember":
        return f"user:{payload.get('UserId')}"
    if obj == "CallToAction":
        return f"flag:{(previous or {}).get('flag')}"
    return ""


def op_digest(
    system: str,
    obj: str,
    action: str,
    account_id: str | None,
    target_id: str | None,
    payload: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
) -> str:
    """The identity and content of one operation, as a short hex digest."""
    body = {k: v for k, v in payload.items() if k not in _VOLATILE}
    key = [
        system,
        obj,
        action,
        account_id or "",
        op_target(obj, action, target_id, payload, previous),
        body,
    ]
    return sha256_text(_canonical(key))[:32]


def digest_of(op: Any) -> str:
    """``op_digest`` of anything with the operation attributes (Op, Operation, OpRecord)."""
    return op_digest(
        op.system,
        op.object,
        op.action,
        op.account_id,
        op.target_id,
        op.payload or {},
        op.previous,
    )


def content_hash(doc: Mapping[str, Any]) -> str:
    return sha256_text(_canonical({k: v for k, v in doc.items() if k != "content_sha256"}))


def fingerprint(
    *, mapping_path: Path, salesforce: str | None, gainsight: str | None, data: Mapping[str, Any]
) -> dict[str, Any]:
    """The inputs a plan was computed from.

    ``config`` (the mapping file's hash and both orgs) must match when the plan is applied;
    ``data`` (records per stream and the newest stamp) is informative: the run re-computes,
    so a change in the data shows up as skipped or refused operations.
    """
    try:
        mapping_hash = hashlib.sha256(Path(mapping_path).read_bytes()).hexdigest()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the mapping file {mapping_path}: {exc}") from exc
    config = {
        "mapping_sha256": mapping_hash,
        "salesforce": (salesforce or "").rstrip("/"),
        "gainsight": (gainsight or "").rstrip("/"),
    }
    return {
        "config": config,
        "config_sha256": sha256_text(_canonical(config)),
        "data": dict(data),
    }


def build_document(
    *,
    created_at: datetime,
    run_id: str,
    fingerprint_doc: Mapping[str, Any],
    operations: Iterable[Mapping[str, Any]],
    safeguard: list[str],
) -> dict[str, Any]:
    ops = []
    for op in operations:
        entry = dict(op)
        entry["op_id"] = op_digest(
            entry["system"],
            entry["object"],
            entry["action"],
            entry.get("account_id"),
            entry.get("target_id"),
            entry.get("payload") or {},
            entry.get("previous"),
        )
        ops.append(entry)
    doc: dict[str, Any] = {
        "format": PLAN_FORMAT,
        "created_at": created_at.isoformat(),
        "run_id": run_id,
        "fingerprint": dict(fingerprint_doc),
        "safeguard_would_refuse": list(safeguard),
        "operation_count": len(ops),
        "operations": ops,
    }
    doc["content_sha256"] = content_hash(doc)
    return doc


@dataclass
class ApprovedPlan:
    path: str
    created_at: datetime
    run_id: str
    config_sha256: str
    operations: list[dict[str, Any]]
    digests: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ApprovedPlan:
        """Read a plan file; a file that is not one, or was edited, is a usage error (exit 2)."""
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(f"--plan: no such file: {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigurationError(f"--plan: {path} is not a teamsync plan file: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != PLAN_FORMAT:
            raise ConfigurationError(
                f"--plan: {path} is not a teamsync plan file (format {PLAN_FORMAT} expected)"
            )
        if doc.get("content_sha256") != content_hash(doc):
            raise ConfigurationError(
                f"--plan: {path} was changed after `teamsync plan` wrote it (content hash "
                "mismatch); make a new plan"
            )
        try:
            created = datetime.fromisoformat(str(doc["created_at"]))
            ops = list(doc["operations"])
            config_sha = str(doc["fingerprint"]["config_sha256"])
            run_id = str(doc["run_id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"--plan: {path} is incomplete: {exc}") from None
        if created.tzinfo is None:
            raise ConfigurationError(f"--plan: {path}: created_at has no time zone")
        plan = cls(str(path), created, run_id, config_sha, ops)
        for op in ops:
            digest = op_digest(
                op["system"],
                op["object"],
                op["action"],
                op.get("account_id"),
                op.get("target_id"),
                op.get("payload") or {},
                op.get("previous"),
            )
            if digest != op.get("op_id"):
                raise ConfigurationError(f"--plan: {path}: an operation's op_id does not match")
            plan.digests[digest] = op
        return plan

    def check_age(self, now: datetime, max_age: timedelta) -> None:
        age = now - self.created_at
        if age > max_age:
            raise SafeguardRefused(
                f"the approved plan {self.path} was made {_duration(age)} ago, longer than the "
                f"allowed {_duration(max_age)} (TEAMSYNC_PLAN_MAX_AGE_SECONDS): make and review "
                "a new plan"
            )
        if age < -timedelta(minutes=5):
            raise SafeguardRefused(
                f"the approved plan {self.path} is dated in the future ({self.created_at}); "
                "check the clocks and make a new plan"
            )

    def check_fingerprint(self, current: Mapping[str, Any]) -> None:
        if current.get("config_sha256") != self.config_sha256:
            raise SafeguardRefused(
                f"the approved plan {self.path} was made for another org or mapping file "
                "(inputs' fingerprint differs): make and review a new plan"
            )


def _duration(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def identity_of(op: Any) -> str:
    """An operation's identity without its content (to tell "changed" from "new")."""
    return _canonical(
        [
            op.system,
            op.object,
            op.action,
            op.account_id or "",
            op_target(op.object, op.action, op.target_id, op.payload or {}, op.previous),
        ]
    )


def describe_beyond(approved: ApprovedPlan, beyond: list[Any], shown: int = 5) -> str:
    """The refusal message for a re-computed plan that grew beyond the approved one."""
    known = set()
    for op in approved.digests.values():
        known.add(
            _canonical(
                [
                    op["system"],
                    op["object"],
                    op["action"],
                    op.get("account_id") or "",
                    op_target(
                        op["object"],
                        op["action"],
                        op.get("target_id"),
                        op.get("payload") or {},
                        op.get("previous"),
                    ),
                ]
            )
        )
    changed = [op for op in beyond if identity_of(op) in known]
    new = len(beyond) - len(changed)
    parts = []
    if new:
        parts.append(f"{new} not in it")
    if changed:
        parts.append(f"{len(changed)} changed since it was approved")
    examples = "; ".join(
        f"{op.object} {op.action} on account {op.account_id}: {op.reason}" for op in beyond[:shown]
    )
    more = f" (and {len(beyond) - shown} more)" if len(beyond) > shown else ""
    return (
        f"the re-computed plan holds {len(beyond)} operations beyond the approved plan "
        f"{approved.path} ({', '.join(parts)}): {examples}{more}. Nothing was written; make and "
        "review a new plan"
    )


@dataclass
class Reconciliation:
    """The re-computed plan checked against the approved one."""

    beyond: list[Any]  # re-computed operations that were not approved
    skipped: list[dict[str, Any]]  # approved operations not applied, with "why"
    applying: int


def reconcile(
    approved: ApprovedPlan,
    recomputed: Iterable[Any],
    *,
    untouched_accounts: set[str] = frozenset(),  # type: ignore[assignment]
) -> Reconciliation:
    seen: set[str] = set()
    beyond: list[Any] = []
    applying = 0
    for op in recomputed:
        d = digest_of(op)
        if d in approved.digests:
            seen.add(d)
            applying += 1
        else:
            beyond.append(op)
    skipped = []
    for d, op in approved.digests.items():
        if d in seen:
            continue
        if op.get("account_id") in untouched_accounts:
            why = "the account was left untouched this run (one of its records failed validation)"
        else:
            why = "no longer needed (applied since, or its source changed)"
        skipped.append({**op, "why": why})
    return Reconciliation(beyond, skipped, applying)
