"""Regression cases from the read-only security review: template shapes that once walked past the scan.

Each is refused now; the expected rule is the one that names the hole. Pure, milliseconds.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_identity_provider.azure.rules.deployment_checks import ContentOptions, judge_content
from airflow_identity_provider.azure.rules.fence_judgement import Fence
from airflow_identity_provider.azure.rules.preflight_rules import parse_what_if

# ruff: noqa: E501

SUB = "11111111-2222-3333-4444-555555555555"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-etl"
OTHER_SA = f"/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.Storage/storageAccounts/prodsa"
FENCE = Fence.of([RG])
CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = []
EXPECTED = {
    "baseline nested rg-prod literal": "nested_outside_scope",
    "ResourceGroup capitalised": "nested_outside_scope",
    "Resources capitalised top-level": "nested_outside_scope",
    "Type capitalised": "nested_outside_scope",
    "Properties/TemplateLink capitalised": "nested_template_link",
    "inner-scope param unresolved -> default": "nested_scope_unresolved",
    "inner-scope parametersLink -> default": "nested_template_link",
    "listKeys(other) in nested params": "reference_outside_scope",
    "listKeys(copyIndex target) in props": "reference_unresolved",
    "listKeys(reference output id) in props": "reference_unresolved",
    "UDF wraps listKeys(other) plain output": "secret_in_output",
    "baseline listKeys(other) plain output": "secret_in_output",
    "2.0 existing symbolic listKeys secure output": "existing_outside_scope",
    "2.0 existing symbolic listKeys into prop": "reference_outside_scope",
    "type from KV-ref param": "unreadable_template",
    "nested properties as expression": "unreadable_template",
    "nested template as expression": "unreadable_template",
    "KV ref in nested params (other vault)": "reference_outside_scope",
    "extension scope unresolved": "scope_unresolved",
    "onErrorDeployment": "on_error_deployment",
}


def T(resources: Any, outputs: Any = None, **extra: Any) -> dict[str, Any]:
    return {"$schema": "x", "contentVersion": "1.0.0.0", "resources": resources, "outputs": outputs or {}, **extra}


def run(name: str, tpl: dict[str, Any], params: dict[str, Any] | None = None, what_if: Any = None) -> None:
    CASES.append((name, tpl, params or {}, EXPECTED[name]))


def nested(props: dict[str, Any], **scope: Any) -> dict[str, Any]:
    return {
        "type": "Microsoft.Resources/deployments",
        "apiVersion": "2022-09-01",
        "name": "inner",
        **scope,
        "properties": {"mode": "Incremental", **props},
    }


inner_rg2 = T([{"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01", "name": "x", "location": "w"}])
# baseline
run("baseline nested rg-prod literal", T([nested({"template": inner_rg2}, resourceGroup="rg-prod")]))
# 1 case-variant keys
run("ResourceGroup capitalised", T([nested({"template": inner_rg2}, ResourceGroup="rg-prod")]))
run("Resources capitalised top-level", {"Resources": [nested({"template": inner_rg2}, resourceGroup="rg-prod")]})
run(
    "Type capitalised",
    T(
        [
            {
                "Type": "Microsoft.Resources/deployments",
                "apiVersion": "2022-09-01",
                "name": "i",
                "resourceGroup": "rg-prod",
                "properties": {"mode": "Incremental", "template": inner_rg2},
            }
        ]
    ),
)
run(
    "Properties/TemplateLink capitalised",
    T(
        [
            {
                "type": "Microsoft.Resources/deployments",
                "apiVersion": "2022-09-01",
                "name": "i",
                "properties": {"mode": "Incremental", "TemplateLink": {"uri": "https://evil/x.json"}},
            }
        ]
    ),
)
# 2 inner-scope param unresolved -> default used
inner_p = T([nested({"template": inner_rg2}, resourceGroup="[parameters('rg')]")])
inner_p["parameters"] = {"rg": {"type": "string", "defaultValue": "rg-etl"}}
run(
    "inner-scope param unresolved -> default",
    T(
        [
            nested(
                {
                    "expressionEvaluationOptions": {"scope": "inner"},
                    "parameters": {"rg": {"value": "[reference('ids').outputs.rg.value]"}},
                    "template": inner_p,
                }
            )
        ]
    ),
)
run(
    "inner-scope parametersLink -> default",
    T(
        [
            nested(
                {
                    "expressionEvaluationOptions": {"scope": "inner"},
                    "parametersLink": {"uri": "https://evil/p.json"},
                    "template": inner_p,
                }
            )
        ]
    ),
)
# 3 listKeys in nested deployment parameters
run(
    "listKeys(other) in nested params",
    T(
        [
            nested(
                {
                    "expressionEvaluationOptions": {"scope": "inner"},
                    "parameters": {"k": {"value": f"[listKeys('{OTHER_SA}','2023-01-01').keys[0].value]"}},
                    "template": T(
                        [],
                        parameters={"k": {"type": "string"}},
                        outputs={"k": {"type": "string", "value": "[parameters('k')]"}},
                    ),
                }
            )
        ],
        outputs={"leak": {"type": "string", "value": "[reference('inner').outputs.k.value]"}},
    ),
)
# 4 listKeys with unresolved target in resource props
run(
    "listKeys(copyIndex target) in props",
    T(
        [
            {
                "type": "Microsoft.KeyVault/vaults/secrets",
                "apiVersion": "2023-01-01",
                "name": "[concat('v/s', copyIndex())]",
                "copy": {"name": "c", "count": 1},
                "properties": {
                    "value": "[listKeys(resourceId(variables('subs')[copyIndex()],'rg-prod','Microsoft.Storage/storageAccounts','prodsa'),'2023-01-01').keys[0].value]"
                },
            }
        ],
        variables={"subs": [SUB]},
    ),
)
run(
    "listKeys(reference output id) in props",
    T(
        [
            {
                "type": "Microsoft.KeyVault/vaults/secrets",
                "apiVersion": "2023-01-01",
                "name": "v/s",
                "properties": {"value": "[listKeys(reference('ids').outputs.id.value,'2023-01-01').keys[0].value]"},
            }
        ]
    ),
)
# 5 UDF hides calls
run(
    "UDF wraps listKeys(other) plain output",
    T(
        [],
        outputs={"o": {"type": "string", "value": f"[my.id(listKeys('{OTHER_SA}','2023-01-01').keys[0].value)]"}},
        functions=[
            {
                "namespace": "my",
                "members": {
                    "id": {
                        "parameters": [{"name": "x", "type": "string"}],
                        "output": {"type": "string", "value": "[parameters('x')]"},
                    }
                },
            }
        ],
    ),
)
run(
    "baseline listKeys(other) plain output",
    T([], outputs={"o": {"type": "string", "value": f"[listKeys('{OTHER_SA}','2023-01-01').keys[0].value]"}}),
)
# 6 langVersion 2 existing symbolic
EXISTING_PROD_SA = {
    "type": "Microsoft.Storage/storageAccounts",
    "apiVersion": "2023-01-01",
    "name": "prodsa",
    "existing": True,
    "resourceGroup": "rg-prod",
}
run(
    "2.0 existing symbolic listKeys secure output",
    {
        "languageVersion": "2.0",
        "contentVersion": "1.0.0.0",
        "resources": {
            "sa": EXISTING_PROD_SA
        },
        "outputs": {"k": {"type": "securestring", "value": "[listKeys('sa','2023-01-01').keys[0].value]"}},
    },
)
run(
    "2.0 existing symbolic listKeys into prop",
    {
        "languageVersion": "2.0",
        "contentVersion": "1.0.0.0",
        "resources": {
            "sa": EXISTING_PROD_SA,
            "sec": {
                "type": "Microsoft.KeyVault/vaults/secrets",
                "apiVersion": "2023-01-01",
                "name": "v/s",
                "properties": {"value": "[listKeys('sa','2023-01-01').keys[0].value]"},
            },
        },
    },
)
# 8 unresolved type
t = T(
    [
        {
            "type": "[parameters('t')]",
            "apiVersion": "2022-09-01",
            "name": "i",
            "resourceGroup": "rg-prod",
            "properties": {"mode": "Incremental", "template": inner_rg2},
        }
    ],
    parameters={"t": {"type": "string"}},
)
run(
    "type from KV-ref param",
    t,
    {"t": {"reference": {"keyVault": {"id": RG + "/providers/Microsoft.KeyVault/vaults/v"}, "secretName": "s"}}},
)
# 9 properties as expression
run(
    "nested properties as expression",
    T(
        [
            {
                "type": "Microsoft.Resources/deployments",
                "apiVersion": "2022-09-01",
                "name": "i",
                "properties": "[variables('p')]",
            }
        ],
        variables={"p": {"mode": "Incremental", "templateLink": {"uri": "https://evil"}}},
    ),
)
run("nested template as expression", T([nested({"template": "[variables('t')]"})], variables={"t": inner_rg2}))
# 10 KV reference in nested params to other vault
run(
    "KV ref in nested params (other vault)",
    T(
        [
            nested(
                {
                    "expressionEvaluationOptions": {"scope": "inner"},
                    "parameters": {
                        "s": {
                            "reference": {
                                "keyVault": {
                                    "id": f"/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.KeyVault/vaults/prodkv"
                                },
                                "secretName": "db",
                            }
                        }
                    },
                    "template": T([], parameters={"s": {"type": "securestring"}}),
                }
            )
        ]
    ),
)
# 11 extension scope unresolved
run(
    "extension scope unresolved",
    T(
        [
            {
                "type": "Microsoft.Authorization/locks",
                "apiVersion": "2020-05-01",
                "name": "l",
                "scope": "[reference('ids').outputs.id.value]",
                "properties": {"level": "CanNotDelete"},
            }
        ]
    ),
)
# 12 onErrorDeployment
run(
    "onErrorDeployment",
    T([nested({"template": T([]), "onErrorDeployment": {"type": "SpecificDeployment", "deploymentName": "evil"}})]),
)


@pytest.mark.parametrize(("name", "tpl", "params", "rule"), CASES, ids=[c[0] for c in CASES])
def test_review_case_is_refused(name: str, tpl: dict[str, Any], params: dict[str, Any], rule: str) -> None:
    verdict = judge_content(
        changes=parse_what_if([]),
        diagnostics=(),
        template=tpl,
        parameters=params,
        target=RG,
        fence=FENCE,
        options=ContentOptions(),
    )
    assert rule in [v.rule for v in verdict.violations], [v.message for v in verdict.violations]


@pytest.mark.parametrize("expr", ["[toUpper('rg-\ufb01n')]", "[toUpper('rg-fi\u00dfn')]", "[format('rg-{0:D2}', 1)]"])
def test_functions_whose_offline_result_could_differ_from_arms_stay_unresolved(expr: str) -> None:
    fence = Fence.of([RG, f"/subscriptions/{SUB}/resourceGroups/rg-fin", f"/subscriptions/{SUB}/resourceGroups/rg-1"])
    inner = T([{"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01", "name": "x"}])
    verdict = judge_content(
        changes=(),
        diagnostics=(),
        template=T([nested({"template": inner}, resourceGroup=expr)]),
        parameters={},
        target=RG,
        fence=fence,
        options=ContentOptions(),
    )
    assert [v.rule for v in verdict.violations] == ["nested_scope_unresolved"]


def test_secure_values_never_appear_in_messages() -> None:
    tpl = T(
        [nested({"template": T([])}, resourceGroup="[parameters('cfg').rg]")],
        parameters={"cfg": {"type": "secureObject"}},
    )
    verdict = judge_content(
        changes=(),
        diagnostics=(),
        template=tpl,
        parameters={"cfg": {"value": {"rg": "Sup3rSecret"}}},
        target=RG,
        fence=FENCE,
        options=ContentOptions(),
    )
    assert verdict.violations and all("Sup3rSecret" not in v.message + v.resource_id for v in verdict.violations)
    assert "***" in verdict.violations[0].message


VM = f"{RG}/providers/Microsoft.Compute/virtualMachines/vm1"


def judge_what_if(change: dict[str, Any]) -> Any:
    return judge_content(
        changes=parse_what_if([change]), diagnostics=(), template=None, parameters={}, target=RG, fence=FENCE,
        options=ContentOptions(),
    )
PROD_SUBNET = f"/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.Network/virtualNetworks/v/subnets/s"


@pytest.mark.parametrize(
    "subnet_id",
    [
        PROD_SUBNET,
        PROD_SUBNET + " ",
        " " + PROD_SUBNET,
        "/" + PROD_SUBNET,
        "https://management.azure.com" + PROD_SUBNET,
        VM + "/../../../../rg-prod/providers/Microsoft.Network/virtualNetworks/v/subnets/s",
    ],
)
def test_what_if_ids_in_any_spelling_are_checked(subnet_id: str) -> None:
    change = {"resourceId": VM, "changeType": "Create", "after": {"id": VM, "properties": {"subnet": {"id": subnet_id}}}}
    verdict = judge_what_if(change)
    assert [v.rule for v in verdict.violations] == ["reference_outside_scope"]


def test_urls_of_other_services_are_not_taken_for_ids() -> None:
    change = {"resourceId": VM, "changeType": "Create",
              "after": {"id": VM, "properties": {"blob": "https://sa.blob.core.windows.net/providers/x/y"}}}  # fmt: skip
    verdict = judge_what_if(change)
    assert verdict.violations == ()
