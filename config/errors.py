"""teamsync's exception tree, split by what the caller does next.

::

    TeamsyncError
    ├── ConfigurationError        bad settings / mapping / usage        → exit 2, nothing written
    ├── InvalidRecord             one record refused or malformed       → quarantine it, go on
    ├── SafeguardRefused          plan above the mass-change threshold  → exit 4
    ├── StoreUnavailable          the state store cannot be used        → exit 5, one line
    ├── LockHeld                  another run holds the lock            → exit 75
    ├── Interrupted               SIGTERM / SIGINT stopped the run      → exit 75, next run resumes
    │   (API faults, in connectors/errors.py)
    ├── RetryableError            429, 503, connection error, row lock  → retried by the policy
    └── FatalError                the run cannot go on                  → stop, progress kept
        ├── UpstreamUnavailable   unreachable / retries exhausted       → exit 3
        ├── AuthenticationError   credentials refused                   → exit 3
        ├── QuotaExceeded         daily API allocation used up          → exit 3
        ├── RedirectRefused       an API or token call answered a 3xx   → exit 3, never followed
        ├── ContractViolation     a body breaks its endpoint's contract → exit 3, never "empty"
        └── RequestRejected       the API refused a whole call (a bug or a mapping mismatch)

This module sits at the bottom of the import graph: every package may raise these.  The API
faults live with the adapters (:mod:`connectors.errors`), which translate foreign exceptions
(simple-salesforce, requests, httpx) into the tree at the boundary with ``raise ... from exc``.
Messages carry the API, object, record id and error code, never a token or a whole response
body.
"""

from __future__ import annotations

from collections.abc import Sequence


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


class InvalidRecord(TeamsyncError):
    """One record was refused (by an API) or does not validate (when mapped).

    The record is quarantined with ``reason`` and the rest of the run goes on.
    """

    def __init__(
        self,
        system: str,
        object_name: str,
        record_id: str,
        reason: str,
        *,
        code: str | None = None,
        fields: Sequence[str] = (),
        message: str | None = None,
        account_id: str | None = None,
    ) -> None:
        super().__init__(message or f"{system} {object_name} {record_id}: {reason}")
        self.system = system
        self.object_name = object_name
        self.record_id = record_id
        self.reason = reason
        self.code = code
        self.fields = list(fields)
        self.account_id = account_id  # the account left untouched because of this record


class SafeguardRefused(TeamsyncError):
    """The plan would take away more managed assignments than the safeguard allows."""

    exit_code = 4


class StoreUnavailable(TeamsyncError):
    """The state store cannot be used: unreachable, connection killed mid-run, locked, full,
    corrupt, missing privileges, or at a newer schema than this teamsync knows.

    ``problem`` is one of :data:`STORE_PROBLEMS`; the message is one line naming it and the
    store (password masked), never a SQL statement or its parameters.
    """

    exit_code = 5

    def __init__(self, message: str, *, problem: str = "unavailable") -> None:
        super().__init__(message)
        self.problem = problem


STORE_PROBLEMS = (
    "unreachable",
    "killed",
    "locked",
    "full",
    "corrupt",
    "no privileges",
    "newer schema",
    "unavailable",
)


class LockHeld(TeamsyncError):
    """Another teamsync run holds the lock."""

    exit_code = 75


class Interrupted(TeamsyncError):
    """A run was stopped by SIGTERM / SIGINT before it finished; it recorded its progress and
    the next run resumes.  ``where`` says where it stopped (``push: 40 of 120 operations``)."""

    exit_code = 75

    def __init__(self, where: str) -> None:
        super().__init__(f"interrupted by a signal during {where}; the next run resumes there")
        self.where = where


__all__ = [
    "STORE_PROBLEMS",
    "ConfigurationError",
    "Interrupted",
    "InvalidRecord",
    "LockHeld",
    "SafeguardRefused",
    "StoreUnavailable",
    "TeamsyncError",
]
