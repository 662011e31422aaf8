"""The FastAPI sub-app Airflow mounts at ``/auth``: the browser sign-in round trip and sign-out.

With one provider, ``/auth/login`` goes straight to it and its redirect URI is ``/auth/callback``. With
several (``providers = staff,contractors``), ``/auth/login`` shows a chooser and each provider has its own
``/auth/callback/<name>``; the login state is bound to the provider that started it (mix-up defence).

Every failure ends on a page that says what happened and what to change, with a link to start again
(never an automatic redirect, which is how auth managers end up in redirect loops).
"""

from __future__ import annotations

import hmac
import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import jwt as pyjwt
from airflow.api_fastapi.app import AUTH_MANAGER_FASTAPI_APP_PREFIX, get_cookie_path
from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.configuration import conf
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from airflow_identity_provider.auth import audit
from airflow_identity_provider.auth.claims import ClaimError, Identity, map_role
from airflow_identity_provider.auth.idp.id_token import TokenRejected
from airflow_identity_provider.auth.idp.oidc import IdpError, IdpUnavailable
from airflow_identity_provider.auth.machine import machine_identity
from airflow_identity_provider.auth.pages import chooser_page, page
from airflow_identity_provider.auth.revocation import clear_airflow_cookie, revoke_request_tokens
from airflow_identity_provider.auth.settings import DEFAULT_NAME
from airflow_identity_provider.auth.state import (
    COOKIE_NAME as LOGIN_COOKIE,
)
from airflow_identity_provider.auth.state import (
    MAX_AGE_SECONDS,
    LoginState,
    StateError,
    decode_state,
    encode_state,
)
from airflow_identity_provider.auth.user import IdentityUser

if TYPE_CHECKING:
    from airflow_identity_provider.auth.idp.oidc import OidcProvider
    from airflow_identity_provider.auth.manager import IdentityAuthManager

log = logging.getLogger(__name__)
MAX_GROUPS_SHOWN = 10
# The ID token is kept (httponly, only sent to /auth) for RP-initiated logout's id_token_hint; a token too
# large for a cookie is skipped and logout falls back to client_id.
ID_TOKEN_COOKIE = "_identity_id_token"
MAX_ID_TOKEN_COOKIE = 3000


def base_url() -> str:
    return (conf.get("api", "base_url", fallback="") or "").rstrip("/") + "/"


def callback_url(name: str = DEFAULT_NAME) -> str:
    # From [api] base_url, never from the Host header: the IdP would otherwise send codes wherever an
    # attacker-chosen Host points.
    return base_url() + ("auth/callback" if name == DEFAULT_NAME else f"auth/callback/{name}")


def logged_out_url() -> str:
    return base_url() + "auth/logged-out"


def _secure(request: Request) -> bool:
    # Also from base_url: behind a TLS-terminating proxy without --proxy-headers the request looks like http.
    return (
        request.url.scheme == "https"
        or base_url().startswith("https://")
        or bool(conf.get("api", "ssl_cert", fallback=""))
    )


def _is_safe_next(url: str, request: Request) -> bool:
    from airflow.api_fastapi.core_api.security import is_safe_url

    return is_safe_url(url, request=request)


def _start_again() -> dict[str, str]:
    return {"Start signing in again": base_url()}


