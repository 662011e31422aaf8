"""The JWT plumbing the emulators' token endpoints share: base64url without padding, HS256 signing, and reading
claims without verifying (to record who called, or a client assertion's subject)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hs256(key: bytes, header: dict[str, Any], claims: dict[str, Any], *, compact: bool = False) -> str:
    """``header.claims.signature``; ``compact`` JSON without spaces (as Entra's tokens are)."""
    separators = (",", ":") if compact else None
    signing_input = (
        b64url(json.dumps(header, separators=separators).encode())
        + "."
        + b64url(json.dumps(claims, separators=separators).encode())
    )
    signature = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


def decode_unverified(token: str) -> dict[str, Any] | None:
    """Claims of any JWT-shaped token (no signature check); ``None`` if it is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(unb64url(parts[1]))
    except (ValueError, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None
