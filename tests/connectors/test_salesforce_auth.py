"""SalesforceClient auth against the emulator over HTTPS: three modes, failures, renewal, TLS."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from connectors.errors import AuthenticationError, UpstreamUnavailable
from connectors.retry import RetryPolicy
from connectors.salesforce import SalesforceClient, SalesforceConfig
from emulators.http import EmulatorServer
from emulators.salesforce import SalesforceEmulator
from emulators.salesforce.testing import SmallOrg, seed_small_org, shared_credentials
from emulators.tls import TlsMaterial

ACCOUNTS = "SELECT Id, Name FROM Account ORDER BY Name"


@pytest.fixture
def org(sf_emu: SalesforceEmulator) -> SmallOrg:
    return seed_small_org(sf_emu, accounts=450)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return shared_credentials().write_private_key(tmp_path / "jwt.pem")


def make(
    server: EmulatorServer, tls: TlsMaterial, waits: list[float], **kwargs: Any
) -> SalesforceClient:
    """A client for the emulator with a fast retry policy and recorded sleeps."""
    kwargs.setdefault("ca_bundle", tls.ca_path)
    kwargs.setdefault("retry", RetryPolicy(max_attempts=3, initial_backoff=0.01))
    return SalesforceClient(SalesforceConfig(instance_url=server.url, **kwargs), sleep=waits.append)


def oauth(mode: str, key_file: Path) -> dict[str, Any]:
    creds = shared_credentials()
    if mode == "client_credentials":
        return {"client_id": creds.client_id, "client_secret": creds.client_secret}
    return {"client_id": creds.client_id, "username": creds.username, "private_key_file": key_file}


def all_ids(client: SalesforceClient, soql: str = ACCOUNTS) -> list[str]:
    return [r["Id"] for page in client.query(soql, batch_size=200) for r in page]


@pytest.mark.usefixtures("org")
@pytest.mark.parametrize("mode", ["token", "client_credentials", "jwt"])
def test_each_auth_mode_reads(
    mode: str,
    sf_emu: SalesforceEmulator,
    server: EmulatorServer,
    tls: TlsMaterial,
    key_file: Path,
    waits: list[float],
) -> None:
    """A static token, client credentials and the JWT bearer flow all reach the data."""
    creds = {"access_token": sf_emu.issue_token()} if mode == "token" else oauth(mode, key_file)
    client = make(server, tls, waits, **creds)
    client.connect()
    assert client.count("SELECT COUNT() FROM Account") == 450
    token_calls = sf_emu.log.count(api="salesforce", kind="auth")
    assert token_calls == (0 if mode == "token" else 1)
    assert client.usage.calls["auth"] == token_calls


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"client_id": "teamsync-emulator-client", "client_secret": "wrong-secret-value"},
         "invalid_client"),
        ({"client_id": "someone-else", "client_secret": "teamsync-emulator-secret"},
         "invalid_client_id"),
    ],
)  # fmt: skip
def test_client_credentials_refused(
    kwargs: dict[str, str], code: str, server: EmulatorServer, tls: TlsMaterial, waits: list[float]
) -> None:
    """A refused token request is AuthenticationError with the OAuth code, never the secret."""
    client = make(server, tls, waits, **kwargs)
    with pytest.raises(AuthenticationError) as info:
        client.connect()
    assert info.value.code == code
    assert code in str(info.value)
    assert kwargs["client_secret"] not in str(info.value)
    assert waits == []  # refused credentials are not retried


def test_jwt_refused_for_unknown_user(
    server: EmulatorServer, tls: TlsMaterial, key_file: Path, waits: list[float]
) -> None:
    """A JWT for a user who has not approved the app is refused with invalid_grant."""
    creds = oauth("jwt", key_file) | {"username": "stranger@teamsync.example"}
    with pytest.raises(AuthenticationError) as info:
        make(server, tls, waits, **creds).connect()
    assert info.value.code == "invalid_grant"


def test_jwt_signed_with_another_key_is_refused(
    server: EmulatorServer, tls: TlsMaterial, tmp_path: Path, waits: list[float]
) -> None:
    """A JWT signed with a key the org does not know is refused."""
    from emulators.salesforce.auth import SalesforceCredentials

    other = SalesforceCredentials().write_private_key(tmp_path / "other.pem")
    with pytest.raises(AuthenticationError) as info:
        make(server, tls, waits, **oauth("jwt", other)).connect()
    assert info.value.code == "invalid_grant"


@pytest.mark.usefixtures("org")
@pytest.mark.parametrize("mode", ["client_credentials", "jwt"])
def test_session_expiry_mid_run_is_renewed_once_and_the_call_retried(
    mode: str,
    sf_emu: SalesforceEmulator,
    server: EmulatorServer,
    tls: TlsMaterial,
    key_file: Path,
    waits: list[float],
) -> None:
    """Sessions dying every 2 calls are renewed; the paged query still sees every row once."""
    client = make(server, tls, waits, **oauth(mode, key_file))
    sf_emu.faults.configure(session_expiry_after_calls=2)
    ids = all_ids(client)
    assert len(ids) == len(set(ids)) == 450
    # 3 pages; the first session serves 2 calls, the renewed one the 3rd.
    assert sf_emu.log.count(api="salesforce", kind="auth") == 2
    assert sf_emu.log.count(api="salesforce", operation="query_more") == 3  # one was refused
    assert waits == []


@pytest.mark.usefixtures("org")
def test_static_token_expiry_is_an_authentication_error(
    sf_emu: SalesforceEmulator, server: EmulatorServer, tls: TlsMaterial, waits: list[float]
) -> None:
    """A static token cannot be renewed: a 401 is AuthenticationError, no token request."""
    client = make(server, tls, waits, access_token=sf_emu.issue_token())
    pages = client.query(ACCOUNTS, batch_size=200)
    assert len(next(pages)) == 200
    sf_emu.expire_sessions()
    with pytest.raises(AuthenticationError, match="cannot be renewed") as info:
        next(pages)
    assert info.value.code == "INVALID_SESSION_ID"
    assert sf_emu.log.count(api="salesforce", kind="auth") == 0
    assert sf_emu.credentials.static_token not in str(info.value)


@pytest.mark.usefixtures("org")
def test_second_401_after_renewal_is_an_authentication_error(
    sf_emu: SalesforceEmulator,
    server: EmulatorServer,
    tls: TlsMaterial,
    key_file: Path,
    waits: list[float],
) -> None:
    """Renewal happens once per call: a 401 right after it gives up."""
    client = make(server, tls, waits, **oauth("client_credentials", key_file))
    client.connect()
    sf_emu.faults.fail_next(401, 401)
    with pytest.raises(AuthenticationError, match="again right after renewal"):
        client.count("SELECT COUNT() FROM Account")
    assert sf_emu.log.count(api="salesforce", kind="auth") == 2


@pytest.mark.usefixtures("org")
def test_static_token_with_oauth_credentials_renews(
    sf_emu: SalesforceEmulator,
    server: EmulatorServer,
    tls: TlsMaterial,
    key_file: Path,
    waits: list[float],
) -> None:
    """With a token and OAuth credentials, the token is used first and OAuth renews it."""
    creds = oauth("client_credentials", key_file) | {"access_token": sf_emu.issue_token()}
    client = make(server, tls, waits, **creds)
    assert client.count("SELECT COUNT() FROM Account") == 450
    assert sf_emu.log.count(api="salesforce", kind="auth") == 0
    sf_emu.expire_sessions()
    assert client.count("SELECT COUNT() FROM Account") == 450
    assert sf_emu.log.count(api="salesforce", kind="auth") == 1


@pytest.mark.usefixtures("org")
def test_ca_bundle_is_trusted_alongside_requests_ca_bundle(
    sf_emu: SalesforceEmulator,
    server: EmulatorServer,
    tls: TlsMaterial,
    waits: list[float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """TEAMSYNC_CA_BUNDLE (ca_bundle) is trusted even when REQUESTS_CA_BUNDLE names the
    system bundle, which requests would otherwise let override the session."""
    system = ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", system)
    monkeypatch.setenv("SSL_CERT_FILE", system)
    client = make(server, tls, waits, access_token=sf_emu.issue_token())
    assert client.count("SELECT COUNT() FROM Account") == 450


def test_untrusted_server_fails_without_retrying(
    sf_emu: SalesforceEmulator, server: EmulatorServer, tls: TlsMaterial, waits: list[float]
) -> None:
    """Without the emulator CA the TLS check fails: UpstreamUnavailable, TLS never skipped."""
    client = SalesforceClient(
        SalesforceConfig(instance_url=server.url, access_token=sf_emu.issue_token()),
        sleep=waits.append,
    )
    with pytest.raises(UpstreamUnavailable, match="TLS verification failed") as info:
        client.count("SELECT COUNT() FROM Account")
    assert info.value.code == "TLS_ERROR"
    assert waits == []
    assert sf_emu.log.count(api="salesforce") == 0
