"""Fail closed at the API boundary: redirects refused, response shapes checked before use.

    raise redirect_refused("salesforce query Account", 302, "http://evil.example/x?sid=…",
                           api="salesforce")
    # salesforce query Account: HTTP 302 redirect to http://evil.example refused (…)

:class:`~connectors.errors.RedirectRefused` and :class:`~connectors.errors.ContractViolation`
are upstream faults (exit 3, DESIGN §4): the run stops before anything is written from the bad
answer, watermarks stay where they were and nothing is marked deleted.  A body is never quoted
in a message (it can carry record data), and a redirect target is named by its scheme and host
only (its path and query can carry a session id or a secret).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from connectors.errors import RedirectRefused


def redirect_refused(
    what: str, status: int, location: str | None, *, api: str, base: str | None = None
) -> RedirectRefused:
    """The error for a redirect answered to ``what`` (``"salesforce query Account"``)."""
    return _refusal(what, status, redirect_target(location, base), api)


def renamed(error: RedirectRefused, what: str) -> RedirectRefused:
    """The same refusal, named after the call it ended."""
    return _refusal(what, error.status or 0, error.target, error.api or "")


def _refusal(what: str, status: int, target: str | None, api: str) -> RedirectRefused:
    where = f" to {target}" if target else " without a Location"
    message = f"{what}: HTTP {status} redirect{where} refused (redirects are never followed)"
    return RedirectRefused(message, api=api, status=status, target=target)


def redirect_target(location: str | None, base: str | None = None) -> str | None:
    """``scheme://host[:port]`` of a Location header; never its path, query or userinfo."""
    if not location:
        return None
    try:
        parts = urlsplit(urljoin(base or "", location.strip()))
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "an unparseable location"
    if not host:
        return "an unparseable location"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return f"{parts.scheme or '?'}://{netloc}"


def is_redirect(status: int) -> bool:
    """Every 3xx: teamsync never makes a conditional request, so even a 304 is no answer."""
    return 300 <= status < 400


class NoRedirectSession(requests.Session):
    """A ``requests.Session`` that never follows a redirect, whatever a caller asks for.

    simple-salesforce calls ``session.request`` without ``allow_redirects``, and requests
    follows 3xx by default, re-POSTing a form (the OAuth client secret) to wherever a 307
    points.  Here there is no redirect target to follow; :func:`refuse_redirects` turns the
    3xx into :class:`RedirectRefused` before anyone reads it as an answer.
    """

    max_redirects = 0

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        return None


def refuse_redirects(session: requests.Session, *, api: str) -> requests.Session:
    """Make every 3xx answered on ``session`` raise :class:`RedirectRefused` (first hook)."""

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if is_redirect(response.status_code):
            location = response.headers.get("Location")
            response.close()
            raise redirect_refused(api, response.status_code, location, api=api, base=response.url)

    hooks = session.hooks.setdefault("response", [])
    if not any(getattr(h, "_teamsync_refuse_redirects", False) for h in hooks):
        hook._teamsync_refuse_redirects = True  # type: ignore[attr-defined]
        hooks.insert(0, hook)
    session.max_redirects = 0
    return session


__all__ = [
    "NoRedirectSession",
    "is_redirect",
    "redirect_refused",
    "redirect_target",
    "refuse_redirects",
    "renamed",
]
