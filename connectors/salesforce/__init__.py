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
from connectors.salesforce._config import ApiUsage, SalesforceConfig, WriteResult
from connectors.salesforce._errors import Call, classify

__all__ = ["ApiUsage", "Call", "SalesforceClient", "SalesforceConfig", "WriteResult", "classify"]
