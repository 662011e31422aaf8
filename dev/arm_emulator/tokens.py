"""Emulator-issued access tokens and deterministic principal ids.

Tokens are HS256 JWTs signed with a per-process random key. Nobody is expected to verify them; the
emulator itself only decodes them (without verification) to record *which* identity made a call.

Principal object ids are deterministic so tests can predict them:

* client id ``C`` (service principal, workload identity, user-assigned MI by client id):
  ``oid = uuid5(NS, "client:" + C.lower())``
* managed identity by object id ``O``: ``oid = O``
* managed identity by resource id ``R``: ``oid = uuid5(NS, "resource:" + R.lower())``
* system-assigned managed identity: a resource identity for the (fake) host resource, see
  :data:`SYSTEM_ASSIGNED_RESOURCE_IDS`.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

from dev.emulator_kit.jwt import hs256

NAMESPACE = uuid.UUID("6f0c7c1e-5d0b-4d0e-9a51-0a7d5f1e2b3c")
DEFAULT_TENANT_ID = "11111111-1111-1111-1111-111111111111"
TOKEN_LIFETIME = 3599
# Host resources of the system-assigned identities (one per managed-identity platform).
SYSTEM_ASSIGNED_RESOURCE_IDS = {
    "app_service": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/arm-emulator"
    "/providers/Microsoft.Web/sites/arm-emulator",
    "imds": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/arm-emulator"
    "/providers/Microsoft.Compute/virtualMachines/arm-emulator",
}
_USER_ASSIGNED_PREFIX = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/arm-emulator"
    "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/"
)

_KEY = secrets.token_bytes(32)


def _uuid5(value: str) -> str:
    return str(uuid.uuid5(NAMESPACE, value))


def principal_oid(*, client_id: str | None = None, object_id: str | None = None, resource_id: str | None = None) -> str:
    """Object id the emulator assigns to an identity (exactly one selector must be given)."""
    given = [v for v in (client_id, object_id, resource_id) if v]
    if len(given) != 1:
        raise ValueError("give exactly one of client_id, object_id, resource_id")
    if client_id:
        return _uuid5("client:" + client_id.lower())
    if object_id:
        return object_id
    assert resource_id is not None
    return _uuid5("resource:" + resource_id.lower())


def managed_identity_claims(
    platform: str,
    *,
    client_id: str | None,
    object_id: str | None,
    resource_id: str | None,
) -> dict[str, Any]:
    """Identity claims (oid, appid, xms_mirid) for a managed identity selected by at most one id."""
    if client_id:
        return {
            "oid": principal_oid(client_id=client_id),
            "appid": client_id,
            "xms_mirid": _USER_ASSIGNED_PREFIX + "mi-" + client_id,
        }
    if object_id:
        return {
            "oid": object_id,
            "appid": _uuid5("app:" + object_id.lower()),
            "xms_mirid": _USER_ASSIGNED_PREFIX + "mi-" + object_id,
        }
    mirid = resource_id or SYSTEM_ASSIGNED_RESOURCE_IDS[platform]
    return {
        "oid": principal_oid(resource_id=mirid),
        "appid": _uuid5("app:" + mirid.lower()),
        "xms_mirid": mirid,
    }


def issue(
    *,
    audience: str,
    tenant_id: str,
    oid: str,
    appid: str,
    flow: str,
    extra: dict[str, Any] | None = None,
    lifetime: int = TOKEN_LIFETIME,
) -> tuple[str, dict[str, Any]]:
    """Return ``(jwt, claims)`` for an app-only access token."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "tid": tenant_id,
        "oid": oid,
        "sub": oid,
        "appid": appid,
        "azp": appid,
        "idtyp": "app",
        "ver": "1.0",
        "uti": secrets.token_urlsafe(16),
        "emu_flow": flow,  # emulator-only: client_secret | client_assertion | app_service | imds
    }
    if extra:
        claims.update(extra)
    return hs256(_KEY, {"alg": "HS256", "typ": "JWT", "kid": "arm-emulator"}, claims, compact=True), claims


def audience_from_scope(scope: str) -> str:
    return scope[: -len("/.default")] if scope.endswith("/.default") else scope
