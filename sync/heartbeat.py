"""Dead-man heartbeat: ping ``TEAMSYNC_HEARTBEAT_URL`` after each run that completed.

healthchecks.io-style monitors (and Cronitor, Uptime Kuma push monitors, ...) alert when the
pings stop.  A ping that fails is logged and never fails the run.  The URL carries the check's
token, so it is a secret: it never appears in a log line.  No redirect is followed; TLS is
verified (with ``TEAMSYNC_CA_BUNDLE`` in addition to the system CAs).

    ping(url, ca_bundle=None)   # True when the monitor answered 2xx
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import structlog

from connectors.tls import ssl_context

log = structlog.get_logger("teamsync.heartbeat")


def ping(
    url: str,
    *,
    ca_bundle: Path | None = None,
    timeout: float = 10.0,
    attempts: int = 2,
    sleep: Callable[[float], None] = time.sleep,
    transport: httpx.BaseTransport | None = None,
) -> bool:
    """GET the URL; a few quick attempts; never raises."""
    problem = "not tried"
    try:
        client = httpx.Client(
            verify=ssl_context(ca_bundle),
            timeout=timeout,
            follow_redirects=False,
            transport=transport,
        )
    except Exception as exc:  # noqa: BLE001 - a bad CA file must not fail the run either
        log.warning("heartbeat not sent", error=type(exc).__name__)
        return False
    with client:
        for attempt in range(1, attempts + 1):
            try:
                response = client.get(url, headers={"User-Agent": "teamsync"})
            except httpx.HTTPError as exc:
                problem = type(exc).__name__  # the text may carry the URL: not logged
            else:
                if 200 <= response.status_code < 300:
                    log.info("heartbeat sent")
                    return True
                problem = f"HTTP {response.status_code}"
                if 300 <= response.status_code < 400:
                    problem += " (a redirect: not followed; use the final URL)"
                    break
                if response.status_code < 500 and response.status_code != 429:
                    break
            if attempt < attempts:
                sleep(1.0)
    log.warning("heartbeat failed; the run is not affected", error=problem)
    return False
