"""The Graph emulator answers the exact requests the directory sync sends (auth/directory/graph.py, app_roles.py) as
Microsoft Graph does, and refuses, in Graph's error envelope, what Graph refuses:

- ``groups/delta?$select=members&$filter=id eq '…' or …`` (at most 50 ids), the filter kept in the delta link;
- ``servicePrincipals?$filter=appId eq '…'`` / ``servicePrincipalNames/any(n:n eq '…')`` with ``$select``;
- ``servicePrincipals/{id}/appRoleAssignedTo?$select=appRoleId,principalId,principalType&$top=999``.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest

from dev.emulator_kit.process import EmulatorError
from dev.graph_emulator.client import GraphEmulator
from tests.emulator.graph_support import CLIENT, SECRET, delta_round, get, graph_error, reset_graph, token

pytestmark = pytest.mark.integration

APP = "0f0f0f0f-1111-2222-3333-444444444444"  # the resource app (Airflow's app registration)
SP = "5e5e5e5e-0000-0000-0000-000000000001"  # its service principal
ADMIN_ROLE, OP_ROLE = "a0000000-0000-0000-0000-000000000001", "a0000000-0000-0000-0000-000000000002"


@pytest.fixture(autouse=True)
def _reset(graph: GraphEmulator, monkeypatch: pytest.MonkeyPatch) -> None:  # replaces the ARM emulator's reset
    reset_graph(graph, monkeypatch)


def gid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.groups.test"))


def oid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"user:{name}"))


def groups_delta(ids: list[str]) -> str:
    """The sync's first groups/delta request for one batch (GraphDirectory._sync_batch)."""
    return "/v1.0/groups/delta?$select=members&$filter=" + quote(" or ".join(f"id eq '{g}'" for g in sorted(ids)))


def test_groups_delta_filtered_by_id_keeps_its_filter_in_the_delta_link(graph: GraphEmulator) -> None:
    for name in ("ada", "bob"):
        graph.put_user(oid(name))
    for name in ("admins", "ops", "other"):
        graph.put_group(gid(name), name)
    graph.add_member(gid("admins"), oid("ada"))
    graph.add_member(gid("other"), oid("bob"))
    graph.add_member(gid("ops"), gid("admins"), type="groups")  # nested: reported as a group member
    tok = token(graph)
    items, delta_link, _ = delta_round(graph, groups_delta([gid("admins").upper(), gid("ops")]), tok)
    assert sorted(items, key=lambda g: g["id"] == gid("ops")) == [
        {"id": gid("admins"), "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": oid("ada")}]},
        {"id": gid("ops"), "members@delta": [{"@odata.type": "#microsoft.graph.group", "id": gid("admins")}]},
    ]  # ids compare case-insensitively (GUIDs); $select=members returns the id and members@delta only
    graph.remove_member(gid("other"), oid("bob"))  # outside the filter: not reported
    graph.remove_member(gid("admins"), oid("ada"))
    changes, _, _ = delta_round(graph, delta_link, tok)
    assert changes == [
        {"id": gid("admins"), "members@delta": [
            {"@odata.type": "#microsoft.graph.user", "id": oid("ada"), "@removed": {"reason": "deleted"}},
        ]},
    ]  # fmt: skip


def test_users_and_service_principals_delta_take_an_id_filter_too(graph: GraphEmulator) -> None:
    graph.put_user(oid("ada"))
    graph.put_user(oid("bob"))
    graph.put_service_principal(SP, app_id=APP)
    tok = token(graph)
    users, _, _ = delta_round(graph, f"/v1.0/users/delta?$select=id,accountEnabled&$filter=id eq '{oid('bob')}'", tok)
    assert users == [{"id": oid("bob"), "accountEnabled": True}]
    sps, _, _ = delta_round(graph, f"/v1.0/servicePrincipals/delta?$select=id,accountEnabled&$filter=id eq '{SP}'", tok)
    assert sps == [{"id": SP, "accountEnabled": True}]


def test_delta_refuses_what_graph_refuses(graph: GraphEmulator) -> None:
    tok = token(graph)
    refused = {
        "/v1.0/groups/delta?$filter=displayName eq 'admins'": "Request_UnsupportedQuery",
        "/v1.0/groups/delta?$filter=startswith(id,'a')": "Request_UnsupportedQuery",
        groups_delta([gid(f"g{n}") for n in range(51)]): "Request_UnsupportedQuery",  # Graph's limit: 50 ids
        "/v1.0/groups/delta?$expand=members": "Request_UnsupportedQuery",  # members come with $select
        "/v1.0/users/delta?$top=5": "Request_UnsupportedQuery",
        "/v1.0/users/delta?$orderby=displayName": "Request_UnsupportedQuery",
        "/v1.0/users/delta?$select=members": "BadRequest",
    }
    for url, code in refused.items():
        assert graph_error(get(graph, url, tok)) == (400, code), url
    assert get(graph, groups_delta([gid(f"g{n}") for n in range(50)]), tok).status_code == 200
    graph.set_filter_limit(1)  # as a Graph that takes fewer ids would answer the sync's batch
    assert graph_error(get(graph, groups_delta([gid("a"), gid("b")]), tok)) == (400, "Request_UnsupportedQuery")
    assert graph.stats()["statuses"] == {"200": 3, "400": 8}  # msal discovery, its token, the 50-id read


