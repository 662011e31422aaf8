"""The whole sign-in chain through a real ``airflow api-server`` and the real npm ``oidc-provider``.

Nothing is mocked: the test is a cookie-keeping HTTP client walking the same redirects a browser would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from dev.airflow_server import free_port, start_api_server, start_component
from dev.idp.local_idp import (
    API_AUDIENCE,
    SERVICE_CLIENT_ID,
    SERVICE_CLIENT_SECRET,
    login_through_idp,
    logout_through_idp,
    start_local_idp,
)
from tests.support.deployment import Deployment, local_deployment
from tests.support.versions import HAS_TOKEN_REVOCATION, HAS_UI_AUTH_ME, needs_token_revocation

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with local_deployment(tmp_path_factory.mktemp("airflow_home")) as running:
        yield running


def sign_in(deployment: Deployment, username: str, next_path: str = "/dags") -> tuple[httpx.Client, httpx.Response]:
    """Walk the browser's chain: Airflow login -> our /auth/login -> IdP -> /auth/callback."""
    browser = httpx.Client(timeout=30)
    core = browser.get(f"{deployment.url}/api/v2/auth/login", params={"next": f"{deployment.url}{next_path}"})
    assert core.status_code == 307, core.text
    assert core.headers["location"].startswith("/auth/login?next=")
    ours = browser.get(f"{deployment.url}{core.headers['location']}")
    assert ours.status_code == 302, ours.text
    assert ours.headers["location"].startswith(deployment.idp.issuer)
    back = login_through_idp(browser, ours.headers["location"], username)
    callback = browser.get(back.headers["location"])
    return browser, callback


def test_admin_signs_in_and_reaches_ui_and_api(deployment: Deployment) -> None:
    started = time.perf_counter()
    browser, callback = sign_in(deployment, "alice", "/dags?tab=all")
    elapsed = time.perf_counter() - started
    assert callback.status_code == 303, callback.text
    assert callback.headers["location"] == f"{deployment.url}/dags?tab=all"
    assert browser.cookies.get("_token")
    if HAS_UI_AUTH_ME:
        me = browser.get(f"{deployment.url}/ui/auth/me")
        assert me.status_code == 200 and me.json()["id"] == "alice"
    assert browser.get(f"{deployment.url}/api/v2/dags").status_code == 200
    assert browser.get(f"{deployment.url}/api/v2/variables").status_code == 200
    menus = browser.get(f"{deployment.url}/ui/auth/menus").json()
    assert "Variables" in menus["authorized_menu_items"]
    print(f"\nfull login round trip through api-server and IdP: {elapsed * 1000:.0f} ms")


def test_viewer_is_refused_variables_but_reads_dags(deployment: Deployment) -> None:
    browser, callback = sign_in(deployment, "bob")
    assert callback.status_code == 303
    assert browser.get(f"{deployment.url}/api/v2/dags").status_code == 200
    variables = browser.get(f"{deployment.url}/api/v2/variables")
    assert variables.status_code == 403
    menus = browser.get(f"{deployment.url}/ui/auth/menus").json()["authorized_menu_items"]
    assert "Variables" not in menus and "Connections" not in menus and "Dags" in menus


def test_unmapped_user_is_refused_with_a_message(deployment: Deployment) -> None:
    browser, callback = sign_in(deployment, "carol")
    assert callback.status_code == 403
    assert "marketing" in callback.text and "role_mapping" in callback.text
    assert not browser.cookies.get("_token")
    assert browser.get(f"{deployment.url}/api/v2/dags").status_code == 401


def test_unsafe_next_is_refused(deployment: Deployment) -> None:
    for target in ("http://evil.example/", "//evil.example/"):
        core = httpx.get(f"{deployment.url}/api/v2/auth/login", params={"next": target})
        assert core.status_code == 400
        ours = httpx.get(f"{deployment.url}/auth/login", params={"next": target})
        assert ours.status_code == 400