def create_auth_app(manager: IdentityAuthManager) -> FastAPI:
    app = FastAPI(
        title="Identity auth manager",
        description="Sign-in through the configured OpenID provider (Entra ID, JumpCloud or generic OIDC).",
        docs_url=None,
        redoc_url=None,
    )

    @app.get("/login", response_model=None)
    def login(request: Request, next: str | None = None) -> Response:
        target = next or base_url()
        if not _is_safe_next(target, request):
            return _unsafe_next(target)
        providers = manager.providers
        if len(providers) > 1:
            query = urlencode({"next": target})
            choices = {
                p.settings.display_name: f"{AUTH_MANAGER_FASTAPI_APP_PREFIX}/login/{n}?{query}"
                for n, p in providers.items()
            }
            return chooser_page(choices)
        return _start_login(manager.provider, request, target)

    @app.get("/login/{name}", response_model=None)
    def login_with(name: str, request: Request, next: str | None = None) -> Response:
        target = next or base_url()
        if not _is_safe_next(target, request):
            return _unsafe_next(target)
        provider = manager.providers.get(name)
        if provider is None:
            return _refused("unknown_provider", f"No identity provider is named {name!r}.", status_code=404)
        return _start_login(provider, request, target)

    def _start_login(provider: OidcProvider, request: Request, target: str) -> Response:
        name = provider.settings.name
        login_state = LoginState.new(next_url=target, idp=name)
        try:
            url = provider.authorization_url(redirect_uri=callback_url(name), login=login_state)
        except IdpUnavailable as err:
            return _idp_unavailable(err)
        except TokenRejected as err:
            return _refused(err.reason, err.message, status_code=502)
        response = RedirectResponse(url, status_code=302)
        response.set_cookie(
            LOGIN_COOKIE,
            encode_state(login_state, manager.state_secret),
            max_age=MAX_AGE_SECONDS,
            path=AUTH_MANAGER_FASTAPI_APP_PREFIX,
            httponly=True,
            secure=_secure(request),
            samesite="lax",
        )
        return response

    @app.get("/callback", response_model=None)
    def callback(
        request: Request,
        code: str | None = None,
        state: str | None = None,
        iss: str | None = None,
        error: str | None = None,
        error_description: str | None = None,
    ) -> Response:
        return _finish_login(request, DEFAULT_NAME, code, state, iss, error, error_description)

    @app.get("/callback/{name}", response_model=None)
    def callback_with(
        name: str,
        request: Request,
        code: str | None = None,
        state: str | None = None,
        iss: str | None = None,
        error: str | None = None,
        error_description: str | None = None,
    ) -> Response:
        return _finish_login(request, name, code, state, iss, error, error_description)

    def _finish_login(
        request: Request,
        name: str,
        code: str | None,
        state: str | None,
        iss: str | None,
        error: str | None,
        error_description: str | None,
    ) -> Response:
        try:
            login_state = decode_state(request.cookies.get(LOGIN_COOKIE), manager.state_secret)
        except StateError as err:
            return _refused(err.reason, str(err), status_code=400)
        if not state or not hmac.compare_digest(state.encode(), login_state.state.encode()):
            return _refused(
                "state_mismatch",
                "The sign-in response does not belong to the sign-in this browser started "
                "(state mismatch). Start again from one tab.",
                status_code=400,
            )
        provider = manager.providers.get(name)
        if provider is None or login_state.idp != name:
            # The answer arrived at another provider's redirect URI than the one the sign-in went to.
            return _refused(
                "idp_mismatch",
                f"This sign-in was started with provider {login_state.idp!r} but answered at the redirect URI "
                f"of {name!r}.",
                status_code=400,
            )
        settings = provider.settings
        # RFC 9207: when the IdP says who answered, it must be the one we asked (mix-up defence).
        try:
            iss_ok = iss is None or provider.response_issuer_ok(iss)
        except IdpUnavailable as err:
            return _idp_unavailable(err)
        except TokenRejected as err:
            return _refused(err.reason, err.message, status_code=502)
        if not iss_ok:
            return _refused(
                "issuer_mismatch",
                f"The sign-in response comes from issuer {iss!r}, not {settings.issuer!r}.",
                status_code=400,
            )
        if error:
            return _refused(
                f"idp_error_{error}",
                f"The identity provider did not sign you in: {error}"
                + (f" ({error_description})" if error_description else "."),
                status_code=403,
            )
        if not code:
            return _refused("missing_code", "The sign-in response carries no authorization code.", status_code=400)

        try:
            identity, id_token = provider.sign_in(code=code, redirect_uri=callback_url(name), login=login_state)
        except IdpUnavailable as err:
            return _idp_unavailable(err)
        except IdpError as err:
            return _refused(
                f"token_endpoint_{err.error}",
                f"The identity provider refused the sign-in code: {err.error} {err.description}. "
                "Codes can be used once and expire within minutes; start again.",
                status_code=400,
            )
        except TokenRejected as err:
            return _refused(err.reason, err.message, status_code=401)
        except ClaimError as err:
            return _refused(err.reason, str(err), status_code=403)

        role = map_role(identity.groups, settings.role_mapping, settings.default_role)
        if role is None:
            return _no_role(identity, settings.groups_claim)

        user = IdentityUser(
            user_id=_user_id(manager, name, identity),
            name=identity.name,
            email=identity.email,
            role=role,
            auth_time=int(time.time()),
            idp=name,
        )
        audit.emit("login", user=user.user_id, name=user.name, role=role.display_name, idp=name)
        next_url = login_state.next_url if _is_safe_next(login_state.next_url, request) else base_url()
        response = RedirectResponse(next_url, status_code=303)
        secure = _secure(request)
        response.set_cookie(
            COOKIE_NAME_JWT_TOKEN,
            manager.generate_jwt(user),
            path=get_cookie_path(),
            httponly=True,
            secure=secure,
            samesite="lax",
        )
        response.delete_cookie(LOGIN_COOKIE, path=AUTH_MANAGER_FASTAPI_APP_PREFIX)
        if len(id_token) <= MAX_ID_TOKEN_COOKIE:
            response.set_cookie(
                ID_TOKEN_COOKIE,
                f"{name}.{id_token}",
                path=AUTH_MANAGER_FASTAPI_APP_PREFIX,
                httponly=True,
                secure=secure,
                samesite="lax",
            )
        else:  # never leave an earlier sign-in's token (maybe another user's) as the logout hint
            response.delete_cookie(ID_TOKEN_COOKIE, path=AUTH_MANAGER_FASTAPI_APP_PREFIX)
        return response

    @app.post("/token", response_model=None)
    async def token(request: Request) -> Response:
        return await _machine_token(request, cli=False)

    @app.post("/token/cli", response_model=None)
    async def token_cli(request: Request) -> Response:
        return await _machine_token(request, cli=True)

    async def _machine_token(request: Request, *, cli: bool) -> Response:
        """Exchange an IdP access token (Authorization: Bearer, or a jwt-bearer ``assertion``) for an Airflow token."""
        assertion = await _assertion(request)
        if not assertion:
            return _token_error(
                400,
                "missing_assertion",
                "Send the IdP access token as 'Authorization: Bearer <token>' or as the 'assertion' of a "
                "urn:ietf:params:oauth:grant-type:jwt-bearer request.",
            )
        candidates = _providers_for(manager.providers, assertion)
        if not any(p.settings.api_audiences for p in candidates):
            return _token_error(
                403,
                "machine_access_disabled",
                "Machine access is off: set [identity_auth_manager] api_audiences to the Airflow API's audience.",
            )
        refusal: TokenRejected | ClaimError | None = None
        for provider in (p for p in candidates if p.settings.api_audiences):
            try:
                claims = await run_in_threadpool(provider.validate_access_token, assertion)
                identity = machine_identity(
                    claims, groups_claim=provider.settings.groups_claim, entra=provider.settings.idp == "entra"
                )
                break
            except (TokenRejected, ClaimError) as err:
                refusal = err
            except IdpUnavailable as err:
                audit.emit("idp_unavailable", level=logging.ERROR, url=err.url, detail=err.detail)
                return _token_error(503, "idp_unavailable", f"The identity provider at {err.url} is unreachable.")
        else:
            assert refusal is not None
            message = refusal.message if isinstance(refusal, TokenRejected) else str(refusal)
            audit.emit("token_refused", level=logging.WARNING, reason=refusal.reason, detail=message)
            return _token_error(401, refusal.reason, message)
        # No default_role here: with Entra, any principal of the tenant may get a token for an API whose
        # "assignment required" is off; only an explicit role mapping may grant access.
        role = map_role(identity.groups, provider.settings.role_mapping, None)
        if role is None:
            audit.emit("token_refused", level=logging.WARNING, reason="no_mapped_role", principal=identity.user_id)
            return _token_error(
                403,
                "no_mapped_role",
                f"Principal {identity.user_id} has no role mapped to an Airflow role (roles: "
                f"{', '.join(identity.groups) or 'none'}). Assign it an app role listed in role_mapping.",
            )
        lifetime = conf.getint("api_auth", "jwt_cli_expiration_time" if cli else "jwt_expiration_time")
        # Never outlive the IdP token: a disabled principal loses access when its last IdP token expires.
        lifetime = max(1, min(lifetime, int(float(claims["exp"]) - time.time())))
        user = IdentityUser(
            _user_id(manager, provider.settings.name, identity),
            identity.name,
            "",
            role,
            auth_time=int(time.time()),
            idp=provider.settings.name,
        )
        audit.emit("token_issued", principal=user.user_id, name=user.name, role=role.display_name, cli=cli)
        return JSONResponse({"access_token": manager.generate_jwt(user, expiration_time_in_seconds=lifetime)}, 201)

    @app.get("/logout", response_model=None)
    def logout(request: Request) -> Response:
        """Revoke the Airflow token(s) sent and clear the cookie, then end the IdP session where supported."""
        revoked = revoke_request_tokens(manager, request)  # first: the IdP may be slow or down
        name, _, id_token = (request.cookies.get(ID_TOKEN_COOKIE) or "").partition(".")
        provider = manager.providers.get(name) or manager.provider
        end_session = _end_session_url(provider, id_token)
        response: Response = RedirectResponse(end_session, status_code=302) if end_session else _signed_out_page()
        secure = _secure(request)
        clear_airflow_cookie(response, secure=secure)
        response.delete_cookie(ID_TOKEN_COOKIE, path=AUTH_MANAGER_FASTAPI_APP_PREFIX, secure=secure, httponly=True)
        audit.emit("logout", idp=provider.settings.name, idp_session_ended=bool(end_session), revoked=revoked)
        return response

    @app.get("/logged-out", response_model=None)
    def logged_out() -> Response:
        return _signed_out_page()

    return app


