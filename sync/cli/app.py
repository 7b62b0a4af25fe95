"""The ``teamsync`` command line (thin: parse, call the engine, map errors to exit codes).

Exit codes (DESIGN.md section 4): 0 success · 1 finished, some records failed (quarantined) ·
2 configuration or usage error, nothing written · 3 an upstream API unreachable, refusing auth
or out of daily quota · 4 safeguard refused a mass change · 5 the state store is unavailable ·
75 another run holds the lock, or the run was interrupted by SIGTERM.

Conventions: ``-h`` / ``--help`` everywhere, ``--version``; the global options (``--config``,
``-v``) may come before or after the subcommand; human output on stdout, log lines on stderr.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import structlog
import typer
from rich.console import Console
from typer.core import TyperGroup

from config.errors import ConfigurationError, LockHeld, StoreUnavailable, TeamsyncError
from config.settings import Settings, load_settings, unknown_env_names
from sync.streams import OPTIONS
from sync.version import VERSION

HELP = {"help_option_names": ["-h", "--help"]}
# Global options (on the callback) that may also be written after the subcommand.
_GLOBAL_VALUE_OPTIONS = ("--config",)
_GLOBAL_FLAGS = re.compile(r"^(-v+|--verbose)$")


def hoist_global_options(args: list[str]) -> list[str]:
    """Move global options found after the subcommand in front of it, so
    ``teamsync run --config x.toml -v`` means ``teamsync --config x.toml -v run``."""
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":  # noqa: S105 - the end-of-options marker, not a password
            rest.extend(args[i:])
            break
        if token in _GLOBAL_VALUE_OPTIONS and i + 1 < len(args):
            hoisted += [token, args[i + 1]]
            i += 2
            continue
        if token.split("=", 1)[0] in _GLOBAL_VALUE_OPTIONS or _GLOBAL_FLAGS.match(token):
            hoisted.append(token)
        else:
            rest.append(token)
        i += 1
    return hoisted + rest


class _Group(TyperGroup):
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(list(args)))


if TYPE_CHECKING:
    from sync.engine import RunResult

app = typer.Typer(
    name="teamsync",
    help="Keep account teams consistent between Salesforce and Gainsight.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=HELP,
    cls=_Group,
)
db_app = typer.Typer(help="State store maintenance.", no_args_is_help=True, context_settings=HELP)
alerts_app = typer.Typer(help="Alerts.", no_args_is_help=True, context_settings=HELP)
app.add_typer(db_app, name="db")
app.add_typer(alerts_app, name="alerts")
quarantine_app = typer.Typer(
    help="Records that failed: list, retry, dismiss.", no_args_is_help=True
)
app.add_typer(quarantine_app, name="quarantine")


def _consoles() -> tuple[Console, Console]:
    # Made per invocation: Rich reads NO_COLOR (and the terminal) when a console is created.
    # Off a terminal (a pipe, a file, cron mail) tables are drawn full width instead of being
    # wrapped at Rich's default of 80 columns; COLUMNS still wins when set.
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 240
    return Console(soft_wrap=True, width=width), Console(stderr=True, soft_wrap=True)


out, err = _consoles()

T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML settings file (wins over TEAMSYNC_CONFIG); the environment wins over it.",
        exists=False,
    ),
]


class _State:
    config: Path | None = None
    verbosity: int = 0
    logging_configured: bool = False


_state = _State()


def _show_version(value: bool) -> None:
    if value:
        print(f"teamsync {VERSION}")
        raise typer.Exit(0)


@app.callback()
def _main(
    config: ConfigOption = None,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, help="More log lines on stderr (-v INFO, -vv DEBUG)."
        ),
    ] = 0,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """teamsync: account teams in sync between Salesforce and Gainsight."""
    global out, err
    out, err = _consoles()
    _state.config = config
    _state.verbosity = verbose
    _state.logging_configured = False


# --- plumbing -----------------------------------------------------------------------------
def _settings(**overrides: Any) -> Settings:
    settings = load_settings(_state.config, **overrides)
    from sqlalchemy.engine import make_url

    from sync.logging import configure_logging

    try:
        db_password = make_url(settings.database_url).password
    except Exception:  # noqa: BLE001 - the store reports a malformed URL itself
        db_password = None
    configure_logging(
        settings.log_format,
        settings.log_level,
        secrets=[
            s.get_secret_value() if s is not None else None
            for s in (
                settings.salesforce_access_token,
                settings.salesforce_client_secret,
                settings.gainsight_access_key,
                settings.alert_webhook_secret,
                settings.alert_slack_webhook_url,
                settings.heartbeat_url,
            )
        ]
        + [str(db_password) if db_password else None],
        verbosity=_state.verbosity,
    )
    _state.logging_configured = True
    log = structlog.get_logger("teamsync.cli")
    for name, close in unknown_env_names():
        log.warning(
            "unknown setting in the environment (ignored)",
            variable=name,
            did_you_mean=close,
        )
    return settings


def _durable(settings: Settings) -> Settings:
    """Commands that write the store refuse one that would be lost with the container."""
    from sync.store.durable import check_durable_store

    check_durable_store(settings)
    return settings


def _export_metrics(settings: Settings, store: Any, outcome: str) -> None:
    """One-shot runs: the metrics to TEAMSYNC_METRICS_FILE (node-exporter textfile) and/or
    TEAMSYNC_PUSHGATEWAY_URL.  A failure here is logged and never changes the exit code."""
    if settings.metrics_file is None and not settings.pushgateway_url:
        return
    import httpx

    from connectors.tls import ssl_context
    from sync.metrics import Metrics

    log = structlog.get_logger("teamsync.metrics")
    metrics = Metrics(VERSION)
    if outcome in ("lock_held", "store_unavailable"):
        metrics.count_outcome(outcome)
    if outcome != "store_unavailable":
        metrics.observe(store)
    if settings.metrics_file is not None:
        try:
            metrics.write_textfile(settings.metrics_file)
        except OSError as exc:
            log.warning("metrics file not written", path=str(settings.metrics_file),
                        error=exc.strerror or type(exc).__name__)  # fmt: skip
    if settings.pushgateway_url:
        try:
            metrics.push(settings.pushgateway_url, verify=ssl_context(settings.ca_bundle))
        except (httpx.HTTPError, OSError) as exc:
            log.warning("metrics not pushed", error=type(exc).__name__)


def _heartbeat(settings: Settings) -> None:
    if settings.heartbeat_url is not None:
        from sync.heartbeat import ping

        ping(settings.heartbeat_url.get_secret_value(), ca_bundle=settings.ca_bundle)


def _tell_store_unavailable(settings: Settings, exc: TeamsyncError) -> None:
    """The outbox is in the store: send the sync-health alert straight to the sinks."""
    from sync.alerts.health import notify_store_unavailable
    from sync.alerts.sinks import build_sinks

    try:
        sinks = build_sinks(settings)
    except TeamsyncError as problem:
        structlog.get_logger("teamsync.cli").error("alert sinks unusable", error=str(problem))
        return
    notify_store_unavailable(sinks, str(exc), spool_dir=settings.data_dir)


def require_emulators() -> None:
    """`demo` and `emulate` need the emulators extra (left out of the production image)."""
    import importlib.util

    missing = [m for m in ("emulators", "trustme") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigurationError(
            "the emulators are not installed here (the production image leaves them out): "
            "pip install 'teamsync[emulators]'"
        )


def _fail(exc: BaseException, code: int) -> typer.Exit:
    from sync.logging import configure_logging, current_format

    if not _state.logging_configured:  # failed before the settings were read
        fmt = os.environ.get("TEAMSYNC_LOG_FORMAT", "").strip().lower()
        configure_logging(fmt if fmt in ("json", "console") else None)
        _state.logging_configured = True
    if current_format() == "json":  # a JSON log stream stays JSON
        structlog.get_logger("teamsync.cli").error("command failed", error=str(exc), exit_code=code)
    else:
        err.print(f"[bold red]teamsync:[/] {exc}", markup=True, highlight=False)
    return typer.Exit(code)


def _guard(fn: Callable[[], T]) -> T:
    """Run ``fn``; translate teamsync errors into their exit codes with a clear message.

    A database error that reaches this far (from any command) is the store failing: one line,
    exit 5, never a traceback that would print SQL parameters.
    """
    import sqlite3

    from sqlalchemy.exc import SQLAlchemyError

    from sync.store.errors import store_unavailable

    try:
        return fn()
    except TeamsyncError as exc:
        raise _fail(exc, exc.exit_code) from None
    except (SQLAlchemyError, sqlite3.Error) as exc:
        failure = store_unavailable(exc, "(state store)")
        raise _fail(failure, failure.exit_code) from None
    except KeyboardInterrupt:
        raise _fail(RuntimeError("interrupted"), 130) from None


class StopFlag:
    """Set by SIGTERM / SIGINT: the run finishes its current batch, records progress, stops."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self) -> bool:
        return self.event.is_set()

    def set(self, *_: Any) -> None:
        if not self.event.is_set():
            structlog.get_logger("teamsync.cli").warning(
                "stopping after the current batch (signal received)"
            )
        self.event.set()


