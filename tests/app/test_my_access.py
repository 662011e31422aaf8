"""``GET /auth/my-access`` ("My access" in the menu): the signed-in user sees their roles, grants and DAGs and
why; without a valid Airflow token the answer is a 401 page with a sign-in link, never a 500."""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

import jwt as pyjwt
import pytest

from airflow_identity_provider.auth.catalog import dag_index
from airflow_identity_provider.auth.catalog.dag_index import DagFacts, Entry
from tests.app.conftest import BASE, start_login

GRANT = "dag_grants[0]: Op for analytics-operators on dags analytics_*"
DAGS = (
    DagFacts("analytics_daily", frozenset({"analytics"}), "dags-folder", None),
    DagFacts("finance_daily", frozenset(), "dags-folder", {"finance-team": {"DAGs": {"can_read"}}}),
    DagFacts("<b>odd</b>", frozenset(), "dags-folder", None),
)


@pytest.fixture(autouse=True)
def dags(monkeypatch: pytest.MonkeyPatch) -> None:
    """The DAG index the manager starts reads these instead of the metadata DB."""

    def load(previous: Mapping[str, Entry]) -> dict[str, Entry]:
        return {facts.dag_id: ("h", facts) for facts in DAGS}

    monkeypatch.setattr(dag_index, "load_from_db", load)


@pytest.fixture
def client_for(make_client, stub_op):
    def make(groups: list[str], **claims: object):
        client, manager = make_client(
            role_mapping=json.dumps({"airflow-viewers": "Viewer", "<script>x</script>": "Viewer"}),
            dag_grants=json.dumps([{"groups": ["analytics-operators"], "dags": ["analytics_*"], "role": "Op"}]),
        )
        params = start_login(client)
        stub_op.respond_with_id_token(stub_op.sign(stub_op.claims(nonce=params["nonce"], groups=groups, **claims)))
        assert client.get("/auth/callback", params={"code": "c", "state": params["state"]}).status_code == 303
        return client, manager

    return make


def test_signed_in_user_sees_roles_grants_and_dags(client_for) -> None:
    groups = ["airflow-viewers", "analytics-operators", "finance-team", "marketing", "<script>x</script>"]
    client, _ = client_for(groups, name="<i>Alice</i>")
    response = client.get("/auth/my-access")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    page = response.text
    assert "alice" in page and "&lt;i&gt;Alice&lt;/i&gt;" in page and "alice@example.test" in page
    assert "<script" not in page and "&lt;script&gt;x&lt;/script&gt; (named by role_mapping)" in page
    assert "Viewer (from group airflow-viewers, group &lt;script&gt;x&lt;/script&gt;)" in page
    assert "analytics-operators (named by dag_grants)" in page and "finance-team (named by access_control)" in page
    assert "marketing" not in page  # named by no setting: not kept at sign-in
    assert GRANT in page
    assert "You see every DAG (3) through role Viewer (group airflow-viewers, group &lt;script&gt;" in page
    assert "access_control of finance_daily entry &#x27;finance-team&#x27;" in page
    assert "&lt;b&gt;odd&lt;/b&gt;" not in page  # no grant or entry opens it: not listed


def test_json_has_the_same_answers(client_for) -> None:
    client, _ = client_for(["analytics-operators"])
    summary = client.get("/auth/my-access", params={"format": "json"}).json()
    assert summary["user"]["id"] == "alice" and summary["user"]["provider"] == "default"
    assert summary["roles"] == [] and summary["grants"] == [GRANT]
    assert summary["dags"]["every_dag_through"] == [] and summary["dags"]["count"] == 1
    shown = summary["dags"]["shown"][0]
    assert shown["dag_id"] == "analytics_daily"
    assert {"permission": "dag.run:GET,POST,PUT,DELETE,MENU", "sources": [GRANT]} in shown["permissions"]


def test_bearer_token_works_too(client_for) -> None:
    client, _ = client_for(["airflow-viewers"])
    token = client.cookies.get("_token")
    client.cookies.clear()
    response = client.get("/auth/my-access", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and "Viewer (from group airflow-viewers)" in response.text


def test_not_signed_in_gets_a_401_page_with_a_sign_in_link(make_client) -> None:
    client, _ = make_client()
    response = client.get("/auth/my-access")
    assert response.status_code == 401
    assert "not signed in" in response.text
    href = response.text.split('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert urlsplit(href).path == "/auth/login"
    assert parse_qs(urlsplit(href).query)["next"] == [f"{BASE}/auth/my-access"]


@pytest.mark.parametrize("forgery", ["not-a-jwt", "other-secret", "unknown-provider"])
def test_forged_or_foreign_token_gets_401_not_500(make_client, forgery: str) -> None:
    client, manager = make_client()
    claims = {"sub": "mallory", "roles": ["Admin"], "idp": "default", "exp": 4102444800, "iat": 1700000000}
    if forgery == "not-a-jwt":
        token = "garbage.token.value"
    elif forgery == "other-secret":
        token = pyjwt.encode(claims, "a-different-secret-" + "0123456789" * 6, algorithm="HS512")
    else:  # signed by this Airflow, but not through a configured provider (e.g. a SimpleAuthManager leftover)
        from airflow_identity_provider.auth.rules.user import IdentityUser

        token = manager.generate_jwt(IdentityUser("mallory", "M", "", ("Admin",), idp="elsewhere"))
    client.cookies.set("_token", token)
    response = client.get("/auth/my-access")
    assert response.status_code == 401, response.text
    assert "session has ended or is not valid" in response.text
    assert "mallory" not in response.text


def test_menu_links_to_the_page(make_client) -> None:
    from airflow_identity_provider.auth.rules.user import IdentityUser

    _, manager = make_client()
    items = manager.get_extra_menu_items(user=IdentityUser("u", "U", "", ("Viewer",), idp="default"))
    assert [(item.text, item.href) for item in items] == [("My access", "/auth/my-access")]
