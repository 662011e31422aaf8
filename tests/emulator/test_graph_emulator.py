"""The Graph emulator as a real process, driven by the real msal client and plain HTTPS requests."""

from __future__ import annotations

import base64
import json
import time

import msal
import pytest
import requests

from dev.emulator_kit.process import EmulatorError
from dev.graph_emulator.client import GRAPH_SCOPE, GraphEmulator
from tests.emulator.graph_support import (
    CLIENT,
    SECRET,
    TENANT,
    claims_of,
    delta_round,
    get,
    msal_app,
    reset_graph,
    token,
)

pytestmark = pytest.mark.integration

USER_SELECT = "id,accountEnabled,userPrincipalName,mail,displayName"


@pytest.fixture(autouse=True)
def _reset(graph: GraphEmulator, monkeypatch: pytest.MonkeyPatch) -> None:  # replaces the ARM emulator's reset
    reset_graph(graph, monkeypatch)


def test_msal_client_credentials_against_the_emulator(graph: GraphEmulator) -> None:
    app = msal_app(graph)
    first = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert first["token_type"] == "Bearer" and first["token_source"] == "identity_provider"
    claims = claims_of(first["access_token"])
    assert claims["aud"] == "https://graph.microsoft.com" and claims["tid"] == TENANT
    assert claims["appid"] == CLIENT and claims["oid"] == GraphEmulator.app_oid(CLIENT)
    assert set(claims["roles"]) == {"User.Read.All", "GroupMember.Read.All", "Application.Read.All"}
    assert app.acquire_token_for_client(scopes=[GRAPH_SCOPE])["token_source"] == "cache"
    assert graph.stats()["routes"] == {
        "/{tenant}/v2.0/.well-known/openid-configuration": 1,
        "/{tenant}/oauth2/v2.0/token": 1,
    }
    assert msal_app(graph, secret="wrong").acquire_token_for_client(scopes=[GRAPH_SCOPE])["error"] == "invalid_client"
    stranger = msal_app(graph, client="dddddddd-0000-0000-0000-0000000000dd")
    assert stranger.acquire_token_for_client(scopes=[GRAPH_SCOPE])["error"] == "unauthorized_client"
    arm = app.acquire_token_for_client(scopes=["https://management.azure.com/.default"])
    assert arm["error"] == "invalid_resource"
    with pytest.raises(ValueError, match="double check your tenant"):
        msal.ConfidentialClientApplication(
            CLIENT, client_credential=SECRET, authority=f"{graph.url}/other-tenant", instance_discovery=False
        )


