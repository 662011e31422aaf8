"""IdP access tokens for the Airflow API (service principal, managed identity, CLI user): one validation,
``admit_access_token``, shared by ``POST /auth/token`` (which then mints an Airflow API token) and by the
``Authorization: Bearer`` middleware of ``/api/v2`` (``auth.routes.bearer``, Airflow 3.3+), so both accept and
refuse exactly the same tokens and build exactly the same user."""

from __future__ import annotations

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


@dataclass(frozen=True)
class AdmittedToken:
    """An IdP access token that passed every check, the user it stands for, and when the IdP token expires."""

    user: IdentityUser
    expires_at: float


async def admit_access_token(ctx: AuthContext, token: str) -> AdmittedToken | Refused:
    """Validate ``token`` with the provider(s) that may have issued it (signature with cached keys, issuer and
    allowed tenants, ``api_audiences``, ``api_client_ids``, ID tokens refused, times) and map its roles."""
    if not token:
        return Refused(
            "missing_assertion",
            "Send the IdP access token as 'Authorization: Bearer <token>' or as the 'assertion' of a "
            "urn:ietf:params:oauth:grant-type:jwt-bearer request.",
            400,
        )
    candidates = providers_for(ctx.providers, token)
    if not any(p.settings.api_audiences for p in candidates):
        return Refused(
            "machine_access_disabled",
            "Machine access is off: set [identity_auth_manager] api_audiences to the Airflow API's audience.",
            403,
        )
    refusal: Refusal | None = None
    for provider in (p for p in candidates if p.settings.api_audiences):
        try:
            claims = await run_in_threadpool(provider.validate_access_token, token)
            identity = machine_identity(
                claims, groups_claim=provider.settings.groups_claim, entra=provider.settings.idp == "entra"
            )
            break
        except IdpUnavailable as err:
            audit.idp_unavailable("token", url=err.url, detail=err.detail)
            return Refused("idp_unavailable", f"The identity provider at {err.url} is unreachable.", 503, err)
        except Refusal as err:  # TokenRejected or ClaimError: try the next candidate
            refusal = err
    else:
        assert refusal is not None
        audit.emit("token", outcome="failure", reason=refusal.reason, detail=refusal.message)
        return Refused.of(refusal, 401)
    # No default_role here: with Entra, any principal of the tenant may get a token for an API whose
    # "assignment required" is off; only an explicit role mapping may grant access.
    assignment = provider.settings.access.assign(
        identity.groups, access_control_names=ctx.access_control_names(), use_default=False
    )
    if assignment is None:
        audit.emit(
            "token",
            outcome="failure",
            reason="no_mapped_role",
            user_id=identity.user_id,
            user_name=identity.name,
            idp=provider.settings.name,
            groups_claim=provider.settings.groups_claim,
            groups=list(identity.groups),
        )
        return Refused(
            "no_mapped_role",
            f"Principal {identity.user_id} has no role mapped to an Airflow role (roles: "
            f"{', '.join(identity.groups) or 'none'}). Assign it an app role listed in role_mapping or dag_grants.",
            403,
        )
    # When the principal last proved itself at the IdP is when the IdP issued this token (iat, checked above),
    # not when it reaches us: re-presenting an old token (again at /auth/token, or after the Bearer cache
    # expired) must not look like a fresh sign-in to the directory check or to api_token_max_age.
    now = int(time.time())
    user = IdentityUser(
        user_id_for(ctx.providers, provider.settings.name, identity),
        identity.name,
        "",
        assignment.roles,
        auth_time=min(int(float(claims["iat"])), now),
        idp=provider.settings.name,
        groups=assignment.groups,
        teams=assignment.teams,
    )
    return AdmittedToken(user, float(claims["exp"]))


async def exchange_token(ctx: AuthContext, assertion: str, *, cli: bool) -> TokenIssued | Refused:
    """``POST /auth/token``: an admitted IdP access token -> an Airflow API token for the same user."""
    admitted = await admit_access_token(ctx, assertion)
    if isinstance(admitted, Refused):
        return admitted
    try:
        # The directory's word before minting (a disabled service principal with a still-valid IdP token).
        user = ctx.check_user(admitted.user)
    except Refusal as err:
        kind = "cli" if cli else "machine"
        audit.emit("token", outcome="failure", reason=err.reason, kind=kind, **audit.user_fields(admitted.user))
        return Refused.of(err, 401)
    lifetime = conf.getint("api_auth", "jwt_cli_expiration_time" if cli else "jwt_expiration_time")
    # Never outlive the IdP token: a disabled principal loses access when its last IdP token expires.
    lifetime = max(1, min(lifetime, int(admitted.expires_at - time.time())))
    audit.emit(
        "token",
        outcome="success",
        kind="cli" if cli else "machine",
        lifetime=lifetime,
        **audit.user_fields(user),
        **audit.held_fields(ctx.providers[user.idp].settings, user),
    )
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
