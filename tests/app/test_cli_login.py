"""The terminal sign-in's server side (/auth/cli-login, the callback's loopback redirect, /auth/token/cli-exchange)
and the answer to airflowctl's username/password login, against a stub provider."""

from __future__ import annotations

import base64
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import jwt as pyjwt
import pytest
from airflow.configuration import conf

from airflow_identity_provider.auth.rules.cli_code import CliRequest, issue_code, s256
from airflow_identity_provider.auth.rules.user import IdentityUser
from tests.app.conftest import BASE
from tests.support.versions import HAS_TOKEN_REVOCATION, needs_token_revocation

VERIFIER = secrets.token_urlsafe(64)
CHALLENGE = s256(VERIFIER)
CLI_STATE = "cli-state-" + "x" * 20


def cli_params(**overrides: str | None) -> dict[str, str]:
    params = {"port": "50123", "state": CLI_STATE, "code_challenge": CHALLENGE, "code_challenge_method": "S256"}
    params.update(overrides)  # type: ignore[arg-type]
    return {k: v for k, v in params.items() if v is not None}


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def sign_in_from_terminal(client, stub_op, groups=("airflow-admins",)) -> str:
    """/auth/cli-login -> (stub IdP) -> /auth/callback; returns the loopback URL the browser is sent to."""
    started = client.get("/auth/cli-login", params=cli_params())
    assert started.status_code == 302, started.text
    idp = query_of(started.headers["location"])
    assert idp["redirect_uri"] == f"{BASE}/auth/callback"  # the one redirect URI registered for the web UI
    stub_op.respond_with_id_token(stub_op.sign(stub_op.claims(nonce=idp["nonce"], groups=list(groups))))
    back = client.get("/auth/callback", params={"code": "c", "state": idp["state"]})
    assert back.status_code == 303, back.text
    return back.headers["location"]


def exchange(client, code: str | None, verifier: str | None = VERIFIER, *, json: bool = False):
    fields = {k: v for k, v in (("code", code), ("code_verifier", verifier)) if v is not None}
    if json:
        return client.post("/auth/token/cli-exchange", json=fields)
    return client.post("/auth/token/cli-exchange", data=fields)


def test_terminal_sign_in_returns_a_code_to_the_loopback_listener_and_no_cookie(make_client, stub_op) -> None:
    client, _ = make_client()
    location = sign_in_from_terminal(client, stub_op)
    assert location.startswith("http://127.0.0.1:50123/callback?")
    back = query_of(location)
    assert back["state"] == CLI_STATE
    assert "_token" not in client.cookies  # the browser is not signed in to the UI by a terminal sign-in
    assert "_identity_login" not in client.cookies
    # The code is opaque: neither the token nor the user's name or groups can be read from the URL. (Not a
    # substring test on the base64 text: a random Fernet token contains "eyJ" about once in a thousand runs.)
    sealed = base64.urlsafe_b64decode(back["code"] + "=" * (-len(back["code"]) % 4))
    assert b"alice" not in sealed and b"Admin" not in sealed and b'{"' not in sealed
    assert not back["code"].startswith("eyJ")  # not a JWT
    issued = exchange(client, back["code"])
    assert issued.status_code == 201, issued.text
    assert issued.headers["cache-control"] == "no-store"
    claims = pyjwt.decode(issued.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "alice" and claims["roles"] == ["Admin"]
    assert claims["exp"] - claims["iat"] == conf.getint("api_auth", "jwt_cli_expiration_time")


def test_json_exchange_is_accepted_too(make_client, stub_op) -> None:
    client, _ = make_client()
    code = query_of(sign_in_from_terminal(client, stub_op))["code"]
    assert exchange(client, code, json=True).status_code == 201


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"port": "80"}, "cli_bad_port"),
        ({"port": "65536"}, "cli_bad_port"),
        ({"port": "8080.evil.example"}, "cli_bad_port"),
        ({"port": None}, "cli_bad_port"),
        ({"redirect_uri": "https://evil.example/callback"}, "cli_redirect_not_loopback"),
        ({"redirect_uri": "http://127.0.0.1:50123/callback"}, "cli_redirect_not_loopback"),
        ({"state": "short"}, "cli_bad_state"),
        ({"state": None}, "cli_bad_state"),
        ({"code_challenge_method": "plain"}, "cli_pkce_required"),
        ({"code_challenge": None}, "cli_pkce_required"),
        ({"code_challenge": "not-a-challenge"}, "cli_pkce_required"),
    ],
)
def test_cli_login_refuses_anything_but_a_loopback_pkce_request(make_client, stub_op, overrides, reason) -> None:
    client, _ = make_client()
    refused = client.get("/auth/cli-login", params=cli_params(**overrides))
    assert refused.status_code == 400
    assert f"Reason: {reason}" in refused.text
    assert "location" not in refused.headers and "_identity_login" not in client.cookies


