"""Gainsight CS (NXT) REST connector.

    config = GainsightConfig("https://acme.gainsightcloud.com", access_key=key)
    with GainsightClient(config) as gs:
        for page in gs.query("Company", ["Name", "SfdcAccountId"],
                             conditions=[Condition("ModifiedDate", "GTE", [since])]):
            ...
        results = gs.update("Company", records)          # batches of 50, results in order
        for page in gs.cta_list(["Name", "IsClosed"], conditions=[...]): ...

Failures raise the :mod:`connectors.errors` tree (AuthenticationError, UpstreamUnavailable
after retries, RequestRejected); record-level failures come back as
``WriteResult(success=False)``.
"""

from connectors.gainsight._classify import Verdict, classify
from connectors.gainsight._client import GainsightClient
from connectors.gainsight._config import Condition, GainsightConfig, where
from connectors.gainsight._dates import datetime_to_epoch_ms, filter_datetime
from connectors.gainsight._results import UNCONFIRMED, WriteResult, map_write_results
from connectors.gainsight.ratelimit import SlidingWindowLimiter

__all__ = [
    "UNCONFIRMED",
    "Condition",
    "GainsightClient",
    "GainsightConfig",
    "SlidingWindowLimiter",
    "Verdict",
    "WriteResult",
    "classify",
    "datetime_to_epoch_ms",
    "filter_datetime",
    "map_write_results",
    "where",
]
