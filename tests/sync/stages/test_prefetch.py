"""Prefetch: the next page is fetched while the current one is stored, with bounded memory."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator

import pytest

from sync.stages.prefetch import Prefetch


def test_items_arrive_in_order_and_the_source_runs_in_another_thread() -> None:
    threads: set[str] = set()

    def source() -> Iterator[int]:
        for i in range(50):
            threads.add(threading.current_thread().name)
            yield i

    with Prefetch(source(), depth=3, name="pages") as pages:
        assert list(pages) == list(range(50))
    assert threads == {"pages"}


def test_the_worker_reads_ahead_while_the_consumer_works_but_never_more_than_depth() -> None:
    produced: list[int] = []

    def source() -> Iterator[int]:
        for i in range(100):
            produced.append(i)
            yield i

    with Prefetch(source(), depth=2) as pages:
        first = next(pages)
        deadline = time.monotonic() + 10
        while len(produced) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)  # the consumer is "storing" page 0; the worker reads ahead
        time.sleep(0.1)
        # page 0 handed out, two waiting in the queue, one produced and blocked on the queue
        assert first == 0
        assert len(produced) == 4
        assert list(pages) == list(range(1, 100))


def test_an_error_in_the_source_is_raised_in_the_consumer_after_the_items_before_it() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise RuntimeError("page 3 failed")

    got: list[int] = []

    def consume(pages: Prefetch[int]) -> None:
        for item in pages:
            got.append(item)

    with Prefetch(source()) as pages, pytest.raises(RuntimeError, match="page 3 failed"):
        consume(pages)
    assert got == [1, 2]


def test_leaving_early_stops_the_worker_and_runs_the_generator_cleanup() -> None:
    produced: list[int] = []
    cleaned = threading.Event()

    def source() -> Iterator[int]:
        try:
            for i in range(10_000):
                produced.append(i)
                yield i
        finally:
            cleaned.set()

    with Prefetch(source(), depth=2) as pages:
        for item in pages:
            if item == 5:
                break
    assert cleaned.is_set()
    assert len(produced) <= 5 + 1 + 2 + 1  # consumed, in the queue, in the worker's hand
    count = len(produced)
    time.sleep(0.1)
    assert len(produced) == count  # the worker is gone


def test_the_worker_sees_the_callers_context() -> None:
    run_id: contextvars.ContextVar[str] = contextvars.ContextVar("run_id", default="none")
    run_id.set("run-1")

    def source() -> Iterator[str]:
        yield run_id.get()

    with Prefetch(source()) as pages:
        assert list(pages) == ["run-1"]


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth"):
        Prefetch(iter(()), depth=0)
