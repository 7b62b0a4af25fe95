"""Shared fixtures: TLS material for the emulators."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulators.tls import TlsMaterial


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    """One throw-away CA and server certificate for the whole test session."""
    return TlsMaterial.create(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture(autouse=True, scope="session")
def _quiet_logs() -> None:
    """Log lines at WARNING and above only (tests that inspect logs reconfigure)."""
    from sync.logging import configure_logging

    configure_logging("console", "WARNING")
