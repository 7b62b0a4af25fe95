"""OAuth 2.0 against ``{instance_url}/services/oauth2/token``: client credentials, JWT bearer.

simple-salesforce's own login helpers only talk to ``*.salesforce.com``, so teamsync makes
the token request itself and hands the resulting token and instance URL to the library.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import requests

from config.errors import ConfigurationError
from connectors.errors import AuthenticationError, RetryableError
from connectors.retry import parse_retry_after
from connectors.salesforce._config import SalesforceConfig
from connectors.salesforce._errors import API, RETRYABLE_STATUSES, short

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_LIFETIME_SECONDS = 180  # Salesforce refuses a far-future exp; simple-salesforce uses 3 min


@dataclass(frozen=True)
class Token:
    access_token: str
    instance_url: str

    def __repr__(self) -> str:
        return f"Token(access_token='***', instance_url={self.instance_url!r})"


def token_url(config: SalesforceConfig) -> str:
    return config.instance_url.rstrip("/") + "/services/oauth2/token"


def jwt_assertion(config: SalesforceConfig, now: Callable[[], float] = time.time) -> str:
    """An RS256-signed JWT bearer assertion (iss=client_id, sub=username, aud, exp)."""
    path = Path(config.private_key_file or "")
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"salesforce: cannot read the JWT private key file {path}: {exc.strerror}"
        ) from exc
    claims = {
        "iss": config.client_id,
        "sub": config.username,
        "aud": config.audience,
        "exp": int(now()) + JWT_LIFETIME_SECONDS,
    }
    try:
        return jwt.encode(claims, key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise ConfigurationError(
            f"salesforce: {path} is not a usable RSA private key ({type(exc).__name__})"
        ) from exc


def token_form(config: SalesforceConfig, now: Callable[[], float] = time.time) -> dict[str, str]:
    """The form body for the configured OAuth flow."""
    mode = config.oauth_mode
    if mode == "jwt":
        return {"grant_type": JWT_GRANT, "assertion": jwt_assertion(config, now)}
    if mode == "client_credentials":
        # Salesforce's own example sends the client in form fields; both forms are accepted.
        return {
            "grant_type": "client_credentials",
            "client_id": config.client_id or "",
            "client_secret": config.client_secret or "",
        }
    raise ConfigurationError("salesforce: no OAuth credentials to obtain a session with")


def _scrub(text: str, config: SalesforceConfig) -> str:
    for secret in config.secrets:
        text = text.replace(secret, "***")
    return text


def request_token(
    config: SalesforceConfig,
    session: requests.Session,
    *,
    now: Callable[[], float] = time.time,
) -> Token:
    """One token request.  Raises AuthenticationError when refused, RetryableError when
    the endpoint is busy or down (the caller retries), ConfigurationError for local faults."""
    form = token_form(config, now)
    mode = config.oauth_mode
    response = session.post(
        token_url(config),
        data=form,
        headers={"Accept": "application/json"},
        timeout=config.timeout,
    )
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = None
    status = response.status_code
    if status == 200 and isinstance(body, dict) and body.get("access_token"):
        instance = body.get("instance_url") or config.instance_url
        return Token(str(body["access_token"]), str(instance))
    if status in RETRYABLE_STATUSES:
        raise RetryableError(
            f"{API} token request ({mode}): HTTP {status}",
            api=API,
            status=status,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    error = description = None
    if isinstance(body, dict):
        error = body.get("error") or body.get("errorCode")
        description = body.get("error_description") or body.get("message")
    elif isinstance(body, list) and body and isinstance(body[0], dict):
        error, description = body[0].get("errorCode"), body[0].get("message")
    text = f"{API} token request ({mode}) refused: HTTP {status}"
    if error:
        text += f" {error}"
    if description:
        text += f": {_scrub(short(description), config)}"
    raise AuthenticationError(text, api=API, status=status, code=str(error) if error else None)
