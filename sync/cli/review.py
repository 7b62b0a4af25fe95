"""What the review commands print: plans, plan files, runs, a run's changes, an account's
history, and the quarantine.

Every command has a human form (a rich table on a terminal, plain full-width text otherwise)
and ``--json`` with the Ids kept beside the names.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import func, or_, select

from config.errors import ConfigurationError
from connectors.batching import batched
from mappings.schema import MappingFile
from sync.cli.planview import (
    OpRecord,
    PlanFilter,
    describe,
    operation_records,
    render_plan_lines,
    summary_counts,
)
from sync.stages.approval import build_document
from sync.store import IN_LIST, Store
from sync.store.models import Account, HealthObservation, Operation, QuarantinedRecord, Run

if TYPE_CHECKING:
    from sync.engine import Engine, RunResult


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def dump_json(console: Console, doc: Any) -> None:
    console.file.write(json.dumps(doc, indent=2, default=_default) + "\n")


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (plans and reports hold names and e-mails)."""
    with open_private(path) as fh:
        fh.write(text)


def open_private(path: Path) -> IO[str]:
    """A text file opened for writing that only its owner can read (0600, whatever the umask)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8", newline="")


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


# --- plan -------------------------------------------------------------------------------------
def plan_notes(result: RunResult, filt: PlanFilter, total: int, written: Path | None) -> list[str]:
    notes = []
    if filt.active:
        notes.append(f"Filtered ({filt.describe()}): showing part of a plan of {total} operations.")
    refusal = list(result.stats.safeguard or result.refused or [])
    if refusal:
        notes.append("The mass-change safeguard would refuse this plan:")
        notes.extend(f"  - {r}" for r in refusal)
        notes.append(
            "To apply it after review: teamsync plan --out plan.json, then "
            "teamsync run --plan plan.json"
        )
    invalid = int(result.stats.invalid_records or 0)
    if invalid:
        notes.append(
            f"{invalid} records failed validation; their accounts are left out "
            "(teamsync quarantine list)."
        )
    if written is not None:
        notes.append(
            f"Plan written to {written}; apply exactly it with: teamsync run --plan {written}"
        )
    notes.append("Nothing was written to Salesforce or Gainsight.")
    return notes


def print_plan(
    console: Console,
    engine: Engine,
    result: RunResult,
    filt: PlanFilter,
    *,
    fmt: str,
    limit: int | None,
    written: Path | None,
) -> None:
    lines = describe(engine.store, engine.mapping, operation_records(engine.store, result.run_id))
    shown = filt.apply(lines)
    doc = {
        "run_id": result.run_id,
        "total_operations": len(lines),
        "filter": {
            "account": filt.accounts,
            "segment": filt.segments,
            "object": filt.objects,
            "kind": filt.kinds,
        },
        "summary": [
            {"system": key.split(" ")[0], "object": key.split(" ")[1], "action": a, "count": n}
            for key, actions in summary_counts(shown).items()
            for a, n in sorted(actions.items())
        ],
        "destructive": result.counts.destructive,
        "managed_known": result.counts.managed_known,
        "safeguard": list(result.stats.safeguard or result.refused or []),
        "plan_file": str(written) if written else None,
    }
    render_plan_lines(
        console,
        shown,
        fmt=fmt,
        title="Plan (nothing is written)",
        stream=console.file,
        notes=plan_notes(result, filt, len(lines), written),
        document=doc,
        limit=limit,
    )


def write_plan_file(engine: Engine, result: RunResult, path: Path) -> Path:
    records = operation_records(engine.store, result.run_id)
    lines = describe(engine.store, engine.mapping, records)
    ops = []
    for ln in lines:
        ops.append(
            {
                "system": ln.system,
                "object": ln.object,
                "action": ln.action,
                "target_id": ln.target_id,
                "account_id": ln.account_id,
                "account_name": ln.account_name,
                "segment": ln.segment,
                "payload": ln.payload,
                "previous": ln.previous,
                "destructive": ln.destructive,
                "summary": ln.summary,
                "reason": ln.reason,
            }
        )
    doc = build_document(
        created_at=engine.clock(),
        run_id=result.run_id,
        fingerprint_doc=engine.input_fingerprint(),
        operations=ops,
        safeguard=list(result.stats.safeguard or result.refused or []),
    )
    write_private(path, json.dumps(doc, indent=2, default=_default) + "\n")
    return path


# --- runs -------------------------------------------------------------------------------------
def _counts(stats: dict[str, Any]) -> dict[str, Any]:
    pushed = stats.get("pushed") or {}
    return {
        "planned": sum((stats.get("plan") or {}).values()),
        "succeeded": sum((pushed.get("succeeded") or {}).values()),
        "failed": sum((pushed.get("failed") or {}).values()),
        "quarantined": int(stats.get("invalid_records") or 0),
    }


def runs_document(store: Store, limit: int) -> list[dict[str, Any]]:
    with store.session() as s:
        rows = list(s.scalars(select(Run).order_by(Run.started_at.desc()).limit(limit)))
    out = []
    for r in rows:
        stats = r.stats or {}
        duration = (
            round((r.finished_at - r.started_at).total_seconds(), 1) if r.finished_at else None
        )
        out.append(
            {
                "run_id": r.run_id,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                "command": r.command,
                "dry_run": r.dry_run,
                "full": r.full,
                "status": r.status,
                "exit_code": r.exit_code,
                "duration_seconds": duration,
                "counts": _counts(stats),
                "error": r.error,
            }
        )
    return out


def render_runs(console: Console, store: Store, limit: int, *, as_json: bool) -> None:
    doc = runs_document(store, limit)
    if as_json:
        dump_json(console, doc)
        return
    if not doc:
        console.print("No runs recorded yet.")
        return
    if not console.is_terminal:
        for r in doc:
            c = r["counts"]
            console.print(
                f"{when(r['started_at'])}  {r['run_id']}  {_command(r)}  {r['status']} "
                f"(exit {r['exit_code']})  planned {c['planned']}, written {c['succeeded']}, "
                f"failed {c['failed']}  {_secs(r['duration_seconds'])}",
                soft_wrap=True,
                highlight=False,
                markup=False,
            )
        return
    t = Table(title=f"Last {len(doc)} runs")
    for col in ("when", "run", "command", "status", "planned", "written", "failed", "took"):
        t.add_column(col, justify="right" if col in ("planned", "written", "failed") else "left")
    for r in doc:
        c = r["counts"]
        t.add_row(
            when(r["started_at"]),
            r["run_id"],
            escape(_command(r)),
            _status(r["status"], r["exit_code"]),
            str(c["planned"]),
            str(c["succeeded"]),
            str(c["failed"]),
            _secs(r["duration_seconds"]),
        )
    console.print(t)


def _command(r: dict[str, Any]) -> str:
    extra = [x for x, on in (("dry-run", r["dry_run"]), ("full", r["full"])) if on]
    return str(r["command"]) + (f" ({', '.join(extra)})" if extra else "")


def _status(status: str, code: int | None) -> str:
    colour = {
        "succeeded": "green",
        "dry_run": "cyan",
        "partial": "yellow",
        "refused": "yellow",
        "failed": "red",
        "interrupted": "yellow",
    }.get(status, "")
    text = f"{status} (exit {code})" if code not in (None, 0) else status
    return f"[{colour}]{text}[/]" if colour else text


def _secs(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


# --- show RUN_ID ------------------------------------------------------------------------------
def find_run(store: Store, run_id: str) -> Run:
    with store.session() as s:
        run = s.get(Run, run_id)
        if run is None and len(run_id) >= 4:
            matches = list(s.scalars(select(Run).where(Run.run_id.like(f"{run_id}%")).limit(2)))
            if len(matches) == 1:
                run = matches[0]
    if run is None:
        raise ConfigurationError(f"no run {run_id!r} (see `teamsync runs`)")
    return run


def render_show(
    console: Console,
    store: Store,
    mapping: MappingFile,
    run_id: str,
    *,
    as_json: bool,
    filt: PlanFilter,
) -> None:
    run = find_run(store, run_id)
    lines = filt.apply(
        describe(store, mapping, operation_records(store, run.run_id, with_status=True))
    )
    stats = run.stats or {}
    head = {
        "run_id": run.run_id,
        "command": run.command,
        "dry_run": run.dry_run,
        "full": run.full,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "status": run.status,
        "exit_code": run.exit_code,
        "counts": _counts(stats),
        "error": run.error,
        "approved_plan": stats.get("approved_plan"),
    }
    if as_json:
        render_plan_lines(console, lines, fmt="json", title="", stream=console.file, document=head)
        return
    verb = "planned" if run.dry_run or run.status in ("refused", "dry_run") else "changed"
    title = f"Run {run.run_id} ({_command(head)}, {run.status}, {when(run.started_at)}): {verb}"
    notes = []
    if run.error:
        notes.append(f"Error: {run.error}")
    approved = stats.get("approved_plan") or {}
    if approved:
        notes.append(
            f"Approved plan {approved.get('path')}: {approved.get('applying')} of "
            f"{approved.get('approved')} approved operations applied, "
            f"{len(approved.get('skipped') or [])} skipped."
        )
    if not lines:
        console.print(
            f"{title}: nothing." if not run.error else f"{title}: nothing. {run.error}",
            markup=False,
        )
        return
    render_plan_lines(console, lines, fmt="table", title=title, stream=console.file, notes=notes)


# --- history ACCOUNT --------------------------------------------------------------------------
def find_account(store: Store, wanted: str) -> Account:
    w = wanted.strip()
    with store.session() as s:
        account = s.get(Account, w)
        if account is None and len(w) == 15:
            account = s.scalar(select(Account).where(Account.account_id.like(f"{w}%")))
        if account is None:
            matches = list(
                s.scalars(
                    select(Account)
                    .where(func.lower(Account.name).contains(w.lower()))
                    .order_by(Account.name)
                    .limit(6)
                )
            )
            exact = [a for a in matches if a.name.lower() == w.lower()]
            if len(exact) == 1:
                account = exact[0]
            elif len(matches) == 1:
                account = matches[0]
            elif matches:
                names = ", ".join(f"{a.name} ({a.account_id})" for a in matches[:5])
                raise ConfigurationError(f"{wanted!r} matches several accounts: {names}")
    if account is None:
        raise ConfigurationError(f"no account {wanted!r} (give its Id or part of its name)")
    return account


@dataclass
class HistoryEvent:
    at: datetime
    kind: str  # team / health / field / cta
    text: str
    run_id: str | None
    status: str | None


def history_events(store: Store, mapping: MappingFile, account: Account) -> list[HistoryEvent]:
    events: list[HistoryEvent] = []
    with store.session() as s:
        rows = list(
            s.execute(
                select(Operation, Run.started_at, Run.dry_run)
                .join(Run, Run.run_id == Operation.run_id)
                .where(
                    Operation.account_id == account.account_id,
                    Run.dry_run.is_(False),
                    Operation.status.in_(("done", "adopted", "failed")),
                )
                .order_by(Run.started_at, Operation.id)
            )
        )
        health = list(
            s.scalars(
                select(HealthObservation)
                .where(HealthObservation.account_id == account.account_id)
                .order_by(HealthObservation.observed_at)
            )
        )
    records = [OpRecord.from_row(op, with_status=True) for op, _, _ in rows]
    lines = describe(store, mapping, records, sort=False)
    for ln, (op, at, _) in zip(lines, rows, strict=True):
        kind = {"AccountTeamMember": "team", "CallToAction": "cta"}.get(ln.object, "fields")
        text = ln.summary
        if ln.status == "failed":
            text += f" (failed: {ln.error or 'no reason recorded'})"
        elif ln.status == "adopted":
            text += " (adopted an open CTA)"
        events.append(HistoryEvent(at, kind, text, op.run_id, ln.status))
    previous: HealthObservation | None = None
    for h in health:
        if previous is None:
            text = f"health first seen: {_score(h.score)} ({h.band})"
        else:
            text = (
                f"health {_score(previous.score)} ({previous.band}) → {_score(h.score)} ({h.band})"
            )
        events.append(HistoryEvent(h.observed_at, "health", text, None, None))
        previous = h
    events.sort(key=lambda e: (e.at, e.kind != "health"))
    return events


def _score(value: float | None) -> str:
    if value is None:
        return "no score"
    return f"{value:g}"


def render_history(
    console: Console, store: Store, mapping: MappingFile, wanted: str, *, as_json: bool
) -> None:
    account = find_account(store, wanted)
    events = history_events(store, mapping, account)
    if as_json:
        dump_json(
            console,
            {
                "account": {
                    "id": account.account_id,
                    "name": account.name,
                    "segment": account.segment,
                    "health_band": account.health_band,
                    "health_score": account.health_score,
                },
                "events": [
                    {
                        "at": e.at,
                        "kind": e.kind,
                        "text": e.text,
                        "run_id": e.run_id,
                        "status": e.status,
                    }
                    for e in events
                ],
            },
        )
        return
    head = (
        f"{account.name} ({account.segment}, {account.account_id}): health "
        f"{_score(account.health_score)} ({account.health_band})"
    )
    if not events:
        console.print(head + " — no recorded changes.", markup=False, highlight=False)
        return
    if not console.is_terminal:
        console.print(head, markup=False, highlight=False)
        for e in events:
            console.print(
                f"  {when(e.at)}  {e.kind:<6}  {e.text}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        return
    t = Table(title=escape(head), expand=True)
    t.add_column("when", no_wrap=True)
    t.add_column("what", no_wrap=True)
    t.add_column("change", overflow="fold", ratio=1)
    t.add_column("run", no_wrap=True)
    for e in events:
        t.add_row(when(e.at), e.kind, escape(e.text), (e.run_id or "")[:8])
    console.print(t)


# --- quarantine -------------------------------------------------------------------------------
def quarantine_rows(store: Store, *, include_dismissed: bool) -> list[dict[str, Any]]:
    with store.session() as s:
        q = select(QuarantinedRecord)
        if include_dismissed:
            q = q.where(
                or_(
                    QuarantinedRecord.resolved_at.is_(None),
                    QuarantinedRecord.dismissed_at.is_not(None),
                )
            )
        else:
            q = q.where(
                QuarantinedRecord.resolved_at.is_(None), QuarantinedRecord.dismissed_at.is_(None)
            )
        rows = list(s.scalars(q.order_by(QuarantinedRecord.last_seen.desc())))
        ids = sorted({r.account_id for r in rows if r.account_id})
        names: dict[str, str] = {}
        for part in batched(ids, IN_LIST):
            for a in s.scalars(select(Account).where(Account.account_id.in_(part))):
                names[a.account_id] = a.name
    return [
        {
            "id": r.id,
            "system": r.system,
            "object": r.object,
            "record_id": r.record_id,
            "stage": r.stage,
            "account_id": r.account_id,
            "account_name": names.get(r.account_id or ""),
            "code": r.code,
            "reason": r.reason,
            "attempts": r.attempts,
            "first_seen": r.first_seen,
            "last_seen": r.last_seen,
            "dismissed_at": r.dismissed_at,
            "dismissed_note": r.dismissed_note,
            "state": "dismissed" if r.dismissed_at else "open",
        }
        for r in rows
    ]


def render_quarantine(
    console: Console, store: Store, *, include_dismissed: bool, as_json: bool
) -> None:
    rows = quarantine_rows(store, include_dismissed=include_dismissed)
    if as_json:
        dump_json(console, rows)
        return
    open_n = sum(1 for r in rows if r["state"] == "open")
    if not rows:
        console.print("Quarantine is empty: no record is failing.")
        return
    head = f"{open_n} quarantined record{'s' if open_n != 1 else ''} open" + (
        f", {len(rows) - open_n} dismissed" if include_dismissed else ""
    )
    if not console.is_terminal:
        console.print(head, markup=False)
        for r in rows:
            console.print(
                f"#{r['id']}  {r['state']}  {r['system']} {r['object']} {r['record_id']}"
                f"  account: {r['account_name'] or r['account_id'] or '-'}"
                f"  stage: {r['stage']}  attempts: {r['attempts']}  last: {when(r['last_seen'])}"
                f"\n      why: {r['reason']}"
                + (f"\n      dismissed: {r['dismissed_note']}" if r["dismissed_note"] else ""),
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        return
    t = Table(title=head, expand=True)
    for col in ("#", "state", "record", "account", "stage", "why", "tries", "last seen"):
        t.add_column(col, overflow="fold", ratio=3 if col == "why" else None)
    for r in rows:
        t.add_row(
            str(r["id"]),
            r["state"],
            escape(f"{r['system']} {r['object']} {r['record_id']}"),
            escape(r["account_name"] or r["account_id"] or "-"),
            r["stage"],
            escape(r["reason"]),
            str(r["attempts"]),
            when(r["last_seen"]),
        )
    console.print(t)


def select_quarantine(
    store: Store, ids: Sequence[int], *, every: bool, dismissed: bool | None
) -> list[int]:
    """The ids a retry / dismiss applies to (all open ones with ``every``)."""
    if not ids and not every:
        raise ConfigurationError(
            "name the quarantined records (#id from `quarantine list`) or --all"
        )
    with store.session() as s:
        q = select(QuarantinedRecord.id).where(QuarantinedRecord.resolved_at.is_(None))
        if dismissed is True:
            q = select(QuarantinedRecord.id).where(QuarantinedRecord.dismissed_at.is_not(None))
        elif dismissed is False:
            q = q.where(QuarantinedRecord.dismissed_at.is_(None))
        if not every:
            q = q.where(QuarantinedRecord.id.in_(list(ids)))
        found = sorted(int(i) for i in s.scalars(q))
    missing = sorted(set(ids) - set(found))
    if missing and not every:
        raise ConfigurationError(
            "no such quarantined record: " + ", ".join(f"#{i}" for i in missing)
        )
    return found
