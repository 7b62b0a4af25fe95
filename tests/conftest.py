"""Shared fixtures: TLS material for the emulators."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.tls import TlsMaterial


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    """One throw-away CA and server certificate for the whole test session."""
    return TlsMaterial.create(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture(autouse=True)
def _restore_log_config() -> Iterator[None]:
    """A test that runs the CLI reconfigures logging (level, format): undo it afterwards, so
    the next test sees what the session set up."""
    import structlog

    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture(autouse=True, scope="session")
def _quiet_logs() -> None:
    """Log lines at WARNING and above only (tests that inspect logs reconfigure)."""
    from sync.logging import configure_logging

    configure_logging("console", "WARNING")


class ByteSink:
    """A plain TCP listener that records every byte anyone sends it: the target of the
    redirects the hostile-upstream tests inject (a followed redirect shows up here)."""

    def __init__(self) -> None:
        import socket
        import threading

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        self.received = bytearray()
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="byte-sink", daemon=True)
        self._thread.start()

    def url(self, scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self.connections += 1
            conn.settimeout(0.5)
            try:
                while chunk := conn.recv(65536):
                    with self._lock:
                        self.received.extend(chunk)
            except OSError:
                pass
            finally:
                conn.close()

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.connections = 0

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()


@pytest.fixture(scope="session")
def byte_sink() -> Iterator[ByteSink]:
    """One redirect target for the session; tests ``reset()`` it and assert it got 0 bytes."""
    sink = ByteSink()
    yield sink
    sink.close()
