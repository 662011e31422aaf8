"""The Airflow JWT travels in the _token cookie, which browsers cap at 4 KB (name + value) and drop silently
when larger, keeping the previous one: the sign-in must stay small, or be refused plainly."""

from __future__ import annotations

import json
import uuid

import jwt as pyjwt

from tests.app.conftest import start_login

GUIDS = [str(uuid.UUID(int=i + 1)) for i in range(200)]


def _sign_in(make_client, stub_op, **settings: str):
    client, _ = make_client(**settings)
    params = start_login(client)
    stub_op.respond_with_id_token(stub_op.sign(stub_op.claims(nonce=params["nonce"], groups=GUIDS)))
    return client, client.get("/auth/callback", params={"code": "c", "state": params["state"]})


def test_two_hundred_entra_groups_leave_only_the_named_ones_in_the_cookie(make_client, stub_op) -> None:
    mapping = {GUIDS[0]: "Viewer", GUIDS[1]: "Op"}
    grants = [{"groups": [GUIDS[2]], "dags": ["analytics_*"], "role": "Op"}]
    _client, response = _sign_in(
        make_client, stub_op, role_mapping=json.dumps(mapping), dag_grants=json.dumps(grants)
    )
    assert response.status_code == 303, response.text
    token = response.cookies["_token"]
    assert len("_token") + len(token) < 4096
    claims = pyjwt.decode(token, options={"verify_signature": False})
    assert claims["groups"] == GUIDS[:3] and claims["roles"] == ["Viewer", "Op"]


def test_a_session_too_big_for_a_cookie_is_refused_not_silently_dropped(make_client, stub_op) -> None:
    mapping = {guid: "Viewer" for guid in GUIDS[:150]}  # an administrator who maps every group
    client, response = _sign_in(make_client, stub_op, role_mapping=json.dumps(mapping))
    assert response.status_code == 403
    assert "would not fit in a cookie" in response.text and "role_mapping" in response.text
    # The earlier session (maybe someone else's) must not survive: the cookie is cleared.
    assert any(h.startswith('_token=""') or "_token=;" in h for h in response.headers.get_list("set-cookie"))
    assert "_token" not in client.cookies or not client.cookies.get("_token")
