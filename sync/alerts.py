"""Red-health alerts, routed to the account team, once per transition, never lost.

Transitions (per account, against ``alert_state``):

- ``entered_red``  the band becomes Red from any other band or from unknown (optionally only
                   from Yellow: ``TEAMSYNC_ALERT_YELLOW_TO_RED_ONLY``);
- ``reminder``     while it stays Red, every ``TEAMSYNC_ALERT_REMINDER_DAYS`` (7) days;
- ``recovered``    it leaves Red for another band after an alert was sent for that episode.

A missing score (band ``unknown``) is no observation: it neither ends nor starts an episode,
so a scorecard that goes blank for a while sends no "recovered" notice (and no new "entered
Red" when the score comes back still Red).

Outbox: every alert is written to ``alert_outbox`` (one row per sink) with an idempotency key
``{account}:{transition}:{date}`` (``:2``, ``:3``... for a second such transition the same
day, so a same-day flap is not swallowed) in the same transaction that moves the account's
alert state, so a transition is recorded exactly once whatever the number of runs.

Delivery at the end of the run (also after a failed push) sends what is due and marks it
sent; a failed delivery is retried on later runs with exponential backoff (1 minute doubling
up to 6 hours; after ``TEAMSYNC_ALERT_MAX_ATTEMPTS`` the row shows as ``failed`` but is still
retried: an alert is never dropped).  When a sink stays unreachable through the retry policy,
the rest of its queue waits for the next run instead of each alert spending the policy again.
A crash between sending and marking re-sends that alert once, with the same idempotency key
in the payload and the ``Idempotency-Key`` header, so receivers can drop the duplicate.

Storm control: when more alerts are due for a sink than ``TEAMSYNC_ALERT_DIGEST_THRESHOLD``
(25), one digest listing them all is sent instead (its key is derived from the keys it lists;
each listed alert keeps its own key).

Sinks: ``log`` (a structlog line), ``slack`` (incoming webhook, Block Kit), ``webhook``
(generic JSON, signed: ``X-Teamsync-Signature: sha256=<hex HMAC-SHA256 of the raw body with
TEAMSYNC_ALERT_WEBHOOK_SECRET>``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import or_, select

from config.settings import Settings
from connectors.errors import RetryableError, TeamsyncError
from connectors.retry import RetryPolicy, call_with_retry, parse_retry_after
from connectors.tls import ssl_context
from mappings.model import Mapping
from sync.models import AlertOutbox, AlertState
from sync.store import Store, utcnow

log = structlog.get_logger("teamsync.alerts")

SIGNATURE_HEADER = "X-Teamsync-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_BACKOFF = timedelta(hours=6)
FIRST_BACKOFF = timedelta(minutes=1)
DIGEST_SECTIONS = 45  # Slack: 50 blocks a message (header, sections, overflow, context)


def backoff(attempts: int) -> timedelta:
    """How long a row waits after its ``attempts``-th failed delivery (1 min doubling, 6 h cap)."""
    return min(FIRST_BACKOFF * (1 << max(0, min(attempts - 1, 20))), MAX_BACKOFF)


# --- transitions (pure) ---------------------------------------------------------------------
@dataclass(frozen=True)
class Transition:
    kind: str  # entered_red / reminder / recovered
    previous_band: str | None


def transition(
    *,
    band: str,
    state: AlertState | None,
    now: datetime,
    red: str,
    yellow_to_red_only: bool,
    yellow: str,
    reminder_days: int,
    unknown: str | None = None,
) -> Transition | None:
    """The alert (if any) this observation calls for, given the stored alert state.

    ``unknown`` is the band of a missing score: no transition either way.
    """
    if unknown is not None and band == unknown:
        return None
    previous = state.band if state is not None else None
    if band == red:
        if previous != red:
            if yellow_to_red_only and previous != yellow:
                return None
            return Transition("entered_red", previous)
        if state is not None and state.last_alert_at is not None:
            if now - state.last_alert_at >= timedelta(days=reminder_days):
                return Transition("reminder", previous)
        return None
    if previous == red and state is not None and state.last_alert_at is not None:
        return Transition("recovered", previous)
    return None


# --- message content ------------------------------------------------------------------------
def _member(mapped: Any, key: str, mapping: Mapping) -> dict[str, Any]:
    member = mapped.team.get(key)
    role = mapping.roles[key].name
    if member is None or member.inactive:
        return {
            "role": key,
            "role_name": role,
            "name": None,
            "email": None,
            "missing": True,
            "inactive": bool(member is not None and member.inactive),
        }
    return {
        "role": key,
        "role_name": role,
        "name": member.person.name,
        "email": member.person.email,
        "missing": False,
        "inactive": False,
    }


def routing(mapped: Any, mapping: Mapping) -> dict[str, Any]:
    """The DCI row for alerts: DRI, consulted and informed, each with name and e-mail."""
    row = mapping.dci[mapping.alerts.routing_activity]
    owner_role = mapping.owner_role_for(mapped.segment)
    people: dict[str, list[dict[str, Any]]] = {"D": [], "C": [], "I": []}
    for key, letter in row.items():
        role = mapping.roles[key]
        # The account owner holds one of SAE / AE depending on the segment: skip the other.
        if role.source == "account_owner" and key != owner_role:
            continue
        if role.engaged == "renewal_window" and not (
            key in mapped.team or (mapped.renewal is not None and mapped.renewal.in_window)
        ):
            continue  # no renewal in the window: the RM is not expected
        people[letter].append(_member(mapped, key, mapping))
    missing = [p["role_name"] for group in people.values() for p in group if p["missing"]]
    dri = people["D"][0] if people["D"] else None
    return {
        "activity": mapping.alerts.routing_activity,
        "dri": dri,
        "consulted": people["C"],
        "informed": people["I"],
        "missing": missing,
    }


def build_alert(
    kind: str,
    mapped: Any,
    *,
    previous_band: str | None,
    previous_score: float | None,
    key: str,
    now: datetime,
    mapping: Mapping,
    salesforce_url: str | None,
    gainsight_url: str | None,
) -> dict[str, Any]:
    team = routing(mapped, mapping)
    sf_link = (
        f"{salesforce_url}/lightning/r/Account/{mapped.account_id}/view" if salesforce_url else None
    )
    gs_link = (
        f"{gainsight_url}/v1/ui/customersuccess360?cid={mapped.company_gsid}"
        if gainsight_url and mapped.company_gsid
        else None
    )
    verb = {
        "entered_red": "turned Red",
        "reminder": "is still Red",
        "recovered": f"left Red ({mapped.health_band})",
    }.get(kind, kind)
    title = f"{mapped.name} {verb}"
    if mapped.health_score is not None:
        title += f" — health {mapped.health_score:g}"
    missing = [f"no {role} assigned" for role in team["missing"]]
    return {
        "idempotency_key": key,
        "kind": kind,
        "title": title,
        "occurred_at": now.isoformat(),
        "account": {
            "id": mapped.account_id,
            "name": mapped.name,
            "segment": mapped.segment,
            "lifecycle": mapped.lifecycle,
            "arr": mapped.arr,
            "days_to_renewal": mapped.renewal.days if mapped.renewal else None,
            "renewal_date": mapped.renewal.close_date.isoformat() if mapped.renewal else None,
            "salesforce_url": sf_link,
            "gainsight_url": gs_link,
            "gainsight_company_id": mapped.company_gsid,
        },
        "health": {
            "score": mapped.health_score,
            "band": mapped.health_band,
            "previous_score": previous_score,
            "previous_band": previous_band,
            "trend": mapped.trend,
        },
        "flags": list(mapped.flags),
        "team": team,
        "missing": missing,
    }


def slack_message(alert: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message in Block Kit, with a plain-text fallback."""
    if alert.get("kind") == "digest":
        lines = [
            "• " + _link(a["account"].get("salesforce_url"), _cut(_one_line(a["title"]), 300))
            for a in alert["alerts"]
        ]
        chunks = _chunks(lines, 2800)
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": _cut(alert["title"], 150)}}
        ]
        shown = chunks[:DIGEST_SECTIONS]
        for text in shown:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
        listed = sum(text.count("\n") + 1 for text in shown)
        if listed < len(lines):
            # Slack allows 50 blocks a message: say how many did not fit rather than drop them.
            more = f"… and {len(lines) - listed} more (every alert is in the log sink)"
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": more}})
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"teamsync digest · key `{_esc(alert['idempotency_key'])}`",
                    }
                ],
            }
        )
        return {"text": _cut(_esc(alert["title"]), 3000), "blocks": blocks}
    acc = alert["account"]
    health = alert["health"]
    team = alert["team"]
    score = "unknown" if health["score"] is None else f"{health['score']:g}"
    before = "unknown" if health["previous_score"] is None else f"{health['previous_score']:g}"
    fields = [
        f"*Segment*\n{_esc(acc['segment'])}",
        f"*ARR*\n{_money(acc['arr'])}",
        f"*Health*\n{score} ({_esc(health['band'])}), before {before}",
        f"*Trend*\n{_esc(health['trend'] or 'n/a')}",
        "*Renewal*\n"
        + (f"in {acc['days_to_renewal']} days" if acc["days_to_renewal"] is not None else "none"),
        f"*Risk flags*\n{_esc(', '.join(alert['flags']) or 'none')}",
    ]
    people = []
    if team["dri"]:
        people.append("*DRI* " + _who(team["dri"]))
    for p in team["consulted"]:
        people.append("*Consulted* " + _who(p))
    for p in team["informed"]:
        people.append("*Informed* " + _who(p))
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(alert["title"], 150)}},
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": _cut(f, 2000)} for f in fields],
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _cut("\n".join(people) or "No team on record", 3000),
            },
        },
    ]
    buttons = []
    if acc.get("salesforce_url"):
        buttons.append(_button("Salesforce account", acc["salesforce_url"], "open_salesforce"))
    if acc.get("gainsight_url"):
        buttons.append(_button("Gainsight C360", acc["gainsight_url"], "open_gainsight"))
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    context = [{"type": "mrkdwn", "text": f"teamsync · key `{_esc(alert['idempotency_key'])}`"}]
    if alert["missing"]:
        warning = ":warning: " + _esc("; ".join(alert["missing"]))
        context.insert(0, {"type": "mrkdwn", "text": _cut(warning, 3000)})
    blocks.append({"type": "context", "elements": context})
    return {"text": _cut(_esc(alert["title"]), 3000), "blocks": blocks}


