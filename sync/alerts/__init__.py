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

from sync.alerts.outbox import FIRST_BACKOFF, MAX_BACKOFF, Alerter, backoff, triage_period
from sync.alerts.routing import build_alert, routing
from sync.alerts.sinks import (
    IDEMPOTENCY_HEADER,
    DeliveryError,
    HttpSink,
    LogSink,
    Sink,
    build_sinks,
    send_test_alerts,
)
from sync.alerts.slack import slack_message
from sync.alerts.transitions import Transition, transition
from sync.alerts.webhook import (
    SIGNATURE_HEADER,
    WEBHOOK_ID,
    WEBHOOK_SIGNATURE,
    WEBHOOK_TIMESTAMP,
    sign,
    standard_headers,
    verify,
    verify_standard,
)

__all__ = [
    "FIRST_BACKOFF",
    "IDEMPOTENCY_HEADER",
    "MAX_BACKOFF",
    "SIGNATURE_HEADER",
    "WEBHOOK_ID",
    "WEBHOOK_SIGNATURE",
    "WEBHOOK_TIMESTAMP",
    "Alerter",
    "DeliveryError",
    "HttpSink",
    "LogSink",
    "Sink",
    "Transition",
    "backoff",
    "build_alert",
    "build_sinks",
    "routing",
    "send_test_alerts",
    "sign",
    "slack_message",
    "standard_headers",
    "transition",
    "triage_period",
    "verify",
    "verify_standard",
]
