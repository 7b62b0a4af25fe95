"""Connector settings and the where-clause builder shared by the read APIs."""

from __future__ import annotations

import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from config.errors import ConfigurationError
from config.settings import Settings
from connectors.retry import RetryPolicy

MAX_PAGE_SIZE = 5000  # rows per read call (OBSERVED in two summaries of the docs)
MAX_WRITE_BATCH = 50  # records per synchronous write (VERIFIED)
MAX_CTA_PAGE_SIZE = 1000  # CTA list pageSize (VERIFIED via doc sample)


@dataclass(frozen=True, repr=False)
class GainsightConfig:
    """Everything the Gainsight client needs; validated on construction.

    ``GainsightConfig("https://acme.gainsightcloud.com", access_key=key)``
    """

    base_url: str
    access_key: str
    ca_bundle: Path | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limit_per_minute: int = 100
    page_size: int = MAX_PAGE_SIZE
    write_batch: int = MAX_WRITE_BATCH
    cta_page_size: int = MAX_CTA_PAGE_SIZE

    def __post_init__(self) -> None:
        problems: list[str] = []
        parts = urlsplit(self.base_url or "")
        if parts.scheme != "https" or not parts.hostname:
            problems.append("base_url must be an https:// URL with a host (TLS is never off)")
        elif parts.query or parts.fragment or parts.username or parts.password:
            problems.append("base_url must not carry a query, fragment or credentials")
        if not self.access_key:
            problems.append("access_key is empty")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            problems.append("timeouts must be positive")
        if self.rate_limit_per_minute < 1:
            problems.append("rate_limit_per_minute must be at least 1")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            problems.append(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if not 1 <= self.write_batch <= MAX_WRITE_BATCH:
            problems.append(f"write_batch must be between 1 and {MAX_WRITE_BATCH}")
        if not 1 <= self.cta_page_size <= MAX_CTA_PAGE_SIZE:
            problems.append(f"cta_page_size must be between 1 and {MAX_CTA_PAGE_SIZE}")
        if problems:
            raise ConfigurationError("invalid Gainsight connector settings", problems)
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    @classmethod
    def from_settings(cls, settings: Settings, retry: RetryPolicy | None = None) -> Self:
        """The connector's configuration from teamsync's settings (the one place they are
        read; call ``settings.require("gainsight")`` first)."""
        problems = []
        if not settings.gainsight_base_url:
            problems.append("TEAMSYNC_GAINSIGHT_BASE_URL is not set")
        if settings.gainsight_access_key is None:
            problems.append("TEAMSYNC_GAINSIGHT_ACCESS_KEY is not set")
        if problems or not settings.gainsight_base_url or settings.gainsight_access_key is None:
            raise ConfigurationError("incomplete settings", problems)
        return cls(
            base_url=settings.gainsight_base_url,
            access_key=settings.gainsight_access_key.get_secret_value(),
            ca_bundle=settings.ca_bundle,
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.read_timeout_seconds,
            retry=retry or RetryPolicy.from_settings(settings),
            rate_limit_per_minute=settings.gainsight_rate_limit_per_minute,
            page_size=settings.gainsight_page_size,
        )

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={'***' if name == 'access_key' else repr(getattr(self, name))}"
            for name in self.__dataclass_fields__
        )
        return f"GainsightConfig({shown})"


@dataclass(frozen=True)
class Condition:
    """One where-condition: ``Condition("Gsid", "GT", ["1P02..."])``; value is always a list."""

    name: str
    operator: str
    value: Sequence[Any] = ()


def _aliases() -> Iterator[str]:
    """A, B, ..., Z, AA, AB, ... (the API's examples only show single letters)."""
    letters = string.ascii_uppercase
    yield from letters
    for first in letters:
        for second in letters:
            yield first + second


def _values(value: Sequence[Any] | Any) -> list[Any]:
    # A bare string is a Sequence too; the API wants every value as an array.
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        return [value]
    return list(value)


def build_where(
    conditions: Sequence[Condition], expression: str | None = None, *, key: str = "name"
) -> dict[str, Any]:
    """The ``where`` object; ``key`` is ``name`` (data APIs) or ``fieldName`` (Cockpit)."""
    if not conditions:
        return {}
    out = []
    aliases = []
    for condition, alias in zip(conditions, _aliases(), strict=False):
        aliases.append(alias)
        out.append(
            {
                key: condition.name,
                "alias": alias,
                "value": _values(condition.value),
                "operator": condition.operator.upper(),
            }
        )
    if len(out) < len(conditions):
        raise ConfigurationError(f"too many where-conditions ({len(conditions)})")
    return {"conditions": out, "expression": expression or " AND ".join(aliases)}


def where(*conditions: Condition, expression: str | None = None) -> dict[str, Any]:
    """A data-API ``where`` with aliases A, B, C...; the expression defaults to all ANDed."""
    return build_where(conditions, expression)
