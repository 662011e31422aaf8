"""The FastAPI sub-app Airflow mounts at ``/auth``: the browser sign-in round trip and sign-out.

Every failure ends on a page that says what happened and what to change, with a link to start again
(never an automatic redirect, which is how auth managers end up in redirect loops).
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING

from airflow.api_fastapi.app import AUTH_MANAGER_FASTAPI_APP_PREFIX, get_cookie_path
from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.configuration import conf
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from airflow_identity_provider.auth import audit
from airflow_identity_provider.auth.claims import ClaimError, map_role
from airflow_identity_provider.auth.idp.id_token import TokenRejected
from airflow_identity_provider.auth.idp.oidc import IdpError, IdpUnavailable
from airflow_identity_provider.auth.pages import page
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
    from airflow_identity_provider.auth.manager import IdentityAuthManager

log = logging.getLogger(__name__)
MAX_GROUPS_SHOWN = 10


def base_url() -> str:
    return (conf.get("api", "base_url", fallback="") or "").rstrip("/") + "/"


def callback_url() -> str:
    # From [api] base_url, never from the Host header: the IdP would otherwise send codes wherever an
    # attacker-chosen Host points.
    return base_url() + "auth/callback"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or bool(conf.get("api", "ssl_cert", fallback=""))


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
            audit.emit("login_refused", level=logging.WARNING, reason="unsafe_next", next=target)
            return page(
                "Unsafe return address",
                "The address to return to after sign-in is not part of this Airflow.",
                status_code=400,
                links=_start_again(),
            )
        settings = manager.settings
        login_state = LoginState.new(next_url=target, idp=settings.idp)
        try:
            url = manager.provider.authorization_url(redirect_uri=callback_url(), login=login_state)
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
        settings = manager.settings
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
        provider = manager.provider
        # RFC 9207: when the IdP says who answered, it must be the one we asked (mix-up defence).
        try:
            iss_ok = iss is None or provider.response_issuer_ok(iss)
        except IdpUnavailable as err:
            return _idp_unavailable(err)
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
            identity = provider.sign_in(code=code, redirect_uri=callback_url(), login=login_state)
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
            shown = ", ".join(identity.groups[:MAX_GROUPS_SHOWN]) or "none"
            if len(identity.groups) > MAX_GROUPS_SHOWN:
                shown += f" and {len(identity.groups) - MAX_GROUPS_SHOWN} more"
            audit.emit(
                "login_refused",
                level=logging.WARNING,
                reason="no_mapped_role",
                user=identity.user_id,
                groups_claim=settings.groups_claim,
                groups=shown,
            )
            return page(
                "No Airflow role for your account",
                f"You signed in as {identity.name}, but none of your groups ({shown}, from the "
                f"'{settings.groups_claim}' claim) is mapped to an Airflow role.",
                detail="Ask an Airflow administrator to add one of your groups to [identity_auth_manager] "
                "role_mapping, or to set default_role.",
                status_code=403,
            )

        user = IdentityUser(user_id=identity.user_id, name=identity.name, email=identity.email, role=role)
        audit.emit("login", user=user.user_id, name=user.name, role=role.display_name, idp=settings.idp)
        next_url = login_state.next_url if _is_safe_next(login_state.next_url, request) else base_url()
        response = RedirectResponse(next_url, status_code=303)
        response.set_cookie(
            COOKIE_NAME_JWT_TOKEN,
            manager.generate_jwt(user),
            path=get_cookie_path(),
            httponly=True,
            secure=_secure(request),
            samesite="lax",
        )
        response.delete_cookie(LOGIN_COOKIE, path=AUTH_MANAGER_FASTAPI_APP_PREFIX)
        return response

    @app.get("/logout", response_model=None)
    def logout(request: Request) -> Response:
        response = page(
            "Signed out",
            "You are signed out of Airflow.",
            status_code=200,
            links={"Sign in again": base_url()},
        )
        secure = _secure(request)
        # Also at "/": a stale cookie at another path would otherwise keep the user signed in (Airflow PR #64955).
        for path in {get_cookie_path(), "/"}:
            response.delete_cookie(COOKIE_NAME_JWT_TOKEN, path=path, secure=secure, httponly=True, samesite="lax")
        audit.emit("logout")
        return response

    return app


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
