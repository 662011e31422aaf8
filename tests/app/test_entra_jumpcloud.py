"""Entra- and JumpCloud-shaped tokens through the sub-app (stub provider: real IdPs can't run here)."""

from __future__ import annotations

import jwt as pyjwt
import pytest

from tests.app.conftest import start_login

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "0a1b2c3d-1111-2222-3333-444455556666"
OID = "00000000-0000-0000-66f3-3332eca7ea81"
ADMIN_ROLE = "Airflow.Admin"
ADMIN_GROUP = "9d5f3c2e-7b1a-4c8e-9f00-1234567890ab"


def entra_claims(stub_op, nonce: str, tenant: str = TENANT, **overrides):
    claims = stub_op.claims(
        nonce=nonce,
        iss=f"{stub_op.issuer}/{tenant}/v2.0",
        sub="pairwise-sub-for-this-app",
        tid=tenant,
        oid=OID,
        ver="2.0",
        name="Ada Admin",
        preferred_username="ada@contoso.com",
        roles=[ADMIN_ROLE],
        groups=None,
        email=None,
    )
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def entra_client(make_client, stub_op, tenant: str = TENANT, **settings):
    return make_client(
        idp="entra",
        tenant_id=tenant,
        issuer=f"{stub_op.issuer}/{tenant}/v2.0",
        role_mapping=f'{{"{ADMIN_ROLE}": "Admin", "{ADMIN_GROUP}": "Op"}}',
        **settings,
    )


def callback(client, stub_op, params, claims):
    stub_op.respond_with_id_token(stub_op.sign(claims))
    return client.get("/auth/callback", params={"code": "c", "state": params["state"]})


def assert_refused(response, reason: str, status: int = 401) -> None:
    assert response.status_code == status, response.text
    assert f"Reason: {reason}" in response.text
    assert "_token" not in response.cookies
    assert "Traceback" not in response.text


def test_entra_app_role_signs_in_with_tid_oid_identity(make_client, stub_op) -> None:
    client, _ = entra_client(make_client, stub_op)
    params = start_login(client)
    response = callback(client, stub_op, params, entra_claims(stub_op, params["nonce"]))
    assert response.status_code == 303, response.text
    claims = pyjwt.decode(response.cookies["_token"], options={"verify_signature": False})
    assert claims["sub"] == f"{TENANT}:{OID}"
    assert claims["role"] == "Admin" and claims["name"] == "Ada Admin" and claims["email"] == "ada@contoso.com"


def test_entra_group_guid_mapping(make_client, stub_op) -> None:
    client, _ = entra_client(make_client, stub_op, groups_claim="groups")
    params = start_login(client)
    response = callback(
        client, stub_op, params, entra_claims(stub_op, params["nonce"], roles=None, groups=[ADMIN_GROUP])
    )
    assert pyjwt.decode(response.cookies["_token"], options={"verify_signature": False})["role"] == "Op"


def test_entra_guest_user_signs_in(make_client, stub_op) -> None:
    client, _ = entra_client(make_client, stub_op)
    params = start_login(client)
    guest = entra_claims(stub_op, params["nonce"], idp="https://sts.windows.net/9188040d-6c67-4c5b-b112-36a304b66dad/")
    assert callback(client, stub_op, params, guest).status_code == 303


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"tid": OTHER_TENANT}, "entra_tid_iss_mismatch"),
        ({"tid": None}, "entra_missing_tid"),
        ({"ver": "1.0"}, "entra_v1_token"),
        ({"oid": None}, "entra_missing_oid"),
        ({"aud": "other", "azp": "airflow"}, "invalid_aud"),
    ],
)
def test_entra_bad_tokens_refused(make_client, stub_op, overrides: dict, reason: str) -> None:
    client, _ = entra_client(make_client, stub_op)
    params = start_login(client)
    response = callback(client, stub_op, params, entra_claims(stub_op, params["nonce"], **overrides))
    assert_refused(response, reason, status=403 if reason == "entra_missing_oid" else 401)


def test_entra_token_from_another_tenant_refused_single_tenant(make_client, stub_op) -> None:
    client, _ = entra_client(make_client, stub_op)
    params = start_login(client)
    claims = entra_claims(stub_op, params["nonce"], tenant=OTHER_TENANT)
    assert_refused(callback(client, stub_op, params, claims), "entra_wrong_tenant")


@pytest.mark.parametrize("overage", [{"_claim_names": {"groups": "src1"}}, {"hasgroups": True}])
def test_entra_group_overage_refused_naming_the_fixes(make_client, stub_op, overage: dict) -> None:
    client, _ = entra_client(make_client, stub_op, groups_claim="groups", default_role="Viewer")
    params = start_login(client)
    response = callback(client, stub_op, params, entra_claims(stub_op, params["nonce"], roles=None, **overage))
    assert_refused(response, "entra_group_overage", status=403)
    assert "app roles" in response.text and "ApplicationGroup" in response.text


def test_entra_multi_tenant_allow_list(make_client, stub_op) -> None:
    stub_op.discovery_issuer = f"{stub_op.issuer}/{{tenantid}}/v2.0"
    client, _ = entra_client(make_client, stub_op, tenant="organizations", allowed_tenants=TENANT)
    params = start_login(client)
    assert callback(client, stub_op, params, entra_claims(stub_op, params["nonce"])).status_code == 303
    params = start_login(client)
    outsider = entra_claims(stub_op, params["nonce"], tenant=OTHER_TENANT)
    assert_refused(callback(client, stub_op, params, outsider), "entra_tenant_not_allowed")


