"""Fixtures shared by the connector tests (the session ``tls`` fixture is in tests/conftest.py).

``emu`` is an empty Salesforce emulator with the shared credentials (modules seed it with their
own ``org``) and ``server`` serves whichever ``emu`` the module has over HTTPS. ``waits`` collects
the sleeps a client under test asks for instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulators.http import EmulatorServer
from emulators.salesforce import SalesforceEmulator
from emulators.salesforce.testing import serve, shared_credentials
from emulators.tls import TlsMaterial


@pytest.fixture
def emu() -> SalesforceEmulator:
    return SalesforceEmulator(credentials=shared_credentials())


@pytest.fixture
def server(emu: SalesforceEmulator, tls: TlsMaterial) -> Iterator[EmulatorServer]:
    with serve(emu, tls) as running:
        yield running


@pytest.fixture
def waits() -> list[float]:
    return []
