"""The browser sign-in: start (authorize URL and login-state cookie) and finish (callback -> signed-in user).

Each step returns a result or a :class:`~.results.Refused`; the routes render them.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_identity_provider.auth.idp.errors import IdpError
from airflow_identity_provider.auth.rules import audit
from airflow_identity_provider.auth.rules.claims import ClaimError, Identity
from airflow_identity_provider.auth.rules.cli_code import CliRequest
from airflow_identity_provider.auth.rules.id_token import TokenRejected
from airflow_identity_provider.auth.rules.state import LoginState, decode_state, encode_state
from airflow_identity_provider.auth.rules.user import IdentityUser
from airflow_identity_provider.auth.services.results import Refused, user_id_for
from airflow_identity_provider.auth.services.urls import callback_url
from airflow_identity_provider.errors import Refusal

if TYPE_CHECKING:
    from airflow_identity_provider.auth.idp.oidc import OidcProvider
    from airflow_identity_provider.auth.services.context import AuthContext

# A refusal while talking to the IdP about the code -> the HTTP status of the page (first match wins).
_SIGN_IN_STATUS: tuple[tuple[type[Refusal], int], ...] = ((IdpError, 400), (TokenRejected, 401), (ClaimError, 403))


@dataclass(frozen=True)
class LoginStarted:
    authorize_url: str
    state_cookie: str


@dataclass(frozen=True)
class CallbackAnswer:
    """The query parameters the IdP sent back to the redirect URI (the routes take it as a FastAPI dependency)."""

    code: str | None = None
    state: str | None = None
    iss: str | None = None
    error: str | None = None
    error_description: str | None = None


@dataclass(frozen=True)
class SignedIn:
    user: IdentityUser
    id_token: str
    next_url: str  # as the login started with it; the route checks it is still safe
    cli: CliRequest | None = None  # a terminal sign-in: the code goes to its loopback listener, no cookie


@dataclass(frozen=True)
class NoRole:
    """Signed in at the IdP, but no group maps to an Airflow role."""

    identity: Identity
    groups_claim: str
    idp: str = ""  # the provider's name, for the audit event


def start_login(
    provider: OidcProvider, *, target: str, secret: str, cli: CliRequest | None = None, redirect_uri: str | None = None
) -> LoginStarted | Refused:
    """``redirect_uri``: another relying party's (the luigi gateway's); Airflow's from ``[api] base_url`` if None."""
    name = provider.settings.name
    login_state = LoginState.new(next_url=target, idp=name, cli=cli)
    try:
        url = provider.authorization_url(redirect_uri=redirect_uri or callback_url(name), login=login_state)
    except Refusal as err:  # the IdP is unreachable (503) or its discovery document is not ours (502)
        return Refused.of(err, 502)
    return LoginStarted(url, encode_state(login_state, secret))


def finish_login(
    ctx: AuthContext, name: str, state_cookie: str | None, answer: CallbackAnswer, *, redirect_uri: str | None = None
) -> SignedIn | NoRole | Refused:
    try:
        login_state = decode_state(state_cookie, ctx.state_secret)
    except Refusal as err:
        return Refused.of(err, 400)
    if not answer.state or not hmac.compare_digest(answer.state.encode(), login_state.state.encode()):
        return Refused(
            "state_mismatch",
            "The sign-in response does not belong to the sign-in this browser started "
            "(state mismatch). Start again from one tab.",
            400,
        )
    provider = ctx.providers.get(name)
    if provider is None or login_state.idp != name:
        # The answer arrived at another provider's redirect URI than the one the sign-in went to.
        return Refused(
            "idp_mismatch",
            f"This sign-in was started with provider {login_state.idp!r} but answered at the redirect URI of {name!r}.",
            400,
        )
    settings = provider.settings
    # RFC 9207: when the IdP says who answered, it must be the one we asked (mix-up defence).
    try:
        iss_ok = answer.iss is None or provider.response_issuer_ok(answer.iss)
    except Refusal as err:
        return Refused.of(err, 502)
    if not iss_ok:
        return Refused(
            "issuer_mismatch", f"The sign-in response comes from issuer {answer.iss!r}, not {settings.issuer!r}.", 400
        )
    if answer.error:
        return Refused(
            f"idp_error_{answer.error}",
            f"The identity provider did not sign you in: {answer.error}"
            + (f" ({answer.error_description})" if answer.error_description else "."),
            403,
        )
    if not answer.code:
        return Refused("missing_code", "The sign-in response carries no authorization code.", 400)

    try:
        identity, id_token = provider.sign_in(
            code=answer.code, redirect_uri=redirect_uri or callback_url(name), login=login_state
        )
    except Refusal as err:
        return Refused.of(err, next((code for kind, code in _SIGN_IN_STATUS if isinstance(err, kind)), 400))

    assignment = settings.access.assign(identity.groups, access_control_names=ctx.access_control_names())
    if assignment is None:
        return NoRole(identity, settings.groups_claim, idp=name)
    user = IdentityUser(
        user_id=user_id_for(ctx.providers, name, identity),
        name=identity.name,
        email=identity.email,
        roles=assignment.roles,
        auth_time=int(time.time()),
        idp=name,
        groups=assignment.groups,
        teams=assignment.teams,
        aliases=identity.aliases,
    )
    audit.emit(
        "login",
        outcome="success",
        kind="cli" if login_state.cli is not None else "browser",
        **audit.user_fields(user),
        **audit.held_fields(settings, assignment),
    )
    return SignedIn(user, id_token, login_state.next_url, login_state.cli)
