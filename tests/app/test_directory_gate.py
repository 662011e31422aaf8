"""The auth manager's side of deprovisioning: deserialize_user (every Airflow JWT) answers 401 for a directory
refusal and for api_token_max_age, the session claim, and the start-up rules; JumpCloud through its emulator."""

from __future__ import annotations

import time
from collections.abc import Iterator

import jwt as pyjwt
import pytest
from fastapi import HTTPException

from airflow_identity_provider.auth.lifecycle import ConfigurationFailure
from airflow_identity_provider.auth.rules.token_age import SESSION_CLAIM
from airflow_identity_provider.auth.rules.user import IdentityUser
from airflow_identity_provider.auth.services.directory import SESSION_CAP_SLACK
from dev.jumpcloud_emulator.client import JumpCloudEmulator
from tests.support.versions import needs_session_end_on_refresh

KEY = "jc-app-tests"


@pytest.fixture(scope="module")
def jc() -> Iterator[JumpCloudEmulator]:
    with JumpCloudEmulator(api_key=KEY) as emulator:
        yield emulator


@pytest.fixture
def jumpcloud(jc: JumpCloudEmulator, make_client, stub_op, monkeypatch: pytest.MonkeyPatch):
    jc.reset()
    jc.add_api_key(KEY)
    monkeypatch.setenv("SSL_CERT_FILE", jc.ca_path)  # httpx trusts the emulator's self-signed CA

    def make(key: str = KEY, **settings: str):
        stub_op.discovery_issuer = f"{stub_op.issuer}/"
        values = {
            "idp": "jumpcloud",
            "issuer": f"{stub_op.issuer}/",
            "role_mapping": '{"Airflow Admins": "Admin", "Airflow Viewers": "Viewer"}',
            "directory_sync_interval": "60",
            "jumpcloud_api_key": key,
            "jumpcloud_api_url": jc.url,
        }
        return make_client(**{**values, **settings})

    return make


def user(sub: str, *, auth_time: float, groups: tuple[str, ...] = ("Airflow Admins",)) -> IdentityUser:
    return IdentityUser(sub, sub, "", ("Admin",), auth_time=int(auth_time), idp="default", groups=groups)


def claims(manager, some: IdentityUser, *, session: bool = False) -> dict[str, object]:
    token = manager.generate_session_jwt(some) if session else manager.generate_jwt(some)
    return dict(pyjwt.decode(token, options={"verify_signature": False}))


def test_a_suspended_jumpcloud_user_is_refused_with_401(jc: JumpCloudEmulator, jumpcloud) -> None:
    signed_in = time.time() - 60
    ada = jc.put_user(username="ada", email="ada@example.test")["_id"]
    bob = jc.put_user(username="bob", email="bob@example.test")["_id"]
    admins = jc.put_group(name="Airflow Admins")["id"]
    jc.add_member(admins, ada)
    _, manager = jumpcloud()
    assert manager.deserialize_user(claims(manager, user("ada@example.test", auth_time=signed_in))).roles == ("Admin",)
    # bob is in no group any more: nothing left
    with pytest.raises(HTTPException) as refused:
        manager.deserialize_user(claims(manager, user(bob, auth_time=signed_in)))
    assert refused.value.status_code == 401 and "no_access_left" in refused.value.headers["WWW-Authenticate"]
    jc.suspend_user(ada)
    manager.directory.sync_now()
    with pytest.raises(HTTPException) as refused:
        manager.deserialize_user(claims(manager, user("ada", auth_time=signed_in), session=True))
    assert refused.value.status_code == 401 and "suspended in the JumpCloud directory" in refused.value.detail


def test_a_wrong_api_key_stops_the_start_with_the_fix(jumpcloud) -> None:
    with pytest.raises(ConfigurationFailure, match="jumpcloud_api_key"):
        jumpcloud(key="not-the-key")


def test_an_unreachable_directory_does_not_stop_the_start(jumpcloud, caplog) -> None:
    _, manager = jumpcloud(jumpcloud_api_url="https://127.0.0.1:9", http_timeout="1")
    assert manager.directory.first_error is not None
    assert "No view yet" in caplog.text
    signed_in = time.time() - 60
    assert manager.deserialize_user(claims(manager, user("anyone", auth_time=signed_in))).user_id == "anyone"


def test_only_the_sign_in_callback_mints_a_session(make_client) -> None:
    _, manager = make_client(api_token_max_age="3600", revalidate_interval="86400")
    old = user("u", auth_time=time.time() - 7200)
    session = claims(manager, old, session=True)
    assert session[SESSION_CLAIM] is True
    assert manager.deserialize_user(session).user_id == "u"  # sessions: revalidate_interval, not this
    api = claims(manager, old)
    assert SESSION_CLAIM not in api
    with pytest.raises(HTTPException) as refused:
        manager.deserialize_user(api)
    assert refused.value.status_code == 401 and "api_token_max_age" in refused.value.detail
    # The UI's "Generate token" mints from the session's user with generate_jwt: an API token.
    from_session = manager.deserialize_user(claims(manager, user("u", auth_time=time.time()), session=True))
    assert SESSION_CLAIM not in claims(manager, from_session)


@needs_session_end_on_refresh
def test_a_session_token_replayed_as_bearer_is_bounded_by_revalidate_interval(make_client) -> None:
    """The ``_token`` cookie's value sent as ``Authorization: Bearer`` never meets refresh_user (only the cookie
    goes through JWTRefreshMiddleware): revalidate_interval (+ a slack for refresh_user to act first) caps it."""
    _, manager = make_client(api_token_max_age="0", revalidate_interval="600")
    fresh = claims(manager, user("u", auth_time=time.time() - 600), session=True)
    assert manager.deserialize_user(fresh).user_id == "u"  # refresh_user ends it first, in the browser
    stale = claims(manager, user("u", auth_time=time.time() - 600 - SESSION_CAP_SLACK - 5), session=True)
    with pytest.raises(HTTPException) as refused:
        manager.deserialize_user(stale)
    assert refused.value.status_code == 401 and "revalidate_interval" in refused.value.detail


def test_zero_max_age_caps_nothing(make_client) -> None:
    _, manager = make_client(api_token_max_age="0")
    assert manager.deserialize_user(claims(manager, user("u", auth_time=0))).user_id == "u"
