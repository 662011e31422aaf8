"""Deprovisioning: a browser session is sent back through the IdP after revalidate_interval."""

from __future__ import annotations

import time

import pytest
from airflow.api_fastapi.auth.managers.exceptions import AuthManagerRefreshTokenExpiredException

from airflow_identity_provider.auth.rules.roles import Role
from airflow_identity_provider.auth.rules.user import IdentityUser


def user(signed_in_seconds_ago: float) -> IdentityUser:
    return IdentityUser("u", "U", "", Role.ADMIN, auth_time=int(time.time() - signed_in_seconds_ago))


def test_fresh_session_is_left_alone(make_client) -> None:
    _, manager = make_client(revalidate_interval="60")
    assert manager.refresh_user(user=user(10)) is None


def test_session_past_the_interval_must_sign_in_again(make_client) -> None:
    _, manager = make_client(revalidate_interval="60")
    with pytest.raises(AuthManagerRefreshTokenExpiredException):
        manager.refresh_user(user=user(61))


def test_token_without_auth_time_is_treated_as_due(make_client) -> None:
    _, manager = make_client(revalidate_interval="60")
    with pytest.raises(AuthManagerRefreshTokenExpiredException):
        manager.refresh_user(user=IdentityUser("u", "U", "", Role.ADMIN))


def test_zero_disables_revalidation(make_client) -> None:
    _, manager = make_client(revalidate_interval="0")
    assert manager.refresh_user(user=user(10**6)) is None


def test_auth_time_and_provider_round_trip_through_the_airflow_jwt(make_client) -> None:
    _, manager = make_client()
    original = IdentityUser("u", "U", "", Role.ADMIN, auth_time=int(time.time()), idp="default")
    assert manager.deserialize_user(manager.serialize_user(original)) == original


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "admin", "role": "admin"},  # a SimpleAuthManager token signed with the same jwt_secret
        {"sub": "u", "role": "Admin", "idp": "someone-else"},
    ],
)
def test_tokens_not_minted_through_a_configured_provider_are_refused(make_client, claims) -> None:
    _, manager = make_client()
    with pytest.raises(ValueError, match="not issued through a configured identity provider"):
        manager.deserialize_user(claims)


def test_each_provider_applies_its_own_interval(make_client, monkeypatch: pytest.MonkeyPatch, stub_op) -> None:
    for name, interval in (("staff", "60"), ("contractors", "3600")):
        prefix = f"AIRFLOW__IDENTITY_AUTH_MANAGER_{name.upper()}__"
        monkeypatch.setenv(prefix + "ISSUER", stub_op.issuer)
        monkeypatch.setenv(prefix + "CLIENT_ID", "airflow")
        monkeypatch.setenv(prefix + "REVALIDATE_INTERVAL", interval)
    _, manager = make_client(providers="staff,contractors")
    signed_in_long_ago = int(time.time() - 600)
    contractor = IdentityUser("c", "C", "", Role.VIEWER, auth_time=signed_in_long_ago, idp="contractors")
    assert manager.refresh_user(user=contractor) is None
    staff = IdentityUser("s", "S", "", Role.VIEWER, auth_time=signed_in_long_ago, idp="staff")
    with pytest.raises(AuthManagerRefreshTokenExpiredException):
        manager.refresh_user(user=staff)
