"""connectors.retry: the one retry policy every API call goes through."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Iterator

import pytest

from connectors.errors import RequestRejected, RetryableError, UpstreamUnavailable
from connectors.retry import RetryPolicy, call_with_retry, parse_retry_after


def failing(errors: list[Exception], result: str = "ok") -> Callable[[], str]:
    """A callable raising the given errors in turn, then returning ``result``."""
    calls = iter(errors)

    def fn() -> str:
        error = next(calls, None)
        if error is not None:
            raise error
        return result

    return fn


def transient(retry_after: float | None = None, status: int = 503) -> RetryableError:
    return RetryableError("busy", api="test", status=status, retry_after=retry_after)


def test_success_after_transient_failures_records_backoff(waits: list[float]) -> None:
    """Exponential backoff with jitter within bounds, then the result comes back."""
    policy = RetryPolicy(max_attempts=5, initial_backoff=1.0, max_backoff=30.0, jitter=0.25)
    fn = failing([transient(), transient(), transient()])
    result = call_with_retry(fn, policy, api="test", sleep=waits.append, rng=random.Random(1))
    assert result == "ok"
    assert len(waits) == 3
    for attempt, wait in enumerate(waits):
        base = 1.0 * 2**attempt
        assert base <= wait <= base * 1.25


def test_backoff_is_capped(waits: list[float]) -> None:
    """No backoff wait exceeds max_backoff (plus its jitter)."""
    policy = RetryPolicy(max_attempts=8, initial_backoff=1.0, max_backoff=4.0, jitter=0.0)
    fn = failing([transient() for _ in range(6)])
    call_with_retry(fn, policy, api="test", sleep=waits.append)
    assert waits == [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]


def test_retry_after_is_honoured_and_capped(waits: list[float]) -> None:
    """A Retry-After replaces the backoff; an absurd one is capped by max_retry_after."""
    policy = RetryPolicy(max_attempts=5, max_retry_after=10.0, max_total_wait=100.0)
    fn = failing([transient(retry_after=3), transient(retry_after=0), transient(retry_after=3600)])
    assert call_with_retry(fn, policy, api="test", sleep=waits.append) == "ok"
    assert waits == [3.0, 0.0, 10.0]


def test_attempts_are_bounded(waits: list[float]) -> None:
    """After max_attempts the last failure surfaces as UpstreamUnavailable, chained."""
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.01)
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        raise transient(status=429)

    with pytest.raises(UpstreamUnavailable) as info:
        call_with_retry(fn, policy, api="salesforce", sleep=waits.append)
    assert len(calls) == 3
    assert len(waits) == 2
    assert info.value.status == 429
    assert info.value.api == "salesforce"
    assert isinstance(info.value.__cause__, RetryableError)


def test_total_wait_is_bounded(waits: list[float]) -> None:
    """A wait that would take the total past max_total_wait is not taken."""
    policy = RetryPolicy(max_attempts=100, max_total_wait=10.0, max_retry_after=60.0)
    fn = failing([transient(retry_after=4) for _ in range(10)])
    with pytest.raises(UpstreamUnavailable):
        call_with_retry(fn, policy, api="test", sleep=waits.append)
    assert waits == [4.0, 4.0]
    assert sum(waits) <= 10.0


def test_non_retryable_errors_pass_through_at_once(waits: list[float]) -> None:
    """Anything but RetryableError is raised on the first attempt, untouched."""
    error = RequestRejected("bad query", api="test")
    with pytest.raises(RequestRejected) as info:
        call_with_retry(failing([error]), RetryPolicy(), api="test", sleep=waits.append)
    assert info.value is error
    assert waits == []


def test_on_retry_sees_each_failure_and_wait(waits: list[float]) -> None:
    """on_retry is told about every retried failure with the wait chosen for it."""
    seen: list[tuple[int | None, float]] = []
    fn = failing([transient(retry_after=2, status=429), transient(retry_after=1)])
    call_with_retry(
        fn,
        RetryPolicy(),
        api="test",
        sleep=waits.append,
        on_retry=lambda exc, wait: seen.append((exc.status, wait)),
    )
    assert seen == [(429, 2.0), (503, 1.0)]


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("", None), ("5", 5.0), (" 2.5 ", 2.5), ("-3", 0.0), ("soon", None)],
)
def test_parse_retry_after_seconds(header: str | None, expected: float | None) -> None:
    """Delta-seconds parse; absent or junk values give None; negatives clamp to 0."""
    assert parse_retry_after(header) == expected


@pytest.fixture
def far_timezone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run with a local time zone far from UTC."""
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_timezone")
@pytest.mark.parametrize("usegmt", [True, False])
def test_parse_retry_after_http_date(usegmt: bool) -> None:
    """An HTTP date (GMT, or '-0000') is read as UTC whatever the local zone."""
    header = email.utils.formatdate(time.time() + 30, usegmt=usegmt)
    value = parse_retry_after(header)
    assert value is not None
    assert 25 <= value <= 31
