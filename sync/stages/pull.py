"""Pull: stream records from Salesforce and Gainsight into the store, incrementally.

Each stream has one watermark.  A pull commits page by page together with its cursor, so an
interrupted pull resumes where it stopped (same lower bound, same start time) instead of
starting over, and never loses a record.

Deletes:
- Account, Opportunity: ``queryAll`` returns Recycle-Bin rows with ``IsDeleted = true``.
- AccountTeamMember: deletes are hard and invisible to ``queryAll``.  Each run compares
  ``SELECT COUNT()`` with the live rows in the store; when they differ, a scan of the Ids
  finds the rows that are gone.  (The engine also re-reads the team of every account in a
  plan right before writing.)
- A full pull (``--full``) finds every record that was not seen, for every stream.

Absence is not deletion without corroboration: records that vanish (a full pass, the Id
scan, the team re-read) are only collected in :class:`Vanished`.  They count toward the
mass-change safeguard, and the engine marks them deleted only once the plan has passed it; a
refused run marks nothing.  A record marked deleted that is seen again is live again (a pull
stores it as it is now; the Id scan re-reads the ones it finds).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, select, update

from connectors import soql
from connectors.batching import batched
from connectors.dates import parse_datetime
from connectors.sfid import normalize_or_none
from mappings.schema import MappingFile
from sync.clock import utcnow
from sync.ports import GainsightPort, SalesforcePort
from sync.stages.prefetch import Prefetch
from sync.stages.records import UNSTORABLE, storable
from sync.store import IN_LIST, RawRow, Store
from sync.store.models import RawRecord, Watermark
from sync.store.watermarks import lower_bound, next_watermark
from sync.streams import Stream, catalogue
from sync.types import PullMode, System

log = structlog.get_logger("teamsync.pull")

Window = tuple[datetime, datetime | None]


# --- vanished records --------------------------------------------------------------------------
@dataclass
class Vanished:
    """Records a pull no longer saw, per (system, object): deleted only after the safeguard."""

    ids: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def add(self, stream: Stream[Any], record_ids: Iterable[str]) -> int:
        bucket = self.ids.setdefault((str(stream.system), stream.object), set())
        before = len(bucket)
        bucket.update(record_ids)
        return len(bucket) - before

    def discard(self, stream: Stream[Any], record_ids: Iterable[str]) -> int:
        """Records a later read of this run saw after all: live again (not deleted)."""
        bucket = self.ids.get((str(stream.system), stream.object))
        if not bucket:
            return 0
        before = len(bucket)
        bucket.difference_update(record_ids)
        return before - len(bucket)

    def of(self, system: str, object_name: str) -> frozenset[str]:
        return frozenset(self.ids.get((str(system), object_name), ()))

    def count(self, system: str | None = None) -> int:
        return sum(len(v) for (sys_, _), v in self.ids.items() if system in (None, sys_))

    def by_object(self) -> dict[str, int]:
        return {f"{sys_}.{obj}": len(v) for (sys_, obj), v in sorted(self.ids.items()) if v}

    def apply(self, store: Store) -> int:
        """Mark every vanished record deleted (the plan passed the safeguard)."""
        total = 0
        with store.session() as s:
            for (system, obj), record_ids in sorted(self.ids.items()):
                total += store.mark_raw_deleted(s, system, obj, sorted(record_ids))
        self.ids.clear()
        return total


# --- the puller ------------------------------------------------------------------------------
@dataclass
class StreamStats:
    records: int = 0
    pages: int = 0
    deleted: int = 0
    resumed: bool = False
    mode: PullMode = "incremental"
    seconds: float = 0.0
    watermark: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """As recorded in the run's stats."""
        return {
            "mode": self.mode,
            "records": self.records,
            "pages": self.pages,
            "deleted": self.deleted,
            "resumed": self.resumed,
            "watermark": self.watermark,
            **self.extra,
        }


ProgressFn = Callable[[str, int, int | None], None]  # stream, records so far, total if known


