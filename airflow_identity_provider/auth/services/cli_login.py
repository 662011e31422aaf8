"""The terminal sign-in's server side: the one-time code after the browser sign-in, the code's exchange for an
Airflow token, and the answer to ``airflowctl auth login --username/--password`` (no passwords here).

The flow and why the code is shaped as it is: ``auth.rules.cli_code``; the CLI: ``airflow_identity_provider.sso_login``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from airflow.configuration import conf

from airflow_identity_provider import version_compat
from airflow_identity_provider.auth.rules import audit
from airflow_identity_provider.auth.rules.cli_code import CliLoginError, issue_code, redeem_code
from airflow_identity_provider.auth.services.results import Refused
from airflow_identity_provider.auth.services.token import TokenIssued
from airflow_identity_provider.auth.services.urls import base_url

if TYPE_CHECKING:
    from airflow_identity_provider.auth.rules.settings import AuthSettings
    from airflow_identity_provider.auth.services.context import AuthContext
    from airflow_identity_provider.auth.services.login import SignedIn

log = logging.getLogger(__name__)

#: What a person runs instead of a password login (the console script; ``airflow identity-auth-manager login``
#: does the same where Airflow's configuration is at hand).
SSO_LOGIN_COMMAND = "airflow-sso-login"


def code_redirect(ctx: AuthContext, signed_in: SignedIn) -> str:
    """Where the browser goes after a terminal sign-in: the CLI's loopback listener, with a one-time code."""
    cli = signed_in.cli
    assert cli is not None, "only for a sign-in started at /auth/cli-login"
    # The sign-in itself is audited by finish_login (event login, kind cli); the token when it is redeemed.
    return cli.redirect_with(issue_code(signed_in.user, cli, ctx.state_secret))


def exchange_cli_code(ctx: AuthContext, code: str | None, verifier: str | None) -> TokenIssued | Refused:
    """``POST /auth/token/cli-exchange``: code + PKCE verifier -> an Airflow token for the CLI."""
    try:
        redeemed = redeem_code(code, verifier, ctx.state_secret)
    except CliLoginError as err:
        audit.emit("token", outcome="failure", reason=err.reason, kind="cli", detail=err.message)
        return Refused.of(err, 400)  # RFC 6749 invalid_grant
    user = redeemed.user
    if user.idp not in ctx.providers:  # the provider was removed from the settings since the sign-in
        return Refused("unknown_provider", f"No identity provider is named {user.idp!r} any more.", 400)
    try:
        first = version_compat.claim_once(redeemed.jti, redeemed.expires_at)
    except Exception:  # fail closed: a code whose use cannot be recorded is not redeemed
        log.warning("Could not record the use of a terminal sign-in code", exc_info=True)
        return Refused(
            "cli_code_unrecorded", "Airflow could not record the sign-in code's use (metadata database). Retry.", 503
        )
    if first is None:
        version_compat.warn_missing("single_use_cli_code")
    elif not first:
        audit.emit("token", outcome="failure", reason="cli_code_reused", kind="cli", **audit.user_fields(user))
        return Refused(
            "cli_code_reused", "This sign-in code was already redeemed. Run the terminal sign-in again.", 400
        )
    lifetime = conf.getint("api_auth", "jwt_cli_expiration_time")
    audit.emit(
        "token",
        outcome="success",
        kind="cli",
        lifetime=lifetime,
        **audit.user_fields(user),
        roles=list(user.roles),
        groups=list(user.groups),
        teams=list(user.teams),
    )
    return TokenIssued(ctx.generate_jwt(user, expiration_time_in_seconds=lifetime))


def password_login_refused(ctx: AuthContext) -> Refused:
    """What ``airflowctl auth login --username/--password`` (POST /auth/token/cli with a username and a password)
    gets: this Airflow has no passwords, and the way that works instead. No square brackets: airflowctl prints
    the detail through rich, which would read them as markup."""
    names = " or ".join(dict.fromkeys(_label(p.settings) for p in ctx.providers.values()))
    url = base_url().rstrip("/")
    audit.emit("token", outcome="failure", reason="password_login_not_supported", kind="cli")
    return Refused(
        "password_login_not_supported",
        f"This Airflow signs in through {names} (single sign-on) and has no passwords. Run "
        f"`{SSO_LOGIN_COMMAND} --api-url {url}` (or `airflow identity-auth-manager login` where this Airflow's "
        "configuration is installed): it signs you in with your browser and stores the token for airflowctl.",
        400,
    )


_IDP_NAMES = {"entra": "Microsoft Entra ID", "jumpcloud": "JumpCloud"}


def _label(settings: AuthSettings) -> str:
    """The provider as people know it: its display_name when one is set, else what it is."""
    if settings.display_name != settings.name:
        return settings.display_name
    return _IDP_NAMES.get(settings.idp) or f"the identity provider at {urlsplit(settings.issuer).netloc}"