@contextmanager
def _signals(flag: StopFlag) -> Iterator[None]:
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError):  # not the main thread (tests)
            previous[sig] = signal.signal(sig, flag.set)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _parse_date(value: str, name: str) -> datetime:
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"{name}: not a date (use YYYY-MM-DD or ISO-8601): {value!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def progress_bar(console: Console) -> Any:
    from sync.cli.reports import progress_bar as bar

    return bar(console)


def _print_summary(result: RunResult) -> None:
    from sync.cli.reports import render_run_summary

    render_run_summary(out, result)
    if result.status == "interrupted":
        # Exit 75: say where it stopped (the next run resumes there).
        err.print(f"teamsync: {result.stats.error or 'interrupted'}", highlight=False)


# --- commands -----------------------------------------------------------------------------
@app.command()
def run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan only; write nothing.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Re-read everything (full resync).")] = False,
    plan_file: Annotated[
        Path | None,
        typer.Option(
            "--plan",
            help="Apply only the operations of this approved plan (`teamsync plan --out`); "
            "refuse (exit 4) if the re-computed plan holds more, or the file is too old.",
        ),
    ] = None,
    allow_mass_change: Annotated[
        bool,
        typer.Option(
            "--allow-mass-change", help="Apply a plan above the safeguard (needs --max-changes)."
        ),
    ] = False,
    max_changes: Annotated[
        int | None,
        typer.Option("--max-changes", min=0, help="Refuse a plan of more operations than this."),
    ] = None,
    full_gainsight: Annotated[
        bool,
        typer.Option(
            "--full-gainsight",
            help="Re-read the Gainsight streams in full (e.g. daily; the rest incrementally).",
        ),
    ] = False,
) -> None:
    """One sync run (what cron calls)."""
    from sync.engine import Engine, RunOptions
    from sync.stages.approval import ApprovedPlan
    from sync.stages.preflight import PreflightFailed

    flag = StopFlag()

    def go() -> int:
        if allow_mass_change and max_changes is None:
            raise ConfigurationError(
                "--allow-mass-change needs --max-changes N (the most operations you accept); "
                "or approve the plan itself: teamsync plan --out plan.json, then "
                "teamsync run --plan plan.json"
            )
        if plan_file is not None and allow_mass_change:
            raise ConfigurationError("--plan and --allow-mass-change exclude each other")
        approved = ApprovedPlan.load(plan_file) if plan_file is not None else None
        settings = _durable(_settings())
        engine: Engine | None = None
        outcome = "failed"
        try:
            with progress_bar(err) as progress, _signals(flag):
                engine = Engine.from_settings(settings, should_stop=flag, progress=progress)
                result = engine.run(
                    RunOptions(
                        dry_run=dry_run,
                        full=full,
                        allow_mass_change=allow_mass_change,
                        max_changes=max_changes,
                        approved=approved,
                        full_gainsight=full_gainsight,
                    )
                )
            outcome = result.status
        except PreflightFailed as exc:
            from sync.cli.reports import render_preflight

            render_preflight(err, exc.report)
            outcome = "failed"
            raise
        except LockHeld:
            outcome = "lock_held"
            raise
        except StoreUnavailable as exc:
            outcome = "store_unavailable"
            if not dry_run:
                _tell_store_unavailable(settings, exc)
            raise
        finally:
            if engine is not None:
                _export_metrics(settings, engine.store, outcome)
                # Hand the database connections back now (a daemon or a test harness calling
                # the command in-process would otherwise hold a pool per run).
                engine.store.dispose()
        if not dry_run and result.status in ("succeeded", "partial"):
            _heartbeat(settings)
        _print_summary(result)
        return result.exit_code

    raise typer.Exit(_guard(go))


