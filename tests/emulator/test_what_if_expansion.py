"""What-if against the emulator: nested-deployment expansion, the nesting limit (``Ignore`` changes plus
``NestedDeploymentShortCircuited``), result overrides, ``copy`` loops and the expression evaluator."""

from __future__ import annotations

from typing import Any

import pytest

from dev.arm_emulator import expressions
from dev.arm_emulator.client import ArmEmulator
from tests.emulator.support import SUB, Clients

pytestmark = pytest.mark.integration

SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
OTHER_SUB = "99999999-8888-7777-6666-555555555555"


def _group(sub: str, rg: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


def _groups(clients: Clients, *names: str) -> None:
    for name in names:
        clients.resources.resource_groups.create_or_update(name, {"location": "westeurope"})
    clients.resources.resource_groups.create_or_update("rg-north", {"location": "northeurope"})


def _template(resources: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"$schema": SCHEMA, "contentVersion": "1.0.0.0", "resources": resources, **extra}


def _nested(name: str, template: dict[str, Any], **extra: Any) -> dict[str, Any]:
    props = extra.pop("properties", {})
    return {
        "type": "Microsoft.Resources/deployments",
        "apiVersion": "2022-09-01",
        "name": name,
        **extra,
        "properties": {"mode": "Incremental", "template": template, **props},
    }


def _storage(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "Microsoft.Storage/storageAccounts",
        "apiVersion": "2023-05-01",
        "name": name,
        "location": "[resourceGroup().location]",
        "sku": {"name": "Standard_LRS"},
        "kind": "StorageV2",
        **extra,
    }


def _what_if(clients: Clients, rg: str, template: dict[str, Any], name: str = "wi", **params: Any) -> Any:
    body = {
        "properties": {
            "mode": "Incremental",
            "template": template,
            "parameters": {k: {"value": v} for k, v in params.items()},
        }
    }
    result = clients.deployments.deployments.begin_what_if(rg, name, body).result()
    assert result.status == "Succeeded"
    return result.properties


TWO_GROUPS = _template(
    [
        _storage("[format('{0}st', parameters('prefix'))]"),
        _nested(
            "to-b",
            _template(
                [
                    {
                        "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                        "apiVersion": "2023-01-31",
                        "name": "[parameters('identityName')]",
                        "location": "[resourceGroup().location]",
                    },
                    _nested(
                        "to-north",
                        _template([_storage("stnorth", tags={"evaluatedIn": "[resourceGroup().name]"})]),
                        resourceGroup="rg-north",
                    ),
                ],
                parameters={"identityName": {"type": "string"}},
            ),
            resourceGroup="[parameters('otherRg')]",
            properties={
                "expressionEvaluationOptions": {"scope": "inner"},
                "parameters": {"identityName": {"value": "[concat(parameters('prefix'), '-id')]"}},
            },
        ),
        {
            "type": "Microsoft.Web/sites",
            "apiVersion": "2023-01-01",
            "name": "[concat(parameters('prefix'), '-app')]",
            "location": "[resourceGroup().location]",
            "identity": {
                "type": "UserAssigned",
                "userAssignedIdentities": {
                    "[resourceId(parameters('otherRg'), 'Microsoft.ManagedIdentity/userAssignedIdentities', "
                    "concat(parameters('prefix'), '-id'))]": {}
                },
            },
            "properties": {
                "virtualNetworkSubnetId": "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet1', 'apps')]",
                "subnet": {
                    "id": f"[resourceId('{SUB}', 'rg-net', 'Microsoft.Network/virtualNetworks/subnets', 'hub', 'x')]"
                },
            },
            "dependsOn": ["[resourceId('Microsoft.Storage/storageAccounts', 'whatever')]"],
        },
    ],
    parameters={"prefix": {"type": "string"}, "otherRg": {"type": "string", "defaultValue": "rg-b"}},
)


def test_nested_deployments_expand_across_resource_groups(clients: Clients) -> None:
    _groups(clients, "rg-a", "rg-b")
    props = _what_if(clients, "rg-a", TWO_GROUPS, prefix="etl")

    a, b, north = _group(SUB, "rg-a"), _group(SUB, "rg-b"), _group(SUB, "rg-north")
    by_id = {c.resource_id: c for c in props.changes}
    assert list(by_id) == [
        f"{a}/providers/Microsoft.Storage/storageAccounts/etlst",
        f"{b}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/etl-id",
        f"{north}/providers/Microsoft.Storage/storageAccounts/stnorth",
        f"{a}/providers/Microsoft.Web/sites/etl-app",
    ]  # the deployments resources themselves are not changes
    assert {c.change_type for c in props.changes} == {"Create"}
    assert props.diagnostics in (None, [])
    assert props.potential_changes in (None, [])

    identity = by_id[f"{b}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/etl-id"].after
    assert identity["name"] == "etl-id" and identity["location"] == "westeurope"
    north_acct = by_id[f"{north}/providers/Microsoft.Storage/storageAccounts/stnorth"].after
    # outer scope (the default): evaluated in the parent's context, deployed into the nested target group
    assert north_acct["tags"] == {"evaluatedIn": "rg-b"} and north_acct["location"] == "westeurope"

    app = by_id[f"{a}/providers/Microsoft.Web/sites/etl-app"].after
    assert app["identity"]["userAssignedIdentities"] == {
        f"{b}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/etl-id": {}
    }
    assert (
        app["properties"]["virtualNetworkSubnetId"]
        == f"{a}/providers/Microsoft.Network/virtualNetworks/vnet1/subnets/apps"
    )
    assert app["properties"]["subnet"]["id"] == (
        f"{_group(SUB, 'rg-net')}/providers/Microsoft.Network/virtualNetworks/hub/subnets/x"
    )
    assert "dependsOn" not in app and "resources" not in app
    assert app["id"] == f"{a}/providers/Microsoft.Web/sites/etl-app"


def test_nested_scope_with_subscription_and_literal_group(clients: Clients) -> None:
    _groups(clients, "rg-a")
    template = _template(
        [
            _nested("other-sub", _template([_storage("stother")]), subscriptionId=OTHER_SUB, resourceGroup="rg-x"),
            _nested(
                "sub-level",
                _template(
                    [{"type": "Microsoft.Resources/resourceGroups", "apiVersion": "2022-09-01", "name": "rg-new"}]
                ),
                subscriptionId="[subscription().subscriptionId]",
            ),
        ]
    )
    props = _what_if(clients, "rg-a", template)
    assert [c.resource_id for c in props.changes] == [
        f"{_group(OTHER_SUB, 'rg-x')}/providers/Microsoft.Storage/storageAccounts/stother",
        _group(SUB, "rg-new"),
    ]


def _three_levels() -> dict[str, Any]:
    level2 = _template([_storage("stdeep", properties={"minimumTlsVersion": "TLS1_2"})])
    level1 = _template([_storage("stmid"), _nested("level2", level2, resourceGroup="rg-b")])
    return _template([_storage("sttop"), _nested("level1", level1)])


def test_nesting_limit_gives_ignore_changes_and_a_diagnostic(emu: ArmEmulator, clients: Clients) -> None:
    _groups(clients, "rg-a", "rg-b")
    emu.set_what_if_limits(max_nesting_depth=1)
    props = _what_if(clients, "rg-a", _three_levels())
    a, b = _group(SUB, "rg-a"), _group(SUB, "rg-b")
    assert [(c.change_type, c.resource_id.rsplit("/", 1)[-1]) for c in props.changes] == [
        ("Create", "sttop"),
        ("Create", "stmid"),
        ("Ignore", "stdeep"),
    ]
    ignored = props.changes[2]
    assert ignored.resource_id == f"{b}/providers/Microsoft.Storage/storageAccounts/stdeep"
    assert ignored.after["properties"] == {"minimumTlsVersion": "TLS1_2"}
    assert ignored.after["sku"] == {"name": "Standard_LRS"}
    [diag] = props.diagnostics
    assert (diag.level, diag.code) == ("Warning", "NestedDeploymentShortCircuited")
    assert diag.target == f"{b}/providers/Microsoft.Resources/deployments/level2"
    assert "level2" in diag.message

    emu.set_what_if_limits(0)
    props = _what_if(clients, "rg-a", _three_levels())
    assert [c.change_type for c in props.changes] == ["Create", "Ignore", "Ignore"]
    assert [d.target for d in props.diagnostics] == [f"{a}/providers/Microsoft.Resources/deployments/level1"]

    emu.set_what_if_limits(None)
    props = _what_if(clients, "rg-a", _three_levels())
    assert [c.change_type for c in props.changes] == ["Create"] * 3 and not props.diagnostics


def test_deployment_records_the_expanded_resources(emu: ArmEmulator, clients: Clients) -> None:
    _groups(clients, "rg-a", "rg-b")
    emu.set_what_if_limits(0)  # what-if only: a deployment deploys everything
    body = {"properties": {"mode": "Incremental", "template": _three_levels()}}
    result = clients.deployments.deployments.begin_create_or_update("rg-a", "nested", body).result()
    assert [r.id.rsplit("/", 1)[-1] for r in result.properties.output_resources] == ["sttop", "stmid", "stdeep"]
    listed = [r.name for r in clients.resources.resources.list_by_resource_group("rg-b")]
    assert listed == ["stdeep"]


def test_what_if_result_overrides(emu: ArmEmulator, clients: Clients) -> None:
    _groups(clients, "rg-a")
    template = _template([_storage("stone")])
    diag = {"level": "Warning", "code": "NestedDeploymentShortCircuited", "message": "m", "target": "/x"}
    emu.set_what_if_result("*", diagnostics=[diag])
    props = _what_if(clients, "rg-a", template)
    assert [c.change_type for c in props.changes] == ["Create"]  # computed
    assert [(d.code, d.target) for d in props.diagnostics] == [("NestedDeploymentShortCircuited", "/x")]

    ignore = {"resourceId": "/subscriptions/s/x", "changeType": "Ignore", "after": {"properties": {"a": 1}}}
    potential = {"resourceId": "/subscriptions/s/y", "changeType": "Create"}
    emu.set_what_if_result("named", changes=[ignore], potential_changes=[potential])
    props = _what_if(clients, "rg-a", template, name="named")
    assert [(c.change_type, c.after) for c in props.changes] == [("Ignore", {"properties": {"a": 1}})]
    assert [c.resource_id for c in props.potential_changes] == ["/subscriptions/s/y"]
    assert props.diagnostics[0].code == "NestedDeploymentShortCircuited"  # from "*"

    emu.set_what_if_changes("named", [{"resourceId": "/subscriptions/s/z", "changeType": "NoChange"}])
    props = _what_if(clients, "rg-a", template, name="named")
    assert [c.change_type for c in props.changes] == ["NoChange"]
    assert len(props.potential_changes) == 1  # kept from the earlier call
    other = _what_if(clients, "rg-a", template, name="other")
    assert [c.change_type for c in other.changes] == ["Create"]


def test_copy_loops_expand(clients: Clients) -> None:
    _groups(clients, "rg-a")
    template = _template(
        [
            _storage(
                "[format('st{0:D2}', copyIndex(1))]",
                copy={"name": "accts", "count": "[parameters('n')]"},
                tags={"index": "[copyIndex()]"},
            ),
            _storage("stdynamic", copy={"name": "dyn", "count": "[length(parameters('list'))]"}),
        ],
        parameters={"n": {"type": "int", "defaultValue": 3}, "list": {"type": "array", "defaultValue": [1]}},
    )
    props = _what_if(clients, "rg-a", template)
    assert [c.resource_id.rsplit("/", 1)[-1] for c in props.changes] == ["st01", "st02", "st03", "stdynamic"]
    assert [c.after.get("tags") for c in props.changes[:3]] == [{"index": 0}, {"index": 1}, {"index": 2}]
    assert "copy" not in props.changes[0].after
    assert props.changes[3].after["copy"]["count"] == "[length(parameters('list'))]"  # not evaluable: one change


def _ctx(**kw: Any) -> expressions.Context:
    ctx = expressions.Context("dep", SUB, "rg-a", "westeurope")
    ctx.parameters = {"p": "etl", "obj": {"Name": "n1"}, "other": "rg-b", **kw}
    ctx.variables = {"v": "[concat(parameters('p'), '-v')]"}
    return ctx


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("[resourceId('Microsoft.Storage/storageAccounts', 'st1')]",
         f"/subscriptions/{SUB}/resourceGroups/rg-a/providers/Microsoft.Storage/storageAccounts/st1"),
        ("[resourceId(parameters('other'), 'Microsoft.Network/virtualNetworks/subnets', 'v', 's')]",
         f"/subscriptions/{SUB}/resourceGroups/rg-b/providers/Microsoft.Network/virtualNetworks/v/subnets/s"),
        ("[resourceId('s2', 'rg9', 'Microsoft.KeyVault/vaults', variables('v'))]",
         "/subscriptions/s2/resourceGroups/rg9/providers/Microsoft.KeyVault/vaults/etl-v"),
        ("[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'abc')]",
         f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/abc"),
        ("[format('{0}-{1}-{{x}}', parameters('p'), 7)]", "etl-7-{x}"),
        ("[concat('a', parameters('obj').name, 'b')]", "an1b"),
        ("[concat(resourceGroup().location, '/', subscription().subscriptionId)]", f"westeurope/{SUB}"),
        ("[parameters('obj')['Name']]", "n1"),
        ("['it''s']", "it's"),
        ("[deployment().name]", "dep"),
        ("[[literal]", "[literal]"),
        ("[uniqueString(resourceGroup().id)]", "[uniqueString(resourceGroup().id)]"),
        ("[parameters('missing')]", "[parameters('missing')]"),
        ("[resourceId('no-type', 'x')]", "[resourceId('no-type', 'x')]"),
        ("[concat('a', ", "[concat('a', "),
        ("[subscription().displayName]", "[subscription().displayName]"),
    ],
)  # fmt: skip
def test_expressions(expr: str, expected: Any) -> None:
    assert expressions.expression(expr, _ctx()) == expected


def test_expressions_outside_a_resource_group() -> None:
    ctx = expressions.Context("dep", SUB, None, "westeurope")
    assert expressions.expression("[resourceGroup().name]", ctx) == "[resourceGroup().name]"
    assert expressions.expression("[resourceId('Microsoft.Resources/resourceGroups', 'rg1')]", ctx) == (
        f"/subscriptions/{SUB}/resourceGroups/rg1"
    )
    assert expressions.expression("[resourceId('rg1', 'Microsoft.Web/sites', 'w')]", ctx) == (
        f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Web/sites/w"
    )
    tenant = expressions.Context("dep", None, None, "westeurope")
    assert expressions.expression("[tenantResourceId('Microsoft.Management/managementGroups', 'mg')]", tenant) == (
        "/providers/Microsoft.Management/managementGroups/mg"
    )
