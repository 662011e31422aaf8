"""IdP access tokens straight on /api/v2 (Airflow 3.3+): the middleware in front of Airflow's own get_user.

The app is built the way Airflow's ``init_middlewares`` builds the api-server's: the real core ``get_user``
dependency behind the real ``JWTRefreshMiddleware``, with what ``get_fastapi_middlewares`` returns added after it
(so it runs first). Tokens come from the stub OP, as in test_machine_tokens.py.
"""

from __future__ import annotations

import time
from typing import Any

import jwt as pyjwt
import pytest
from airflow.api_fastapi import app as airflow_app
from airflow.api_fastapi.auth.middlewares.refresh_token import JWTRefreshMiddleware
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from airflow_identity_provider.auth.idp.oidc import OidcProvider
from airflow_identity_provider.auth.manager import IdentityAuthManager
from airflow_identity_provider.auth.routes.bearer import IdpBearerMiddleware
from airflow_identity_provider.auth.routes.request_context import AuditContextMiddleware
from airflow_identity_provider.auth.rules.user import IdentityUser
from tests.app.conftest import BASE
from tests.app.test_entra_jumpcloud import OID, TENANT
from tests.app.test_machine_tokens import MAPPING, access_claims
from tests.support.versions import needs_idp_bearer

pytestmark = needs_idp_bearer


