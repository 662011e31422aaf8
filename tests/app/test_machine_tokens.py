"""POST /auth/token: IdP access tokens of service principals / managed identities -> Airflow API tokens."""

from __future__ import annotations

import time

import jwt as pyjwt
import pytest

from tests.app.test_entra_jumpcloud import OID, TENANT

MAPPING = '{"Airflow.Op": "Op", "Airflow.Admin": "Admin"}'


def access_claims(stub_op, **overrides):
    now = int(time.time())
    claims = {
        "iss": stub_op.issuer,
        "sub": "svc-etl",
        "aud": "api://airflow",
        "iat": now,
        "exp": now + 600,
        "azp": "svc-etl",
        "idtyp": "app",
        "roles": ["Airflow.Op"],
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.fixture
def machine_client(make_client):
    client, _ = make_client(api_audiences="api://airflow", role_mapping=MAPPING, default_role="Admin")
    return client


def exchange(client, token: str, path: str = "/auth/token"):
    return client.post(path, headers={"Authorization": f"Bearer {token}"})


def test_service_principal_token_exchanged_for_airflow_token(machine_client, stub_op) -> None:
    idp_token = stub_op.sign(access_claims(stub_op))
    response = exchange(machine_client, idp_token)
    assert response.status_code == 201, response.text
    claims = pyjwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "svc-etl" and claims["role"] == "Op"
    # The Airflow token never outlives the IdP token it was exchanged for.
    assert claims["exp"] <= pyjwt.decode(idp_token, options={"verify_signature": False})["exp"] + 1


def test_cli_endpoint_and_form_assertion(machine_client, stub_op) -> None:
    token = stub_op.sign(access_claims(stub_op))
    response = machine_client.post(
        "/auth/token/cli",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": token},
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("overrides", "status", "reason"),
    [
        ({"aud": "api://other"}, 401, "invalid_aud"),
        ({"aud": "airflow"}, 401, "invalid_aud"),  # an ID token's audience (the client) is not the API
        ({"iss": "http://127.0.0.1:1"}, 401, "invalid_issuer"),
        ({"exp": int(time.time()) - 600}, 401, "expired"),
        ({"sub": None}, 401, "missing_sub"),
        ({"roles": None}, 403, "no_mapped_role"),  # default_role never applies to machines
        ({"roles": ["Airflow.Unknown"]}, 403, "no_mapped_role"),
    ],
)
def test_bad_access_tokens_refused(machine_client, stub_op, overrides, status: int, reason: str) -> None:
    response = exchange(machine_client, stub_op.sign(access_claims(stub_op, **overrides)))
    assert response.status_code == status, response.text
    assert response.json()["reason"] == reason
    assert "access_token" not in response.json()


def test_forged_signature_refused(machine_client, stub_op) -> None:
    from joserfc.jwk import RSAKey

    forger = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    response = exchange(machine_client, stub_op.sign(access_claims(stub_op, roles=["Airflow.Admin"]), key=forger))
    assert response.status_code == 401 and response.json()["reason"] == "bad_signature"


def test_missing_assertion(machine_client) -> None:
    response = machine_client.post("/auth/token", json={})
    assert response.status_code == 400 and response.json()["reason"] == "missing_assertion"


def test_machine_access_off_without_api_audiences(make_client, stub_op) -> None:
    client, _ = make_client(role_mapping=MAPPING)
    response = exchange(client, stub_op.sign(access_claims(stub_op)))
    assert response.status_code == 403 and response.json()["reason"] == "machine_access_disabled"


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_entra_managed_identity_tokens_v1_and_v2(make_client, stub_op, version: str) -> None:
    client, _ = make_client(
        idp="entra",
        tenant_id=TENANT,
        issuer=f"{stub_op.issuer}/{TENANT}/v2.0",
        api_audiences="api://airflow",
        role_mapping=MAPPING,
    )
    issuer = f"https://sts.windows.net/{TENANT}/" if version == "v1" else f"{stub_op.issuer}/{TENANT}/v2.0"
    token = stub_op.sign(access_claims(stub_op, iss=issuer, tid=TENANT, oid=OID, sub=OID, ver=version[1] + ".0"))
    response = exchange(client, token)
    assert response.status_code == 201, response.text
    assert (
        pyjwt.decode(response.json()["access_token"], options={"verify_signature": False})["sub"] == f"{TENANT}:{OID}"
    )


def test_entra_token_of_another_tenant_refused(make_client, stub_op) -> None:
    other = "0a1b2c3d-1111-2222-3333-444455556666"
    client, _ = make_client(
        idp="entra",
        tenant_id=TENANT,
        issuer=f"{stub_op.issuer}/{TENANT}/v2.0",
        api_audiences="api://airflow",
        role_mapping=MAPPING,
    )
    token = stub_op.sign(access_claims(stub_op, iss=f"https://sts.windows.net/{other}/", tid=other, oid=OID))
    response = exchange(client, token)
    assert response.status_code == 401 and response.json()["reason"] == "entra_tenant_not_allowed"


def test_id_token_is_not_accepted_as_an_access_token(make_client, stub_op) -> None:
    # The API and sign-in share one registration: the ID token's audience (client_id) is an API audience.
    client, _ = make_client(api_audiences="airflow,api://airflow", role_mapping='{"airflow-admins": "Admin"}')
    id_token = stub_op.sign(stub_op.claims(nonce="n"))
    response = exchange(client, id_token)
    assert response.status_code == 401 and response.json()["reason"] == "id_token_not_accepted"


def test_entra_token_naming_no_client_is_refused(make_client, stub_op) -> None:
    client, _ = make_client(
        idp="entra",
        tenant_id=TENANT,
        issuer=f"{stub_op.issuer}/{TENANT}/v2.0",
        api_audiences="api://airflow",
        role_mapping=MAPPING,
    )
    claims = access_claims(stub_op, iss=f"{stub_op.issuer}/{TENANT}/v2.0", tid=TENANT, oid=OID, azp=None)
    response = exchange(client, stub_op.sign(claims))
    assert response.status_code == 401 and response.json()["reason"] == "entra_not_an_access_token"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"roles": {"Airflow.Admin": True}}, "malformed_groups_claim"),
        ({"iss": ["http://a", "http://b"]}, "invalid_issuer"),
        ({"aud": [["api://airflow"]]}, "invalid_aud"),
    ],
)
def test_malformed_claims_are_refused_not_500(machine_client, stub_op, overrides, reason: str) -> None:
    response = exchange(machine_client, stub_op.sign(access_claims(stub_op, **overrides)))
    assert response.status_code == 401 and response.json()["reason"] == reason


def test_client_allow_list(make_client, stub_op) -> None:
    client, _ = make_client(api_audiences="api://airflow", role_mapping=MAPPING, api_client_ids="svc-etl,svc-ml")
    assert exchange(client, stub_op.sign(access_claims(stub_op))).status_code == 201
    other = exchange(client, stub_op.sign(access_claims(stub_op, azp="svc-other", sub="svc-other")))
    assert other.status_code == 401 and other.json()["reason"] == "client_not_allowed"
    nameless = exchange(client, stub_op.sign(access_claims(stub_op, azp=None)))
    assert nameless.status_code == 401 and nameless.json()["reason"] == "client_not_allowed"
