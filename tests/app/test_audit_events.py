"""Audit events of the real sub-app against the stub provider: a sign-in (with the caller's address behind a
trusted proxy, its user agent and request id), the token it issues, a refusal, a machine token, a logout and
authorization denials. Every secret of the round trip is searched for in the raw text of every log record."""

from __future__ import annotations

import logging
import secrets

import pytest
from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from airflow_identity_provider.auth.rules import audit
from airflow_identity_provider.auth.rules.user import IdentityUser
from tests.app.conftest import BASE, start_login
from tests.app.test_machine_tokens import MAPPING, access_claims
from tests.support.audit import audit_events

PROXY, CLIENT_IP = ("10.0.0.4", 50123), "198.51.100.7"
HEADERS = {"X-Forwarded-For": f"203.0.113.66, {CLIENT_IP}", "User-Agent": "Mozilla/5.0 (audit test)"}


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # every logger, every level: nothing may carry a secret
    return caplog


@pytest.fixture(autouse=True)
def fresh_denials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "DENIALS", audit.RateLimiter())


def behind_proxy(client: TestClient) -> TestClient:
    """The same app, reached from a trusted proxy's address (the stub client's peer is 'testclient')."""
    return TestClient(client.app, base_url=BASE, follow_redirects=False, client=PROXY)


def test_sign_in_emits_login_and_token_with_the_caller_and_no_secret(make_client, stub_op, all_logs) -> None:
    client_secret = "cs-" + secrets.token_urlsafe(18)
    client, _ = make_client(client_secret=client_secret, trusted_proxies="10.0.0.0/8")
    client = behind_proxy(client)
    params = start_login(client)
    login_cookie = client.cookies.get("_identity_login")
    id_token = stub_op.sign(stub_op.claims(nonce=params["nonce"], groups=["airflow-ops", "marketing"]))
    access_token = "at-" + secrets.token_urlsafe(24)
    stub_op.token_response = {"access_token": access_token, "token_type": "Bearer", "id_token": id_token}
    code = "code-" + secrets.token_urlsafe(12)
    response = client.get(
        "/auth/callback",
        params={"code": code, "state": params["state"]},
        headers={**HEADERS, "X-Request-ID": "req-42"},
    )
    assert response.status_code == 303, response.text
    assert response.headers["x-request-id"] == "req-42"
    airflow_token, id_cookie = client.cookies.get("_token"), client.cookies.get("_identity_id_token")
    assert airflow_token and id_cookie and login_cookie

    login, token = audit_events(all_logs, "login"), audit_events(all_logs, "token")
    assert len(login) == 1 and len(token) == 1
    who = {"user_id": "alice", "user_name": "Alice", "idp": "default"}
    context = {"client_ip": CLIENT_IP, "user_agent": "Mozilla/5.0 (audit test)", "request_id": "req-42"}
    assert login[0].items() >= {**who, **context, "outcome": "success", "kind": "browser"}.items()
    assert login[0]["roles"] == ["Op"] and login[0]["role_sources"] == {"Op": ["airflow-ops"]}
    assert login[0]["groups"] == ["airflow-ops"] and login[0]["groups_claim"] == "groups"  # marketing: unnamed
    assert token[0].items() >= {**who, **context, "outcome": "success", "kind": "browser", "lifetime": 86400}.items()

    client.get("/auth/logout", headers=HEADERS)
    assert audit_events(all_logs, "logout")[0]["client_ip"] == CLIENT_IP
    text = all_logs.text
    for name, value in {
        "id token": id_token,
        "id token signature": id_token.rsplit(".", 1)[1],
        "IdP access token": access_token,
        "client secret": client_secret,
        "authorization code": code,
        "Airflow token cookie": airflow_token,
        "Airflow token signature": airflow_token.rsplit(".", 1)[1],
        "id token cookie": id_cookie,
        "login state cookie": login_cookie,
    }.items():
        assert value not in text, f"the {name} is in the logs"


def test_spoofed_forwarded_for_is_ignored_without_trusted_proxies(make_client, stub_op, caplog) -> None:
    client, _ = make_client()
    caplog.set_level(logging.INFO, logger=audit.AUDIT_LOGGER)
    behind_proxy(client).get("/auth/login?next=https://evil.example/", headers=HEADERS)
    (refused,) = audit_events(caplog, "login")
    assert (refused["outcome"], refused["reason"], refused["client_ip"]) == ("failure", "unsafe_next", PROXY[0])