def _who(p: dict[str, Any]) -> str:
    role = _esc(p["role_name"])
    if p["missing"]:
        return f"{role}: _none assigned_" + (" (inactive user)" if p["inactive"] else "")
    name = _esc(p["name"] or "")
    if not p["email"]:
        return f"{role}: {name or '(no name)'}"
    email = _esc(p["email"])
    label = f"{name} " if name else ""
    return f"{role}: {label}<mailto:{email}|{email}>"


def _button(text: str, url: str, action_id: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "url": url[:3000],
        "action_id": action_id,
    }


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _esc(text: str) -> str:
    """Slack mrkdwn: &, < and > are control characters and must be sent as HTML entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str | None, text: str) -> str:
    # "|" ends a link's URL part; inside the label it is harmless once <, > are escaped.
    return f"<{url}|{_esc(text)}>" if url else _esc(text)


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _chunks(lines: Sequence[str], limit: int) -> list[str]:
    out: list[str] = []
    current = ""
    for line in lines:
        if current and len(current) + len(line) + 1 > limit:
            out.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        out.append(current)
    return out or ["(none)"]


def sign(body: bytes, secret: str) -> str:
    """The signature header value for a webhook body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str | None) -> bool:
    """Receivers: check ``X-Teamsync-Signature`` in constant time."""
    if not header:
        return False
    # Compare bytes: compare_digest refuses non-ASCII str, and a header is untrusted input.
    return hmac.compare_digest(sign(body, secret).encode(), header.encode("utf-8", "replace"))