def test_entra_multi_tenant_response_iss_must_be_the_full_issuer(make_client, stub_op) -> None:
    stub_op.discovery_issuer = f"{stub_op.issuer}/{{tenantid}}/v2.0"
    client, _ = entra_client(make_client, stub_op, tenant="organizations", allowed_tenants=TENANT)
    params = start_login(client)
    for forged in (TENANT, f"{TENANT}/v2.0"):
        response = client.get("/auth/callback", params={"code": "c", "state": params["state"], "iss": forged})
        assert response.status_code == 400 and "issuer_mismatch" in response.text


def test_jumpcloud_member_of_string_and_trailing_slash_issuer(make_client, stub_op) -> None:
    client, _ = make_client(idp="jumpcloud", issuer=f"{stub_op.issuer}/", role_mapping='{"Airflow Admins": "Admin"}')
    stub_op.discovery_issuer = f"{stub_op.issuer}/"
    params = start_login(client)
    claims = stub_op.claims(
        nonce=params["nonce"], iss=f"{stub_op.issuer}/", aud=["airflow"], groups=None, memberOf="Airflow Admins"
    )
    response = callback(client, stub_op, params, claims)
    assert response.status_code == 303, response.text
    assert pyjwt.decode(response.cookies["_token"], options={"verify_signature": False})["role"] == "Admin"


def test_jumpcloud_issuer_without_trailing_slash_refused(make_client, stub_op) -> None:
    client, _ = make_client(idp="jumpcloud", issuer=f"{stub_op.issuer}/", role_mapping='{"g": "Admin"}')
    stub_op.discovery_issuer = f"{stub_op.issuer}/"
    params = start_login(client)
    claims = stub_op.claims(nonce=params["nonce"], iss=stub_op.issuer, groups=None, memberOf=["g"])
    assert_refused(callback(client, stub_op, params, claims), "invalid_issuer")


def test_groups_from_userinfo_when_absent_from_id_token(make_client, stub_op) -> None:
    client, _ = make_client(idp="jumpcloud", issuer=f"{stub_op.issuer}/", role_mapping='{"ops": "Op"}')
    stub_op.discovery_issuer = f"{stub_op.issuer}/"
    stub_op.userinfo = {"sub": "alice", "memberOf": ["ops"]}
    params = start_login(client)
    claims = stub_op.claims(nonce=params["nonce"], iss=f"{stub_op.issuer}/", groups=None)
    response = callback(client, stub_op, params, claims)
    assert pyjwt.decode(response.cookies["_token"], options={"verify_signature": False})["role"] == "Op"


def test_userinfo_with_another_sub_refused(make_client, stub_op) -> None:
    client, _ = make_client(idp="jumpcloud", issuer=f"{stub_op.issuer}/", role_mapping='{"ops": "Op"}')
    stub_op.discovery_issuer = f"{stub_op.issuer}/"
    stub_op.userinfo = {"sub": "mallory", "memberOf": ["ops"]}
    params = start_login(client)
    claims = stub_op.claims(nonce=params["nonce"], iss=f"{stub_op.issuer}/", groups=None)
    assert_refused(callback(client, stub_op, params, claims), "userinfo_sub_mismatch")


@pytest.fixture
def tls_stub_op(tmp_path, monkeypatch):
    from tests.support.stub_op import StubOp

    with StubOp(tls_dir=tmp_path) as op:
        # httpx (our relying party) and requests (msal) both trust the stub's self-signed CA.
        monkeypatch.setenv("SSL_CERT_FILE", str(op.ca_path))
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(op.ca_path))
        yield op


def graph_overage_client(make_client, op):
    """Entra with group GUIDs and overage resolved through the Graph stand-in on the TLS stub."""
    client, _ = make_client(
        idp="entra",
        tenant_id=TENANT,
        issuer=f"{op.issuer}/{TENANT}/v2.0",
        groups_claim="groups",
        resolve_group_overage="True",
        graph_url=op.issuer,
        role_mapping=f'{{"{ADMIN_GROUP}": "Op"}}',
    )
    return client


def test_entra_group_overage_resolved_through_graph_when_configured(make_client, tls_stub_op, monkeypatch) -> None:
    op = tls_stub_op
    client = graph_overage_client(make_client, op)
    op.graph_groups[OID] = ["11111111-2222-3333-4444-555555555555", ADMIN_GROUP]
    for _attempt in range(2):
        params = start_login(client)
        claims = entra_claims(op, params["nonce"], roles=None, _claim_names={"groups": "src1"})
        response = callback(client, op, params, claims)
        assert response.status_code == 303, response.text
        assert pyjwt.decode(response.cookies["_token"], options={"verify_signature": False})["role"] == "Op"
    # msal caches the app token: one client-credentials request for both sign-ins.
    assert op.requests.count(f"POST /{TENANT}/token") == 2 + 1
    assert op.requests.count(f"POST /v1.0/users/{OID}/getMemberObjects") == 2


def test_entra_graph_forbidden_is_explained(make_client, tls_stub_op) -> None:
    op = tls_stub_op
    op.graph_status = 403
    client = graph_overage_client(make_client, op)
    params = start_login(client)
    claims = entra_claims(op, params["nonce"], roles=None, hasgroups=True)
    response = callback(client, op, params, claims)
    assert_refused(response, "entra_graph_forbidden", status=403)
    assert "GroupMember.Read.All" in response.text
