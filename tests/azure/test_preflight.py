"""The least-privilege preflight end to end: real azure-identity and azure-mgmt clients through the hook,
against the ARM emulator process (one per module, reset between tests).

What is asserted is what a DAG author or an admin sees: whether the write is refused, the message that
says why, the access report, and how many ARM requests the check cost (the emulator records every one).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerHook
from airflow_identity_provider.azure.preflight import AccessReport, Preflight, PreflightRefused
from airflow_identity_provider.azure.rules.overprivilege import OWNER_ROLE_ID
from dev.arm_emulator.client import ArmEmulator
from tests.azure.test_arm_emulator import CLIENT, SUB, TENANT, arm_extras, set_conn

pytestmark = pytest.mark.integration

CONN = "arm_preflight"
RG1 = f"/subscriptions/{SUB}/resourceGroups/rg1"
RG10 = f"/subscriptions/{SUB}/resourceGroups/rg10"
RG2 = f"/subscriptions/{SUB}/resourceGroups/rg2"
SUBSCRIPTION = f"/subscriptions/{SUB}"
EVERYONE = "00000000-0000-0000-0000-000000000000"
AUTHZ = r"/providers/Microsoft\.Authorization/"
DEPLOY_ACTIONS = (
    "Microsoft.Resources/deployments/write",
    "Microsoft.Resources/deployments/read",
    "Microsoft.Resources/deployments/operationstatuses/read",
    "Microsoft.Resources/deployments/operations/read",
)
TEMPLATE = {
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "resources": [],
}


# -- fixtures and helpers --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with ArmEmulator() as emu:
        yield emu


@pytest.fixture
def emu(emulator: Any) -> Iterator[Any]:
    emulator.reset()
    yield emulator
    emulator.reset()


@pytest.fixture
def oid() -> str:
    return str(ArmEmulator.principal_oid(client_id=CLIENT))


def make_hook(monkeypatch: pytest.MonkeyPatch, emu: Any, allowed_scopes: list[str] | None = None) -> Any:
    extras = arm_extras(emu, auth_type="client_secret", tenant_id=TENANT)
    if allowed_scopes is None:
        allowed_scopes = [RG1]
    if allowed_scopes:
        extras["allowed_scopes"] = allowed_scopes
    set_conn(monkeypatch, CONN, login=CLIENT, password="sp-secret-value", **extras)
    return AzureResourceManagerHook(CONN)


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch, emu: Any) -> Iterator[Any]:
    """A hook fenced to rg1, with rg1 created; the recording starts empty after that."""
    h = make_hook(monkeypatch, emu)
    h.get_resource_client().resource_groups.create_or_update("rg1", {"location": "westeurope"})
    yield h
    h.close()


def narrow_role(emu: Any, oid: str, scope: str = RG1, role: str = "Contributor") -> None:
    """The caller's only role assignment: ``role`` at ``scope`` (the emulator's default is Contributor on the
    whole subscription, which is exactly what the over-privilege check flags)."""
    emu.set_role_assignments([{"scope": scope, "principalId": oid, "roleName": role}])


def authz_requests(emu: Any) -> list[Any]:
    return list(emu.requests(AUTHZ))


def what_if(hook: Any, emu: Any, changes: list[dict[str, Any]], mode: str = "Incremental") -> Any:
    """A real what-if through the SDK (the LRO's final WhatIfOperationResult model)."""
    emu.set_what_if_changes("*", changes)
    body = {"properties": {"mode": mode, "template": TEMPLATE}}
    return hook.get_deployments_client().deployments.begin_what_if("rg1", "etl", body).result()


def change(resource_id: str, change_type: str = "Create", resource_type: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceId": resource_id, "changeType": change_type}
    if resource_type:
        out["after" if change_type != "Delete" else "before"] = {"type": resource_type}
    return out


STORAGE = f"{RG1}/providers/Microsoft.Storage/storageAccounts/etlstore"


# -- the fence -------------------------------------------------------------------------------------


def test_inside_fence_ok_with_three_reads(hook: Any, emu: Any, oid: str) -> None:
    narrow_role(emu, oid)
    before = len(emu.requests())
    report = Preflight(hook).check(target_scope=RG1, operation="deployment_write")
    calls = emu.requests()[before:]

    assert report.ok and report.verdict is not None and report.verdict.ok
    assert report.principal_id == oid
    assert set(DEPLOY_ACTIONS) <= set(report.verdict.allowed)
    assert report.permission_scope == RG1 and report.fence == (RG1,)
    # Exactly the three reads (permissions, deny assignments, role assignments), nothing else: not even a
    # token request (the hook's credential already holds one and the preflight reuses it).
    assert report.arm_calls == len(calls) == 3
    paths = [(r.method, r.path.lower(), r.query.get("$filter", [None])[0]) for r in calls]
    assert paths == [
        ("GET", f"{RG1}/providers/Microsoft.Authorization/permissions".lower(), None),
        ("GET", f"{RG1}/providers/Microsoft.Authorization/denyAssignments".lower(), "atScope()"),
        ("GET", f"{SUBSCRIPTION}/providers/Microsoft.Authorization/roleAssignments".lower(), f"assignedTo('{oid}')"),
    ]
    assert all(r.status == 200 and r.oid == oid for r in calls)
    # The Contributor-like default grants '*': reported as unused breadth, not high.
    assert [f.kind for f in report.findings] == ["unused_breadth"]
    assert report.findings[0].severity == "medium"


def test_outside_fence_refused_before_any_request(monkeypatch: pytest.MonkeyPatch, emu: Any) -> None:
    hook = make_hook(monkeypatch, emu)
    with pytest.raises(PreflightRefused) as info:
        Preflight(hook).check(target_scope=RG2, operation="deployment_write")
    message = str(info.value)
    assert f"target scope {RG2} is outside connection '{CONN}'" in message
    assert "allowed_scopes" in message and RG1 in message
    assert emu.requests() == []  # no token, no ARM read
    report = info.value.report
    assert isinstance(report, AccessReport)
    assert report.arm_calls == 0 and report.principal_id is None
    assert [v.rule for v in report.violations] == ["outside_scope"]
    hook.close()


@pytest.mark.parametrize(
    "target",
    [
        RG10,  # a string prefix of the fence would admit it; segments do not
        SUBSCRIPTION,  # broader than the fence
        "/subscriptions/8a8a8a8a-1111-2222-3333-444444444445/resourceGroups/rg1",  # same name, other subscription
    ],
)
def test_fence_is_segment_wise(monkeypatch: pytest.MonkeyPatch, emu: Any, target: str) -> None:
    hook = make_hook(monkeypatch, emu)
    with pytest.raises(PreflightRefused, match="is outside connection"):
        Preflight(hook).check(target_scope=target, operation="deployment_write")
    assert emu.requests() == []
    hook.close()


def test_fence_compares_case_insensitively(hook: Any, emu: Any, oid: str) -> None:
    narrow_role(emu, oid)
    target = f"/SUBSCRIPTIONS/{SUB.upper()}/resourcegroups/RG1/providers/Microsoft.Storage/storageAccounts/etl"
    report = Preflight(hook).check(target_scope=target, operation="tags_write")
    assert report.ok and report.verdict is not None
    assert report.verdict.allowed == ("Microsoft.Resources/tags/write",)


def test_empty_allowed_scopes_refused(monkeypatch: pytest.MonkeyPatch, emu: Any) -> None:
    hook = make_hook(monkeypatch, emu, allowed_scopes=[])
    with pytest.raises(PreflightRefused) as info:
        Preflight(hook, least_privilege="off", overprivilege="ignore").check(
            target_scope=RG1, operation="deployment_write"
        )
    message = str(info.value)
    assert "declares no allowed_scopes" in message and "writes are never unfenced" in message
    assert "set the connection extra allowed_scopes" in message
    assert emu.requests() == []
    hook.close()


def test_invalid_target_refused(monkeypatch: pytest.MonkeyPatch, emu: Any) -> None:
    hook = make_hook(monkeypatch, emu)
    with pytest.raises(PreflightRefused, match="cannot be checked against the fence"):
        Preflight(hook).check(target_scope=f"{RG1}/../rg2", operation="deployment_write")
    assert emu.requests() == []
    hook.close()


# -- permissions and deny assignments --------------------------------------------------------------


def test_missing_action_refused_in_enforce(hook: Any, emu: Any, oid: str) -> None:
    narrow_role(emu, oid, role="Reader")
    emu.set_permissions(RG1, [{"actions": ["*/read"]}])
    with pytest.raises(PreflightRefused) as info:
        Preflight(hook).check(target_scope=RG1, operation="deployment_write")
    message = str(info.value)
    assert "is not allowed Microsoft.Resources/deployments/write" in message
    assert "assign it a role that grants these actions" in message and "least_privilege='warn'" in message
    assert "deployments/read" not in message.split("is not allowed", 1)[1].split(" at ", 1)[0]
    report = info.value.report
    assert report is not None and report.verdict is not None
    assert report.verdict.missing == ("Microsoft.Resources/deployments/write",)


def test_missing_action_only_warned_in_warn(hook: Any, emu: Any, oid: str, caplog: pytest.LogCaptureFixture) -> None:
    narrow_role(emu, oid, role="Reader")
    emu.set_permissions(RG1, [{"actions": ["*/read"]}])
    caplog.set_level(logging.INFO, logger="airflow_identity_provider.azure.preflight")
    report = Preflight(hook, least_privilege="warn").check(target_scope=RG1, operation="deployment_write")
    assert not report.ok and report.verdict is not None
    assert report.verdict.missing == ("Microsoft.Resources/deployments/write",)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # one block per check
    assert "MISSING" in warnings[0] and "Microsoft.Resources/deployments/write" in warnings[0]
    assert f"principal (oid): {oid}" in warnings[0]


def test_extra_actions_are_checked(hook: Any, emu: Any, oid: str) -> None:
    narrow_role(emu, oid)
    with pytest.raises(PreflightRefused, match=re.escape("Microsoft.Authorization/locks/write")):
        Preflight(hook).check(
            target_scope=RG1, operation="deployment_write", extra_actions=["Microsoft.Authorization/locks/write"]
        )


def test_deny_assignment_for_the_principal_refused(hook: Any, emu: Any, oid: str) -> None:
    narrow_role(emu, oid)
    emu.set_deny_assignments(
        [
            {
                "scope": SUBSCRIPTION,
                "denyAssignmentName": "stack-deny-deployments",
                "actions": ["Microsoft.Resources/deployments/*"],
                "principals": [{"id": oid, "type": "ServicePrincipal"}],
            }
        ]
    )
    with pytest.raises(PreflightRefused) as info:
        Preflight(hook).check(target_scope=RG1, operation="deployment_write")
    message = str(info.value)
    assert "denied to this identity by deny assignment 'stack-deny-deployments'" in message
    assert "excludePrincipals" in message
    report = info.value.report
    assert report is not None and report.verdict is not None
    assert ("Microsoft.Resources/deployments/write", "stack-deny-deployments") in report.verdict.denied


@pytest.mark.parametrize("excluded", [True, False])
def test_everyone_deny_respects_exclude_principals(hook: Any, emu: Any, oid: str, excluded: bool) -> None:
    narrow_role(emu, oid)
    emu.set_deny_assignments(
        [
            {
                "scope": RG1,
                "denyAssignmentName": "managed-app-lock",
                "actions": ["*/write"],
                "principals": [{"id": EVERYONE, "type": "SystemDefined"}],
                "excludePrincipals": [{"id": oid, "type": "ServicePrincipal"}] if excluded else [],
            }
        ]
    )
    preflight = Preflight(hook)
    if excluded:
        assert preflight.check(target_scope=RG1, operation="deployment_write").ok
    else:
        with pytest.raises(PreflightRefused, match="managed-app-lock"):
            preflight.check(target_scope=RG1, operation="deployment_write")


def test_403_on_permissions_is_not_allowed(hook: Any, emu: Any, oid: str) -> None:
    narrow_role(emu, oid)
    emu.fail_request(r"/providers/Microsoft\.Authorization/permissions$", status=403)
    with pytest.raises(PreflightRefused) as info:
        Preflight(hook).check(target_scope=RG1, operation="deployment_write")
    message = str(info.value)
    assert "is not allowed Microsoft.Resources/deployments/write" in message
    assert "ARM refused to list this identity's permissions" in message and "403 AuthorizationFailed" in message


def test_empty_permissions_are_not_allowed(hook: Any, emu: Any, oid: str) -> None:
    narrow_role(emu, oid)
    emu.set_permissions(RG1, [])
    with pytest.raises(PreflightRefused, match="lists no permissions for this identity"):
        Preflight(hook).check(target_scope=RG1, operation="deployment_write")


def test_other_arm_errors_are_surfaced_verbatim(hook: Any, emu: Any) -> None:
    emu.fail_request(
        r"/denyAssignments$", status=400, code="InvalidFilterInQueryString", message="The filter 'atScope()' is bad."
    )
    with pytest.raises(PreflightRefused) as info:
        Preflight(hook).check(target_scope=RG1, operation="deployment_write")
    message = str(info.value)
    assert f"could not read deny assignments at {RG1} through connection '{CONN}'" in message
    assert "InvalidFilterInQueryString" in message and "The filter 'atScope()' is bad." in message


def test_403_on_deny_assignments_is_noted_not_fatal(hook: Any, emu: Any, oid: str) -> None:
    narrow_role(emu, oid)
    emu.fail_request(r"/denyAssignments$", status=403)
    report = Preflight(hook).check(target_scope=RG1, operation="deployment_write")
    assert report.verdict is not None and report.verdict.ok
    assert any("deny assignments" in n and "were not checked" in n for n in report.notes)


def test_least_privilege_off_skips_reads_but_not_the_fence(hook: Any, emu: Any, oid: str) -> None:
    narrow_role(emu, oid)
    before = len(emu.requests())
    report = Preflight(hook, least_privilege="off").check(target_scope=RG1, operation="deployment_write")
    calls = emu.requests()[before:]
    assert report.verdict is None and report.arm_calls == len(calls) == 1
    assert calls[0].path.lower().endswith("/roleassignments")
    with pytest.raises(PreflightRefused, match="is outside connection"):
        Preflight(hook, least_privilege="off", overprivilege="ignore").check(
            target_scope=RG10, operation="deployment_write"
        )


# -- what-if ---------------------------------------------------------------------------------------


def test_what_if_inside_fence_adds_derived_actions(hook: Any, emu: Any, oid: str) -> None:
    narrow_role(emu, oid)
    result = what_if(hook, emu, [change(STORAGE, "Create", "Microsoft.Storage/storageAccounts")])
    report = Preflight(hook).check(target_scope=RG1, operation="deployment_write", what_if=result, mode="Incremental")
    assert report.ok
    assert "Microsoft.Storage/storageAccounts/write" in report.required_actions
    assert report.verdict is not None and "Microsoft.Storage/storageAccounts/write" in report.verdict.allowed


def test_what_if_change_outside_fence_refused(hook: Any, emu: Any, oid: str) -> None:
    narrow_role(emu, oid)
    outside = f"{RG2}/providers/Microsoft.Storage/storageAccounts/sneaky"
    result = what_if(hook, emu, [change(STORAGE, "Create"), change(outside, "Create")])
    with pytest.raises(PreflightRefused) as info:
        Preflight(hook).check(target_scope=RG1, operation="deployment_write", what_if=result)
    message = str(info.value)
    assert f"what-if predicts Create of {outside}" in message and "outside the connection's allowed_scopes" in message
    report = info.value.report
    assert report is not None and [v.rule for v in report.violations] == ["outside_scope"]


def test_what_if_delete_needs_allow_delete_changes(hook: Any, emu: Any, oid: str) -> None:
    narrow_role(emu, oid)
    result = what_if(hook, emu, [change(STORAGE, "Delete", "Microsoft.Storage/storageAccounts")])
    preflight = Preflight(hook)
    with pytest.raises(PreflightRefused, match="set allow_delete_changes=True on the operator"):
        preflight.check(target_scope=RG1, operation="deployment_write", what_if=result)
    report = preflight.check(target_scope=RG1, operation="deployment_write", what_if=result, allow_delete_changes=True)
    assert report.ok and "Microsoft.Storage/storageAccounts/delete" in report.required_actions


def test_what_if_role_assignment_needs_allow_rbac_changes(hook: Any, emu: Any, oid: str) -> None:
    narrow_role(emu, oid, role="Owner")
    emu.set_permissions(RG1, [{"actions": ["*"]}])  # Owner-like: may assign roles
    ra = f"{RG1}/providers/Microsoft.Authorization/roleAssignments/6f1e1d4c-0000-4000-8000-000000000001"
    result = what_if(hook, emu, [change(ra, "Create", "Microsoft.Authorization/roleAssignments")])
    preflight = Preflight(hook)
    with pytest.raises(PreflightRefused, match="set allow_rbac_changes=True on the operator"):
        preflight.check(target_scope=RG1, operation="deployment_write", what_if=result)
    report = preflight.check(target_scope=RG1, operation="deployment_write", what_if=result, allow_rbac_changes=True)
    assert "Microsoft.Authorization/roleAssignments/write" in report.required_actions
    # Escalation capability is needed here, so it is reported at medium instead of failing the task.
    escalation = [f for f in report.findings if f.kind == "escalation"]
    assert escalation and escalation[0].severity == "medium"


def test_what_if_role_assignment_with_contributor_is_missing_the_right(hook: Any, emu: Any, oid: str) -> None:
    narrow_role(emu, oid)
    ra = f"{RG1}/providers/Microsoft.Authorization/roleAssignments/6f1e1d4c-0000-4000-8000-000000000002"
    result = what_if(hook, emu, [change(ra, "Create", "Microsoft.Authorization/roleAssignments")])
    with pytest.raises(
        PreflightRefused, match=re.escape("is not allowed Microsoft.Authorization/roleAssignments/write")
    ):
        Preflight(hook).check(target_scope=RG1, operation="deployment_write", what_if=result, allow_rbac_changes=True)


def test_complete_mode_needs_allow_complete_mode(hook: Any, emu: Any, oid: str) -> None:
    narrow_role(emu, oid)
    result = what_if(hook, emu, [change(STORAGE, "Create", "Microsoft.Storage/storageAccounts")], mode="Complete")
    preflight = Preflight(hook)
    with pytest.raises(PreflightRefused, match="set allow_complete_mode=True on the operator"):
        preflight.check(target_scope=RG1, operation="deployment_write", what_if=result, mode="Complete")
    assert preflight.check(
        target_scope=RG1, operation="deployment_write", what_if=result, mode="Complete", allow_complete_mode=True
    ).ok


def test_what_if_violations_hold_even_with_least_privilege_off(hook: Any, emu: Any) -> None:
    body = {"status": "Succeeded", "properties": {"changes": [change(STORAGE, "Delete")]}}
    with pytest.raises(PreflightRefused, match="allow_delete_changes"):
        Preflight(hook, least_privilege="off", overprivilege="ignore").check(
            target_scope=RG1, operation="deployment_write", what_if=body
        )


def test_failed_what_if_is_refused(hook: Any, emu: Any) -> None:
    body = {"status": "Failed", "error": {"code": "InvalidTemplate", "message": "nope"}}
    with pytest.raises(PreflightRefused, match="what-if ended 'Failed'"):
        Preflight(hook, least_privilege="off", overprivilege="ignore").check(
            target_scope=RG1, operation="deployment_write", what_if=body
        )


# -- over-privilege --------------------------------------------------------------------------------


def test_contributor_at_subscription_fails_in_fail_mode(hook: Any, emu: Any, oid: str) -> None:
    # The emulator's default: the caller is Contributor on the whole subscription.
    with pytest.raises(PreflightRefused) as info:
        Preflight(hook, overprivilege="fail").check(target_scope=RG1, operation="deployment_write")
    message = str(info.value)
    assert f"Contributor assigned at {SUBSCRIPTION}" in message and f"assign it at {RG1} instead" in message
    assert "overprivilege='fail'" in message
    report = info.value.report
    assert report is not None and report.verdict is not None and report.verdict.ok  # only over-privilege failed
    broad = [f for f in report.findings if f.kind == "broad_assignment"]
    assert broad and broad[0].severity == "high"


def test_contributor_at_subscription_warns_in_warn_mode(
    hook: Any, emu: Any, oid: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="airflow_identity_provider.azure.preflight")
    report = Preflight(hook).check(target_scope=RG1, operation="deployment_write")
    assert not report.ok  # high finding
    assert any(f.kind == "broad_assignment" and f.severity == "high" for f in report.findings)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "[high] Contributor assigned at" in warnings[0]


def test_overprivilege_ignore_skips_the_role_assignment_read(hook: Any, emu: Any) -> None:
    before = len(emu.requests())
    report = Preflight(hook, overprivilege="ignore").check(target_scope=RG1, operation="deployment_write")
    calls = emu.requests()[before:]
    assert report.findings == () and report.arm_calls == len(calls) == 2
    assert not any("roleassignments" in r.path.lower() for r in calls)


def test_403_on_role_assignments_falls_back_to_permissions(hook: Any, emu: Any, oid: str) -> None:
    emu.set_role_assignments([{"scope": SUBSCRIPTION, "principalId": oid, "roleDefinitionId": OWNER_ROLE_ID}])
    emu.set_permissions(RG1, [{"actions": ["*"]}])  # Owner-like
    emu.fail_request(r"/roleAssignments$", status=403)
    report = Preflight(hook).check(target_scope=RG1, operation="deployment_write")
    assert report.verdict is not None and report.verdict.ok
    assert any("role assignments" in n and "403" in n for n in report.notes)
    kinds = {f.kind: f.severity for f in report.findings}
    assert "broad_assignment" not in kinds  # could not be seen
    assert kinds["escalation"] == "high"  # but the permissions show it can assign roles
    with pytest.raises(PreflightRefused, match="roleAssignments/write"):
        emu.fail_request(r"/roleAssignments$", status=403)
        Preflight(hook, overprivilege="fail").check(target_scope=RG1, operation="deployment_write")


def test_403_on_role_assignments_with_least_privilege_off_reads_permissions(hook: Any, emu: Any) -> None:
    emu.fail_request(r"/roleAssignments$", status=403)
    before = len(emu.requests())
    report = Preflight(hook, least_privilege="off").check(target_scope=RG1, operation="deployment_write")
    calls = emu.requests()[before:]
    assert report.arm_calls == len(calls) == 2
    assert calls[1].path.lower() == f"{SUBSCRIPTION}/providers/Microsoft.Authorization/permissions".lower()
    assert [f.kind for f in report.findings] == ["unused_breadth"]


# -- operations, cache, report ---------------------------------------------------------------------


def test_resource_group_create_reads_the_subscription(monkeypatch: pytest.MonkeyPatch, emu: Any, oid: str) -> None:
    hook = make_hook(monkeypatch, emu, allowed_scopes=[f"{SUBSCRIPTION}/resourceGroups/rg-new"])
    narrow_role(emu, oid, scope=f"{SUBSCRIPTION}/resourceGroups/rg-new")
    report = Preflight(hook).check(
        target_scope=f"{SUBSCRIPTION}/resourceGroups/rg-new", operation="resource_group_write"
    )
    calls = authz_requests(emu)
    assert report.ok and report.permission_scope == SUBSCRIPTION
    assert report.arm_calls == len(calls) == 3
    assert all(not r.path.lower().startswith(f"{SUBSCRIPTION}/resourcegroups/".lower()) for r in calls)
    hook.close()


def test_resource_group_update_with_group_scoped_role(hook: Any, emu: Any, oid: str) -> None:
    """Only a group-scoped role grants the update: the subscription falls short, the group itself is asked."""
    narrow_role(emu, oid)
    emu.set_permissions(SUBSCRIPTION, [{"actions": ["*/read"]}])
    emu.set_permissions(RG1, [{"actions": ["*/read"]}, {"actions": ["Microsoft.Resources/*"]}])
    report = Preflight(hook).check(target_scope=RG1, operation="resource_group_write")
    assert report.verdict is not None and report.verdict.ok
    assert report.permission_scope == RG1 and report.arm_calls == 4


def test_missing_resource_group_falls_back_to_the_subscription(
    monkeypatch: pytest.MonkeyPatch, emu: Any, oid: str
) -> None:
    hook = make_hook(monkeypatch, emu, allowed_scopes=[SUBSCRIPTION])
    narrow_role(emu, oid)
    report = Preflight(hook).check(target_scope=f"{SUBSCRIPTION}/resourceGroups/ghost", operation="deployment_write")
    assert report.verdict is not None and report.verdict.ok
    assert report.permission_scope == SUBSCRIPTION
    assert any("does not exist" in n and "ResourceGroupNotFound" in n for n in report.notes)
    assert report.arm_calls == len(authz_requests(emu)) == 4
    hook.close()


def test_repeated_check_is_served_from_the_cache(hook: Any, emu: Any, oid: str) -> None:
    narrow_role(emu, oid)
    preflight = Preflight(hook)
    first = preflight.check(target_scope=RG1, operation="deployment_write")
    count = len(emu.requests())
    again = preflight.check(target_scope=RG1, operation="deployment_write")
    assert len(emu.requests()) == count  # no ARM read, no token request
    assert again.cached and again.arm_calls == 0 and not first.cached and first.arm_calls == 3
    assert again.verdict == first.verdict and again.findings == first.findings
    # Another operation is another key: it reads again.
    preflight.check(target_scope=RG1, operation="tags_write")
    assert len(emu.requests()) == count + 3
    # A new Preflight (the next task execution) starts empty.
    Preflight(hook).check(target_scope=RG1, operation="deployment_write")
    assert len(emu.requests()) == count + 6


def test_report_to_dict_is_json_serialisable(hook: Any, emu: Any, oid: str) -> None:
    emu.set_permissions(RG1, [{"actions": ["*/read"]}])
    body = {"properties": {"changes": [change(STORAGE, "Create", "Microsoft.Storage/storageAccounts")]}}
    report = Preflight(hook, least_privilege="warn").check(target_scope=RG1, operation="deployment_write", what_if=body)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False and data["principal_id"] == oid and data["target_scope"] == RG1
    assert data["verdict"]["missing"] == [
        "Microsoft.Resources/deployments/write",
        "Microsoft.Storage/storageAccounts/write",
    ]
    assert data["arm_calls"] == 3 and data["fence"] == [RG1]
    assert {f["kind"] for f in data["findings"]} >= {"broad_assignment"}
    assert report.summary_lines()[0] == f"ARM preflight: deployment_write at {RG1}"


def test_principal_comes_from_the_unverified_oid_claim() -> None:
    from airflow_identity_provider.azure.preflight.arm_reads import principal_from_token as _principal_from_token

    def jwt(claims: dict[str, Any]) -> str:
        import base64

        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"eyJhbGciOiJub25lIn0.{body}.sig"

    assert _principal_from_token(jwt({"oid": "AB-CD"})) == "ab-cd"
    assert _principal_from_token(jwt({"sub": "x"})) is None
    assert _principal_from_token("opaque-token") is None
    assert _principal_from_token("a.!!!.c") is None


def test_fence_only_check_is_offline(monkeypatch: pytest.MonkeyPatch, emu: Any) -> None:
    """Both modes off: the operators' fence-only check sends nothing at all, not even a token request."""
    hook = make_hook(monkeypatch, emu)
    report = Preflight(hook, least_privilege="off", overprivilege="ignore").check(
        target_scope=RG1, operation="deployment_write", mode="Incremental"
    )
    assert report.ok and report.arm_calls == 0 and report.principal_id is None
    assert emu.requests() == []
    hook.close()
