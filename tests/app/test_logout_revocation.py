"""/auth/logout revokes the Airflow JWT it is sent (cookie and Bearer), on its own, without Airflow's core
logout route; and signing out never fails, whatever the request carries."""

from __future__ import annotations

import asyncio
import logging
import time

import jwt as pyjwt
import pytest
from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
from jwt import InvalidTokenError

from airflow_identity_provider import version_compat
from airflow_identity_provider.auth.rules.roles import Role
from airflow_identity_provider.auth.rules.user import IdentityUser
from tests.app.conftest import start_login
from tests.support.audit import audit_events
from tests.support.versions import HAS_TOKEN_REVOCATION, needs_token_revocation


def sign_in(client, stub_op) -> str:
    params = start_login(client)
    stub_op.respond_with_id_token(stub_op.sign(stub_op.claims(nonce=params["nonce"])))
    assert client.get("/auth/callback", params={"code": "c", "state": params["state"]}).status_code == 303
    token = client.cookies.get("_token")
    assert token
    return token


def jti(token: str) -> str:
    return str(pyjwt.decode(token, options={"verify_signature": False})["jti"])


def accepted(manager, token: str) -> bool:
    try:
        asyncio.run(manager.get_user_from_token(token))
    except InvalidTokenError:
        return False
    return True


def revoked_count() -> int:
    if not HAS_TOKEN_REVOCATION:
        return 0
    from airflow import settings
    from airflow.models.revoked_token import RevokedToken
    from sqlalchemy import func, select

    return int(settings.Session().scalar(select(func.count()).select_from(RevokedToken)) or 0)


def assert_cookie_cleared(response) -> None:
    cleared = [h for h in response.headers.get_list("set-cookie") if h.startswith("_token=")]
    assert cleared and all("Max-Age=0" in h for h in cleared)


@needs_token_revocation
def test_our_logout_alone_revokes_the_cookie_token(make_client, stub_op) -> None:
    client, manager = make_client()
    token = sign_in(client, stub_op)
    assert accepted(manager, token)
    response = client.get("/auth/logout")
    assert response.status_code == 302 and response.headers["location"].startswith(f"{stub_op.issuer}/logout")
    assert_cookie_cleared(response)
    assert version_compat.is_token_revoked(jti(token))
    # What Airflow's API authentication does with the stolen or kept copy of the token now:
    assert not accepted(manager, token)


@needs_token_revocation
def test_our_logout_revokes_the_bearer_token_and_the_cookie_token(make_client, stub_op) -> None:
    client, manager = make_client()
    cookie_token = sign_in(client, stub_op)
    bearer_token = manager.generate_jwt(IdentityUser("svc", "svc", "", Role.parse("Op"), idp="default"))
    response = client.get("/auth/logout", headers={"Authorization": f"Bearer {bearer_token}"})
    assert response.status_code == 302
    assert not accepted(manager, cookie_token) and not accepted(manager, bearer_token)


def _expired(manager) -> str:
    user = IdentityUser("alice", "Alice", "", Role.parse("Admin"), idp="default")
    return manager.generate_jwt(user, expiration_time_in_seconds=-600)


def _forged(_manager) -> str:
    now = int(time.time())
    claims = {"sub": "alice", "role": "Admin", "idp": "default", "jti": "f" * 32, "iat": now, "exp": now + 600}
    return pyjwt.encode(claims, "not-the-jwt-secret-" + "x" * 60, algorithm="HS512")


@pytest.mark.parametrize(
    ("cookie", "authorization"),
    [
        (None, None),
        ("garbage", None),
        (None, "Bearer garbage.with.dots"),
        (None, "Bearer "),
        (None, "Basic YWxpY2U6dGVzdA=="),
        (_expired, None),
        (None, _expired),
        (_forged, _forged),
    ],
    ids=[
        "none",
        "garbage-cookie",
        "garbage-bearer",
        "empty-bearer",
        "basic",
        "expired-cookie",
        "expired-bearer",
        "forged",
    ],
)
def test_logout_with_no_expired_garbage_or_forged_token_signs_out_without_error(
    make_client, stub_op, caplog, cookie, authorization
) -> None:
    client, manager = make_client()
    if callable(cookie):
        cookie = cookie(manager)
    if callable(authorization):
        authorization = f"Bearer {authorization(manager)}"
    if cookie:
        client.cookies.set("_token", cookie)
    with caplog.at_level(logging.INFO, logger="airflow_identity_provider.audit"):
        response = client.get("/auth/logout", headers={"Authorization": authorization} if authorization else None)
    assert response.status_code == 302, response.text
    assert_cookie_cleared(response)
    assert revoked_count() == 0  # a token Airflow cannot verify writes nothing (no revoking others' jti)
    assert any(event.get("event") == "logout" and event["revoked"] == 0 for event in audit_events(caplog))


def test_logout_still_signs_out_when_revocation_fails(make_client, stub_op, monkeypatch) -> None:
    client, manager = make_client()
    sign_in(client, stub_op)

    def database_down(token: str) -> None:
        raise RuntimeError("database is down")

    monkeypatch.setattr(manager, "revoke_token", database_down, raising=False)  # 3.1 has none
    response = client.get("/auth/logout")
    assert response.status_code == 302
    assert_cookie_cleared(response)


def test_logout_on_airflow_without_revocation_warns_and_signs_out(make_client, stub_op, monkeypatch, caplog) -> None:
    """Airflow 3.1 has no BaseAuthManager.revoke_token: the cookie is cleared and the gap is logged."""
    client, _ = make_client()
    sign_in(client, stub_op)
    monkeypatch.delattr(BaseAuthManager, "revoke_token", raising=False)  # 3.1 has none anyway
    monkeypatch.setattr(version_compat, "_warned", set())  # once per process: forget init's line on 3.1
    with caplog.at_level(logging.WARNING, logger="airflow_identity_provider.version_compat"):
        response = client.get("/auth/logout")
        client.get("/auth/logout")
    assert response.status_code == 302
    assert_cookie_cleared(response)
    assert [r.getMessage() for r in caplog.records if "cannot revoke" in r.getMessage()] == [
        f"airflow-identity-provider: Airflow {version_compat.AIRFLOW_VERSION_STRING} cannot revoke tokens (needs "
        "3.2+): a signed-out Airflow token stays valid until it expires ([api_auth] jwt_expiration_time)"
    ]


@needs_token_revocation
def test_logout_audit_line_counts_the_revoked_tokens(make_client, stub_op, caplog) -> None:
    client, _ = make_client()
    sign_in(client, stub_op)
    with caplog.at_level(logging.INFO, logger="airflow_identity_provider.audit"):
        client.get("/auth/logout")
    assert any(event.get("event") == "logout" and event["revoked"] == 1 for event in audit_events(caplog))