def test_the_loopback_host_cannot_be_chosen(make_client, stub_op) -> None:
    """Whatever the request says about hosts, the code only ever goes to 127.0.0.1."""
    client, _ = make_client()
    started = client.get("/auth/cli-login", params={**cli_params(), "host": "evil.example"}, headers={"Host": "evil"})
    assert started.status_code == 302
    idp = query_of(started.headers["location"])
    stub_op.respond_with_id_token(stub_op.sign(stub_op.claims(nonce=idp["nonce"])))
    back = client.get("/auth/callback", params={"code": "c", "state": idp["state"]})
    assert urlsplit(back.headers["location"]).netloc == "127.0.0.1:50123"


def test_callback_with_a_bad_state_is_refused_as_for_the_web(make_client, stub_op) -> None:
    client, _ = make_client()
    client.get("/auth/cli-login", params=cli_params())
    refused = client.get("/auth/callback", params={"code": "c", "state": "forged"})
    assert refused.status_code == 400 and "state_mismatch" in refused.text
    assert "location" not in refused.headers


def test_unmapped_user_sees_the_no_role_page_not_a_code(make_client, stub_op) -> None:
    client, _ = make_client()
    started = client.get("/auth/cli-login", params=cli_params())
    idp = query_of(started.headers["location"])
    stub_op.respond_with_id_token(stub_op.sign(stub_op.claims(nonce=idp["nonce"], groups=["marketing"])))
    page = client.get("/auth/callback", params={"code": "c", "state": idp["state"]})
    assert page.status_code == 403 and "marketing" in page.text and "location" not in page.headers


@pytest.mark.parametrize(
    ("verifier", "reason"),
    [
        (None, "missing_code_verifier"),
        ("", "missing_code_verifier"),
        (secrets.token_urlsafe(64), "code_verifier_mismatch"),
        (CHALLENGE, "code_verifier_mismatch"),  # the challenge itself, as read from the URL
        ("é" * 50, "code_verifier_mismatch"),
    ],
)
def test_exchange_needs_the_verifier_of_the_terminal_that_started(make_client, stub_op, verifier, reason) -> None:
    client, _ = make_client()
    code = query_of(sign_in_from_terminal(client, stub_op))["code"]
    refused = exchange(client, code, verifier)
    assert refused.status_code == 400 and refused.json()["reason"] == reason
    assert exchange(client, code).status_code == 201  # a wrong verifier does not burn the code


@pytest.mark.parametrize("code", [None, "", "garbage", "gAAAAA" + "A" * 100])
def test_exchange_refuses_missing_or_forged_codes(make_client, code) -> None:
    client, _ = make_client()
    refused = exchange(client, code)
    assert refused.status_code == 400
    assert refused.json()["reason"] in {"missing_cli_code", "bad_cli_code"}


def test_code_of_another_airflow_is_refused(make_client) -> None:
    client, _ = make_client()
    user = IdentityUser("alice", "Alice", "", ("Admin",), idp="default")
    code = issue_code(user, CliRequest(50123, CLI_STATE, CHALLENGE), "another-secret-key")
    assert exchange(client, code).json()["reason"] == "bad_cli_code"


def test_expired_code_is_refused(make_client) -> None:
    client, manager = make_client()
    user = IdentityUser("alice", "Alice", "", ("Admin",), idp="default")
    code = issue_code(user, CliRequest(50123, CLI_STATE, CHALLENGE), manager.state_secret, now=time.time() - 61)
    refused = exchange(client, code)
    assert refused.status_code == 400 and refused.json()["reason"] == "cli_code_expired"


@needs_token_revocation
def test_code_is_redeemed_once(make_client, stub_op) -> None:
    client, _ = make_client()
    code = query_of(sign_in_from_terminal(client, stub_op))["code"]
    assert exchange(client, code).status_code == 201
    again = exchange(client, code)
    assert again.status_code == 400 and again.json()["reason"] == "cli_code_reused"


