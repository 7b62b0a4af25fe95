"""The generic webhook sink: the payload as JSON, signed the Standard Webhooks way.

Every delivery carries ``webhook-id`` (the alert's idempotency key: the same on every retry),
``webhook-timestamp`` (Unix seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">``, so any Standard Webhooks library verifies it; a receiver refuses a
timestamp more than five minutes away (replays).  The secret is used as its UTF-8 bytes, or,
written ``whsec_<base64>``, as the decoded bytes (the form those libraries generate).

The older ``X-Teamsync-Signature: sha256=<hex HMAC of the body>`` is still sent for one
release; it signs no timestamp, so it cannot refuse a replay.

    headers = standard_headers("alert-key", body, secret)      # sending
    verify_standard(request.headers, body, secret)             # receiving: True / False
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

SIGNATURE_HEADER = "X-Teamsync-Signature"  # deprecated: removed in the release after next
WEBHOOK_ID = "webhook-id"
WEBHOOK_TIMESTAMP = "webhook-timestamp"
WEBHOOK_SIGNATURE = "webhook-signature"
REPLAY_WINDOW_SECONDS = 300


def sign(body: bytes, secret: str) -> str:
    """The deprecated ``X-Teamsync-Signature`` value for a webhook body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str | None) -> bool:
    """Receivers of the deprecated header: check ``X-Teamsync-Signature`` in constant time."""
    if not header:
        return False
    # Compare bytes: compare_digest refuses non-ASCII str, and a header is untrusted input.
    return hmac.compare_digest(sign(body, secret).encode(), header.encode("utf-8", "replace"))


def _key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_") :], validate=True)
        except (binascii.Error, ValueError):
            pass
    return secret.encode()


def standard_signature(msg_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def standard_headers(
    msg_id: str, body: bytes, secret: str, *, now: Callable[[], float] = time.time
) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery."""
    timestamp = int(now())
    return {
        WEBHOOK_ID: msg_id,
        WEBHOOK_TIMESTAMP: str(timestamp),
        WEBHOOK_SIGNATURE: standard_signature(msg_id, timestamp, body, secret),
    }


def verify_standard(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    now: Callable[[], float] = time.time,
    tolerance: int = REPLAY_WINDOW_SECONDS,
) -> bool:
    """Receivers: a Standard Webhooks signature that matches and a timestamp within
    ``tolerance`` seconds (a replayed or forged delivery is refused)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get(WEBHOOK_ID)
    stamp = lowered.get(WEBHOOK_TIMESTAMP)
    signatures = lowered.get(WEBHOOK_SIGNATURE)
    if not msg_id or not stamp or not signatures:
        return False
    try:
        timestamp = int(stamp)
    except ValueError:
        return False
    if abs(now() - timestamp) > tolerance:
        return False
    expected = standard_signature(msg_id, timestamp, body, secret).encode()
    return any(
        hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
        for candidate in signatures.split()
    )
