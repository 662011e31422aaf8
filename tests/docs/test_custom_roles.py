"""The custom-roles page shows, for every ARM operator, exactly the role ``dev.docs.arm_roles`` computes from
the package's ``REQUIRED_ACTIONS`` (and the example's derived actions). tests/azure/test_custom_roles.py proves
against the ARM emulator that these roles are enough and that none of the preflight's actions can go."""

from __future__ import annotations

import json
import re
from pathlib import Path

from airflow_identity_provider.azure import operators
from airflow_identity_provider.azure.rules.preflight_rules import REQUIRED_ACTIONS
from dev.docs import arm_roles
from dev.docs.generated import expand

PAGE = Path(__file__).resolve().parents[2] / "docs" / "arm" / "custom-roles.md"


def roles_on_page() -> dict[str, object]:
    """Operator name -> the JSON of the first ```json block of its section."""
    page = expand(PAGE.read_text())
    out: dict[str, object] = {}
    for section in re.split(r"^## ", page, flags=re.MULTILINE)[1:]:
        name = re.match(r"`(\w+)`", section)
        block = re.search(r"```json\n(.*?)\n```", section, re.DOTALL)
        if name and block:
            out[name.group(1)] = json.loads(block.group(1))
    return out


def test_every_operator_has_its_role_on_the_page_as_the_code_computes_it() -> None:
    page = roles_on_page()
    assert sorted(page) == sorted(operators.__all__)
    for needs in arm_roles.OPERATORS:
        assert page[needs.operator] == arm_roles.role_definition(needs), needs.operator


def test_roles_hold_the_actions_of_every_operation_the_operator_checks_or_calls() -> None:
    for needs in arm_roles.OPERATORS:
        actions = {a.lower() for a in arm_roles.role_actions(needs)}
        for operation in (*needs.checked, *needs.called):
            assert {a.lower() for a in REQUIRED_ACTIONS[operation]} <= actions, (needs.operator, operation)
        assert len(actions) == len(arm_roles.role_actions(needs)), "no action twice"


def test_the_role_json_is_what_az_role_definition_create_takes() -> None:
    for needs in arm_roles.OPERATORS:
        role = arm_roles.role_definition(needs)
        assert set(role) == {
            "Name", "IsCustom", "Description", "Actions", "NotActions", "DataActions", "NotDataActions",
            "AssignableScopes",
        }  # fmt: skip
        assert role["Actions"] and all("*" not in action for action in role["Actions"])  # no wildcard
        assert role["AssignableScopes"] == ["/subscriptions/<subscription-id>"]
