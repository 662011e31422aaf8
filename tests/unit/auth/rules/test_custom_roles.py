"""Custom roles: extends, allow, deny (deny wins), menus following permissions, and every refusal."""

from __future__ import annotations

import json

import pytest

from airflow_identity_provider.auth.rules.custom_roles import (
    BUILTIN_NAMES,
    RoleError,
    builtin_role_table,
    parse_custom_roles,
    role_lookup,
)
from airflow_identity_provider.auth.rules.permissions import parse_permission
from airflow_identity_provider.auth.rules.policy import builtin_permissions
from airflow_identity_provider.auth.rules.roles import Role

VIEWER = builtin_permissions(Role.VIEWER)
OP = builtin_permissions(Role.OP)


def roles(**definitions: object) -> dict[str, frozenset[tuple[str, str]]]:
    return parse_custom_roles(json.dumps(definitions))


def test_empty_text_is_the_four_builtin_roles() -> None:
    for text in ("", "  ", "{}"):
        table = parse_custom_roles(text)
        assert list(table) == ["Viewer", "User", "Op", "Admin"] == list(BUILTIN_NAMES)
        assert table == builtin_role_table()
        assert table["Op"] == OP


@pytest.mark.parametrize("role", list(Role))
def test_extending_a_builtin_gives_exactly_its_permissions(role: Role) -> None:
    table = roles(Copy={"extends": role.display_name})
    assert table["Copy"] == builtin_permissions(role)


def test_extends_is_case_insensitive_and_builtins_come_first() -> None:
    table = roles(Copy={"extends": "  op "})
    assert table["Copy"] == OP
    assert list(table) == [*BUILTIN_NAMES, "Copy"]


def test_no_extends_holds_only_what_it_allows() -> None:
    assert roles(Only={"allow": ["pool:GET"]})["Only"] == {("pool", "GET")}
    assert roles(Nothing={})["Nothing"] == frozenset()


def test_allow_adds() -> None:
    table = roles(R={"extends": "Viewer", "allow": ["pool:PUT", "dag:PUT", "dag.run:POST"]})
    assert table["R"] == VIEWER | {("pool", "PUT"), ("dag", "PUT"), ("dag.run", "POST")}


@pytest.mark.parametrize(
    ("definition", "needs"),
    [
        ({"extends": "Viewer", "allow": ["dag.run:POST"]}, "dag:PUT"),  # FAB: triggering needs edit on the DAG
        ({"allow": ["dag.task_logs:GET"]}, "dag:GET"),
    ],
)
def test_a_dag_entity_right_without_the_dag_right_is_refused_not_dropped(definition: dict, needs: str) -> None:
    with pytest.raises(RoleError, match=f"needs {needs} too"):
        roles(R=definition)


def test_denying_dag_get_takes_every_read_of_a_dag_with_it() -> None:
    """Else a role with "deny dag:GET" would list no DAG but read any DAG's logs, code and XComs by URL."""
    held = roles(NoDags={"extends": "Viewer", "deny": ["dag:GET"]})["NoDags"]
    assert ("dag", "GET") not in held and not [p for p in held if p[0].startswith("dag.")]


def test_denying_one_plugin_page_under_custom_view_star_is_refused() -> None:
    with pytest.raises(RoleError, match=r"cannot deny custom_view\.Secret:GET"):
        roles(R={"extends": "Viewer", "deny": ["custom_view.Secret:GET"]})
    held = roles(R={"extends": "Viewer", "deny": ["custom_view.*:*"], "allow": ["custom_view.Good:GET"]})["R"]
    assert ("custom_view.Good", "GET") in held and ("custom_view.*", "GET") not in held


def test_deny_wins_over_inherited_and_over_allowed() -> None:
    table = roles(R={"extends": "Op", "allow": ["variable:*", "asset_alias:PUT"], "deny": ["variable:DELETE", "dag:*"]})
    held = table["R"]
    assert ("variable", "DELETE") not in held
    assert ("variable", "PUT") in held
    assert ("asset_alias", "PUT") in held
    assert not any(key == "dag" for key, _ in held)
    # dag:* names the DAG itself; without dag:GET/PUT nothing of any DAG remains (FAB's DAG rule).
    assert not any(key.startswith("dag.") for key, _ in held)


def test_extends_a_list_is_the_union() -> None:
    table = roles(
        A={"allow": ["variable:GET"]},
        B={"allow": ["pool:GET"]},
        AB={"extends": ["A", "b", "Viewer"]},
    )
    assert table["AB"] == VIEWER | {("variable", "GET"), ("pool", "GET")}


def test_extends_a_custom_role_defined_later() -> None:
    table = roles(Child={"extends": "parent", "allow": ["pool:DELETE"]}, Parent={"extends": "Viewer"})
    assert table["Parent"] == VIEWER
    assert table["Child"] == VIEWER | {("pool", "DELETE")}


@pytest.mark.parametrize(
    "parent",
    [
        {"extends": "Viewer", "deny": ["menu.dags:MENU"]},
        {"extends": "Viewer", "allow": ["menu.variables:MENU"]},
        {"extends": "Op", "deny": ["menu.*:*"], "allow": ["menu.dags:MENU"]},
    ],
)
def test_extending_a_custom_role_gives_exactly_its_permissions(parent: dict[str, object]) -> None:
    # A menu the parent hides (or shows) explicitly stays hidden (or shown) in a role that only extends it.
    table = roles(Parent=parent, Child={"extends": "Parent"})
    assert table["Child"] == table["Parent"]