def test_several_providers_offer_a_chooser_that_keeps_the_terminal_request(make_client, stub_op, monkeypatch) -> None:
    prefix = "AIRFLOW__IDENTITY_AUTH_MANAGER_STAFF__"
    for key, value in (("ISSUER", stub_op.issuer), ("CLIENT_ID", "airflow"), ("CLIENT_SECRET", "s")):
        monkeypatch.setenv(prefix + key, value)
    monkeypatch.setenv(prefix + "ROLE_MAPPING", '{"airflow-admins": "Admin"}')
    monkeypatch.setenv(prefix + "DISPLAY_NAME", "Staff")
    client, _ = make_client(providers="staff")
    # One provider named "staff": no chooser, but its own callback.
    started = client.get("/auth/cli-login", params=cli_params())
    assert query_of(started.headers["location"])["redirect_uri"] == f"{BASE}/auth/callback/staff"
    assert client.get("/auth/cli-login/nobody", params=cli_params()).status_code == 404
    refused = client.get("/auth/cli-login/staff", params=cli_params(port="1"))
    assert refused.status_code == 400


def test_cli_login_chooser_links_carry_the_request(make_client, stub_op, monkeypatch) -> None:
    for name in ("staff", "contractors"):
        prefix = f"AIRFLOW__IDENTITY_AUTH_MANAGER_{name.upper()}__"
        for key, value in (("ISSUER", stub_op.issuer), ("CLIENT_ID", "airflow"), ("CLIENT_SECRET", "s")):
            monkeypatch.setenv(prefix + key, value)
        monkeypatch.setenv(prefix + "ROLE_MAPPING", '{"airflow-admins": "Admin"}')
        monkeypatch.setenv(prefix + "DISPLAY_NAME", name.title())
    client, _ = make_client(providers="staff,contractors")
    page = client.get("/auth/cli-login", params=cli_params())
    assert page.status_code == 200
    assert f"/auth/cli-login/contractors?port=50123&amp;state={CLI_STATE}" in page.text


@pytest.mark.parametrize("path", ["/auth/token/cli", "/auth/token"])
def test_password_login_gets_pointed_to_the_terminal_sign_in(make_client, path) -> None:
    """What `airflowctl auth login --username u --password p` sends, even with an old stored token as Bearer."""
    client, _ = make_client(api_audiences="api://airflow", display_name="Example SSO")
    for headers in ({}, {"Authorization": "Bearer old.airflow.token"}):
        refused = client.post(path, json={"username": "alice", "password": "secret"}, headers=headers)
        assert refused.status_code == 400
        body = refused.json()
        assert body["reason"] == "password_login_not_supported"
        assert "through Example SSO (single sign-on)" in body["detail"]
        assert f"airflow-sso-login --api-url {BASE}" in body["detail"]
        assert "[" not in body["detail"] and "secret" not in body["detail"]
    form = client.post(path, data={"username": "alice", "password": "secret"})
    assert form.json()["reason"] == "password_login_not_supported"
    # A machine's IdP token still goes its way.
    assert client.post(path, json={"assertion": ""}).json()["reason"] == "missing_assertion"


@pytest.mark.skipif(HAS_TOKEN_REVOCATION, reason="Airflow 3.2+ records each code's use (revoked_token)")
def test_without_a_revoked_token_table_reuse_is_bounded_by_expiry_and_verifier(make_client, stub_op, caplog) -> None:
    from airflow_identity_provider import version_compat

    version_compat._warned.discard("single_use_cli_code")
    client, _ = make_client()
    code = query_of(sign_in_from_terminal(client, stub_op))["code"]
    assert exchange(client, code).status_code == 201
    assert exchange(client, code).status_code == 201  # Airflow 3.1: nothing to record the use in
    assert exchange(client, code, secrets.token_urlsafe(64)).status_code == 400  # still needs the verifier
    assert "has no revoked_token table" in caplog.text


def test_a_code_whose_use_cannot_be_recorded_is_not_redeemed(make_client, stub_op, monkeypatch) -> None:
    from airflow_identity_provider import version_compat

    def database_down(jti: str, expires_at: float) -> bool:
        raise RuntimeError("database is down")

    client, _ = make_client()
    code = query_of(sign_in_from_terminal(client, stub_op))["code"]
    monkeypatch.setattr(version_compat, "claim_once", database_down)
    refused = exchange(client, code)
    assert refused.status_code == 503 and refused.json()["reason"] == "cli_code_unrecorded"


def test_password_login_names_the_provider_without_a_display_name(make_client, stub_op) -> None:
    client, _ = make_client()
    detail = client.post("/auth/token/cli", json={"username": "a", "password": "b"}).json()["detail"]
    assert f"through the identity provider at {urlsplit(stub_op.issuer).netloc} (single sign-on)" in detail