def _user_id(manager: IdentityAuthManager, provider_name: str, identity: Identity) -> str:
    """With several providers, ids are prefixed by the provider: the same ``sub`` in two directories is two
    people (Airflow compares ids for HITL assignees and records them on runs)."""
    return identity.user_id if len(manager.providers) == 1 else f"{provider_name}/{identity.user_id}"


async def _assertion(request: Request) -> str:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    if "json" in request.headers.get("content-type", ""):
        try:
            body = await request.json()
        except ValueError:
            return ""
        value = body.get("assertion") if isinstance(body, dict) else None
    else:
        value = (await request.form()).get("assertion")
    return value.strip() if isinstance(value, str) else ""


def _providers_for(providers: dict[str, OidcProvider], token: str) -> list[OidcProvider]:
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


def _token_error(status_code: int, reason: str, message: str) -> Response:
    return JSONResponse({"detail": message, "reason": reason}, status_code=status_code)


def _end_session_url(provider: OidcProvider, id_token: str) -> str | None:
    try:
        endpoint = provider.metadata().end_session_endpoint
    except (IdpUnavailable, TokenRejected):
        return None  # signing out of Airflow must not depend on the IdP being up
    if not endpoint:
        return None
    params = {"post_logout_redirect_uri": logged_out_url(), "client_id": provider.settings.client_id}
    if id_token:
        params["id_token_hint"] = id_token
    separator = "&" if "?" in endpoint else "?"
    return f"{endpoint}{separator}{urlencode(params)}"