class Puller:
    """Runs the pull of every stream (or a chosen subset) into the store."""

    def __init__(
        self,
        store: Store,
        salesforce: SalesforcePort,
        gainsight: GainsightPort,
        mapping: MappingFile,
        *,
        lookback: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = utcnow,
        should_stop: Callable[[], bool] = lambda: False,
        progress: ProgressFn | None = None,
        batch_size: int = 2000,
        vanished: Vanished | None = None,
        gainsight_lookback: timedelta | None = None,
        prefetch: int = 2,
        concurrent: bool = True,
    ) -> None:
        self.store = store
        self.vanished = vanished if vanished is not None else Vanished()
        self.batch_size = batch_size
        self.prefetch = prefetch  # pages read ahead while one is being stored
        self.concurrent = concurrent  # pull Gainsight beside Salesforce
        self._halt = threading.Event()  # the other system's pull failed: stop this one too
        self.sf = salesforce
        self.gs = gainsight
        self.mapping = mapping
        self.lookback = lookback
        # Gainsight reads date filters in an undocumented time zone (G3): a lookback of its own.
        self.gainsight_lookback = lookback if gainsight_lookback is None else gainsight_lookback
        self.clock = clock
        self.should_stop = should_stop
        self.progress = progress
        self.streams = catalogue(mapping)

    def _stopping(self) -> bool:
        return self._halt.is_set() or self.should_stop()

    def stream(self, name: str) -> Stream[Any]:
        return self.streams.get(name)

    # --- public ---------------------------------------------------------------------------
    def pull(
        self,
        *,
        full: bool = False,
        window: Window | None = None,
        only: Iterable[str] | None = None,
        full_systems: Iterable[System] = (),
    ) -> dict[str, StreamStats]:
        """Pull every stream (or ``only`` these): incremental, ``full``, or a backfill of
        ``window`` = [since, until) that does not move the main watermarks.  Resumable.
        ``full_systems``: read these systems' streams in full (the others incrementally)."""
        wanted = {self.stream(n).name for n in only} if only else None
        full_for = set(full_systems)
        chosen = [s for s in self.streams if wanted is None or s.name in wanted]
        out: dict[str, StreamStats] = {}
        # The two systems are pulled side by side (each within its own rate limits): the
        # Gainsight streams in a worker thread, the Salesforce ones here.
        gainsight = [s for s in chosen if s.system == System.GAINSIGHT]
        salesforce = [s for s in chosen if s.system != System.GAINSIGHT]
        side: Prefetch[tuple[str, StreamStats]] | None = None
        self._halt.clear()
        if gainsight and salesforce and self.concurrent:
            side = Prefetch(
                self._pull_each(gainsight, full, full_for, window),
                depth=len(gainsight),
                name="pull gs",
            )
            gainsight = []
        try:
            for name, stats in self._pull_each(salesforce + gainsight, full, full_for, window):
                out[name] = stats
        except BaseException:
            if side is not None:  # stop the other system after its current page
                self._halt.set()
                side.close()
            raise
        if side is not None:
            with side:
                for name, stats in side:
                    out[name] = stats
        return {s.name: out[s.name] for s in chosen if s.name in out}

    def _pull_each(
        self,
        streams: Sequence[Stream[Any]],
        full: bool,
        full_for: set[Any],
        window: Window | None,
    ) -> Iterator[tuple[str, StreamStats]]:
        for stream in streams:
            if self._stopping():
                return
            yield (
                stream.name,
                self._pull_stream(stream, full=full or stream.system in full_for, window=window),
            )

    # --- one stream -----------------------------------------------------------------------
    def _pull_stream(
        self,
        stream: Stream[Any],
        *,
        full: bool = False,
        window: Window | None = None,
    ) -> StreamStats:
        started_clock = self.clock()
        key = stream.name if window is None else f"backfill:{stream.name}"
        stats = StreamStats(mode="backfill" if window else ("full" if full else "incremental"))
        with self.store.session() as s:
            wm = s.get(Watermark, key)
            if wm is None:
                wm = Watermark(stream=key, value=None, pulled_in_flight=0, updated_at=started_clock)
                s.add(wm)
            was_running = wm.pull_started_at is not None
            if window is not None:
                resume = (
                    was_running
                    and wm.pull_mode == "backfill"
                    and (wm.pull_lower, wm.pull_upper) == window
                )
            else:
                if was_running and wm.pull_mode == "full":
                    full = True  # an interrupted full pull is finished first
                    stats.mode = "full"
                resume = was_running and wm.pull_mode == stats.mode
            if not resume:
                wm.pull_started_at = started_clock
                wm.pull_mode = stats.mode
                if window is not None:
                    wm.pull_lower, wm.pull_upper = window
                elif full:
                    wm.pull_lower, wm.pull_upper = None, None
                else:
                    lookback = (
                        self.gainsight_lookback
                        if stream.system == System.GAINSIGHT
                        else self.lookback
                    )
                    wm.pull_lower = lower_bound(wm.value, lookback)
                    wm.pull_upper = None
                wm.cursor_stamp = None
                wm.cursor_id = None
                wm.pulled_in_flight = 0
            stats.resumed = resume
            pull_started = wm.pull_started_at
            lower, upper = wm.pull_lower, wm.pull_upper
            cursor = (wm.cursor_stamp, wm.cursor_id) if wm.cursor_id else None
            previous = wm.value
            assert pull_started is not None
        if resume:
            log.info("pull resumed", stream=stream.name, cursor_id=cursor[1] if cursor else None)

        max_seen: datetime | None = None
        total = self._total(stream, lower, upper) if self.progress else None
        pages = (
            self._sf_pages(stream, lower, upper, cursor)
            if stream.system == System.SALESFORCE
            else self._gs_pages(stream, lower, upper, cursor)
        )
        done = True
        # Known versions are skipped only in an incremental pull that has a watermark: there
        # the re-read (the lookback window) holds records stored before, at the same stamp.
        skip_known = stats.mode == "incremental" and previous is not None
        fetched = Prefetch(pages, depth=self.prefetch, name=f"pull {stream.name}")
        with fetched:
            for rows in fetched:
                if not rows:
                    continue
                in_flight = self._store_page(stream, key, rows, skip_known, stats)
                stats.records += len(rows)
                stats.pages += 1
                stats.deleted += sum(1 for r in rows if r.is_deleted)
                for r in rows:
                    if r.stamp is not None and (max_seen is None or r.stamp > max_seen):
                        max_seen = r.stamp
                if self.progress:
                    self.progress(stream.name, in_flight, total)
                if self._stopping():
                    done = False
                    break

        if not done:
            log.info("pull interrupted; will resume", stream=stream.name, records=stats.records)
            stats.seconds = (self.clock() - started_clock).total_seconds()
            return stats

        if stats.mode == "full":
            stats.extra["vanished"] = self.vanished.add(stream, self._unseen(stream, pull_started))
        elif stream.count_deletes and window is None:
            stats.extra["vanished"] = self._reconcile_hard_deletes(stream, stats)

        with self.store.session() as s:
            wm = s.get(Watermark, key)
            assert wm is not None
            if window is None:
                if stats.mode == "full":
                    # Everything before the pull started has been read.
                    wm.value = (
                        next_watermark(previous=None, max_seen=max_seen, pull_started=pull_started)
                        or pull_started
                    )
                else:
                    wm.value = next_watermark(
                        previous=previous, max_seen=max_seen, pull_started=pull_started
                    )
            wm.pull_started_at = None
            wm.pull_mode = None
            wm.pull_lower = wm.pull_upper = None
            wm.cursor_stamp = None
            wm.cursor_id = None
            wm.pulled_in_flight = 0
            wm.updated_at = self.clock()
            stats.watermark = wm.value.isoformat() if wm.value else None
        stats.seconds = (self.clock() - started_clock).total_seconds()
        log.info(
            "pulled",
            stream=stream.name,
            mode=stats.mode,
            records=stats.records,
            pages=stats.pages,
            deleted=stats.deleted,
            resumed=stats.resumed,
            seconds=round(stats.seconds, 3),
        )
        return stats

    def _store_page(
        self,
        stream: Stream[Any],
        key: str,
        rows: list[RawRow],
        skip_known: bool,
        stats: StreamStats,
    ) -> int:
        """Store one page and move the stream's cursor past it, in one transaction; returns
        the records pulled so far.  With ``skip_known``, records whose (id, stamp) the store
        already holds are not written again, only marked as seen."""
        last = rows[-1]
        with self.store.session() as s:
            fresh = rows
            if skip_known:
                fresh, known = self._split_known(s, stream, rows)
                if known:
                    stats.extra["unchanged"] = stats.extra.get("unchanged", 0) + len(known)
                    self.store.touch_raw(s, stream.system, stream.object, known)
            self.store.upsert_raw(s, stream.system, stream.object, fresh)
            wm = s.get(Watermark, key)
            assert wm is not None
            if getattr(rows, "ordered", True):
                wm.cursor_stamp = last.stamp
                wm.cursor_id = last.record_id
            # Unordered pages (Bulk 2.0 without ORDER BY) give no position to resume from:
            # an interrupted pull reads its window again (upserts, nothing lost).
            wm.pulled_in_flight = (wm.pulled_in_flight or 0) + len(rows)
            wm.updated_at = self.clock()
            return wm.pulled_in_flight

    def _split_known(
        self, s: Any, stream: Stream[Any], rows: list[RawRow]
    ) -> tuple[list[RawRow], list[str]]:
        """(records to store, ids of records the store already holds as they are: same
        stamp and same content - a stamp alone is not enough, two changes can share one)."""
        stored: dict[str, tuple[Any, Any]] = {}
        for part in batched([r.record_id for r in rows], IN_LIST):
            found = s.execute(
                select(RawRecord.record_id, RawRecord.stamp, RawRecord.data).where(
                    RawRecord.system == stream.system,
                    RawRecord.object == stream.object,
                    RawRecord.record_id.in_(part),
                    RawRecord.is_deleted.is_(False),
                )
            )
            stored.update((rid, (stamp, data)) for rid, stamp, data in found)
        if not stored:
            return rows, []
        fresh, known = [], []
        for r in rows:
            held = stored.get(r.record_id)
            if (
                held is not None
                and r.stamp is not None
                and not r.is_deleted
                and held[0] == r.stamp
                and held[1] == r.data
            ):
                known.append(r.record_id)
            else:
                fresh.append(r)
        return fresh, known

    def _total(
        self, stream: Stream[Any], lower: datetime | None, upper: datetime | None
    ) -> int | None:
        if stream.system != System.SALESFORCE:
            return None
        where = self._sf_where(stream, lower, upper, None)
        query = soql.count_query(soql.select(stream.object, ("Id",), where=where or None))
        return self.sf.count(query, include_deleted=stream.include_deleted)

    # --- Salesforce -----------------------------------------------------------------------
    def _sf_where(
        self,
        stream: Stream[Any],
        lower: datetime | None,
        upper: datetime | None,
        cursor: tuple[datetime | None, str | None] | None,
    ) -> str:
        parts = []
        sf_stamp = soql.field(stream.stamp_field)
        if lower is not None:
            parts.append(f"{sf_stamp} >= {soql.literal(lower)}")
        if upper is not None:
            parts.append(f"{sf_stamp} < {soql.literal(upper)}")
        if cursor is not None and cursor[0] is not None and cursor[1] is not None:
            cs = soql.literal(cursor[0])
            parts.append(
                f"({sf_stamp} > {cs} OR ({sf_stamp} = {cs} AND Id > {soql.id_literal(cursor[1])}))"
            )
        return " AND ".join(parts)

    def _sf_pages(
        self,
        stream: Stream[Any],
        lower: datetime | None,
        upper: datetime | None,
        cursor: tuple[datetime | None, str | None] | None,
    ) -> Iterator[list[RawRow]]:
        where = self._sf_where(stream, lower, upper, cursor)
        query = soql.select(
            stream.object,
            stream.fields,
            where=where or None,
            order_by=(stream.stamp_field, "Id"),
        )
        for page in self.sf.query(
            query, include_deleted=stream.include_deleted, batch_size=self.batch_size
        ):
            rows = Rows(_row(stream, rec) for rec in page)
            rows.ordered = getattr(page, "ordered", True)
            yield rows

    def _team_query(self, id_list: str) -> str:
        stream = self.streams.sf_team_member
        return soql.select(
            stream.object,
            stream.fields,
            where=f"{stream.parent_field} IN {id_list}",
            order_by=(stream.parent_field or "AccountId", "Id"),
        )

    def team_reread_capacity(self) -> int:
        """Accounts one team re-read query can ask for."""
        return soql.ids_per_query(self._team_query)

    def refresh_team_members(self, account_ids: Sequence[str]) -> set[str]:
        """Re-read the team rows of these accounts (their actual team, right before planning
        the writes) and return the accounts whose team changed since the pull: rows new or
        different are stored, rows gone are collected as vanished (deleted once the plan
        passes the safeguard)."""
        stream = self.streams.sf_team_member
        changed: set[str] = set()
        # As many accounts a query as the REST URI limit allows.
        for chunk in soql.id_chunks(account_ids, self._team_query):
            query = self._team_query(soql.id_list(chunk))
            fresh = [
                _row(stream, rec) for page in self.sf.query(query, allow_bulk=False) for rec in page
            ]
            known_gone = self.vanished.of(stream.system, stream.object)
            with self.store.session() as s:
                # (parent, data) of the stored rows: plain columns, no ORM object per row.
                stored: dict[str, tuple[str | None, dict[str, Any]]] = {
                    rid: (parent, data)
                    for rid, parent, data in s.execute(
                        select(RawRecord.record_id, RawRecord.parent_id, RawRecord.data).where(
                            RawRecord.system == stream.system,
                            RawRecord.object == stream.object,
                            RawRecord.parent_id.in_(chunk),
                            RawRecord.is_deleted.is_(False),
                        )
                    )
                }
                for row in fresh:
                    before = stored.get(row.record_id)
                    if (
                        before is None
                        or row.record_id in known_gone
                        or _fields(stream, before[1]) != _fields(stream, row.data)
                    ):
                        changed.add(row.parent_id or "")
                seen = {r.record_id for r in fresh}
                stale = [rid for rid in stored if rid not in seen]
                changed.update(stored[rid][0] or "" for rid in stale if rid not in known_gone)
                # Rows stored exactly as read again are only marked seen, not rewritten.
                last = {r.record_id: r for r in fresh}
                same = [
                    rid
                    for rid, r in last.items()
                    if rid not in known_gone
                    and (held := stored.get(rid)) is not None
                    and held[1] == r.data
                ]
                if same:
                    kept = set(same)
                    self.store.touch_raw(s, stream.system, stream.object, same)
                    fresh = [r for r in fresh if r.record_id not in kept]
                self.store.upsert_raw(s, stream.system, stream.object, fresh)
            if seen & known_gone:
                # Seen again = live again: an earlier read of this run (the Id scan) missed
                # these rows, the team itself holds them; their accounts are planned again.
                revived = self.vanished.discard(stream, seen)
                log.info("team rows seen again by the re-read", rows=revived)
            if stale:
                # Gone since the last pull: deleted once the plan passes the safeguard.
                self.vanished.add(stream, stale)
                log.info("team rows gone since last pull", rows=len(stale))
        changed.discard("")
        return changed

    def _reconcile_hard_deletes(self, stream: Stream[Any], stats: StreamStats) -> int:
        """Find hard-deleted rows: compare counts, scan Ids only when they differ.  Rows the
        scan finds that the store holds as deleted are re-read: they are live again."""
        remote = self.sf.count(soql.count_query(soql.select(stream.object, ("Id",))))
        with self.store.session() as s:
            local = s.scalar(
                select(func.count())
                .select_from(RawRecord)
                .where(
                    RawRecord.system == stream.system,
                    RawRecord.object == stream.object,
                    RawRecord.is_deleted.is_(False),
                )
            )
        stats.extra["remote_count"] = remote
        stats.extra["local_count"] = local
        if remote == local:
            return 0
        scan_started = self.clock()
        seen = 0
        revive: list[str] = []
        for page in self.sf.query(
            soql.select(stream.object, ("Id",), order_by=("Id",)), allow_bulk=True
        ):
            ids = [normalize_or_none(r.get("Id")) or str(r.get("Id")) for r in page]
            seen += len(ids)
            with self.store.session() as s:
                for part in batched(ids, IN_LIST):
                    s.execute(
                        update(RawRecord)
                        .where(
                            RawRecord.system == stream.system,
                            RawRecord.object == stream.object,
                            RawRecord.record_id.in_(part),
                        )
                        .values(pulled_at=scan_started)
                    )
                    revive.extend(
                        s.scalars(
                            select(RawRecord.record_id).where(
                                RawRecord.system == stream.system,
                                RawRecord.object == stream.object,
                                RawRecord.record_id.in_(part),
                                RawRecord.is_deleted.is_(True),
                            )
                        )
                    )
        revived = self._reread(stream, revive)
        gone = self.vanished.add(stream, self._unseen(stream, scan_started))
        stats.extra["revived"] = revived
        log.info(
            "hard deletes reconciled",
            stream=stream.name,
            remote=remote,
            local=local,
            scanned=seen,
            vanished=gone,
            revived=revived,
        )
        return gone

    def _reread(self, stream: Stream[Any], record_ids: Sequence[str]) -> int:
        """Read these records again by Id and store them as they are now (live again)."""
        count = 0
        for chunk in batched(record_ids, 200):
            query = soql.select(stream.object, stream.fields, where=f"Id IN {soql.id_list(chunk)}")
            rows = [_row(stream, rec) for page in self.sf.query(query, allow_bulk=False)
                    for rec in page]  # fmt: skip
            with self.store.session() as s:
                count += self.store.upsert_raw(s, stream.system, stream.object, rows)
        return count

    def _unseen(self, stream: Stream[Any], since: datetime) -> list[str]:
        """Live rows not pulled (nor seen by a scan) since ``since``: vanished upstream."""
        with self.store.session() as s:
            return list(
                s.scalars(
                    select(RawRecord.record_id).where(
                        RawRecord.system == stream.system,
                        RawRecord.object == stream.object,
                        RawRecord.is_deleted.is_(False),
                        RawRecord.pulled_at < since,
                    )
                )
            )

    # --- Gainsight ------------------------------------------------------------------------
    def _gs_pages(
        self,
        stream: Stream[Any],
        lower: datetime | None,
        upper: datetime | None,
        cursor: tuple[datetime | None, str | None] | None,
    ) -> Iterator[list[RawRow]]:
        from connectors.gainsight import Condition, filter_datetime

        conditions: list[Any] = []
        # Filter values in the documented "yyyy-MM-dd HH:mm:ss" (UTC) form; the time zone
        # Gainsight applies to them is undocumented, which the lookback window absorbs.
        if lower is not None:
            conditions.append(Condition(stream.stamp_field, "GTE", [filter_datetime(lower)]))
        if upper is not None:
            conditions.append(Condition(stream.stamp_field, "LT", [filter_datetime(upper)]))
        # Gainsight pages by Gsid (keyset): a resumed pull starts after the last Gsid stored.
        after = cursor[1] if cursor is not None and cursor[1] else None
        for page in self.gs.query(stream.object, stream.fields, conditions=conditions, after=after):
            yield [_row(stream, rec) for rec in page]


