"""Fixtures shared by the emulator tests (the session ``tls`` fixture is in tests/conftest.py).

Salesforce: ``sf_emu`` is an empty emulator with the shared credentials; ``server`` serves
whichever ``sf_emu`` the module has over HTTPS and ``sf`` is simple-salesforce pointed at it.
Modules that need data define ``org`` (or their own ``sf_emu``).

Gainsight: each module defines its own ``gs_emu`` (a GainsightEmulator with the rows it needs);
``client`` is a keep-alive httpx client on a module-wide server (``switch``) that serves it.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from simple_salesforce.api import Salesforce

from connectors.tls import ssl_context
from emulators.gainsight import GainsightEmulator
from emulators.gainsight.testing import AppSwitch
from emulators.http import EmulatorServer
from emulators.salesforce import SalesforceEmulator
from emulators.salesforce.testing import serve, shared_credentials, simple_salesforce_client
from emulators.tls import TlsMaterial

# -- Salesforce ----------------------------------------------------------------------------------


@pytest.fixture
def sf_emu() -> SalesforceEmulator:
    return SalesforceEmulator(credentials=shared_credentials())


@pytest.fixture
def server(sf_emu: SalesforceEmulator, tls: TlsMaterial) -> Iterator[EmulatorServer]:
    with serve(sf_emu, tls) as running:
        yield running


@pytest.fixture
def sf(sf_emu: SalesforceEmulator, server: EmulatorServer, tls: TlsMaterial) -> Salesforce:
    return simple_salesforce_client(server, tls, sf_emu.issue_token())


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
    gs_emu: GainsightEmulator, switch: tuple[AppSwitch, httpx.Client]
) -> Iterator[httpx.Client]:
    app, http = switch
    app.target = gs_emu
    yield http
    app.target = None