def _signed_out_page() -> Response:
    return page("Signed out", "You are signed out of Airflow.", status_code=200, links={"Sign in again": base_url()})


def _no_role(identity: Identity, groups_claim: str) -> Response:
    shown = ", ".join(identity.groups[:MAX_GROUPS_SHOWN]) or "none"
    if len(identity.groups) > MAX_GROUPS_SHOWN:
        shown += f" and {len(identity.groups) - MAX_GROUPS_SHOWN} more"
    audit.emit(
        "login_refused",
        level=logging.WARNING,
        reason="no_mapped_role",
        user=identity.user_id,
        groups_claim=groups_claim,
        groups=shown,
    )
    return page(
        "No Airflow role for your account",
        f"You signed in as {identity.name}, but none of your groups ({shown}, from the "
        f"'{groups_claim}' claim) is mapped to an Airflow role.",
        detail="Ask an Airflow administrator to add one of your groups to [identity_auth_manager] "
        "role_mapping, or to set default_role.",
        status_code=403,
        # Not "start again": the IdP session would sign the same person in again.
        links={"Sign in as someone else": f"{AUTH_MANAGER_FASTAPI_APP_PREFIX}/logout"},
    )


def _unsafe_next(target: str) -> Response:
    audit.emit("login_refused", level=logging.WARNING, reason="unsafe_next", next=target)
    return page(
        "Unsafe return address",
        "The address to return to after sign-in is not part of this Airflow.",
        status_code=400,
        detail="Reason: unsafe_next",
        links=_start_again(),
    )


def _refused(reason: str, message: str, *, status_code: int) -> Response:
    audit.emit("login_refused", level=logging.WARNING, reason=reason, detail=message)
    return page("Sign-in refused", message, status_code=status_code, detail=f"Reason: {reason}", links=_start_again())


def _idp_unavailable(err: IdpUnavailable) -> Response:
    audit.emit("idp_unavailable", level=logging.ERROR, url=err.url, detail=err.detail)
    return page(
        "Identity provider unavailable",
        f"Airflow could not reach the identity provider at {err.url} ({err.detail}).",
        detail="Try again in a minute. If it persists, check [identity_auth_manager] issuer and the network "
        "path from the api-server to the identity provider.",
        status_code=503,
        links=_start_again(),
    )
