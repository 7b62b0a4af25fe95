"""Salesforce connector: REST queries, sObject Collections and Bulk 2.0 behind one client.

    from connectors.salesforce import SalesforceClient, SalesforceConfig
    client = SalesforceClient(SalesforceConfig(instance_url="https://acme.my.salesforce.com",
                                               client_id="...", client_secret="..."))
    for page in client.query("SELECT Id, Name FROM Account"):
        ...

Errors raised are those of :mod:`connectors.errors`; nothing from simple-salesforce or
requests escapes.
"""

from connectors.salesforce._client import SalesforceClient
from connectors.salesforce._config import (
    ORG_DEFAULT_FIELDS,
    ApiUsage,
    OrgInfo,
    SalesforceConfig,
    WriteResult,
    is_sandbox_host,
    jwt_audience_for,
)
from connectors.salesforce._errors import Call, classify

__all__ = [
    "ORG_DEFAULT_FIELDS",
    "ApiUsage",
    "Call",
    "OrgInfo",
    "SalesforceClient",
    "SalesforceConfig",
    "WriteResult",
    "classify",
    "is_sandbox_host",
    "jwt_audience_for",
]
