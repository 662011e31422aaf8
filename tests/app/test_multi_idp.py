"""Several identity providers at once: chooser, one redirect URI each, state bound to its provider."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import jwt as pyjwt
import pytest

from tests.app.conftest import BASE
from tests.support.stub_op import StubOp


@pytest.fixture
def two_idps(stub_op: StubOp, make_client, monkeypatch: pytest.MonkeyPatch):
    with StubOp() as contractors_op:
        for name, op, mapping, label in (
            ("staff", stub_op, '{"airflow-admins": "Admin"}', "Staff"),
            ("contractors", contractors_op, '{"contractors": "Viewer"}', "Contractors"),
        ):
            prefix = f"AIRFLOW__IDENTITY_AUTH_MANAGER_{name.upper()}__"
            monkeypatch.setenv(prefix + "ISSUER", op.issuer)
            monkeypatch.setenv(prefix + "CLIENT_ID", "airflow")
            monkeypatch.setenv(prefix + "CLIENT_SECRET", "s")
            monkeypatch.setenv(prefix + "ROLE_MAPPING", mapping)
            monkeypatch.setenv(prefix + "DISPLAY_NAME", label)
        client, manager = make_client(providers="staff,contractors")
        yield client, manager, stub_op, contractors_op


def _start(client, name: str) -> dict[str, str]:
    response = client.get(f"/auth/login/{name}", params={"next": f"{BASE}/dags"})
    assert response.status_code == 302, response.text
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


def test_chooser_lists_each_provider(two_idps) -> None:
    client, manager, *_ = two_idps
    assert list(manager.providers) == ["staff", "contractors"]
    page = client.get("/auth/login", params={"next": f"{BASE}/dags"})
    assert page.status_code == 200
    assert "Staff" in page.text and "Contractors" in page.text
    assert "/auth/login/staff?next=" in page.text and "/auth/login/contractors?next=" in page.text


def test_each_provider_has_its_own_redirect_uri_and_mapping(two_idps) -> None:
    client, _, _staff_op, contractors_op = two_idps
    params = _start(client, "contractors")
    assert params["redirect_uri"] == f"{BASE}/auth/callback/contractors"
    contractors_op.respond_with_id_token(
        contractors_op.sign(contractors_op.claims(nonce=params["nonce"], sub="c1", groups=["contractors"]))
    )
    response = client.get("/auth/callback/contractors", params={"code": "c", "state": params["state"]})
    assert response.status_code == 303, response.text
    claims = pyjwt.decode(response.cookies["_token"], options={"verify_signature": False})
    assert claims["role"] == "Viewer"
    # The same sub in two directories is two people: ids carry the provider.
    assert claims["sub"] == "contractors/c1" and claims["idp"] == "contractors"


def test_state_is_bound_to_the_provider_that_started_it(two_idps) -> None:
    client, _, staff_op, _contractors_op = two_idps
    params = _start(client, "contractors")
    # A response delivered to the staff callback (mix-up) is refused before any code exchange.
    staff_op.respond_with_id_token(staff_op.sign(staff_op.claims(nonce=params["nonce"])))
    response = client.get("/auth/callback/staff", params={"code": "c", "state": params["state"]})
    assert response.status_code == 400 and "idp_mismatch" in response.text
    assert not any(r.startswith("POST") for r in staff_op.requests)
    assert "_token" not in response.cookies


def test_token_of_one_provider_is_refused_by_the_other(two_idps) -> None:
    client, _, staff_op, contractors_op = two_idps
    params = _start(client, "contractors")
    # The contractors' token endpoint returns a token issued (and signed) by the staff provider.
    contractors_op.respond_with_id_token(staff_op.sign(staff_op.claims(nonce=params["nonce"])))
    response = client.get("/auth/callback/contractors", params={"code": "c", "state": params["state"]})
    # Both stubs name their key "rsa-1": the contractors' key does not verify the staff signature.
    assert response.status_code == 401 and "Reason: bad_signature" in response.text
    assert "_token" not in response.cookies


def test_rfc9207_iss_of_another_provider_refused(two_idps) -> None:
    client, _, staff_op, _ = two_idps
    params = _start(client, "contractors")
    response = client.get(
        "/auth/callback/contractors", params={"code": "c", "state": params["state"], "iss": staff_op.issuer}
    )
    assert response.status_code == 400 and "issuer_mismatch" in response.text


def test_unknown_provider_name(two_idps) -> None:
    client, *_ = two_idps
    assert client.get("/auth/login/nobody").status_code == 404
