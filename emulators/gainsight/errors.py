"""The Gainsight response envelope and the error codes the emulator answers with.

Every response, success or failure, is the same envelope::

    {"result": true, "errorCode": null, "errorDesc": null, "requestId": "<uuid4>",
     "data": ..., "message": null}

Codes marked *chosen* below are the emulator's pick where the reference has no verified code
(see the module docstring of :mod:`emulators.gainsight.app` for the full list of such choices).
"""

from __future__ import annotations

import uuid
from typing import Any

UNAUTHORIZED = "GS_APIG_2401"  # 401, verified doc sample
FIELD_TOO_LONG = "GSOBJ_1001"  # 400, "Field exceeds maximum allowed length"
INVALID_FIELD = "GSOBJ_1002"  # 400, "Invalid field, please re-check data mapping"
INVALID_GSID = "GSOBJ_1004"  # 400, "Either the Gainsight ID is invalid or missing ..."
BAD_DATETIME = "GSOBJ_1005"  # 400, a DateTime value (and any date literal in a filter)
BAD_DATE = "GSOBJ_1006"  # 400, a Date value in a write
NOT_NULLABLE = "GSOBJ_1007"  # 400, "Invalid field value" (null for a required field)
VALIDATION = "GSOBJ_1008"  # 400, "generic data validation error"; chosen for bad request shapes
NO_DATA = "GSOBJ_1011"  # "No data found for given criteria" / "No entity matches ..."
BAD_PICKLIST = "GSOBJ_1012"  # "Invalid/Inactive value provided for picklist." (a client test)
MULTIPLE_MATCHES = "GSOBJ_1014"  # chosen: lookup with MARKASERROR matched several rows
TOO_MANY_RECORDS = "GSOBJ_1017"  # chosen: more than 50 records in one write
INVALID_PATH = "GSOBJ_1023"  # 400, "Invalid API called, please refer to API documentation"
RATE_LIMITED = "GU_2400"  # 429, "Too many requests"
SERVER_ERROR = "GU_1101"  # 500, "Oops, something went wrong."
COCKPIT_INVALID_FIELD = "COCKPIT_5101"  # verified sample: invalid field in a CTA list select
COCKPIT_BAD_REQUEST = "COCKPIT_5102"  # chosen: any other malformed Cockpit request

INVALID_FIELD_DESC = "Invalid field, please re-check data mapping"
NO_DATA_DESC = "No data found for given criteria"
INVALID_PATH_DESC = "Invalid API called, please refer to API documentation"


def envelope(
    data: Any = None,
    *,
    result: bool = True,
    code: str | None = None,
    desc: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """The Gainsight envelope with a fresh request id."""
    return {
        "result": result,
        "errorCode": code,
        "errorDesc": desc,
        "requestId": str(uuid.uuid4()),
        "data": data,
        "message": message,
    }


class GainsightError(Exception):
    """A whole-call failure: becomes an error envelope with this HTTP status."""

    def __init__(
        self,
        status: int,
        code: str,
        desc: str,
        *,
        message: str | None = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {desc}")
        self.status = status
        self.code = code
        self.desc = desc
        self.message = message
        self.data = data
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return envelope(
            self.data, result=False, code=self.code, desc=self.desc, message=self.message
        )


class FieldError(Exception):
    """One invalid value in one record (a per-record failure, never a whole-call one)."""

    def __init__(self, code: str, desc: str, field: str | None, value: Any = None) -> None:
        super().__init__(f"{code}: {desc}")
        self.code = code
        self.desc = desc
        self.field = field
        self.value = value

    def detail(self) -> dict[str, Any]:
        """The field-level error object (form seen in client tests against real tenants)."""
        return {
            "errorMessage": self.desc.split(" (")[0],
            "errorCode": self.code,
            "fieldName": self.field,
            "invalidValue": self.value,
        }
