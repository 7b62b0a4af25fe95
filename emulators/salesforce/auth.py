"""OAuth 2.0 token endpoint and session bookkeeping.

Grant types: ``client_credentials`` (HTTP Basic or form fields), the JWT bearer flow
(RS256, verified with the public half of :class:`SalesforceCredentials`' key pair), and
``password``.  Bodies follow reference section 1.1.

A session dies when ``session_ttl_seconds`` of emulator clock have passed since it was issued
(the static token is exempt), on :meth:`Sessions.expire_all`, or after
``faults.settings.session_expiry_after_calls`` calls made with it.  The JWT ``exp`` claim is
checked against the real time, as the client signs with the real time even when a test
moves the emulator clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.faults import Faults
from emulators.http import Request, Response
from emulators.store import Clock

PRODUCTION_AUDIENCE = "https://login.salesforce.com"
SANDBOX_AUDIENCE = "https://test.salesforce.com"
JWT_AUDIENCES = (PRODUCTION_AUDIENCE, SANDBOX_AUDIENCE)
# S5: client credentials only work against the org's My Domain token endpoint.
LOGIN_HOSTS = frozenset({"login.salesforce.com", "test.salesforce.com"})
JWT_MAX_LIFETIME_SECONDS = 300
JWT_LEEWAY_SECONDS = 30
EMULATOR_PASSWORD = "emulator-password"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class SalesforceCredentials:
    """The connected app and integration user the emulator accepts."""

    client_id: str = "teamsync-emulator-client"
    client_secret: str = "teamsync-emulator-secret"
    username: str = "integration@teamsync.example"  # the JWT-bearer subject
    static_token: str = "00DTm0000000001!EMULATOR.static.session"
    # The emulator plays the admin who uploaded the certificate: it keeps the key pair.
    private_key: rsa.RSAPrivateKey = field(default_factory=_new_key, repr=False)

    @property
    def private_key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public_key_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def write_private_key(self, path: Path) -> Path:
        """Write the PEM private key the client signs JWT assertions with (mode 0600)."""
        path = Path(path)
        path.write_bytes(self.private_key_pem)
        path.chmod(0o600)
        return path


@dataclass
class _Session:
    issued_ms: int
    static: bool = False
    calls: int = 0


class Sessions:
    """Issued access tokens and their lifetime rules (thread-safe)."""

    def __init__(self, clock: Clock, faults: Faults, static_token: str, ttl_seconds: int) -> None:
        self._clock = clock
        self._faults = faults
        self._ttl_ms = ttl_seconds * 1000
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {static_token: _Session(0, static=True)}
        self._org_prefix = static_token.split("!", 1)[0]

    def issue(self) -> str:
        token = f"{self._org_prefix}!{secrets.token_urlsafe(48)}"
        with self._lock:
            self._sessions[token] = _Session(self._clock.now_ms())
        return token

    def expire_all(self) -> None:
        with self._lock:
            self._sessions.clear()

    def use(self, token: str) -> bool:
        """Count one call made with ``token``; False when unknown or expired."""
        now = self._clock.now_ms()
        limit = self._faults.settings.session_expiry_after_calls
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return False
            if not session.static and now - session.issued_ms >= self._ttl_ms:
                del self._sessions[token]
                return False
            session.calls += 1
            if limit is not None and session.calls > limit:
                del self._sessions[token]
                return False
            return True


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


class TokenEndpoint:
    """``POST /services/oauth2/token``."""

    def __init__(
        self,
        credentials: SalesforceCredentials,
        sessions: Sessions,
        clock: Clock,
        org_id: str,
        user_id: str,
        *,
        my_domain_rule: bool = False,
        is_sandbox: Callable[[], bool] = lambda: False,
    ) -> None:
        self.credentials = credentials
        self.sessions = sessions
        self.clock = clock
        self.org_id = org_id
        self.user_id = user_id
        self.my_domain_rule = my_domain_rule
        self.is_sandbox = is_sandbox

    def __call__(self, request: Request, base_url: str) -> tuple[Response, str]:
        """The response and the grant type (for the request log)."""
        if request.method != "POST":
            return Response.json(
                {"error": "invalid_request", "error_description": "must use HTTP POST"}, 400
            ), "-"
        params: dict[str, str] = {k: v[0] for k, v in request.query.items() if v}
        try:
            body = request.body.decode("utf-8")
        except UnicodeDecodeError:
            body = ""
        params.update({k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()})
        grant = params.get("grant_type", "")
        try:
            if not grant:
                raise OAuthError("invalid_request", "grant type is missing")
            if grant == "client_credentials":
                host = (request.headers.get("Host") or "").split(":")[0].strip().lower()
                if self.my_domain_rule and host in LOGIN_HOSTS:
                    # The message is UNVERIFIED; the refusal itself is VERIFIED (S5).
                    raise OAuthError("invalid_grant", "request not supported on this domain")
                self._client_credentials(request, params)
                payload = self._success(base_url, with_signature=True)
                payload["token_format"] = "opaque"
            elif grant == JWT_GRANT:
                self._jwt_bearer(params, base_url)
                payload = self._success(base_url, with_signature=False)
                payload["scope"] = "web openid api id"
            elif grant == "password":
                self._password(request, params)
                payload = self._success(base_url, with_signature=True)
            else:
                raise OAuthError("unsupported_grant_type", "grant type not supported")
        except OAuthError as exc:
            return Response.json(
                {"error": exc.error, "error_description": exc.description}, exc.status
            ), grant or "-"
        return Response.json(payload, 200, {"Cache-Control": "no-cache,must-revalidate"}), grant

    # -- grant types -------------------------------------------------------------------------
    def _client(self, request: Request, params: dict[str, str]) -> tuple[str, str]:
        client_id = params.get("client_id", "")
        secret = params.get("client_secret", "")
        header = request.headers.get("Authorization") or ""
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise OAuthError("invalid_client", "invalid client credentials") from None
            client_id, _, secret = decoded.partition(":")
        return client_id, secret

    def _check_client(self, client_id: str, secret: str) -> None:
        creds = self.credentials
        if not hmac.compare_digest(client_id, creds.client_id):
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if not hmac.compare_digest(secret, creds.client_secret):
            raise OAuthError("invalid_client", "invalid client credentials")

    def _client_credentials(self, request: Request, params: dict[str, str]) -> None:
        self._check_client(*self._client(request, params))

    def _password(self, request: Request, params: dict[str, str]) -> None:
        self._check_client(*self._client(request, params))
        username = params.get("username", "")
        password = params.get("password", "")
        if username.lower() != self.credentials.username.lower() or not hmac.compare_digest(
            password, EMULATOR_PASSWORD
        ):
            raise OAuthError("invalid_grant", "authentication failure")

    def _jwt_bearer(self, params: dict[str, str], base_url: str) -> None:
        assertion = params.get("assertion", "")
        if not assertion:
            raise OAuthError("invalid_request", "assertion is missing")
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                self.credentials.public_key_pem,
                algorithms=["RS256"],
                options={"require": ["iss", "sub", "aud", "exp"], "verify_aud": False},
                leeway=JWT_LEEWAY_SECONDS,
            )
        except jwt.ExpiredSignatureError:
            raise OAuthError("invalid_grant", "expired authorization code") from None
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        if claims.get("iss") != self.credentials.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if self.my_domain_rule:
            # A sandbox takes test.salesforce.com, production login.salesforce.com (S5).
            expected = SANDBOX_AUDIENCE if self.is_sandbox() else PRODUCTION_AUDIENCE
            allowed = {expected, base_url.rstrip("/")}
        else:
            allowed = {*JWT_AUDIENCES, base_url.rstrip("/")}
        if not any(isinstance(a, str) and a.rstrip("/") in allowed for a in audiences):
            raise OAuthError("invalid_grant", "audience is invalid")
        exp = claims["exp"]
        if not isinstance(exp, int | float) or exp - time.time() > (
            JWT_MAX_LIFETIME_SECONDS + JWT_LEEWAY_SECONDS
        ):
            raise OAuthError("invalid_grant", "expired authorization code")
        if str(claims.get("sub", "")).lower() != self.credentials.username.lower():
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")

    def _success(self, base_url: str, *, with_signature: bool) -> dict[str, Any]:
        token = self.sessions.issue()
        issued_at = str(self.clock.now_ms())
        identity = f"https://login.salesforce.com/id/{self.org_id}/{self.user_id}"
        payload: dict[str, Any] = {
            "access_token": token,
            "instance_url": base_url,
            "id": identity,
            "token_type": "Bearer",
        }
        if with_signature:
            digest = hmac.new(
                self.credentials.client_secret.encode(),
                (identity + issued_at).encode(),
                hashlib.sha256,
            ).digest()
            payload["issued_at"] = issued_at
            payload["signature"] = base64.b64encode(digest).decode()
            payload["scope"] = "api id"
        return payload