@pytest.mark.parametrize(
    ("definitions", "fragment"),
    [
        ({"A": {"extends": "A"}}, "role 'A' extends itself through A -> A"),
        ({"A": {"extends": "B"}, "B": {"extends": "A"}}, "extends itself through A -> B -> A"),
        ({"A": {"extends": ["Viewer", "C"]}, "B": {"extends": "A"}, "C": {"extends": "b"}}, "extends itself"),
        ({"A": {"extends": "Superuser"}}, "role 'A' extends unknown role 'Superuser'; known: Viewer, User, Op, Admin"),
        ({"A": {"extends": 3}}, "extends must be a role name or a list of them"),
        ({"A": {"extends": ["Viewer", None]}}, "extends must be a role name or a list of them"),
        ({"viewer": {"allow": []}}, "role 'viewer' clashes with the role 'Viewer'; pick another name"),
        ({"ADMIN": {}}, "clashes with the role 'Admin'"),
        ({"Mine": {}, "mine": {}}, "role 'mine' clashes with the role 'Mine'"),
        ({"A": {"extend": "Viewer"}}, "role 'A': unknown key 'extend'; a role has extends, allow and deny"),
        ({"A": {"allow": ["dag:GET"], "permissions": []}}, "unknown key 'permissions'"),
        ({"A": ["variable:GET"]}, "role 'A': expected an object with extends, allow, deny"),
        ({" ": {}}, "role names must be non-empty strings"),
        ({"A": {"allow": ["variables:GET"]}}, "role 'A': unknown resource 'variables'"),
        ({"A": {"deny": ["dag:PATCH"]}}, "role 'A': unknown method 'PATCH'"),
        ({"A": {"allow": "variable:GET"}}, "role 'A': allow must be a list of permission strings"),
        ({"A": {"deny": [1]}}, "role 'A': deny must be a list of permission strings"),
    ],
)
def test_bad_roles_are_refused_naming_the_role_and_the_fix(definitions: dict[str, object], fragment: str) -> None:
    with pytest.raises(RoleError) as info:
        parse_custom_roles(json.dumps(definitions))
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{not json", "is not valid JSON"),
        ('{"A": {"extends": "Viewer",}}', "is not valid JSON"),
        ('["VariableEditor"]', "expected a JSON object of role name -> definition, got a list"),
        ('"Viewer"', "got a str"),
        ("3", "got a int"),
        ("null", "got a NoneType"),
    ],
)
def test_bad_json_or_not_an_object_is_refused(text: str, fragment: str) -> None:
    with pytest.raises(RoleError) as info:
        parse_custom_roles(text)
    assert fragment in str(info.value)
    if "valid JSON" in fragment:
        assert '"VariableEditor"' in str(info.value)  # shows an example of the right shape


# --- menus follow permissions -----------------------------------------------------------------------------


def test_allowing_variables_shows_the_variables_menu() -> None:
    assert ("menu.variables", "MENU") not in VIEWER
    held = roles(R={"extends": "Viewer", "allow": ["variable:*"]})["R"]
    assert ("menu.variables", "MENU") in held


def test_allowing_a_view_shows_its_menu() -> None:
    held = roles(R={"extends": "Viewer", "allow": ["view.plugins:GET"]})["R"]
    assert ("menu.plugins", "MENU") in held


def test_denying_dag_menu_hides_dags() -> None:
    held = roles(R={"extends": "Viewer", "deny": ["dag:MENU"]})["R"]
    assert ("menu.dags", "MENU") not in held
    assert ("dag", "GET") in held


def test_denying_the_permission_behind_an_allowed_menu_hides_it() -> None:
    held = roles(R={"extends": "Viewer", "allow": ["variable:*"], "deny": ["variable:MENU"]})["R"]
    assert ("variable", "GET") in held
    assert ("menu.variables", "MENU") not in held


def test_explicit_menu_allow_and_deny_override() -> None:
    shown = roles(R={"allow": ["menu.variables:MENU"]})["R"]
    assert shown == {("menu.variables", "MENU")}
    hidden = roles(R={"extends": "Op", "deny": ["menu.variables:*"]})["R"]
    assert ("menu.variables", "MENU") not in hidden
    assert parse_permission("variable:*") <= hidden
    no_menus = roles(R={"extends": "Admin", "deny": ["menu.*:*"]})["R"]
    assert not any(key.startswith("menu.") for key, _ in no_menus)
    all_menus = roles(R={"allow": ["menu.*:*"]})["R"]
    assert all_menus == parse_permission("menu.*:MENU")


# --- the issue's examples ---------------------------------------------------------------------------------

ISSUE_EXAMPLE = {
    "VariableEditor": {"extends": "Viewer", "allow": ["variable:*"]},
    "Auditor": {"extends": "Viewer", "allow": ["dag.audit_log:GET"], "deny": ["dag.code:GET"]},
}


def test_issue_example_variable_editor() -> None:
    table = parse_custom_roles(json.dumps(ISSUE_EXAMPLE))
    assert list(table)[-2:] == ["VariableEditor", "Auditor"]
    assert table["VariableEditor"] == VIEWER | parse_permission("variable:*") | {("menu.variables", "MENU")}
    assert ("connection", "GET") not in table["VariableEditor"]


def test_issue_example_auditor() -> None:
    held = parse_custom_roles(json.dumps(ISSUE_EXAMPLE))["Auditor"]
    assert held == (VIEWER | {("dag.audit_log", "GET")}) - {("dag.code", "GET")}
    assert ("menu.audit_log", "MENU") not in held  # the menu needs dag.audit_log:MENU, which was not allowed


def test_role_lookup_is_case_insensitive() -> None:
    assert role_lookup(parse_custom_roles(json.dumps(ISSUE_EXAMPLE)))["variableeditor"] == "VariableEditor"
    assert role_lookup(builtin_role_table())["op"] == "Op"