def _fields(stream: Stream[Any], data: dict[str, Any]) -> dict[str, Any]:
    """What the stream reads of a record (the rest, e.g. ``attributes``, may differ by API)."""
    return {f: data.get(f) for f in stream.fields}


class Rows(list[RawRow]):
    """A page of rows; ``ordered`` False when they came in no order (Bulk without ORDER BY)."""

    ordered = True


def _row(stream: Stream[Any], pulled: dict[str, Any]) -> RawRow:
    """A pulled record as stored: id, stamp, deleted flag, parent and match keys.  Text that
    cannot be stored (NUL bytes ...) is replaced and the record marked for quarantine."""
    rec, problems = storable(pulled)
    if problems:
        rec[UNSTORABLE] = "; ".join(problems)[:500]
    raw_id = rec.get(stream.key)
    rid = (normalize_or_none(raw_id) if stream.system == System.SALESFORCE else None) or str(raw_id)
    parent = normalize_or_none(rec.get(stream.parent_field)) if stream.parent_field else None
    match = None
    if stream.match_field:
        value = rec.get(stream.match_field)
        if isinstance(value, str):
            match = value.strip().lower()[:255] or None
    try:
        stamp = parse_datetime(rec.get(stream.stamp_field))
    except ValueError:
        stamp = None  # kept raw; the mapper quarantines what it cannot read
    return RawRow(rid, rec, stamp, bool(rec.get("IsDeleted")), parent, match)