def test_logout_revokes_the_token_and_ends_the_idp_session(deployment: Deployment) -> None:
    browser, _ = sign_in(deployment, "dave")
    token = browser.cookies["_token"]
    assert browser.get(f"{deployment.url}/api/v2/variables").status_code == 200
    core = browser.get(f"{deployment.url}/api/v2/auth/logout")
    assert core.status_code == 307 and core.headers["location"] == "/auth/logout"
    ours = browser.get(f"{deployment.url}/auth/logout")
    assert ours.status_code == 302
    end_session = ours.headers["location"]
    assert end_session.startswith(deployment.idp.end_session_endpoint) and "id_token_hint=" in end_session
    assert not browser.cookies.get("_token")
    back = logout_through_idp(browser, end_session)
    assert back.headers["location"] == f"{deployment.url}/auth/logged-out"
    assert "Signed out" in browser.get(back.headers["location"]).text
    # The Airflow token was revoked by our /auth/logout (and, from Airflow 3.3, by the core route too), the
    # IdP session by end_session.
    reused = httpx.get(f"{deployment.url}/api/v2/variables", headers={"Authorization": f"Bearer {token}"})
    # Airflow 3.1 cannot revoke (logged once by the auth manager): a kept copy works until it expires.
    assert reused.status_code in ((401, 403) if HAS_TOKEN_REVOCATION else (200,))
    assert browser.get(f"{deployment.url}/api/v2/dags").status_code == 401
    core = browser.get(f"{deployment.url}/api/v2/auth/login")
    again = browser.get(f"{deployment.url}{core.headers['location']}")
    prompt = browser.get(again.headers["location"])
    assert prompt.status_code in (302, 303) and "/interaction/" in prompt.headers["location"]


def assert_revoked(response: httpx.Response) -> None:
    # Airflow (3.3.2, core_api/security.py resolve_user_from_token) answers every invalid token but an expired
    # one, a revoked one included, with 403 "Invalid JWT token"; a permission refusal would say "Forbidden".
    assert response.status_code == 403, response.text
    assert response.json()["detail"] == "Invalid JWT token"


@needs_token_revocation
def test_our_logout_alone_revokes_the_airflow_jwt(deployment: Deployment) -> None:
    """Someone kept a copy of the session's JWT (another tab, a script, an attacker who read it). Only our
    /auth/logout is called, as the no-role page's link and a bookmarked logout do, never the core route."""
    browser, _ = sign_in(deployment, "dave")
    token = browser.cookies["_token"]
    copy = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{deployment.url}/api/v2/variables", headers=copy).status_code == 200
    ours = browser.get(f"{deployment.url}/auth/logout")
    assert ours.status_code == 302 and ours.headers["location"].startswith(deployment.idp.end_session_endpoint)
    assert not browser.cookies.get("_token")
    for path in ("/api/v2/variables", "/api/v2/dags", "/ui/auth/me"):
        assert_revoked(httpx.get(f"{deployment.url}{path}", headers=copy))


def test_our_logout_revokes_a_bearer_token_and_never_fails(deployment: Deployment) -> None:
    browser, _ = sign_in(deployment, "alice")
    token = browser.cookies["_token"]
    copy = {"Authorization": f"Bearer {token}"}
    # An API client signing out with its Bearer token only (no cookie).
    assert httpx.get(f"{deployment.url}/auth/logout", headers=copy).status_code == 302
    if HAS_TOKEN_REVOCATION:  # Airflow 3.1 cannot revoke; signing out must still never fail
        assert_revoked(httpx.get(f"{deployment.url}/api/v2/dags", headers=copy))
    expired = "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MX0.c2lnbmF0dXJl"  # exp 1970, not signed by us
    for cookie, bearer in (("", ""), ("garbage", "garbage.with.dots"), (expired, expired), (token, token)):
        response = httpx.get(
            f"{deployment.url}/auth/logout",
            headers={"Authorization": f"Bearer {bearer}"} if bearer else {},
            cookies={"_token": cookie} if cookie else {},
        )
        assert response.status_code == 302, (cookie, response.text)


def test_signing_key_rotation_mid_run(deployment: Deployment) -> None:
    _browser, callback = sign_in(deployment, "alice")
    assert callback.status_code == 303
    new_kid = deployment.idp.rotate_keys(drop_old=True)
    _browser, callback = sign_in(deployment, "alice")
    assert callback.status_code == 303, callback.text  # unknown kid -> keys refetched
    assert new_kid


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("ROLE_MAPPING", "{not json", "role_mapping: is not valid JSON"),
        ("ROLE_MAPPING", '{"admins": "Superuser"}', "'Superuser' is not an Airflow role"),
        ("CLIENT_ID", "", "client_id: is empty"),
    ],
)
def test_bad_setting_stops_the_api_server_with_one_line(
    deployment: Deployment, key: str, value: str, expected: str
) -> None:
    port = free_port()
    env = {
        **deployment.server.env,
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}/",
        # Several workers: uvicorn restarts a dying worker, so the manager must stop the supervisor.
        "AIRFLOW__API__WORKERS": "2",
        f"AIRFLOW__IDENTITY_AUTH_MANAGER__{key}": value,
    }
    component = start_component(
        f"api-server-bad-{key.lower()}",
        ["api-server", "--host", "127.0.0.1", "--port", str(port)],
        env,
        deployment.home,
    )
    try:
        component.process.wait(timeout=60)
    finally:
        component.stop()
    log = component.log_tail(20000)
    assert expected in log
    assert "Traceback" not in log


