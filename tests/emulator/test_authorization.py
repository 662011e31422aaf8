"""Microsoft.Authorization reads through AuthorizationManagementClient (api 2022-04-01)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.core.rest import HttpRequest

from dev.arm_emulator.client import ArmEmulator
from tests.emulator.support import CLIENT, SUB, Clients

pytestmark = pytest.mark.integration

CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
DEPLOYER = {
    "actions": ["Microsoft.Resources/deployments/*", "*/read"],
    "notActions": ["Microsoft.Resources/deployments/delete"],
}


def _rg(clients: Clients, name: str) -> str:
    clients.resources.resource_groups.create_or_update(name, {"location": "westeurope"})
    return f"/subscriptions/{SUB}/resourceGroups/{name}"


def test_permissions_default_and_configured(emu: ArmEmulator, clients: Clients) -> None:
    rg_scope = _rg(clients, "rg-perm")
    _rg(clients, "rg-other")
    permissions = clients.authorization.permissions
    (default,) = permissions.list_for_resource_group("rg-perm")
    assert default.actions == ["*"]
    assert "Microsoft.Authorization/*/Write" in default.not_actions

    emu.set_permissions(rg_scope, [DEPLOYER])
    (configured,) = permissions.list_for_resource_group("rg-perm")
    assert (configured.actions, configured.not_actions, configured.data_actions) == (
        DEPLOYER["actions"],
        DEPLOYER["notActions"],
        [],
    )
    # inherited by resources below the group, not by a sibling group
    (below,) = permissions.list_for_resource("rg-perm", "Microsoft.Storage", "", "storageAccounts", "st1")
    assert below.actions == DEPLOYER["actions"]
    assert permissions.list_for_resource_group("rg-other").next().actions == ["*"]

    # subscription scope is not in the authorization SDK; any client with send_request will do
    emu.set_permissions(f"/subscriptions/{SUB}", [{"actions": ["*/read"]}])
    resp = clients.resources.send_request(
        HttpRequest("GET", f"/subscriptions/{SUB}/providers/Microsoft.Authorization/permissions",
                     params={"api-version": "2022-04-01"})
    )  # fmt: skip
    assert resp.status_code == 200
    assert resp.json()["value"][0]["actions"] == ["*/read"]
    assert permissions.list_for_resource_group("rg-perm").next().actions == DEPLOYER["actions"]  # closest wins

    with pytest.raises(ResourceNotFoundError, match="ResourceGroupNotFound"):
        permissions.list_for_resource_group("rg-missing").next()


def test_default_role_assignment_is_caller_contributor(clients: Clients) -> None:
    oid = ArmEmulator.principal_oid(client_id=CLIENT)
    scope = f"/subscriptions/{SUB}"
    (ra,) = clients.authorization.role_assignments.list_for_scope(scope, filter=f"assignedTo('{oid}')")
    assert ra.principal_id == oid and ra.scope == scope
    assert ra.role_definition_id == f"{scope}/providers/Microsoft.Authorization/roleDefinitions/{CONTRIBUTOR}"
    role = clients.authorization.role_definitions.get_by_id(ra.role_definition_id)
    assert (role.role_name, role.role_type) == ("Contributor", "BuiltInRole")
    assert "Microsoft.Authorization/*/Write" in role.permissions[0].not_actions


def test_role_assignment_filters(emu: ArmEmulator, clients: Clients) -> None:
    rg_scope = _rg(clients, "rg-ra")
    me, someone = "11111111-aaaa-0000-0000-000000000001", "22222222-bbbb-0000-0000-000000000002"
    emu.set_role_assignments(
        [
            {"scope": f"/subscriptions/{SUB}", "principalId": me, "roleName": "Reader"},
            {"scope": rg_scope, "principalId": me, "roleName": "Contributor"},
            {"scope": f"{rg_scope}/providers/Microsoft.Storage/storageAccounts/st1", "principalId": me,
             "roleDefinitionId": READER},
            {"scope": rg_scope, "principalId": someone, "roleName": "Owner"},
        ]
    )  # fmt: skip
    ras = clients.authorization.role_assignments
    mine = list(ras.list_for_scope(rg_scope, filter=f"assignedTo('{me}')"))
    assert sorted(r.scope.count("/") for r in mine) == [2, 4, 8]  # at, above and below the group
    at_or_above = list(ras.list_for_scope(rg_scope, filter=f"atScope() and assignedTo('{me}')"))
    assert {r.role_definition_id.rsplit("/", 1)[-1] for r in at_or_above} == {READER, CONTRIBUTOR}
    by_principal = list(ras.list_for_resource_group("rg-ra", filter=f"principalId eq '{someone}'"))
    assert [r.principal_id for r in by_principal] == [someone]
    request = emu.requests(r"/roleAssignments$")[0]
    assert request.query["$filter"] == [f"assignedTo('{me}')"]
    assert request.api_version == "2022-04-01"


def test_role_definitions_and_custom_role(emu: ArmEmulator, clients: Clients) -> None:
    defs = clients.authorization.role_definitions
    scope = f"/subscriptions/{SUB}"
    (reader,) = defs.list(scope, filter="roleName eq 'Reader'")
    assert reader.permissions[0].actions == ["*/read"]
    names = {d.role_name for d in defs.list(scope)}
    assert {"Owner", "Contributor", "Reader", "User Access Administrator"} <= names

    custom = emu.add_role_definition({"roleName": "Airflow Deployer", **DEPLOYER})
    got = defs.get(scope, custom["name"])
    assert (got.role_name, got.role_type, got.permissions[0].not_actions) == (
        "Airflow Deployer",
        "CustomRole",
        DEPLOYER["notActions"],
    )
    (ra,) = emu.set_role_assignments([{"scope": scope, "principalId": "p1", "roleName": "Airflow Deployer"}])
    assert ra["properties"]["roleDefinitionId"].endswith(custom["name"])


def test_deny_assignments(emu: ArmEmulator, clients: Clients) -> None:
    rg_scope = _rg(clients, "rg-deny")
    emu.set_deny_assignments(
        [{"scope": f"/subscriptions/{SUB}", "denyAssignmentName": "no-deletes", "actions": ["*/delete"]}]
    )
    (deny,) = clients.authorization.deny_assignments.list_for_scope(rg_scope, filter="atScope()")
    assert deny.deny_assignment_name == "no-deletes"
    assert deny.permissions[0].actions == ["*/delete"]
    assert deny.principals[0].type == "SystemDefined"