@app.command()
def plan(
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="table (plain full-width text off a terminal), json, markdown or csv.",
            case_sensitive=False,
        ),
    ] = "table",
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
    account: Annotated[
        list[str] | None,
        typer.Option("--account", help="Only this account (Id or part of its name); repeatable."),
    ] = None,
    segment: Annotated[
        list[str] | None, typer.Option("--segment", help="Only this segment; repeatable.")
    ] = None,
    obj: Annotated[
        list[str] | None,
        typer.Option("--object", help="Only team, account, company or cta; repeatable."),
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", help="Only create, update, delete or close; repeatable."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Operations shown (table, markdown).")
    ] = None,
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write the whole plan (filters only change what is shown) for review and "
            "`teamsync run --plan FILE`.",
        ),
    ] = None,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode",
            help="Exit 0 nothing to do, 2 changes, 4 the safeguard would refuse; errors exit 1.",
        ),
    ] = False,
) -> None:
    """The same as `run --dry-run`: every operation, by account, with its reason."""
    from sync.cli.planview import FORMATS, PlanFilter
    from sync.cli.review import print_plan, write_plan_file
    from sync.engine import Engine, RunOptions

    chosen = "json" if as_json else fmt.lower()

    def go() -> int:
        if chosen not in FORMATS:
            raise ConfigurationError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        filt = PlanFilter(account or [], segment or [], obj or [], kind or [])
        settings = _durable(_settings())
        with progress_bar(err) as progress:
            engine = Engine.from_settings(settings, progress=progress)
            result = engine.run(RunOptions(dry_run=True, command="plan"))
        written = None
        if out_file is not None:
            written = write_plan_file(engine, result, out_file)
        print_plan(out, engine, result, filt, fmt=chosen, limit=limit, written=written)
        if detailed_exitcode:
            if result.refused or result.stats.safeguard:
                return 4
            return 2 if result.counts.total else 0
        return result.exit_code

    if detailed_exitcode:
        try:
            code = _guard(go)
        except typer.Exit as exc:
            # Terraform's convention: 2 means "changes", so an error is 1 (3 and 75 stay).
            raise typer.Exit(1 if exc.exit_code == 2 else exc.exit_code) from None
        raise typer.Exit(code)
    raise typer.Exit(_guard(go))


