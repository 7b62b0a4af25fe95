"""Helpers for tests that talk to the Gainsight emulator over HTTPS.

Starting and stopping an HTTPS server per test costs a poll interval on shutdown; a module
can instead serve one :class:`AppSwitch` and point it at each test's fresh emulator:

    switch = AppSwitch()
    with EmulatorServer(switch, ssl_context=tls.server_context) as server:
        switch.target = GainsightEmulator()
        ...
"""

from __future__ import annotations

from emulators.http import App, Request, Response


class AppSwitch:
    """An app that forwards every request to ``target`` (503 while there is none)."""

    def __init__(self, target: App | None = None) -> None:
        self.target = target

    def __call__(self, request: Request) -> Response:
        target = self.target
        if target is None:
            return Response.text("no emulator behind this server", 503)
        return target(request)
