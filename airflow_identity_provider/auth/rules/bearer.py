"""Which ``Authorization: Bearer`` tokens on ``/api/v2`` are IdP access tokens to validate here, and which are
Airflow's own JWTs to leave to the core: decided from the unverified token, before any signature check.

This is only routing: an Airflow JWT is still verified by the core and an IdP token by ``admit_access_token``;
a forged token claiming to be either is refused by that check. It decides which refusal the caller reads.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection
from typing import Any


def unverified_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The JOSE header and claims of a compact JWS, without checking anything; None when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, claims = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2])
    except (ValueError, binascii.Error):  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return header, claims


def is_airflow_token(header: dict[str, Any], claims: dict[str, Any], *, airflow_issuers: Collection[str]) -> bool:
    """Whether the token is shaped like one Airflow's JWTGenerator signs.

    Airflow's JWTValidator expects ``iss`` in ``[api_auth] jwt_issuer`` when that is set; when it is not, the
    generator writes no ``iss`` at all, while every IdP access token names its issuer (and is refused without
    one). Airflow signs with HMAC by default; the providers here accept only asymmetric algorithms, so an
    HMAC token can never be an IdP token we would admit.
    """
    alg = header.get("alg")
    if isinstance(alg, str) and alg.upper().startswith("HS"):
        return True
    if airflow_issuers:
        return claims.get("iss") in airflow_issuers
    return "iss" not in claims
