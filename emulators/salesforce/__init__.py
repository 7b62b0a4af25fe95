"""Salesforce REST / Bulk API 2.0 emulator (see :mod:`emulators.salesforce.app`)."""

from emulators.salesforce.app import (
    SalesforceApiError,
    SalesforceCredentials,
    SalesforceEmulator,
)

__all__ = ["SalesforceApiError", "SalesforceCredentials", "SalesforceEmulator"]
