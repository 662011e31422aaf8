"""Entra-shaped and JumpCloud-shaped sign-ins through a real api-server configured with both at once.

Two real npm ``oidc-provider`` processes stand in for the two directories: one serves its issuer under
``/<tenant>/v2.0`` and releases Entra claims (tid, oid, ver, roles), the other releases JumpCloud's
``memberOf`` as a string for a one-group user. The api-server runs ``providers = staff,contractors``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import jwt as pyjwt
import pytest

from dev.airflow_server import ApiServer, airflow_env, free_port, migrate, start_api_server
from dev.idp.local_idp import LocalIdp, login_through_idp, start_local_idp
from tests.support.versions import HAS_UI_AUTH_ME

pytestmark = pytest.mark.integration

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ENTRA_USERS = {
    "ada": {
        "tid": TENANT,
        "oid": "5c3b9a1e-0000-4000-8000-00000000a0a0",
        "ver": "2.0",
        "name": "Ada Admin",
        "preferred_username": "ada@contoso.com",
        "roles": ["Airflow.Admin"],
    },
    "gus": {  # a guest: idp differs from iss
        "tid": TENANT,
        "oid": "5c3b9a1e-0000-4000-8000-00000000b0b0",
        "ver": "2.0",
        "name": "Gus Guest",
        "idp": "https://sts.windows.net/9188040d-6c67-4c5b-b112-36a304b66dad/",
        "roles": ["Airflow.Viewer"],
    },
}
JUMPCLOUD_USERS = {"joe": {"name": "Joe Contractor", "memberOf": "Airflow Contractors"}}


@dataclass
class TwoIdps:
    server: ApiServer
    entra: LocalIdp
    jumpcloud: LocalIdp


@pytest.fixture(scope="module")
def two_idps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoIdps]:
    home = tmp_path_factory.mktemp("airflow_home_shapes")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    entra = start_local_idp(
        redirect_uris=[f"{base}/auth/callback/staff"], issuer_path=f"/{TENANT}/v2.0", extra_users=ENTRA_USERS
    )
    jumpcloud = start_local_idp(redirect_uris=[f"{base}/auth/callback/contractors"], extra_users=JUMPCLOUD_USERS)
    try:
        staff = "AIRFLOW__IDENTITY_AUTH_MANAGER_STAFF__"
        contractors = "AIRFLOW__IDENTITY_AUTH_MANAGER_CONTRACTORS__"
        env = airflow_env(
            home,
            port=port,
            extra={
                "AIRFLOW__IDENTITY_AUTH_MANAGER__PROVIDERS": "staff,contractors",
                staff + "IDP": "entra",
                staff + "TENANT_ID": TENANT,
                staff + "ISSUER": entra.issuer,
                staff + "CLIENT_ID": entra.client_id,
                staff + "CLIENT_SECRET": entra.client_secret,
                staff + "DISPLAY_NAME": "Staff (Entra ID)",
                staff + "ROLE_MAPPING": json.dumps({"Airflow.Admin": "Admin", "Airflow.Viewer": "Viewer"}),
                contractors + "IDP": "jumpcloud",
                contractors + "ISSUER": jumpcloud.issuer,
                contractors + "CLIENT_ID": jumpcloud.client_id,
                contractors + "CLIENT_SECRET": jumpcloud.client_secret,
                contractors + "DISPLAY_NAME": "Contractors (JumpCloud)",
                contractors + "ROLE_MAPPING": json.dumps({"Airflow Contractors": "User"}),
            },
        )
        migrate(env)
        server = start_api_server(home, env, port=port)
        try:
            yield TwoIdps(server=server, entra=entra, jumpcloud=jumpcloud)
        finally:
            server.stop()
    finally:
        entra.stop()
        jumpcloud.stop()


def sign_in(idps: TwoIdps, name: str, idp: LocalIdp, username: str) -> tuple[httpx.Client, httpx.Response]:
    url = idps.server.url
    browser = httpx.Client(timeout=30)
    chooser = browser.get(f"{url}/auth/login", params={"next": f"{url}/dags"})
    assert chooser.status_code == 200 and f"/auth/login/{name}?next=" in chooser.text
    start = browser.get(f"{url}/auth/login/{name}", params={"next": f"{url}/dags"})
    assert start.status_code == 302 and start.headers["location"].startswith(idp.issuer)
    back = login_through_idp(browser, start.headers["location"], username)
    assert back.headers["location"].startswith(f"{url}/auth/callback/{name}?")
    return browser, browser.get(back.headers["location"])


def test_entra_shaped_user_gets_app_role_and_tid_oid_identity(two_idps: TwoIdps) -> None:
    browser, callback = sign_in(two_idps, "staff", two_idps.entra, "ada")
    assert callback.status_code == 303, callback.text
    claims = pyjwt.decode(browser.cookies["_token"], options={"verify_signature": False})
    assert claims["sub"] == f"staff/{TENANT}:{ENTRA_USERS['ada']['oid']}" and claims["role"] == "Admin"
    if HAS_UI_AUTH_ME:  # Airflow 3.2+
        me = browser.get(f"{two_idps.server.url}/ui/auth/me").json()
        assert me["username"] == "Ada Admin"
    assert browser.get(f"{two_idps.server.url}/api/v2/variables").status_code == 200


def test_entra_guest_signs_in_as_viewer(two_idps: TwoIdps) -> None:
    browser, callback = sign_in(two_idps, "staff", two_idps.entra, "gus")
    assert callback.status_code == 303, callback.text
    assert browser.get(f"{two_idps.server.url}/api/v2/variables").status_code == 403


def test_jumpcloud_shaped_member_of_string(two_idps: TwoIdps) -> None:
    browser, callback = sign_in(two_idps, "contractors", two_idps.jumpcloud, "joe")
    assert callback.status_code == 303, callback.text
    claims = pyjwt.decode(browser.cookies["_token"], options={"verify_signature": False})
    assert claims["role"] == "User" and claims["sub"] == "contractors/joe"


def test_code_delivered_to_the_other_providers_callback_is_refused(two_idps: TwoIdps) -> None:
    url = two_idps.server.url
    browser = httpx.Client(timeout=30)
    start = browser.get(f"{url}/auth/login/staff", params={"next": f"{url}/dags"})
    back = login_through_idp(browser, start.headers["location"], "ada")
    mixed = back.headers["location"].replace("/auth/callback/staff?", "/auth/callback/contractors?")
    response = browser.get(mixed)
    assert response.status_code == 400 and "idp_mismatch" in response.text
    assert not browser.cookies.get("_token")