# --- sinks ----------------------------------------------------------------------------------
class DeliveryError(TeamsyncError):
    pass


class Sink:
    name = "sink"

    def send(self, alert: dict[str, Any]) -> None:
        raise NotImplementedError


class LogSink(Sink):
    name = "log"

    def send(self, alert: dict[str, Any]) -> None:
        log.warning(
            "alert",
            kind=alert.get("kind"),
            title=alert.get("title"),
            key=alert.get("idempotency_key"),
            account=(alert.get("account") or {}).get("id"),
            count=alert.get("count"),
        )
        # A digest lists its alerts: one line each, below the digest's own warning.
        for item in alert.get("alerts") or ():
            log.info(
                "alert in digest",
                kind=item.get("kind"),
                title=item.get("title"),
                key=item.get("idempotency_key"),
                account=(item.get("account") or {}).get("id"),
                digest=alert.get("idempotency_key"),
            )


class HttpSink(Sink):
    def __init__(
        self,
        name: str,
        url: str,
        *,
        client: httpx.Client,
        policy: RetryPolicy,
        secret: str | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.name = name
        self._url = url
        self._client = client
        self._policy = policy
        self._secret = secret
        self._sleep = sleep

    def render(self, alert: dict[str, Any]) -> dict[str, Any]:
        return slack_message(alert) if self.name == "slack" else alert

    def send(self, alert: dict[str, Any]) -> None:
        body = json.dumps(self.render(alert), separators=(",", ":"), default=str).encode()
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: str(alert.get("idempotency_key")),
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(body, self._secret)

        def post() -> None:
            try:
                response = self._client.post(self._url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                # The exception text may carry the URL, and a Slack webhook URL is a secret.
                raise RetryableError(f"{self.name}: {type(exc).__name__}", api=self.name) from exc
            if response.status_code in (408, 425, 429) or response.status_code >= 500:
                raise RetryableError(
                    f"{self.name}: HTTP {response.status_code}",
                    api=self.name,
                    status=response.status_code,
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                )
            if response.status_code >= 300:
                raise DeliveryError(f"{self.name}: refused with HTTP {response.status_code}")

        kwargs: dict[str, Any] = {"api": self.name}
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep
        call_with_retry(post, self._policy, **kwargs)


def build_sinks(settings: Settings, *, sleep: Callable[[float], None] | None = None) -> list[Sink]:
    sinks: list[Sink] = []
    names = settings.effective_alert_sinks()
    client: httpx.Client | None = None
    policy = RetryPolicy(max_attempts=3, max_total_wait=10.0, initial_backoff=0.5)
    for name in names:
        if name == "log":
            sinks.append(LogSink())
            continue
        if client is None:
            client = httpx.Client(
                verify=ssl_context(settings.ca_bundle),
                timeout=httpx.Timeout(
                    settings.read_timeout_seconds, connect=settings.connect_timeout_seconds
                ),
            )
        if name == "slack":
            if settings.alert_slack_webhook_url is None:
                raise _config("slack sink chosen but TEAMSYNC_ALERT_SLACK_WEBHOOK_URL is not set")
            sinks.append(
                HttpSink(
                    "slack",
                    settings.alert_slack_webhook_url.get_secret_value(),
                    client=client,
                    policy=policy,
                    sleep=sleep,
                )
            )
        elif name == "webhook":
            if not settings.alert_webhook_url:
                raise _config("webhook sink chosen but TEAMSYNC_ALERT_WEBHOOK_URL is not set")
            if settings.alert_webhook_secret is None:
                raise _config("the webhook sink needs TEAMSYNC_ALERT_WEBHOOK_SECRET to sign with")
            sinks.append(
                HttpSink(
                    "webhook",
                    settings.alert_webhook_url,
                    client=client,
                    policy=policy,
                    secret=settings.alert_webhook_secret.get_secret_value(),
                    sleep=sleep,
                )
            )
    return sinks


def _config(message: str) -> TeamsyncError:
    from connectors.errors import ConfigurationError

    return ConfigurationError(message)


# --- the alerter ----------------------------------------------------------------------------
class Alerter:
    def __init__(
        self,
        store: Store,
        mapping: Mapping,
        sinks: Sequence[Sink],
        *,
        reminder_days: int = 7,
        yellow_to_red_only: bool = False,
        digest_threshold: int = 25,
        max_attempts: int = 10,
        salesforce_url: str | None = None,
        gainsight_url: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
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
        mapping: Mapping,
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
        )

    # -- recording ----------------------------------------------------------------------
    def observe(self, chunk: Any, run_id: str) -> int:
        """Record the transitions of a mapped chunk into the outbox; returns alerts recorded."""
        now = self.clock()
        red = self.mapping.health.red
        recorded = 0
        items = list(chunk.items)
        if not items:
            return 0
        with self.store.session() as s:
            ids = [i.mapped.account_id for i in items]
            states: dict[str, AlertState] = {}
            for start in range(0, len(ids), 500):
                for st in s.scalars(
                    select(AlertState).where(AlertState.account_id.in_(ids[start : start + 500]))
                ):
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
    def _free_key(s: Any, base: str) -> str:
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
        self, s: Any, state: AlertState | None, mapped: Any, t: Transition | None, now: datetime
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
        if t is not None and t.kind in ("entered_red", "reminder"):
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
            if len(due) > self.digest_threshold:
                summary[sink.name] = self._send_digest(sink, due, now)
                continue
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
            summary[sink.name] = {"sent": sent, "failed": failed, "deferred": deferred}
        if summary:
            log.info("alerts delivered", **summary)
        return summary

    def _send_digest(self, sink: Sink, rows: list[AlertOutbox], now: datetime) -> dict[str, Any]:
        keys = sorted(r.idempotency_key for r in rows)
        digest_key = "digest:" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:20]
        alerts = [r.payload for r in rows]
        kinds: dict[str, int] = {}
        for r in rows:
            kinds[r.kind] = kinds.get(r.kind, 0) + 1
        title = (
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
    def _rows(s: Any, ids: list[int]) -> list[AlertOutbox]:
        out: list[AlertOutbox] = []
        for start in range(0, len(ids), 500):
            out.extend(
                s.scalars(select(AlertOutbox).where(AlertOutbox.id.in_(ids[start : start + 500])))
            )
        return out


def send_test_alerts(settings: Settings) -> dict[str, str]:
    """``teamsync alerts test``: one sample alert per configured sink."""
    from mappings.model import load_mapping

    mapping = load_mapping(settings.mapping)
    now = utcnow()
    sample = {
        "idempotency_key": f"test:{now.isoformat(timespec='seconds')}",
        "kind": "test",
        "title": "teamsync test alert — Example Corp turned Red — health 42",
        "occurred_at": now.isoformat(),
        "account": {
            "id": "001000000000000AAA",
            "name": "Example Corp",
            "segment": mapping.segments.values[0],
            "lifecycle": mapping.lifecycle.customer,
            "arr": 120000,
            "days_to_renewal": 45,
            "renewal_date": None,
            "salesforce_url": None,
            "gainsight_url": None,
            "gainsight_company_id": None,
        },
        "health": {
            "score": 42,
            "band": mapping.health.red,
            "previous_score": 68,
            "previous_band": None,
            "trend": "Down",
        },
        "flags": ["RED_HEALTH", "RENEWAL_AT_RISK"],
        "team": {
            "activity": mapping.alerts.routing_activity,
            "dri": {
                "role": "CSM",
                "role_name": "Customer Success Manager",
                "name": "Sample CSM",
                "email": "csm@example.com",
                "missing": False,
                "inactive": False,
            },
            "consulted": [],
            "informed": [],
            "missing": [],
        },
        "missing": [],
    }
    results: dict[str, str] = {}
    for sink in build_sinks(settings):
        try:
            sink.send(sample)
            results[sink.name] = "sent"
        except TeamsyncError as exc:
            results[sink.name] = f"failed: {exc}"
    return results
