"""The outbox: transitions recorded with the account's alert state, delivered when due."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

import structlog
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from config.errors import TeamsyncError
from config.settings import Settings
from connectors.batching import batched
from mappings.rules import MappedAccount
from mappings.schema import WEEKDAYS, MappingFile
from sync.alerts.health import FIRING, RESOLVED
from sync.alerts.routing import build_alert, routing_manager
from sync.alerts.sinks import DeliveryError, Sink, build_sinks
from sync.alerts.transitions import Transition, transition
from sync.clock import utcnow
from sync.stages.map import MappedChunk
from sync.store import IN_LIST, Store
from sync.store.models import Account, AlertOutbox, AlertState, CtaLink, TeamWipe

log = structlog.get_logger("teamsync.alerts")

ALREADY_RED = "already_red"  # Red at the first run on an empty store (sent as one digest)
MAX_BACKOFF = timedelta(hours=6)
TRIAGE_BATCH = 1000  # accounts read at a time for the triage digest
FIRST_BACKOFF = timedelta(minutes=1)


class _Due(NamedTuple):
    """An outbox row due for delivery, without its payload."""

    id: int
    kind: str
    key: str


def triage_period(today: date, every_days: int, weekday: str) -> date:
    """The first day of the triage period ``today`` is in: periods of ``every_days`` days,
    starting on ``weekday`` (weekly on Mondays by default)."""
    anchor = date(2024, 1, 1) + timedelta(days=WEEKDAYS.index(weekday))  # 2024-01-01: Monday
    return anchor + timedelta(days=((today - anchor).days // every_days) * every_days)


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
            escalations = self._due_escalations(s, ids, now)
            for item in items:
                mapped = item.mapped
                state = states.get(mapped.account_id)
                # Risk is for the lifecycles the mapping lists ([risk].lifecycles): the other
                # accounts keep their flags but get no red-health alert.
                eligible = mapped.lifecycle in self.mapping.risk.lifecycles
                t = None
                if eligible:
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
                    # Already Red when teamsync first looked: not news, no alert of its own
                    # (one digest, or nothing with first_run = "none").
                    t = (
                        None
                        if self.first_run == "none"
                        else Transition(ALREADY_RED, t.previous_band)
                    )
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
                    self._record(s, key, mapped.account_id, t.kind, payload, now, run_id)
                    recorded += 1
                recorded += self._coverage(s, mapped, state, now, run_id)
                for cta_gsid, opened_at in escalations.get(mapped.account_id, []):
                    recorded += self._escalate_handoff(s, mapped, cta_gsid, opened_at, now, run_id)
                self._move_state(s, state, mapped, t, now, eligible)
            recorded += self._observe_wipes(s, items, run_id, now)
        return recorded

    def _observe_wipes(self, s: Any, items: list[Any], run_id: str, now: datetime) -> int:
        """One alert per wiped team (TEAM_WIPED), routed by the risk row (the CSM is the
        DRI), naming the people lost from teamsync's last copy of the rows."""
        ids = [i.mapped.account_id for i in items if getattr(i, "wipe", None) is not None]
        if not ids:
            return 0
        open_wipes: dict[str, TeamWipe] = {}
        for part in batched(ids, IN_LIST):
            for w in s.scalars(
                select(TeamWipe).where(
                    TeamWipe.account_id.in_(part),
                    TeamWipe.alerted_at.is_(None),
                    TeamWipe.resolved_at.is_(None),
                )
            ):
                open_wipes[w.account_id] = w
        recorded = 0
        for item in items:
            wipe = open_wipes.get(item.mapped.account_id)
            if wipe is None:
                continue
            mapped = item.mapped
            key = self._free_key(s, f"{mapped.account_id}:team_wiped:{now.date().isoformat()}")
            lost = list(wipe.lost or [])
            names = ", ".join(
                f"{p.get('role') or 'member'} {p.get('name') or p.get('email') or p.get('user_id')}"
                for p in lost
            )
            payload = build_alert(
                "team_wiped",
                mapped,
                previous_band=None,
                previous_score=mapped.previous_score,
                key=key,
                now=now,
                mapping=self.mapping,
                salesforce_url=self.salesforce_url,
                gainsight_url=self.gainsight_url,
                signal="risk",
                title=(
                    f"{mapped.name}: account team wiped — {len(lost)} human-maintained "
                    f"row{'s' if len(lost) != 1 else ''} gone ({names}); re-add them, and ask "
                    "the integration that changed the owner to send KeepAccountTeam"
                ),
                extra={"lost": lost},
            )
            self._record(s, key, mapped.account_id, "team_wiped", payload, now, run_id)
            wipe.alerted_at = now
            recorded += 1
        return recorded

    def _record(
        self,
        s: Any,
        key: str,
        account_id: str | None,
        kind: str,
        payload: dict[str, Any],
        now: datetime,
        run_id: str,
    ) -> None:
        """One outbox row per sink, pending from now."""
        for sink in self.sinks:
            s.add(
                AlertOutbox(
                    idempotency_key=key,
                    sink=sink.name,
                    account_id=account_id,
                    kind=kind,
                    payload=payload,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    run_id=run_id,
                )
            )

    # -- coverage and the handoff escalation ---------------------------------------------
    def _coverage(
        self, s: Any, mapped: Any, state: AlertState | None, now: datetime, run_id: str
    ) -> int:
        """One alert to the role's manager when a role becomes overdue ([coverage]), routed
        by the coverage row; none while it stays overdue."""
        seen = set(state.flags or []) if state is not None else set()
        recorded = 0
        for role in getattr(mapped, "overdue_roles", ()) or ():
            if f"OVERDUE_{role}" in seen:
                continue
            name = self.mapping.roles[role].name
            due = mapped.deadlines.get(role)
            key = self._free_key(
                s, f"{mapped.account_id}:overdue_{role.lower()}:{now.date().isoformat()}"
            )
            title = f"{mapped.name}: no {name} assigned" + (
                f", due by {due.isoformat()}" if due is not None else ""
            )
            payload = build_alert(
                "coverage_overdue",
                mapped,
                previous_band=None,
                previous_score=mapped.previous_score,
                key=key,
                now=now,
                mapping=self.mapping,
                salesforce_url=self.salesforce_url,
                gainsight_url=self.gainsight_url,
                signal="coverage",
                subject_role=role,
                title=title,
                extra={
                    "coverage": {
                        "role": role,
                        "role_name": name,
                        "due": due.isoformat() if due is not None else None,
                    }
                },
            )
            self._record(s, key, mapped.account_id, "coverage_overdue", payload, now, run_id)
            recorded += 1
        return recorded

    def _due_escalations(
        self, s: Any, ids: list[str], now: datetime
    ) -> dict[str, list[tuple[str, datetime]]]:
        """Open Handoff CTAs of these accounts opened ``escalate_after_days`` ago or more."""
        handoff = self.mapping.handoff
        flags = [f for f, c in self.mapping.gainsight.cta.flags.items() if c.signal == "handoff"]
        out: dict[str, list[tuple[str, datetime]]] = {}
        if handoff is None or not flags:
            return out
        cutoff = now - timedelta(days=handoff.escalate_after_days)
        for part in batched(ids, IN_LIST):
            for link in s.scalars(
                select(CtaLink).where(
                    CtaLink.account_id.in_(part),
                    CtaLink.flag.in_(flags),
                    CtaLink.status == "open",
                    CtaLink.opened_at <= cutoff,
                )
            ):
                out.setdefault(link.account_id or "", []).append((link.cta_gsid, link.opened_at))
        return out

    def _escalate_handoff(
        self, s: Any, mapped: Any, cta_gsid: str, opened_at: datetime, now: datetime, run_id: str
    ) -> int:
        """Once per Handoff CTA: not closed in time, so its escalation goes to the manager of
        [handoff].escalate_to_manager_of (the CSM's manager), with the handoff row listed."""
        assert self.mapping.handoff is not None
        key = f"{mapped.account_id}:handoff_overdue:{cta_gsid}"
        exists = s.scalar(select(AlertOutbox.id).where(AlertOutbox.idempotency_key == key).limit(1))
        if exists is not None:
            return 0
        role = self.mapping.handoff.escalate_to_manager_of
        days = (now - opened_at).days
        payload = build_alert(
            "handoff_overdue",
            mapped,
            previous_band=None,
            previous_score=mapped.previous_score,
            key=key,
            now=now,
            mapping=self.mapping,
            salesforce_url=self.salesforce_url,
            gainsight_url=self.gainsight_url,
            signal="handoff",
            title=f"{mapped.name}: handoff still open {days} days after it was opened",
            extra={
                "escalation": {
                    "to": routing_manager(mapped, role, self.mapping),
                    "cta_id": cta_gsid,
                    "opened_at": opened_at.isoformat(),
                }
            },
        )
        self._record(s, key, mapped.account_id, "handoff_overdue", payload, now, run_id)
        return 1

    # -- the triage digest ---------------------------------------------------------------
    def record_triage(self, run_id: str) -> int:
        """The periodic triage digest ([triage]): per DRI of the risk row (the CSM), the
        accounts of [risk].lifecycles in the triage bands (Yellow), once per period."""
        tri = self.mapping.triage
        if not tri.bands:
            return 0
        now = self.clock()
        period = triage_period(now.date(), tri.every_days, tri.weekday)
        row = self.mapping.dci_row("risk")
        dri_roles = [k for k, v in row.items() if v == "D" and k in self.mapping.roles]
        groups: dict[str, tuple[dict[str, Any] | None, list[dict[str, Any]]]] = {}
        with self.store.session() as s:
            # Groups whose digest of this period is recorded already are not built again.
            suffix = f":{period.isoformat()}"
            done = {
                key
                for key in s.scalars(
                    select(AlertOutbox.idempotency_key).where(
                        AlertOutbox.idempotency_key > "triage:",
                        AlertOutbox.idempotency_key < "triage;",
                    )
                )
                if key.endswith(suffix)
            }
            # Plain rows of the columns a digest shows, fetched in batches: never every
            # matching account as an ORM object at once.
            rows = s.execute(
                select(
                    Account.account_id,
                    Account.name,
                    Account.segment,
                    Account.arr,
                    Account.health_score,
                    Account.health_band,
                    Account.trend,
                    Account.days_to_renewal,
                    Account.flags,
                    Account.team,
                )
                .where(
                    Account.deleted.is_(False),
                    Account.health_band.in_(tri.bands),
                    Account.lifecycle.in_(self.mapping.risk.lifecycles),
                )
                .order_by(Account.account_id)
                .execution_options(yield_per=TRIAGE_BATCH)
            )
            for acc in rows:
                holder = None
                for role in dri_roles:
                    member = (acc.team or {}).get(role)
                    if member and not member.get("inactive") and member.get("email"):
                        holder = {
                            "role": role,
                            "role_name": self.mapping.roles[role].name,
                            "name": member.get("name"),
                            "email": member.get("email"),
                        }
                        break
                group = (holder or {}).get("email") or "unassigned"
                if f"triage:{group}{suffix}" in done:
                    continue
                entry = {
                    "id": acc.account_id,
                    "name": acc.name,
                    "segment": acc.segment,
                    "arr": acc.arr,
                    "score": acc.health_score,
                    "band": acc.health_band,
                    "trend": acc.trend,
                    "days_to_renewal": acc.days_to_renewal,
                    "flags": list(acc.flags or []),
                    "salesforce_url": (
                        f"{self.salesforce_url}/lightning/r/Account/{acc.account_id}/view"
                        if self.salesforce_url
                        else None
                    ),
                }
                groups.setdefault(group, (holder, []))[1].append(entry)
            recorded = 0
            for group, (holder, entries) in sorted(groups.items()):
                key = f"triage:{group}:{period.isoformat()}"
                exists = s.scalar(
                    select(AlertOutbox.id).where(AlertOutbox.idempotency_key == key).limit(1)
                )
                if exists is not None:
                    continue
                who = (holder or {}).get("name") or (holder or {}).get("email")
                bands = "/".join(tri.bands)
                title = (
                    f"Health triage: {len(entries)} {bands} customer"
                    + ("s" if len(entries) != 1 else "")
                    + (f" for {who}" if who else " without a Customer Success Manager")
                )
                payload = {
                    "idempotency_key": key,
                    "kind": "triage_digest",
                    "signal": "risk",
                    "title": title,
                    "occurred_at": now.isoformat(),
                    "period_start": period.isoformat(),
                    "activity": self.mapping.alerts.activity("risk"),
                    "recipient": holder,
                    "count": len(entries),
                    "accounts": entries,
                }
                self._record(s, key, None, "triage_digest", payload, now, run_id)
                recorded += 1
        return recorded

    @staticmethod
    def _free_key(s: Session, base: str) -> str:
        """``base``, or ``base:2``, ``base:3``... when the same transition already happened
        today (Red, back, Red again): a real second transition must not collide with the
        first one's key, or receivers deduplicating on it would drop it."""
        # No autoflush: this chunk's new rows are written once, at its end (one flush per
        # chunk, not one per alert); their keys have other account ids, so no clash.
        with s.no_autoflush:
            return Alerter._next_free(s, base)

    @staticmethod
    def _next_free(s: Session, base: str) -> str:
        taken = set(
            s.scalars(
                # "base" or "base:<n>": a key range (":" + 1 is ";"), which the unique index
                # on the key answers - LIKE would read the whole outbox once per alert.
                select(AlertOutbox.idempotency_key).where(
                    or_(
                        AlertOutbox.idempotency_key == base,
                        and_(
                            AlertOutbox.idempotency_key > base + ":",
                            AlertOutbox.idempotency_key < base + ";",
                        ),
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
        eligible: bool = True,
    ) -> None:
        red = mapped.health_band == self.mapping.health.red
        flags = list(mapped.flags)
        if not eligible:
            # No red-health episode outside the risk lifecycles; only the flags are followed.
            if state is None:
                s.add(
                    AlertState(
                        account_id=mapped.account_id,
                        band=self.mapping.health.unknown,
                        score=None,
                        red_since=None,
                        last_alert_at=None,
                        updated_at=now,
                        flags=flags,
                    )
                )
            else:
                state.flags = flags
                state.updated_at = now
            return
        if state is None:
            state = AlertState(
                account_id=mapped.account_id,
                band=mapped.health_band,
                score=mapped.health_score,
                red_since=now if red else None,
                last_alert_at=None,
                updated_at=now,
                flags=flags,
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
        state.flags = flags
        if t is not None and t.kind in ("entered_red", "reminder", ALREADY_RED):
            state.last_alert_at = now

    # -- delivery -----------------------------------------------------------------------
    def deliver(self, run_id: str | None = None) -> dict[str, Any]:
        """Send what is due to every sink; returns counts per sink."""
        summary: dict[str, Any] = {}
        for sink in self.sinks:
            now = self.clock()
            with self.store.session() as s:
                # Plain (id, kind, key) rows: a payload is read when it is sent, and a first
                # run's digest of every Red account never holds an ORM object per alert.
                due = [
                    _Due(*row)
                    for row in s.execute(
                        select(AlertOutbox.id, AlertOutbox.kind, AlertOutbox.idempotency_key)
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
                ]
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

    def _send_each(self, sink: Sink, due: list[_Due], now: datetime) -> dict[str, Any]:
        sent = failed = deferred = 0
        payloads = self._payloads([r.id for r in due])
        for i, row in enumerate(due):
            error = self._send_one(sink, [row], payloads[row.id], now)
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
        self, sink: Sink, rows: list[_Due], now: datetime, *, title: str | None = None
    ) -> dict[str, Any]:
        keys = sorted(r.key for r in rows)
        digest_key = "digest:" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:20]
        del keys
        payloads = self._payloads([r.id for r in rows])
        alerts = [payloads.pop(r.id) for r in rows]
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
        self, sink: Sink, rows: list[_Due], payload: dict[str, Any], now: datetime
    ) -> TeamsyncError | None:
        """Send, then mark the rows sent; on failure schedule their retry.  None: sent."""
        ids = [r.id for r in rows]
        try:
            sink.send(payload)
        except TeamsyncError as exc:
            error = str(exc)[:1000]
            with self.store.session() as s:
                # Rows of one attempt count share their backoff: one UPDATE per count.
                by_attempts: dict[int, list[int]] = {}
                for part in batched(ids, IN_LIST):
                    for row_id, attempts in s.execute(
                        select(AlertOutbox.id, AlertOutbox.attempts).where(AlertOutbox.id.in_(part))
                    ):
                        by_attempts.setdefault((attempts or 0) + 1, []).append(row_id)
                for attempts, row_ids in by_attempts.items():
                    for part in batched(row_ids, IN_LIST):
                        s.execute(
                            update(AlertOutbox)
                            .where(AlertOutbox.id.in_(part))
                            .values(
                                attempts=attempts,
                                next_attempt_at=now + backoff(attempts),
                                last_error=error,
                                status="failed" if attempts >= self.max_attempts else "pending",
                            )
                        )
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
            for part in batched(ids, IN_LIST):
                s.execute(
                    update(AlertOutbox)
                    .where(AlertOutbox.id.in_(part))
                    .values(
                        status="sent",
                        sent_at=sent_at,
                        attempts=func.coalesce(AlertOutbox.attempts, 0) + 1,
                        next_attempt_at=None,
                        last_error=None,
                    )
                )
        return None

    def _payloads(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        """Outbox row id -> its payload."""
        out: dict[int, dict[str, Any]] = {}
        with self.store.session() as s:
            for part in batched(ids, IN_LIST):
                out.update(
                    (row_id, payload)
                    for row_id, payload in s.execute(
                        select(AlertOutbox.id, AlertOutbox.payload).where(AlertOutbox.id.in_(part))
                    )
                )
        return out
