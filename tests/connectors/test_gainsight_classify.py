"""The Gainsight response classifier: one table of status + body → verdict/exception."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connectors.errors import (
    AuthenticationError,
    ContractViolation,
    RedirectRefused,
    RequestRejected,
    RetryableError,
)
from connectors.gainsight import classify


def env(
    result: bool = True, code: str | None = None, desc: str | None = None, data: Any = None
) -> bytes:
    return json.dumps(
        {
            "result": result,
            "errorCode": code,
            "errorDesc": desc,
            "requestId": "8863e73c-a465-4fc6-a385-f7b3200720dc",
            "data": data,
            "message": None,
        }
    ).encode()


HTML = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
NO_DATA = "No data found for given criteria"

TABLE: list[tuple[str, int, bytes, str, type[Exception] | None]] = [
    # name, status, body, verdict kind, exception raised for a failed call
    ("ok list", 200, env(data=[{"Gsid": "1P02A"}]), "ok", None),
    ("ok without error keys", 200, b'{"requestId": "x", "result": true, "data": {}}', "ok", None),
    ("no result key", 200, b'{"data": []}', "contract", ContractViolation),
    ("result true as text", 200, b'{"result": "true", "data": []}', "ok", None),
    ("401 documented", 401, env(False, "GS_APIG_2401", "Unauthorized"), "auth",
     AuthenticationError),
    ("2401 with a 200", 200, env(False, "GS_APIG_2401", "Unauthorized"), "auth",
     AuthenticationError),
    ("1024 with 400", 400, env(False, "GSOBJ_1024", "Invalid authorization headers"), "auth",
     AuthenticationError),
    ("1024 with 200", 200, env(False, "GSOBJ_1024", "Invalid authorization headers"), "auth",
     AuthenticationError),
    ("401 html", 401, HTML, "auth", AuthenticationError),
    ("403 json", 403, b'{"message": "Forbidden"}', "auth", AuthenticationError),
    ("429 GU_2400", 429, env(False, "GU_2400", "Too many requests"), "retry", RetryableError),
    ("GU_2400 with 200", 200, env(False, "GU_2400", "Too many requests"), "retry", RetryableError),
    ("429 plain text", 429, b"Too Many Requests", "retry", RetryableError),
    ("500 envelope", 500, env(False, "GU_1101", "Oops, something went wrong."), "retry",
     RetryableError),
    ("500 delete failed", 500, env(False, "GSOBJ_1003", "Failed to delete data"), "retry",
     RetryableError),
    ("502 proxy html", 502, HTML, "retry", RetryableError),
    ("503 plain", 503, b"Service Unavailable", "retry", RetryableError),
    ("504 empty", 504, b"", "retry", RetryableError),
    ("408", 408, b"", "retry", RetryableError),
    ("400 invalid field", 400, env(False, "GSOBJ_1002", "Invalid field, check data mapping"),
     "refused", RequestRejected),
    ("400 cockpit select", 400, env(False, "COCKPIT_5101", "Invalid fields in select clause - x",
                                    data={}), "refused", RequestRejected),
    ("400 bad request, no envelope", 400, b'{"title": "Bad Request"}', "refused", RequestRejected),
    ("404 object not found", 404, b'{"result": false, "title": "OBJECT_NOT_FOUND"}', "refused",
     RequestRejected),
    ("200 result false", 200, env(False, "GSOBJ_1005", "Invalid dateTime format (x= y)"), "refused",
     RequestRejected),
    ("200 result false as text", 200, b'{"result": "false", "errorCode": "GSOBJ_1002"}', "refused",
     RequestRejected),
    ("400 html", 400, HTML, "reject", RequestRejected),
    ("200 html (proxy login page)", 200, HTML, "contract", ContractViolation),
    ("200 empty body", 200, b"", "contract", ContractViolation),
    ("200 truncated json", 200, env(data=[{"Gsid": "1P02A"}])[:40], "contract",
     ContractViolation),
    ("200 json list", 200, b"[1, 2]", "contract", ContractViolation),
    ("200 json null", 200, b"null", "contract", ContractViolation),
    ("302 redirect", 302, b"", "redirect", RedirectRefused),
    ("307 redirect with an envelope", 307, env(data=[]), "redirect", RedirectRefused),
    ("304", 304, b"", "redirect", RedirectRefused),
]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "body", "kind", "exc"),
    [pytest.param(s, b, k, e, id=name) for name, s, b, k, e in TABLE],
)
def test_classify_table(status: int, body: bytes, kind: str, exc: type[Exception] | None) -> None:
    """Each status/body pair maps to its verdict and, when failed, the right exception type."""
    verdict = classify(status, body)
    assert verdict.kind == kind
    if exc is not None:
        assert type(verdict.error("query:Company")) is exc


@pytest.mark.parametrize(
    ("status", "code", "desc"),
    [
        (200, "GSOBJ_1XXX", NO_DATA),
        (400, "GSOBJ_1011", "No entity matches the given criteria"),
        (200, "GSOBJ_1011", None),
        (400, None, NO_DATA),
        (400, None, "No Data Found for given criteria."),
    ],
)
def test_no_data_forms_are_recognised(status: int, code: str | None, desc: str | None) -> None:
    """Every documented "No data found" form (200 or 400) is a refusal flagged no_data."""
    verdict = classify(status, env(False, code, desc))
    assert verdict.kind == "refused"
    assert verdict.no_data


@pytest.mark.parametrize(
    ("code", "desc", "data"),
    [
        ("SOMETHING_ELSE", "No Data Found for given criteria", None),
        ("GSOBJ_1002", "no data found, invalid field", None),
        (None, "Query failed: no data found for given criteria in shard 3", None),
        ("GSOBJ_1XXX", NO_DATA, [{"Gsid": "1P02A"}]),
    ],
)
def test_no_data_is_only_the_documented_failure(
    code: str | None, desc: str | None, data: Any
) -> None:
    """Another code, a text that only contains the words, or a "no data" that carries rows
    is not an empty result: reads raise instead of believing it."""
    verdict = classify(200, env(False, code, desc, data))
    assert verdict.kind == "refused"
    assert not verdict.no_data
    assert isinstance(verdict.error("query:Company"), RequestRejected)


def test_redirect_names_status_and_host_only() -> None:
    """A redirect's error names the status and scheme://host, never path, query or userinfo."""
    verdict = classify(307, b"", location="http://user:pw@evil.example:8080/steal?accesskey=k")
    error = verdict.error("update:Company")
    assert isinstance(error, RedirectRefused)
    assert error.exit_code == 3
    assert error.target == "http://evil.example:8080"
    for fragment in ("steal", "accesskey", "pw"):
        assert fragment not in str(error)