def test_no_role_refusal_names_the_claim_and_its_values(make_client, stub_op, caplog) -> None:
    client, _ = make_client()
    params = start_login(client)
    stub_op.respond_with_id_token(stub_op.sign(stub_op.claims(nonce=params["nonce"], groups=["marketing", "hr"])))
    caplog.set_level(logging.INFO, logger=audit.AUDIT_LOGGER)
    response = client.get("/auth/callback", params={"code": "c", "state": params["state"]})
    assert response.status_code == 403
    (refused,) = audit_events(caplog, "login")
    assert refused.items() >= {"outcome": "failure", "reason": "no_mapped_role", "user_id": "alice"}.items()
    assert refused["groups"] == ["marketing", "hr"] and refused["groups_claim"] == "groups"
    assert f"Request id: {refused['request_id']}" in response.text  # what to search the SIEM for


def test_machine_token_event_has_kind_and_lifetime_and_no_token(make_client, stub_op, all_logs) -> None:
    client, _ = make_client(api_audiences="api://airflow", role_mapping=MAPPING)
    idp_token = stub_op.sign(access_claims(stub_op))
    response = client.post("/auth/token", headers={"Authorization": f"Bearer {idp_token}"})
    assert response.status_code == 201, response.text
    bad = stub_op.sign(access_claims(stub_op, aud="api://other"))
    assert client.post("/auth/token/cli", data={"assertion": bad}).status_code == 401
    issued, refused = audit_events(all_logs, "token")
    assert issued.items() >= {"outcome": "success", "kind": "machine", "user_id": "svc-etl"}.items()
    assert 0 < issued["lifetime"] <= 600 and issued["role_sources"] == {"Op": ["Airflow.Op"]}
    assert (refused["outcome"], refused["reason"]) == ("failure", "invalid_aud")
    for value in (idp_token, bad, response.json()["access_token"]):
        assert value.rsplit(".", 1)[1] not in all_logs.text


def test_denials_are_audited_once_per_minute(make_client, caplog) -> None:
    _, manager = make_client()
    viewer = IdentityUser("bob", "Bob", "", ("Viewer",), idp="default")
    caplog.set_level(logging.INFO, logger=audit.AUDIT_LOGGER)
    for _ in range(20):
        assert not manager.is_authorized_variable(method="PUT", user=viewer)
    assert manager.is_authorized_dag(method="GET", user=viewer)  # allowed: no event
    assert not manager.is_authorized_dag(method="POST", user=viewer, access_entity=_run_entity(), details=None)
    denials = audit_events(caplog, "authorization")
    assert [(d["resource"], d["method"]) for d in denials] == [("variable", "PUT"), ("dag.run", "POST")]
    assert denials[0].items() >= {"outcome": "failure", "reason": "not_permitted", "user_id": "bob"}.items()


def _run_entity() -> object:
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity

    return DagAccessEntity.RUN


@pytest.mark.skipif(
    not hasattr(BaseAuthManager, "get_fastapi_middlewares"), reason="auth-manager middlewares came with Airflow 3.3"
)
def test_api_wide_middleware_gives_denials_the_caller(make_client, caplog) -> None:
    """On 3.3 the manager's middleware wraps Airflow's whole API: a denial on /api/v2 names the caller."""
    _, manager = make_client(trusted_proxies="10.0.0.0/8")
    app = FastAPI()
    viewer = IdentityUser("bob", "Bob", "", ("Viewer",), idp="default")

    @app.delete("/api/v2/variables/x")
    def delete_variable(request: Request) -> dict[str, bool]:
        return {"allowed": manager.is_authorized_variable(method="DELETE", user=viewer)}

    for middleware, kwargs in manager.get_fastapi_middlewares():  # as airflow.api_fastapi.core_api.app does
        app.add_middleware(middleware, **kwargs)
    caplog.set_level(logging.INFO, logger=audit.AUDIT_LOGGER)
    response = TestClient(app, client=PROXY).delete("/api/v2/variables/x", headers=HEADERS)
    assert response.json() == {"allowed": False}
    (denial,) = audit_events(caplog, "authorization")
    assert denial["client_ip"] == CLIENT_IP and denial["request_id"] == response.headers["x-request-id"]
