"""Where alerts go: the log, Slack and the signed webhook; ``teamsync alerts test``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog

from config.errors import ConfigurationError, TeamsyncError
from config.settings import Settings
from connectors.errors import RetryableError
from connectors.retry import RetryPolicy, call_with_retry, parse_retry_after
from connectors.tls import ssl_context
from mappings.rules import MappedAccount, Member, Person, Renewal
from mappings.schema import MANAGER, MappingFile, load_mapping
from sync.alerts.routing import alert_title, build_alert
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
    policy = RetryPolicy.for_alert_sinks(settings)
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


def sample_alert(mapping: MappingFile, now: datetime) -> dict[str, Any]:
    """The alert ``teamsync alerts test`` sends: a made-up customer of the first segment
    entering Red, built and routed like a real one (its DRI a sample person), titled and
    keyed as a test."""
    today = now.date()
    risk_dri = next(
        (
            key
            for key, letter in mapping.dci_row("risk").items()
            if letter == "D" and key != MANAGER
        ),
        None,
    )
    team = {}
    if risk_dri is not None:
        person = Person(name=f"Sample {risk_dri}", email=f"{risk_dri.lower()}@example.com")
        team[risk_dri] = Member(risk_dri, person, mapping.roles[risk_dri].source)
    sample = MappedAccount(
        account_id="001000000000000AAA",
        name="Example Corp",
        segment=mapping.segments.values[0],
        segment_source="field",
        lifecycle=mapping.lifecycle.customer,
        is_customer=True,
        first_won=None,
        arr=120000.0,
        qualifying=True,
        renewal=Renewal("006000000000000AAA", today + timedelta(days=45), 45, True, None),
        company_gsid=None,
        health_score=42.0,
        health_band=mapping.health.red,
        previous_score=68.0,
        trend="Down",
        team=team,
        flags=["RED_HEALTH", "RENEWAL_AT_RISK"],
    )
    return build_alert(
        "test",
        sample,
        previous_band=None,
        previous_score=68.0,
        key=f"test:{now.isoformat(timespec='seconds')}",
        now=now,
        mapping=mapping,
        salesforce_url=None,
        gainsight_url=None,
        title=f"teamsync test alert — {alert_title('entered_red', sample)}",
    )


def send_test_alerts(
    settings: Settings, *, sleep: Callable[[float], None] | None = None
) -> dict[str, str]:
    """``teamsync alerts test``: one sample alert per configured sink."""
    sample = sample_alert(load_mapping(settings.mapping), utcnow())
    results: dict[str, str] = {}
    for sink in build_sinks(settings, sleep=sleep):
        try:
            sink.send(sample)
            results[sink.name] = "sent"
        except TeamsyncError as exc:
            results[sink.name] = f"failed: {exc}"
    return results
