"""An emulator app as an httpx transport: connector tests without sockets or TLS.

    transport = app_transport(GainsightEmulator())
    client = GainsightClient(config, transport=transport)

Requests go straight to ``app(Request) -> Response``; nothing else changes (the request log,
faults and rate limits apply as over HTTPS).
"""

from __future__ import annotations

import httpx

from emulators.http import App, Headers, Request, parse_request_target


def app_transport(app: App) -> httpx.MockTransport:
    """An httpx transport that serves every request with ``app``."""

    def handle(request: httpx.Request) -> httpx.Response:
        target = request.url.raw_path.decode("ascii")
        path, query = parse_request_target(target)
        answer = app(
            Request(
                method=request.method,
                path=path,
                raw_path=target,
                query=query,
                headers=Headers(request.headers.items()),
                body=request.read(),
            )
        )
        return httpx.Response(answer.status, content=answer.body, headers=answer.headers)

    return httpx.MockTransport(handle)


__all__ = ["app_transport"]
