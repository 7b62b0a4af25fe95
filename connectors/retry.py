"""One retry policy for every API call, built on tenacity.

    policy = RetryPolicy(max_attempts=5)
    result = call_with_retry(lambda: client.get(url), policy, api="gainsight")

Only :class:`~connectors.errors.RetryableError` is retried.  ``Retry-After`` is honoured when
the server sends it (capped by ``max_retry_after``); otherwise the wait grows exponentially
with jitter.  Attempts and the total time spent waiting are both bounded; when either runs
out the last failure is raised as :class:`~connectors.errors.UpstreamUnavailable`.
``sleep`` is injectable so tests assert the waits instead of waiting.
"""

from __future__ import annotations

import datetime
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from config.settings import Settings
from connectors.errors import RetryableError, UpstreamUnavailable

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    max_total_wait: float = 120.0  # seconds spent sleeping across all attempts of one call
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 90.0  # a longer Retry-After is capped to this
    jitter: float = 0.25  # fraction of the backoff added at random

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait before re-trying after failure number ``attempt`` (0-based): exponential
        from ``initial_backoff``, capped at ``max_backoff``, plus jitter when ``rng`` is given.

        >>> [RetryPolicy().backoff(n) for n in range(4)]
        [0.5, 1.0, 2.0, 4.0]
        """
        wait = min(self.initial_backoff * 2.0**attempt, self.max_backoff)
        return wait * (1 + self.jitter * rng.random()) if rng is not None else wait

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy ``TEAMSYNC_RETRY_MAX_ATTEMPTS`` / ``_MAX_WAIT_SECONDS`` describe."""
        return cls(
            max_attempts=settings.retry_max_attempts,
            max_total_wait=settings.retry_max_wait_seconds,
        )

    @classmethod
    def for_alert_sinks(cls, settings: Settings) -> RetryPolicy:
        """The short policy of one alert delivery: ``TEAMSYNC_ALERT_RETRY_MAX_ATTEMPTS`` /
        ``_MAX_WAIT_SECONDS`` (3 attempts, 10 s: a sink must not stall a run; the outbox
        retries the delivery on later runs)."""
        return cls(
            max_attempts=settings.alert_retry_max_attempts,
            max_total_wait=settings.alert_retry_max_wait_seconds,
        )


@dataclass(frozen=True)
class PollPolicy:
    """Waiting for a remote job to finish: waits grow from ``first`` by ``growth`` up to
    ``largest``, and add up to at most ``budget`` seconds before the caller gives up.

    >>> list(PollPolicy(first=1, growth=2, largest=3, budget=6).waits())
    [1, 2, 3]
    """

    first: float = 0.5
    largest: float = 10.0
    growth: float = 1.5
    budget: float = 3600.0

    def waits(self) -> Iterator[float]:
        waited, wait = 0.0, self.first
        while waited < self.budget:
            yield wait
            waited += wait
            wait = min(wait * self.growth, self.largest)


def _wait(policy: RetryPolicy, rng: random.Random) -> Callable[[tenacity.RetryCallState], float]:
    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableError) and exc.retry_after is not None:
            return max(0.0, min(float(exc.retry_after), policy.max_retry_after))
        return policy.backoff(state.attempt_number - 1, rng)

    return wait


def _stop(policy: RetryPolicy) -> Callable[[tenacity.RetryCallState], bool]:
    def stop(state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= policy.max_attempts:
            return True
        # Stop before a wait would take the total over budget.
        upcoming = state.upcoming_sleep or 0.0
        return (state.idle_for + upcoming) > policy.max_total_wait

    return stop


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    api: str,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[RetryableError, float], None] | None = None,
    rng: random.Random | None = None,
) -> T:
    """Call ``fn`` until it succeeds, raises a non-retryable error, or the policy gives up."""
    rng = rng or random.Random()

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if on_retry is not None and isinstance(exc, RetryableError):
            on_retry(exc, state.upcoming_sleep or 0.0)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(RetryableError),
        wait=_wait(policy, rng),
        stop=_stop(policy),
        sleep=sleep,
        reraise=True,
        before_sleep=before_sleep,
    )
    try:
        return retrying(fn)
    except RetryableError as exc:
        raise UpstreamUnavailable(
            f"{api}: giving up after repeated transient failures "
            f"(last: {exc.status or ''} {exc.code or ''} {exc})".replace("  ", " "),
            api=api,
            status=exc.status,
            code=exc.code,
        ) from exc


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        # An HTTP date is always GMT; "-0000" parses as naive, which .timestamp() would
        # otherwise read as local time.
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - time.time())
