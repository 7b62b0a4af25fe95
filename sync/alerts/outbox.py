"""The outbox: transitions recorded with the account's alert state, delivered when due."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from config.errors import TeamsyncError
from config.settings import Settings
from connectors.batching import batched
from mappings.rules import MappedAccount
from mappings.schema import MappingFile
from sync.alerts.health import FIRING, RESOLVED
from sync.alerts.routing import build_alert
from sync.alerts.sinks import DeliveryError, Sink, build_sinks
from sync.alerts.transitions import Transition, transition
from sync.clock import utcnow
from sync.stages.map import MappedChunk
from sync.store import IN_LIST, Store
from sync.store.models import AlertOutbox, AlertState

log = structlog.get_logger("teamsync.alerts")

ALREADY_RED = "already_red"  # Red at the first run on an empty store (sent as one digest)
MAX_BACKOFF = timedelta(hours=6)
FIRST_BACKOFF = timedelta(minutes=1)


def backoff(attempts: int) -> timedelta:
    """How long a row waits after its ``attempts``-th failed delivery (1 min doubling, 6 h cap)."""
    return min(FIRST_BACKOFF * (1 << max(0, min(attempts - 1, 20))), MAX_BACKOFF)


class Alerter:
    def __init__(
        self,
        store: Store,
        mapping: MappingFile,
        sinks: Sequence[Sink],
        *,
        reminder_days: int = 7,
        yellow_to_red_only: bool = False,
        digest_threshold: int = 25,
        max_attempts: int = 10,
        salesforce_url: str | None = None,
        gainsight_url: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        first_run: str = "digest",
    ) -> None:
        self.store = store
        # The first run on an empty store: the accounts already Red go out as one digest
        # ("digest") or are taken as known ("none"), never as one alert each.
        self.first_run = first_run
        self._baseline: tuple[str, bool] | None = None  # (run id, is this the first run)
        self.mapping = mapping
        self.sinks = list(sinks)
        self.reminder_days = reminder_days
        self.yellow_to_red_only = yellow_to_red_only
        self.digest_threshold = digest_threshold
        self.max_attempts = max_attempts
        self.salesforce_url = salesforce_url
        self.gainsight_url = gainsight_url
        self.clock = clock
        bands = [b.band for b in mapping.health.bands]
        red_index = bands.index(mapping.health.red)
        self._yellow = bands[red_index + 1] if red_index + 1 < len(bands) else ""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        mapping: MappingFile,
        store: Store,
        *,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] | None = None,
    ) -> Alerter:
        return cls(
            store,
            mapping,
            build_sinks(settings, sleep=sleep),
            reminder_days=settings.alert_reminder_days,
            yellow_to_red_only=settings.alert_yellow_to_red_only,
            digest_threshold=settings.alert_digest_threshold,
            max_attempts=settings.alert_max_attempts,
            salesforce_url=settings.salesforce_instance_url,
            gainsight_url=settings.gainsight_base_url,
            clock=clock,
            first_run=settings.alert_first_run,
        )

    # -- recording ----------------------------------------------------------------------
    def observe(self, chunk: MappedChunk, run_id: str) -> int:
        """Record the transitions of a mapped chunk into the outbox; returns alerts recorded."""
        now = self.clock()
        red = self.mapping.health.red
        recorded = 0
        items = list(chunk.items)
        if not items:
            return 0
        with self.store.session() as s:
            if self._baseline is None or self._baseline[0] != run_id:
                # Judged once per run, before its first chunk records any state.
                empty = s.scalars(select(AlertState.account_id).limit(1)).first() is None
                self._baseline = (run_id, empty)
            first_run = self._baseline[1]
            ids = [i.mapped.account_id for i in items]
            states: dict[str, AlertState] = {}
            for part in batched(ids, IN_LIST):
                for st in s.scalars(select(AlertState).where(AlertState.account_id.in_(part))):
                    states[st.account_id] = st
            for item in items:
                mapped = item.mapped
                state = states.get(mapped.account_id)
                t = transition(
                    band=mapped.health_band,
                    state=state,
                    now=now,
                    red=red,
                    yellow_to_red_only=self.yellow_to_red_only,
                    yellow=self._yellow,
                    reminder_days=self.reminder_days,
                    unknown=self.mapping.health.unknown,
                )
                if first_run and t is not None and t.kind == "entered_red":
                    # Already Red when teamsync first looked: not news, no alert of its own.
                    if self.first_run == "none":
                        self._move_state(s, state, mapped, None, now)
                        continue
                    t = Transition(ALREADY_RED, t.previous_band)
                if t is not None:
                    key = self._free_key(
                        s, f"{mapped.account_id}:{t.kind}:{now.date().isoformat()}"
                    )
                    previous_score = state.score if state is not None else mapped.previous_score
                    payload = build_alert(
                        t.kind,
                        mapped,
                        previous_band=t.previous_band,
                        previous_score=previous_score,
                        key=key,
                        now=now,
                        mapping=self.mapping,
                        salesforce_url=self.salesforce_url,
                        gainsight_url=self.gainsight_url,
                    )
                    for sink in self.sinks:
                        s.add(
                            AlertOutbox(
                                idempotency_key=key,
                                sink=sink.name,
                                account_id=mapped.account_id,
                                kind=t.kind,
                                payload=payload,
                                status="pending",
                                attempts=0,
                                next_attempt_at=now,
                                created_at=now,
                                run_id=run_id,
                            )
                        )
                    recorded += 1
                self._move_state(s, state, mapped, t, now)
        return recorded

    @staticmethod
    def _free_key(s: Session, base: str) -> str:
        """``base``, or ``base:2``, ``base:3``... when the same transition already happened
        today (Red, back, Red again): a real second transition must not collide with the
        first one's key, or receivers deduplicating on it would drop it."""
        taken = set(
            s.scalars(
                select(AlertOutbox.idempotency_key).where(
                    or_(
                        AlertOutbox.idempotency_key == base,
                        AlertOutbox.idempotency_key.like(base + ":%"),
                    )
                )
            )
        )
        key, n = base, 1
        while key in taken:
            n += 1
            key = f"{base}:{n}"
        return key

    def _move_state(
        self,
        s: Session,
        state: AlertState | None,
        mapped: MappedAccount,
        t: Transition | None,
        now: datetime,
    ) -> None:
        red = mapped.health_band == self.mapping.health.red
        if state is None:
            state = AlertState(
                account_id=mapped.account_id,
                band=mapped.health_band,
                score=mapped.health_score,
                red_since=now if red else None,
                last_alert_at=None,
                updated_at=now,
            )
            s.add(state)
        elif mapped.health_band == self.mapping.health.unknown:
            state.updated_at = now  # no score: keep the last known band and episode
        else:
            if red and state.band != self.mapping.health.red:
                state.red_since = now
                state.last_alert_at = None
            if not red:
                state.red_since = None
                state.last_alert_at = None
            state.band = mapped.health_band
            state.score = mapped.health_score
            state.updated_at = now
        if t is not None and t.kind in ("entered_red", "reminder", ALREADY_RED):
            state.last_alert_at = now

    # -- delivery -----------------------------------------------------------------------
    def deliver(self, run_id: str | None = None) -> dict[str, Any]:
        """Send what is due to every sink; returns counts per sink."""
        summary: dict[str, Any] = {}
        for sink in self.sinks:
            now = self.clock()
            with self.store.session() as s:
                due = list(
                    s.scalars(
                        select(AlertOutbox)
                        .where(
                            AlertOutbox.sink == sink.name,
                            AlertOutbox.status.in_(("pending", "failed")),
                            or_(
                                AlertOutbox.next_attempt_at.is_(None),
                                AlertOutbox.next_attempt_at <= now,
                            ),
                        )
                        .order_by(AlertOutbox.created_at, AlertOutbox.id)
                    )
                )
            if not due:
                continue
            # Sync-health alerts go first, each on its own (never inside an account digest).
            health = [r for r in due if r.kind in (FIRING, RESOLVED)]
            first = [r for r in due if r.kind == ALREADY_RED]
            due = [r for r in due if r.kind not in (FIRING, RESOLVED, ALREADY_RED)]
            result: dict[str, Any] = {}
            if health:
                result["sync_health"] = self._send_each(sink, health, now)
            if first:
                title = f"teamsync first run: {len(first)} accounts already Red"
                result["first_run"] = self._send_digest(sink, first, now, title=title)
            if len(due) > self.digest_threshold:
                result.update(self._send_digest(sink, due, now))
            elif due:
                result.update(self._send_each(sink, due, now))
            summary[sink.name] = result
        if summary:
            log.info("alerts delivered", **summary)
        return summary

    def _send_each(self, sink: Sink, due: list[AlertOutbox], now: datetime) -> dict[str, Any]:
        sent = failed = deferred = 0
        for i, row in enumerate(due):
            error = self._send_one(sink, [row], row.payload, now)
            if error is None:
                sent += 1
                continue
            failed += 1
            if not isinstance(error, DeliveryError):
                # Unreachable through the whole retry policy: the rest of this sink's
                # queue waits for the next run instead of spending the policy per alert.
                deferred = len(due) - i - 1
                break
        return {"sent": sent, "failed": failed, "deferred": deferred}

    def _send_digest(
        self, sink: Sink, rows: list[AlertOutbox], now: datetime, *, title: str | None = None
    ) -> dict[str, Any]:
        keys = sorted(r.idempotency_key for r in rows)
        digest_key = "digest:" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:20]
        alerts = [r.payload for r in rows]
        kinds: dict[str, int] = {}
        for r in rows:
            kinds[r.kind] = kinds.get(r.kind, 0) + 1
        title = title or (
            f"teamsync: {len(rows)} health alerts ("
            + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(kinds.items()))
            + ")"
        )
        payload = {
            "idempotency_key": digest_key,
            "kind": "digest",
            "title": title,
            "occurred_at": now.isoformat(),
            "count": len(rows),
            "alerts": alerts,
        }
        ok = self._send_one(sink, rows, payload, now) is None
        return {
            "digest": 1,
            "alerts": len(rows),
            "sent": len(rows) if ok else 0,
            "failed": 0 if ok else len(rows),
        }

    def _send_one(
        self, sink: Sink, rows: list[AlertOutbox], payload: dict[str, Any], now: datetime
    ) -> TeamsyncError | None:
        """Send, then mark the rows sent; on failure schedule their retry.  None: sent."""
        ids = [r.id for r in rows]
        try:
            sink.send(payload)
        except TeamsyncError as exc:
            with self.store.session() as s:
                for row in self._rows(s, ids):
                    row.attempts = (row.attempts or 0) + 1
                    row.next_attempt_at = now + backoff(row.attempts)
                    row.last_error = str(exc)[:1000]
                    row.status = "failed" if row.attempts >= self.max_attempts else "pending"
            log.warning(
                "alert delivery failed; will retry",
                sink=sink.name,
                error=str(exc),
                alerts=len(rows),
            )
            return exc
        # A crash here (sent, not yet marked) re-sends these rows on the next run, with the
        # same idempotency key.
        with self.store.session() as s:
            sent_at = self.clock()
            for row in self._rows(s, ids):
                row.status = "sent"
                row.sent_at = sent_at
                row.attempts = (row.attempts or 0) + 1
                row.next_attempt_at = None
                row.last_error = None
        return None

    @staticmethod
    def _rows(s: Session, ids: list[int]) -> list[AlertOutbox]:
        out: list[AlertOutbox] = []
        for part in batched(ids, IN_LIST):
            out.extend(s.scalars(select(AlertOutbox).where(AlertOutbox.id.in_(part))))
        return out