def test_msal_trusts_the_ca_through_requests_ca_bundle(graph: GraphEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Why production builds msal without ``verify=``: REQUESTS_CA_BUNDLE (set on many CI hosts and proxied
    networks) overrides it, while REQUESTS_CA_BUNDLE naming the right CA is all msal needs."""

    def plain(**kw: object) -> msal.ConfidentialClientApplication:
        return msal.ConfidentialClientApplication(CLIENT, client_credential=SECRET, authority=graph.authority, **kw)

    assert "access_token" in plain(instance_discovery=False).acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert "access_token" in plain(validate_authority=False).acquire_token_for_client(scopes=[GRAPH_SCOPE])
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", requests.certs.where())  # public CAs only
    with pytest.raises(requests.exceptions.SSLError):
        plain(instance_discovery=False, verify=graph.ca_path)  # verify= loses to the variable
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with pytest.raises(requests.exceptions.SSLError):
        plain(instance_discovery=False)  # nothing trusts the emulator's CA


def test_graph_requires_a_valid_graph_token(graph: GraphEmulator) -> None:
    missing = get(graph, "/v1.0/users/delta", None)
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "InvalidAuthenticationToken")
    assert missing.json()["error"]["message"] == "Access token is empty."
    assert "WWW-Authenticate" in missing.headers
    assert get(graph, "/v1.0/users/delta", "not-a-jwt").status_code == 401
    head, payload, sig = token(graph).split(".")
    forged = base64.urlsafe_b64encode(json.dumps({**claims_of(f"{head}.{payload}.{sig}"), "roles": ["x"]}).encode())
    tampered = get(graph, "/v1.0/users/delta", f"{head}.{forged.decode().rstrip('=')}.{sig}")
    assert tampered.json()["error"]["message"] == "Access token validation failure. Invalid signature."
    graph.set_token_lifetime(1)
    short = requests.post(
        graph.token_endpoint,
        data={"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET, "scope": GRAPH_SCOPE},
        verify=graph.ca_path,
        timeout=10,
    ).json()
    assert short["expires_in"] == 1
    time.sleep(1.1)
    expired = get(graph, "/v1.0/users/delta", short["access_token"])
    assert expired.json()["error"]["message"] == "Lifetime validation failed, the token is expired."
    # Back to the default lifetime: a 1-second token can expire before its next request on a loaded machine.
    graph.set_token_lifetime(3599)
    graph.register_app(CLIENT, SECRET, roles=["User.Read.All"])
    limited = token(graph)
    assert get(graph, "/v1.0/users/delta", limited).status_code == 200
    denied = get(graph, "/v1.0/groups/delta", limited)
    assert (denied.status_code, denied.json()["error"]["code"]) == (403, "Authorization_RequestDenied")


def test_users_delta_pages_then_reports_only_changes(graph: GraphEmulator) -> None:
    for n in range(1, 6):
        graph.put_user(f"u{n}", upn=f"user{n}@contoso.test", mail=f"user{n}@contoso.test", display_name=f"User {n}")
    graph.set_page_size(2)
    tok = token(graph)
    items, delta_link, pages = delta_round(graph, f"/v1.0/users/delta?$select={USER_SELECT}", tok)
    assert pages == 3 and [u["id"] for u in items] == ["u1", "u2", "u3", "u4", "u5"]
    assert items[0] == {
        "id": "u1", "accountEnabled": True, "userPrincipalName": "user1@contoso.test",
        "mail": "user1@contoso.test", "displayName": "User 1",
    }  # fmt: skip
    assert delta_round(graph, delta_link, tok)[0] == []

    graph.disable_user("u1")
    graph.delete_user("u2")  # soft: restorable
    graph.delete_user("u3", permanent=True)
    graph.patch_user("u4", jobTitle="Boss")  # not selected: not tracked
    graph.put_user("u6", upn="user6@contoso.test")
    graph.put_user("u7")
    graph.delete_user("u7", permanent=True)  # created and deleted within the window: not reported
    changes, next_link, _ = delta_round(graph, delta_link, tok)
    assert changes == [
        {"id": "u1", "accountEnabled": False, "userPrincipalName": "user1@contoso.test",
         "mail": "user1@contoso.test", "displayName": "User 1"},
        {"id": "u2", "@removed": {"reason": "changed"}},
        {"id": "u3", "@removed": {"reason": "deleted"}},
        {"id": "u6", "accountEnabled": True, "userPrincipalName": "user6@contoso.test", "mail": None,
         "displayName": "user-u6"},
    ]  # fmt: skip
    assert delta_round(graph, delta_link, tok)[0] == changes  # a deltaLink may be replayed (retry)

    graph.enable_user("u1")
    graph.restore_user("u2")
    minimal, _, _ = delta_round(graph, next_link, tok, headers={"Prefer": "return=minimal"})
    assert minimal == [
        {"id": "u1", "accountEnabled": True},
        {"id": "u2", "accountEnabled": True, "userPrincipalName": "user2@contoso.test",
         "mail": "user2@contoso.test", "displayName": "User 2"},
    ]  # fmt: skip
    default = get(graph, "/v1.0/users/delta", tok).json()["value"]
    assert "accountEnabled" not in default[0]  # not among Graph's default properties: $select it


def test_groups_delta_members_and_pim_expiry(graph: GraphEmulator) -> None:
    for oid in ("u1", "u2", "u3"):
        graph.put_user(oid)
    graph.put_group("g1", "airflow-admins")
    graph.put_group("g2", "empty")
    graph.add_member("g1", "u1")
    graph.add_member("g1", "u2")
    pim = graph.add_member("g1", "u3", expires_in=3.0)  # long enough to outlast a delta round on a busy machine
    assert pim["expires_at"] > time.time()
    tok = token(graph)
    items, delta_link, _ = delta_round(graph, "/v1.0/groups/delta?$select=id,displayName,members", tok)
    assert items == [
        {"id": "g1", "displayName": "airflow-admins", "members@delta": [
            {"@odata.type": "#microsoft.graph.user", "id": "u1"},
            {"@odata.type": "#microsoft.graph.user", "id": "u2"},
            {"@odata.type": "#microsoft.graph.user", "id": "u3"},
        ]},
        {"id": "g2", "displayName": "empty"},
    ]  # fmt: skip
    assert [m["id"] for m in get(graph, "/v1.0/users/u3/memberOf", tok).json()["value"]] == ["g1"]

    graph.remove_member("g1", "u1")
    graph.delete_user("u2")  # a deleted member leaves its groups
    time.sleep(max(0.0, pim["expires_at"] - time.time()) + 0.05)  # the activation ends
    changes, _, _ = delta_round(graph, delta_link, tok)
    removed = {"reason": "deleted"}
    assert changes == [
        {"id": "g1", "displayName": "airflow-admins", "members@delta": [
            {"@odata.type": "#microsoft.graph.user", "id": "u1", "@removed": removed},
            {"@odata.type": "#microsoft.graph.user", "id": "u2", "@removed": removed},
            {"@odata.type": "#microsoft.graph.user", "id": "u3", "@removed": removed},
        ]},
    ]  # fmt: skip
    assert get(graph, "/v1.0/users/u3/memberOf", tok).json()["value"] == []
    assert get(graph, "/v1.0/groups/g1/members", tok).json()["value"] == []


def test_large_group_members_are_split_across_pages(graph: GraphEmulator) -> None:
    graph.put_group("big", "big")
    for n in range(5):
        graph.put_user(f"m{n}")
        graph.add_member("big", f"m{n}")
    graph.set_page_size(1, members_page_size=2)
    items, _, pages = delta_round(graph, "/v1.0/groups/delta?$select=id,members", token(graph))
    assert pages == 3 and [g["id"] for g in items] == ["big"] * 3
    assert [m["id"] for g in items for m in g["members@delta"]] == [f"m{n}" for n in range(5)]


def test_service_principals_delta(graph: GraphEmulator) -> None:
    graph.put_service_principal("sp1", app_id="app-1", display_name="svc-etl")
    tok = token(graph)
    url = "/v1.0/servicePrincipals/delta?$select=id,accountEnabled,appId,displayName"
    items, delta_link, _ = delta_round(graph, url, tok)
    assert items == [{"id": "sp1", "accountEnabled": True, "appId": "app-1", "displayName": "svc-etl"}]
    graph.disable_service_principal("sp1")
    changes, delta_link, _ = delta_round(graph, delta_link, tok)
    assert changes == [{"id": "sp1", "accountEnabled": False, "appId": "app-1", "displayName": "svc-etl"}]
    graph.delete_service_principal("sp1", permanent=True)
    assert delta_round(graph, delta_link, tok)[0] == [{"id": "sp1", "@removed": {"reason": "deleted"}}]


def test_latest_token_bad_select_and_expired_tokens(graph: GraphEmulator) -> None:
    graph.put_user("u1")
    tok = token(graph)
    items, delta_link, _ = delta_round(graph, f"/v1.0/users/delta?$select={USER_SELECT}&$deltatoken=latest", tok)
    assert items == []
    graph.disable_user("u1")
    assert [u["id"] for u in delta_round(graph, delta_link, tok)[0]] == ["u1"]
    bad = get(graph, "/v1.0/users/delta?$select=id,acountEnabled", tok)
    assert bad.status_code == 400 and "acountEnabled" in bad.json()["error"]["message"]
    assert graph.expire_delta_tokens() >= 1
    gone = get(graph, delta_link, tok)
    assert (gone.status_code, gone.json()["error"]["code"]) == (400, "syncStateNotFound")


def test_fail_modes(graph: GraphEmulator) -> None:
    tok = token(graph)
    graph.fail("429", times=2, retry_after=7)
    throttled = get(graph, "/v1.0/users/delta", tok)
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "7")
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert get(graph, "/v1.0/users/delta", tok).status_code == 429
    assert get(graph, "/v1.0/users/delta", tok).status_code == 200
    # 2 s, so the requests below land inside the outage even on a busy machine.
    graph.fail("503", seconds=2.0)
    outage = time.monotonic() + 2.0  # no earlier than the emulator's window ends
    assert get(graph, "/v1.0/users/delta", tok).json()["error"]["code"] == "serviceNotAvailable"
    assert token(graph)  # the token endpoint is not part of the outage by default
    time.sleep(max(0.0, outage - time.monotonic()) + 0.05)
    assert get(graph, "/v1.0/users/delta", tok).status_code == 200
    graph.fail("hang", seconds=30)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        get(graph, "/v1.0/users/delta", tok, timeout=0.5)
    assert time.monotonic() - started < 5
    graph.fail("drop")
    with pytest.raises(requests.exceptions.ConnectionError):
        get(graph, "/v1.0/users/delta", tok)
    graph.clear_failures()
    assert get(graph, "/v1.0/users/delta", tok).status_code == 200
    graph.fail("503", path_regex=r"/oauth2/", times=1)  # an Entra outage: msal raises on a 5xx
    with pytest.raises(msal.exceptions.MsalServiceError, match="503"):
        msal_app(graph).acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert [r["status"] for r in graph.requests()][-4:] == ["drop", 200, 200, 503]


def test_stats_count_requests_per_path(graph: GraphEmulator) -> None:
    graph.put_user("u1")
    tok = token(graph)
    graph.reset_stats()
    for _ in range(3):
        get(graph, "/v1.0/users/delta", tok, headers={"client-request-id": "replica-1"})
    get(graph, "/v1.0/groups/delta", tok)
    get(graph, "/v1.0/users/u1", tok)
    get(graph, "/v1.0/users/nope", tok)
    stats = graph.stats()
    assert stats["total"] == 6
    assert stats["paths"] == {
        "/v1.0/users/delta": 3,
        "/v1.0/groups/delta": 1,
        "/v1.0/users/u1": 1,
        "/v1.0/users/nope": 1,
    }
    assert stats["routes"]["/v1.0/users/{id}"] == 2 and stats["statuses"] == {"200": 5, "404": 1}
    first = graph.requests()[0]
    assert first["client_request_id"] == "replica-1" and first["appid"] == CLIENT and first["remote"]


def test_failed_start_reports_stderr() -> None:
    with pytest.raises(EmulatorError, match=r"exited before it was ready; rc=1") as err:
        GraphEmulator(port=-5).start()
    assert "port must be 0-65535" in str(err.value)  # the tail of its stderr
