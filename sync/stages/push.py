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
from typing import Any, NamedTuple

import structlog
from sqlalchemy import ColumnElement, Table, and_, bindparam, func, select, update
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


class Planned(NamedTuple):
    """A planned operation as the pusher reads it back (plain columns, no ORM object)."""

    id: int
    system: str
    object: str
    action: str
    target_id: str | None
    account_id: str | None
    payload: dict[str, Any]
    previous: dict[str, Any] | None


_PLANNED = (
    Operation.id,
    Operation.system,
    Operation.object,
    Operation.action,
    Operation.target_id,
    Operation.account_id,
    Operation.payload,
    Operation.previous,
)
_OPS: Table = Operation.__table__  # type: ignore[assignment]
# The outcome of each operation, by primary key: one executemany of one Core statement.
_SET_OUTCOME = (
    update(_OPS)
    .where(_OPS.c.id == bindparam("op_id"))
    .values(
        status=bindparam("op_status"),
        result_id=bindparam("op_result_id"),
        error=bindparam("op_error"),
    )
)


def quarantine_key(op: Operation | Op | Planned) -> str:
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
        # Kinds (system, object) with open quarantine entries: known at the start of the push,
        # plus the kinds this push quarantines; a success of any other kind has nothing to
        # resolve, so it is not looked up.
        self._open_kinds: set[tuple[str, str]] = set()

    def push(self) -> PushStats:
        stats = PushStats()
        with self.store.session() as s:
            self._open_kinds = {
                (str(system), str(obj))
                for system, obj in s.execute(
                    select(QuarantinedRecord.system, QuarantinedRecord.object)
                    .where(QuarantinedRecord.resolved_at.is_(None))
                    .distinct()
                )
            }
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
            waiting: list[Planned] = []  # CTAs to open after the duplicate check
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

    def _batches(self, system: str, obj: str, action: str, size: int) -> Iterator[list[Planned]]:
        last = 0
        while True:
            with self.store.session() as s:
                batch = [
                    Planned(*row)
                    for row in s.execute(
                        select(*_PLANNED)
                        .where(self._where(system, obj, action), Operation.id > last)
                        .order_by(Operation.id)
                        .limit(size)
                    )
                ]
            if not batch:
                return
            last = batch[-1].id
            yield batch

    # --- sending --------------------------------------------------------------------------
    def _send(
        self, system: str, obj: str, action: str, batch: Sequence[Planned]
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

    def _adopt_existing(self, batch: Sequence[Planned], stats: PushStats) -> list[Planned]:
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
        to_create: list[Planned] = []
        now = self.clock()
        with self.store.session() as s:
            known = self._links(s, list(existing.values()))
            adopted: list[dict[str, Any]] = []
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
                self._link(s, op, gsid, "adopted", now, known)
                adopted.append(
                    {
                        "op_id": op.id,
                        "op_status": OpStatus.ADOPTED,
                        "op_result_id": gsid,
                        "op_error": None,
                    }
                )
                stats.adopted += 1
            if adopted:
                s.execute(_SET_OUTCOME, adopted)
        return to_create

    def _open_ctas(self, ops: Sequence[Planned], stats: PushStats) -> None:
        results = self.gs.cta_create([dict(op.payload) for op in ops])
        self._record(ops, results, stats)

    @staticmethod
    def _links(s: Session, gsids: Sequence[str]) -> dict[str, CtaLink]:
        """The stored links of these CTAs, in one query (not one per CTA)."""
        found: dict[str, CtaLink] = {}
        wanted = sorted(set(gsids))
        for start in range(0, len(wanted), 500):
            for link in s.scalars(
                select(CtaLink).where(CtaLink.cta_gsid.in_(wanted[start : start + 500]))
            ):
                found[link.cta_gsid] = link
        return found

    def _link(
        self,
        s: Session,
        op: Planned,
        gsid: str,
        origin: CtaOrigin,
        now: datetime,
        known: dict[str, CtaLink],
    ) -> None:
        """Open (or re-open) the link of a CTA; ``known``: the batch's stored links."""
        flag = str((op.previous or {}).get("flag"))
        existing = known.get(gsid)
        if existing is None:
            known[gsid] = CtaLink(
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
            s.add(known[gsid])
        else:
            existing.status = "open"
            existing.flag = flag
            existing.subject_id = (op.previous or {}).get("subject")

    # --- outcomes -------------------------------------------------------------------------
    def _record(
        self, batch: Sequence[Planned], results: Sequence[WriteOutcome], stats: PushStats
    ) -> None:
        """Record every outcome of a batch: a few statements per batch, none per record
        (statuses in one executemany, quarantine resolved by one lookup, the store's copies
        written through in one bulk upsert)."""
        by_index = {r.index: r for r in results}
        now = self.clock()
        statuses: list[dict[str, Any]] = []
        succeeded: list[tuple[Planned, WriteOutcome | None]] = []
        failed: list[tuple[Planned, str, str | None, str | None]] = []
        for i, op in enumerate(batch):
            kind = f"{op.system}.{op.object}.{op.action}"
            result = by_index.get(i)
            ok = bool(result is not None and result.success)
            stats.bump(kind, ok)
            code = result.code if result is not None else "NO_RESULT"
            message = result.message if result is not None else "no result for this record"
            statuses.append(
                {
                    "op_id": op.id,
                    "op_status": OpStatus.DONE if ok else OpStatus.FAILED,
                    "op_result_id": result.id if result is not None else None,
                    "op_error": None if ok else f"{code}: {message}"[:2000],
                }
            )
            if ok:
                succeeded.append((op, result))
            else:
                failed.append((op, quarantine_key(op), code, message))
        with self.store.session() as s:
            s.execute(_SET_OUTCOME, statuses)
            self._resolve_many(s, [(op, quarantine_key(op)) for op, _ in succeeded], now)
            self._write_through(s, succeeded, now)
            ctas = [op for op, _ in succeeded if op.object == CTA]
            known: dict[str, CtaLink] = {}
            if ctas:
                known = self._links(
                    s,
                    [str(r.id) for op, r in succeeded if op.object == CTA and r is not None]
                    + [str(op.target_id) for op in ctas if op.target_id],
                )
            for op, result in succeeded:
                if op.object == CTA and op.action == Action.CREATE and result is not None:
                    self._link(s, op, str(result.id), "opened", now, known)
                if op.object == CTA and op.action == Action.CLOSE and op.target_id:
                    link = known.get(op.target_id)
                    if link is not None:
                        link.status = "closed"
                        link.closed_at = now
            for op, key, code, message in failed:
                self._quarantine(s, op, key, code, message, now)

    def _write_through(
        self, s: Session, done: Sequence[tuple[Planned, WriteOutcome | None]], now: datetime
    ) -> None:
        """Record in the store's copies of the records what these successful writes changed."""
        deleted: dict[str, list[str]] = {}
        writes: dict[tuple[str, str], list[tuple[str, dict[str, Any], str | None]]] = {}
        for op, result in done:
            payload = dict(op.payload or {})
            if op.system == SF and op.object in (ACCOUNT, ATM):
                if op.action == Action.DELETE:
                    if op.target_id:
                        deleted.setdefault(op.object, []).append(op.target_id)
                    continue
                if op.action == Action.CREATE:
                    new_id = normalize_or_none(result.id if result is not None else None)
                    if new_id is None:
                        continue
                    payload["Id"] = new_id
                    payload.setdefault("CreatedDate", now.isoformat())
                    parent = normalize_or_none(payload.get("AccountId"))
                    writes.setdefault((SF, op.object), []).append((new_id, payload, parent))
                    continue
                if op.target_id:
                    writes.setdefault((SF, op.object), []).append((op.target_id, payload, None))
            elif op.system == GS and op.object == COMPANY and op.target_id:
                payload.pop("Gsid", None)
                writes.setdefault((GS, COMPANY), []).append((op.target_id, payload, None))
        for obj, ids in deleted.items():
            self.store.mark_raw_deleted(s, SF, obj, ids)
        for (system, obj), items in writes.items():
            self.store.write_through_many(s, system, obj, items)

    def _quarantine(
        self,
        s: Session,
        op: Planned,
        key: str,
        code: str | None,
        message: str | None,
        now: datetime,
    ) -> None:
        self._open_kinds.add((str(op.system), str(op.object)))
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

    def _resolve_many(self, s: Session, done: Sequence[tuple[Planned, str]], now: datetime) -> None:
        """Resolve the open quarantine entries of these succeeded records (one lookup; an
        update only where there is something to resolve)."""
        by_kind: dict[tuple[str, str], set[str]] = {}
        for op, key in done:
            by_kind.setdefault((op.system, op.object), set()).add(key)
        for (system, obj), keys in by_kind.items():
            if (str(system), str(obj)) not in self._open_kinds:
                continue
            wanted = sorted(keys)
            for start in range(0, len(wanted), 500):
                open_ids = list(
                    s.scalars(
                        select(QuarantinedRecord.id).where(
                            QuarantinedRecord.system == system,
                            QuarantinedRecord.object == obj,
                            QuarantinedRecord.record_id.in_(wanted[start : start + 500]),
                            QuarantinedRecord.resolved_at.is_(None),
                        )
                    )
                )
                if open_ids:
                    s.execute(
                        update(QuarantinedRecord)
                        .where(QuarantinedRecord.id.in_(open_ids))
                        .values(resolved_at=now)
                    )
