"""Unit tests for ...azure.rules.scopes, .rbac and .overprivilege: pure, no network, milliseconds."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_identity_provider.azure.rules.overprivilege import (
    CONTRIBUTOR_ROLE_ID,
    OWNER_ROLE_ID,
    RBAC_ADMINISTRATOR_ROLE_ID,
    READER_ROLE_ID,
    ROLE_NAMES,
    USER_ACCESS_ADMINISTRATOR_ROLE_ID,
    Finding,
    RoleAssignment,
    broad_assignments,
    escalation_capable,
    escalation_findings,
    unused_breadth,
)
from airflow_identity_provider.azure.rules.rbac import (
    EVERYONE_PRINCIPAL_ID,
    DenyAssignment,
    PermissionEntry,
    PermissionVerdict,
    action_matches,
    denied_by,
    evaluate,
    is_action_allowed,
    parse_permissions,
)
from airflow_identity_provider.azure.rules.scopes import (
    ArmScope,
    ScopeError,
    ascii_fold,
    first_containing,
    is_within,
    parse_scope,
)


def scope_name(scope: ArmScope) -> str | None:
    """Last segment (the subscription id, resource group name, resource name...); None for the root."""
    return scope.segments[-1] if scope.segments else None

SUB = "11111111-2222-3333-4444-555555555555"
SUB2 = "99999999-2222-3333-4444-555555555555"
S = f"/subscriptions/{SUB}"
RG = f"{S}/resourceGroups/rg-etl"
SA = f"{RG}/providers/Microsoft.Storage/storageAccounts/stairflow01"
MG = "/providers/Microsoft.Management/managementGroups/mg-data"
ME = "aaaaaaaa-0000-0000-0000-000000000001"
OTHER = "bbbbbbbb-0000-0000-0000-000000000002"
GROUP = "cccccccc-0000-0000-0000-000000000003"

DEPLOY_ACTIONS = (
    "Microsoft.Resources/deployments/write",
    "Microsoft.Resources/deployments/read",
    "Microsoft.Resources/deployments/operationstatuses/read",
    "Microsoft.Resources/deployments/operations/read",
)

# Built-in role permission shapes (abridged from the real definitions).
CONTRIBUTOR = PermissionEntry.from_api(
    {
        "actions": ["*"],
        "notActions": [
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
        ],
        "dataActions": [],
        "notDataActions": [],
    }
)
READER = PermissionEntry.from_api({"actions": ["*/read"], "notActions": [], "dataActions": [], "notDataActions": []})
OWNER = PermissionEntry.from_api({"actions": ["*"], "notActions": []})
DEPLOYER = PermissionEntry.from_api(
    {
        "actions": ["Microsoft.Resources/deployments/*", "*/read"],
        "notActions": ["Microsoft.Resources/deployments/delete"],
        "dataActions": [],
        "notDataActions": [],
    }
)


# ------------------------------------------------------------------------------------------- parse_scope


@pytest.mark.parametrize(
    ("text", "canonical", "kind", "sub", "rg", "rtype"),
    [
        ("/", "/", "root", None, None, None),
        (" / ", "/", "root", None, None, None),
        (S, S, "subscription", SUB, None, "Microsoft.Resources/subscriptions"),
        (S.upper().replace("SUBSCRIPTIONS", "subscriptions"), S, "subscription", SUB, None, None),
        (S + "/", S, "subscription", SUB, None, None),
        (RG, RG, "resource_group", SUB, "rg-etl", "Microsoft.Resources/resourceGroups"),
        (f"{S}/resourcegroups/rg-etl", RG, "resource_group", SUB, "rg-etl", None),
        (f"{S}/RESOURCEGROUPS/rg-etl/", RG, "resource_group", SUB, "rg-etl", None),
        (f"/SUBSCRIPTIONS/{SUB}/ResourceGroups/rg-etl", RG, "resource_group", SUB, "rg-etl", None),
        ("/subscriptions/S", "/subscriptions/S", "subscription", "S", None, None),
        (SA, SA, "resource", SUB, "rg-etl", "Microsoft.Storage/storageAccounts"),
        (
            f"{RG}/providers/Microsoft.Network/virtualNetworks/vn1/subnets/sn1",
            f"{RG}/providers/Microsoft.Network/virtualNetworks/vn1/subnets/sn1",
            "resource",
            SUB,
            "rg-etl",
            "Microsoft.Network/virtualNetworks/subnets",
        ),
        (
            f"{SA}/providers/Microsoft.Authorization/roleAssignments/x1",
            f"{SA}/providers/Microsoft.Authorization/roleAssignments/x1",
            "resource",
            SUB,
            "rg-etl",
            "Microsoft.Authorization/roleAssignments",
        ),
        (
            f"{S}/providers/Microsoft.Resources/deployments/d1",
            f"{S}/providers/Microsoft.Resources/deployments/d1",
            "resource",
            SUB,
            None,
            "Microsoft.Resources/deployments",
        ),
        (MG, MG, "management_group", None, None, "Microsoft.Management/managementGroups"),
        (
            "/PROVIDERS/microsoft.management/MANAGEMENTGROUPS/mg-data/",
            MG,
            "management_group",
            None,
            None,
            None,
        ),
        (
            f"{MG}/providers/Microsoft.Authorization/policyAssignments/pa1",
            f"{MG}/providers/Microsoft.Authorization/policyAssignments/pa1",
            "resource",
            None,
            None,
            "Microsoft.Authorization/policyAssignments",
        ),
        (
            "/providers/Microsoft.Authorization/roleDefinitions/r1",
            "/providers/Microsoft.Authorization/roleDefinitions/r1",
            "resource",
            None,
            None,
            "Microsoft.Authorization/roleDefinitions",
        ),
    ],
)
def test_parse_scope_shapes(
    text: str, canonical: str, kind: str, sub: str | None, rg: str | None, rtype: str | None
) -> None:
    scope = parse_scope(text)
    assert str(scope) == canonical
    assert scope.kind == kind
    assert scope.subscription_id == sub
    assert scope.resource_group == rg
    if rtype is not None:
        assert scope.resource_type == rtype
    assert parse_scope(str(scope)) == scope  # canonical form round-trips


def test_parse_scope_management_group_fields() -> None:
    scope = parse_scope(MG)
    assert scope.management_group == "mg-data"
    assert scope_name(scope) == "mg-data"
    assert parse_scope(f"{MG}/providers/Microsoft.Authorization/policyAssignments/p").management_group == "mg-data"
    assert scope_name(parse_scope("/")) is None


def test_scope_equality_and_hash_ignore_case() -> None:
    a = parse_scope(f"{S}/resourceGroups/RG-ETL")
    b = parse_scope(f"{S.upper().replace('SUBSCRIPTIONS', 'subscriptions')}/resourcegroups/rg-etl/")
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert str(a).endswith("RG-ETL")  # names keep their spelling
    assert repr(a) == f"ArmScope('{S}/resourceGroups/RG-ETL')"
    assert parse_scope(a) is a


def test_guid_subscription_is_lowercased_others_kept() -> None:
    assert str(parse_scope(f"/subscriptions/{SUB.upper()}")) == S
    assert str(parse_scope("/subscriptions/MySub")) == "/subscriptions/MySub"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("subscriptions/x", "must start with '/'"),
        (f"https://management.azure.com{S}", "not a URL"),
        ("//", "empty segment"),
        ("/subscriptions", "subscription id is missing"),
        ("/subscriptions/", "subscription id is missing"),
        ("/subscriptions//resourceGroups/rg", "empty segment"),
        (f"{S}//resourceGroups/rg", "empty segment"),
        (f"{S}/resourceGroups", "resource group name is missing"),
        (f"{S}/resourceGroups/", "resource group name is missing"),
        (f"{S}/resourceGroups/bad*name", "not a valid resource group name"),
        (f"{S}/resourceGroups/endsindot.", "not a valid resource group name"),
        (f"{S}/locations/westeurope", "expected 'providers'"),
        ("/tenants/x", "must start with /subscriptions or /providers"),
        ("/providers", "must be followed by <Namespace>/<type>/<name>"),
        (f"{S}/providers/Microsoft.Storage", "must be followed by"),
        (f"{RG}/providers/Microsoft.Storage/storageAccounts", "must be followed by"),
        (f"{RG}/providers/storage/storageAccounts/sa", "not a resource provider namespace"),
        (f"{RG}/providers/Microsoft.Network/virtualNetworks/vn/subnets", "has no name"),
        (f"{RG}/providers/Microsoft.Network/virtualNetworks/vn/$bad/x", "is not a resource type"),
        (f"{RG}/providers/Microsoft.Network/$bad/x", "is not a resource type"),
        (f"{RG}/../rg-prod", "'..' is not allowed"),
        (f"{RG}/./x", "'.' is not allowed"),
        (f"{S}/resourceGroups/rg-etl%2F..%2Frg-prod", "character ARM ids do not allow"),
        (f"{RG}?api-version=2022-04-01", "character ARM ids do not allow"),
        (f"{RG}#frag", "character ARM ids do not allow"),
        (f"{S}/resourceGroups/rg\\x", "character ARM ids do not allow"),
        (f"{S}/resourceGroups/rg\netl", "character ARM ids do not allow"),
        (f"{S}/resourceGroups/ rg", "character ARM ids do not allow"),
    ],
)
def test_parse_scope_rejects_malformed(text: str, reason: str) -> None:
    with pytest.raises(ScopeError) as exc:
        parse_scope(text)
    message = str(exc.value)
    assert repr(text) in message  # names the bad input
    assert reason in message
    assert "/subscriptions/<subscriptionId>/resourceGroups/<name>" in message  # and the expected shapes
    assert isinstance(exc.value, ValueError)


@pytest.mark.parametrize("value", [None, 42, b"/subscriptions/x", ["/"]])
def test_parse_scope_rejects_non_strings(value: Any) -> None:
    with pytest.raises(ScopeError, match="expected a string"):
        parse_scope(value)


# --------------------------------------------------------------------------------------------- is_within


@pytest.mark.parametrize(
    ("target", "allowed", "expected"),
    [
        (RG, RG, True),
        (SA, RG, True),
        (f"{SA}/blobServices/default/containers/c1", RG, True),
        (f"{S}/resourceGroups/rg1", f"{S}/resourceGroups/rg1", True),
        (f"{S}/resourceGroups/rg10", f"{S}/resourceGroups/rg1", False),
        (f"{S}/resourceGroups/rg1", f"{S}/resourceGroups/rg10", False),
        (f"{S}/resourceGroups/rg1-prod", f"{S}/resourceGroups/rg1", False),
        (f"{S}/resourceGroups/rg10/providers/Microsoft.Storage/storageAccounts/sa", f"{S}/resourceGroups/rg1", False),
        (f"{S}/resourcegroups/RG-ETL/", RG, True),
        (RG.upper().replace("RESOURCEGROUPS", "resourcegroups").replace("SUBSCRIPTIONS", "subscriptions"), RG, True),
        (RG, S, True),
        (SA, S, True),
        (f"{S}/providers/Microsoft.Authorization/roleAssignments/x", S, True),
        (S, RG, False),
        (f"/subscriptions/{SUB2}/resourceGroups/rg-etl", S, False),
        (f"/subscriptions/{SUB}0/resourceGroups/rg-etl", S, False),
        (RG, "/", True),
        (MG, "/", True),
        ("/", "/", True),
        ("/", S, False),
        (MG, MG, True),
        (f"{MG}/providers/Microsoft.Authorization/policyAssignments/pa", MG, True),
        ("/providers/Microsoft.Management/managementGroups/mg-data2", MG, False),
        # Subscriptions' MG membership is not knowable offline: an MG fence never admits them.
        (S, MG, False),
        (RG, MG, False),
        (SA, MG, False),
        (MG, S, False),
        # Resource-level fence: only that resource and its children.
        (f"{SA}/blobServices/default", SA, True),
        (f"{RG}/providers/Microsoft.Storage/storageAccounts/stairflow012", SA, False),
        (RG, SA, False),
    ],
)
def test_is_within(target: str, allowed: str, expected: bool) -> None:
    assert is_within(target, allowed) is expected
    assert is_within(parse_scope(target), allowed) is expected
    assert parse_scope(allowed).contains(target) is expected


def test_is_within_rejects_malformed() -> None:
    with pytest.raises(ScopeError):
        is_within(f"{S}//x", S)
    with pytest.raises(ScopeError):
        is_within(S, "subscriptions/x")


def test_first_containing() -> None:
    fences = [f"{S}/resourceGroups/rg1", f"{S}/resourceGroups/rg10", S]
    assert first_containing(f"{S}/resourceGroups/rg10/providers/A.B/c/d", fences) == parse_scope(fences[1])
    assert first_containing(f"{S}/resourceGroups/rg2", fences) == parse_scope(S)
    assert first_containing(f"/subscriptions/{SUB2}", fences) is None
    assert first_containing(RG, []) is None
    result = first_containing(RG, [parse_scope("/")])
    assert isinstance(result, ArmScope)
    assert result.kind == "root"


# ------------------------------------------------------------------------------------------ action match


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("*", "Microsoft.Storage/storageAccounts/write", True),
        ("*/read", "Microsoft.Storage/storageAccounts/read", True),
        ("*/read", "Microsoft.Storage/storageAccounts/write", False),
        ("*/read", "Microsoft.Storage/storageAccounts/read/extra", False),
        ("Microsoft.Resources/*/read", "Microsoft.Resources/deployments/operations/read", True),
        ("Microsoft.Resources/*/read", "Microsoft.Storage/deployments/read", False),
        ("Microsoft.CostManagement/exports/*", "Microsoft.CostManagement/exports/run/action", True),
        ("Microsoft.Storage/*", "microsoft.storage/storageaccounts/WRITE", True),
        ("MICROSOFT.AUTHORIZATION/*/WRITE", "Microsoft.Authorization/roleAssignments/write", True),
        ("Microsoft.Authorization/*/Write", "Microsoft.Authorization/locks/write", True),
        ("Microsoft.Storage/storageAccounts/write", "Microsoft.Storage/storageAccounts/write", True),
        ("Microsoft.Storage/storageAccounts/write", "Microsoft.Storage/storageAccounts/writeX", False),
        ("Microsoft.Storage/storageAccounts/write", "Microsoft.Storage/storageAccounts/write\n", False),
        ("Microsoft.Storage/storageAccounts/write", "XMicrosoft.Storage/storageAccounts/write", False),
        ("Microsoft.Storage/storageAccounts/*", "Microsoft.Storage/storageAccountsX/write", False),
        # Regex metacharacters are literal.
        ("Microsoft.Storage/storageAccounts/write", "MicrosoftXStorage/storageAccounts/write", False),
        ("Microsoft.Web/sites/(config)/*", "Microsoft.Web/sites/(config)/write", True),
        ("a*b*c", "aXXbYYc", True),
        ("a*b*c", "aXXcYYb", False),
        ("", "", True),
        ("", "x", False),
    ],
)
def test_action_matches(pattern: str, action: str, expected: bool) -> None:
    assert action_matches(pattern, action) is expected


# --------------------------------------------------------------------------- permission truth table (4.2)


@pytest.mark.parametrize(
    ("entries", "action", "expected"),
    [
        # Contributor-like: * minus Microsoft.Authorization/*/Write
        ([CONTRIBUTOR], "Microsoft.Resources/deployments/write", True),
        ([CONTRIBUTOR], "Microsoft.Storage/storageAccounts/write", True),
        ([CONTRIBUTOR], "Microsoft.Authorization/roleAssignments/write", False),
        ([CONTRIBUTOR], "Microsoft.Authorization/locks/write", False),
        ([CONTRIBUTOR], "microsoft.authorization/LOCKS/WRITE", False),
        ([CONTRIBUTOR], "Microsoft.Authorization/roleAssignments/read", True),
        ([CONTRIBUTOR], "Microsoft.Authorization/elevateAccess/action", False),
        # Reader */read: only reads
        ([READER], "Microsoft.Resources/deployments/read", True),
        ([READER], "Microsoft.Authorization/denyAssignments/read", True),
        ([READER], "Microsoft.Resources/deployments/write", False),
        ([READER], "Microsoft.Resources/deployments/whatIf/action", False),
        # Custom deployments/* minus deployments/delete
        ([DEPLOYER], "Microsoft.Resources/deployments/write", True),
        ([DEPLOYER], "Microsoft.Resources/deployments/cancel/action", True),
        ([DEPLOYER], "Microsoft.Resources/deployments/delete", False),
        ([DEPLOYER], "MICROSOFT.RESOURCES/DEPLOYMENTS/DELETE", False),
        ([DEPLOYER], "Microsoft.Storage/storageAccounts/write", False),
        # Union of two roles: NotActions is per entry, not a deny
        ([CONTRIBUTOR, READER], "Microsoft.Storage/storageAccounts/write", True),
        ([CONTRIBUTOR, READER], "Microsoft.Authorization/roleAssignments/write", False),
        ([CONTRIBUTOR, READER], "Microsoft.Authorization/roleAssignments/read", True),
        ([DEPLOYER, CONTRIBUTOR], "Microsoft.Resources/deployments/delete", True),
        ([CONTRIBUTOR, OWNER], "Microsoft.Authorization/roleAssignments/write", True),
        # Nothing granted
        ([], "Microsoft.Resources/deployments/read", False),
        ([PermissionEntry()], "Microsoft.Resources/deployments/read", False),
    ],
)
def test_truth_table(entries: list[PermissionEntry], action: str, expected: bool) -> None:
    assert is_action_allowed(entries, action) is expected


def test_data_actions_are_separate() -> None:
    blob_read = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
    blob_delete = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete"
    data_role = PermissionEntry.from_api(
        {
            "actions": [],
            "dataActions": ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"],
            "notDataActions": [blob_delete],
        }
    )
    assert is_action_allowed([data_role], blob_read, data=True)
    assert not is_action_allowed([data_role], blob_delete, data=True)
    assert not is_action_allowed([data_role], blob_read)  # not a control-plane grant
    assert not is_action_allowed([OWNER], blob_read, data=True)  # Owner's "*" is control plane only


def test_permission_entry_from_api_shapes() -> None:
    camel = PermissionEntry.from_api({"actions": ["a/*"], "notActions": ["a/b"], "dataActions": ["d"]})
    snake = PermissionEntry.from_api({"actions": ["a/*"], "not_actions": ["a/b"], "data_actions": ["d"]})
    assert camel == snake == PermissionEntry(("a/*",), ("a/b",), ("d",), ())
    assert PermissionEntry.from_api({"actions": None}) == PermissionEntry()


@pytest.mark.parametrize(
    "bad",
    [
        {"actions": "*"},  # a bare string must not become the grant "*"
        {"actions": [1]},
        {"notActions": "x"},
        {"dataActions": {"a": 1}},
    ],
)
def test_permission_entry_rejects_bad_shapes(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be a list of strings"):
        PermissionEntry.from_api(bad)


def test_permission_entry_rejects_non_object() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        PermissionEntry.from_api(["*"])  # type: ignore[arg-type]


def test_parse_permissions_payloads() -> None:
    page = {"value": [{"actions": ["*/read"]}, {"actions": ["x/*"]}], "nextLink": None}
    assert parse_permissions(page) == (PermissionEntry(("*/read",)), PermissionEntry(("x/*",)))
    role_def = {"id": "r", "properties": {"roleName": "Contributor", "permissions": [{"actions": ["*"]}]}}
    assert parse_permissions(role_def) == (PermissionEntry(("*",)),)
    assert parse_permissions({"permissions": [{"actions": ["*"]}]}) == (PermissionEntry(("*",)),)
    assert parse_permissions([{"actions": ["*"]}]) == (PermissionEntry(("*",)),)
    assert parse_permissions({"value": []}) == ()
    assert parse_permissions(None) == ()
    with pytest.raises(ValueError, match="list of permission entries"):
        parse_permissions({"value": "*"})


# ------------------------------------------------------------------------------------- deny assignments


def _deny(
    *,
    actions: list[str] | None = None,
    not_actions: list[str] | None = None,
    principals: list[str] | None = None,
    exclude: list[str] | None = None,
    scope: str | None = RG,
    children: bool = False,
    name: str = "deny-stack",
    data_actions: list[str] | None = None,
) -> dict[str, Any]:
    props: dict[str, Any] = {
        "denyAssignmentName": name,
        "permissions": [
            {
                "actions": actions if actions is not None else ["*/delete"],
                "notActions": not_actions or [],
                "dataActions": data_actions or [],
                "notDataActions": [],
            }
        ],
        "doNotApplyToChildScopes": children,
        "principals": [{"id": p, "type": "SystemDefined"} for p in (principals or [EVERYONE_PRINCIPAL_ID])],
        "excludePrincipals": [{"id": p, "type": "ServicePrincipal"} for p in (exclude or [])],
        "isSystemProtected": True,
    }
    if scope is not None:
        props["scope"] = scope
    return {
        "id": f"{scope or RG}/providers/Microsoft.Authorization/denyAssignments/{name}-id",
        "name": f"{name}-id",
        "properties": props,
    }


def test_deny_assignment_from_api() -> None:
    da = DenyAssignment.from_api(_deny(principals=[EVERYONE_PRINCIPAL_ID], exclude=[ME.upper()]))
    assert da.name == "deny-stack"
    assert da.scope == parse_scope(RG)
    assert da.principals == (EVERYONE_PRINCIPAL_ID,)
    assert da.exclude_principals == (ME,)  # lower-cased
    assert not da.do_not_apply_to_child_scopes
    assert da.is_system_protected
    assert da.id.endswith("deny-stack-id")
    assert da.permissions[0].actions == ("*/delete",)


def test_deny_assignment_from_api_variants() -> None:
    # Scope derived from the id when absent; properties given flat; snake_case.
    derived = DenyAssignment.from_api(_deny(scope=None))
    assert derived.scope == parse_scope(RG)
    flat = DenyAssignment.from_api(
        {
            "deny_assignment_name": "flat",
            "scope": S,
            "permissions": [{"actions": ["*"]}],
            "principals": [EVERYONE_PRINCIPAL_ID],
            "exclude_principals": [],
            "do_not_apply_to_child_scopes": True,
        }
    )
    assert flat.name == "flat"
    assert flat.do_not_apply_to_child_scopes
    assert flat.principals == (EVERYONE_PRINCIPAL_ID,)
    tenant = DenyAssignment.from_api(
        {"id": "/providers/Microsoft.Authorization/denyAssignments/x", "properties": {"permissions": []}}
    )
    assert tenant.scope == parse_scope("/")
    assert tenant.name == "/providers/Microsoft.Authorization/denyAssignments/x"


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"properties": {"permissions": [], "denyAssignmentName": "n"}}, "neither a 'scope' nor an id"),
        ({"properties": {"scope": RG, "denyAssignmentName": "n"}}, "'permissions' must be a list"),
        ({"properties": {"scope": RG, "permissions": "*"}}, "'permissions' must be a list"),
        ({"properties": {"scope": RG, "permissions": [], "principals": "everyone"}}, "principals must be a list"),
        ({"properties": {"scope": RG, "permissions": [], "principals": [{"type": "User"}]}}, "need an 'id'"),
        ({"properties": []}, "JSON object"),
    ],
)
def test_deny_assignment_rejects_bad_shapes(payload: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DenyAssignment.from_api(payload)


def test_deny_assignment_bad_scope_is_scope_error() -> None:
    with pytest.raises(ScopeError):
        DenyAssignment.from_api({"properties": {"scope": "rg-etl", "permissions": []}})


@pytest.mark.parametrize(
    ("deny", "principal", "member_of", "action", "target", "applies"),
    [
        # Everyone: applies to anybody at the scope and below.
        (_deny(), ME, (), "Microsoft.Storage/storageAccounts/delete", RG, True),
        (_deny(), ME, (), "Microsoft.Storage/storageAccounts/delete", SA, True),
        (_deny(), ME, (), "Microsoft.Storage/storageAccounts/write", SA, False),  # action not denied
        (_deny(), ME, (), "Microsoft.Storage/storageAccounts/delete", S, False),  # above the deny scope
        (_deny(), ME, (), "Microsoft.Storage/storageAccounts/delete", f"{S}/resourceGroups/rg-etl2", False),
        # Everyone + excludePrincipals
        (_deny(exclude=[ME]), ME, (), "x/delete", RG, False),
        (_deny(exclude=[ME.upper()]), ME, (), "x/delete", RG, False),
        (_deny(exclude=[ME]), OTHER, (), "x/delete", RG, True),
        (_deny(exclude=[GROUP]), ME, (GROUP,), "x/delete", RG, False),  # excluded via a known group
        # Named principals
        (_deny(principals=[OTHER]), ME, (), "x/delete", RG, False),
        (_deny(principals=[ME]), ME, (), "x/delete", RG, True),
        (_deny(principals=[ME.upper()]), ME, (), "x/delete", RG, True),
        (_deny(principals=[GROUP]), ME, (GROUP,), "x/delete", RG, True),
        (_deny(principals=[GROUP]), ME, (), "x/delete", RG, False),  # membership unknown to the caller
        # Unknown identity: any deny naming principals applies, exclusions cannot help (fail closed)
        (_deny(principals=[OTHER]), None, (), "x/delete", RG, True),
        (_deny(exclude=[ME]), None, (), "x/delete", RG, True),
        # doNotApplyToChildScopes: exact scope only
        (_deny(children=True), ME, (), "x/delete", RG, True),
        (_deny(children=True), ME, (), "x/delete", f"{S}/resourcegroups/RG-ETL/", True),
        (_deny(children=True), ME, (), "x/delete", SA, False),
        (_deny(children=False), ME, (), "x/delete", SA, True),
        # Deny's own notActions
        (_deny(actions=["*"], not_actions=["*/read"]), ME, (), "x/read", RG, False),
        (_deny(actions=["*"], not_actions=["*/read"]), ME, (), "x/write", RG, True),
        (_deny(actions=["Microsoft.Storage/*"]), ME, (), "microsoft.storage/storageaccounts/WRITE", SA, True),
    ],
)
def test_denied_by(
    deny: dict[str, Any],
    principal: str | None,
    member_of: tuple[str, ...],
    action: str,
    target: str,
    applies: bool,
) -> None:
    da = DenyAssignment.from_api(deny)
    result = denied_by([da], principal, action, target, member_of=member_of)
    assert (result is da) if applies else (result is None)


def test_denied_by_data_actions_and_first_match() -> None:
    blob_delete = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete"
    data_deny = DenyAssignment.from_api(_deny(actions=[], data_actions=["*/delete"], name="data"))
    control_deny = DenyAssignment.from_api(_deny(name="control"))
    assert denied_by([data_deny], ME, blob_delete, SA) is None
    assert denied_by([data_deny], ME, blob_delete, SA, data=True) is data_deny
    assert denied_by([], ME, blob_delete, SA) is None
    second = DenyAssignment.from_api(_deny(name="second"))
    assert denied_by([control_deny, second], ME, "x/delete", SA) is control_deny


# --------------------------------------------------------------------------------------------- evaluate


def test_evaluate_all_allowed() -> None:
    verdict = evaluate([DEPLOYER], [], ME, DEPLOY_ACTIONS, RG)
    assert verdict.ok
    assert verdict.allowed == DEPLOY_ACTIONS
    assert verdict.missing == ()
    assert verdict.denied == ()


def test_evaluate_missing_and_denied() -> None:
    required = (*DEPLOY_ACTIONS, "Microsoft.Resources/deployments/delete", "Microsoft.Storage/storageAccounts/write")
    deny = DenyAssignment.from_api(_deny(actions=["Microsoft.Resources/deployments/write"], name="stack-deny"))
    verdict = evaluate([DEPLOYER], [deny], ME, required, RG)
    assert not verdict.ok
    assert verdict.missing == ("Microsoft.Resources/deployments/delete", "Microsoft.Storage/storageAccounts/write")
    assert verdict.denied == (("Microsoft.Resources/deployments/write", "stack-deny"),)
    assert verdict.allowed == DEPLOY_ACTIONS[1:]


def test_evaluate_action_both_missing_and_denied() -> None:
    deny = DenyAssignment.from_api(_deny(name="d"))
    verdict = evaluate([READER], [deny], ME, ["x/delete"], RG)
    assert verdict.missing == ("x/delete",)
    assert verdict.denied == (("x/delete", "d"),)
    assert verdict.allowed == ()


def test_evaluate_dedupes_case_insensitively_and_empty_permissions_fail() -> None:
    verdict = evaluate([], [], ME, ["A/write", "a/WRITE", "b/read"], RG)
    assert verdict.missing == ("A/write", "b/read")
    assert not verdict.ok
    assert evaluate([OWNER], [], ME, [], RG) == PermissionVerdict((), (), ())
    assert evaluate([OWNER], [], ME, [], RG).ok


def test_evaluate_excluded_principal_not_denied() -> None:
    deny = DenyAssignment.from_api(_deny(actions=["*"], exclude=[ME]))
    assert evaluate([CONTRIBUTOR], [deny], ME, DEPLOY_ACTIONS, SA).ok
    assert not evaluate([CONTRIBUTOR], [deny], OTHER, DEPLOY_ACTIONS, SA).ok


def test_evaluate_child_scope_flag() -> None:
    deny = DenyAssignment.from_api(_deny(actions=["*"], children=True))
    assert not evaluate([CONTRIBUTOR], [deny], ME, DEPLOY_ACTIONS, RG).ok
    assert evaluate([CONTRIBUTOR], [deny], ME, DEPLOY_ACTIONS, SA).ok


def test_evaluate_data_plane() -> None:
    blob_read = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
    entry = PermissionEntry(data_actions=("Microsoft.Storage/*",))
    assert evaluate([entry], [], ME, [blob_read], SA, data=True).ok
    assert not evaluate([entry], [], ME, [blob_read], SA).ok


# ------------------------------------------------------------------------------------ role assignments


def _ra(role_guid: str, scope: str, *, condition: str | None = None, role_sub: str = SUB) -> dict[str, Any]:
    guid = "0b5e8f4c-0000-0000-0000-00000000abcd"
    return {
        "id": f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{guid}",
        "name": guid,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": f"/subscriptions/{role_sub}/providers/Microsoft.Authorization/roleDefinitions/"
            + role_guid,
            "principalId": ME,
            "principalType": "ServicePrincipal",
            "scope": scope,
            "condition": condition,
        },
    }


def test_role_assignment_from_api() -> None:
    ra = RoleAssignment.from_api(_ra(CONTRIBUTOR_ROLE_ID, S))
    assert ra.role_guid == CONTRIBUTOR_ROLE_ID
    assert ra.role_name == "Contributor"
    assert ra.scope == S
    assert ra.principal_id == ME
    assert ra.principal_type == "ServicePrincipal"
    assert ra.condition is None
    upper = RoleAssignment.from_api(_ra(OWNER_ROLE_ID.upper(), RG))
    assert upper.role_guid == OWNER_ROLE_ID
    custom = RoleAssignment.from_api(_ra("12345678-0000-0000-0000-000000000000", RG))
    assert custom.role_name == "12345678-0000-0000-0000-000000000000"


def test_role_assignment_from_api_variants_and_errors() -> None:
    payload = _ra(READER_ROLE_ID, RG)
    del payload["properties"]["scope"]
    assert RoleAssignment.from_api(payload).scope == RG  # derived from the id
    snake = RoleAssignment.from_api(
        {"role_definition_id": f"/providers/Microsoft.Authorization/roleDefinitions/{OWNER_ROLE_ID}", "scope": "/"}
    )
    assert snake.role_name == "Owner"
    with pytest.raises(ValueError, match="no roleDefinitionId"):
        RoleAssignment.from_api({"properties": {"scope": S}})
    with pytest.raises(ValueError, match="neither a 'scope' nor an id"):
        RoleAssignment.from_api({"properties": {"roleDefinitionId": "x/" + OWNER_ROLE_ID}})


def test_role_names_constants() -> None:
    assert ROLE_NAMES[OWNER_ROLE_ID] == "Owner"
    assert ROLE_NAMES[USER_ACCESS_ADMINISTRATOR_ROLE_ID] == "User Access Administrator"
    assert ROLE_NAMES[RBAC_ADMINISTRATOR_ROLE_ID] == "Role Based Access Control Administrator"
    assert ROLE_NAMES[READER_ROLE_ID] == "Reader"


# ------------------------------------------------------------------------------------ broad assignments


def test_contributor_at_subscription_is_flagged_with_readable_message() -> None:
    findings = broad_assignments([RoleAssignment.from_api(_ra(CONTRIBUTOR_ROLE_ID, S))], [RG])
    assert len(findings) == 1
    f = findings[0]
    assert f.kind == "broad_assignment"
    assert f.severity == "high"
    assert f.scope == S
    assert f.message.startswith(
        f"Contributor assigned at {S} is broader than the connection's allowed scope {RG}; "
        f"it can change or delete any resource across the whole subscription {SUB}; assign it at {RG} instead"
    )
    assert f.detail["role"] == "Contributor"
    assert f.detail["can_assign_roles"] is False
    assert f.to_dict()["detail"]["fence_scopes"] == [RG]


@pytest.mark.parametrize(
    ("role", "scope", "fences", "kind", "severity", "needle"),
    [
        (OWNER_ROLE_ID, "/", [RG], "broad_assignment", "high", "the tenant root '/'"),
        (OWNER_ROLE_ID, MG, [RG], "broad_assignment", "high", "management group mg-data"),
        (USER_ACCESS_ADMINISTRATOR_ROLE_ID, S, [RG], "broad_assignment", "high", "can grant any role"),
        (RBAC_ADMINISTRATOR_ROLE_ID, S, [RG], "broad_assignment", "high", "Role Based Access Control Administrator"),
        # Subscription scope is flagged even when the fence is the subscription itself.
        (CONTRIBUTOR_ROLE_ID, S, [S], "broad_assignment", "high", "resource groups the DAGs write to"),
        (CONTRIBUTOR_ROLE_ID, S, [], "broad_assignment", "high", "whole subscription"),
        # RG-level assignment broader than a resource-level fence.
        (CONTRIBUTOR_ROLE_ID, RG, [SA], "broad_assignment", "medium", f"assign it at {SA} instead"),
        (OWNER_ROLE_ID, RG, [SA], "broad_assignment", "high", "broader than the connection's allowed scope"),
        # Disjoint from the fence.
        (CONTRIBUTOR_ROLE_ID, f"{S}/resourceGroups/rg-prod", [RG], "assignment_outside_fence", "medium", "outside"),
        (OWNER_ROLE_ID, f"/subscriptions/{SUB2}/resourceGroups/x", [RG], "assignment_outside_fence", "high", "outside"),
        (CONTRIBUTOR_ROLE_ID, f"{S}/resourceGroups/rg-etl0", [RG], "assignment_outside_fence", "medium", "outside"),
    ],
)
def test_broad_assignments_flagged(
    role: str, scope: str, fences: list[str], kind: str, severity: str, needle: str
) -> None:
    findings = broad_assignments([RoleAssignment.from_api(_ra(role, scope))], fences)
    assert [(f.kind, f.severity) for f in findings] == [(kind, severity)]
    assert needle in findings[0].message
    assert ROLE_NAMES[role] in findings[0].message


@pytest.mark.parametrize(
    ("role", "scope", "fences"),
    [
        (CONTRIBUTOR_ROLE_ID, RG, [RG]),  # exactly the fence
        (CONTRIBUTOR_ROLE_ID, SA, [RG]),  # narrower than the fence
        (OWNER_ROLE_ID, f"{S}/resourcegroups/RG-ETL", [RG]),  # casing
        (READER_ROLE_ID, S, [RG]),  # Reader is never "broad"
        (READER_ROLE_ID, "/", [RG]),
        ("12345678-0000-0000-0000-000000000000", S, [RG]),  # custom roles: see unused_breadth
        (CONTRIBUTOR_ROLE_ID, RG, []),  # RG scope, no fence to compare against
    ],
)
def test_broad_assignments_not_flagged(role: str, scope: str, fences: list[str]) -> None:
    assert broad_assignments([RoleAssignment.from_api(_ra(role, scope))], fences) == []


def test_broad_assignments_multiple_fences_and_condition() -> None:
    fences = [RG, f"{S}/resourceGroups/rg-stage"]
    ras = [
        RoleAssignment.from_api(_ra(CONTRIBUTOR_ROLE_ID, f"{S}/resourceGroups/rg-stage")),
        RoleAssignment.from_api(_ra(RBAC_ADMINISTRATOR_ROLE_ID, S, condition="@Request[...] ForAnyOfAnyValues")),
    ]
    findings = broad_assignments(ras, fences)
    assert len(findings) == 1
    assert "condition restricts the assignment" in findings[0].message
    assert findings[0].detail["condition"].startswith("@Request")
    assert f"assign it at {RG}, {S}/resourceGroups/rg-stage instead" in findings[0].message


def test_broad_assignments_unparseable_scope_is_broad() -> None:
    ra = RoleAssignment(id="x", role_definition_id=f"r/{OWNER_ROLE_ID}", principal_id=ME, scope="not-a-scope")
    findings = broad_assignments([ra], [RG])
    assert [(f.kind, f.severity) for f in findings] == [("broad_assignment", "high")]
    assert "unrecognised scope 'not-a-scope'" in findings[0].message


# ------------------------------------------------------------------------------------- unused breadth


def test_unused_breadth_contributor_star() -> None:
    required = (*DEPLOY_ACTIONS, "Microsoft.Storage/storageAccounts/write")
    findings = unused_breadth([CONTRIBUTOR], required, scope=RG)
    assert len(findings) == 1
    f = findings[0]
    assert f.kind == "unused_breadth"
    assert f.severity == "medium"
    assert f.scope == RG
    assert f.message.startswith("granted action pattern '*' is broader than this task needs")
    assert "Microsoft.Storage/storageAccounts/write" in f.message
    assert f.message.endswith(f"(at {RG})")
    assert f.detail["needed"] == list(required)


@pytest.mark.parametrize(
    ("pattern", "required", "flagged", "severity"),
    [
        ("*", DEPLOY_ACTIONS, True, "medium"),
        ("*/read", DEPLOY_ACTIONS, True, "low"),
        ("Microsoft.Storage/*", ("Microsoft.Storage/storageAccounts/write",), True, "medium"),
        ("Microsoft.Resources/*", DEPLOY_ACTIONS, True, "medium"),
        ("Microsoft.Res*", DEPLOY_ACTIONS, True, "medium"),
        ("Microsoft.Resources/deployments/*", DEPLOY_ACTIONS, False, None),
        ("Microsoft.Storage/storageAccounts/*", ("Microsoft.Storage/storageAccounts/write",), False, None),
        (
            "Microsoft.Network/virtualNetworks/*",
            ("Microsoft.Network/virtualNetworks/subnets/write",),
            True,
            "medium",
        ),
        (
            "Microsoft.Network/virtualNetworks/subnets/*",
            ("Microsoft.Network/virtualNetworks/subnets/write",),
            False,
            None,
        ),
        ("Microsoft.Compute/*", DEPLOY_ACTIONS, True, "medium"),  # unused entirely
        ("Microsoft.Resources/deployments/write", DEPLOY_ACTIONS, False, None),  # exact grants aren't "breadth"
        ("Microsoft.Compute/virtualMachines/write", DEPLOY_ACTIONS, False, None),
    ],
)
def test_unused_breadth_patterns(pattern: str, required: tuple[str, ...], flagged: bool, severity: str | None) -> None:
    findings = unused_breadth([PermissionEntry(actions=(pattern,))], required)
    if not flagged:
        assert findings == []
        return
    assert len(findings) == 1
    assert findings[0].severity == severity
    assert repr(pattern) in findings[0].message


def test_unused_breadth_unused_message_and_dedupe() -> None:
    entries = [PermissionEntry(actions=("Microsoft.Compute/*",)), PermissionEntry(actions=("microsoft.compute/*",))]
    findings = unused_breadth(entries, DEPLOY_ACTIONS)
    assert len(findings) == 1
    assert "covers none of the actions this task needs" in findings[0].message
    assert findings[0].detail["needed"] == []


def test_unused_breadth_data_actions() -> None:
    entry = PermissionEntry(data_actions=("Microsoft.Storage/storageAccounts/blobServices/*",))
    findings = unused_breadth([entry], DEPLOY_ACTIONS)
    assert len(findings) == 1
    assert findings[0].detail["data_plane"] is True
    assert "data action pattern" in findings[0].message
    blob_write = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write"
    assert len(unused_breadth([entry], DEPLOY_ACTIONS, required_data_actions=[blob_write])) == 1  # still too wide
    tight = PermissionEntry(data_actions=("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*",))
    assert unused_breadth([tight], DEPLOY_ACTIONS, required_data_actions=[blob_write]) == []


# ------------------------------------------------------------------------------------------- escalation


@pytest.mark.parametrize(
    ("entries", "capable"),
    [
        ([OWNER], True),
        ([CONTRIBUTOR], False),
        ([READER], False),
        ([CONTRIBUTOR, READER], False),
        ([PermissionEntry(actions=("Microsoft.Authorization/roleAssignments/write",))], True),
        ([PermissionEntry(actions=("Microsoft.Authorization/*",))], True),
        ([PermissionEntry(actions=("Microsoft.Authorization/*/write",))], True),
        ([PermissionEntry(actions=("Microsoft.Authorization/roleAssignments/*",))], True),
        (
            [
                PermissionEntry(
                    actions=("Microsoft.Authorization/*",),
                    not_actions=("Microsoft.Authorization/roleAssignments/write",),
                )
            ],
            False,
        ),
        ([CONTRIBUTOR, PermissionEntry(actions=("Microsoft.Authorization/roleAssignments/write",))], True),
        ([], False),
    ],
)
def test_escalation_capable(entries: list[PermissionEntry], capable: bool) -> None:
    assert escalation_capable(entries) is capable
    findings = escalation_findings(entries, scope=S)
    assert len(findings) == (1 if capable else 0)
    if capable:
        assert findings[0] == Finding(
            "escalation", "high", findings[0].message, S, {"action": "Microsoft.Authorization/roleAssignments/write"}
        )
        assert f"roleAssignments/write at {S}" in findings[0].message


# ------------------------------------------------------------------------- ASCII-only case folding
# ARM ignores case in ASCII only. Unicode lower()/casefold()/re.IGNORECASE map KELVIN SIGN (U+212A) to
# "k", LONG S (U+017F) to "s", U+0130 to "i" + dot: each would let a different name through the fence.

KELVIN, LONG_S, DOTTED_I, ANGSTROM = "\u212a", "\u017f", "\u0130", "\u212b"
K_FENCE = f"{S}/resourceGroups/k-rg"


def test_ascii_fold_lowers_ascii_only() -> None:
    assert ascii_fold("Microsoft.STORAGE/K-RG") == "microsoft.storage/k-rg"
    for ch in (KELVIN, LONG_S, DOTTED_I, ANGSTROM, "\u00c5", "\u03a9", "\u00df"):
        assert ascii_fold(ch) == ch
    assert ascii_fold(f"{KELVIN}-RG") == f"{KELVIN}-rg"


@pytest.mark.parametrize(
    "target",
    [
        f"{S}/resourceGroups/{KELVIN}-rg",
        f"{S}/resourceGroups/{KELVIN}-RG",
        f"{S}/resourceGroups/{KELVIN}-RG/providers/Microsoft.Storage/storageAccounts/st1",
        f"{S}/resourcegroups/{KELVIN}-rg/",
    ],
)
def test_kelvin_sign_is_not_k(target: str) -> None:
    assert not is_within(target, K_FENCE)
    assert first_containing(target, [K_FENCE]) is None
    assert parse_scope(target) != parse_scope(f"{S}/resourceGroups/k-rg")
    assert not parse_scope(K_FENCE).contains(target)


@pytest.mark.parametrize(
    ("fence", "target"),
    [
        (f"{S}/resourceGroups/rg-s", f"{S}/resourceGroups/rg-{LONG_S}"),
        (f"{S}/resourceGroups/rg-s", f"{S}/resourceGroups/RG-{LONG_S}"),
        (f"{S}/resourceGroups/rg-{LONG_S}", f"{S}/resourceGroups/rg-S"),
        (f"{S}/resourceGroups/rg-i", f"{S}/resourceGroups/rg-{DOTTED_I}"),
        (f"{S}/resourceGroups/rg-\u00e5", f"{S}/resourceGroups/rg-{ANGSTROM}"),
        (f"{S}/resourceGroups/k-rg", f"{S}/resourceGroups/{KELVIN}-rg"),
        (SA, SA.replace("stairflow01", f"{LONG_S}tairflow01")),
    ],
)
def test_unicode_lookalikes_never_match(fence: str, target: str) -> None:
    assert not is_within(target, fence)
    assert not is_within(fence, target)
    assert first_containing(target, [fence]) is None


def test_ascii_case_insensitivity_still_holds() -> None:
    assert is_within(f"{S}/resourceGroups/K-RG", K_FENCE)
    assert is_within(f"{S.upper()}/RESOURCEGROUPS/K-Rg/providers/Microsoft.Web/sites/APP", K_FENCE)
    assert first_containing(f"{S}/resourceGroups/K-RG", [RG, K_FENCE]) == parse_scope(K_FENCE)
    assert parse_scope(f"{S}/resourceGroups/{KELVIN}-RG") == parse_scope(f"{S}/resourceGroups/{KELVIN}-rg")


def test_fixed_segments_are_ascii_only() -> None:
    with pytest.raises(ScopeError):
        parse_scope(f"/{LONG_S}ubscriptions/{SUB}")
    with pytest.raises(ScopeError):
        parse_scope(f"{S}/resourceGroups/rg/provider{LONG_S}/Microsoft.Storage/storageAccounts/x")
    with pytest.raises(ScopeError):
        parse_scope(f"/providers/Microsoft.Management/managementGroup{LONG_S}/mg")
    assert parse_scope("/PROVIDERS/microsoft.management/MANAGEMENTGROUPS/mg").kind == "management_group"


@pytest.mark.parametrize(
    ("pattern", "lookalike", "ascii_spelling"),
    [
        ("Microsoft.Storage/*", f"Micro{LONG_S}oft.Storage/x/write", "MICROSOFT.STORAGE/x/write"),
        (
            "Microsoft.Storage/a/listKeys/action",
            f"Microsoft.Storage/a/list{KELVIN}eys/action",
            "microsoft.storage/A/LISTKEYS/ACTION",
        ),
        (
            f"Microsoft.Storage/a/list{KELVIN}eys/action",
            "Microsoft.Storage/a/listkeys/action",
            f"MICROSOFT.STORAGE/A/LIST{KELVIN}EYS/ACTION",
        ),
        ("*/read", f"Microsoft.Web/sites/rea{DOTTED_I}", "Microsoft.Web/sites/READ"),
    ],
)
def test_action_matches_ignores_ascii_case_only(pattern: str, lookalike: str, ascii_spelling: str) -> None:
    assert not action_matches(pattern, lookalike)
    assert action_matches(pattern, ascii_spelling)


def test_grants_do_not_cover_lookalike_actions() -> None:
    storage = [PermissionEntry(actions=("Microsoft.Storage/*",))]
    assert is_action_allowed(storage, "MICROSOFT.STORAGE/storageAccounts/write")
    assert not is_action_allowed(storage, f"Micro{LONG_S}oft.Storage/storageAccounts/write")
    no_rbac = PermissionEntry(actions=("*",), not_actions=("Microsoft.Authorization/roleAssignments/write",))
    assert not no_rbac.allows("MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE")


def test_deny_assignment_principals_fold_ascii_only() -> None:
    da = DenyAssignment.from_api(
        {
            "name": "d",
            "properties": {
                "scope": RG,
                "permissions": [{"actions": ["*"]}],
                "principals": [{"id": ME.upper()}],
                "excludePrincipals": [{"id": "kkkkkkkk-0000-0000-0000-000000000009"}],
            },
        }
    )
    assert da.applies_to_principal(ME)
    assert not da.applies_to_principal("kkkkkkkk-0000-0000-0000-000000000009".upper())
    # U+212A in a principal id is not the excluded "k..." principal: the deny still applies.
    lookalike = "kkkkkkkk-0000-0000-0000-000000000009".replace("k", KELVIN)
    assert not da.applies_to_principal(lookalike)  # not listed either: ids are compared exactly outside ASCII
    assert da.applies_to_principal(ME, member_of=[lookalike])


def test_evaluate_dedupes_by_ascii_fold_only() -> None:
    verdict = evaluate([PermissionEntry(actions=("*",))], [], ME, ["a/k/read", "A/K/READ", f"a/{KELVIN}/read"], RG)
    assert verdict.allowed == ("a/k/read", f"a/{KELVIN}/read")


def test_role_guid_folds_ascii_only() -> None:
    ra = RoleAssignment.from_api(
        {"properties": {"roleDefinitionId": f"/providers/x/roleDefinitions/{OWNER_ROLE_ID.upper()}", "scope": S}}
    )
    assert ra.role_guid == OWNER_ROLE_ID and ra.role_name == "Owner"
