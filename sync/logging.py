"""structlog set-up: JSON lines in containers, readable output on a terminal, never a secret.

    configure_logging(fmt=None, level="INFO", secrets=[token, key])
    log = structlog.get_logger()
    bind_run(run_id="...")       # every later line carries run_id
    with phase("pull", stream="Account"): ...

Logs go to stderr; stdout is kept for command output (``plan --json``, reports).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

_SECRET_KEYS = re.compile(
    r"(token|secret|password|passwd|authorization|access_?key|api_?key|private_?key|signature|"
    r"assertion|session_id)",
    re.IGNORECASE,
)
_MASK = "***"


class SecretMasker:
    """Processor: masks secret-looking keys and every registered secret value, anywhere."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def register(self, values: Iterable[str | None]) -> None:
        with self._lock:
            for value in values:
                # Very short values would mask innocent substrings; real secrets are long.
                if value and len(value) >= 6:
                    self._values.add(value)

    def scrub(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, _MASK)
        return text

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub(value) if self._values else value
        if isinstance(value, dict):
            return {
                k: (_MASK if isinstance(k, str) and _SECRET_KEYS.search(k) else self._clean(v))
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._clean(v) for v in value]
        return value

    def __call__(self, logger: WrappedLogger, name: str, event_dict: EventDict) -> EventDict:
        for key in list(event_dict):
            if _SECRET_KEYS.search(key) and key not in {"event"}:
                event_dict[key] = _MASK
            else:
                event_dict[key] = self._clean(event_dict[key])
        return event_dict


masker = SecretMasker()


def _stringify_exception(logger: WrappedLogger, name: str, event_dict: EventDict) -> EventDict:
    # Exception text can embed upstream messages; scrub after rendering.
    for key in ("exception", "error"):
        if key in event_dict and isinstance(event_dict[key], str):
            event_dict[key] = masker.scrub(event_dict[key])
    return event_dict


class _StreamLogger:
    """Writes each rendered line to a stream looked up at call time (sys.stderr by default),
    so a replaced or closed stderr (test runners, daemons re-opening files) is followed."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def msg(self, message: str) -> None:
        stream = self._stream or sys.stderr
        with self._lock:
            print(message, file=stream, flush=True)

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg


def configure_logging(
    fmt: str | None = None,
    level: str = "INFO",
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
) -> None:
    """Configure structlog once for the process; ``fmt`` None means json unless a terminal."""
    out = stream or sys.stderr
    if fmt is None:
        fmt = "console" if out.isatty() else "json"
    shared_logger = _StreamLogger(stream)
    masker.register(secrets)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        masker,
    ]
    renderer: Processor
    if fmt == "json":
        shared += [structlog.processors.format_exc_info, _stringify_exception]
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    else:
        shared += [_stringify_exception]
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=lambda *args: shared_logger,
        cache_logger_on_first_use=False,
    )


def bind_run(**values: Any) -> None:
    structlog.contextvars.bind_contextvars(**values)


def clear_run() -> None:
    structlog.contextvars.clear_contextvars()


@contextmanager
def phase(name: str, **values: Any) -> Iterator[None]:
    """Bind ``phase`` (and e.g. ``stream``) for the log lines inside the block."""
    tokens = structlog.contextvars.bind_contextvars(phase=name, **values)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def get_logger(**initial: Any) -> Any:
    return structlog.get_logger(**initial)


def redact_mapping(data: MutableMapping[str, Any]) -> dict[str, Any]:
    """A copy with secret-looking keys masked (for storing payloads or error context)."""
    cleaned = masker._clean(dict(data))
    assert isinstance(cleaned, dict)
    return cleaned
