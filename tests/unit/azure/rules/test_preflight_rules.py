"""Unit tests for airflow_identity_provider.azure.rules.preflight_rules: pure, no network, milliseconds."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_identity_provider.azure.rules.preflight_rules import (
    CHANGE_TYPES,
    REQUIRED_ACTIONS,
    Violation,
    WhatIfChange,
    check_changes,
    check_mode,
    contained_delete_actions,
    derived_actions,
    parse_what_if,
    required_actions,
)
from airflow_identity_provider.azure.rules.rbac import PermissionEntry, evaluate
from airflow_identity_provider.azure.rules.scopes import parse_scope

SUB = "11111111-2222-3333-4444-555555555555"
SUB2 = "99999999-2222-3333-4444-555555555555"
S = f"/subscriptions/{SUB}"
RG = f"{S}/resourceGroups/rg-etl"
SA = f"{RG}/providers/Microsoft.Storage/storageAccounts/stairflow01"
KV = f"{RG}/providers/Microsoft.KeyVault/vaults/kv1"
SUBNET = f"{RG}/providers/Microsoft.Network/virtualNetworks/vn1/subnets/sn1"
NESTED = f"{RG}/providers/Microsoft.Resources/deployments/inner"
OTHER_RG = f"{S}/resourceGroups/rg-prod"
FENCE = [RG]


def change(rid: str, change_type: str = "Create", rtype: str | None = None, where: str = "after") -> WhatIfChange:
    body: dict[str, Any] = {"resourceId": rid, "changeType": change_type}
    if rtype is not None:
        body[where] = {"type": rtype, "name": rid.rsplit("/", 1)[-1]}
    return WhatIfChange.from_api(body)


# ----------------------------------------------------------------------------------- required actions


def test_required_actions_table() -> None:
    assert REQUIRED_ACTIONS["deployment_write"] == (
        "Microsoft.Resources/deployments/write",
        "Microsoft.Resources/deployments/read",
        "Microsoft.Resources/deployments/operationstatuses/read",
        "Microsoft.Resources/deployments/operations/read",
    )
    assert REQUIRED_ACTIONS["resource_group_write"][0] == "Microsoft.Resources/subscriptions/resourceGroups/write"
    assert REQUIRED_ACTIONS["resource_group_delete"][0] == "Microsoft.Resources/subscriptions/resourceGroups/delete"
    assert REQUIRED_ACTIONS["deployment_cancel"] == ("Microsoft.Resources/deployments/cancel/action",)
    assert REQUIRED_ACTIONS["deployment_validate"] == ("Microsoft.Resources/deployments/validate/action",)
    assert REQUIRED_ACTIONS["deployment_what_if"] == ("Microsoft.Resources/deployments/whatIf/action",)
    assert REQUIRED_ACTIONS["tags_write"] == ("Microsoft.Resources/tags/write",)
    with pytest.raises(TypeError):
        REQUIRED_ACTIONS["x"] = ()  # type: ignore[index]


@pytest.mark.parametrize(
    ("kind", "granted", "ok"),
    [
        ("deployment_write", ["Microsoft.Resources/deployments/*"], True),
        ("deployment_write", ["*/read"], False),
        ("deployment_what_if", ["Microsoft.Resources/deployments/*"], True),
        ("deployment_validate", ["Microsoft.Resources/deployments/write"], False),
        ("resource_group_write", ["Microsoft.Resources/subscriptions/resourceGroups/*"], True),
        ("resource_group_delete", ["Microsoft.Resources/subscriptions/resourceGroups/write", "*/read"], False),
        ("tags_write", ["Microsoft.Resources/tags/*"], True),
        ("lock_write", ["*"], True),
    ],
)
def test_required_actions_evaluate(kind: str, granted: list[str], ok: bool) -> None:
    verdict = evaluate([PermissionEntry(actions=tuple(granted))], [], None, REQUIRED_ACTIONS[kind], RG)
    assert verdict.ok is ok


def test_required_actions_helper() -> None:
    extra = ["microsoft.resources/deployments/WRITE", "Microsoft.Insights/diagnosticSettings/write"]
    assert required_actions("deployment_write", extra) == (
        *REQUIRED_ACTIONS["deployment_write"],
        "Microsoft.Insights/diagnosticSettings/write",
    )
    with pytest.raises(KeyError, match=r"unknown operation kind 'deploy'.*deployment_write"):
        required_actions("deploy")


def test_contained_delete_actions() -> None:
    assert contained_delete_actions(
        ["Microsoft.Storage/storageAccounts", "microsoft.storage/storageaccounts", "Microsoft.Resources/resourceGroups"]
    ) == ("Microsoft.Storage/storageAccounts/delete", "Microsoft.Resources/subscriptions/resourceGroups/delete")


# ------------------------------------------------------------------------------------------ what-if parse


@pytest.mark.parametrize(
    ("body", "rtype", "ctype"),
    [
        (
            {"resourceId": SA, "changeType": "Create", "after": {"type": "Microsoft.Storage/storageAccounts"}},
            None,
            None,
        ),
        (
            {"resourceId": SA, "changeType": "Delete", "before": {"type": "Microsoft.Storage/storageAccounts"}},
            None,
            None,
        ),
        ({"resourceId": SA, "changeType": "create"}, None, "Create"),  # type parsed from the id; case normalised
        ({"resource_id": SA, "change_type": "Modify", "after": None, "before": None}, None, "Modify"),  # as_dict()
        ({"resourceId": SUBNET, "changeType": "Create"}, "Microsoft.Network/virtualNetworks/subnets", None),
        (
            {
                "resourceId": SUBNET,
                "changeType": "Create",
                "after": {"type": "Microsoft.Network/virtualNetworks/subnets"},
            },
            "Microsoft.Network/virtualNetworks/subnets",
            None,
        ),
        ({"resourceId": NESTED, "changeType": "Deploy"}, "Microsoft.Resources/deployments", None),
        ({"resourceId": RG, "changeType": "Create"}, "Microsoft.Resources/resourceGroups", None),
        (
            {"resourceId": f"{SA}/providers/Microsoft.Authorization/roleAssignments/ra1", "changeType": "Create"},
            "Microsoft.Authorization/roleAssignments",
            None,
        ),
    ],
)
def test_what_if_change_from_api(body: dict[str, Any], rtype: str | None, ctype: str | None) -> None:
    c = WhatIfChange.from_api(body)
    assert c.resource_id == body.get("resourceId", body.get("resource_id"))
    assert c.resource_type == (rtype or "Microsoft.Storage/storageAccounts")
    if ctype:
        assert c.change_type == ctype
    assert c.scope is not None


def test_what_if_change_declared_type_preferred_and_both_kept() -> None:
    c = change(SA, "Modify", "Microsoft.Storage/storageAccounts/odd")
    assert c.resource_type == "Microsoft.Storage/storageAccounts/odd"
    assert c.types == ("Microsoft.Storage/storageAccounts/odd", "Microsoft.Storage/storageAccounts")
    assert change(SA, "Modify", "microsoft.storage/STORAGEACCOUNTS").types == ("microsoft.storage/STORAGEACCOUNTS",)


def test_what_if_change_unparseable_and_unknown() -> None:
    c = WhatIfChange.from_api({"resourceId": "not an id", "changeType": "Teleport"})
    assert c.scope is None
    assert c.resource_type is None
    assert c.change_type == "Teleport"
    blank = WhatIfChange.from_api({})
    assert blank.resource_id == ""
    assert blank.change_type == ""
    with pytest.raises(ValueError, match="JSON object"):
        WhatIfChange.from_api([SA])  # type: ignore[arg-type]


def test_what_if_change_unsupported_reason() -> None:
    c = WhatIfChange.from_api({"resourceId": SA, "changeType": "Unsupported", "unsupportedReason": "reference()"})
    assert c.unsupported_reason == "reference()"


def test_parse_what_if_shapes() -> None:
    final = {
        "status": "Succeeded",
        "properties": {
            "changes": [
                {"resourceId": SA, "changeType": "Create", "after": {"type": "Microsoft.Storage/storageAccounts"}},
                {"resourceId": KV, "changeType": "Modify", "before": {}, "after": {}, "delta": []},
            ],
            "potentialChanges": [{"resourceId": f"{OTHER_RG}/providers/Microsoft.Web/sites/w", "changeType": "Create"}],
            "diagnostics": [],
        },
    }
    parsed = parse_what_if(final)
    assert [c.resource_id for c in parsed] == [SA, KV, f"{OTHER_RG}/providers/Microsoft.Web/sites/w"]
    assert parsed[1].resource_type == "Microsoft.KeyVault/vaults"
    assert parse_what_if(final["properties"]) == parsed
    assert parse_what_if({"changes": [], "potential_changes": [{"resource_id": SA, "change_type": "Create"}]}) == (
        change(SA),
    )
    assert parse_what_if([{"resourceId": SA, "changeType": "Create"}]) == (change(SA),)
    assert parse_what_if({"status": "Succeeded", "properties": {"changes": None}}) == ()
    with pytest.raises(ValueError, match="must be a list"):
        parse_what_if({"changes": "Create"})
    with pytest.raises(ValueError, match="expected a what-if result"):
        parse_what_if("changes")
    with pytest.raises(ValueError, match="'properties' must be a JSON object"):
        parse_what_if({"properties": []})


# ----------------------------------------------------------------------------------------- derived actions


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ([change(SA, "Create")], ("Microsoft.Storage/storageAccounts/write",)),
        ([change(KV, "Modify")], ("Microsoft.KeyVault/vaults/write",)),
        ([change(SA, "Deploy")], ("Microsoft.Storage/storageAccounts/write",)),
        ([change(SA, "Delete")], ("Microsoft.Storage/storageAccounts/delete",)),
        # Ignore is a write: past what-if's expansion limits it marks resources ARM still deploys.
        ([change(SA, "Ignore")], ("Microsoft.Storage/storageAccounts/write",)),
        ([change(SA, "NoChange")], ("Microsoft.Storage/storageAccounts/write",)),  # ARM still PUTs it
        ([change(SA, "Unsupported")], ("Microsoft.Storage/storageAccounts/write",)),
        ([change(SA, "Teleport")], ("Microsoft.Storage/storageAccounts/write",)),  # unknown: fail closed
        ([change(SUBNET, "Create")], ("Microsoft.Network/virtualNetworks/subnets/write",)),
        ([change(NESTED, "Create")], ("Microsoft.Resources/deployments/write",)),
        ([change(RG, "Create")], ("Microsoft.Resources/subscriptions/resourceGroups/write",)),
        (
            [change(f"{S}/resourceGroups/rg2", "Delete", "Microsoft.Resources/resourceGroups", "before")],
            ("Microsoft.Resources/subscriptions/resourceGroups/delete",),
        ),
        (
            [change(f"{SA}/providers/Microsoft.Authorization/roleAssignments/r", "Create")],
            ("Microsoft.Authorization/roleAssignments/write",),
        ),
        (
            [
                change(SA, "Create"),
                change(f"{RG}/providers/Microsoft.Storage/storageAccounts/other", "modify"),
                change(SA, "Delete"),
                change(SUBNET, "Modify", "Microsoft.Network/virtualNetworks/subnets"),
                change(KV, "Ignore"),
            ],
            (
                "Microsoft.Storage/storageAccounts/write",
                "Microsoft.Storage/storageAccounts/delete",
                "Microsoft.Network/virtualNetworks/subnets/write",
                "Microsoft.KeyVault/vaults/write",
            ),
        ),
        ([], ()),
    ],
)
def test_derived_actions(changes: list[WhatIfChange], expected: tuple[str, ...]) -> None:
    assert derived_actions(changes) == expected


def test_derived_actions_without_redeploys() -> None:
    changes = [change(SA, "NoChange"), change(KV, "Unsupported"), change(SUBNET, "Create")]
    assert derived_actions(changes, include_redeploys=False) == (
        "Microsoft.Network/virtualNetworks/subnets/write",
    )


def test_derived_actions_errors() -> None:
    with pytest.raises(ValueError, match="cannot tell the resource type"):
        derived_actions([WhatIfChange.from_api({"resourceId": "garbage", "changeType": "Create"})])
    # An Ignore is a write too, so an unknown type raises like any other write.
    with pytest.raises(ValueError, match="cannot tell the resource type"):
        derived_actions([WhatIfChange.from_api({"resourceId": "x", "changeType": "Ignore"})])


def test_derived_actions_feed_evaluate() -> None:
    changes = [change(SA, "Create"), change(SUBNET, "Modify")]
    needed = (*REQUIRED_ACTIONS["deployment_write"], *derived_actions(changes))
    role = PermissionEntry(actions=("Microsoft.Resources/deployments/*", "Microsoft.Storage/storageAccounts/*"))
    verdict = evaluate([role], [], None, needed, RG)
    assert verdict.missing == ("Microsoft.Network/virtualNetworks/subnets/write",)


# ------------------------------------------------------------------------------------------ check_changes


def rules(violations: list[Violation]) -> list[str]:
    return [v.rule for v in violations]


def test_clean_plan_has_no_violations() -> None:
    changes = [
        change(SA, "Create", "Microsoft.Storage/storageAccounts"),
        change(KV, "Modify"),
        change(SUBNET, "Deploy"),
        change(NESTED, "NoChange"),
        change(f"{RG}/providers/Microsoft.Web/sites/w", "Ignore"),  # inside the fence: fine
    ]
    assert check_changes(changes, FENCE, allow_delete=False, allow_rbac_changes=False, allowed_change_types=None) == []


@pytest.mark.parametrize(
    ("c", "fence", "expected"),
    [
        (change(f"{OTHER_RG}/providers/Microsoft.Storage/storageAccounts/x"), FENCE, ["outside_scope"]),
        (change(f"{S}/resourceGroups/rg-etl0/providers/Microsoft.Storage/storageAccounts/x"), FENCE, ["outside_scope"]),
        (change(f"/subscriptions/{SUB2}/resourceGroups/rg-etl"), FENCE, ["outside_scope"]),
        (change(f"{S}/resourceGroups/rg-etl2"), FENCE, ["outside_scope"]),
        (change(S + "/providers/Microsoft.Resources/deployments/sub-level"), FENCE, ["outside_scope"]),
        (change(f"{OTHER_RG}/providers/Microsoft.Resources/deployments/nested", "Deploy"), FENCE, ["outside_scope"]),
        (change(f"{OTHER_RG}/providers/Microsoft.Storage/storageAccounts/x", "NoChange"), FENCE, ["outside_scope"]),
        (change(f"{OTHER_RG}/providers/Microsoft.Storage/storageAccounts/x", "Unsupported"), FENCE, ["outside_scope"]),
        # Ignore may still be deployed (what-if limits), so outside the fence it is refused like a Create.
        (change(f"{OTHER_RG}/providers/Microsoft.Storage/storageAccounts/x", "Ignore"), FENCE, ["outside_scope"]),
        (change(f"{S}/resourcegroups/RG-ETL/providers/Microsoft.Storage/storageAccounts/x"), FENCE, []),
        (change(f"{OTHER_RG}/providers/Microsoft.Storage/storageAccounts/x"), [RG, OTHER_RG], []),
        (change(f"{OTHER_RG}/providers/Microsoft.Storage/storageAccounts/x"), [S], []),
        (change(SA), [], ["outside_scope"]),  # no fence admits nothing
        (change(SA), ["/providers/Microsoft.Management/managementGroups/mg"], ["outside_scope"]),
        (change("not-an-id"), FENCE, ["invalid_resource_id"]),
        (change(f"{RG}/../rg-prod/providers/Microsoft.Storage/storageAccounts/x"), FENCE, ["invalid_resource_id"]),
        (change(""), FENCE, ["invalid_resource_id"]),
    ],
)
def test_fence(c: WhatIfChange, fence: list[str], expected: list[str]) -> None:
    assert rules(check_changes([c], fence)) == expected


def test_outside_scope_message() -> None:
    rid = f"{OTHER_RG}/providers/Microsoft.Storage/storageAccounts/x"
    (v,) = check_changes([change(rid, "Create", "Microsoft.Storage/storageAccounts")], FENCE)
    assert v.resource_id == rid
    assert v.message.startswith(
        f"what-if predicts Create of {rid} (Microsoft.Storage/storageAccounts), outside the connection's "
        f"allowed_scopes ({RG})"
    )
    assert "Add the scope to allowed_scopes on the connection" in v.message
    (empty,) = check_changes([change(SA)], [])
    assert "allowed_scopes, which is empty" in empty.message
    (bad,) = check_changes([change("nope")], FENCE)
    assert "'nope', which is not a valid ARM id" in bad.message


@pytest.mark.parametrize("allow_delete", [False, True])
def test_delete_rule(allow_delete: bool) -> None:
    violations = check_changes(
        [change(SA, "Delete", "Microsoft.Storage/storageAccounts", "before")], FENCE, allow_delete=allow_delete
    )
    if allow_delete:
        assert violations == []
    else:
        (v,) = violations
        assert v.rule == "delete"
        assert v.message == (
            f"what-if predicts Delete of {SA} (Microsoft.Storage/storageAccounts); set allow_delete_changes=True "
            "on the operator to permit deletions"
        )


@pytest.mark.parametrize(
    "rid",
    [
        f"{RG}/providers/Microsoft.Authorization/roleAssignments/ra1",
        f"{SA}/providers/Microsoft.Authorization/roleAssignments/ra1",
        f"{RG}/providers/Microsoft.Authorization/roleDefinitions/rd1",
        f"{RG}/providers/Microsoft.Authorization/locks/lock1",
        f"{SA}/providers/Microsoft.Authorization/locks/lock1",
        f"{RG}/providers/Microsoft.Authorization/policyAssignments/pa1",
        f"{RG}/providers/Microsoft.Authorization/policyDefinitions/pd1",
        f"{RG}/providers/Microsoft.Authorization/policySetDefinitions/ps1",
        f"{RG}/providers/Microsoft.Authorization/policyExemptions/pe1",
        f"{RG}/providers/Microsoft.Authorization/denyAssignments/da1",
        f"{RG}/providers/MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/ra1",
        f"{RG}/providers/Microsoft.Authorization/roleEligibilityScheduleRequests/x",  # whole namespace
    ],
)
def test_rbac_rule(rid: str) -> None:
    (v,) = check_changes([change(rid)], FENCE)
    assert v.rule == "rbac_change"
    assert "set allow_rbac_changes=True on the operator" in v.message
    assert check_changes([change(rid)], FENCE, allow_rbac_changes=True) == []
    assert rules(check_changes([change(rid, "Ignore")], FENCE)) == ["rbac_change"]  # Ignore may be deployed


def test_rbac_rule_declared_type_or_id_type() -> None:
    # The id says storage, the declared type says roleAssignments (or vice versa): either is enough.
    assert rules(check_changes([change(SA, "Create", "Microsoft.Authorization/roleAssignments")], FENCE)) == [
        "rbac_change"
    ]
    lying = change(f"{RG}/providers/Microsoft.Authorization/locks/l", "Create", "Microsoft.Storage/storageAccounts")
    assert rules(check_changes([lying], FENCE)) == ["rbac_change"]


@pytest.mark.parametrize(
    ("allowed", "change_type", "violates"),
    [
        ({"Create"}, "Create", False),
        ({"create", "MODIFY"}, "Modify", False),
        ({"Create"}, "Modify", True),
        ({"Create"}, "Deploy", True),
        ({"Create"}, "Unsupported", True),
        ({"Create"}, "NoChange", False),  # changes nothing
        ({"Create"}, "Ignore", False),
        (set(), "Create", True),
        (set(), "NoChange", False),
        (None, "Deploy", False),
        (["Create", "Modify"], "Create", False),
    ],
)
def test_change_type_rule(allowed: Any, change_type: str, violates: bool) -> None:
    result = check_changes([change(SA, change_type)], FENCE, allowed_change_types=allowed)
    assert rules(result) == (["change_type"] if violates else [])
    if violates:
        assert f"add {change_type!r} to allowed_change_types on the operator" in result[0].message


def test_change_type_message_lists_allowed() -> None:
    (v,) = check_changes([change(SA, "Modify")], FENCE, allowed_change_types={"Deploy", "Create"})
    assert "allowed_change_types allows only Create, Deploy" in v.message
    (none,) = check_changes([change(SA, "Modify")], FENCE, allowed_change_types=set())
    assert "allows only no changes" in none.message


@pytest.mark.parametrize("bad", [{"Created"}, {"Create", "delete_all"}, "Create"])
def test_allowed_change_types_validated(bad: Any) -> None:
    with pytest.raises(ValueError, match="allowed_change_types"):
        check_changes([], FENCE, allowed_change_types=bad)


def test_unknown_change_type_rule() -> None:
    (v,) = check_changes([change(SA, "Teleport")], FENCE)
    assert v.rule == "unknown_change_type"
    assert "'Teleport'" in v.message
    # Not double-reported under allowed_change_types.
    assert rules(check_changes([change(SA, "Teleport")], FENCE, allowed_change_types={"Create"})) == [
        "unknown_change_type"
    ]


def test_every_rule_at_once_in_order() -> None:
    rid = f"{OTHER_RG}/providers/Microsoft.Authorization/roleAssignments/ra1"
    changes = [
        change(SA, "Create"),
        change(rid, "Delete"),
        change("garbage", "Teleport"),
    ]
    violations = check_changes(changes, FENCE, allowed_change_types={"Create"})
    assert [(v.rule, v.resource_id) for v in violations] == [
        ("outside_scope", rid),
        ("delete", rid),
        ("rbac_change", rid),
        ("change_type", rid),
        ("unknown_change_type", "garbage"),
        ("invalid_resource_id", "garbage"),
    ]
    relaxed = check_changes(
        changes[:2], [S], allow_delete=True, allow_rbac_changes=True, allowed_change_types=set(CHANGE_TYPES)
    )
    assert relaxed == []


def test_fence_accepts_parsed_scopes_and_rejects_bad_fence() -> None:
    assert check_changes([change(SA)], [parse_scope(RG)]) == []
    with pytest.raises(ValueError, match="not a valid ARM scope"):
        check_changes([change(SA)], ["rg-etl"])


# --------------------------------------------------------------------------------------------- check_mode


@pytest.mark.parametrize(
    ("mode", "allow", "rule"),
    [
        ("Incremental", False, None),
        ("incremental", False, None),
        ("Incremental", True, None),
        ("Complete", True, None),
        ("COMPLETE", True, None),
        ("Complete", False, "complete_mode"),
        (" complete ", False, "complete_mode"),
        ("Partial", True, "invalid_mode"),
        ("", False, "invalid_mode"),
    ],
)
def test_check_mode(mode: str, allow: bool, rule: str | None) -> None:
    v = check_mode(mode, allow, deployment_id=f"{RG}/providers/Microsoft.Resources/deployments/d")
    if rule is None:
        assert v is None
        return
    assert v is not None
    assert v.rule == rule
    assert v.resource_id.endswith("/deployments/d")
    if rule == "complete_mode":
        assert "set allow_complete_mode=True on the operator" in v.message
        assert "deletes every resource in the resource group that the template does not define" in v.message
    else:
        assert repr(mode) in v.message
