"""The connector's configuration and the small value types its methods return."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import SecretStr

from config.errors import ConfigurationError
from config.settings import (
    Settings,
    salesforce_credential_problems,
    salesforce_oauth_flow,
)
from connectors.retry import PollPolicy, RetryPolicy

AuthMode = Literal["token", "client_credentials", "jwt"]

_SECRET_FIELDS = frozenset({"access_token", "client_secret"})
PRODUCTION_AUDIENCE = "https://login.salesforce.com"
SANDBOX_AUDIENCE = "https://test.salesforce.com"
LOGIN_HOSTS = frozenset({"login.salesforce.com", "test.salesforce.com"})


def is_sandbox_host(url: str) -> bool:
    """A sandbox's host: test.salesforce.com, ``<domain>--<sandbox>.sandbox.my.salesforce.com``
    (enhanced domains) or ``<domain>--<sandbox>.my.salesforce.com`` (legacy My Domain)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "test.salesforce.com" or ".sandbox.my.salesforce." in host:
        return True
    first_label = host.split(".", 1)[0]
    return "--" in first_label and ".my.salesforce." in host


def jwt_audience_for(url: str) -> str:
    """The JWT bearer audience Salesforce expects for an org at ``url`` (VERIFIED: OAuth JWT
    docs: https://test.salesforce.com for sandboxes, https://login.salesforce.com else)."""
    return SANDBOX_AUDIENCE if is_sandbox_host(url) else PRODUCTION_AUDIENCE