@app.command()
def backfill(
    since: Annotated[str, typer.Option("--since", help="Start of the window (YYYY-MM-DD).")],
    until: Annotated[str | None, typer.Option("--until", help="End (exclusive).")] = None,
    objects: Annotated[
        str | None,
        typer.Option("--objects", help=f"Comma-separated: {', '.join(OPTIONS)} (default all)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Re-pull and plan only.")] = False,
) -> None:
    """Re-pull a window, with a progress bar on a terminal; resumable after interruption."""
    from sync.engine import Engine, RunOptions

    flag = StopFlag()

    def go() -> int:
        start = _parse_date(since, "--since")
        end = _parse_date(until, "--until") if until else None
        if end is not None and end <= start:
            raise ConfigurationError("--until must be after --since")
        streams = None
        if objects:
            names = [o.strip().lower() for o in objects.split(",") if o.strip()]
            unknown = [n for n in names if n not in OPTIONS]
            if unknown:
                raise ConfigurationError(
                    f"--objects: unknown {', '.join(unknown)} (known: {', '.join(OPTIONS)})"
                )
            streams = [OPTIONS[n] for n in names]
        settings = _durable(_settings())
        with progress_bar(err) as progress, _signals(flag):
            engine = Engine.from_settings(settings, should_stop=flag, progress=progress)
            result = engine.run(
                RunOptions(
                    dry_run=dry_run,
                    command="backfill",
                    backfill_since=start,
                    backfill_until=end,
                    streams=streams,
                )
            )
        _print_summary(result)
        return result.exit_code

    raise typer.Exit(_guard(go))


