"""An attacker holding a signed-in user's ID token tries to trade it at /auth/token for an Airflow API token.

When ``api_audiences`` lists the sign-in ``client_id``, a generic-OIDC ID token without nonce / at_hash /
c_hash / auth_time (issued on refresh, or by a provider that omits the nonce when none was sent) used to
pass. Now a token addressed to the sign-in client must carry the RFC 9068 ``typ: at+jwt`` in its verified
JOSE header, or name a requesting client other than the sign-in client.
"""

from __future__ import annotations

import base64
import json
import logging

import jwt as pyjwt
import pytest

from tests.app.test_entra_jumpcloud import OID, TENANT
from tests.app.test_machine_tokens import MAPPING, access_claims, exchange

ADMIN_MAPPING = '{"airflow-admins": "Admin", "Airflow.Op": "Op"}'
SHARED = "airflow,api://airflow"  # the API and the sign-in share one registration (client_id "airflow")


@pytest.fixture
def shared_client(make_client):
    client, _ = make_client(api_audiences=SHARED, role_mapping=ADMIN_MAPPING)
    return client


def nonce_less_id_token_claims(stub_op, **overrides):
    """What a provider signs at the token endpoint or on refresh when the sign-in sent no nonce."""
    return stub_op.claims(nonce=None, **overrides)


def assert_refused_as_ambiguous(response) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["reason"] == "ambiguous_id_token"
    assert "access_token" not in body
    # The message names both ways out.
    assert "api_audiences" in body["detail"] and "at+jwt" in body["detail"] and "'airflow'" in body["detail"]


@pytest.mark.parametrize("path", ["/auth/token", "/auth/token/cli"])
def test_nonce_less_id_token_of_an_admin_is_refused(shared_client, stub_op, path: str) -> None:
    response = exchange(shared_client, stub_op.sign(nonce_less_id_token_claims(stub_op)), path)
    assert_refused_as_ambiguous(response)


@pytest.mark.parametrize(
    ("overrides", "typ"),
    [
        ({"azp": "airflow"}, None),  # an ID token's azp is the sign-in client itself
        ({"client_id": "airflow"}, None),
        ({"aud": ["airflow", "api://airflow"], "azp": "airflow"}, None),
        ({"aud": ["api://airflow", "airflow"]}, None),
        ({}, "JWT"),  # a typ, but not RFC 9068's
        ({}, "id_token+jwt"),
        ({"azp": ""}, None),
    ],
)
def test_id_token_shapes_addressed_to_the_sign_in_client_are_refused(
    shared_client, stub_op, overrides, typ: str | None
) -> None:
    header = {"alg": "RS256", "kid": "rsa-1", **({"typ": typ} if typ else {})}
    token = stub_op.sign(nonce_less_id_token_claims(stub_op, **overrides), header=header)
    assert_refused_as_ambiguous(exchange(shared_client, token))


def test_at_jwt_typ_cannot_be_added_to_an_id_token_without_breaking_its_signature(shared_client, stub_op) -> None:
    """The typ is read from the verified JWS header: rewriting the header of a stolen ID token fails."""
    stolen = stub_op.sign(nonce_less_id_token_claims(stub_op))
    _, payload, signature = stolen.split(".")
    forged_header = {"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"}
    encoded = base64.urlsafe_b64encode(json.dumps(forged_header).encode()).rstrip(b"=").decode()
    response = exchange(shared_client, f"{encoded}.{payload}.{signature}")
    assert response.status_code == 401 and response.json()["reason"] == "bad_signature"
    assert "access_token" not in response.json()


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT"])
def test_rfc9068_access_token_for_the_sign_in_client_is_accepted(shared_client, stub_op, typ: str) -> None:
    claims = access_claims(stub_op, aud="airflow", azp="airflow", client_id="airflow")
    token = stub_op.sign(claims, header={"alg": "RS256", "kid": "rsa-1", "typ": typ})
    response = exchange(shared_client, token)
    assert response.status_code == 201, response.text
    assert pyjwt.decode(response.json()["access_token"], options={"verify_signature": False})["role"] == "Op"


@pytest.mark.parametrize("claim", ["azp", "client_id"])
def test_token_requested_by_another_client_for_the_sign_in_audience_is_accepted(
    shared_client, stub_op, claim: str
) -> None:
    claims = access_claims(stub_op, **{"aud": "airflow", "azp": None, claim: "svc-etl"})
    assert exchange(shared_client, stub_op.sign(claims)).status_code == 201


def test_api_audience_of_its_own_is_not_affected(make_client, stub_op) -> None:
    client, _ = make_client(api_audiences="api://airflow", role_mapping=MAPPING)
    # No typ and azp == sign-in client: fine when the audience is the API's own, not the sign-in client.
    assert exchange(client, stub_op.sign(access_claims(stub_op, azp="airflow"))).status_code == 201


def test_entra_keeps_its_own_rule(make_client, stub_op) -> None:
    """Entra access tokens for an API sharing the sign-in registration have aud = client_id and no typ;
    they are told from ID tokens by azp / appid, which Entra ID tokens never carry."""
    client, _ = make_client(
        idp="entra",
        tenant_id=TENANT,
        issuer=f"{stub_op.issuer}/{TENANT}/v2.0",
        api_audiences="airflow",
        role_mapping=MAPPING,
    )
    base = access_claims(stub_op, iss=f"{stub_op.issuer}/{TENANT}/v2.0", tid=TENANT, oid=OID, aud="airflow")
    assert exchange(client, stub_op.sign({**base, "azp": "airflow"})).status_code == 201
    nameless = exchange(client, stub_op.sign({k: v for k, v in base.items() if k != "azp"}))
    assert nameless.status_code == 401 and nameless.json()["reason"] == "entra_not_an_access_token"


def test_api_server_start_warns_when_api_audiences_lists_the_sign_in_client(make_client, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="airflow_identity_provider.auth.manager"):
        make_client(api_audiences=SHARED, role_mapping=ADMIN_MAPPING)
    warnings = [r.getMessage() for r in caplog.records if "api_audiences" in r.getMessage()]
    assert len(warnings) == 1
    assert "'airflow'" in warnings[0] and "ambiguous_id_token" in warnings[0] and "at+jwt" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="airflow_identity_provider.auth.manager"):
        make_client(api_audiences="api://airflow", role_mapping=ADMIN_MAPPING)
    assert not [r for r in caplog.records if "api_audiences" in r.getMessage()]
