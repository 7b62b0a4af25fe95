"""What the commands print: run summaries, plans, status and the coverage audit."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy import func, select

from config.errors import ConfigurationError
from mappings.schema import MappingFile
from sync.clock import utcnow
from sync.store import Store, live_accounts
from sync.store.models import Account, AlertOutbox, Operation, QuarantinedRecord, Run, Watermark

if TYPE_CHECKING:
    from sync.engine import RunResult
    from sync.stages.pull import ProgressFn


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _dump(value: Any) -> str:
    return json.dumps(value, default=_json_default, indent=2)


# --- run summary ----------------------------------------------------------------------------
def render_run_summary(console: Console, result: RunResult) -> None:
    stats = result.stats
    console.print(
        f"run {result.run_id}: [bold]{result.status}[/] (exit {result.exit_code}) "
        f"in {stats.seconds or 0} s"
    )
    if stats.pulled:
        parts = [f"{name.split('.', 1)[1]} {s['records']}" for name, s in stats.pulled.items()]
        console.print("  pulled: " + ", ".join(parts))
    if stats.mapped is not None:
        console.print(
            f"  mapped: {stats.mapped} accounts "
            + ", ".join(f"{k} {v}" for k, v in sorted((stats.segments or {}).items()))
        )
    plan = stats.plan or {}
    console.print(
        "  plan: "
        + (", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in plan.items()) or "nothing to change")
    )
    if stats.safeguard:
        console.print("  [yellow]safeguard would refuse:[/] " + "; ".join(stats.safeguard))
    pushed = stats.pushed
    if pushed:
        ok = sum(pushed.succeeded.values())
        bad = sum(pushed.failed.values())
        console.print(f"  pushed: {ok} succeeded, {bad} failed, {pushed.adopted_ctas} CTAs adopted")
    alerts = stats.alerts
    if isinstance(alerts, dict) and alerts:
        if alerts.get("error"):
            console.print(f"  [yellow]alerts not delivered:[/] {escape(str(alerts['error']))}")
        else:
            console.print(
                "  alerts: "
                + "; ".join(
                    f"{sink} {_counts_text(v) if isinstance(v, dict) else v}"
                    for sink, v in sorted(alerts.items())
                )
            )
    if stats.invalid_records:
        console.print(
            f"  [yellow]quarantined invalid records:[/] {stats.invalid_records} "
            "(teamsync quarantine list)"
        )
    if stats.held_back:
        console.print(
            f"  held back: {stats.held_back} operations of dismissed quarantined records "
            "(teamsync quarantine list --all)"
        )
    approved = stats.approved_plan
    if approved:
        skipped = approved.get("skipped") or []
        console.print(
            f"  approved plan {escape(str(approved.get('path')))}: "
            f"{approved.get('applying')} of {approved.get('approved')} operations applied, "
            f"{len(skipped)} skipped"
            + (f", {approved['beyond']} beyond it (refused)" if approved.get("beyond") else "")
        )
        for item in skipped[:10]:
            console.print(
                f"    skipped: {escape(str(item.get('summary')))} — {escape(str(item.get('why')))}"
            )
        if len(skipped) > 10:
            console.print(
                f"    ... and {len(skipped) - 10} more (teamsync show {result.run_id} --json)"
            )
    if stats.error:
        console.print(f"  [red]{escape(stats.error)}[/]")


def _counts_text(counts: dict[str, Any]) -> str:
    """``{"sent": 3, "failed": 1}`` as "3 sent, 1 failed" (nested values summed)."""
    parts = []
    for key, raw in counts.items():
        value = (
            sum(v for v in raw.values() if isinstance(v, int | float))
            if isinstance(raw, dict)
            else raw
        )
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        parts.append(f"{value:g} {key.replace('_', ' ')}")
    return ", ".join(parts) or "none"


# --- plan -----------------------------------------------------------------------------------
def render_plan(
    console: Console, store: Store, result: RunResult, *, as_json: bool = False, limit: int = 200
) -> None:
    with store.session() as s:
        summary = list(
            s.execute(
                select(Operation.system, Operation.object, Operation.action, func.count())
                .where(Operation.run_id == result.run_id)
                .group_by(Operation.system, Operation.object, Operation.action)
                .order_by(Operation.system, Operation.object, Operation.action)
            )
        )
        if as_json:
            ops = [
                {
                    "system": op.system,
                    "object": op.object,
                    "action": op.action,
                    "target_id": op.target_id,
                    "account_id": op.account_id,
                    "payload": op.payload,
                    "previous": op.previous,
                    "reason": op.reason,
                    "destructive": op.destructive,
                }
                for op in s.scalars(
                    select(Operation)
                    .where(Operation.run_id == result.run_id)
                    .order_by(Operation.id)
                )
            ]
            doc = {
                "run_id": result.run_id,
                "summary": [
                    {"system": a, "object": b, "action": c, "count": n} for a, b, c, n in summary
                ],
                "destructive": result.counts.destructive,
                "managed_known": result.counts.managed_known,
                "safeguard": result.refused,
                "operations": ops,
            }
            console.file.write(_dump(doc) + "\n")
            return
        table = Table(title="Plan (nothing is written)")
        for col in ("system", "object", "creates", "updates", "deletes / closes"):
            table.add_column(col)
        per: dict[tuple[str, str], dict[str, int]] = {}
        for system, obj, action, n in summary:
            per.setdefault((system, obj), {})[action] = n
        for (system, obj), actions in sorted(per.items()):
            table.add_row(
                system,
                obj,
                str(actions.get("create", 0)),
                str(actions.get("update", 0)),
                str(actions.get("delete", 0) + actions.get("close", 0)),
            )
        console.print(table)
        if not summary:
            console.print("Nothing to change.")
            return
        detail = Table(title=f"Operations (first {limit})")
        for col in ("action", "object", "account", "target", "change", "reason"):
            detail.add_column(col, overflow="fold")
        rows = s.scalars(
            select(Operation)
            .where(Operation.run_id == result.run_id)
            .order_by(Operation.id)
            .limit(limit)
        )
        names = {
            a.account_id: a.name
            for a in s.scalars(
                select(Account).where(
                    Account.account_id.in_(
                        select(Operation.account_id)
                        .where(Operation.run_id == result.run_id)
                        .limit(limit)
                    )
                )
            )
        }
        for op in rows:
            change = {k: v for k, v in (op.payload or {}).items() if k not in ("Id", "Gsid")}
            detail.add_row(
                op.action,
                f"{op.system}.{op.object}",
                names.get(op.account_id or "", op.account_id or ""),
                op.target_id or "-",
                json.dumps(change, default=str)[:120],
                op.reason,
            )
        console.print(detail)
        if result.refused:
            console.print("[yellow]The mass-change safeguard would refuse this plan:[/]")
            for reason in result.refused:
                console.print(f"  - {reason}")


# --- status ---------------------------------------------------------------------------------
def status_document(store: Store, mapping: MappingFile | None = None) -> dict[str, Any]:
    with store.session() as s:
        runs = [
            {
                "run_id": r.run_id,
                "command": r.command,
                "dry_run": r.dry_run,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                "status": r.status,
                "exit_code": r.exit_code,
                "plan": (r.stats or {}).get("plan"),
                "version": (r.stats or {}).get("version"),
                "api": (r.stats or {}).get("api"),
                "error": r.error,
            }
            for r in s.scalars(select(Run).order_by(Run.started_at.desc()).limit(10))
        ]
        watermarks = [
            {
                "stream": w.stream,
                "watermark": w.value,
                "pull_in_flight": w.pull_started_at is not None,
                "records_in_flight": w.pulled_in_flight,
            }
            for w in s.scalars(select(Watermark).order_by(Watermark.stream))
        ]
        open_q = list(
            s.scalars(
                select(QuarantinedRecord)
                .where(
                    QuarantinedRecord.resolved_at.is_(None),
                    QuarantinedRecord.dismissed_at.is_(None),
                )
                .order_by(QuarantinedRecord.last_seen.desc())
                .limit(50)
            )
        )
        open_count = s.scalar(
            select(func.count(QuarantinedRecord.id)).where(
                QuarantinedRecord.resolved_at.is_(None), QuarantinedRecord.dismissed_at.is_(None)
            )
        )
        alerts = {
            str(status): int(n)
            for status, n in s.execute(
                select(AlertOutbox.status, func.count()).group_by(AlertOutbox.status)
            )
        }
        pending = [
            {
                "key": a.idempotency_key,
                "sink": a.sink,
                "kind": a.kind,
                "status": a.status,
                "attempts": a.attempts,
                "next_attempt_at": a.next_attempt_at,
                "last_error": a.last_error,
            }
            for a in s.scalars(
                select(AlertOutbox)
                .where(AlertOutbox.status.in_(("pending", "failed", "sending")))
                .order_by(AlertOutbox.created_at)
                .limit(50)
            )
        ]
    from sync.version import VERSION

    return {
        "version": VERSION,
        "runs": runs,
        "watermarks": watermarks,
        "quarantine": {
            "open": int(open_count or 0),
            "records": [
                {
                    "system": q.system,
                    "object": q.object,
                    "record_id": q.record_id,
                    "stage": q.stage,
                    "code": q.code,
                    "reason": q.reason,
                    "attempts": q.attempts,
                    "last_seen": q.last_seen,
                }
                for q in open_q
            ],
        },
        "api_usage": runs[0]["api"] if runs else None,
        "alerts": {"by_status": alerts, "pending": pending},
        **_csm_book(store, mapping),
    }


def _csm_book(store: Store, mapping: MappingFile | None) -> dict[str, Any]:
    """The CSM book of business (issue 11, item 9): reporting only."""
    if mapping is None:
        return {}
    from sync.cli.audit import AuditReport

    report = AuditReport.build(store, mapping)
    return {
        "csm_book": [c.as_dict() for c in report.csm_book],
        "csm_overloaded": report.overloaded_lines(),
        "csm_book_max_accounts": report.max_accounts,
    }


def render_status(
    console: Console, store: Store, *, as_json: bool = False, mapping: MappingFile | None = None
) -> None:
    doc = status_document(store, mapping)
    if as_json:
        console.file.write(_dump(doc) + "\n")
        return
    console.print(f"teamsync {doc['version']} · store {store.safe_url}", highlight=False)
    runs = Table(title="Last runs")
    for col in ("started", "command", "status", "exit", "plan"):
        runs.add_column(col, overflow="fold")
    for r in doc["runs"]:
        plan = r["plan"] or {}
        runs.add_row(
            r["started_at"].isoformat(timespec="seconds") if r["started_at"] else "",
            r["command"] + (" (dry-run)" if r["dry_run"] else ""),
            r["status"],
            str(r["exit_code"]),
            ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in plan.items()) or "-",
        )
    console.print(runs)
    wm = Table(title="Watermarks")
    for col in ("stream", "watermark", "pull in flight"):
        wm.add_column(col)
    for w in doc["watermarks"]:
        wm.add_row(
            w["stream"],
            w["watermark"].isoformat(timespec="seconds") if w["watermark"] else "-",
            f"yes ({w['records_in_flight']} records)" if w["pull_in_flight"] else "no",
        )
    console.print(wm)
    q = doc["quarantine"]
    console.print(f"Quarantined records: {q['open']}")
    if q["records"]:
        qt = Table()
        for col in ("system", "object", "record", "stage", "reason", "attempts"):
            qt.add_column(col, overflow="fold")
        for r in q["records"][:20]:
            qt.add_row(
                r["system"],
                r["object"],
                r["record_id"],
                r["stage"],
                r["reason"][:100],
                str(r["attempts"]),
            )
        console.print(qt)
    api = doc["api_usage"] or {}
    sf = api.get("salesforce") or {}
    if sf:
        console.print(
            f"Salesforce API usage (last run): {sf.get('used')} of {sf.get('max')} daily calls; "
            f"this run: {_counts_text(sf.get('calls') or {})}"
        )
    gs = api.get("gainsight") or {}
    if gs:
        console.print(f"Gainsight calls (last run): {_counts_text(gs.get('calls') or {})}")
    alerts = doc["alerts"]
    console.print(
        "Alerts: "
        + (", ".join(f"{k} {v}" for k, v in sorted(alerts["by_status"].items())) or "none")
    )
    for a in alerts["pending"][:20]:
        console.print(
            f"  {a['status']}: {a['kind']} via {a['sink']} ({a['attempts']} attempts) "
            f"{a['last_error'] or ''}"
        )
    if mapping is not None:
        from sync.cli.audit import AuditReport, render_csm_book

        render_csm_book(console, AuditReport.build(store, mapping))


# --- audit ----------------------------------------------------------------------------------
AUDIT_COLUMNS = (
    "account_id",
    "name",
    "segment",
    "lifecycle",
    "arr",
    "qualifying",
    "health_band",
    "health_score",
    "days_to_renewal",
    "missing_roles",
    "flags",
)


def _audit_rows(store: Store, mapping: MappingFile) -> Iterator[dict[str, Any]]:
    roles = list(mapping.roles)
    for a in live_accounts(store):
        row: dict[str, Any] = {
            "account_id": a.account_id,
            "name": a.name,
            "segment": a.segment,
            "lifecycle": a.lifecycle,
            "arr": a.arr,
            "qualifying": a.qualifying,
            "health_band": a.health_band,
            "health_score": a.health_score,
            "days_to_renewal": a.days_to_renewal,
            "missing_roles": ";".join(a.missing_roles or []),
            "flags": ";".join(a.flags or []),
        }
        for key in roles:
            member = (a.team or {}).get(key)
            row[key] = (member.get("email") or member.get("name")) if member else ""
        yield row


def render_audit(
    console: Console,
    store: Store,
    mapping: MappingFile,
    fmt: str,
    stream: IO[str],
    *,
    salesforce_url: str | None = None,
    gainsight_url: str | None = None,
) -> None:
    roles = list(mapping.roles)
    columns = [*AUDIT_COLUMNS, *roles]
    if fmt == "csv":
        from sync.cli.planview import csv_cell

        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        for row in _audit_rows(store, mapping):
            # Names come from the CRM: a cell starting = + - @ TAB CR is text, not a formula.
            writer.writerow({k: csv_cell(v) for k, v in row.items()})
        return
    from sync.cli.audit import AuditReport, render_html, render_table

    report = AuditReport.build(
        store, mapping, salesforce_url=salesforce_url, gainsight_url=gainsight_url
    )
    if fmt == "html":
        stream.write(render_html(report))
        return
    render_table(console, report)


# --- progress -------------------------------------------------------------------------------
@contextmanager
def progress_bar(console: Console, *, transient: bool = False) -> Iterator[ProgressFn | None]:
    """A callback ``(phase, done, total)`` drawing a bar per stream or phase on a terminal
    (pull: one per stream; map and plan: accounts; push: operations)."""
    if not console.is_terminal:
        yield None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=transient) as progress:
        tasks: dict[str, Any] = {}

        def update(stream: str, done: int, total: int | None) -> None:
            if stream not in tasks:
                tasks[stream] = progress.add_task(stream, total=total)
            progress.update(tasks[stream], completed=done, total=total)

        yield update


# --- dead-man check -------------------------------------------------------------------------
COMPLETED = ("succeeded", "partial")  # the run synced (exit 0 or 1)
FAILING = ("failed", "refused")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str, name: str) -> timedelta:
    """``90m``, ``2h``, ``1d``, ``3600s`` or plain seconds."""
    match = _DURATION.match(value)
    if not match or float(match.group(1)) <= 0:
        raise ConfigurationError(f"{name}: not a duration (e.g. 90m, 2h, 1d): {value!r}")
    return timedelta(seconds=float(match.group(1)) * _UNIT[match.group(2).lower()])


@dataclass
class CheckResult:
    ok: bool
    reasons: list[str] = field(default_factory=list)
    last_completed: datetime | None = None
    last_run: dict[str, Any] | None = None
    max_age: timedelta = timedelta(hours=2)


def dead_man_check(
    store: Store, max_age: timedelta, now: Callable[[], datetime] = utcnow
) -> CheckResult:
    """``status --check``: the last completed run ended within ``max_age`` and the last
    finished run did not fail (a run still in progress is judged by the one before it)."""
    with store.session() as s:
        real = Run.dry_run.is_(False)
        completed = s.scalar(
            select(func.max(Run.finished_at)).where(real, Run.status.in_(COMPLETED))
        )
        last = s.scalars(
            select(Run)
            .where(real, Run.finished_at.is_not(None))
            .order_by(Run.started_at.desc())
            .limit(1)
        ).first()
    result = CheckResult(ok=True, last_completed=completed, max_age=max_age)
    if last is not None:
        result.last_run = {
            "run_id": last.run_id,
            "status": last.status,
            "exit_code": last.exit_code,
            "finished_at": last.finished_at,
            "error": (last.error or "")[:300] or None,
        }
    current = now()
    if completed is None:
        result.reasons.append("no run has completed yet")
    elif current - completed > max_age:
        age = _age(current - completed)
        result.reasons.append(
            f"the last completed run ended {age} ago ({completed.isoformat(timespec='seconds')}), "
            f"more than {_age(max_age)}"
        )
    if last is not None and last.status in FAILING:
        error = result.last_run["error"] if result.last_run else None
        why = f": {error}" if error else ""
        result.reasons.append(f"the last run {last.status} (exit {last.exit_code}){why}")
    result.ok = not result.reasons
    return result


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 2 * 3600:
        return f"{seconds // 3600} hours"
    if seconds >= 120:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"


def render_check(console: Console, result: CheckResult, *, as_json: bool = False) -> None:
    if as_json:
        doc = {
            "ok": result.ok,
            "reasons": result.reasons,
            "last_completed_at": result.last_completed,
            "max_age_seconds": int(result.max_age.total_seconds()),
            "last_run": result.last_run,
        }
        console.file.write(_dump(doc) + "\n")
        return
    if result.ok:
        assert result.last_completed is not None
        console.print(
            f"ok: last completed run ended {result.last_completed.isoformat(timespec='seconds')}",
            highlight=False,
        )
        return
    for reason in result.reasons:
        console.print(f"FAIL: {reason}", highlight=False)


_PREFLIGHT_MARKS = {"ok": "[green]ok[/]", "risky": "[yellow]risky[/]", "missing": "[red]missing[/]"}


def render_preflight(console: Console, report: Any, *, as_json: bool = False) -> None:
    """The preflight checklist: each line ok / risky / missing, with the admin's fix."""
    if as_json:
        console.print_json(_dump(report.to_dict()))
        return
    table = Table(title="teamsync preflight", title_justify="left", show_lines=False)
    table.add_column("status")
    table.add_column("check")
    table.add_column("found")
    table.add_column("fix")
    for check in report.checks:
        table.add_row(
            _PREFLIGHT_MARKS.get(check.status, check.status),
            check.title,
            check.detail,
            check.fix or "",
        )
    console.print(table)
    counts = {s: sum(1 for c in report.checks if c.status == s) for s in ("ok", "risky", "missing")}
    verdict = (
        "[green]ready: a run can start[/]"
        if report.ok
        else f"[red]{counts['missing']} missing: a run would stop with exit 2 before writing[/]"
    )
    console.print(
        f"{counts['ok']} ok, {counts['risky']} risky, {counts['missing']} missing - {verdict}"
    )
