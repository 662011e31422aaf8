"""``/auth/token``: an IdP access token (service principal, managed identity, CLI user) -> an Airflow API token."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jwt as pyjwt
from airflow.configuration import conf
from starlette.concurrency import run_in_threadpool

from airflow_identity_provider.auth.idp.errors import IdpUnavailable
from airflow_identity_provider.auth.rules import audit
from airflow_identity_provider.auth.rules.machine import machine_identity
from airflow_identity_provider.auth.rules.user import IdentityUser
from airflow_identity_provider.auth.services.results import Refused, user_id_for
from airflow_identity_provider.errors import Refusal

if TYPE_CHECKING:
    from airflow_identity_provider.auth.idp.oidc import OidcProvider
    from airflow_identity_provider.auth.services.context import AuthContext


@dataclass(frozen=True)
class TokenIssued:
    access_token: str


async def exchange_token(ctx: AuthContext, assertion: str, *, cli: bool) -> TokenIssued | Refused:
    """Validate ``assertion`` with the provider(s) that may have issued it and mint an Airflow token."""
    if not assertion:
        return Refused(
            "missing_assertion",
            "Send the IdP access token as 'Authorization: Bearer <token>' or as the 'assertion' of a "
            "urn:ietf:params:oauth:grant-type:jwt-bearer request.",
            400,
        )
    candidates = providers_for(ctx.providers, assertion)
    if not any(p.settings.api_audiences for p in candidates):
        return Refused(
            "machine_access_disabled",
            "Machine access is off: set [identity_auth_manager] api_audiences to the Airflow API's audience.",
            403,
        )
    refusal: Refusal | None = None
    for provider in (p for p in candidates if p.settings.api_audiences):
        try:
            claims = await run_in_threadpool(provider.validate_access_token, assertion)
            identity = machine_identity(
                claims, groups_claim=provider.settings.groups_claim, entra=provider.settings.idp == "entra"
            )
            break
        except IdpUnavailable as err:
            audit.emit("idp_unavailable", level=logging.ERROR, url=err.url, detail=err.detail)
            return Refused("idp_unavailable", f"The identity provider at {err.url} is unreachable.", 503, err)
        except Refusal as err:  # TokenRejected or ClaimError: try the next candidate
            refusal = err
    else:
        assert refusal is not None
        audit.emit("token_refused", level=logging.WARNING, reason=refusal.reason, detail=refusal.message)
        return Refused.of(refusal, 401)
    # No default_role here: with Entra, any principal of the tenant may get a token for an API whose
    # "assignment required" is off; only an explicit role mapping may grant access.
    assignment = provider.settings.access.assign(
        identity.groups, access_control_names=ctx.access_control_names(), use_default=False
    )
    if assignment is None:
        audit.emit("token_refused", level=logging.WARNING, reason="no_mapped_role", principal=identity.user_id)
        return Refused(
            "no_mapped_role",
            f"Principal {identity.user_id} has no role mapped to an Airflow role (roles: "
            f"{', '.join(identity.groups) or 'none'}). Assign it an app role listed in role_mapping or dag_grants.",
            403,
        )
    lifetime = conf.getint("api_auth", "jwt_cli_expiration_time" if cli else "jwt_expiration_time")
    # Never outlive the IdP token: a disabled principal loses access when its last IdP token expires.
    lifetime = max(1, min(lifetime, int(float(claims["exp"]) - time.time())))
    user = IdentityUser(
        user_id_for(ctx.providers, provider.settings.name, identity),
        identity.name,
        "",
        assignment.roles,
        auth_time=int(time.time()),
        idp=provider.settings.name,
        groups=assignment.groups,
        teams=assignment.teams,
    )
    audit.emit("token_issued", principal=user.user_id, name=user.name, roles=list(user.roles), cli=cli)
    return TokenIssued(ctx.generate_jwt(user, expiration_time_in_seconds=lifetime))


def providers_for(providers: dict[str, OidcProvider], token: str) -> list[OidcProvider]:
    """The providers that may have issued the (not yet verified) token, by its issuer; each is then tried."""
    if len(providers) == 1:
        return list(providers.values())
    try:
        issuer = str(pyjwt.decode(token, options={"verify_signature": False}).get("iss", ""))
    except pyjwt.PyJWTError:
        issuer = ""
    matching = [
        provider
        for provider in providers.values()
        if issuer.startswith(provider.login_origin)
        or (provider.settings.idp == "entra" and issuer.startswith("https://sts.windows.net/"))
    ]
    return matching or list(providers.values())
