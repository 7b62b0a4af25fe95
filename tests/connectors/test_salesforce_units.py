"""Salesforce connector pieces without a server: classifier, config, records, auth form."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
import urllib3.exceptions
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from config.errors import ConfigurationError, InvalidRecord, TeamsyncError
from connectors.errors import (
    AuthenticationError,
    QuotaExceeded,
    RequestRejected,
    RetryableError,
    UpstreamUnavailable,
)
from connectors.retry import PollPolicy
from connectors.salesforce import SalesforceConfig, WriteResult, jwt_audience_for
from connectors.salesforce._auth import JWT_GRANT, token_form
from connectors.salesforce._client import _prepare
from connectors.salesforce._errors import (
    Call,
    SessionExpired,
    bulk_error,
    classify,
    error_info,
    translate,
)
from connectors.salesforce._records import (
    Column,
    ResultMatcher,
    convert,
    csv_cell,
    csv_records,
    csv_row_count,
    flatten,
    pages,
)
from connectors.sfid import to18

QUERY = Call("query", "Account")
RECORD = Call("sobject.update", "Account", record_id="001Tm0000000001IAA")


def body(code: str, message: str = "m") -> list[dict[str, Any]]:
    return [{"errorCode": code, "message": message}]


@pytest.mark.parametrize(
    ("status", "payload", "call", "expected"),
    [
        (429, body("REQUEST_LIMIT_EXCEEDED", "Too many requests"), QUERY, RetryableError),
        (503, body("SERVER_UNAVAILABLE"), QUERY, RetryableError),
        (503, "<html>maintenance</html>", QUERY, RetryableError),
        (502, None, QUERY, RetryableError),
        (500, body("UNKNOWN_EXCEPTION"), QUERY, RetryableError),
        (504, None, QUERY, RetryableError),
        (400, body("UNABLE_TO_LOCK_ROW"), QUERY, RetryableError),
        (500, body("UNABLE_TO_LOCK_ROW"), QUERY, RetryableError),
        (400, body("QUERY_TIMEOUT"), QUERY, RetryableError),
        (403, body("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), QUERY,
         QuotaExceeded),
        (403, body("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."), QUERY,
         RetryableError),
        (401, body("INVALID_SESSION_ID", "Session expired or invalid"), QUERY, SessionExpired),
        (401, "Unauthorized", QUERY, SessionExpired),
        (403, body("API_DISABLED_FOR_ORG"), QUERY, AuthenticationError),
        (403, body("INSUFFICIENT_ACCESS"), QUERY, RequestRejected),
        (400, body("MALFORMED_QUERY"), QUERY, RequestRejected),
        (400, body("INVALID_FIELD"), QUERY, RequestRejected),
        (400, body("INVALID_TYPE"), QUERY, RequestRejected),
        (400, body("INVALID_QUERY_LOCATOR"), QUERY, RequestRejected),
        (404, body("NOT_FOUND"), QUERY, RequestRejected),
        (409, body("INVALIDJOBSTATE"), QUERY, RequestRejected),
        (300, ["/services/data/v62.0/sobjects/Account/001"], QUERY, RequestRejected),
        (404, body("NOT_FOUND"), RECORD, InvalidRecord),
        (400, body("ENTITY_IS_DELETED"), RECORD, InvalidRecord),
        (400, body("INVALID_FIELD"), RECORD, RequestRejected),
        (400, body("UNABLE_TO_LOCK_ROW"), RECORD, RetryableError),
    ],
)  # fmt: skip
def test_classify_table(status: int, payload: Any, call: Call, expected: type[Exception]) -> None:
    """Each status + errorCode pair maps to the error the caller should act on."""
    error = classify(status, payload, call)
    assert type(error) is expected
    assert isinstance(error, TeamsyncError)


def test_classified_message_names_context_not_body() -> None:
    """Messages carry API, operation, object, record id and code; not the whole body."""
    payload = [
        {"errorCode": "ENTITY_IS_DELETED", "message": "entity is deleted\nsecond line"},
        {"errorCode": "OTHER", "message": "SECRET-SHOULD-NOT-APPEAR"},
    ]
    error = classify(400, payload, RECORD)
    assert isinstance(error, InvalidRecord)
    text = str(error)
    assert text.startswith("salesforce sobject.update Account 001Tm0000000001IAA: HTTP 400")
    assert "ENTITY_IS_DELETED" in text
    assert "second line" not in text
    assert "SECRET" not in text
    assert error.code == "ENTITY_IS_DELETED"
    assert error.record_id == "001Tm0000000001IAA"


def test_classify_carries_retry_after() -> None:
    """The Retry-After seen on the response travels on the RetryableError."""
    error = classify(429, body("REQUEST_LIMIT_EXCEEDED"), QUERY, retry_after=7.0)
    assert isinstance(error, RetryableError)
    assert error.retry_after == 7.0
    assert error.status == 429


def test_error_info_reads_every_body_shape() -> None:
    """REST errorCode, collections statusCode and OAuth error bodies are all understood."""
    assert error_info(body("X", "y")).code == "X"
    collection = [{"statusCode": "DUPLICATES_DETECTED", "message": "dup", "fields": ["Name"]}]
    info = error_info(collection)
    assert (info.code, info.message, info.fields) == ("DUPLICATES_DETECTED", "dup", ("Name",))
    oauth = error_info({"error": "invalid_grant", "error_description": "authentication failure"})
    assert (oauth.code, oauth.message) == ("invalid_grant", "authentication failure")
    assert error_info("<html>").code is None
    assert error_info([]).code is None


def sf_error(cls: type, status: int, payload: Any) -> Exception:
    return cls("https://x/services/data/v62.0/query?q=...", status, "query", payload)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("exc", "call", "expected"),
    [
        (sf_error(SalesforceExpiredSession, 401, body("INVALID_SESSION_ID")), QUERY,
         SessionExpired),
        (sf_error(SalesforceMalformedRequest, 400, body("MALFORMED_QUERY")), QUERY,
         RequestRejected),
        (sf_error(SalesforceRefusedRequest, 403,
                  body("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")), QUERY,
         QuotaExceeded),
        (sf_error(SalesforceGeneralError, 503, body("SERVER_UNAVAILABLE")), QUERY, RetryableError),
        (requests.ConnectTimeout("x"), QUERY, RetryableError),
        (requests.ReadTimeout("x"), QUERY, RetryableError),
        (requests.ConnectionError("reset"), QUERY, RetryableError),
        (requests.exceptions.ChunkedEncodingError("x"), QUERY, RetryableError),
        (requests.exceptions.SSLError("bad cert"), QUERY, UpstreamUnavailable),
        (requests.ReadTimeout("x"), Call("collections.create", "Account", idempotent=False),
         UpstreamUnavailable),
        (requests.ConnectionError("reset"), Call("collections.create", idempotent=False),
         UpstreamUnavailable),
        (requests.ConnectTimeout("x"), Call("collections.create", idempotent=False),
         RetryableError),
        (requests.ConnectionError(urllib3.exceptions.MaxRetryError(
            None, "/", urllib3.exceptions.NewConnectionError(None, "refused"))),  # type: ignore[arg-type]
         Call("collections.create", idempotent=False), RetryableError),
    ],
)  # fmt: skip
def test_translate_foreign_exceptions(exc: Exception, call: Call, expected: type) -> None:
    """simple-salesforce and requests exceptions become teamsync errors; a create whose
    answer was lost is not repeated."""
    error = translate(exc, call)
    assert type(error) is expected


def test_translate_leaves_unknown_exceptions_alone() -> None:
    """A programming error is not dressed up as an API error; other requests errors are
    fatal, not retried."""
    assert translate(KeyError("x"), QUERY) is None
    error = translate(requests.TooManyRedirects("loop"), QUERY)
    assert type(error) is UpstreamUnavailable


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("INVALID_FIELD:Foreign key external ID: c9 not found:--", "INVALID_FIELD",
         "Foreign key external ID: c9 not found"),
        ("UNABLE_TO_LOCK_ROW:unable to obtain exclusive access", "UNABLE_TO_LOCK_ROW",
         "unable to obtain exclusive access"),
        ("something odd", "BULK_ERROR", "something odd"),
    ],
)  # fmt: skip
def test_bulk_error_parses_code_and_message(text: str, code: str, message: str) -> None:
    """sf__Error cells split into code and message."""
    info = bulk_error(text)
    assert (info.code, info.message) == (code, message)


# --- config --------------------------------------------------------------------------------


def test_config_repr_masks_secrets() -> None:
    """Neither the token nor the client secret shows in repr/str."""
    config = SalesforceConfig(
        instance_url="https://acme.my.salesforce.com",
        access_token="00D!SECRETTOKEN",
        client_id="cid",
        client_secret="TOPSECRET",
    )
    for text in (repr(config), str(config)):
        assert "SECRETTOKEN" not in text
        assert "TOPSECRET" not in text
        assert "client_id='cid'" in text
    assert config.auth_mode == "token"
    assert config.oauth_mode == "client_credentials"


@pytest.mark.parametrize(
    ("kwargs", "mode"),
    [
        ({"access_token": "t"}, "token"),
        ({"client_id": "c", "client_secret": "s"}, "client_credentials"),
        ({"client_id": "c", "username": "u", "private_key_file": Path("k.pem")}, "jwt"),
        (
            {
                "client_id": "c",
                "client_secret": "s",
                "username": "u",
                "private_key_file": Path("k"),
            },
            "jwt",
        ),
    ],
)
def test_config_auth_modes(kwargs: dict[str, Any], mode: str) -> None:
    """The first complete credential set decides the mode."""
    assert SalesforceConfig(instance_url="https://x.example", **kwargs).auth_mode == mode


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"instance_url": "http://x.example", "access_token": "t"}, "https://"),
        ({"instance_url": "https://x.example"}, "no Salesforce credentials"),
        ({"instance_url": "https://x.example", "username": "u", "private_key_file": Path("k")},
         "needs client_id"),
        ({"instance_url": "https://x.example", "access_token": "t", "api_budget": 1.5},
         "api_budget"),
        ({"instance_url": "https://x.example", "access_token": "t", "api_version": "v62"},
         "api_version"),
        ({"instance_url": "https://x.example", "access_token": "t", "read_timeout": 0}, "timeouts"),
        ({"instance_url": "https://x.example", "access_token": "t", "lock_retries": -1},
         "lock_retries"),
    ],
)  # fmt: skip
def test_config_refuses_bad_settings(kwargs: dict[str, Any], problem: str) -> None:
    """Bad settings are a ConfigurationError naming the problem."""
    with pytest.raises(ConfigurationError, match=problem):
        SalesforceConfig(**kwargs)


# --- auth form -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("jwt") / "key.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path, key


def test_jwt_assertion_claims(key_file: tuple[Path, rsa.RSAPrivateKey]) -> None:
    """The JWT is RS256 with iss=client_id, sub=username, aud and a 3-minute exp."""
    path, key = key_file
    config = SalesforceConfig(
        instance_url="https://x.example",
        client_id="cid",
        username="integration@example.com",
        private_key_file=path,
        jwt_audience="https://test.salesforce.com",
    )
    form = token_form(config, now=lambda: 1_700_000_000.0)
    assert form["grant_type"] == JWT_GRANT
    assert jwt.get_unverified_header(form["assertion"])["alg"] == "RS256"
    claims = jwt.decode(
        form["assertion"],
        key.public_key(),
        algorithms=["RS256"],
        audience="https://test.salesforce.com",
        options={"verify_exp": False},
    )
    assert claims == {
        "iss": "cid",
        "sub": "integration@example.com",
        "aud": "https://test.salesforce.com",
        "exp": 1_700_000_180,
    }


def test_jwt_with_missing_or_bad_key_is_a_configuration_error(tmp_path: Path) -> None:
    """An unreadable or non-RSA key file is a ConfigurationError, before any request."""
    base = {"instance_url": "https://x.example", "client_id": "c", "username": "u"}
    with pytest.raises(ConfigurationError, match="cannot read"):
        token_form(SalesforceConfig(**base, private_key_file=tmp_path / "missing.pem"))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(ConfigurationError, match="not a usable RSA private key"):
        token_form(SalesforceConfig(**base, private_key_file=junk))


def test_client_credentials_form() -> None:
    """Client credentials go in the form body with the grant type."""
    config = SalesforceConfig(instance_url="https://x.example", client_id="c", client_secret="s")
    assert token_form(config, now=time.time) == {
        "grant_type": "client_credentials",
        "client_id": "c",
        "client_secret": "s",
    }


# --- records -------------------------------------------------------------------------------


def test_flatten_removes_attributes_and_flattens_parents() -> None:
    """attributes go; parents become dotted keys; a null parent keeps the selected keys."""
    rec = {
        "attributes": {"type": "Account"},
        "Id": "001",
        "Owner": {"attributes": {"type": "User"}, "Email": "a@x", "Manager": None},
        "Parent": None,
        "BillingAddress": {"city": "Paris"},
        "Contacts": {"totalSize": 1, "done": True, "records": [{"attributes": {}, "Id": "003"}]},
    }
    expected = ["Id", "Owner.Email", "Owner.Manager.Email", "Parent.Name", "Parent.Owner.Email"]
    assert flatten(rec, expected) == {
        "Id": "001",
        "Owner.Email": "a@x",
        "Owner.Manager.Email": None,
        "Parent.Name": None,
        "Parent.Owner.Email": None,
        "BillingAddress": {"city": "Paris"},
        "Contacts": [{"Id": "003"}],
    }


@pytest.mark.parametrize(
    ("text", "type_", "expected"),
    [
        ("", "string", None),
        ("", "boolean", None),
        ("true", "boolean", True),
        ("false", "boolean", False),
        ("42", "int", 42),
        ("1500.5", "currency", 1500.5),
        ("1500", "double", 1500.0),
        ("2024-05-01T12:00:03.000Z", "datetime", "2024-05-01T12:00:03.000+0000"),
        ("2024-05-01T14:00:03.250+0200", "datetime", "2024-05-01T12:00:03.250+0000"),
        ("2024-05-01T12:00:03.5Z", "datetime", "2024-05-01T12:00:03.500+0000"),
        ("2024-13-01T12:00:03.000Z", "datetime", "2024-13-01T12:00:03.000Z"),  # kept as sent
        ("2024-05-01", "date", "2024-05-01"),
        ("a;b", "multipicklist", "a;b"),
    ],
)
def test_convert_types_csv_like_rest(text: str, type_: str, expected: Any) -> None:
    """Bulk CSV cells come back typed as the REST API types them."""
    value = convert(text, type_)
    assert value == expected
    assert type(value) is type(expected)


def test_csv_records_maps_columns_and_pads_short_rows() -> None:
    """Header names map case-insensitively onto REST keys; missing cells are None."""
    text = 'ID,owner.email,NumberOfEmployees\n"001","a@x","5"\n"002"\n'
    columns = {
        "id": Column("Id", "id"),
        "owner.email": Column("Owner.Email", "email"),
        "numberofemployees": Column("NumberOfEmployees", "int"),
    }
    assert list(csv_records(text, columns)) == [
        {"Id": "001", "Owner.Email": "a@x", "NumberOfEmployees": 5},
        {"Id": "002", "Owner.Email": None, "NumberOfEmployees": None},
    ]


def test_csv_row_count_counts_what_csv_records_makes() -> None:
    """A result chunk is counted without typing it: blank lines are no records, a quoted
    value spanning lines is one; an empty body or a bare header holds none."""
    columns = {"id": Column("Id", "id"), "name": Column("Name", "string")}
    text = 'Id,Name\n"001","two\nlines"\n\n"002","b"\n'
    assert csv_row_count(text) == len(list(csv_records(text, columns))) == 2
    assert csv_row_count("") == csv_row_count("Id,Name\n") == 0


def test_pages_groups_records() -> None:
    """pages() yields lists of at most the page size, the last one shorter."""
    assert [len(p) for p in pages(({"i": i} for i in range(5)), 2)] == [2, 2, 1]


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, "#N/A"),
        ("", "#N/A"),
        (True, "true"),
        (1e20, "100000000000000000000"),
        (Decimal("2.50"), "2.5"),
        (dt.date(2024, 1, 2), "2024-01-02"),
        (dt.datetime(2024, 1, 2, 3, 4, 5, 678_000, tzinfo=dt.UTC), "2024-01-02T03:04:05.678Z"),
        (["b", "a"], "b;a"),
        ("plain", "plain"),
    ],
)
def test_csv_cell(value: Any, cell: str) -> None:
    """Ingest cells: None sets null (#N/A), other values as Salesforce reads them."""
    assert csv_cell(value) == cell


def test_result_matcher_handles_duplicates_and_id_fallback() -> None:
    """Identical rows match one input each; rows echoing a different Id spelling still match."""
    matcher = ResultMatcher(["Id", "Name"])
    matcher.add(0, ["001Tm0000000001IAA", "A"])
    matcher.add(1, ["001Tm0000000002IAA", "B"])
    matcher.add(2, ["001Tm0000000002IAA", "B"])
    assert matcher.match({"Id": "001Tm0000000002IAA", "Name": "B"}) == 1
    assert matcher.match({"Id": "001Tm0000000002IAA", "Name": "B"}) == 2
    assert matcher.match({"Id": "001TM0000000001IAA", "Name": "A changed"}) == 0
    assert matcher.match({"Id": "001Tm0000000001IAA", "Name": "A"}) is None
    creates = ResultMatcher(["Name", "Title"])
    creates.add(0, [" padded ", "x"])
    assert creates.match({"sf__Id": "001", "Name": "padded", "Title": "x"}) == 0


def test_prepare_refuses_bad_records_locally() -> None:
    """Records that could only fail are failed locally (never sent) with a code."""
    good = to18("001Tm00000000Aa")
    assert _prepare("update", 0, {"Id": good[:15], "Name": "x"}) == {"Id": good, "Name": "x"}
    cases: list[tuple[Any, dict[str, Any], str]] = [
        ("create", {"Id": good, "Name": "x"}, "INVALID_FIELD_FOR_INSERT_UPDATE"),
        ("update", {"Name": "x"}, "MISSING_ID"),
        ("update", {"Id": "001bad", "Name": "x"}, "MALFORMED_ID"),
        ("delete", {"Id": good + "X"}, "MALFORMED_ID"),
        ("create", {"Name; DROP": "x"}, "INVALID_FIELD"),
        ("create", {"Owner.Email": "x"}, "INVALID_FIELD"),
        ("create", {"Amount": float("nan")}, "INVALID_VALUE"),
        ("create", {"When__c": dt.datetime(2024, 1, 1)}, "INVALID_VALUE"),
    ]
    for op, record, code in cases:
        result = _prepare(op, 3, record)
        assert isinstance(result, WriteResult), (op, record)
        assert (result.index, result.success, result.code) == (3, False, code)


# --- Bulk job polling ----------------------------------------------------------------------


def polling_client(
    states: list[str], waits: list[float], poll: PollPolicy | None = None
) -> tuple[Any, list[str]]:
    """A client whose API calls answer a scripted sequence of Bulk job states."""
    from connectors.salesforce import SalesforceClient

    calls: list[str] = []
    config = SalesforceConfig(
        instance_url="https://x.example", access_token="t", bulk_poll=poll or PollPolicy()
    )
    client = SalesforceClient(config, sleep=waits.append)

    def fake_call(call: Call, fn: Any) -> Any:
        calls.append(call.operation)
        if call.operation.endswith(".poll"):
            state = states.pop(0) if states else "InProgress"
            return {
                "id": "750x",
                "state": state,
                "errorMessage": "InvalidBatch : Field name not found : X",
            }
        return {}

    client._call = fake_call  # type: ignore[method-assign]
    return client, calls


def test_bulk_polling_backs_off_until_complete() -> None:
    """A job is polled with growing waits until JobComplete."""
    waits: list[float] = []
    client, calls = polling_client(["UploadComplete", "InProgress", "JobComplete"], waits)
    client._wait_for_job("750x", False, "Account")
    assert calls == ["bulk2.ingest.poll"] * 3
    assert waits == [0.5, 0.75]


def test_bulk_polling_is_bounded_and_aborts() -> None:
    """A job that never finishes is aborted once the polling budget is spent."""
    waits: list[float] = []
    client, calls = polling_client([], waits, PollPolicy(budget=30.0))
    with pytest.raises(UpstreamUnavailable, match="aborted") as info:
        client._wait_for_job("750x", True, "Account")
    assert info.value.code == "BULK_JOB_TIMEOUT"
    assert calls[-1] == "bulk2.abort"
    assert 30.0 <= sum(waits) < 30.0 + PollPolicy().largest
    assert max(waits) == PollPolicy().largest


def test_failed_bulk_job_names_the_reason() -> None:
    """A Failed job raises RequestRejected quoting Salesforce's errorMessage."""
    client, _ = polling_client(["Failed"], [])
    with pytest.raises(RequestRejected, match="Field name not found"):
        client._wait_for_job("750x", False, "Account")


@pytest.mark.parametrize(
    ("url", "audience"),
    [
        ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
        ("https://login.salesforce.com", "https://login.salesforce.com"),
        ("https://test.salesforce.com", "https://test.salesforce.com"),
        ("https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"),
        ("https://acme--uat.my.salesforce.com", "https://test.salesforce.com"),
        ("https://127.0.0.1:8443", "https://login.salesforce.com"),
    ],
)
def test_jwt_audience_is_derived_from_the_host(url: str, audience: str) -> None:
    """S5: sandboxes (test., *.sandbox.my., legacy --) get https://test.salesforce.com."""
    assert jwt_audience_for(url) == audience
    config = SalesforceConfig(
        instance_url=url, client_id="cid", username="u@example.com", private_key_file=Path("k")
    )
    assert config.audience == audience


def test_explicit_jwt_audience_wins(key_file: tuple[Path, rsa.RSAPrivateKey]) -> None:
    """A configured audience is sent as it is, whatever the host says."""
    path, key = key_file
    config = SalesforceConfig(
        instance_url="https://acme--uat.sandbox.my.salesforce.com",
        client_id="cid",
        username="u@example.com",
        private_key_file=path,
        jwt_audience="https://acme--uat.sandbox.my.salesforce.com",
    )
    claims = jwt.decode(
        token_form(config)["assertion"],
        key.public_key(),
        algorithms=["RS256"],
        options={"verify_aud": False},
    )
    assert claims["aud"] == "https://acme--uat.sandbox.my.salesforce.com"


@pytest.mark.parametrize(
    "host", ["login.salesforce.com", "test.salesforce.com", "LOGIN.salesforce.com"]
)
def test_client_credentials_on_a_login_host_is_a_configuration_error(host: str) -> None:
    """S5: client credentials only work on My Domain; refused before any request."""
    with pytest.raises(ConfigurationError, match="My Domain"):
        SalesforceConfig(instance_url=f"https://{host}", client_id="cid", client_secret="s")
    # The JWT flow may use the login host; a My Domain host is fine for both.
    SalesforceConfig(
        instance_url=f"https://{host}", client_id="cid", username="u", private_key_file=Path("k")
    )
    SalesforceConfig(
        instance_url="https://acme.my.salesforce.com", client_id="c", client_secret="s"
    )
