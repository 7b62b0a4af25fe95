"""A small threaded HTTPS server that hands every request to an application callable.

The emulators are plain functions ``app(Request) -> Response``; this module is the only
place that touches sockets.  Keep-alive (HTTP/1.1) is supported so that clients reuse
their TLS connections the way they do against the real APIs.

    server = EmulatorServer(app, ssl_context=tls.server_context).start()
    ...  # talk to server.url
    server.stop()
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


class Headers:
    """Case-insensitive, read-only view of request headers."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._items: dict[str, str] = {}
        for key, value in items:
            self._items[key.lower()] = value

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._items.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def items(self) -> Iterable[tuple[str, str]]:
        return self._items.items()


@dataclass
class Request:
    """One HTTP request as the emulators see it."""

    method: str
    path: str  # percent-decoded, without the query string
    raw_path: str  # as sent, including the query string
    query: dict[str, list[str]]
    headers: Headers
    body: bytes = b""

    def param(self, name: str, default: str | None = None) -> str | None:
        """First value of a query-string parameter (case-sensitive name)."""
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError on bad JSON."""
        if not self.body:
            raise ValueError("empty body")
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


@dataclass
class Response:
    """What the application returns; ``body`` is sent with a Content-Length."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls, obj: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        hdrs = {"Content-Type": "application/json;charset=UTF-8"}
        hdrs.update(headers or {})
        return cls(status, json.dumps(obj, separators=(",", ":")).encode(), hdrs)

    @classmethod
    def text(
        cls,
        text: str,
        status: int = 200,
        content_type: str = "text/plain;charset=UTF-8",
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        hdrs = {"Content-Type": content_type}
        hdrs.update(headers or {})
        return cls(status, text.encode("utf-8"), hdrs)

    @classmethod
    def empty(cls, status: int = 204, headers: Mapping[str, str] | None = None) -> Response:
        return cls(status, b"", dict(headers or {}))


App = Callable[[Request], Response]


def parse_request_target(target: str) -> tuple[str, dict[str, list[str]]]:
    """Split a request target into a decoded path and its query parameters."""
    parts = urlsplit(target)
    return unquote(parts.path), parse_qs(parts.query, keep_blank_values=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    _headers_buffer: list[bytes]

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in one write, and without Nagle's delay on small replies.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # Silence the default stderr access log; the emulators keep their own request log.
    def log_message(self, format: str, *args: Any) -> None:
        return

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, query = parse_request_target(self.path)
        request = Request(
            method=self.command,
            path=path,
            raw_path=self.path,
            query=query,
            headers=Headers(self.headers.items()),
            body=body,
        )
        try:
            response = self.server.app(request)
        except Exception as exc:  # noqa: BLE001 - an emulator bug must not kill the thread
            response = Response.json(
                [
                    {
                        "message": f"emulator error: {type(exc).__name__}: {exc}",
                        "errorCode": "UNKNOWN_EXCEPTION",
                    }
                ],
                status=500,
            )
        self.send_response(
            response.status,
            HTTPStatus(response.status).phrase
            if response.status in HTTPStatus._value2member_map_
            else "",
        )
        sent_length = False
        for key, value in response.headers.items():
            if key.lower() == "content-length":
                sent_length = True
            self.send_header(key, value)
        if not sent_length:
            self.send_header("Content-Length", str(len(response.body)))
        # One write for headers and body (BaseHTTPRequestHandler buffers headers in a list).
        buffer: list[bytes] = self._headers_buffer
        buffer.append(b"\r\n")
        if response.body and self.command != "HEAD":
            buffer.append(response.body)
        self.wfile.write(b"".join(buffer))
        self._headers_buffer = []

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: App, ssl_context: ssl.SSLContext | None):
        self.app = app
        self.ssl_context = ssl_context
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        if self.ssl_context is not None:
            # The handshake happens on the handler thread's first read, so one slow client
            # cannot stall the accept loop.
            sock = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that drop connections (timeouts in tests, killed processes) are normal here.
        return


class EmulatorServer:
    """Serve ``app`` over HTTPS (or HTTP when no SSL context is given) on a background thread."""

    def __init__(
        self,
        app: App,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._server = _Server((host, port), app, ssl_context)
        self._thread: threading.Thread | None = None
        self.host = host

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self._server.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
