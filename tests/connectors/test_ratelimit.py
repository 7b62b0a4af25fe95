"""The client-side sliding-window rate limiter, driven by a fake clock."""

from __future__ import annotations

import pytest

from connectors.gainsight.ratelimit import SlidingWindowLimiter


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def max_in_any_window(stamps: list[float], window: float) -> int:
    return max(sum(1 for t in stamps if s <= t < s + window) for s in stamps)


def test_calls_under_the_limit_do_not_wait() -> None:
    """Up to max_calls calls in a window go out at once."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(5, 60.0, clock=clock, sleep=clock.sleep)
    waits = [limiter.acquire() for _ in range(5)]
    assert waits == [0.0] * 5
    assert clock.sleeps == []
    assert limiter.in_window() == 5


def test_the_next_call_waits_until_the_oldest_leaves_the_window() -> None:
    """Call max_calls + 1 sleeps exactly until the first call is a window old."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(3, 60.0, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now += 10
    limiter.acquire()
    limiter.acquire()
    waited = limiter.acquire()
    assert waited == pytest.approx(50.0)
    assert clock.sleeps == [pytest.approx(50.0)]


def test_never_more_than_max_calls_in_any_sliding_window() -> None:
    """A burst of 250 calls keeps at most 100 starts inside every 60 s window."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(100, 60.0, clock=clock, sleep=clock.sleep)
    stamps = []
    for i in range(250):
        limiter.acquire()
        stamps.append(clock.now)
        clock.now += 0.01 * (i % 7)  # uneven work between calls
    assert max_in_any_window(stamps, 60.0) == 100
    assert stamps[-1] - stamps[0] >= 120.0  # 250 calls need at least two full windows


def test_calls_spread_out_never_wait() -> None:
    """Calls slower than the limit are never delayed."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(2, 60.0, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        assert limiter.acquire() == 0.0
        clock.now += 30.0
    assert clock.sleeps == []


def test_a_sleep_that_does_not_move_the_clock_cannot_spin_forever() -> None:
    """With a clock the sleep does not advance, acquire still returns (one sleep each)."""
    clock = FakeClock()
    sleeps: list[float] = []
    limiter = SlidingWindowLimiter(1, 60.0, clock=clock, sleep=sleeps.append)
    limiter.acquire()
    limiter.acquire()
    limiter.acquire()
    assert len(sleeps) == 2


@pytest.mark.parametrize(("calls", "window"), [(0, 60.0), (5, 0.0), (-1, 1.0)])
def test_rejects_nonsense_limits(calls: int, window: float) -> None:
    """A limit of zero calls or a zero window is refused."""
    with pytest.raises(ValueError, match="rate limit"):
        SlidingWindowLimiter(calls, window)
