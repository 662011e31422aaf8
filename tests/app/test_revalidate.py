"""Deprovisioning: a browser session is sent back through the IdP after revalidate_interval."""

from __future__ import annotations

import logging
import time

import pytest

from airflow_identity_provider import version_compat
from airflow_identity_provider.auth.rules.roles import Role
from airflow_identity_provider.auth.rules.user import IdentityUser
from airflow_identity_provider.version_compat import AuthManagerRefreshTokenExpiredException
from tests.support.versions import needs_session_end_on_refresh


def user(signed_in_seconds_ago: float) -> IdentityUser:
    return IdentityUser("u", "U", "", Role.ADMIN, auth_time=int(time.time() - signed_in_seconds_ago))


def test_fresh_session_is_left_alone(make_client) -> None:
    _, manager = make_client(revalidate_interval="60")
    assert manager.refresh_user(user=user(10)) is None


@needs_session_end_on_refresh
def test_session_past_the_interval_must_sign_in_again(make_client) -> None:
    _, manager = make_client(revalidate_interval="60")
    with pytest.raises(AuthManagerRefreshTokenExpiredException):
        manager.refresh_user(user=user(61))


@needs_session_end_on_refresh
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


@needs_session_end_on_refresh
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


def test_airflow_without_session_end_ignores_the_interval_and_says_so(make_client, monkeypatch, caplog) -> None:
    """Airflow < 3.1.7: refresh_user() must never raise (3.1.5/3.1.6 would answer 500), so the interval is
    ignored, with one warning at start."""
    monkeypatch.setattr(version_compat, "CAN_END_SESSION_ON_REFRESH", False)
    monkeypatch.setattr(version_compat, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="airflow_identity_provider.version_compat"):
        _, manager = make_client(revalidate_interval="60")
        make_client(revalidate_interval="60")
    assert manager.refresh_user(user=user(10**6)) is None
    lines = [r.getMessage() for r in caplog.records if "revalidate_interval" in r.getMessage()]
    assert lines == [
        f"airflow-identity-provider: Airflow {version_compat.AIRFLOW_VERSION_STRING} cannot end a browser session "
        "from the auth manager (needs 3.1.7+): revalidate_interval is ignored and sessions last [api_auth] "
        "jwt_expiration_time"
    ]