def test_resource_service_principal_lookup(graph: GraphEmulator) -> None:
    roles = {"Airflow.Admin": ADMIN_ROLE, "Airflow.Op": OP_ROLE}
    graph.put_service_principal(SP, app_id=APP, display_name="airflow", app_roles=roles,
                                identifier_uris=["api://airflow"])  # fmt: skip
    graph.put_service_principal(oid("svc"), app_id=oid("svc-app"), display_name="svc-etl")
    tok = token(graph)
    select = "&$select=id,appId,appRoles"
    by_app_id = get(graph, "/v1.0/servicePrincipals?$filter=" + quote(f"appId eq '{APP}'") + select, tok).json()
    assert [sp["id"] for sp in by_app_id["value"]] == [SP] and set(by_app_id["value"][0]) == {"id", "appId", "appRoles"}
    assert {r["value"]: r["id"] for r in by_app_id["value"][0]["appRoles"]} == roles
    condition = quote("servicePrincipalNames/any(n:n eq 'api://airflow')")
    assert [
        sp["id"] for sp in get(graph, f"/v1.0/servicePrincipals?$filter={condition}{select}", tok).json()["value"]
    ] == [SP]
    nobody = get(graph, "/v1.0/servicePrincipals?$filter=" + quote("appId eq 'no-such-app'"), tok).json()
    assert nobody["value"] == [] and "@odata.nextLink" not in nobody
    unsupported = get(graph, "/v1.0/servicePrincipals?$filter=" + quote("tags/any(t:t eq 'x')"), tok)
    assert graph_error(unsupported) == (400, "Request_UnsupportedQuery") and "'tags'" in unsupported.text
    assert graph_error(get(graph, "/v1.0/servicePrincipals?$select=appRolez", tok)) == (400, "BadRequest")
    graph.delete_service_principal(SP)
    assert get(graph, "/v1.0/servicePrincipals?$filter=" + quote(f"appId eq '{APP}'"), tok).json()["value"] == []


def test_app_role_assigned_to(graph: GraphEmulator) -> None:
    graph.put_service_principal(SP, app_id=APP, app_roles={"Airflow.Admin": ADMIN_ROLE, "Airflow.Op": OP_ROLE})
    graph.put_user(oid("ada"), display_name="Ada")
    graph.put_group(gid("ops"), "ops")
    graph.put_service_principal(oid("svc"), app_id=oid("svc-app"))
    ada = graph.assign_app_role(SP, oid("ada"), ADMIN_ROLE)
    graph.assign_app_role(SP, gid("ops"), OP_ROLE)
    graph.assign_app_role(SP, oid("svc"), OP_ROLE, type="servicePrincipals")
    with pytest.raises(EmulatorError, match="defines no app role"):
        graph.assign_app_role(SP, oid("ada"), "a0000000-0000-0000-0000-00000000dead")
    tok = token(graph)
    url = f"/v1.0/servicePrincipals/{SP}/appRoleAssignedTo?$select=appRoleId,principalId,principalType&$top=999"
    body = get(graph, url, tok).json()
    assert {(a["appRoleId"], a["principalType"], a["principalId"]) for a in body["value"]} == {
        (ADMIN_ROLE, "User", oid("ada")), (OP_ROLE, "Group", gid("ops")), (OP_ROLE, "ServicePrincipal", oid("svc")),
    }  # fmt: skip
    assert set(body["value"][0]) == {"id", "appRoleId", "principalId", "principalType"}
    full = get(graph, f"/v1.0/servicePrincipals/{SP}/appRoleAssignedTo", tok).json()["value"]
    assert {"principalDisplayName": "Ada", "resourceId": SP}.items() <= full[0].items()

    first = get(graph, f"/v1.0/servicePrincipals/{SP}/appRoleAssignedTo?$top=2", tok).json()
    rest = get(graph, first["@odata.nextLink"], tok).json()
    assert len(first["value"]) == 2 and len(rest["value"]) == 1 and "@odata.nextLink" not in rest

    graph.delete_user(oid("ada"))  # soft delete: the assignment is hidden, and back on restore
    assert len(get(graph, url, tok).json()["value"]) == 2
    graph.restore_user(oid("ada"))
    assert len(get(graph, url, tok).json()["value"]) == 3
    graph.remove_app_role_assignment(SP, ada["id"])
    assert len(get(graph, url, tok).json()["value"]) == 2

    too_many = get(graph, f"/v1.0/servicePrincipals/{SP}/appRoleAssignedTo?$top=1000", tok)
    assert graph_error(too_many) == (400, "Request_BadRequest")
    missing = get(graph, f"/v1.0/servicePrincipals/{oid('nope')}/appRoleAssignedTo", tok)
    assert graph_error(missing) == (404, "Request_ResourceNotFound")
    graph.register_app(CLIENT, SECRET, roles=["User.Read.All"])
    assert graph_error(get(graph, url, token(graph))) == (403, "Authorization_RequestDenied")
