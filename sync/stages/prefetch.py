"""Pipelining: read the next page from an API while the current one is being stored.

    with Prefetch(client_pages, depth=2) as pages:
        for page in pages:
            store(page)          # meanwhile a worker thread is already fetching the next one

One worker thread runs the source iterator and hands its items over through a bounded queue,
so at most ``depth`` items wait, plus the one being produced and the one being consumed:
memory stays bounded whatever the size of the result.  The worker runs in a copy of the
caller's context (log bindings such as the run id carry over).  An exception in the source is
raised in the consumer, at the position where it happened; leaving the block early (an
interrupted run) stops the worker after the item it is producing and waits for it, so the
source is never used by two threads at once.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")

_ITEM, _END, _ERROR = 0, 1, 2


class Prefetch(Generic[T]):
    def __init__(self, source: Iterable[T], *, depth: int = 2, name: str = "prefetch") -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self._queue: queue.Queue[tuple[int, object]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._work, source), name=name, daemon=True
        )
        self._thread.start()

    # --- the worker -----------------------------------------------------------------------
    def _work(self, source: Iterable[T]) -> None:
        iterator = iter(source)
        try:
            for item in iterator:
                if not self._put((_ITEM, item)):
                    return
            self._put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put((_ERROR, exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # a generator's finally blocks run in the thread that ran it

    def _put(self, message: tuple[int, object]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=0.05)
            except queue.Full:
                continue
            return True
        return False

    # --- the consumer ---------------------------------------------------------------------
    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == _ITEM:
            return value  # type: ignore[return-value]
        self._finished = True
        self._thread.join()
        if kind == _ERROR:
            assert isinstance(value, BaseException)
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop the worker (after the item it is producing) and wait for it."""
        self._finished = True
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
        self._thread.join()

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
