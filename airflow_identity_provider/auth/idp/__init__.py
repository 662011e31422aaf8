"""Identity-provider adapters: a generic OpenID relying party, and Entra (issuers, Microsoft Graph) on top.

JumpCloud needs no class of its own: its quirks (issuer with a trailing slash, ``memberOf`` as a string
or a list, groups possibly only in userinfo) are handled by the settings defaults and the generic code.
:func:`make_provider` is the one factory: the api-server and ``check-config`` both build providers with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_identity_provider.auth.idp.oidc import OidcProvider
    from airflow_identity_provider.auth.rules.settings import AuthSettings


def make_provider(settings: AuthSettings) -> OidcProvider:
    if settings.idp == "entra":
        from airflow_identity_provider.auth.idp.entra import EntraProvider

        return EntraProvider(settings)
    from airflow_identity_provider.auth.idp.oidc import OidcProvider

    return OidcProvider(settings)