@app.command()
def daemon(
    cron: Annotated[
        str | None, typer.Option("--cron", help='Schedule, e.g. "*/15 * * * *".')
    ] = None,
    max_runs: Annotated[
        int | None, typer.Option("--max-runs", help="Stop after this many runs (tests).")
    ] = None,
) -> None:
    """Run on a schedule until SIGTERM (a run in progress finishes its current batch)."""
    from sync.cli.scheduler import run_daemon

    flag = StopFlag()

    def go() -> int:
        settings = _durable(_settings())
        with _signals(flag):
            return run_daemon(settings, cron or settings.daemon_cron, flag, max_runs=max_runs)

    raise typer.Exit(_guard(go))


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Dead-man check: exit 1 when the last completed run is older than --max-age "
            "or the last run failed (for probes and cron monitors).",
        ),
    ] = False,
    max_age: Annotated[
        str, typer.Option("--max-age", help="With --check: e.g. 90m, 2h, 1d.")
    ] = "2h",
) -> None:
    """Last runs, watermarks, quarantined records, API usage, pending alerts."""
    from sync.cli.reports import dead_man_check, parse_duration, render_check, render_status
    from sync.store import Store

    def go() -> int:
        limit = parse_duration(max_age, "--max-age")
        settings = _settings()
        store = Store(settings.database_url, must_exist=True)  # never creates a store
        store.check_schema(create_if_empty=False)
        if check:
            verdict = dead_man_check(store, limit)
            render_check(out, verdict, as_json=as_json)
            return 0 if verdict.ok else 1
        from mappings.schema import load_mapping

        render_status(out, store, as_json=as_json, mapping=load_mapping(settings.mapping))
        return 0

    raise typer.Exit(_guard(go))


@app.command()
def audit(
    fmt: Annotated[
        str, typer.Option("--format", help="table, csv or html.", case_sensitive=False)
    ] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
) -> None:
    """Account-team coverage report."""
    from sync.cli.reports import render_audit
    from sync.store import Store

    def go() -> int:
        if fmt.lower() not in ("table", "csv", "html"):
            raise ConfigurationError(f"--format must be table, csv or html, not {fmt!r}")
        settings = _settings()
        store = Store(settings.database_url, must_exist=True)  # never creates a store
        store.check_schema(create_if_empty=False)
        from mappings.schema import load_mapping

        mapping = load_mapping(settings.mapping)
        links = {
            "salesforce_url": settings.salesforce_instance_url,
            "gainsight_url": settings.gainsight_base_url,
        }
        if output is not None:
            from sync.cli.review import open_private

            with open_private(output) as fh:  # 0600: the audit names people
                render_audit(out, store, mapping, fmt.lower(), fh, **links)
            out.print(f"audit written to {output}")
        else:
            render_audit(out, store, mapping, fmt.lower(), sys.stdout, **links)
        return 0

    raise typer.Exit(_guard(go))


