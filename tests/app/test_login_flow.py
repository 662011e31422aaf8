"""The sign-in round trip through the sub-app, against a stub provider on loopback (see tests/support/stub_op.py)."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import jwt as pyjwt
import pytest

from airflow_identity_provider.auth.idp.oidc import IdpUnavailable
from tests.app.conftest import BASE, start_login


def test_login_redirects_with_state_nonce_and_pkce(make_client, stub_op) -> None:
    client, _ = make_client()
    params = start_login(client, f"{BASE}/dags")
    assert params["response_type"] == "code"
    assert params["client_id"] == "airflow"
    assert params["redirect_uri"] == f"{BASE}/auth/callback"
    assert params["code_challenge_method"] == "S256"
    assert len(params["state"]) >= 32 and len(params["nonce"]) >= 32
    cookie = client.cookies.get("_identity_login")
    assert cookie and params["state"] not in cookie  # signed, and not readable as plain state


def test_redirect_uri_ignores_host_header(make_client) -> None:
    client, _ = make_client()
    response = client.get("/auth/login", headers={"Host": "evil.example"})
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fauth%2Fcallback" in response.headers["location"]


def test_callback_sets_small_airflow_jwt_and_returns_to_next(make_client, stub_op) -> None:
    client, _manager = make_client()
    params = start_login(client, f"{BASE}/dags/example?tab=runs")
    seen_forms: list[dict[str, list[str]]] = []

    def token(form: dict[str, list[str]]) -> tuple[int, dict[str, object]]:
        seen_forms.append(form)
        return 200, {"id_token": stub_op.sign(stub_op.claims(nonce=params["nonce"])), "token_type": "Bearer"}

    stub_op.token_response = token
    response = client.get("/auth/callback", params={"code": "c1", "state": params["state"]})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"{BASE}/dags/example?tab=runs"
    # PKCE: the verifier sent to the token endpoint hashes to the challenge sent to the authorize endpoint.
    verifier = seen_forms[0]["code_verifier"][0]
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert digest == params["code_challenge"]
    token = response.cookies.get("_token") or client.cookies.get("_token")
    assert token
    claims = pyjwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "alice" and claims["role"] == "Admin"
    # Only the groups some setting names travel in the cookie (4 KB): here the one role_mapping names.
    assert claims["groups"] == ["airflow-admins"] and claims["roles"] == ["Admin"]
    set_cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("_token="))
    assert "HttpOnly" in set_cookie and "Path=/" in set_cookie and "Secure" not in set_cookie


def test_highest_mapped_role_wins(make_client, stub_op) -> None:
    client, _ = make_client()
    params = start_login(client)
    stub_op.respond_with_id_token(
        stub_op.sign(stub_op.claims(nonce=params["nonce"], groups=["airflow-viewers", "airflow-ops"]))
    )
    response = client.get("/auth/callback", params={"code": "c", "state": params["state"]})
    claims = pyjwt.decode(response.cookies["_token"], options={"verify_signature": False})
    assert claims["role"] == "Op"


def test_unmapped_user_gets_403_page_not_a_redirect(make_client, stub_op) -> None:
    client, _ = make_client()
    params = start_login(client)
    stub_op.respond_with_id_token(stub_op.sign(stub_op.claims(nonce=params["nonce"], groups=["marketing"])))
    response = client.get("/auth/callback", params={"code": "c", "state": params["state"]})
    assert response.status_code == 403
    assert "marketing" in response.text and "role_mapping" in response.text
    assert "_token" not in response.cookies


def test_default_role_applies_to_unmapped_user(make_client, stub_op) -> None:
    client, _ = make_client(default_role="Viewer")
    params = start_login(client)
    stub_op.respond_with_id_token(stub_op.sign(stub_op.claims(nonce=params["nonce"], groups=["marketing"])))
    response = client.get("/auth/callback", params={"code": "c", "state": params["state"]})
    assert pyjwt.decode(response.cookies["_token"], options={"verify_signature": False})["role"] == "Viewer"


def test_malformed_group_claim_is_refused_even_with_default_role(make_client, stub_op) -> None:
    client, _ = make_client(default_role="Viewer")
    params = start_login(client)
    stub_op.respond_with_id_token(stub_op.sign(stub_op.claims(nonce=params["nonce"], groups={"admins": True})))
    response = client.get("/auth/callback", params={"code": "c", "state": params["state"]})
    assert response.status_code == 403
    assert "malformed_groups_claim" in response.text
    assert "_token" not in response.cookies


@pytest.mark.parametrize(
    "next_url", ["http://evil.example/", "//evil.example/x", "javascript:alert(1)", "https:\\\\evil.example"]
)
def test_unsafe_next_is_refused(make_client, next_url: str) -> None:
    client, _ = make_client()
    response = client.get("/auth/login", params={"next": next_url})
    assert response.status_code == 400
    assert "location" not in response.headers


def test_state_mismatch_refused(make_client, stub_op) -> None:
    client, _ = make_client()
    params = start_login(client)
    stub_op.respond_with_id_token(stub_op.sign(stub_op.claims(nonce=params["nonce"])))
    response = client.get("/auth/callback", params={"code": "c", "state": "forged"})
    assert response.status_code == 400 and "state_mismatch" in response.text
    assert "_token" not in response.cookies


def test_callback_without_login_cookie_is_refused_without_loop(make_client) -> None:
    client, _ = make_client()
    response = client.get("/auth/callback", params={"code": "c", "state": "s"})
    assert response.status_code == 400
    assert "missing_login_state" in response.text
    assert "location" not in response.headers


def test_tampered_login_cookie_is_refused(make_client, stub_op) -> None:
    client, _ = make_client()
    params = start_login(client)
    cookie = client.cookies["_identity_login"]
    client.cookies.set("_identity_login", cookie[:-4] + "AAAA", domain="127.0.0.1", path="/auth")
    response = client.get("/auth/callback", params={"code": "c", "state": params["state"]})
    assert response.status_code == 400 and "bad_login_state" in response.text


def test_rfc9207_iss_parameter_must_match(make_client, stub_op) -> None:
    client, _ = make_client()
    params = start_login(client)
    stub_op.respond_with_id_token(stub_op.sign(stub_op.claims(nonce=params["nonce"])))
    response = client.get(
        "/auth/callback", params={"code": "c", "state": params["state"], "iss": "https://other-idp.example"}
    )
    assert response.status_code == 400 and "issuer_mismatch" in response.text


def test_idp_error_response_is_shown(make_client) -> None:
    client, _ = make_client()
    params = start_login(client)
    response = client.get(
        "/auth/callback",
        params={"state": params["state"], "error": "access_denied", "error_description": "user cancelled"},
    )
    assert response.status_code == 403
    assert "access_denied" in response.text and "user cancelled" in response.text


def test_code_rejected_by_idp_is_explained(make_client, stub_op) -> None:
    client, _ = make_client()
    params = start_login(client)
    stub_op.token_response = lambda form: (400, {"error": "invalid_grant", "error_description": "code used"})
    response = client.get("/auth/callback", params={"code": "c", "state": params["state"]})
    assert response.status_code == 400 and "invalid_grant" in response.text


def test_unreachable_idp_gives_503_page_naming_it(make_client, stub_op) -> None:
    client, _ = make_client(issuer="http://127.0.0.1:9")  # discard port: nothing listens
    response = client.get("/auth/login")
    assert response.status_code == 503
    assert "http://127.0.0.1:9/.well-known/openid-configuration" in response.text


def test_logout_clears_cookie_and_ends_idp_session(make_client, stub_op) -> None:
    client, _ = make_client()
    params = start_login(client)
    id_token = stub_op.sign(stub_op.claims(nonce=params["nonce"]))
    stub_op.respond_with_id_token(id_token)
    assert client.get("/auth/callback", params={"code": "c", "state": params["state"]}).status_code == 303
    response = client.get("/auth/logout")
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{stub_op.issuer}/logout"
    assert query["id_token_hint"] == [id_token]
    assert query["post_logout_redirect_uri"] == [f"{BASE}/auth/logged-out"]
    cleared = [h for h in response.headers.get_list("set-cookie") if h.startswith("_token=")]
    assert cleared and all("Max-Age=0" in h for h in cleared)
    assert any("Path=/" in h for h in cleared)
    assert client.get("/auth/logged-out").status_code == 200


def test_logout_without_idp_session_support_shows_page(make_client, stub_op, monkeypatch) -> None:
    client, manager = make_client()
    monkeypatch.setattr(
        type(manager.provider), "metadata", lambda self: (_ for _ in ()).throw(IdpUnavailable("u", "down"))
    )
    response = client.get("/auth/logout")
    assert response.status_code == 200 and "Signed out" in response.text
    assert any(h.startswith("_token=") for h in response.headers.get_list("set-cookie"))


def test_warm_login_makes_one_idp_call(make_client, stub_op) -> None:
    client, manager = make_client()
    for _ in range(2):
        params = start_login(client)
        stub_op.respond_with_id_token(stub_op.sign(stub_op.claims(nonce=params["nonce"])))
        before = manager.provider.http_calls
        assert client.get("/auth/callback", params={"code": "c", "state": params["state"]}).status_code == 303
    # Cold: discovery + keys + token; warm: the token exchange only.
    assert manager.provider.http_calls - before == 1
    assert urlsplit(stub_op.issuer).hostname == "127.0.0.1"


def test_unreachable_idp_is_not_retried_on_every_request(make_client) -> None:
    client, manager = make_client(issuer="http://127.0.0.1:9")
    for _ in range(3):
        assert client.get("/auth/login").status_code == 503
    # The failure is remembered for a few seconds, so an outage does not queue requests behind timeouts.
    assert manager.provider.http_calls == 1


def test_audit_values_cannot_forge_log_lines() -> None:
    import json

    from airflow_identity_provider.auth.rules.audit import emit

    line = emit("login", outcome="failure", reason="unsafe_next", next='/x\n{"event": "login", "roles": ["Admin"]}')
    assert "\n" not in line
    assert json.loads(line)["next"] == '/x\n{"event": "login", "roles": ["Admin"]}'  # one value, not a 2nd event
