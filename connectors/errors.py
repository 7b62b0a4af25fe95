"""teamsync's exception tree, split by what the caller does next.

::

    TeamsyncError
    ├── ConfigurationError        bad settings / mapping / usage        → exit 2, nothing written
    ├── RetryableError            429, 503, connection error, row lock  → retried by the policy
    ├── RecordError               one record refused                    → quarantine it, go on
    ├── FatalError                the run cannot go on                  → stop, progress kept
    │   ├── UpstreamUnavailable   unreachable / retries exhausted       → exit 3
    │   ├── AuthenticationError   credentials refused                   → exit 3
    │   ├── QuotaExceeded         daily API allocation used up          → exit 3
    │   └── RequestRejected       the API refused a whole call (a bug or a mapping mismatch)
    ├── SafeguardRefused          plan above the mass-change threshold  → exit 4
    └── LockHeld                  another run holds the lock            → exit 75

Connectors translate foreign exceptions (simple-salesforce, requests, httpx) into this tree at
the boundary with ``raise ... from exc``.  Messages carry the API, object, record id and error
code, never a token or a whole response body.
"""

from __future__ import annotations


class TeamsyncError(Exception):
    """Root of every error teamsync raises on purpose."""

    exit_code = 1


class ConfigurationError(TeamsyncError):
    """Settings, mapping file or command-line usage is invalid; nothing was written."""

    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        if self.problems:
            message = message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


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


class RecordError(TeamsyncError):
    """One record was refused; the rest of the run goes on and the record is quarantined."""

    def __init__(
        self,
        message: str,
        *,
        api: str,
        object_name: str,
        record_id: str | None,
        code: str | None = None,
        fields: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.api = api
        self.object_name = object_name
        self.record_id = record_id
        self.code = code
        self.fields = list(fields or [])


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


class RequestRejected(FatalError):
    """The API refused a whole call (malformed query, unknown field ...): not worth retrying."""

    exit_code = 1


class SafeguardRefused(TeamsyncError):
    """The plan would take away more managed assignments than the safeguard allows."""

    exit_code = 4


class LockHeld(TeamsyncError):
    """Another teamsync run holds the lock."""

    exit_code = 75
