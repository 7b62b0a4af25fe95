"""Salesforce emulator: OAuth token endpoint and session lifetime."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce.exceptions import SalesforceExpiredSession

from emulators.http import EmulatorServer
from emulators.salesforce import SalesforceEmulator
from emulators.salesforce.testing import (
    http_session,
    seed_small_org,
    serve,
    shared_credentials,
    simple_salesforce_client,
)
from emulators.tls import TlsMaterial

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture
def sf_emu() -> SalesforceEmulator:
    emulator = SalesforceEmulator(credentials=shared_credentials())
    seed_small_org(emulator, accounts=2)
    return emulator


@pytest.fixture
def http(tls: TlsMaterial) -> requests.Session:
    return http_session(tls)


def token_url(server: EmulatorServer) -> str:
    return f"{server.url}/services/oauth2/token"


def query(http: requests.Session, server: EmulatorServer, token: str, scheme: str = "Bearer"):
    return http.get(
        f"{server.url}/services/data/v62.0/query",
        params={"q": "SELECT Id FROM Account"},
        headers={"Authorization": f"{scheme} {token}"},
        timeout=10,
    )


def sign(sf_emu: SalesforceEmulator, key: bytes | None = None, **claims: object) -> str:
    payload: dict[str, object] = {
        "iss": sf_emu.credentials.client_id,
        "sub": sf_emu.credentials.username,
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 180,
    }
    payload.update(claims)
    return jwt.encode(payload, key or sf_emu.credentials.private_key_pem, algorithm="RS256")


def test_client_credentials_with_basic_auth_issues_a_working_token(sf_emu, server, http):
    """client_credentials with HTTP Basic returns the documented fields and a usable token."""
    creds = sf_emu.credentials
    basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()
    resp = http.post(
        token_url(server),
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
        timeout=10,
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == server.url
    assert body["issued_at"].isdigit()
    assert {"access_token", "id", "signature"} <= body.keys()
    assert "refresh_token" not in body
    assert query(http, server, body["access_token"]).status_code == 200


def test_client_credentials_with_form_fields(sf_emu, server, http):
    """client_id / client_secret form fields are accepted like HTTP Basic."""
    creds = sf_emu.credentials
    resp = http.post(
        token_url(server),
        data={
            "grant_type": "client_credentials",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
        },
        timeout=10,
    )
    assert resp.status_code == 200
    assert query(http, server, resp.json()["access_token"]).json()["totalSize"] == 2


@pytest.mark.parametrize(
    ("form", "error", "description"),
    [
        ({"grant_type": "client_credentials", "client_id": "nope", "client_secret": "x"},
         "invalid_client_id", "client identifier invalid"),
        ({"grant_type": "client_credentials", "client_id": "teamsync-emulator-client",
          "client_secret": "wrong"}, "invalid_client", "invalid client credentials"),
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type",
         "grant type not supported"),
        ({}, "invalid_request", "grant type is missing"),
        ({"grant_type": "password", "client_id": "teamsync-emulator-client",
          "client_secret": "teamsync-emulator-secret", "username": "integration@teamsync.example",
          "password": "bad"}, "invalid_grant", "authentication failure"),
    ],
)  # fmt: skip
def test_token_endpoint_failures(server, http, form, error, description):
    """Bad token requests answer 400 with the OAuth error body."""
    resp = http.post(token_url(server), data=form, timeout=10)
    assert resp.status_code == 400
    assert resp.json() == {"error": error, "error_description": description}


def test_password_grant(sf_emu, server, http):
    """The username-password flow works with the emulator password."""
    creds = sf_emu.credentials
    resp = http.post(
        token_url(server),
        data={
            "grant_type": "password",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "username": creds.username,
            "password": "emulator-password",
        },
        timeout=10,
    )
    assert resp.status_code == 200
    assert query(http, server, resp.json()["access_token"]).status_code == 200


def test_jwt_bearer_with_the_written_private_key(sf_emu, server, http, tmp_path: Path):
    """A JWT signed with PyJWT and the written PEM key gets a token (login or own audience)."""
    key_path = sf_emu.credentials.write_private_key(tmp_path / "server.key")
    assert key_path.stat().st_mode & 0o777 == 0o600
    for audience in ("https://login.salesforce.com", server.url):
        assertion = sign(sf_emu, key_path.read_bytes(), aud=audience)
        resp = http.post(
            token_url(server), data={"grant_type": JWT_GRANT, "assertion": assertion}, timeout=10
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["instance_url"] == server.url
        assert query(http, server, body["access_token"]).status_code == 200


def _other_key() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.mark.parametrize(
    ("case", "error", "description"),
    [
        ("foreign key", "invalid_grant", "invalid assertion"),
        ("wrong issuer", "invalid_client_id", "client identifier invalid"),
        ("wrong subject", "invalid_grant", "user hasn't approved this consumer"),
        ("wrong audience", "invalid_grant", "audience is invalid"),
        ("expired", "invalid_grant", "expired authorization code"),
        ("far future", "invalid_grant", "expired authorization code"),
    ],
)
def test_jwt_bearer_refusals(sf_emu, server, http, case, error, description):
    """Bad assertions are refused with the matching OAuth error."""
    now = int(time.time())
    assertion = {
        "foreign key": lambda: sign(sf_emu, _other_key()),
        "wrong issuer": lambda: sign(sf_emu, iss="someone-else"),
        "wrong subject": lambda: sign(sf_emu, sub="nobody@example.com"),
        "wrong audience": lambda: sign(sf_emu, aud="https://evil.example.com"),
        "expired": lambda: sign(sf_emu, exp=now - 600),
        "far future": lambda: sign(sf_emu, exp=now + 3600),
    }[case]()
    resp = http.post(
        token_url(server), data={"grant_type": JWT_GRANT, "assertion": assertion}, timeout=10
    )
    assert resp.status_code == 400
    assert resp.json() == {"error": error, "error_description": description}


def test_expired_session_is_refused_and_relogin_succeeds(sf_emu, server, http, tls):
    """After expire_sessions a token gets 401 INVALID_SESSION_ID; both login flows recover."""
    token = sf_emu.issue_token()
    assert query(http, server, token).status_code == 200
    sf_emu.expire_sessions()
    resp = query(http, server, token)
    assert resp.status_code == 401
    assert resp.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    assert query(http, server, sf_emu.credentials.static_token).status_code == 401

    sf = simple_salesforce_client(server, tls, token)
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Account")

    creds = sf_emu.credentials
    fresh = http.post(
        token_url(server),
        data={
            "grant_type": "client_credentials",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
        },
        timeout=10,
    ).json()["access_token"]
    assert (
        simple_salesforce_client(server, tls, fresh).query("SELECT Id FROM Account")["totalSize"]
        == 2
    )
    jwt_token = http.post(
        token_url(server), data={"grant_type": JWT_GRANT, "assertion": sign(sf_emu)}, timeout=10
    ).json()["access_token"]
    assert query(http, server, jwt_token).status_code == 200


def test_sessions_expire_after_their_ttl_but_the_static_token_does_not(server, http, tls):
    """A session dies session_ttl_seconds (emulator clock) after issue; the static one lives."""
    sf_emu = SalesforceEmulator(credentials=shared_credentials(), session_ttl_seconds=60)
    with serve(sf_emu, tls) as srv:
        token = sf_emu.issue_token()
        assert query(http, srv, token).status_code == 200
        sf_emu.clock.advance(59_000)
        assert query(http, srv, token).status_code == 200
        sf_emu.clock.advance(1_000)
        assert query(http, srv, token).status_code == 401
        assert query(http, srv, sf_emu.credentials.static_token).status_code == 200


def test_session_expiry_after_calls_counts_per_token(sf_emu, server, http):
    """With session_expiry_after_calls=N a token serves N calls, then 401; others are unaffected."""
    sf_emu.faults.configure(session_expiry_after_calls=3)
    first, second = sf_emu.issue_token(), sf_emu.issue_token()
    assert [query(http, server, first).status_code for _ in range(4)] == [200, 200, 200, 401]
    assert query(http, server, second).status_code == 200
    assert query(http, server, first).status_code == 401  # dead stays dead


def test_oauth_scheme_is_accepted_and_missing_auth_is_refused(sf_emu, server, http):
    """`Authorization: OAuth <token>` works; no header or an unknown token gets 401."""
    assert query(http, server, sf_emu.issue_token(), scheme="OAuth").status_code == 200
    assert query(http, server, "00Dbogus!token").status_code == 401
    resp = http.get(f"{server.url}/services/data/v62.0/limits", timeout=10)
    assert resp.status_code == 401
    assert resp.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_token_calls_are_logged_as_auth_and_not_counted(sf_emu, server, http):
    """The token endpoint is logged with kind auth and does not use the API allocation."""
    creds = sf_emu.credentials
    http.post(
        token_url(server),
        data={"grant_type": "client_credentials", "client_id": creds.client_id,
              "client_secret": creds.client_secret},
        timeout=10,
    )  # fmt: skip
    assert sf_emu.api_usage == 0
    assert sf_emu.log.count(api="salesforce", kind="auth") == 1
    assert sf_emu.log.calls(kind="auth")[0].status == 200
