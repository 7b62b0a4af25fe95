"""One run, end to end: lock → pull → map → plan → (safeguard) → push → alert → record.

    engine = Engine.from_settings(settings)
    result = engine.run(RunOptions(dry_run=True))
    result.exit_code   # 0 ok, 1 some records failed, 4 refused (see DESIGN.md section 4)

Level-triggered: every run maps every account from the store and plans the difference
between desired and actual state, so a run interrupted anywhere is repaired by the next one.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import structlog
from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from config.errors import Interrupted, SafeguardRefused, StoreUnavailable, TeamsyncError
from config.settings import Settings
from connectors.errors import RequestRejected
from mappings.schema import MappingFile, load_mapping
from sync import gctune
from sync.clock import utcnow
from sync.logging import bind_run, phase
from sync.ports import GainsightPort, SalesforcePort
from sync.stages import wipes
from sync.stages.approval import ApprovedPlan, describe_beyond, fingerprint, reconcile
from sync.stages.map import MappedChunk, Mapper
from sync.stages.plan import Op, PlanCounts, Planner, safeguard_refusal
from sync.stages.preflight import (
    Facts,
    Preflight,
    PreflightFailed,
    Report,
    store_preflight,
)
from sync.stages.preflight import fingerprint as preflight_fingerprint
from sync.stages.pull import ProgressFn, Puller, Vanished
from sync.stages.push import Pusher, quarantine_key
from sync.store import Store, quarantine
from sync.store.errors import store_unavailable
from sync.store.models import (
    CtaLink,
    Operation,
    PreflightReport,
    QuarantinedRecord,
    RawRecord,
    Run,
    TeamWipe,
    Watermark,
)
from sync.types import OpStatus, PushSummary, RunStats, RunStatus, System
from sync.version import VERSION

if TYPE_CHECKING:
    from connectors.gainsight import GainsightClient
    from connectors.salesforce import SalesforceClient
    from sync.alerts import Alerter
    from sync.alerts.health import SyncHealth

log = structlog.get_logger("teamsync.engine")

# Open Handoff CTAs are read back one by one (500 a call) at least this often; in between, a
# run reads only the CTAs closed since the last check (one call, usually).
HANDOFF_READ_ALL = timedelta(hours=24)

# Errors that mean a field is not what the mapping expects (missing, no access, a picklist
# value the org lacks): they drop the stored preflight report so the next run re-checks.
FIELD_ERROR_CODES = frozenset(
    {
        "INVALID_FIELD",
        "INVALID_TYPE",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "FIELD_INTEGRITY_EXCEPTION",
        "GSOBJ_1002",
        "GSOBJ_1012",
    }
)


# The most accounts chunks waiting for a team re-read hold in memory: a run that plans few
# accounts among many re-reads a partly filled Id list instead (one more query per this many
# accounts at most).
GROUP_MAX_ACCOUNTS = 10_000


@contextmanager
def _timed(stats: RunStats, name: str) -> Iterator[None]:
    """Add the block's wall time to ``stats.phases[name]`` (seconds; the metrics read it)."""
    start = time.monotonic()
    try:
        yield
    finally:
        phases = stats.phases if stats.phases is not None else {}
        stats.phases = phases
        phases[name] = round(phases.get(name, 0.0) + time.monotonic() - start, 3)


@dataclass
class RunOptions:
    dry_run: bool = False
    full: bool = False
    allow_mass_change: bool = False
    command: str = "run"
    backfill_since: datetime | None = None
    backfill_until: datetime | None = None
    streams: list[str] | None = None  # backfill: only these streams
    skip_pull: bool = False
    # `run --plan`: apply only what this approved plan holds (refuse anything beyond it).
    approved: ApprovedPlan | None = None
    # `--allow-mass-change --max-changes N`: refuse a plan of more than N operations.
    max_changes: int | None = None
    full_gainsight: bool = False  # read the Gainsight streams in full (the others as usual)


@dataclass
class RunResult:
    run_id: str
    status: RunStatus
    exit_code: int
    stats: RunStats = field(default_factory=RunStats)
    refused: list[str] = field(default_factory=list)
    counts: PlanCounts = field(default_factory=PlanCounts)


