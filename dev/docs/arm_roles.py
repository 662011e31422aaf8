"""The smallest Azure custom role for each ARM operator, computed from what the preflight requires.

Nothing here lists an action by hand except where the operator's own ARM call needs a right the preflight
does not prove (the resource list a group delete reads). The rest comes from the package:
``REQUIRED_ACTIONS`` for each operation the operator checks, ``derived_actions`` for what a template's
resources add, ``contained_delete_actions`` for what a group's contents add. ``tests/azure/test_custom_roles.py``
runs every operator against the ARM emulator with exactly these actions (allowed) and with each action its
preflight requires taken away (refused), so this table cannot drift from the operators.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_identity_provider.azure.rules.preflight_rules import (
    REQUIRED_ACTIONS,
    WhatIfChange,
    contained_delete_actions,
    derived_actions,
)
from airflow_identity_provider.azure.rules.scopes import dedupe_folded

__all__ = ["EXAMPLE_TYPE", "OPERATORS", "OperatorNeeds", "render", "role_actions", "role_definition"]

# The resource type the examples deploy and delete (the one the emulator tests deploy as well).
EXAMPLE_TYPE = "Microsoft.Storage/storageAccounts"
_GROUP = "/subscriptions/<subscription-id>/resourceGroups/<resource-group>"
_SUBSCRIPTION = "/subscriptions/<subscription-id>"


@dataclass(frozen=True)
class OperatorNeeds:
    """What one operator asks of ARM.

    ``checked``: the operations (keys of ``REQUIRED_ACTIONS``) whose actions its preflight proves before it
    writes. ``called``: operations it also runs that the preflight does not prove (ARM answers 403 itself).
    ``own``: actions of its own ARM calls that no operation names. ``example_changes``: a what-if result of the
    example template (its resources' actions are added as the preflight derives them); ``example_contents``:
    the resource types of the example group (their delete actions are added).
    """

    operator: str
    summary: str
    checked: tuple[str, ...]
    called: tuple[str, ...] = ()
    own: tuple[str, ...] = ()
    example_changes: tuple[WhatIfChange, ...] = ()
    example_contents: tuple[str, ...] = ()
    assign_at: str = _GROUP
    notes: tuple[str, ...] = ()


def _example_create() -> WhatIfChange:
    group = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-etl"
    return WhatIfChange.from_api({"changeType": "Create", "resourceId": f"{group}/providers/{EXAMPLE_TYPE}/stetl01"})


OPERATORS: tuple[OperatorNeeds, ...] = (
    OperatorNeeds(
        "AzureResourceGroupCreateOrUpdateOperator",
        "creates a resource group or updates its tags",
        checked=("resource_group_write",),
        assign_at=_SUBSCRIPTION,
        notes=(
            "A group that does not exist yet can only be created with a role at the subscription: assign the "
            "role there. The fence (`allowed_scopes`) still keeps the operator to the groups it names. To "
            "update an existing group's tags, a role assigned at that group is enough.",
        ),
    ),
    OperatorNeeds(
        "AzureResourceGroupDeleteOperator",
        "deletes a resource group and everything in it",
        checked=("resource_group_delete",),
        # The operator lists the group's resources to demand delete on each of their types; under
        # least_privilege='enforce' it refuses when the list cannot be read (resource_group.py).
        own=("Microsoft.Resources/subscriptions/resourceGroups/resources/read",),
        example_contents=(EXAMPLE_TYPE,),
        notes=(
            f"Add `<type>/delete` for every resource type in the group (the example holds `{EXAMPLE_TYPE}`): "
            "ARM deletes what it may and leaves the rest, so the preflight demands all of them.",
            "`Microsoft.Resources/subscriptions/resourceGroups/resources/read` lets the operator list the group's "
            "resources to know those types; without it `least_privilege='enforce'` refuses (`contents_unreadable`).",
        ),
    ),
    OperatorNeeds(
        "AzureTemplateValidateOperator",
        "asks ARM to validate a template deployment (writes nothing)",
        checked=("deployment_validate",),
    ),
    OperatorNeeds(
        "AzureTemplateWhatIfOperator",
        "runs what-if and gates on its result (writes nothing)",
        checked=("deployment_what_if",),
    ),
    OperatorNeeds(
        "AzureTemplateDeploymentOperator",
        "deploys a template (Incremental), waits for it, and cancels it when the task is killed",
        checked=("deployment_write", "deployment_cancel"),
        # The operator runs what-if before its preflight: the prediction is what the preflight judges.
        called=("deployment_what_if",),
        example_changes=(_example_create(),),
        notes=(
            f"Add `<type>/write` for every resource type the template deploys (the example deploys one "
            f"`{EXAMPLE_TYPE}`), and `<type>/delete` for what what-if says it deletes "
            "(`allow_delete_changes=True`). The preflight derives these from what-if and names any that is missing.",
            "`cancel_on_kill=False` drops `Microsoft.Resources/deployments/cancel/action`.",
            "A `template_spec_id` also needs `Microsoft.Resources/templateSpecs/versions/read` where the spec "
            "lives (a scope in `allowed_reference_scopes`).",
        ),
    ),
    OperatorNeeds(
        "AzureTagsUpdateOperator",
        "merges, replaces or deletes tags on a resource, group or subscription",
        checked=("tags_write",),
        notes=("Assign it at the scope whose tags the task changes (a resource, a group or the subscription).",),
    ),
)


def role_actions(needs: OperatorNeeds) -> tuple[str, ...]:
    """Every action of the operator's smallest role, for the example template or group, in a stable order."""
    actions: list[str] = []
    for operation in (*needs.checked, *needs.called):
        actions += REQUIRED_ACTIONS[operation]
    actions += needs.own
    actions += derived_actions(needs.example_changes)
    actions += contained_delete_actions(needs.example_contents)
    return dedupe_folded(actions)


def role_definition(needs: OperatorNeeds) -> dict[str, Any]:
    """The JSON ``az role definition create --role-definition @role.json`` takes."""
    return {
        "Name": f"Airflow {needs.operator}",
        "IsCustom": True,
        "Description": f"What {needs.operator} of airflow-identity-provider needs: it {needs.summary}.",
        "Actions": list(role_actions(needs)),
        "NotActions": [],
        "DataActions": [],
        "NotDataActions": [],
        "AssignableScopes": [_SUBSCRIPTION],
    }


def _section(needs: OperatorNeeds) -> str:
    checked = ", ".join(f"`{op}`" for op in needs.checked)
    called = ", ".join(f"`{op}`" for op in needs.called)
    role = json.dumps(role_definition(needs), indent=2)
    lines = [
        f"## `{needs.operator}`",
        "",
        f"It {needs.summary}. Its preflight proves the actions of {checked}"
        + (f"; it also runs {called}, which ARM checks itself" if called else "")
        + ".",
        "",
        "```json",
        role,
        "```",
        "",
        "```bash",
        f"az role definition create --role-definition @{_file_name(needs)}",
        f'az role assignment create --assignee <principal-object-id> --role "Airflow {needs.operator}" \\',
        f"  --scope {needs.assign_at}",
        "```",
        "",
    ]
    lines += [f"- {note}" for note in needs.notes]
    return "\n".join(lines) + ("\n" if needs.notes else "")


def _file_name(needs: OperatorNeeds) -> str:
    return f"{needs.operator.removeprefix('Azure').removesuffix('Operator').lower()}-role.json"


def render(_context: Mapping[str, Any] | None = None) -> str:
    """The custom-role page's generated part: one section per operator."""
    return "\n".join(_section(needs) for needs in OPERATORS)
