"""A real api-server whose api_audiences lists the sign-in client_id, and the real npm oidc-provider.

The attacker holds a user's ID token that carries no nonce / at_hash / c_hash / auth_time: oidc-provider
issues exactly that at the token endpoint when the authorization request sent no nonce, and again on
every refresh of such a grant. It must not buy an Airflow API token with that user's role.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest

from dev.idp.local_idp import GROUPS_SCOPES, SERVICE_CLIENT_ID, SERVICE_CLIENT_SECRET
from tests.support.deployment import Deployment, local_deployment
from tests.support.idp_tokens import authorization_code_grant, refresh_grant

pytestmark = pytest.mark.integration

ID_TOKEN_CLAIMS = ("nonce", "at_hash", "c_hash", "auth_time")


@pytest.fixture(scope="module")
def shared_audience(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    # The API and the sign-in share one registration: client_id "airflow" is also an API audience.
    extra = {"AIRFLOW__IDENTITY_AUTH_MANAGER__API_AUDIENCES": "api://airflow,airflow"}
    with local_deployment(tmp_path_factory.mktemp("airflow_home_shared_aud"), extra) as running:
        yield running


def _segment(token: str, index: int) -> dict[str, object]:
    part = token.split(".")[index]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def nonce_less_tokens(deployment: Deployment, username: str) -> dict[str, str]:
    """Act as the Airflow client (its secret is the attacker's least concern here): authorize without a
    nonce, redeem the code, then refresh. Returns the code-exchange and the refreshed ID tokens."""
    idp = deployment.idp
    first = authorization_code_grant(
        idp, username, redirect_uri=f"{deployment.url}/auth/callback", scope=" ".join(GROUPS_SCOPES), nonce=False
    ).json()
    refreshed = refresh_grant(idp, first["refresh_token"]).json()
    return {"code exchange": first["id_token"], "refresh": refreshed["id_token"]}


def test_nonce_less_id_token_from_the_real_idp_buys_no_airflow_token(shared_audience: Deployment) -> None:
    for issued_at, id_token in nonce_less_tokens(shared_audience, "alice").items():
        claims, header = _segment(id_token, 1), _segment(id_token, 0)
        # The shape that used to pass: addressed to the API audience "airflow", none of the ID-token markers.
        assert claims["aud"] == "airflow" and not set(ID_TOKEN_CLAIMS) & set(claims), (issued_at, claims)
        assert "typ" not in header and claims.get("azp") in (None, "airflow"), (issued_at, header)
        assert "airflow-admins" in claims["groups"]  # would have been an Admin token
        for path in ("/auth/token", "/auth/token/cli"):
            response = httpx.post(f"{shared_audience.url}{path}", headers={"Authorization": f"Bearer {id_token}"})
            assert response.status_code == 401, (issued_at, path, response.text)
            body = response.json()
            assert body["reason"] == "ambiguous_id_token" and "access_token" not in body
            assert "api_audiences" in body["detail"] and "at+jwt" in body["detail"]


def test_rfc9068_access_token_still_works_with_the_shared_audience(shared_audience: Deployment) -> None:
    idp_token = httpx.post(
        shared_audience.idp.token_endpoint,
        data={"grant_type": "client_credentials", "scope": "airflow.api"},
        auth=(SERVICE_CLIENT_ID, SERVICE_CLIENT_SECRET),
    ).json()["access_token"]
    assert _segment(idp_token, 0)["typ"] == "at+jwt"
    exchanged = httpx.post(f"{shared_audience.url}/auth/token", headers={"Authorization": f"Bearer {idp_token}"})
    assert exchanged.status_code == 201, exchanged.text


def test_api_server_start_warns_about_the_shared_audience(shared_audience: Deployment) -> None:
    log = shared_audience.server.component.log_tail(1_000_000)
    warning = "[identity_auth_manager] api_audiences: includes the sign-in client_id 'airflow'"
    assert log.count(warning) == 1, log[-3000:]
