"""Where alerts go: the log, Slack and the signed webhook; ``teamsync alerts test``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import structlog

from config.errors import ConfigurationError, TeamsyncError
from config.settings import Settings
from connectors.errors import RetryableError
from connectors.retry import RetryPolicy, call_with_retry, parse_retry_after
from connectors.tls import ssl_context
from mappings.schema import load_mapping
from sync.alerts.slack import slack_message
from sync.alerts.webhook import SIGNATURE_HEADER, sign, standard_headers
from sync.clock import utcnow

log = structlog.get_logger("teamsync.alerts")

IDEMPOTENCY_HEADER = "Idempotency-Key"


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
        # A triage digest lists its accounts, a digest its alerts: one line each, below the
        # digest's own warning.
        for entry in alert.get("accounts") or ():
            log.info(
                "account in triage digest",
                account=entry.get("id"),
                name=entry.get("name"),
                score=entry.get("score"),
                band=entry.get("band"),
                digest=alert.get("idempotency_key"),
            )
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
            # Standard Webhooks (id, timestamp, v1 signature); the old header for one release.
            headers.update(standard_headers(str(alert.get("idempotency_key")), body, self._secret))
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
                # A redirect is a failed delivery (retried later), never followed: the body
                # and, for Slack, the URL's token must not travel to another host.
                follow_redirects=False,
                timeout=httpx.Timeout(
                    settings.read_timeout_seconds, connect=settings.connect_timeout_seconds
                ),
            )
        if name == "slack":
            if settings.alert_slack_webhook_url is None:
                raise ConfigurationError(
                    "slack sink chosen but TEAMSYNC_ALERT_SLACK_WEBHOOK_URL is not set"
                )
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
                raise ConfigurationError(
                    "webhook sink chosen but TEAMSYNC_ALERT_WEBHOOK_URL is not set"
                )
            if settings.alert_webhook_secret is None:
                raise ConfigurationError(
                    "the webhook sink needs TEAMSYNC_ALERT_WEBHOOK_SECRET to sign with"
                )
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


def send_test_alerts(settings: Settings) -> dict[str, str]:
    """``teamsync alerts test``: one sample alert per configured sink."""
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