def test_refusal_with_records_is_flagged_has_data() -> None:
    """A result:false that still carries write data is flagged so writes can map records."""
    data = {"count": 0, "errors": [{"index": 0, "errorCode": "GSOBJ_1007"}], "records": []}
    verdict = classify(400, env(False, "GSOBJ_1007", "Invalid field value", data))
    assert verdict.has_data
    assert not verdict.no_data
    assert not classify(400, env(False, "COCKPIT_5101", "x", data={})).has_data


def test_retry_after_is_carried_to_the_exception() -> None:
    """A 429's Retry-After reaches the RetryableError the retry policy reads."""
    verdict = classify(429, env(False, "GU_2400", "Too many requests"), retry_after=17.0)
    error = verdict.error("update:Company")
    assert isinstance(error, RetryableError)
    assert error.retry_after == 17.0
    assert error.status == 429
    assert error.code == "GU_2400"


def test_messages_carry_code_and_a_short_description_only() -> None:
    """The message names code and a shortened errorDesc, never the rest of the body."""
    long_desc = "Invalid dateTime format (RenewalDate= " + "x" * 500 + ")"
    body = env(False, "GSOBJ_1005", long_desc, data=[{"Name": "SECRET ROW VALUE"}])
    message = str(classify(400, body).error("insert:Company"))
    assert message.startswith("gainsight insert:Company: HTTP 400 GSOBJ_1005 Invalid dateTime")
    assert len(message) < 200
    assert "SECRET ROW VALUE" not in message
    assert "requestId" not in message
