"""Who an ID token says signed in, computed the same way by the sign-in and by ``explain``.

Entra's stable id is ``tid:oid`` (``sub`` is per application); every other provider's is ``sub``. The
adapters in ``auth.idp`` add what needs the network (userinfo groups, Entra group overage via Graph).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_identity_provider.auth.rules.claims import ClaimError, Identity, identity_from_claims
from airflow_identity_provider.auth.rules.entra import entra_identity, group_overage, overage_message
from airflow_identity_provider.auth.rules.settings import AuthSettings


def claims_identity(claims: Mapping[str, Any], settings: AuthSettings) -> Identity:
    """The identity and groups the validated ID-token ``claims`` carry, for the provider of ``settings``."""
    if settings.idp == "entra":
        return entra_identity(claims, groups_claim=settings.groups_claim)
    return identity_from_claims(claims, groups_claim=settings.groups_claim)


def groups_need_graph(claims: Mapping[str, Any], settings: AuthSettings, identity: Identity) -> bool:
    """Entra left the groups out (group overage): True when they are to be looked up in Microsoft Graph,
    ``ClaimError`` when that is off; False when the token's groups are complete."""
    if settings.idp != "entra" or not group_overage(claims, settings.groups_claim):
        return False
    if not settings.resolve_group_overage:
        raise ClaimError("entra_group_overage", overage_message(identity.user_id))
    return True
