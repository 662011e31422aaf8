"""An IdP access token sent straight to a real api-server's /api/v2 (Airflow 3.3+), and the exchange beside it.

The service principal ``svc-etl`` of the real local IdP gets a client-credentials token for the Airflow API; its
app role ``Airflow.Op`` maps to Op (tests/support/deployment.py). Before 3.3 the exchange is the only way in.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from dev.idp.local_idp import SERVICE_CLIENT_ID, SERVICE_CLIENT_SECRET
from tests.support.deployment import Deployment, local_deployment
from tests.support.idp_tokens import client_credentials_token
from tests.support.versions import HAS_IDP_BEARER, needs_idp_bearer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with local_deployment(tmp_path_factory.mktemp("airflow_home")) as running:
        yield running


@pytest.fixture(scope="module")
def idp_token(deployment: Deployment) -> str:
    return client_credentials_token(deployment.idp, SERVICE_CLIENT_ID, SERVICE_CLIENT_SECRET)


def get(deployment: Deployment, path: str, token: str) -> httpx.Response:
    return httpx.get(f"{deployment.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)


@needs_idp_bearer
def test_idp_access_token_straight_on_the_api_with_the_mapped_role(deployment: Deployment, idp_token: str) -> None:
    dags = get(deployment, "/api/v2/dags", idp_token)
    assert dags.status_code == 200, dags.text
    assert "dags" in dags.json()
    assert get(deployment, "/api/v2/variables", idp_token).status_code == 200  # Op
    assert get(deployment, "/api/v2/config", idp_token).status_code == 403  # not Admin


@needs_idp_bearer
def test_bad_tokens_get_a_401_with_the_reason(deployment: Deployment, idp_token: str) -> None:
    tampered = idp_token[:-4] + ("AAAA" if not idp_token.endswith("AAAA") else "BBBB")
    for token, reason in ((tampered, "bad_signature"), ("not-a-jwt", "malformed_token")):
        response = get(deployment, "/api/v2/dags", token)
        assert response.status_code == 401, response.text
        assert response.json()["reason"] == reason and response.headers["www-authenticate"].startswith("Bearer")


def test_the_exchange_still_works(deployment: Deployment, idp_token: str) -> None:
    exchanged = httpx.post(f"{deployment.url}/auth/token", headers={"Authorization": f"Bearer {idp_token}"})
    assert exchanged.status_code == 201, exchanged.text
    airflow_token = exchanged.json()["access_token"]
    assert get(deployment, "/api/v2/dags", airflow_token).status_code == 200  # an Airflow JWT: the core's
    assert get(deployment, "/api/v2/config", airflow_token).status_code == 403


@pytest.mark.skipif(HAS_IDP_BEARER, reason="Airflow 3.3+ accepts IdP tokens on /api/v2")
def test_before_3_3_the_core_refuses_idp_tokens_and_start_says_why(deployment: Deployment, idp_token: str) -> None:
    assert get(deployment, "/api/v2/dags", idp_token).status_code == 403  # "Invalid JWT token", never anonymous
    log = deployment.server.component.log_tail(1_000_000)
    assert "exchange them at POST /auth/token first" in log, log[-3000:]
