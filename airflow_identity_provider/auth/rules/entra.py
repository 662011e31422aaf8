"""Microsoft Entra ID rules as pure functions: tenant and issuer checks, v2 tokens, the (tid, oid) identity,
group overage.

Kept apart from the ``EntraProvider`` adapter (``auth.idp.entra``) so the catalogue of Entra-shaped bad
tokens is tested without a network, and so settings and the CLI can use them without the adapter.
Entra issues ``tid`` and ``oid`` in lower case, so they are checked with :func:`is_canonical_guid`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from airflow_identity_provider.auth.rules.claims import ClaimError, Identity, extract_groups
from airflow_identity_provider.auth.rules.id_token import TokenRejected
from airflow_identity_provider.entra_ids import MULTI_TENANT, is_canonical_guid

__all__ = [
    "MULTI_TENANT",
    "TENANT_PLACEHOLDER",
    "check_entra_claims",
    "entra_identity",
    "group_overage",
    "is_canonical_guid",
    "issuer_template",
    "overage_message",
]

TENANT_PLACEHOLDER = "{tenantid}"


def issuer_template(login_base: str) -> str:
    """``https://login.microsoftonline.com/{tenantid}/v2.0`` for the cloud's login host."""
    return f"{login_base}/{TENANT_PLACEHOLDER}/v2.0"


def check_entra_claims(
    claims: Mapping[str, Any], *, login_base: str, tenant: str, allowed_tenants: Collection[str]
) -> str:
    """Entra rules on top of OIDC's; returns the issuer this token must carry (checked exactly later)."""
    if claims.get("ver") == "1.0" or str(claims.get("iss", "")).startswith("https://sts.windows.net/"):
        raise TokenRejected(
            "entra_v1_token",
            "The token is an Entra v1.0 token (issuer sts.windows.net) but sign-in uses the v2.0 endpoint. "
            "Sign-in must go through https://login.microsoftonline.com/<tenant>/v2.0; check the issuer setting.",
        )
    tid = claims.get("tid")
    if not is_canonical_guid(tid):
        raise TokenRejected("entra_missing_tid", "The token has no 'tid' (tenant id) GUID claim.")
    assert isinstance(tid, str)
    expected_issuer = issuer_template(login_base).replace(TENANT_PLACEHOLDER, tid)
    if claims.get("iss") != expected_issuer:
        raise TokenRejected(
            "entra_tid_iss_mismatch",
            f"The token's issuer {claims.get('iss')!r} does not belong to its tenant {tid} "
            f"(expected {expected_issuer!r}).",
        )
    if tenant.lower() in MULTI_TENANT:
        if tid not in allowed_tenants:
            raise TokenRejected(
                "entra_tenant_not_allowed",
                f"Users of tenant {tid} may not sign in. To admit them, add {tid} to "
                "[identity_auth_manager] allowed_tenants.",
            )
    elif is_canonical_guid(tenant) and tid != tenant.lower():
        raise TokenRejected(
            "entra_wrong_tenant",
            f"The token was issued by tenant {tid}, not by the configured tenant_id {tenant}.",
        )
    return expected_issuer


def group_overage(claims: Mapping[str, Any], groups_claim: str) -> bool:
    """True when Entra left the groups out (more than 200, or ``hasgroups`` in implicit flows)."""
    if groups_claim != "groups":
        return False
    claim_names = claims.get("_claim_names")
    sourced = isinstance(claim_names, Mapping) and "groups" in claim_names
    return sourced or claims.get("hasgroups") is True


def overage_message(oid: str) -> str:
    return (
        f"User {oid} is in more groups than Entra puts in a token (group overage), so their groups are unknown. "
        "Fix one of: (1) map Entra app roles instead (set groups_claim = roles and assign app roles to the "
        "groups), or (2) emit only groups assigned to the application (groupMembershipClaims = "
        "ApplicationGroup). Or set [identity_auth_manager] resolve_group_overage = True to look the groups "
        "up in Microsoft Graph."
    )


def entra_identity(claims: Mapping[str, Any], *, groups_claim: str) -> Identity:
    """The stable id is (tid, oid): ``sub`` is per application and names and emails change."""
    oid, tid = claims.get("oid"), claims.get("tid")
    if not is_canonical_guid(oid):
        raise ClaimError(
            "entra_missing_oid",
            "The ID token has no 'oid' claim; request the 'profile' scope so Entra includes it.",
        )
    assert isinstance(oid, str) and isinstance(tid, str)
    email = next((v for k in ("email", "upn", "preferred_username") if isinstance(v := claims.get(k), str) and v), "")
    name = next((v for k in ("name", "preferred_username", "upn") if isinstance(v := claims.get(k), str) and v), oid)
    # For human-in-the-loop assignees only the UPN: the tenant sets it, whereas Entra's email claim is not
    # verified (the "nOAuth" problem) and preferred_username is documented as mutable.
    upn = claims.get("upn")
    aliases = (upn,) if isinstance(upn, str) and "@" in upn else ()
    return Identity(
        user_id=f"{tid}:{oid}", name=name, email=email, groups=extract_groups(claims, groups_claim), aliases=aliases
    )