def test_sign_in_with_a_stale_airflow_cookie_does_not_loop(deployment: Deployment) -> None:
    """Airflow's refresh middleware clears an invalid _token on every response; it must not clear the
    fresh one the callback sets (the login loop of Airflow PR #71506)."""
    browser = httpx.Client(timeout=30)
    browser.cookies.set("_token", "stale.expired.token", domain="127.0.0.1", path="/")
    core = browser.get(f"{deployment.url}/api/v2/auth/login", params={"next": f"{deployment.url}/dags"})
    ours = browser.get(f"{deployment.url}{core.headers['location']}")
    back = login_through_idp(browser, ours.headers["location"], "alice")
    callback = browser.get(back.headers["location"])
    assert callback.status_code == 303
    assert browser.get(f"{deployment.url}/ui/auth/me").status_code == 200


def test_revalidation_sends_the_session_back_through_the_idp(deployment: Deployment) -> None:
    """With revalidate_interval = 4: after it passes, the cookie is cleared (UI -> login), the silent
    IdP round trip signs the user in again, and a user the directory dropped is refused."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    idp = start_local_idp(redirect_uris=[f"{base}/auth/callback"])
    env = {
        **deployment.server.env,
        "AIRFLOW__API__BASE_URL": f"{base}/",
        "AIRFLOW__IDENTITY_AUTH_MANAGER__ISSUER": idp.issuer,
        "AIRFLOW__IDENTITY_AUTH_MANAGER__REVALIDATE_INTERVAL": "4",  # a sign-in fits inside it on a busy machine
    }
    server = start_api_server(deployment.home, env, port=port)
    try:
        second = Deployment(server=server, idp=idp, home=deployment.home)
        idp.put_user("frank", {"name": "Frank", "groups": ["airflow-ops"]})
        browser, callback = sign_in(second, "frank")
        assert callback.status_code == 303
        assert browser.get(f"{base}/api/v2/variables").status_code == 200
        time.sleep(4.5)
        browser.get(f"{base}/ui/auth/me")  # the refresh middleware ends the session on this request
        assert browser.get(f"{base}/api/v2/variables").status_code == 401
        # Silent re-sign-in: the IdP session still exists, no password needed.
        core = browser.get(f"{base}/api/v2/auth/login", params={"next": f"{base}/"})
        ours = browser.get(f"{base}{core.headers['location']}")
        back = login_through_idp(browser, ours.headers["location"], "frank")
        assert browser.get(back.headers["location"]).status_code == 303
        assert browser.get(f"{base}/api/v2/variables").status_code == 200
        # The directory drops Frank's group: the next revalidation gives him no role.
        idp.put_user("frank", {"name": "Frank", "groups": ["marketing"]})
        time.sleep(4.5)
        browser.get(f"{base}/ui/auth/me")
        core = browser.get(f"{base}/api/v2/auth/login", params={"next": f"{base}/"})
        ours = browser.get(f"{base}{core.headers['location']}")
        back = login_through_idp(browser, ours.headers["location"], "frank")
        refused = browser.get(back.headers["location"])
        assert refused.status_code == 403 and "marketing" in refused.text
        assert browser.get(f"{base}/api/v2/variables").status_code == 401
    finally:
        server.stop()
        idp.stop()


def test_service_principal_gets_an_airflow_api_token_without_a_shared_secret(deployment: Deployment) -> None:
    """Client credentials at the IdP (the service principal's own identity) -> POST /auth/token -> API."""
    idp_token = httpx.post(
        deployment.idp.token_endpoint,
        data={"grant_type": "client_credentials", "scope": "airflow.api", "resource": API_AUDIENCE},
        auth=(SERVICE_CLIENT_ID, SERVICE_CLIENT_SECRET),
    ).json()["access_token"]
    exchanged = httpx.post(f"{deployment.url}/auth/token", headers={"Authorization": f"Bearer {idp_token}"})
    assert exchanged.status_code == 201, exchanged.text
    airflow_token = exchanged.json()["access_token"]
    headers = {"Authorization": f"Bearer {airflow_token}"}
    assert httpx.get(f"{deployment.url}/api/v2/variables", headers=headers).status_code == 200  # Op
    assert httpx.get(f"{deployment.url}/api/v2/config", headers=headers).status_code == 403
    tampered = idp_token[:-4] + ("AAAA" if not idp_token.endswith("AAAA") else "BBBB")
    refused = httpx.post(f"{deployment.url}/auth/token", headers={"Authorization": f"Bearer {tampered}"})
    assert refused.status_code == 401 and refused.json()["reason"] == "bad_signature"
