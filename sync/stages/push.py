"""Push: execute the stored plan in as few API calls as the APIs allow.

Operations are read back from the ``operations`` table kind by kind (object + action) and
sent in full batches: sObject Collections of 200 (or Bulk API 2.0 jobs when a kind has more
operations than the bulk threshold) and Gainsight batches of 50, so a kind with *n*
operations costs ``ceil(n / 200)`` or ``ceil(n / 50)`` write calls.  Every record's outcome
is written back; failures are quarantined with their reason and retried by the next run's
plan, successes clear earlier quarantine entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from connectors.sfid import normalize_or_none
from mappings.schema import MappingFile
from sync.clock import utcnow
from sync.ports import GainsightPort, SalesforcePort, WriteOutcome
from sync.stages.plan import ACCOUNT, ATM, COMPANY, CTA, GS, SF, Op
from sync.store import Store, quarantine
from sync.store.models import CtaLink, Operation, QuarantinedRecord
from sync.types import Action, CtaOrigin, OpStatus, System

log = structlog.get_logger("teamsync.push")

# Execution order: free team slots before filling them; close CTAs before opening new ones.
ORDER: tuple[tuple[System, str, Action], ...] = (
    (SF, ATM, Action.DELETE),
    (SF, ATM, Action.UPDATE),
    (SF, ATM, Action.CREATE),
    (SF, ACCOUNT, Action.UPDATE),
    (GS, COMPANY, Action.UPDATE),
    (GS, CTA, Action.CLOSE),
    (GS, CTA, Action.CREATE),
)


@dataclass
class PushStats:
    succeeded: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    adopted: int = 0
    interrupted: bool = False

    def bump(self, kind: str, ok: bool) -> None:
        target = self.succeeded if ok else self.failed
        target[kind] = target.get(kind, 0) + 1

    @property
    def failures(self) -> int:
        return sum(self.failed.values())


def quarantine_key(op: Operation | Op) -> str:
    if op.target_id:
        return op.target_id
    payload = op.payload or {}
    if op.object == ATM:
        return f"{payload.get('AccountId')}:{payload.get('UserId')}"
    if op.object == CTA:
        return f"{payload.get('CompanyId')}:{(op.previous or {}).get('flag')}"
    return f"{op.account_id}:{op.object}"


class Pusher:
    def __init__(
        self,
        store: Store,
        salesforce: SalesforcePort,
        gainsight: GainsightPort,
        mapping: MappingFile,
        *,
        run_id: str,
        bulk_threshold: int = 2000,
        clock: Callable[[], datetime] = utcnow,
        should_stop: Callable[[], bool] = lambda: False,
        on_batch: Callable[[], None] | None = None,
        progress: Callable[[str, int, int | None], None] | None = None,
    ) -> None:
        self.store = store
        self.sf = salesforce
        self.gs = gainsight
        self.mapping = mapping
        self.run_id = run_id
        self.bulk_threshold = bulk_threshold
        self.clock = clock
        self.should_stop = should_stop
        self.on_batch = on_batch
        self.progress = progress

    def push(self) -> PushStats:
        stats = PushStats()
        totals = {kind: self._count(*kind) for kind in ORDER}
        grand_total = sum(totals.values())
        done = 0
        for system, obj, action in ORDER:
            if self.should_stop():
                stats.interrupted = True
                break
            total = totals[(system, obj, action)]
            if not total:
                continue
            if system == SF:
                size = max(10_000, self.bulk_threshold + 1) if total > self.bulk_threshold else 200
            else:
                size = 50
            waiting: list[Operation] = []  # CTAs to open after the duplicate check
            for batch in self._batches(system, obj, action, size):
                if system == GS and obj == CTA and action == Action.CREATE:
                    waiting.extend(self._adopt_existing(batch, stats))
                    while len(waiting) >= size:
                        self._open_ctas(waiting[:size], stats)
                        waiting = waiting[size:]
                else:
                    results = self._send(system, obj, action, batch)
                    self._record(batch, results, stats)
                if self.on_batch is not None:
                    self.on_batch()
                done += len(batch)
                if self.progress is not None:
                    self.progress("push operations", done, grand_total)
                if self.should_stop():
                    stats.interrupted = True
                    break
            if waiting:
                self._open_ctas(waiting, stats)
            if stats.interrupted:
                break
        log.info(
            "pushed",
            succeeded=stats.succeeded,
            failed=stats.failed,
            adopted=stats.adopted,
            interrupted=stats.interrupted,
        )
        return stats

    # --- reading the plan -----------------------------------------------------------------
    def _where(self, system: str, obj: str, action: str) -> ColumnElement[bool]:
        return and_(
            Operation.run_id == self.run_id,
            Operation.system == system,
            Operation.object == obj,
            Operation.action == action,
            Operation.status == OpStatus.PLANNED,
        )

    def _count(self, system: str, obj: str, action: str) -> int:
        with self.store.session() as s:
            return int(
                s.scalar(select(func.count(Operation.id)).where(self._where(system, obj, action)))
                or 0
            )

    def _batches(self, system: str, obj: str, action: str, size: int) -> Iterator[list[Operation]]:
        last = 0
        while True:
            with self.store.session() as s:
                batch = list(
                    s.scalars(
                        select(Operation)
                        .where(self._where(system, obj, action), Operation.id > last)
                        .order_by(Operation.id)
                        .limit(size)
                    )
                )
            if not batch:
                return
            last = batch[-1].id
            yield batch

    # --- sending --------------------------------------------------------------------------
    def _send(
        self, system: str, obj: str, action: str, batch: Sequence[Operation]
    ) -> Sequence[WriteOutcome]:
        payloads = [dict(op.payload) for op in batch]
        if system == SF:
            if action == Action.CREATE:
                return self.sf.create(obj, payloads)
            if action == Action.UPDATE:
                return self.sf.update(obj, payloads)
            if action == Action.DELETE:
                return self.sf.delete(obj, [str(op.target_id) for op in batch])
        elif obj == COMPANY:
            return self.gs.update(obj, payloads, keys=("Gsid",))
        elif obj == CTA and action == Action.CLOSE:
            return self.gs.cta_update(payloads)
        raise ValueError(f"no way to send {system} {obj} {action}")

    def _adopt_existing(self, batch: Sequence[Operation], stats: PushStats) -> list[Operation]:
        """Adopt an open CTA of the same type and reason where one exists; return the rest.

        One list call covers the whole batch of companies, so the duplicate check costs one
        read per batch of creates.
        """
        cfg = self.mapping.gainsight.cta
        from connectors.gainsight import Condition

        companies = sorted({str(op.payload.get("CompanyId")) for op in batch})
        existing: dict[tuple[str, str, str], str] = {}
        for page in self.gs.cta_list(
            ["Gsid", "CompanyId", "TypeId__gr.Name", "ReasonId__gr.Name", "IsClosed"],
            conditions=[
                Condition("CompanyId", "IN", companies),
                Condition("IsClosed", "EQ", [False]),
            ],
            expression="A AND B",
        ):
            for row in page:
                if row.get("IsClosed") in (True, "true"):
                    continue
                key = (
                    str(row.get("CompanyId")),
                    str(row.get("TypeId__gr.Name") or "").lower(),
                    str(row.get("ReasonId__gr.Name") or "").lower(),
                )
                existing.setdefault(key, str(row.get("Gsid")))
        to_create: list[Operation] = []
        now = self.clock()
        with self.store.session() as s:
            for op in batch:
                key = (
                    str(op.payload.get("CompanyId")),
                    str(op.payload.get("type") or cfg.type).lower(),
                    str(op.payload.get("reason")).lower(),
                )
                gsid = existing.get(key)
                if gsid is None:
                    to_create.append(op)
                    continue
                self._link(s, op, gsid, "adopted", now)
                s.execute(
                    update(Operation)
                    .where(Operation.id == op.id)
                    .values(status=OpStatus.ADOPTED, result_id=gsid)
                )
                stats.adopted += 1
        return to_create

    def _open_ctas(self, ops: Sequence[Operation], stats: PushStats) -> None:
        results = self.gs.cta_create([dict(op.payload) for op in ops])
        self._record(ops, results, stats)

    def _link(self, s: Session, op: Operation, gsid: str, origin: CtaOrigin, now: datetime) -> None:
        flag = str((op.previous or {}).get("flag"))
        existing = s.get(CtaLink, gsid)
        if existing is None:
            s.add(
                CtaLink(
                    cta_gsid=gsid,
                    account_id=op.account_id,
                    company_gsid=str(op.payload.get("CompanyId")),
                    flag=flag,
                    subject_id=(op.previous or {}).get("subject"),
                    origin=origin,
                    status="open",
                    opened_at=now,
                    run_id=self.run_id,
                )
            )
        else:
            existing.status = "open"
            existing.flag = flag
            existing.subject_id = (op.previous or {}).get("subject")

    # --- outcomes -------------------------------------------------------------------------
    def _record(
        self, batch: Sequence[Operation], results: Sequence[WriteOutcome], stats: PushStats
    ) -> None:
        by_index = {r.index: r for r in results}
        now = self.clock()
        with self.store.session() as s:
            for i, op in enumerate(batch):
                kind = f"{op.system}.{op.object}.{op.action}"
                result = by_index.get(i)
                ok = bool(result is not None and result.success)
                stats.bump(kind, ok)
                code = result.code if result is not None else "NO_RESULT"
                message = result.message if result is not None else "no result for this record"
                s.execute(
                    update(Operation)
                    .where(Operation.id == op.id)
                    .values(
                        status=OpStatus.DONE if ok else OpStatus.FAILED,
                        result_id=result.id if result is not None else None,
                        error=None if ok else f"{code}: {message}"[:2000],
                    )
                )
                key = quarantine_key(op)
                if ok:
                    self._resolve(s, op.system, op.object, key, now)
                    self._write_through(s, op, result, now)
                    if op.object == CTA and op.action == Action.CREATE and result is not None:
                        self._link(s, op, str(result.id), "opened", now)
                    if op.object == CTA and op.action == Action.CLOSE and op.target_id:
                        link = s.get(CtaLink, op.target_id)
                        if link is not None:
                            link.status = "closed"
                            link.closed_at = now
                else:
                    self._quarantine(s, op, key, code, message, now)

    def _write_through(
        self, s: Session, op: Operation, result: WriteOutcome | None, now: datetime
    ) -> None:
        """Record in the store's copy of the record what this successful write changed."""
        payload = dict(op.payload or {})
        if op.system == SF and op.object in (ACCOUNT, ATM):
            if op.action == Action.DELETE:
                if op.target_id:
                    self.store.mark_raw_deleted(s, SF, op.object, [op.target_id])
                return
            if op.action == Action.CREATE:
                new_id = normalize_or_none(result.id if result is not None else None)
                if new_id is None:
                    return
                payload["Id"] = new_id
                payload.setdefault("CreatedDate", now.isoformat())
                self.store.write_through(
                    s,
                    SF,
                    op.object,
                    new_id,
                    payload,
                    parent_id=normalize_or_none(payload.get("AccountId")),
                )
                return
            if op.target_id:
                self.store.write_through(s, SF, op.object, op.target_id, payload)
        elif op.system == GS and op.object == COMPANY and op.target_id:
            payload.pop("Gsid", None)
            self.store.write_through(s, GS, COMPANY, op.target_id, payload)

    def _quarantine(
        self,
        s: Session,
        op: Operation,
        key: str,
        code: str | None,
        message: str | None,
        now: datetime,
    ) -> None:
        quarantine(
            s,
            system=op.system,
            object_name=op.object,
            record_id=key,
            stage="push",
            code=code,
            reason=f"{op.action} failed: {code}: {message}",
            now=now,
            run_id=self.run_id,
            account_id=op.account_id,
            payload=op.payload,
        )
        log.warning(
            "record failed",
            system=op.system,
            object=op.object,
            action=op.action,
            record=key,
            code=code,
        )

    def _resolve(self, s: Session, system: str, obj: str, key: str, now: datetime) -> None:
        s.execute(
            update(QuarantinedRecord)
            .where(
                QuarantinedRecord.system == system,
                QuarantinedRecord.object == obj,
                QuarantinedRecord.record_id == key,
                or_(QuarantinedRecord.resolved_at.is_(None)),
            )
            .values(resolved_at=now)
        )
