"""The generic webhook sink: the payload as JSON, signed with HMAC-SHA256.

Receivers check ``X-Teamsync-Signature`` with :func:`verify`.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Teamsync-Signature"


def sign(body: bytes, secret: str) -> str:
    """The signature header value for a webhook body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str | None) -> bool:
    """Receivers: check ``X-Teamsync-Signature`` in constant time."""
    if not header:
        return False
    # Compare bytes: compare_digest refuses non-ASCII str, and a header is untrusted input.
    return hmac.compare_digest(sign(body, secret).encode(), header.encode("utf-8", "replace"))
