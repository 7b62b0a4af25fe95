"""TLS trust for both connectors: the system CAs plus ``TEAMSYNC_CA_BUNDLE``, never less.

``requests`` lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` replace a session's own
``verify`` setting, which would silently drop the extra CA.  Instead of fighting that, the
extra CA is loaded into an :class:`ssl.SSLContext` that is mounted on the session's HTTPS
adapter; whatever bundle the environment names is then *added* to that context by urllib3,
so both are trusted.  TLS verification is never switched off, and the session never follows
a redirect (:class:`~connectors.contract.NoRedirectSession`).

    session = requests_session(Path("/etc/teamsync/ca.pem"))
    client = httpx.Client(verify=ssl_context(Path("/etc/teamsync/ca.pem")))
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter

from connectors.contract import NoRedirectSession


def ssl_context(extra_ca: Path | str | None = None) -> ssl.SSLContext:
    """A verifying client context trusting the system CAs and, if given, ``extra_ca``."""
    context = ssl.create_default_context()
    if extra_ca:
        path = Path(extra_ca)
        if path.is_dir():
            context.load_verify_locations(capath=str(path))
        else:
            context.load_verify_locations(cafile=str(path))
    return context


class _ContextAdapter(HTTPAdapter):
    """An HTTPS adapter whose pools use our SSL context, with a default timeout.

    The default timeout covers calls made inside simple-salesforce (Bulk 2.0 polling,
    result downloads) that do not pass one themselves: no call may hang forever.
    """

    def __init__(
        self,
        context: ssl.SSLContext,
        timeout: float | tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> None:
        self._context = context
        self._timeout = timeout
        super().__init__(**kwargs)

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> Response:
        if timeout is None:
            timeout = self._timeout
        return super().send(request, stream, timeout, verify, cert, proxies)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs["ssl_context"] = self._context
        return super().proxy_manager_for(proxy, **proxy_kwargs)


def requests_session(
    extra_ca: Path | str | None = None,
    *,
    pool_size: int = 10,
    timeout: float | tuple[float, float] | None = (10.0, 120.0),
) -> requests.Session:
    """A ``requests.Session`` that trusts the system CAs plus ``extra_ca`` whatever the
    environment's CA variables say; ``timeout`` (connect, read) applies to calls without one.
    It never follows a redirect."""
    session = NoRedirectSession()
    adapter = _ContextAdapter(
        ssl_context(extra_ca), timeout, pool_connections=pool_size, pool_maxsize=pool_size
    )
    session.mount("https://", adapter)
    return session