@app.command()
def preflight(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Check every prerequisite of the org and tenant; exit 2 when a run would be refused."""
    from mappings.schema import load_mapping
    from sync.cli.reports import render_preflight
    from sync.stages.preflight import preflight_from_settings

    def go() -> int:
        settings = _settings()
        report = preflight_from_settings(settings, load_mapping(settings.mapping), full=True)
        render_preflight(out, report, as_json=as_json)
        return 0 if report.ok else 2

    raise typer.Exit(_guard(go))


@app.command()
def emulate(
    accounts: Annotated[int, typer.Option("--accounts", min=0, help="Accounts in the org.")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic org.")] = 7,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    sf_port: Annotated[int, typer.Option("--sf-port", help="Salesforce port (0: any).")] = 0,
    gs_port: Annotated[int, typer.Option("--gs-port", help="Gainsight port (0: any).")] = 0,
    tls_dir: Annotated[
        Path | None, typer.Option("--tls-dir", help="Where to write the CA and key files.")
    ] = None,
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            help="strict (what real orgs and tenants do; the default) or lenient (the old, "
            "forgiving answers).",
        ),
    ] = "strict",
) -> None:
    """Serve the Salesforce and Gainsight emulators with a synthetic org for manual tries."""

    def go() -> int:
        require_emulators()
        from emulators.profile import PROFILE_NAMES
        from emulators.serve import serve_forever

        if profile not in PROFILE_NAMES:
            raise ConfigurationError(
                f"--profile: {profile!r} is not one of {', '.join(PROFILE_NAMES)}"
            )
        serve_forever(
            accounts=accounts,
            seed=seed,
            host=host,
            sf_port=sf_port,
            gs_port=gs_port,
            tls_dir=tls_dir,
            profile=profile,
        )
        return 0

    raise typer.Exit(_guard(go))


@app.command()
def demo(
    accounts: Annotated[int, typer.Option("--accounts", min=30, help="Accounts in the org.")] = 300,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic org.")] = 7,
    keep: Annotated[
        Path | None, typer.Option("--workdir", help="Keep the store and certificates here.")
    ] = None,
    profile: Annotated[
        str, typer.Option("--profile", help="Emulator profile: strict (default) or lenient.")
    ] = "strict",
) -> None:
    """Start the emulators, run a full sync into a fresh SQLite store, then a no-op run."""

    def go() -> int:
        require_emulators()
        from emulators.profile import PROFILE_NAMES
        from sync.cli.demo import run_demo

        if profile not in PROFILE_NAMES:
            raise ConfigurationError(
                f"--profile: {profile!r} is not one of {', '.join(PROFILE_NAMES)}"
            )
        return run_demo(out, accounts=accounts, seed=seed, workdir=keep, profile=profile)

    raise typer.Exit(_guard(go))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the store's migrations."""
    from sync.store import Store

    def go() -> int:
        settings = _durable(_settings())
        store = Store(settings.database_url)
        # Under the run lock: never while a run (or another upgrade) works on the store.
        with store.lock("run", lease_seconds=settings.lock_lease_seconds):
            before, after = store.upgrade()
        if before == after:
            out.print(f"store {store.safe_url} is up to date (revision {after})")
        else:
            out.print(f"store {store.safe_url} upgraded from {before or 'empty'} to {after}")
        return 0

    raise typer.Exit(_guard(go))


@alerts_app.command("test")
def alerts_test() -> None:
    """Send a sample alert to each configured sink."""
    from sync.alerts import send_test_alerts

    def go() -> int:
        settings = _settings()
        results = send_test_alerts(settings)
        failed = 0
        for sink, outcome in results.items():
            ok = outcome == "sent"
            failed += 0 if ok else 1
            out.print(f"{sink}: {'sent' if ok else outcome}")
        return 3 if failed else 0

    raise typer.Exit(_guard(go))


# --- review: runs, show, history, quarantine ----------------------------------------------
def _read_store() -> Any:
    from sync.store import Store

    settings = _settings()
    store = Store(settings.database_url, must_exist=True)  # never creates a store
    store.check_schema(create_if_empty=False)
    return settings, store


@app.command()
def runs(
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many runs.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Past runs: when, command, status, counts, duration."""
    from sync.cli.review import render_runs

    def go() -> int:
        _, store = _read_store()
        render_runs(out, store, limit, as_json=as_json)
        return 0

    raise typer.Exit(_guard(go))


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="A run Id (or its first characters).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    account: Annotated[
        list[str] | None, typer.Option("--account", help="Only this account; repeatable.")
    ] = None,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Only create, update, delete or close.")
    ] = None,
) -> None:
    """What one run changed (or planned), before → after, by account."""
    from mappings.schema import load_mapping
    from sync.cli.planview import PlanFilter
    from sync.cli.review import render_show

    def go() -> int:
        settings, store = _read_store()
        mapping = load_mapping(settings.mapping)
        filt = PlanFilter(account or [], [], [], kind or [])
        render_show(out, store, mapping, run_id, as_json=as_json, filt=filt)
        return 0

    raise typer.Exit(_guard(go))


@app.command()
def history(
    account: Annotated[str, typer.Argument(help="Account Id or (part of) its name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """An account's dated team, field and health changes."""
    from mappings.schema import load_mapping
    from sync.cli.review import render_history

    def go() -> int:
        settings, store = _read_store()
        render_history(out, store, load_mapping(settings.mapping), account, as_json=as_json)
        return 0

    raise typer.Exit(_guard(go))


@quarantine_app.command("list")
def quarantine_list(
    include_dismissed: Annotated[
        bool, typer.Option("--all", help="Dismissed records too.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Records that failed, with the reason and the account's name."""
    from sync.cli.review import render_quarantine

    def go() -> int:
        _, store = _read_store()
        render_quarantine(out, store, include_dismissed=include_dismissed, as_json=as_json)
        return 0

    raise typer.Exit(_guard(go))


@quarantine_app.command("retry")
def quarantine_retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Record numbers (#) to retry.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every dismissed record.")] = False,
) -> None:
    """Put dismissed records back: the next run plans and retries them."""
    from sqlalchemy import update

    from sync.cli.review import select_quarantine
    from sync.store.models import QuarantinedRecord

    def go() -> int:
        _, store = _read_store()
        chosen = select_quarantine(store, ids or [], every=every, dismissed=None)
        with store.session() as s:
            s.execute(
                update(QuarantinedRecord)
                .where(QuarantinedRecord.id.in_(chosen))
                .values(dismissed_at=None, dismissed_note=None, resolved_at=None)
            )
        out.print(
            f"{len(chosen)} record{'s' if len(chosen) != 1 else ''} queued: the next run "
            "(teamsync run) retries "
            + (", ".join(f"#{i}" for i in chosen) if chosen else "nothing")
        )
        return 0

    raise typer.Exit(_guard(go))


@quarantine_app.command("dismiss")
def quarantine_dismiss(
    ids: Annotated[list[int] | None, typer.Argument(help="Record numbers (#) to dismiss.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every open record.")] = False,
    note: Annotated[str, typer.Option("--note", help="Why (kept with the record).")] = "",
) -> None:
    """Acknowledge failing records: their operations are held back until `quarantine retry`."""
    from sqlalchemy import update

    from sync.cli.review import select_quarantine
    from sync.clock import utcnow
    from sync.store.models import QuarantinedRecord

    def go() -> int:
        _, store = _read_store()
        chosen = select_quarantine(store, ids or [], every=every, dismissed=False)
        with store.session() as s:
            s.execute(
                update(QuarantinedRecord)
                .where(QuarantinedRecord.id.in_(chosen))
                .values(dismissed_at=utcnow(), dismissed_note=note[:2000] or "dismissed")
            )
        out.print(
            f"{len(chosen)} record{'s' if len(chosen) != 1 else ''} dismissed "
            + (", ".join(f"#{i}" for i in chosen) if chosen else "")
            + "; `teamsync quarantine retry` puts them back"
        )
        return 0

    raise typer.Exit(_guard(go))


def main() -> None:
    try:
        app()
    except ConfigurationError as exc:  # raised while parsing options
        err.print(f"teamsync: {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
