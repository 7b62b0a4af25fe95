"""Fixtures shared by the connector tests (the session ``tls`` fixture is in tests/conftest.py).

``sf_emu`` is an empty Salesforce emulator with the shared credentials (modules seed it with
their own ``org``) and ``server`` serves whichever ``sf_emu`` the module has over HTTPS (Gainsight
modules define their own ``gs_emu``). ``waits`` collects the sleeps a client under test asks for
instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulators.http import EmulatorServer
from emulators.salesforce import SalesforceEmulator
from emulators.salesforce.testing import serve, shared_credentials
from emulators.tls import TlsMaterial


@pytest.fixture
def sf_emu() -> SalesforceEmulator:
    return SalesforceEmulator(credentials=shared_credentials())


@pytest.fixture
def server(sf_emu: SalesforceEmulator, tls: TlsMaterial) -> Iterator[EmulatorServer]:
    with serve(sf_emu, tls) as running:
        yield running


@pytest.fixture
def waits() -> list[float]:
    return []
