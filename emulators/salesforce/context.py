"""What every Salesforce handler shares: the call being served and the API error type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emulators.http import Request, Response
from emulators.requestlog import Kind
from emulators.salesforce.org import ErrorItem, RecordFailure


class ApiError(Exception):
    """An HTTP error answer with a Salesforce error list body."""

    def __init__(
        self, status: int, errors: list[ErrorItem], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {', '.join(e.code for e in errors)}")
        self.status = status
        self.errors = errors
        self.headers = headers or {}

    @classmethod
    def of(cls, status: int, code: str, message: str, fields: list[str] | None = None) -> ApiError:
        return cls(status, [ErrorItem(code, message, None if fields is None else tuple(fields))])

    @classmethod
    def from_failure(cls, failure: RecordFailure) -> ApiError:
        if failure.status == 404:
            return cls.not_found()
        return cls(failure.status, failure.errors)

    @classmethod
    def not_found(cls) -> ApiError:
        return cls.of(404, "NOT_FOUND", "The requested resource does not exist")

    def response(self) -> Response:
        return Response.json([e.rest() for e in self.errors], self.status, self.headers)


@dataclass
class Call:
    """One API request being served, plus what the request log will say about it."""

    request: Request
    method: str
    version: str
    segments: list[str]  # path parts after /services/data/vNN.N/
    base_url: str  # https://{Host}
    body: Any = None  # parsed JSON body for composite subrequests
    object: str | None = None
    kind: Kind = "read"
    operation: str = "unknown"
    records: int = 0

    @property
    def data_prefix(self) -> str:
        return f"/services/data/v{self.version}"

    def json(self) -> Any:
        """The JSON body; 400 JSON_PARSER_ERROR when missing or malformed."""
        if self.body is not None:
            return self.body
        try:
            return self.request.json()
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError.of(
                400, "JSON_PARSER_ERROR", f"The request body is not valid JSON: {exc}"
            ) from None

    def param(self, name: str) -> str | None:
        return self.request.param(name)
