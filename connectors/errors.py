"""API faults: what the connectors raise when Salesforce, Gainsight or an alert sink fails.

::

    TeamsyncError                 (config/errors.py: the root and the cross-cutting errors)
    ├── RetryableError            429, 503, connection error, row lock  → retried by the policy
    └── FatalError                the run cannot go on                  → stop, progress kept
        ├── UpstreamUnavailable   unreachable / retries exhausted       → exit 3
        ├── AuthenticationError   credentials refused                   → exit 3
        ├── QuotaExceeded         daily API allocation used up          → exit 3
        ├── RedirectRefused       an API or token call answered a 3xx   → exit 3, never followed
        ├── ContractViolation     a body breaks its endpoint's contract → exit 3, never "empty"
        └── RequestRejected       the API refused a whole call (a bug or a mapping mismatch)

Connectors translate foreign exceptions (simple-salesforce, requests, httpx) into this tree at
the boundary with ``raise ... from exc``.  Messages carry the API, object, record id and error
code, never a token or a whole response body.
"""

from __future__ import annotations

from config.errors import TeamsyncError


class RetryableError(TeamsyncError):
    """A transient failure: the same call may succeed if repeated after a pause."""

    def __init__(
        self,
        message: str,
        *,
        api: str,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.api = api
        self.status = status
        self.code = code
        self.retry_after = retry_after


class FatalError(TeamsyncError):
    """The run cannot continue; what was pulled and pushed so far is kept."""

    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        api: str | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.api = api
        self.status = status
        self.code = code


class UpstreamUnavailable(FatalError):
    """The API could not be reached or kept failing after every retry."""


class AuthenticationError(FatalError):
    """The API refused our credentials (or a renewed session)."""


class QuotaExceeded(FatalError):
    """The daily API allocation is used up (or teamsync's own budget for it is)."""


class RedirectRefused(FatalError):
    """An API or token call answered with a redirect; it is never followed: exit 3.

    The message names the status and the target's ``scheme://host[:port]`` only: a path or
    query can carry a session id or a secret.
    """

    def __init__(self, message: str, *, api: str, status: int, target: str | None) -> None:
        super().__init__(message, api=api, status=status, code="REDIRECT")
        self.target = target


class ContractViolation(FatalError):
    """An API answered with a body that breaks what its endpoint promises (HTML with a 200,
    truncated JSON, a missing or null ``data``, wrong types, wrong counts): exit 3.  Nothing
    is written from it, watermarks stay, nothing is marked deleted."""

    def __init__(
        self,
        message: str,
        *,
        api: str,
        status: int | None = None,
        code: str = "CONTRACT_VIOLATION",
    ) -> None:
        super().__init__(message, api=api, status=status, code=code)


class RequestRejected(FatalError):
    """The API refused a whole call (malformed query, unknown field ...): not worth retrying."""

    exit_code = 1


__all__ = [
    "AuthenticationError",
    "ContractViolation",
    "FatalError",
    "QuotaExceeded",
    "RedirectRefused",
    "RequestRejected",
    "RetryableError",
    "UpstreamUnavailable",
]
