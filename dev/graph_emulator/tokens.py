"""App-only access tokens for Microsoft Graph, issued and checked by the emulator.

HS256 JWTs with a per-process key: only the emulator itself verifies them (signature, expiry,
audience), so a token from another process (or the ARM emulator) is rejected as a real Graph would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any

from dev.emulator_kit.jwt import decode_unverified, hs256, unb64url

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_AUDIENCES = (GRAPH_RESOURCE, GRAPH_RESOURCE + "/", GRAPH_APP_ID)
NAMESPACE = uuid.UUID("0c6f3f7e-25a8-4f52-9d55-6a1f0e3c9b11")

_KEY = secrets.token_bytes(32)


def service_principal_oid(client_id: str) -> str:
    """The object id the emulator gives the app's service principal (``oid`` of its tokens)."""
    return str(uuid.uuid5(NAMESPACE, "sp:" + client_id.lower()))


def issue(*, tenant_id: str, client_id: str, roles: list[str], lifetime: int) -> tuple[str, dict[str, Any]]:
    now = int(time.time())
    oid = service_principal_oid(client_id)
    claims: dict[str, Any] = {
        "aud": GRAPH_RESOURCE,
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "tid": tenant_id,
        "appid": client_id,
        "azp": client_id,
        "oid": oid,
        "sub": oid,
        "idtyp": "app",
        "roles": list(roles),
        "ver": "1.0",
        "uti": secrets.token_urlsafe(16),
    }
    return hs256(_KEY, {"alg": "HS256", "typ": "JWT", "kid": "graph-emulator"}, claims), claims


def verify(token: str) -> tuple[dict[str, Any] | None, str]:
    """``(claims, "")`` for a valid Graph token of this process, else ``(None, the Graph error message)``."""
    parts = token.split(".")
    if len(parts) != 3:
        return None, "IDX14100: JWT is not well formed, there are no dots (.)."
    expected = hmac.new(_KEY, f"{parts[0]}.{parts[1]}".encode("ascii"), hashlib.sha256).digest()
    try:
        valid = hmac.compare_digest(unb64url(parts[2]), expected)
        claims = json.loads(unb64url(parts[1]))
    except (ValueError, UnicodeDecodeError):
        return None, "Access token validation failure. Invalid token."
    if not valid or not isinstance(claims, dict):
        return None, "Access token validation failure. Invalid signature."
    if claims.get("aud") not in GRAPH_AUDIENCES:
        return None, "Access token validation failure. Invalid audience."
    if int(claims.get("exp", 0)) <= time.time():
        return None, "Lifetime validation failed, the token is expired."
    return claims, ""


def assertion_subject(assertion: str) -> str | None:
    """``sub`` of a client assertion (certificate credential); its signature is not checked."""
    sub = (decode_unverified(assertion) or {}).get("sub")
    return sub if isinstance(sub, str) else None
