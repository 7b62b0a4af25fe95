"""structlog set-up: JSON lines in containers, readable output on a terminal, never a secret.

    configure_logging(fmt=None, level=None, secrets=[token, key], verbosity=0)
    log = structlog.get_logger()
    bind_run(run_id="...")       # every later line carries run_id
    with phase("pull", stream="Account"): ...

Logs go to stderr; stdout is kept for command output (``plan --json``, reports), so the two
never interleave.  On a terminal only warnings and errors are shown unless ``-v`` (INFO) or
``-vv`` (DEBUG); elsewhere INFO.  ``NO_COLOR`` turns colours off.  Standard-library logging
(alembic, httpx, warnings) goes through the same renderer, so a JSON stream stays JSON.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator
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
        # Re-entrant: a signal handler that logs (SIGTERM: "stopping after the current batch")
        # runs on the main thread, possibly while that thread is inside msg().
        self._lock = threading.RLock()

    def msg(self, message: str) -> None:
        stream = self._stream or sys.stderr
        with self._lock:
            stream.write(message + "\n")
            stream.flush()

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg


_current = {"format": "console"}


def current_format() -> str:
    """The log format in force (``json`` or ``console``)."""
    return _current["format"]


def effective_level(level: str | None, *, tty: bool, verbosity: int = 0) -> str:
    """The level in force: the setting if given, else WARNING on a terminal and INFO elsewhere;
    ``-v`` / ``-vv`` make it at least INFO / DEBUG."""
    names = ["DEBUG", "INFO", "WARNING", "ERROR"]
    chosen = level.upper() if level else ("WARNING" if tty else "INFO")
    if verbosity >= 2:
        return "DEBUG"
    if verbosity == 1 and names.index(chosen) > names.index("INFO"):
        return "INFO"
    return chosen


def color_wanted(stream: TextIO) -> bool:
    """Colours only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    return bool(stream.isatty()) and not os.environ.get("NO_COLOR")


def configure_logging(
    fmt: str | None = None,
    level: str | None = None,
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
    verbosity: int = 0,
) -> None:
    """Configure structlog once for the process; ``fmt`` None means json unless a terminal."""
    out = stream or sys.stderr
    tty = bool(out.isatty())
    if fmt is None:
        fmt = "console" if tty else "json"
    _current["format"] = fmt
    level = effective_level(level, tty=tty, verbosity=verbosity)
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
        renderer = structlog.dev.ConsoleRenderer(colors=color_wanted(out))
    _route_stdlib_logging(shared, renderer, shared_logger, level)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=lambda *args: shared_logger,
        cache_logger_on_first_use=False,
    )


class _StdlibHandler(logging.Handler):
    """Renders standard-library records with the structlog processors onto our stream."""

    def __init__(self, formatter: logging.Formatter, sink: _StreamLogger) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._sink.msg(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def _route_stdlib_logging(
    shared: list[Processor], renderer: Processor, sink: _StreamLogger, level: str
) -> None:
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StdlibHandler):
            root.removeHandler(handler)
    root.addHandler(_StdlibHandler(formatter, sink))
    # Libraries are chatty at INFO (alembic's "Context impl", httpx's request lines).
    root.setLevel(max(logging.WARNING, logging.getLevelNamesMapping()[level]))
    logging.captureWarnings(True)


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
