"""Validated ID-token claims -> who the user is and which groups they are in. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_identity_provider.errors import Refusal


class ClaimError(Refusal, ValueError):
    """A claim is missing or has a shape we refuse to guess about."""


@dataclass(frozen=True)
class Identity:
    user_id: str
    name: str
    email: str
    groups: tuple[str, ...]
    # Verified e-mail-shaped names (a verified e-mail, an Entra UPN) that HITL assignees may be written as.
    aliases: tuple[str, ...] = ()


def extract_groups(claims: Mapping[str, Any], claim: str) -> tuple[str, ...]:
    """The user's groups or app roles from ``claim``.

    A missing claim is "no groups". One string is one group: JumpCloud sends a string when the user has
    exactly one group and a list otherwise, and treating the string as a sequence would turn
    "admins" into the groups "a", "d", "m"... Anything else is refused rather than guessed at.
    """
    value = claims.get(claim)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(dict.fromkeys(value))
    raise ClaimError(
        "malformed_groups_claim",
        f"The {claim!r} claim is a {type(value).__name__}, not a string or a list of strings; "
        "check the group claim configuration of the app at the identity provider.",
    )


def identity_from_claims(claims: Mapping[str, Any], *, groups_claim: str) -> Identity:
    """The stable id is ``sub``: names and emails change, and Airflow stores the id in run records."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise ClaimError("missing_sub", "The ID token has no 'sub' claim, so the user cannot be identified.")
    email = _first_str(claims, "email", "upn")
    name = _first_str(claims, "name", "preferred_username", "email", "upn") or subject
    # Human-in-the-loop assignees may be written as an e-mail: only one the IdP says it verified counts,
    # since with many OIDC providers users choose (or recycle) their e-mail and preferred_username.
    verified = claims.get("email_verified") is True or claims.get("email_verified") == "true"
    aliases = (email,) if verified and "@" in email else ()
    return Identity(
        user_id=subject, name=name, email=email, groups=extract_groups(claims, groups_claim), aliases=aliases
    )


def _first_str(claims: Mapping[str, Any], *keys: str) -> str:
    for key in keys:
        value = claims.get(key)
        if isinstance(value, str) and value:
            return value
    return ""
