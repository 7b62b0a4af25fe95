"""Fixtures shared by the emulator tests (the session ``tls`` fixture is in tests/conftest.py).

Gainsight: each module defines its own ``emu`` (a GainsightEmulator with the rows it needs);
``client`` is a keep-alive httpx client on a module-wide server (``switch``) that serves it.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from connectors.tls import ssl_context
from emulators.gainsight import GainsightEmulator
from emulators.gainsight.testing import AppSwitch
from emulators.http import EmulatorServer
from emulators.tls import TlsMaterial

# -- Gainsight -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def switch(tls: TlsMaterial) -> Iterator[tuple[AppSwitch, httpx.Client]]:
    """One HTTPS server and keep-alive client for the module; each test swaps the emulator."""
    app = AppSwitch()
    with (
        EmulatorServer(app, ssl_context=tls.server_context) as server,
        httpx.Client(
            base_url=server.url,
            verify=ssl_context(tls.ca_path),
            headers={"accesskey": GainsightEmulator().access_key},
        ) as client,
    ):
        yield app, client


@pytest.fixture
def client(
    emu: GainsightEmulator, switch: tuple[AppSwitch, httpx.Client]
) -> Iterator[httpx.Client]:
    app, http = switch
    app.target = emu
    yield http
    app.target = None
