"""The offline template checks: expressions, nested scopes, links, deployment scripts, outputs, linked ids.

Pure, milliseconds. The same holes are also tried through a real operator run in
``tests/azure/test_fence_holes.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_identity_provider.azure.rules.deployment_checks import (
    ContentOptions,
    judge_content,
    secure_parameter_names,
)
from airflow_identity_provider.azure.rules.fence_judgement import Fence
from airflow_identity_provider.azure.rules.preflight_rules import WhatIfChange, parse_what_if
from airflow_identity_provider.azure.rules.references import check_references, ids_in
from airflow_identity_provider.azure.rules.template_expressions import UNRESOLVED, ExprContext, calls_in, evaluate
from airflow_identity_provider.azure.rules.template_scan import scan_template
from airflow_identity_provider.azure.rules.what_if_diagnostics import check_diagnostics, parse_diagnostics

SUB = "11111111-2222-3333-4444-555555555555"
SUB2 = "99999999-2222-3333-4444-555555555555"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-etl"
OTHER = f"/subscriptions/{SUB}/resourceGroups/rg-prod"
SHARED = f"/subscriptions/{SUB}/resourceGroups/rg-shared"
FENCE = Fence.of([RG])
FENCE_WITH_SHARED = Fence.of([RG], [SHARED])
SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
CTX = ExprContext(
    parameters={"rg": "rg-prod", "name": "sa1", "id": f"{OTHER}/providers/Microsoft.Storage/storageAccounts/x"},
    variables={"v": "[concat('rg-', 'etl')]", "keys": "[listKeys(parameters('id'), '2023-01-01')]"},
    subscription_id=SUB,
    resource_group="rg-etl",
)


def template(*resources: dict[str, Any], outputs: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "resources": list(resources),
        "outputs": outputs or {},
        **extra,
    }


def nested(inner: dict[str, Any] | None = None, **props: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"mode": "Incremental"}
    if inner is not None:
        body["template"] = inner
    r: dict[str, Any] = {"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "inner"}
    for key in ("subscriptionId", "resourceGroup", "scope"):
        if key in props:
            r[key] = props.pop(key)
    body.update(props)
    r["properties"] = body
    return r


STORAGE = {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-05-01", "name": "sa1"}


def scan_rules(t: dict[str, Any], params: dict[str, Any] | None = None, fence: Fence = FENCE, **kw: Any) -> list[str]:
    return [v.rule for v in scan_template(t, params or {}, target=RG, fence=fence, **kw).violations]


# ----------------------------------------------------------------------------------------- expressions


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("[parameters('rg')]", "rg-prod"),
        ("[variables('v')]", "rg-etl"),
        ("[resourceGroup().name]", "rg-etl"),
        ("[subscription().subscriptionId]", SUB),
        ("[concat('a', '-', parameters('name'))]", "a-sa1"),
        ("[format('{0}-{1}', 'x', parameters('name'))]", "x-sa1"),
        ("[toLower('RG-A')]", "rg-a"),
        (
            "[resourceId('Microsoft.Storage/storageAccounts', 'sa')]",
            f"{RG}/providers/Microsoft.Storage/storageAccounts/sa",
        ),
        (
            "[resourceId('rg-prod', 'Microsoft.Network/virtualNetworks/subnets', 'vn', 'sn')]",
            f"{OTHER}/providers/Microsoft.Network/virtualNetworks/vn/subnets/sn",
        ),
        (
            f"[resourceId('{SUB2}', 'rg-x', 'Microsoft.Storage/storageAccounts', 'sa')]",
            f"/subscriptions/{SUB2}/resourceGroups/rg-x/providers/Microsoft.Storage/storageAccounts/sa",
        ),
        (
            "[subscriptionResourceId('Microsoft.Resources/x', 'y')]",
            f"/subscriptions/{SUB}/providers/Microsoft.Resources/x/y",
        ),
        ("[[not an expression]", "[not an expression]"),
        ("plain", "plain"),
        ("[copyIndex()]", UNRESOLVED),
        ("[reference('x').outputs.id.value]", UNRESOLVED),
        ("[uniqueString(resourceGroup().id)]", UNRESOLVED),
        ("[parameters('missing')]", UNRESOLVED),
        ("[concat('a', copyIndex())]", UNRESOLVED),
        ("[broken(]", UNRESOLVED),
        ("[resourceId('Microsoft.Storage/storageAccounts')]", UNRESOLVED),  # a name is missing
    ],
)
def test_evaluate(expr: str, expected: Any) -> None:
    assert evaluate(expr, CTX) == expected


def test_calls_follow_variables() -> None:
    names = [c.name for c, _ in calls_in({"value": "[variables('keys')]"}, CTX)]
    assert "listKeys" in names


def test_self_referencing_variables_terminate() -> None:
    ctx = ExprContext(variables={"a": "[variables('b')]", "b": "[variables('a')]"})
    assert evaluate("[variables('a')]", ctx) is UNRESOLVED
    assert [c.name for c, _ in calls_in("[variables('a')]", ctx)].count("variables") >= 2


# --------------------------------------------------------------------------------- nested deployments


def test_clean_template_passes() -> None:
    assert scan_rules(template(STORAGE, nested(template(STORAGE)))) == []


@pytest.mark.parametrize(
    "props",
    [
        {"resourceGroup": "rg-prod"},
        {"resourceGroup": "[parameters('rg')]"},
        {"subscriptionId": SUB2, "resourceGroup": "rg-etl"},
        {"subscriptionId": SUB},  # a subscription-level nested deployment: wider than the fence
        {"scope": "Microsoft.Management/managementGroups/mg1"},
        {"scope": "/"},
    ],
)
def test_nested_deployment_outside_the_fence_is_refused(props: dict[str, Any]) -> None:
    t = template(nested(template(STORAGE), **props), parameters={"rg": {"type": "string"}})
    assert scan_rules(t, {"rg": {"value": "rg-prod"}}) == ["nested_outside_scope"]


def test_nested_deployment_inside_the_fence_is_fine() -> None:
    t = template(nested(template(STORAGE), resourceGroup="[resourceGroup().name]"))
    assert scan_rules(t) == []
    assert scan_rules(template(nested(template(STORAGE), resourceGroup="rg-etl", subscriptionId=SUB))) == []


@pytest.mark.parametrize("expr", ["[concat('rg-', copyIndex())]", "[reference('x').rg]", "[parameters('unknown')]"])
def test_unresolvable_nested_scope_is_refused(expr: str) -> None:
    r = nested(template(STORAGE), resourceGroup=expr)
    r["copy"] = {"name": "loop", "count": 3}
    (v,) = scan_template(template(r), {}, target=RG, fence=FENCE).violations
    assert v.rule == "nested_scope_unresolved" and "resourceGroup" in v.message and expr in v.message


def test_nesting_at_any_depth_and_in_child_resources() -> None:
    deep = nested(template(nested(template(nested(template(STORAGE), resourceGroup="rg-prod")))))
    assert scan_rules(template(deep)) == ["nested_outside_scope"]
    parent = dict(STORAGE, resources=[nested(template(STORAGE), resourceGroup="rg-prod")])
    assert scan_rules(template(parent)) == ["nested_outside_scope"]


def test_symbolic_name_resources_are_read_too() -> None:
    t = {
        "$schema": SCHEMA,
        "languageVersion": "2.0",
        "resources": {"mod": nested(template(STORAGE), resourceGroup="rg-prod")},
    }
    assert scan_rules(t) == ["nested_outside_scope"]


def test_inner_scope_evaluates_with_the_nested_parameters() -> None:
    inner = template(
        nested(template(STORAGE), resourceGroup="[parameters('target')]"), parameters={"target": {"type": "string"}}
    )
    outer = nested(inner, expressionEvaluationOptions={"scope": "inner"}, parameters={"target": {"value": "rg-prod"}})
    assert scan_rules(template(outer)) == ["nested_outside_scope"]
    outer["properties"]["parameters"] = {"target": {"value": "[resourceGroup().name]"}}
    assert scan_rules(template(outer)) == []


def test_nested_template_link_is_refused_unless_allowed() -> None:
    t = template(nested(None, templateLink={"uri": "https://example.invalid/t.json"}))
    assert scan_rules(t) == ["nested_template_link"]
    assert scan_rules(t, allow_nested_template_links=True) == []


def test_deployment_script_is_refused_unless_allowed() -> None:
    script = {
        "type": "Microsoft.Resources/deploymentScripts",
        "apiVersion": "2023-08-01",
        "name": "s",
        "kind": "AzureCLI",
    }
    assert scan_rules(template(nested(template(script)))) == ["deployment_script"]
    assert scan_rules(template(script), allow_deployment_scripts=True) == []


def test_extension_resource_scope_outside_is_refused() -> None:
    lock = {
        "type": "Microsoft.Authorization/locks",
        "name": "l",
        "scope": f"{OTHER}/providers/Microsoft.Storage/storageAccounts/x",
    }
    assert scan_rules(template(lock)) == ["extension_outside_scope"]
    lock["scope"] = "Microsoft.Storage/storageAccounts/sa1"  # relative: inside the deployment's own group
    assert scan_rules(template(lock)) == []


# ------------------------------------------------------------------------------------------- outputs


def test_list_keys_in_a_plain_output_is_refused() -> None:
    outputs = {
        "key": {
            "type": "string",
            "value": "[listKeys(resourceId('Microsoft.Storage/storageAccounts', 'sa1'), '2023-01-01').keys[0].value]",
        }
    }
    assert scan_rules(template(STORAGE, outputs=outputs)) == ["secret_in_output"]
    outputs["key"]["type"] = "securestring"
    scan = scan_template(template(STORAGE, outputs=outputs), {}, target=RG, fence=FENCE)
    assert scan.violations == ()
    assert [x.action for x in scan.linked] == ["Microsoft.Storage/storageAccounts/listKeys/action"]


def test_out_of_fence_reference_in_an_output_is_refused() -> None:
    out_id = f"{OTHER}/providers/Microsoft.Storage/storageAccounts/x"
    outputs = {"ep": {"type": "string", "value": f"[reference('{out_id}', '2023-01-01').primaryEndpoints.blob]"}}
    assert scan_rules(template(outputs=outputs)) == ["reference_outside_scope"]
    outputs["ep"]["value"] = "[reference(resourceId('rg-prod', 'Microsoft.Storage/storageAccounts', 'x')).id]"
    assert scan_rules(template(outputs=outputs)) == ["reference_outside_scope"]
    assert scan_rules(template(outputs=outputs), fence=Fence.of([RG], [OTHER])) == []


def test_list_keys_hidden_in_a_variable_is_found() -> None:
    t = template(
        outputs={"k": {"type": "object", "value": "[variables('keys')]"}},
        variables={"keys": "[listKeys(parameters('id'), '2023-01-01')]"},
    )
    t["parameters"] = {"id": {"type": "string"}}
    rules = scan_rules(t, {"id": {"value": f"{OTHER}/providers/Microsoft.Storage/storageAccounts/x"}})
    assert rules == ["secret_in_output", "reference_outside_scope"]


def test_unresolvable_reference_in_an_output_is_refused() -> None:
    outputs = {"x": {"type": "string", "value": "[reference(parameters('anything')).id]"}}
    assert scan_rules(template(outputs=outputs)) == ["reference_unresolved"]
    outputs["x"]["value"] = "[reference('sa1').primaryEndpoints.blob]"  # a resource of this template
    assert scan_rules(template(STORAGE, outputs=outputs)) == []


# ----------------------------------------------------------------------------------- linked references


def what_if(*changes: dict[str, Any]) -> tuple[WhatIfChange, ...]:
    return parse_what_if({"status": "Succeeded", "properties": {"changes": list(changes)}})


VM = f"{RG}/providers/Microsoft.Compute/virtualMachines/vm1"
UAMI_OUT = f"{OTHER}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/prod-admin"
SUBNET_SHARED = f"{SHARED}/providers/Microsoft.Network/virtualNetworks/hub/subnets/app"


def test_ids_are_found_in_keys_and_values() -> None:
    after = {
        "id": VM,
        "identity": {"userAssignedIdentities": {UAMI_OUT: {}}},
        "properties": {"subnet": {"id": SUBNET_SHARED}},
    }
    assert dict(ids_in(after)) == {
        "id": VM,
        f"identity.userAssignedIdentities.{UAMI_OUT}": UAMI_OUT,
        "properties.subnet.id": SUBNET_SHARED,
    }


def test_out_of_fence_identity_is_refused_and_shared_subnet_needs_join() -> None:
    changes = what_if(
        {
            "resourceId": VM,
            "changeType": "Create",
            "after": {
                "id": VM,
                "type": "Microsoft.Compute/virtualMachines",
                "identity": {"userAssignedIdentities": {UAMI_OUT: {}}},
                "properties": {"subnet": {"id": SUBNET_SHARED}},
            },
        }
    )
    violations, linked = check_references(changes, {}, FENCE_WITH_SHARED)
    assert [v.rule for v in violations] == ["reference_outside_scope"]
    assert UAMI_OUT in violations[0].message and "allowed_reference_scopes" in violations[0].message
    assert [(x.resource_id, x.action) for x in linked] == [
        (SUBNET_SHARED, "Microsoft.Network/virtualNetworks/subnets/join/action")
    ]


CONTRIBUTOR = (
    f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c"
)


def test_role_definition_ids_are_not_references() -> None:
    ra = f"{RG}/providers/Microsoft.Authorization/roleAssignments/r1"
    changes = what_if(
        {
            "resourceId": ra,
            "changeType": "Create",
            "after": {"properties": {"roleDefinitionId": CONTRIBUTOR}},
        }
    )
    assert check_references(changes, {}, FENCE) == ([], [])


def test_key_vault_reference_outside_is_refused_inside_needs_deploy_action() -> None:
    kv_out = f"{OTHER}/providers/Microsoft.KeyVault/vaults/prod-kv"
    params = {"pw": {"reference": {"keyVault": {"id": kv_out}, "secretName": "admin"}}}
    violations, _ = check_references((), params, FENCE)
    assert [v.rule for v in violations] == ["reference_outside_scope"] and kv_out in violations[0].message
    kv_in = f"{RG}/providers/Microsoft.KeyVault/vaults/kv"
    params = {"pw": {"reference": {"keyVault": {"id": kv_in}, "secretName": "admin"}}}
    assert check_references((), params, FENCE)[1][0].action == "Microsoft.KeyVault/vaults/deploy/action"


def test_secure_parameter_ids_are_refused_without_showing_them() -> None:
    params = {"target": {"value": UAMI_OUT}}
    (v,), _ = check_references((), params, FENCE, secure_parameters=["target"])
    assert v.rule == "reference_outside_scope" and UAMI_OUT not in v.message and "not shown" in v.message


# ------------------------------------------------------------------------------------------- diagnostics


def test_diagnostics_block_unless_allowed() -> None:
    body = {
        "status": "Succeeded",
        "properties": {
            "changes": [],
            "diagnostics": [
                {
                    "level": "Warning",
                    "code": "NestedDeploymentShortCircuited",
                    "message": "not expanded",
                    "target": "/x",
                },
                {"level": "Info", "code": "Note", "message": "fine"},
                "garbage",
            ],
        },
    }
    diagnostics = parse_diagnostics(body)
    assert [d.code for d in diagnostics] == ["NestedDeploymentShortCircuited", "Note", "UnreadableDiagnostic"]
    violations = check_diagnostics(diagnostics, allow=False)
    assert len(violations) == 2 and "NestedDeploymentShortCircuited: not expanded" in violations[0].message
    assert "allow_what_if_diagnostics=True" in violations[0].message
    assert check_diagnostics(diagnostics, allow=True) == []


# ------------------------------------------------------------------------------------------ all together


def test_judge_content_combines_and_dedupes() -> None:
    script_id = f"{RG}/providers/Microsoft.Resources/deploymentScripts/s"
    script = {"type": "Microsoft.Resources/deploymentScripts", "name": "s"}
    changes = what_if({"resourceId": script_id, "changeType": "Ignore"})
    verdict = judge_content(
        changes=changes,
        diagnostics=(),
        template=template(script),
        parameters={},
        target=RG,
        fence=FENCE,
        options=ContentOptions(),
    )
    assert sorted(v.rule for v in verdict.violations) == ["deployment_script", "deployment_script"]  # two places
    assert len({v.message for v in verdict.violations}) == 2


def test_secure_parameter_names() -> None:
    t = template(parameters={"a": {"type": "secureString"}, "b": {"type": "string"}, "c": {"type": "secureObject"}})
    assert secure_parameter_names(t, ["d"]) == ("d", "a", "c")


# ----------------------------------------------------------------------------------------- lookalikes


def test_deny_rules_catch_unicode_lookalikes() -> None:
    """The fence admits by ASCII-folded comparison only; deny rules fold loosely, so a lookalike type
    (U+017F LONG S, U+212A KELVIN SIGN) is refused rather than slipping past them."""
    from airflow_identity_provider.azure.rules.preflight_rules import check_changes

    ra = f"{RG}/providers/Microsoft.Authorization/roleAssignments/r1"
    lookalike = WhatIfChange.from_api(
        {
            "resourceId": ra,
            "changeType": "Create",
            "after": {"type": "Microsoft.Authorization/roleA\u017f\u017fignments"},
        }
    )
    assert "rbac_change" in [v.rule for v in check_changes([lookalike], [RG])]
    script = {"type": "Microsoft.Re\u017fources/deployment\u017fcripts", "name": "s"}
    assert scan_rules(template(script)) == ["deployment_script"]
    sneaky = nested(template(STORAGE), resourceGroup="rg-prod")
    sneaky["type"] = "Microsoft.Resources/deployments".replace("s/d", "\u017f/d")
    assert scan_rules(template(sneaky)) == ["nested_outside_scope"]