class Engine:
    def __init__(
        self,
        settings: Settings,
        mapping: MappingFile,
        store: Store,
        salesforce: SalesforcePort,
        gainsight: GainsightPort,
        *,
        clock: Callable[[], datetime] = utcnow,
        should_stop: Callable[[], bool] = lambda: False,
        progress: ProgressFn | None = None,
        alerts: Alerter | None = None,
        health: SyncHealth | None = None,
        preflight: bool = True,
    ) -> None:
        self.settings = settings
        # ``base_mapping`` is the file as written; ``mapping`` is what this tenant needs (the
        # score read through a lookup when describe says so: see _apply_facts).
        self.base_mapping = mapping
        self.mapping = mapping
        self.preflight = preflight
        self.facts: Facts | None = None
        self.store = store
        self.sf = salesforce
        self.gs = gainsight
        self.clock = clock
        self.should_stop = should_stop
        self.progress = progress
        self.alerts = alerts
        self.health = health
        self.planner = Planner(mapping)
        self._vanished = Vanished()  # this run's records that vanished from a pull

    # --- construction from settings ---------------------------------------------------------
    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        store: Store | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        progress: ProgressFn | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> Engine:
        settings.require("salesforce", "gainsight")
        mapping = load_mapping(settings.mapping)
        store = store or Store(settings.database_url)
        sf, gs = build_clients(settings)
        from sync.alerts import Alerter

        alerts = Alerter.from_settings(settings, mapping, store, clock=clock)
        from sync.alerts.health import SyncHealth

        health = SyncHealth(
            store,
            alerts.sinks,
            partial_runs=settings.alert_partial_runs,
            spool_dir=settings.data_dir,
            clock=clock,
        )
        return cls(
            settings,
            mapping,
            store,
            sf,
            gs,
            should_stop=should_stop,
            progress=progress,
            clock=clock,
            alerts=alerts,
            health=health,
        )

    # --- the run ------------------------------------------------------------------------------
    def run(self, options: RunOptions | None = None) -> RunResult:
        """One run; a store that fails part-way raises StoreUnavailable (exit 5, one line)."""
        try:
            with gctune.tuned():
                return self._locked_run(options or RunOptions())
        except SQLAlchemyError as exc:
            # Errors about one statement's data that escaped per-record handling: still one
            # line and exit 5, never a traceback with SQL parameters.
            raise store_unavailable(exc, self.store.safe_url) from exc

    def _locked_run(self, options: RunOptions) -> RunResult:
        self._vanished = Vanished()
        run_id = str(uuid.uuid4())
        bind_run(run_id=run_id)
        started = time.monotonic()
        with self.store.lock("run", lease_seconds=self.settings.lock_lease_seconds) as lock:
            # First-run schema creation and migrations happen under the run lock: two first
            # runs never both create tables, and a second one never sees half a schema.
            self.store.check_schema(allow_behind=self.settings.auto_migrate)
            if self.settings.auto_migrate:
                # TEAMSYNC_AUTO_MIGRATE: under the run lock, so two pods never migrate at once.
                migrated = self.store.upgrade_if_behind()
                if migrated is not None:
                    log.info("store migrated", before=migrated[0], after=migrated[1])
            self._start_run(run_id, options)
            result = RunResult(run_id, RunStatus.RUNNING, 0, stats=RunStats(version=VERSION))
            try:
                self._run(run_id, options, result, lock.renew)
            except StoreUnavailable as exc:
                result.status = RunStatus.FAILED
                result.exit_code = exc.exit_code
                with contextlib.suppress(TeamsyncError, SQLAlchemyError):
                    self._finish_run(run_id, result, started, error=str(exc))
                log.error("run failed", error_type=type(exc).__name__, error=str(exc),
                          exit_code=exc.exit_code)  # fmt: skip
                raise
            except TeamsyncError as exc:
                if not options.dry_run and result.stats.alerts is None:
                    # Alerts are recorded while mapping: a failed push (or refused plan) must
                    # not hold back telling the team that an account turned red.
                    self._deliver_alerts(run_id, result.stats)
                result.status = (
                    RunStatus.REFUSED if isinstance(exc, SafeguardRefused) else RunStatus.FAILED
                )
                result.exit_code = exc.exit_code
                result.stats.error = str(exc)
                if isinstance(exc, SafeguardRefused) and options.backfill_since is None:
                    self._reread_next_time(result.stats)
                self._finish_run(run_id, result, started, error=str(exc))
                log.error(
                    "run failed",
                    error_type=type(exc).__name__,
                    error=str(exc),
                    exit_code=exc.exit_code,
                )
                self._sync_health(run_id, result, options, error=str(exc))
                raise
            except BaseException as exc:
                result.status = RunStatus.FAILED
                result.exit_code = 1
                with contextlib.suppress(TeamsyncError, SQLAlchemyError):
                    self._finish_run(run_id, result, started, error=type(exc).__name__)
                if isinstance(exc, Exception):
                    self._sync_health(
                        run_id, result, options, error=f"unexpected {type(exc).__name__}"
                    )
                raise
            if result.status == RunStatus.INTERRUPTED:
                # SIGTERM: progress is recorded and the next run resumes; exit 75 says so.
                where = result.stats.interrupted_at or "the run"
                result.exit_code = Interrupted.exit_code
                result.stats.error = str(Interrupted(where))
                log.warning("run interrupted", where=where, exit_code=result.exit_code)
            if result.status in ("succeeded", "partial") and not options.dry_run:
                self._retention(result)
            self._finish_run(run_id, result, started)
            self._sync_health(run_id, result, options)
            return result

    def _run(
        self, run_id: str, options: RunOptions, result: RunResult, renew: Callable[[], None]
    ) -> None:
        stats = result.stats
        if options.approved is not None:
            # Refuse a stale plan, or one made for another org or mapping, before any API call.
            options.approved.check_age(
                self.clock(), timedelta(seconds=self.settings.plan_max_age_seconds)
            )
            options.approved.check_fingerprint(self.input_fingerprint())
        # 0. Preflight (cheap part, cached in the store): refuse before writing anything.
        full_gainsight = options.full_gainsight
        if self.preflight:
            with phase("preflight"), _timed(stats, "preflight"):
                full_gainsight = self._run_preflight(stats) or full_gainsight
        if not options.full and self._gainsight_full_read_due():
            full_gainsight = True
        # 1. Pull
        if not options.skip_pull:
            with phase("pull"), _timed(stats, "pull"):
                puller = self._puller()
                window = None
                if options.backfill_since is not None:
                    window = (options.backfill_since, options.backfill_until)
                try:
                    pulled = puller.pull(
                        full=options.full,
                        window=window,
                        only=options.streams,
                        full_systems=[System.GAINSIGHT] if full_gainsight and not window else [],
                    )
                except RequestRejected as exc:
                    if exc.code in FIELD_ERROR_CODES:
                        self._forget_preflight(f"{exc.code} while pulling")
                    raise
                stats.pulled = {k: v.as_json() for k, v in pulled.items()}
                if window is None and (options.full or full_gainsight):
                    stats.gainsight_full = True
                self._refresh_handoff_ctas(
                    stats, read_all=window is None and (options.full or full_gainsight)
                )
                renew()
            if self.should_stop():
                result.status = RunStatus.INTERRUPTED
                # The two systems pull side by side: name where each of them stopped.
                last = {k.split(".", 1)[0]: k for k in pulled}
                stats.interrupted_at = (
                    "pull, in or after stream "
                    + "; ".join(f"{k} ({pulled[k].records} records read)" for k in last.values())
                    if last
                    else "pull, before the first stream"
                )
                return

        self.planner.fallback_owner = self._fallback_owner()
        self.planner.unowned = []
        # 2. Map and plan, one pass over the accounts in chunks.  The actual team of every
        # account in the plan is re-read right before its operations are stored; accounts
        # whose team rows changed are mapped and planned again.  Alerts see the final team.
        with phase("map"), _timed(stats, "map"):
            counts = PlanCounts()
            planned_accounts = 0
            invalid = 0
            skipped: list[str] = []
            segments: dict[str, int] = {}
            flags: dict[str, int] = {}
            mapped_total = 0
            total_accounts = self._account_count() if self.progress else None
            planned: list[Op] = []
            dismissed = self._dismissed_keys()
            held_back = 0
            with self.store.session() as s:
                s.execute(delete(Operation).where(Operation.run_id == run_id))
            mapper = self._mapper(run_id)
            puller = self._puller()
            walked = 0  # Account records seen: mapped, skipped or deleted
            keep_planned = options.approved is not None  # all ops held only to reconcile

            def finish(chunk: MappedChunk, ops: dict[str, list[Op]]) -> None:
                nonlocal invalid, mapped_total, held_back, planned_accounts, walked
                if not options.dry_run:
                    for account_id in mapper.record(chunk):  # the store refused these
                        ops.pop(account_id, None)
                invalid += self._quarantine_invalid(chunk, run_id)
                skipped.extend(chunk.skipped)
                mapped_total += len(chunk.items)
                walked += len(chunk.items) + len(chunk.skipped) + len(chunk.deleted)
                if self.progress is not None:
                    self.progress("map and plan accounts", walked, total_accounts)
                counts.managed_known[System.SALESFORCE] += chunk.managed_sf_rows
                counts.managed_known[System.GAINSIGHT] += chunk.managed_gs_fields
                for item in chunk.items:
                    segments[item.mapped.segment] = segments.get(item.mapped.segment, 0) + 1
                    for f in item.mapped.flags:
                        flags[f] = flags.get(f, 0) + 1
                chunk_ops = [op for account_id in sorted(ops) for op in ops[account_id]]
                if dismissed:
                    kept = [
                        op
                        for op in chunk_ops
                        if (op.system, op.object, quarantine_key(op)) not in dismissed
                    ]
                    held_back += len(chunk_ops) - len(kept)
                    chunk_ops = kept
                counts.add(chunk_ops)
                planned_accounts += len(ops)
                self._store_ops(run_id, chunk_ops)
                if keep_planned:
                    planned.extend(chunk_ops)
                if not options.dry_run:
                    self._record_wipes(chunk, run_id, stats)
                if self.alerts is not None and not options.dry_run:
                    self.alerts.observe(chunk, run_id)
                renew()

            # Chunks wait in a small group until their planned accounts fill a team re-read
            # query (Id lists as long as the query URI allows), then the group is re-read at
            # once and each chunk finished.
            # Memory stays flat in the number of accounts: a chunk with nothing planned and
            # no chunk waiting before it is finished at once (chunks still finish in order),
            # a waiting chunk keeps no planner input, and a group is re-read once it holds
            # GROUP_MAX_ACCOUNTS accounts even when its Id lists are not full.
            capacity = puller.team_reread_capacity()
            group: list[tuple[MappedChunk, dict[str, list[Op]]]] = []
            waiting = planned_waiting = 0
            for chunk in mapper.chunks():
                chunk_ops = self._plan(chunk)
                if not group and not chunk_ops:
                    finish(chunk, chunk_ops)
                    continue
                chunk.shed_inputs()
                group.append((chunk, chunk_ops))
                waiting += len(chunk.items)
                planned_waiting += len(chunk_ops)
                if planned_waiting >= capacity or waiting >= GROUP_MAX_ACCOUNTS:
                    for done_chunk, ops in self._reread(group, mapper, puller):
                        finish(done_chunk, ops)
                    group = []
                    waiting = planned_waiting = 0
            for done_chunk, ops in self._reread(group, mapper, puller):
                finish(done_chunk, ops)
            if self.alerts is not None and not options.dry_run:
                self.alerts.record_triage(run_id)  # [triage]: once per period, per CSM
            unowned = sorted(set(self.planner.unowned))
            invalid += self._quarantine_unowned(unowned, run_id)
            if unowned:
                stats.ctas_without_owner = len(unowned)
            stats.mapped = mapped_total
            stats.segments = segments
            stats.flags = flags
            stats.invalid_records = invalid
            stats.skipped_accounts = len(skipped)

        with phase("plan"), _timed(stats, "plan"):
            counts.vanished = {system: self._vanished.count(system) for system in System}
            if self._vanished.count():
                stats.vanished = self._vanished.by_object()
            result.counts = counts
            if held_back:
                stats.held_back = held_back
            stats.plan = dict(sorted(counts.by_kind.items()))
            stats.plan_destructive = dict(counts.destructive)
            stats.managed_known = dict(counts.managed_known)
            log.info(
                "planned",
                operations=counts.total,
                by_kind=stats.plan,
                destructive=counts.destructive,
                accounts=planned_accounts,
            )
            refusal = safeguard_refusal(
                counts, self.settings.mass_change_percent, self.settings.mass_change_min
            )
            result.refused = refusal
            if options.max_changes is not None and counts.total > options.max_changes:
                message = (
                    f"the plan holds {counts.total} operations, more than --max-changes "
                    f"{options.max_changes}"
                )
                if options.dry_run:
                    stats.safeguard = [*(stats.safeguard or []), message]
                else:
                    raise SafeguardRefused(message + "; review it with `teamsync plan`")
            if options.approved is not None:
                rec = reconcile(options.approved, planned, untouched_accounts=set(skipped))
                stats.approved_plan = {
                    "path": options.approved.path,
                    "approved": len(options.approved.digests),
                    "applying": rec.applying,
                    "skipped": [
                        {
                            "account_id": o.get("account_id"),
                            "summary": o.get("summary") or o.get("reason"),
                            "why": o["why"],
                        }
                        for o in rec.skipped
                    ],
                }
                if rec.beyond:
                    stats.approved_plan["beyond"] = len(rec.beyond)
                    raise SafeguardRefused(describe_beyond(options.approved, rec.beyond))
                # An approved plan is the review the mass-change safeguard asks for.
            elif refusal and not options.allow_mass_change:
                if options.dry_run:
                    stats.safeguard = refusal
                else:
                    raise SafeguardRefused(
                        "mass-change safeguard: "
                        + "; ".join(refusal)
                        + " (review it with `teamsync plan --out plan.json` and apply exactly "
                        "that with `teamsync run --plan plan.json`, or re-run with "
                        "--allow-mass-change --max-changes N)"
                    )
        if options.dry_run:
            result.status = RunStatus.DRY_RUN
            return
        if self._vanished.count():
            # The plan passed the safeguard: what vanished is deleted now, not before.
            stats.marked_deleted = self._vanished.apply(self.store)

        # 3. Push
        with phase("push"), _timed(stats, "push"):
            pusher = Pusher(
                self.store,
                self.sf,
                self.gs,
                self.mapping,
                run_id=run_id,
                bulk_threshold=self.settings.salesforce_bulk_threshold,
                clock=self.clock,
                should_stop=self.should_stop,
                on_batch=renew,
                progress=self.progress,
            )
            pushed = pusher.push()
            stats.pushed = PushSummary(
                succeeded=pushed.succeeded, failed=pushed.failed, adopted_ctas=pushed.adopted
            )
        if self._field_errors(run_id):
            # A field refused by the API: the stored preflight no longer holds (FLS, picklist
            # values or sharing changed); the next run checks again before writing.
            self._forget_preflight("a write was refused for a field")
        # 4. Alerts
        self._deliver_alerts(run_id, stats)
        failures = pushed.failures + invalid
        if pushed.interrupted:
            result.status = RunStatus.INTERRUPTED
            done = sum(pushed.succeeded.values()) + pushed.failures
            stats.interrupted_at = f"push, after {done} of {counts.total} planned operations"
        elif failures:
            result.status = RunStatus.PARTIAL
            result.exit_code = 1
        else:
            result.status = RunStatus.SUCCEEDED

    # --- helpers ------------------------------------------------------------------------------
    def _reread(
        self,
        group: list[tuple[MappedChunk, dict[str, list[Op]]]],
        mapper: Mapper,
        puller: Puller,
    ) -> list[tuple[MappedChunk, dict[str, list[Op]]]]:
        """Re-read the actual team of every account planned in these chunks (as few queries
        as the Id lists allow); accounts whose team rows changed are mapped and planned
        again."""
        planned = sorted(account_id for _, ops in group for account_id in ops)
        changed = puller.refresh_team_members(planned) if planned else set()
        if not changed:
            return group
        for chunk, ops in group:
            mine = {i.mapped.account_id for i in chunk.items} & changed
            for account_id in mine:
                ops.pop(account_id, None)
            for again in mapper.chunks(mine) if mine else ():
                chunk.replace(again)
                ops.update(self._plan(again))
        return group

    def _plan(self, chunk: MappedChunk) -> dict[str, list[Op]]:
        """Account -> its operations, for the accounts of a chunk that need any."""
        today = self.clock().date()
        out: dict[str, list[Op]] = {}
        for item in chunk.items:
            assert item.inputs is not None, "a chunk is planned before its inputs are shed"
            ops = self.planner.account_ops(item.inputs, item.mapped, item.open_ctas, today)
            if ops:
                out[item.mapped.account_id] = ops
        return out

    def _sync_health(
        self, run_id: str, result: RunResult, options: RunOptions, error: str | None = None
    ) -> None:
        """Record the run's sync-health condition (or its recovery) and send what is due.
        Never fails the run: its outcome is already recorded."""
        if self.health is None or options.dry_run:
            return
        try:
            keys = self.health.record(
                run_id,
                status=result.status,
                exit_code=result.exit_code,
                error=error,
                dry_run=options.dry_run,
            )
            if keys and self.alerts is not None:
                self.alerts.deliver(run_id)
        except TeamsyncError as exc:
            log.error("sync health alert not recorded", error=str(exc))
        except SQLAlchemyError as exc:
            log.error("sync health alert not recorded", error=type(exc).__name__)

    def input_fingerprint(self) -> dict[str, Any]:
        """What a plan is computed from: the mapping, both orgs, and the records per stream."""
        data: dict[str, Any] = {}
        with self.store.session() as s:
            for system, obj, n, newest in s.execute(
                select(
                    RawRecord.system, RawRecord.object, func.count(), func.max(RawRecord.stamp)
                ).group_by(RawRecord.system, RawRecord.object)
            ):
                data[f"{system}.{obj}"] = {
                    "records": int(n),
                    "newest": newest.isoformat() if newest is not None else None,
                }
        return fingerprint(
            mapping_path=self.settings.mapping,
            salesforce=self.settings.salesforce_instance_url,
            gainsight=self.settings.gainsight_base_url,
            data=dict(sorted(data.items())),
        )

    def _dismissed_keys(self) -> set[tuple[str, str, str]]:
        """Push-stage records an operator dismissed: their operations are held back."""
        with self.store.session() as s:
            return {
                (system, obj, record_id)
                for system, obj, record_id in s.execute(
                    select(
                        QuarantinedRecord.system,
                        QuarantinedRecord.object,
                        QuarantinedRecord.record_id,
                    ).where(
                        QuarantinedRecord.stage == "push",
                        QuarantinedRecord.dismissed_at.is_not(None),
                    )
                )
            }

    def _account_count(self) -> int:
        with self.store.session() as s:
            return int(
                s.scalar(
                    select(func.count()).where(
                        RawRecord.system == System.SALESFORCE, RawRecord.object == "Account"
                    )
                )
                or 0
            )

    def _retention(self, result: RunResult) -> None:
        """Prune history older than TEAMSYNC_RETENTION_DAYS in bounded batches; a failure
        here is logged and never fails the run (the next run tries again)."""
        days = self.settings.retention_days
        if not days:
            return
        from sync.store.retention import prune

        try:
            with _timed(result.stats, "retention"):
                pruned = prune(
                    self.store,
                    older_than=timedelta(days=days),
                    now=self.clock(),
                    batch_size=self.settings.retention_batch_size,
                )
        except (TeamsyncError, SQLAlchemyError) as exc:
            log.warning("retention failed; the next run tries again", error=type(exc).__name__)
            return
        result.stats.pruned = {**pruned.counts, "more": pruned.more}

    def _reread_next_time(self, stats: RunStats) -> None:
        """A refused run may have stored what a lying upstream answered (valid in shape, wrong
        in content: every score null, say).  Its streams are read again in full by the next
        run, so the store holds what is true, not what the refused run was told."""
        streams = sorted(stats.pulled or {})
        if not streams:
            return
        with self.store.session() as s:
            s.execute(
                update(Watermark)
                .where(Watermark.stream.in_(streams))
                .values(value=None, pull_started_at=None, pull_mode=None, cursor_stamp=None,
                        cursor_id=None, pulled_in_flight=0)
            )  # fmt: skip
        stats.reread_next_run = streams
        log.warning("refused run: its streams are read again in full next run", streams=streams)

    def _deliver_alerts(self, run_id: str, stats: RunStats) -> None:
        if self.alerts is None:
            return
        with phase("alert"), _timed(stats, "alert"):
            try:
                stats.alerts = self.alerts.deliver(run_id)
            except TeamsyncError as exc:  # a broken sink must not fail the sync
                log.error("alert delivery failed", error=str(exc))
                stats.alerts = {"error": str(exc)}

    # --- preflight and what it tells the run ---------------------------------------------------
    def _run_preflight(self, stats: RunStats) -> bool:
        """The cheap preflight (stored report when fresh); apply its facts; raise
        PreflightFailed (exit 2) when something is missing.  True when the Gainsight streams
        must be read in full (how the score is read changed since the last report)."""
        fp = preflight_fingerprint(self.settings, self.base_mapping)
        previous = self._stored_reports()
        fresh = [
            r
            for r in previous
            if r.fingerprint == fp
            and self.clock() - r.checked_at < timedelta(hours=self.settings.preflight_max_age_hours)
        ]
        report = max(fresh, key=lambda r: r.checked_at) if fresh else None
        if report is None:
            report = Preflight(
                self.settings,
                self.base_mapping,
                self.sf,
                self.gs,
                clock=self.clock,
                raise_upstream=True,
            ).run(full=False)
            self._store_report("cheap", report)
        stats.preflight = {
            "checked_at": report.checked_at.isoformat(),
            "cached": report in fresh,
            "risky": [c.key for c in report.risky],
            "missing": [c.key for c in report.blocking],
        }
        if not report.ok:
            raise PreflightFailed(report)
        before = max(previous, key=lambda r: r.checked_at).facts if previous else None
        self._apply_facts(report.facts)
        changed = before is None or (
            (before.score_field, before.previous_score_field)
            != (report.facts.score_field, report.facts.previous_score_field)
        )
        return changed and self._has_watermark("gainsight.Company")

    def _apply_facts(self, facts: Facts) -> None:
        self.facts = facts
        g = self.base_mapping.gainsight
        paths = {
            "score_field": facts.score_field or g.score_field,
            "previous_score_field": facts.previous_score_field or g.previous_score_field,
        }
        self.mapping = self.base_mapping.model_copy(
            update={"gainsight": g.model_copy(update=paths)}
        )
        set_sortable = getattr(self.gs, "set_gsid_sortable", None)
        if set_sortable is not None:
            for obj, sortable in facts.gsid_sortable.items():
                set_sortable(obj, sortable)
        self.planner = Planner(self.mapping, access=facts.access)

    def _stored_reports(self) -> list[Report]:
        with self.store.session() as s:
            rows = list(s.scalars(select(PreflightReport)))
        out = []
        for row in rows:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                out.append(Report.from_dict(row.report))
        return out

    def _store_report(self, kind: str, report: Report) -> None:
        store_preflight(self.store, kind, report)

    def _forget_preflight(self, why: str) -> None:
        with self.store.session() as s:
            s.execute(delete(PreflightReport))
        log.warning("preflight report dropped; the next run checks again", reason=why)

    def _has_watermark(self, stream: str) -> bool:
        with self.store.session() as s:
            wm = s.get(Watermark, stream)
            return wm is not None and wm.value is not None

    def _field_errors(self, run_id: str) -> bool:
        with self.store.session() as s:
            errors = s.scalars(
                select(Operation.error).where(
                    Operation.run_id == run_id, Operation.status == "failed"
                )
            )
            return any(e is not None and e.split(":", 1)[0] in FIELD_ERROR_CODES for e in errors)

    def _gainsight_full_read_due(self) -> bool:
        """The scheduled full read of the Gainsight streams (TEAMSYNC_GAINSIGHT_FULL_READ_HOURS)."""
        hours = self.settings.gainsight_full_read_hours
        if hours <= 0 or not self._has_watermark("gainsight.Company"):
            return False
        recent = self._recent_run_stats()
        last = next((started for started, st in recent if st.get("gainsight_full")), None)
        return last is None or self.clock() - last >= timedelta(hours=hours)

    def _refresh_handoff_ctas(self, stats: RunStats, *, read_all: bool = False) -> None:
        """Read back the open Handoff CTAs teamsync opened or adopted: one the SA closed in
        Gainsight completes its handoff (the flag clears, no new CTA, no escalation).

        Normally one read: the CTAs closed since the last check (less the Gainsight lookback,
        G3), matched against the open ones.  Every ``HANDOFF_READ_ALL`` (and on a first check
        or a full Gainsight read) all open ones are read by Gsid, 500 a call, which also
        notices a CTA deleted in Gainsight.  Nothing when none is open."""
        flags = [f for f, c in self.mapping.gainsight.cta.flags.items() if c.signal == "handoff"]
        if not flags:
            return
        with self.store.session() as s:
            gsids = list(
                s.scalars(
                    select(CtaLink.cta_gsid).where(
                        CtaLink.status == "open", CtaLink.flag.in_(flags)
                    )
                )
            )
        if not gsids:  # nothing open is a complete check too
            stats.handoff_ctas = {"open": 0, "closed_in_gainsight": 0, "read_all": 1}
            return
        from connectors.gainsight import Condition, filter_datetime

        last_check, last_full = self._last_handoff_checks()
        now = self.clock()
        read_all = (
            read_all
            or last_check is None
            or last_full is None
            or now - last_full >= HANDOFF_READ_ALL
        )
        closed: list[str]
        if read_all:
            still_open: set[str] = set()
            for start in range(0, len(gsids), 500):
                chunk = gsids[start : start + 500]
                for page in self.gs.cta_list(
                    ["Gsid", "IsClosed"], conditions=[Condition("Gsid", "IN", chunk)]
                ):
                    for row in page:
                        if row.get("IsClosed") not in (True, "true"):
                            still_open.add(str(row.get("Gsid")))
            closed = [g for g in gsids if g not in still_open]  # closed, or deleted
        else:
            assert last_check is not None
            since = last_check - timedelta(seconds=self.settings.gainsight_lookback_seconds)
            recently: set[str] = set()
            for page in self.gs.cta_list(
                ["Gsid", "IsClosed"],
                conditions=[
                    Condition("IsClosed", "EQ", [True]),
                    Condition("ModifiedDate", "GTE", [filter_datetime(since)]),
                ],
            ):
                recently.update(
                    str(row.get("Gsid")) for row in page if row.get("IsClosed") in (True, "true")
                )
            closed = [g for g in gsids if g in recently]
        if closed:
            with self.store.session() as s:
                s.execute(
                    update(CtaLink)
                    .where(CtaLink.cta_gsid.in_(closed))
                    .values(status="closed", closed_at=now)
                )
        stats.handoff_ctas = {
            "open": len(gsids) - len(closed),
            "closed_in_gainsight": len(closed),
            "read_all": int(read_all),
        }

    def _recent_run_stats(self) -> list[tuple[datetime, dict[str, Any]]]:
        """(start, stats) of the last 500 runs that finished, newest first."""
        with self.store.session() as s:
            recent = s.execute(
                select(Run.started_at, Run.stats)
                .where(Run.status.in_(("succeeded", "partial")))
                .order_by(Run.started_at.desc())
                .limit(500)
            ).all()
        return [(started, stats or {}) for started, stats in recent]

    def _last_handoff_checks(self) -> tuple[datetime | None, datetime | None]:
        """When the open Handoff CTAs were last checked, and last read all (run starts)."""
        checked = [(started, st.get("handoff_ctas")) for started, st in self._recent_run_stats()]
        last = next((started for started, h in checked if h is not None), None)
        full = next((started for started, h in checked if h and h.get("read_all", 1)), None)
        return last, full

    def _puller(self) -> Puller:
        return Puller(
            self.store,
            self.sf,
            self.gs,
            self.mapping,
            lookback=timedelta(seconds=self.settings.lookback_seconds),
            gainsight_lookback=timedelta(seconds=self.settings.gainsight_lookback_seconds),
            clock=self.clock,
            should_stop=self.should_stop,
            progress=self.progress,
            vanished=self._vanished,
        )

    def _mapper(self, run_id: str) -> Mapper:
        return Mapper(
            self.store,
            self.mapping,
            chunk_size=self.settings.chunk_size,
            clock=self.clock,
            run_id=run_id,
            hidden=self._vanished.of,
        )

    def _store_ops(self, run_id: str, ops: Iterable[Op]) -> None:
        rows = [
            {
                "run_id": run_id,
                "system": op.system,
                "object": op.object,
                "action": op.action,
                "target_id": op.target_id,
                "account_id": op.account_id,
                "payload": op.payload,
                "previous": op.previous,
                "reason": op.reason,
                "destructive": op.destructive,
                "status": OpStatus.PLANNED,
                "error": None,
                "result_id": None,
            }
            for op in ops
        ]
        if rows:
            with self.store.session() as s:
                # Core executemany: no ORM object per operation.
                s.execute(insert(cast(Table, Operation.__table__)), rows)

    def _record_wipes(self, chunk: MappedChunk, run_id: str, stats: RunStats) -> None:
        """Record teams seen wiped for the first time (with who was lost) and close the
        wipes whose accounts have a human-maintained team row again."""
        new = [i for i in chunk.items if i.wipe is not None and i.wipe.new]
        closed = [i.wipe.resolve_id for i in chunk.items if i.wipe and i.wipe.resolve_id]
        if not new and not closed:
            return
        now = self.clock()
        with self.store.session() as s:
            for item in new:
                assert item.wipe is not None
                s.add(
                    TeamWipe(
                        account_id=item.mapped.account_id,
                        detected_at=now,
                        run_id=run_id,
                        lost=wipes.people(s, item.wipe.lost),
                        alerted_at=None,
                        resolved_at=None,
                    )
                )
            if closed:
                s.execute(update(TeamWipe).where(TeamWipe.id.in_(closed)).values(resolved_at=now))
        if new:
            stats.team_wipes = (stats.team_wipes or 0) + len(new)
            log.warning(
                "account teams wiped (every human-maintained row gone at once)",
                accounts=[i.mapped.account_id for i in new][:20],
                count=len(new),
            )

    def _fallback_owner(self) -> str | None:
        """The Gsid of the active Gainsight user ``gainsight.cta.fallback_owner_email`` names."""
        email = self.mapping.gainsight.cta.fallback_owner_email
        if not email:
            return None
        with self.store.session() as s:
            rows = s.scalars(
                select(RawRecord).where(
                    RawRecord.system == System.GAINSIGHT,
                    RawRecord.object == "GsUser",
                    RawRecord.match_key == email.strip().lower(),
                    RawRecord.is_deleted.is_(False),
                )
            ).all()
        active = [r.record_id for r in rows if (r.data or {}).get("IsActiveUser") is not False]
        return active[0] if active else None

    def _quarantine_unowned(self, unowned: list[tuple[str, str]], run_id: str) -> int:
        """CTAs not opened because nobody could own them: quarantined with the fix."""
        if not unowned:
            return 0
        now = self.clock()
        roles = "/".join(self.mapping.gainsight.cta.owner_roles) or "owner_roles"
        with self.store.session() as s:
            for account_id, flag in unowned:
                signal = self.mapping.gainsight.cta.flags[flag].signal
                quarantine(
                    s,
                    system=System.GAINSIGHT,
                    object_name="CallToAction",
                    record_id=f"{account_id}:{flag}",
                    stage="plan",
                    code="NO_CTA_OWNER",
                    reason=f"{flag} CTA not opened: nobody in the {signal!r} DCI row or "
                    f"{roles} has an active Gainsight user, and "
                    "gainsight.cta.fallback_owner_email is not set (or not an active "
                    "Gainsight user)",
                    now=now,
                    run_id=run_id,
                    account_id=account_id,
                )
        log.warning("CTAs without an owner not opened", count=len(unowned))
        return len(unowned)

    def _quarantine_invalid(self, chunk: MappedChunk, run_id: str) -> int:
        if not chunk.invalid:
            return 0
        now = self.clock()
        with self.store.session() as s:
            for exc in chunk.invalid:
                quarantine(
                    s,
                    system=exc.system,
                    object_name=exc.object_name,
                    record_id=exc.record_id,
                    stage="map",
                    code=exc.code or "INVALID_RECORD",
                    reason=exc.reason,
                    now=now,
                    run_id=run_id,
                    account_id=exc.account_id,
                )
                log.warning(
                    "invalid record quarantined",
                    system=exc.system,
                    object=exc.object_name,
                    record=exc.record_id,
                    account=exc.account_id,
                    reason=exc.reason,
                )
        return len(chunk.invalid)

    def _start_run(self, run_id: str, options: RunOptions) -> None:
        with self.store.session() as s:
            s.add(
                Run(
                    run_id=run_id,
                    command=options.command,
                    dry_run=options.dry_run,
                    full=options.full,
                    started_at=self.clock(),
                    status=RunStatus.RUNNING,
                    stats={"version": VERSION},
                    host=socket.gethostname(),
                    pid=os.getpid(),
                )
            )
        log.info(
            "run started",
            version=VERSION,
            command=options.command,
            dry_run=options.dry_run,
            full=options.full,
        )

    def _finish_run(
        self, run_id: str, result: RunResult, started: float, error: str | None = None
    ) -> None:
        stats = result.stats
        stats.seconds = round(time.monotonic() - started, 3)
        stats.api = self._api_usage()
        with self.store.session() as s:
            s.execute(
                update(Run)
                .where(Run.run_id == run_id)
                .values(
                    finished_at=self.clock(),
                    status=result.status,
                    exit_code=result.exit_code,
                    stats=_jsonable(stats.as_json()),
                    error=error[:4000] if error else None,
                )
            )
            if not error and stats.mapped is not None:
                # Quarantined map-stage records that validated this run are resolved.
                s.execute(
                    update(QuarantinedRecord)
                    .where(
                        QuarantinedRecord.stage.in_(("map", "plan")),
                        QuarantinedRecord.resolved_at.is_(None),
                        QuarantinedRecord.run_id != run_id,
                    )
                    .values(resolved_at=self.clock())
                )
            open_q = s.scalar(
                select(func.count(QuarantinedRecord.id)).where(
                    QuarantinedRecord.resolved_at.is_(None),
                    QuarantinedRecord.dismissed_at.is_(None),
                )
            )
        stats.quarantined_open = int(open_q or 0)
        log.info(
            "run finished",
            status=result.status,
            exit_code=result.exit_code,
            **{k: v for k, v in stats.as_json().items() if k != "pulled"},
        )

    def _api_usage(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        sf_usage = getattr(self.sf, "usage", None)
        if sf_usage is not None:
            out["salesforce"] = {
                "used": getattr(sf_usage, "used", None),
                "max": getattr(sf_usage, "max", None),
                "calls": dict(getattr(sf_usage, "calls", {}) or {}),
            }
        gs_calls = getattr(self.gs, "calls", None)
        if gs_calls is not None:
            out["gainsight"] = {"calls": dict(gs_calls)}
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def build_salesforce(settings: Settings) -> SalesforceClient:
    """The Salesforce connector, configured from settings (ConfigurationError when refused)."""
    from connectors.salesforce import SalesforceClient, SalesforceConfig

    return SalesforceClient(SalesforceConfig.from_settings(settings))


def build_gainsight(settings: Settings) -> GainsightClient:
    """The Gainsight connector, configured from settings."""
    from connectors.gainsight import GainsightClient, GainsightConfig

    return GainsightClient(GainsightConfig.from_settings(settings))


def build_clients(settings: Settings) -> tuple[SalesforcePort, GainsightPort]:
    """The real connectors, configured from settings."""
    sf = build_salesforce(settings)
    gs = build_gainsight(settings)
    return sf, gs


__all__ = [
    "Engine",
    "RunOptions",
    "RunResult",
    "build_clients",
    "build_gainsight",
    "build_salesforce",
]