@dataclass(frozen=True)
class SalesforceConfig:
    """How to reach one org.  Validated on construction; secrets are masked in ``repr``.

    Auth modes, first match wins: ``access_token`` (a ready session), JWT bearer
    (``client_id`` + ``username`` + ``private_key_file``), client credentials
    (``client_id`` + ``client_secret``).  With a static token *and* OAuth credentials the
    token is used first and the OAuth flow renews it when it expires.
    """

    instance_url: str
    api_version: str = "62.0"
    access_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    username: str | None = None
    private_key_file: Path | None = None
    jwt_audience: str | None = None  # None: derived from the instance host (see audience)
    ca_bundle: Path | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    api_budget: float = 0.9  # never take api usage above this share of the daily max
    bulk_threshold: int = 2000  # more records than this in one write call -> Bulk 2.0 ingest
    bulk_query_threshold: int = 20_000  # a query matching more rows -> Bulk 2.0 query
    lock_retries: int = 3  # re-submissions of records that failed UNABLE_TO_LOCK_ROW
    bulk_poll: PollPolicy = field(default_factory=PollPolicy)  # waiting for Bulk 2.0 jobs

    def __post_init__(self) -> None:
        problems: list[str] = []
        parts = urlsplit(self.instance_url or "")
        if parts.scheme != "https" or not parts.hostname:
            problems.append("instance_url must be an https:// URL (TLS is never switched off)")
        try:
            if float(self.api_version) <= 0 or "." not in self.api_version:
                raise ValueError
        except ValueError:
            problems.append(f"api_version must look like 62.0, not {self.api_version!r}")
        host = (parts.hostname or "").lower()
        problems += salesforce_credential_problems(
            access_token=bool(self.access_token),
            client_id=bool(self.client_id),
            client_secret=bool(self.client_secret),
            username=bool(self.username),
            private_key_file=self.private_key_file is not None,
            name=str,
        )
        if self.oauth_mode == "client_credentials" and host in LOGIN_HOSTS:
            # S5: the flow only works against the org's My Domain token endpoint.
            problems.append(
                f"client credentials need the org's My Domain URL (https://<domain>.my."
                f"salesforce.com), not https://{host}: set the instance URL to My Domain"
            )
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            problems.append("timeouts must be positive")
        if not 0 < self.api_budget <= 1:
            problems.append("api_budget must be in (0, 1]")
        if self.bulk_threshold < 1 or self.bulk_query_threshold < 1:
            problems.append("bulk thresholds must be at least 1")
        if self.lock_retries < 0:
            problems.append("lock_retries must not be negative")
        if problems:
            raise ConfigurationError("invalid Salesforce connector configuration", problems)

    @property
    def audience(self) -> str:
        """The JWT ``aud``: as set, else derived from the host (sandboxes use test.)."""
        return self.jwt_audience or jwt_audience_for(self.instance_url)

    @property
    def oauth_mode(self) -> Literal["client_credentials", "jwt"] | None:
        """The OAuth flow these credentials allow (used for renewal too), if any."""
        return salesforce_oauth_flow(
            client_id=bool(self.client_id),
            client_secret=bool(self.client_secret),
            username=bool(self.username),
            private_key_file=self.private_key_file is not None,
        )

    @property
    def auth_mode(self) -> AuthMode:
        """How the first session is obtained."""
        if self.access_token:
            return "token"
        mode = self.oauth_mode
        assert mode is not None  # guaranteed by __post_init__
        return mode

    @classmethod
    def from_settings(cls, settings: Settings, retry: RetryPolicy | None = None) -> Self:
        """The connector's configuration from teamsync's settings (the one place they are
        read; call ``settings.require("salesforce")`` first)."""
        if not settings.salesforce_instance_url:
            raise ConfigurationError(
                "incomplete settings", ["TEAMSYNC_SALESFORCE_INSTANCE_URL is not set"]
            )
        return cls(
            instance_url=settings.salesforce_instance_url,
            api_version=settings.salesforce_api_version,
            access_token=_secret(settings.salesforce_access_token),
            client_id=settings.salesforce_client_id,
            client_secret=_secret(settings.salesforce_client_secret),
            username=settings.salesforce_username,
            private_key_file=settings.salesforce_private_key_file,
            jwt_audience=settings.salesforce_jwt_audience,
            ca_bundle=settings.ca_bundle,
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.read_timeout_seconds,
            retry=retry or RetryPolicy.from_settings(settings),
            api_budget=settings.salesforce_api_budget,
            bulk_threshold=settings.salesforce_bulk_threshold,
            bulk_query_threshold=settings.salesforce_bulk_query_threshold,
        )

    @property
    def timeout(self) -> tuple[float, float]:
        """(connect, read) seconds, as requests takes them."""
        return (self.connect_timeout, self.read_timeout)

    @property
    def secrets(self) -> list[str]:
        """Values that must never appear in a log line or message."""
        return [v for v in (self.access_token, self.client_secret) if v]

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_FIELDS and value is not None:
                shown.append(f"{f.name}='***'")
            else:
                shown.append(f"{f.name}={value!r}")
        return f"SalesforceConfig({', '.join(shown)})"

    __str__ = __repr__


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


@dataclass(frozen=True)
class WriteResult:
    """The outcome of one record of a create / update / delete call."""

    index: int  # position in the input list
    id: str | None  # record id (the created id for creates)
    success: bool
    code: str | None = None  # statusCode / errorCode of the first error
    message: str | None = None
    fields: tuple[str, ...] = ()


# Organization-wide default sharing per object, as the Organization object names it (S1,
# VERIFIED).  Values: None / Read / Edit (ReadEditTransfer for cases, ControlledByParent for
# contacts: API spellings UNVERIFIED).
ORG_DEFAULT_FIELDS = {
    "Account": "DefaultAccountAccess",
    "Opportunity": "DefaultOpportunityAccess",
    "Case": "DefaultCaseAccess",
    "Contact": "DefaultContactAccess",
}


@dataclass(frozen=True)
class OrgInfo:
    """What the org says about itself: type and organization-wide sharing defaults."""

    org_id: str
    is_sandbox: bool
    org_type: str
    defaults: dict[str, str]  # {"Account": "Read", "Opportunity": "None", ...}


@dataclass
class ApiUsage:
    """The org's daily API usage (from ``Sforce-Limit-Info``) and our own calls by kind."""

    used: int | None = None
    max: int | None = None
    calls: Counter[str] = field(default_factory=Counter)
