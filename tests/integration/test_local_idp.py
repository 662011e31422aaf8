"""The local OpenID Provider (dev/idp, npm oidc-provider) and its Python harness, against a real node process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet

from dev.idp.local_idp import (
    API_AUDIENCE,
    GROUPS_SCOPES,
    SERVICE_CLIENT_ID,
    SERVICE_CLIENT_SECRET,
    IdpLoginError,
    LocalIdp,
    LocalIdpError,
    login_through_idp,
    logout_through_idp,
    start_local_idp,
)
from tests.support.idp_tokens import redeem_code, refresh_grant

pytestmark = pytest.mark.integration

REDIRECT_URI = "http://127.0.0.1:8080/auth/callback"
POST_LOGOUT_URI = "http://127.0.0.1:8080/auth/logged-out"
JUMPCLOUD_LIKE = {
    "frank": {"name": "Frank JC", "email": "frank@example.test", "email_verified": True, "memberOf": "airflow-ops"}
}


@pytest.fixture(scope="module")
def idp() -> Iterator[LocalIdp]:
    started = time.monotonic()
    op = start_local_idp(
        redirect_uris=[REDIRECT_URI],
        post_logout_uris=[POST_LOGOUT_URI],
        extra_users=JUMPCLOUD_LIKE,
        test_endpoints=False,
    )
    assert time.monotonic() - started < 10
    try:
        yield op
    finally:
        op.stop()
    assert op.process.returncode == 0  # clean SIGTERM shutdown


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def _discovery(idp: LocalIdp) -> dict[str, Any]:
    resp = httpx.get(idp.discovery_url, timeout=10)
    resp.raise_for_status()
    return dict(resp.json())


def _keyset(idp: LocalIdp) -> KeySet:
    return KeySet.import_key_set(httpx.get(idp.jwks_uri, timeout=10).json())


class _Request:
    """One authorization request, as the Airflow side would build it."""

    def __init__(self, idp: LocalIdp, scope: str = " ".join(GROUPS_SCOPES), *, pkce: bool = True) -> None:
        self.state = generate_token(24)
        self.nonce = generate_token(24)
        self.verifier = generate_token(48)
        params = {
            "response_type": "code",
            "client_id": idp.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": scope,
            "state": self.state,
            "nonce": self.nonce,
        }
        if pkce:
            params["code_challenge"] = create_s256_code_challenge(self.verifier)
            params["code_challenge_method"] = "S256"
        self.url = f"{idp.authorization_endpoint}?{urlencode(params)}"


def _callback_params(resp: httpx.Response) -> dict[str, str]:
    assert resp.status_code in (302, 303), resp.text
    location = resp.headers["location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _exchange(idp: LocalIdp, code: str, verifier: str) -> httpx.Response:
    return redeem_code(idp, code, redirect_uri=REDIRECT_URI, verifier=verifier)


def _sign_in(idp: LocalIdp, browser: httpx.Client, user: str, scope: str = " ".join(GROUPS_SCOPES)) -> dict[str, Any]:
    req = _Request(idp, scope)
    params = _callback_params(login_through_idp(browser, req.url, user))
    assert params["state"] == req.state
    resp = _exchange(idp, params["code"], req.verifier)
    assert resp.status_code == 200, resp.text
    tokens = dict(resp.json())
    token = jwt.decode(tokens["id_token"], _keyset(idp), algorithms=["RS256"])
    assert token.claims["nonce"] == req.nonce
    return {"tokens": tokens, "header": token.header, "claims": token.claims}


def test_discovery(idp: LocalIdp) -> None:
    doc = _discovery(idp)
    assert doc["issuer"] == idp.issuer
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["end_session_endpoint"] == idp.end_session_endpoint
    assert doc["authorization_endpoint"] == idp.authorization_endpoint
    assert doc["token_endpoint"] == idp.token_endpoint
    assert doc["jwks_uri"] == idp.jwks_uri
    assert doc["response_types_supported"] == ["code"]
    assert "RS256" in doc["id_token_signing_alg_values_supported"]
    assert {"openid", "profile", "email", "groups", "offline_access"} <= set(doc["scopes_supported"])
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert [k["kid"] for k in httpx.get(idp.jwks_uri).json()["keys"]] == ["k1"]
    # the admin endpoints only exist with IDP_TEST_ENDPOINTS=1
    assert httpx.post(f"{idp.base_url}/_test/rotate-keys").status_code == 404


def test_authorization_without_pkce_is_refused(idp: LocalIdp, browser: httpx.Client) -> None:
    req = _Request(idp, pkce=False)
    resp = browser.get(req.url)
    params = _callback_params(resp)
    assert params["error"] == "invalid_request"
    assert "PKCE" in params["error_description"]
    assert params["state"] == req.state
    assert params["iss"] == idp.issuer


def test_code_flow_alice(idp: LocalIdp, browser: httpx.Client) -> None:
    started = time.monotonic()
    req = _Request(idp)
    back = login_through_idp(browser, req.url, "alice")
    params = _callback_params(back)
    assert params["state"] == req.state
    assert params["iss"] == idp.issuer

    # a wrong verifier does not redeem the code (nor burn it)
    bad = _exchange(idp, params["code"], generate_token(48))
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_grant"
    resp = _exchange(idp, params["code"], req.verifier)
    assert resp.status_code == 200, resp.text
    elapsed = time.monotonic() - started
    tokens = resp.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["refresh_token"]

    token = jwt.decode(tokens["id_token"], _keyset(idp), algorithms=["RS256"])
    assert token.header["alg"] == "RS256"
    assert token.header["kid"] == "k1"
    claims = token.claims
    assert claims["iss"] == idp.issuer
    assert claims["aud"] == idp.client_id
    assert claims["sub"] == "alice"
    assert claims["nonce"] == req.nonce
    assert claims["groups"] == ["airflow-admins", "data-eng"]
    assert claims["email"] == "alice@example.test"
    assert claims["email_verified"] is True
    assert claims["preferred_username"] == "alice"
    assert claims["name"] == "Alice Admin"
    assert claims["exp"] > time.time()

    # the refresh token works; userinfo accepts the opaque access token
    refreshed = refresh_grant(idp, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    info = httpx.get(idp.userinfo_endpoint, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200
    assert info.json()["sub"] == "alice"

    # code replay is refused, and revokes what the code produced
    replay = _exchange(idp, params["code"], req.verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert refresh_grant(idp, refreshed.json()["refresh_token"]).json()["error"] == "invalid_grant"
    assert elapsed < 5


def test_groups_need_the_groups_scope_and_users_differ(idp: LocalIdp, browser: httpx.Client) -> None:
    bob = _sign_in(idp, browser, "bob")["claims"]
    assert bob["groups"] == ["airflow-viewers"]
    browser.cookies.clear()
    carol = _sign_in(idp, browser, "carol", scope="openid profile email")["claims"]
    assert carol["sub"] == "carol"
    assert carol["email"] == "carol@example.test"
    assert "groups" not in carol


def test_jumpcloud_like_extra_user(idp: LocalIdp, browser: httpx.Client) -> None:
    claims = _sign_in(idp, browser, "frank", scope="openid email")["claims"]
    assert claims["memberOf"] == "airflow-ops"  # custom claims are always released
    assert "groups" not in claims


def test_client_secret_post_also_accepted(idp: LocalIdp, browser: httpx.Client) -> None:
    req = _Request(idp)
    params = _callback_params(login_through_idp(browser, req.url, "erin"))
    resp = httpx.post(
        idp.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": req.verifier,
            "client_id": idp.client_id,
            "client_secret": idp.client_secret,
        },
    )
    assert resp.status_code == 200, resp.text
    wrong = httpx.post(
        idp.token_endpoint,
        data={"grant_type": "refresh_token", "refresh_token": resp.json()["refresh_token"]},
        auth=(idp.client_id, "not-the-secret"),
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"


def test_wrong_password_and_unknown_user_are_refused(idp: LocalIdp, browser: httpx.Client) -> None:
    with pytest.raises(IdpLoginError, match="Invalid username or password"):
        login_through_idp(browser, _Request(idp).url, "alice", password="wrong")
    with pytest.raises(IdpLoginError, match="Invalid username or password"):
        login_through_idp(browser, _Request(idp).url, "mallory")


def test_rp_initiated_logout(idp: LocalIdp, browser: httpx.Client) -> None:
    id_token = _sign_in(idp, browser, "dave")["tokens"]["id_token"]
    # SSO: a second authorization request goes straight back to the RP
    assert "code" in _callback_params(browser.get(_Request(idp).url))
    query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": POST_LOGOUT_URI, "state": "s1"})
    back = logout_through_idp(browser, f"{idp.end_session_endpoint}?{query}")
    assert back.status_code in (302, 303)
    assert back.headers["location"] == f"{POST_LOGOUT_URI}?state=s1"
    # the IdP session is gone: the next authorization request shows the login page again
    again = browser.get(_Request(idp).url)
    assert again.status_code == 303
    assert urlsplit(again.headers["location"]).path.startswith("/interaction/")


def _client_credentials(idp: LocalIdp, *, basic: bool = True) -> str:
    data = {"grant_type": "client_credentials"}
    if basic:
        resp = httpx.post(idp.token_endpoint, data=data, auth=(SERVICE_CLIENT_ID, SERVICE_CLIENT_SECRET))
    else:
        data |= {"client_id": SERVICE_CLIENT_ID, "client_secret": SERVICE_CLIENT_SECRET}
        resp = httpx.post(idp.token_endpoint, data=data)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer"
    return str(body["access_token"])


def test_client_credentials_jwt_access_token(idp: LocalIdp) -> None:
    for basic in (True, False):
        token = jwt.decode(_client_credentials(idp, basic=basic), _keyset(idp), algorithms=["RS256"])
        assert token.header["typ"] == "at+jwt"
        claims = token.claims
        assert claims["iss"] == idp.issuer
        assert claims["aud"] == API_AUDIENCE
        assert claims["sub"] == SERVICE_CLIENT_ID
        assert claims["client_id"] == SERVICE_CLIENT_ID
        assert claims["azp"] == SERVICE_CLIENT_ID
        assert claims["idtyp"] == "app"
        assert claims["roles"] == ["Airflow.Op"]


def test_key_rotation_and_user_edits_under_an_issuer_path() -> None:
    with (
        start_local_idp(redirect_uris=[REDIRECT_URI], test_endpoints=True, issuer_path="/oidc") as op,
        httpx.Client() as browser,
    ):
        assert op.issuer == f"{op.base_url}/oidc"
        assert _discovery(op)["issuer"] == op.issuer
        old_token = _client_credentials(op)
        old_id = _sign_in(op, browser, "alice")
        assert old_id["header"]["kid"] == "k1"

        assert op.rotate_keys() == "k2"
        keys = httpx.get(op.jwks_uri).json()["keys"]
        assert [k["kid"] for k in keys] == ["k2", "k1"]
        assert all("d" not in k for k in keys)  # public halves only

        new_token = _client_credentials(op)
        assert jwt.decode(new_token, _keyset(op)).header["kid"] == "k2"
        assert jwt.decode(old_token, _keyset(op)).header["kid"] == "k1"  # still verifiable
        # the IdP session survived the rotation (SSO), and new ID tokens carry the new kid
        fresh = _sign_in(op, browser, "alice")
        assert fresh["header"]["kid"] == "k2"

        # drop_old publishes only the newest key
        assert op.rotate_keys(drop_old=True) == "k3"
        assert [k["kid"] for k in httpx.get(op.jwks_uri).json()["keys"]] == ["k3"]

        # users can be added, changed and removed at runtime
        browser.cookies.clear()
        op.put_user("gina", {"name": "Gina", "groups": ["airflow-ops"], "roles": ["Airflow.Admin"]})
        gina = _sign_in(op, browser, "gina")
        assert gina["claims"]["groups"] == ["airflow-ops"]
        assert gina["claims"]["roles"] == ["Airflow.Admin"]
        assert refresh_grant(op, gina["tokens"]["refresh_token"]).status_code == 200
        op.delete_user("gina")
        assert refresh_grant(op, gina["tokens"]["refresh_token"]).json()["error"] == "invalid_grant"
        browser.cookies.clear()
        with pytest.raises(IdpLoginError):
            login_through_idp(browser, _Request(op).url, "gina")
    assert op.process.returncode == 0


def test_startup_failure_reports_stderr() -> None:
    with pytest.raises(LocalIdpError, match=r"(?s)exited with code 2.*bad OP_PORT"):
        start_local_idp(redirect_uris=[REDIRECT_URI], extra_env={"OP_PORT": "99999"})


def test_restart_with_a_state_file_loses_nothing(tmp_path: Any) -> None:
    """IDP_STATE_FILE: a sign-in started before a restart finishes after it, with the same keys, and the code of
    a sign-in finished before it can still be exchanged; without the file a restart forgets both."""
    state = {"IDP_STATE_FILE": str(tmp_path / "idp-state.json")}
    first = start_local_idp(redirect_uris=[REDIRECT_URI], extra_env=state)
    port, kids = first.port, [k["kid"] for k in httpx.get(first.jwks_uri).json()["keys"]]
    with httpx.Client(timeout=10) as browser:
        done, pending = _Request(first), _Request(first)
        code = _callback_params(login_through_idp(browser, done.url, "alice"))["code"]
        browser.cookies.clear()
        form = browser.get(pending.url, follow_redirects=True)  # the login form, left open across the restart
        assert form.status_code == 200 and 'name="password"' in form.text
        first.stop()
        assert first.process.returncode == 0
        again = start_local_idp(redirect_uris=[REDIRECT_URI], port=port, extra_env=state)
        try:
            assert [k["kid"] for k in httpx.get(again.jwks_uri).json()["keys"]] == kids
            exchanged = _exchange(again, code, done.verifier)
            assert exchanged.status_code == 200, exchanged.text
            jwt.decode(exchanged.json()["id_token"], _keyset(again), algorithms=["RS256"])
            back = login_through_idp(browser, str(form.url), "dave")  # resumes the interaction
            assert _callback_params(back)["state"] == pending.state
        finally:
            again.stop()
    # Without the state file (the default) the same restart forgets the code.
    plain = start_local_idp(redirect_uris=[REDIRECT_URI])
    with httpx.Client(timeout=10) as browser:
        req = _Request(plain)
        code = _callback_params(login_through_idp(browser, req.url, "alice"))["code"]
    plain.stop()
    plain = start_local_idp(redirect_uris=[REDIRECT_URI], port=plain.port)
    try:
        assert _exchange(plain, code, req.verifier).json()["error"] == "invalid_grant"
    finally:
        plain.stop()
