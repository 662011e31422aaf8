"""Machine access without shared secrets: an IdP access token (service principal, managed identity, or a
CLI user's token for the Airflow API) is exchanged for an Airflow API token with the same role mapping.

The access token must be addressed to the Airflow API (``api_audiences``), come from the configured
issuer (for Entra: v1 or v2 issuer of an allowed tenant) and be signed with the provider's keys. Roles come
from the ``roles`` claim (app roles assigned to the principal) and the configured groups claim.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from airflow_identity_provider.auth.rules.claims import Identity, extract_groups
from airflow_identity_provider.auth.rules.id_token import TokenRejected, check_times

# RFC 9068 JWT access tokens carry this JOSE "typ" (media types compare case-insensitively, RFC 7515 4.1.9).
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})


def check_access_token_claims(
    claims: Mapping[str, Any],
    *,
    header: Mapping[str, Any],
    issuers: Collection[str],
    audiences: Collection[str],
    sign_in_client_id: str | None,
    clients: Collection[str] = (),
    now: float,
    leeway: int,
) -> None:
    """``header`` is the verified JWS protected header. ``sign_in_client_id`` is the client whose ID tokens
    look like access tokens for an audience equal to it; None where the provider tells them apart (Entra)."""
    # An ID token proves a sign-in to a client, not a grant to call the API; when the API and the sign-in
    # share an app registration its audience would match, so ID tokens are recognised and refused.
    id_token_claims = sorted(k for k in ("nonce", "at_hash", "c_hash", "auth_time") if k in claims)
    if id_token_claims:
        raise TokenRejected(
            "id_token_not_accepted",
            f"This is an ID token ({', '.join(id_token_claims)}), not an access token for the Airflow API. "
            "Request an access token for the API (e.g. scope api://<airflow-api>/.default).",
        )
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or issuer not in issuers:
        raise TokenRejected(
            "invalid_issuer",
            f"The access token's issuer is {issuer!r}; accepted: {', '.join(sorted(issuers))}.",
        )
    aud = claims.get("aud")
    token_audiences = (
        [aud] if isinstance(aud, str) else [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []
    )
    if not set(token_audiences) & set(audiences):
        raise TokenRejected(
            "invalid_aud",
            f"The access token is for {', '.join(map(str, token_audiences)) or 'no audience'}, not for the Airflow "
            f"API ({', '.join(audiences)}). Request it for the Airflow API's application ID URI "
            "(e.g. scope api://<airflow-api>/.default), or add its audience to [identity_auth_manager] api_audiences.",
        )
    if sign_in_client_id is not None and sign_in_client_id in token_audiences:
        check_not_an_id_token(header, claims, sign_in_client_id)
    if not isinstance(claims.get("sub"), str) or not claims.get("sub"):
        raise TokenRejected("missing_sub", "The access token has no 'sub' claim.")
    if clients:
        client = next((c for k in ("azp", "appid", "client_id") if isinstance(c := claims.get(k), str)), None)
        if client not in clients:
            raise TokenRejected(
                "client_not_allowed",
                f"The token was requested by client {client!r}, which is not in [identity_auth_manager] "
                "api_client_ids.",
            )
    check_times(claims, now=now, leeway=leeway)


def check_not_an_id_token(header: Mapping[str, Any], claims: Mapping[str, Any], client_id: str) -> None:
    """A token addressed to the sign-in client must prove it is an access token, not just lack ID-token claims.

    OIDC requires no nonce without one in the request, and no at_hash, c_hash or auth_time at the token
    endpoint or on refresh: such an ID token of any signed-in user would otherwise pass as an API token
    with that user's role. Only the typ of RFC 9068, or a requesting client other than the sign-in client
    (an ID token's azp is the sign-in client), tells the two apart.
    """
    typ = header.get("typ")
    if isinstance(typ, str) and typ.lower() in ACCESS_TOKEN_TYPES:
        return
    requester = next((c for k in ("azp", "client_id") if isinstance(c := claims.get(k), str) and c), None)
    if requester is not None and requester != client_id:
        return
    raise TokenRejected(
        "ambiguous_id_token",
        f"The token is addressed to the sign-in client {client_id!r} and may be an ID token: its JOSE header "
        f"typ is {typ!r}, not at+jwt, and it names no other requesting client (azp / client_id: "
        f"{requester!r}). An ID token proves a sign-in, not a grant to call the Airflow API. Fix one of: "
        f"(1) give the Airflow API its own audience at the identity provider (e.g. api://airflow), request "
        f"tokens for it, and remove {client_id!r} from [identity_auth_manager] api_audiences; or (2) have the "
        "identity provider issue RFC 9068 JWT access tokens (JOSE header typ: at+jwt).",
    )


def machine_identity(claims: Mapping[str, Any], *, groups_claim: str, entra: bool) -> Identity:
    """Entra principals are (tid, oid) like users; elsewhere the token's ``sub`` (the client for app tokens)."""
    if entra:
        oid, tid = claims.get("oid"), claims.get("tid")
        if not isinstance(oid, str) or not isinstance(tid, str):
            raise TokenRejected("entra_missing_oid", "The access token has no 'oid' and 'tid' claims.")
        # Entra access tokens name the client that requested them (azp in v2, appid in v1); ID tokens don't.
        if not isinstance(claims.get("azp") or claims.get("appid"), str):
            raise TokenRejected("entra_not_an_access_token", "The token names no client (azp / appid).")
        user_id = f"{tid}:{oid}"
    else:
        user_id = str(claims["sub"])
    name = next(
        (
            value
            for key in ("name", "preferred_username", "upn", "app_displayname", "azp", "appid")
            if isinstance(value := claims.get(key), str) and value
        ),
        user_id,
    )
    groups = dict.fromkeys((*extract_groups(claims, "roles"), *extract_groups(claims, groups_claim)))
    return Identity(user_id=user_id, name=name, email="", groups=tuple(groups))
