"""``teamsync demo``: the emulators, a synthetic org, a full sync, then a no-op second run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from config.errors import SafeguardRefused
from config.settings import load_settings
from sync.cli.reports import progress_bar
from sync.logging import configure_logging

if TYPE_CHECKING:
    from emulators.runner import RunningEmulators
    from sync.engine import RunResult
    from sync.store import Store


def _settings_from_env(env: dict[str, str], database_url: str) -> dict[str, Any]:
    prefix = "TEAMSYNC_"
    out: dict[str, Any] = {k[len(prefix) :].lower(): v for k, v in env.items()}
    out["database_url"] = database_url
    return out


def synthetic_fallback_owner(emu: Any) -> str | None:
    """An active Gainsight user of the synthetic tenant to own CTAs nobody else can."""
    table = emu.gainsight.tables["gsuser"]
    emails = sorted(
        str(row["Email"])
        for gsid in table.ids()
        if (row := table.get(gsid)) and row.get("IsActiveUser") and row.get("Email")
    )
    return emails[0] if emails else None


def mapping_with_fallback_owner(base: Path, owner: str) -> str:
    """The shipped mapping plus a fallback CTA owner, written to ``base`` (the demo's workdir;
    the benchmarks use it too: a synthetic org has accounts nobody in Gainsight can own)."""
    from config.settings import _DEFAULT_MAPPING

    text = Path(_DEFAULT_MAPPING).read_text(encoding="utf-8")
    marker = "# fallback_owner_email = "
    line = f'fallback_owner_email = "{owner}"'
    text = text.replace(next(ln for ln in text.splitlines() if ln.startswith(marker)), line)
    path = base / "mapping.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def run_demo(
    console: Console,
    *,
    accounts: int,
    seed: int,
    workdir: Path | None,
    profile: str = "strict",
) -> int:
    from emulators.runner import start_emulators
    from mappings.schema import load_mapping
    from sync.cli.reports import render_preflight
    from sync.engine import Engine, RunOptions
    from sync.stages.preflight import preflight_from_settings
    from sync.store import Store
    from sync.store.models import Account, AlertOutbox

    base = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="teamsync-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    db_path = base / "teamsync.db"
    if db_path.exists():
        db_path.unlink()
    console.print(f"[bold]teamsync demo[/] — workdir {base}")
    with start_emulators(
        accounts=accounts, seed=seed, workdir=base / "emulators", profile=profile
    ) as emu:
        console.print(
            f"Salesforce emulator {emu.salesforce_url} · Gainsight emulator {emu.gainsight_url}"
            f" · {accounts} synthetic accounts (seed {seed}) · {profile} profile"
        )
        overrides = _settings_from_env(emu.env(), f"sqlite:///{db_path}")
        overrides.setdefault("log_level", os.environ.get("TEAMSYNC_DEMO_LOG_LEVEL", "WARNING"))
        owner = synthetic_fallback_owner(emu)
        if owner:
            # A real tenant names its CS operations lead here; the demo picks a Gainsight user
            # so that accounts whose CSM and owner have no Gainsight user still get their CTAs.
            overrides["mapping"] = mapping_with_fallback_owner(base, owner)
            console.print(f"CTA fallback owner (gainsight.cta.fallback_owner_email): {owner}")
        settings = load_settings(**overrides)
        # The report stays free of log lines: they go to a file in the workdir.
        log_path = base / "teamsync.log"
        log_file = log_path.open("a", encoding="utf-8")
        configure_logging("json", settings.log_level, stream=log_file)
        store = Store(settings.database_url)
        store.upgrade()

        # What `teamsync preflight` prints for this org and tenant (the strict emulators are
        # set up the way the README's admin checklist asks).
        report = preflight_from_settings(settings, load_mapping(settings.mapping), full=True)
        render_preflight(console, report)
        if not report.ok:
            return 2

        writes_before = emu.log.count(kind="write")
        calls_before = emu.log.count()
        with progress_bar(console, transient=True) as progress:
            engine = Engine.from_settings(settings, store=store, progress=progress)
            try:
                first = engine.run(RunOptions(command="demo"))
                refused = None
            except SafeguardRefused as exc:
                refused = exc
        if refused is not None:
            # The synthetic org starts with stale, hand-made team rows: show the safeguard at
            # work, then apply the plan the way an operator would after reviewing it.
            first = _approve_and_apply(console, settings, store, base, refused)
        first_writes = emu.log.count(kind="write") - writes_before
        first_calls = emu.log.count() - calls_before

        _print_first_run(console, store, first, first_writes, first_calls, emu)

        writes_mid = emu.log.count(kind="write")
        calls_mid = emu.log.count()
        with progress_bar(console, transient=True) as progress:
            second = Engine.from_settings(settings, store=store, progress=progress).run(
                RunOptions(command="demo")
            )
        second_writes = emu.log.count(kind="write") - writes_mid
        second_calls = emu.log.count() - calls_mid
        console.print(
            f"\n[bold]Second run[/] ({second.status}): plan "
            f"{sum((second.stats.plan or {}).values())} operations, "
            f"[bold]{second_writes} write calls[/], {second_calls} API calls in all "
            "(incremental pulls only)."
        )
        with store.session() as s:
            alerts = list(s.scalars(select(AlertOutbox).where(AlertOutbox.sink == "log")))
            accounts_total = s.scalar(select(func.count(Account.account_id)))
        if alerts:
            kinds: dict[str, int] = {}
            for a in alerts:
                kinds[a.kind] = kinds.get(a.kind, 0) + 1
            console.print(
                f"\n[bold]Alerts[/] (log sink): {len(alerts)} recorded ("
                + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
                + ")"
            )
            for a in alerts[:10]:
                payload = a.payload or {}
                console.print(f"  • {payload.get('title') or a.kind}")
        _print_handbook_signals(console, store, engine.mapping)
        console.print(
            f"\nStore: {db_path} ({accounts_total} accounts). Try: "
            f"TEAMSYNC_DATABASE_URL=sqlite:///{db_path} teamsync status"
        )
        console.print(f"Log lines of the demo: {log_path}")
        log_file.close()
        return 0 if second_writes == 0 and first.exit_code in (0, 1) else 1


def _approve_and_apply(
    console: Console, settings: Any, store: Any, base: Path, refused: Exception
) -> Any:
    """Review the refused plan, write it to a file, and apply exactly that plan."""
    from sync.cli.planview import PlanFilter, describe, operation_records, render_plan_lines
    from sync.cli.review import write_plan_file
    from sync.engine import Engine, RunOptions
    from sync.stages.approval import ApprovedPlan

    console.print(f"\n[yellow]The mass-change safeguard refused the first run:[/] {refused}")
    with progress_bar(console, transient=True) as progress:
        engine = Engine.from_settings(settings, store=store, progress=progress)
        planned = engine.run(RunOptions(command="plan", dry_run=True))
    lines = describe(store, engine.mapping, operation_records(store, planned.run_id))
    plan_path = write_plan_file(engine, planned, base / "plan.json")
    # Show the reviewer two accounts of the plan, one of them losing a team member.
    deleting = [ln.account_id or "" for ln in lines if ln.action == "delete"][:1]
    sample = PlanFilter(accounts=[*deleting, lines[0].account_id or ""]).apply(lines)
    console.print()
    render_plan_lines(
        console,
        sample,
        fmt="table",
        title=f"The plan to review (2 of {len({ln.account_id for ln in lines})} accounts)",
        stream=console.file,
    )
    console.print(
        f"Written to {plan_path} ({len(lines)} operations). The demo approves it and applies "
        f"exactly that plan, as [bold]teamsync run --plan {plan_path}[/] would after a review "
        "of [bold]teamsync plan[/]."
    )
    with progress_bar(console, transient=True) as progress:
        engine = Engine.from_settings(settings, store=store, progress=progress)
        return engine.run(RunOptions(command="demo", approved=ApprovedPlan.load(plan_path)))


def _print_first_run(
    console: Console,
    store: Store,
    result: RunResult,
    writes: int,
    calls: int,
    emu: RunningEmulators,
) -> None:
    stats = result.stats
    console.print(
        f"\n[bold]First run[/] ({result.status}, exit {result.exit_code}) in "
        f"{stats.seconds} s: {calls} API calls, {writes} of them writes"
    )
    seg = Table(title="Accounts by segment")
    seg.add_column("segment")
    seg.add_column("accounts", justify="right")
    for name, n in sorted((stats.segments or {}).items()):
        seg.add_row(name, str(n))
    console.print(seg)
    changes = Table(title="Changes written")
    changes.add_column("object")
    changes.add_column("action")
    changes.add_column("records", justify="right")
    pushed = stats.pushed.succeeded if stats.pushed else {}
    for kind, n in sorted(pushed.items()):
        system, obj, action = kind.split(".")
        changes.add_row(f"{system}.{obj}", action, str(n))
    failed = stats.pushed.failed if stats.pushed else {}
    for kind, n in sorted(failed.items()):
        system, obj, action = kind.split(".")
        changes.add_row(f"{system}.{obj}", f"{action} (failed)", str(n))
    console.print(changes)
    flags = Table(title="Risk flags")
    flags.add_column("flag")
    flags.add_column("accounts", justify="right")
    for name, n in sorted((stats.flags or {}).items(), key=lambda kv: -kv[1]):
        flags.add_row(name, str(n))
    console.print(flags)
    calls_table = Table(title="Write calls by API and object")
    calls_table.add_column("api")
    calls_table.add_column("object")
    calls_table.add_column("operation")
    calls_table.add_column("calls", justify="right")
    for api, objects in sorted(emu.log.summary().items()):
        for obj, kinds in sorted(objects.items()):
            for op, n in sorted((kinds.get("write") or {}).items()):
                calls_table.add_row(api, obj, op, str(n))
    console.print(calls_table)


def _print_handbook_signals(console: Console, store: Any, mapping: Any) -> None:
    """What the handbook asks for beyond the team: the Yellow triage digest, the handoff CTA,
    an overdue-coverage alert, and that prospects got no red alert or Risk CTA."""
    from sync.store.models import Account, AlertOutbox, CtaLink, Operation, RawRecord

    risk_flags = [f for f, c in mapping.gainsight.cta.flags.items() if c.signal == "risk"]
    handoff_flags = [f for f, c in mapping.gainsight.cta.flags.items() if c.signal == "handoff"]
    with store.session() as s:
        log_alerts = list(
            s.scalars(select(AlertOutbox).where(AlertOutbox.sink == "log").order_by(AlertOutbox.id))
        )
        prospects = set(
            s.scalars(
                select(Account.account_id).where(Account.lifecycle == mapping.lifecycle.prospect)
            )
        )
        red_prospects = s.scalar(
            select(func.count(Account.account_id)).where(
                Account.lifecycle == mapping.lifecycle.prospect,
                Account.health_band == mapping.health.red,
            )
        )
        links = list(s.scalars(select(CtaLink)))
        handoff_ops = list(
            s.scalars(
                select(Operation).where(
                    Operation.object == "CallToAction",
                    Operation.action == "create",
                    Operation.status == "done",
                )
            )
        )
        gs_names = {
            r.record_id: (r.data or {}).get("Name")
            for r in s.scalars(
                select(RawRecord).where(
                    RawRecord.system == "gainsight", RawRecord.object == "GsUser"
                )
            )
        }
    handoff_ops = [op for op in handoff_ops if (op.previous or {}).get("flag") in handoff_flags]
    console.print("\n[bold]The handbook's processes[/] (first run)")
    digests = [a for a in log_alerts if a.kind == "triage_digest"]
    console.print(
        f"  Yellow triage: {len(digests)} digests, one per CSM, every "
        f"{mapping.triage.every_days} days"
    )
    if digests:
        d = digests[0].payload
        console.print(f"    e.g. {d['title']}")
        for entry in d["accounts"][:3]:
            console.print(
                f"      - {entry['name']}: {entry['score']:g} ({entry['band']}), "
                f"trend {entry['trend'] or 'n/a'}"
            )
    console.print(f"  Handoff CTAs opened: {len(handoff_ops)}")
    if handoff_ops:
        op = handoff_ops[0]
        payload = op.payload or {}
        owner = gs_names.get(str(payload.get("OwnerId")), "no owner")
        tasks = len(str(payload.get("Comments") or "").splitlines())
        console.print(
            f"    e.g. {payload.get('Name')} ({payload.get('type')} / {payload.get('reason')}) "
            f"to {owner}, {tasks} checklist tasks, due {payload.get('DueDate')}"
        )
    coverage = [a for a in log_alerts if a.kind == "coverage_overdue"]
    console.print(f"  Overdue-coverage alerts: {len(coverage)}")
    if coverage:
        c = coverage[0].payload
        dri = c["team"]["dri"] or {}
        console.print(
            f"    e.g. {c['title']} -> {dri.get('name') or 'nobody'} ({dri.get('role_name')})"
        )
    red_alerts = [
        a
        for a in log_alerts
        if a.kind in ("entered_red", "already_red", "reminder") and a.account_id in prospects
    ]
    risk_ctas = [k for k in links if k.flag in risk_flags and k.account_id in prospects]
    console.print(
        f"  Prospects: {len(prospects)} ({red_prospects} Red, flagged RED_HEALTH): "
        f"{len(red_alerts)} red-health alerts, {len(risk_ctas)} Risk CTAs"
    )