def api_app(manager: IdentityAuthManager, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr(airflow_app._AuthManagerState, "instance", manager)  # what get_auth_manager() returns
    app = FastAPI()
    auth_app = manager.get_fastapi_app()
    assert auth_app is not None
    app.mount("/auth", auth_app)

    def whoami(request: Request, user: GetUserDep) -> dict[str, Any]:
        assert isinstance(user, IdentityUser)
        return {
            "claims": user.to_claims(),
            "authorization": request.headers.get("authorization"),
            "cookie": request.headers.get("cookie"),
            "variables": manager.is_authorized_variable(method="GET", user=user),
        }

    app.get("/api/v2/whoami")(whoami)
    app.get("/ui/whoami")(whoami)
    app.add_middleware(JWTRefreshMiddleware)  # the order of airflow.api_fastapi.core_api.app.init_middlewares
    for middleware, kwargs in manager.get_fastapi_middlewares():
        app.add_middleware(middleware, **kwargs)
    return TestClient(app, base_url=BASE, follow_redirects=False)


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each IdP access-token validation (signature and claims), by the subject it found."""
    seen: list[str] = []
    validate = OidcProvider.validate_access_token

    def counting(self: OidcProvider, token: str) -> dict[str, Any]:
        claims = validate(self, token)
        seen.append(str(claims.get("sub")))
        return claims

    monkeypatch.setattr(OidcProvider, "validate_access_token", counting)
    return seen


@pytest.fixture
def api(make_client, monkeypatch: pytest.MonkeyPatch):
    def build(**settings: str) -> tuple[TestClient, IdentityAuthManager]:
        _, manager = make_client(**{"api_audiences": "api://airflow", "role_mapping": MAPPING, **settings})
        return api_app(manager, monkeypatch), manager

    return build


def call(client: TestClient, token: str, path: str = "/api/v2/whoami", **kwargs: Any):
    return client.get(path, headers={"Authorization": f"Bearer {token}"}, **kwargs)


def assert_refused(response, reason: str, status: int = 401) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["reason"] == reason and body["detail"]
    if status == 401:
        assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    return body


def test_service_principal_token_is_the_user_and_is_not_shown_to_the_core(api, stub_op) -> None:
    client, _ = api()
    response = call(client, stub_op.sign(access_claims(stub_op)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["claims"]["sub"] == "svc-etl" and body["claims"]["roles"] == ["Op"]
    assert body["variables"] is True  # Op reads variables
    assert body["authorization"] is None  # removed: the core would validate it as an Airflow JWT (403)


def test_same_user_as_the_exchange_builds(api, stub_op, validations) -> None:
    client, manager = api()
    issued_at = int(time.time()) - 120
    token = stub_op.sign(access_claims(stub_op, iat=issued_at))
    direct = call(client, token).json()["claims"]
    exchanged = client.post("/auth/token", headers={"Authorization": f"Bearer {token}"})
    assert exchanged.status_code == 201, exchanged.text
    claims = pyjwt.decode(exchanged.json()["access_token"], options={"verify_signature": False})
    through_jwt = manager.deserialize_user(claims).to_claims()
    assert direct == through_jwt
    # The principal proved itself at the IdP when the token was issued, not when it reached Airflow: the
    # directory check and api_token_max_age compare with that, however often the token is presented.
    assert direct["auth_time"] == issued_at
    assert validations == ["svc-etl", "svc-etl"]  # /auth/token is not the middleware's: it validated itself


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"aud": "api://other"}, "invalid_aud"),
        ({"iss": "http://127.0.0.1:1"}, "invalid_issuer"),
        ({"exp": int(time.time()) - 600}, "expired"),
        ({"sub": None}, "missing_sub"),
    ],
)
def test_bad_tokens_are_refused_with_the_exchanges_reason(api, stub_op, overrides, reason: str) -> None:
    client, _ = api()
    body = assert_refused(call(client, stub_op.sign(access_claims(stub_op, **overrides))), reason)
    if reason == "invalid_aud":
        assert "api_audiences" in body["detail"]  # what to change


def test_valid_token_without_a_mapped_role_is_forbidden(api, stub_op) -> None:
    client, _ = api()
    assert_refused(call(client, stub_op.sign(access_claims(stub_op, roles=["Airflow.Unknown"]))), "no_mapped_role", 403)


def test_client_not_in_api_client_ids(api, stub_op) -> None:
    client, _ = api(api_client_ids="svc-ml")
    body = assert_refused(call(client, stub_op.sign(access_claims(stub_op))), "client_not_allowed")
    assert "api_client_ids" in body["detail"]


def test_token_of_another_tenant(api, stub_op) -> None:
    client, _ = api(idp="entra", tenant_id=TENANT, issuer=f"{stub_op.issuer}/{TENANT}/v2.0")
    other = "0a1b2c3d-1111-2222-3333-444455556666"
    token = stub_op.sign(access_claims(stub_op, iss=f"https://sts.windows.net/{other}/", tid=other, oid=OID))
    assert_refused(call(client, token), "entra_tenant_not_allowed")
    mine = stub_op.sign(access_claims(stub_op, iss=f"https://sts.windows.net/{TENANT}/", tid=TENANT, oid=OID))
    assert call(client, mine).json()["claims"]["sub"] == f"{TENANT}:{OID}"


def test_id_tokens_are_not_access_tokens(api, stub_op) -> None:
    client, _ = api(api_audiences="airflow,api://airflow", role_mapping='{"airflow-admins": "Admin"}')
    assert_refused(call(client, stub_op.sign(stub_op.claims(nonce="n"))), "id_token_not_accepted")
    # Nonce-less (refresh, token endpoint): addressed to the sign-in client and not typ at+jwt.
    assert_refused(call(client, stub_op.sign(stub_op.claims(nonce=None))), "ambiguous_id_token")


def test_not_a_jwt_is_refused_not_anonymous(api) -> None:
    client, _ = api()
    assert_refused(call(client, "opaque-token"), "malformed_token")


def test_second_request_is_a_cache_hit(api, stub_op, validations) -> None:
    client, manager = api()
    token = stub_op.sign(access_claims(stub_op))
    for _ in range(5):
        assert call(client, token).status_code == 200
    assert validations == ["svc-etl"]
    calls = manager.provider.http_calls  # type: ignore[attr-defined]
    assert call(client, token).status_code == 200 and manager.provider.http_calls == calls  # type: ignore[attr-defined]
    other = stub_op.sign(access_claims(stub_op, jti="another"))
    assert call(client, other).status_code == 200 and validations == ["svc-etl", "svc-etl"]


def test_the_per_request_user_check_runs_on_cache_hits(api, stub_op, monkeypatch: pytest.MonkeyPatch) -> None:
    """A disabled principal is refused at once, though its token was validated (and cached) before."""
    client, manager = api()
    token = stub_op.sign(access_claims(stub_op))
    assert call(client, token).status_code == 200

    def disabled(user: IdentityUser) -> IdentityUser:
        raise ValueError(f"{user.user_id} is disabled in the directory")

    monkeypatch.setattr(manager, "check_user", disabled)
    body = assert_refused(call(client, token), "user_refused")
    assert "disabled in the directory" in body["detail"]


def test_airflow_jwt_passes_through_untouched(api, validations) -> None:
    client, manager = api()
    alice = IdentityUser("alice", "Alice", "", ("Viewer",), auth_time=int(time.time()), idp="default")
    airflow_token = manager.generate_jwt(alice)
    response = call(client, airflow_token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["claims"]["sub"] == "alice" and body["authorization"] == f"Bearer {airflow_token}"
    assert body["variables"] is False and validations == []
    forged = airflow_token[:-4] + ("AAAA" if not airflow_token.endswith("AAAA") else "BBBB")
    assert call(client, forged).status_code == 403  # the core's own answer: "Invalid JWT token"
    assert validations == []


def test_explicit_bearer_wins_over_the_session_cookie(api, stub_op) -> None:
    client, manager = api()
    session = manager.generate_jwt(
        IdentityUser("alice", "Alice", "", ("Admin",), auth_time=int(time.time()), idp="default")
    )
    client.cookies.set("_token", session)
    client.cookies.set("other", "kept")
    body = call(client, stub_op.sign(access_claims(stub_op))).json()
    assert body["claims"]["sub"] == "svc-etl" and body["cookie"] == "other=kept"
    assert client.get("/api/v2/whoami").json()["claims"]["sub"] == "alice"  # the cookie alone: the session user


def test_only_api_v2_is_intercepted(api, stub_op, validations) -> None:
    client, _ = api()
    token = stub_op.sign(access_claims(stub_op))
    assert call(client, token, "/ui/whoami").status_code == 403  # the core's answer to a non-Airflow JWT
    assert client.post("/auth/token", headers={"Authorization": f"Bearer {token}"}).status_code == 201
    assert validations == ["svc-etl"]  # only the exchange validated


def test_not_registered_without_api_audiences(make_client) -> None:
    _, manager = make_client(role_mapping=MAPPING)
    assert [m for m, _ in manager.get_fastapi_middlewares()] == [AuditContextMiddleware]  # the audit context only


def test_registered_with_the_cores_marker(api) -> None:
    from airflow.api_fastapi.core_api.security import USER_INJECTED_BY_TRUSTED_MIDDLEWARE

    _, manager = api()
    [(middleware, kwargs), (audit_context, _)] = manager.get_fastapi_middlewares()
    assert audit_context is AuditContextMiddleware  # last, so outermost: the Bearer refusals carry the caller
    assert middleware is IdpBearerMiddleware and kwargs["trusted_marker"] is USER_INJECTED_BY_TRUSTED_MIDDLEWARE


@pytest.mark.parametrize(
    ("path", "root_path", "intercepted"),
    [
        ("/api/v2/dags", "", True),
        ("/airflow/api/v2/dags", "/airflow", True),  # a sub-path deployment ([api] base_url .../airflow/)
        ("/api/v2/dags", "/airflow", True),  # the proxy stripped the sub-path
        ("/auth/token", "", False),
        ("/execution/task-instances/x/run", "", False),
        ("/ui/dags", "", False),
        ("/api/v2x/dags", "", False),
    ],
)
def test_which_paths_are_the_apis(path: str, root_path: str, intercepted: bool) -> None:
    from airflow_identity_provider.auth.routes.bearer import _idp_bearer

    scope = {"type": "http", "path": path, "root_path": root_path, "headers": [(b"authorization", b"Bearer x.y.z")]}
    assert (_idp_bearer(scope, ()) is not None) is intercepted
