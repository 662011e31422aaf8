"""The authorization keys of [identity_auth_manager]: roles, dag_grants, team_mapping, honour_dag_access_control."""

from __future__ import annotations

import json

import pytest

from airflow_identity_provider.auth.rules.policy import builtin_permissions
from airflow_identity_provider.auth.rules.roles import Role
from airflow_identity_provider.auth.rules.settings import SettingsError, parse_role_mapping, parse_settings

BASE = {"issuer": "https://idp.example.com/", "client_id": "airflow"}
ROLES = json.dumps(
    {
        "VariableEditor": {"extends": "Viewer", "allow": ["variable:*"]},
        "Auditor": {"extends": "Viewer", "allow": ["dag.audit_log:GET"], "deny": ["dag.code:GET"]},
    }
)


def test_defaults_are_builtins_only_and_access_control_honoured() -> None:
    access = parse_settings(BASE).access
    assert list(access.roles) == ["Viewer", "User", "Op", "Admin"]
    assert access.grants == ()
    assert access.team_mapping == {}
    assert access.honour_dag_access_control is True
    assert access.default_roles == ()


def test_every_authorization_key_together() -> None:
    settings = parse_settings(
        {
            **BASE,
            "roles": ROLES,
            "role_mapping": '{"editors": ["variableeditor", "User"], "auditors": "Auditor", "admins": "admin"}',
            "default_role": "auditor",
            "dag_grants": '[{"groups": ["analytics-ops"], "dags": ["analytics_*"], "role": "Op"}]',
            "team_mapping": '{"grp-a": "analytics", "grp-b": ["a", "b"]}',
            "honour_dag_access_control": "False",
        }
    )
    assert settings.role_mapping == {
        "editors": ("VariableEditor", "User"),
        "auditors": ("Auditor",),
        "admins": ("Admin",),
    }
    assert settings.default_role == "Auditor"
    access = settings.access
    assert access.role_mapping == settings.role_mapping
    assert access.default_roles == ("Auditor",)
    assert list(access.roles) == ["Viewer", "User", "Op", "Admin", "VariableEditor", "Auditor"]
    assert [(g.role, g.dags) for g in access.grants] == [("Op", ("analytics_*",))]
    assert access.team_mapping == {"grp-a": ("analytics",), "grp-b": ("a", "b")}
    assert access.honour_dag_access_control is False
    assert access.roles_for(["editors"]) == ("User", "VariableEditor")
    assert access.roles_for(["nobody"]) == ("Auditor",)
    assert ("variable", "PUT") in access.permissions_of(("VariableEditor",))


def test_a_grant_may_name_a_custom_role() -> None:
    access = parse_settings(
        {**BASE, "roles": ROLES, "dag_grants": '[{"groups": ["g"], "tags": ["audit"], "role": "auditor"}]'}
    ).access
    (grant,) = access.grants
    assert grant.role == "Auditor"
    assert ("dag.audit_log", "GET") not in grant.permissions  # never from a grant: rows of no DAG too
    assert ("dag.code", "GET") not in grant.permissions
    assert ("dag.run", "GET") in grant.permissions


@pytest.mark.parametrize(
    ("value", "expected"), [("True", True), ("yes", True), ("1", True), ("off", False), ("", False)]
)
def test_honour_dag_access_control_values(value: str, expected: bool) -> None:
    assert parse_settings({**BASE, "honour_dag_access_control": value}).access.honour_dag_access_control is expected


def test_role_mapping_list_values_hold_every_role() -> None:
    settings = parse_settings({**BASE, "role_mapping": '{"ops": ["Viewer", "op"], "one": ["Admin"]}'})
    assert settings.role_mapping == {"ops": ("Viewer", "Op"), "one": ("Admin",)}
    assert settings.access.permissions_of(settings.access.roles_for(["ops"])) == builtin_permissions(Role.OP)


def test_role_mapping_names_a_custom_role() -> None:
    settings = parse_settings({**BASE, "roles": ROLES, "role_mapping": '{"g": "VARIABLEEDITOR"}'})
    assert settings.role_mapping == {"g": ("VariableEditor",)}
    assert parse_role_mapping('{"g": "auditor"}', settings.access.roles) == {"g": ("Auditor",)}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"role_mapping": '{"g": "VariableEditor"}'}, "group 'g': 'VariableEditor' is not an Airflow role"),
        ({"role_mapping": '{"g": ["Viewer", "Superuser"]}'}, "group 'g': 'Superuser' is not an Airflow role"),
        ({"roles": ROLES, "role_mapping": '{"g": "Editor"}'}, "or a role of roles (VariableEditor, Auditor)"),
        ({"role_mapping": '{"g": []}'}, "the role for 'g' must be a role name or a list of them, got []"),
        ({"role_mapping": '{"g": ["Viewer", 1]}'}, "must be a role name or a list of them"),
    ],
)
def test_role_mapping_naming_an_unknown_role_fails(raw: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError) as info:
        parse_settings({**BASE, **raw})
    assert str(info.value).startswith("[identity_auth_manager] role_mapping:")
    assert fragment in str(info.value)
    assert "expected one of Viewer, User, Op, Admin" in str(info.value) or "list of them" in str(info.value)


@pytest.mark.parametrize(
    ("raw", "key", "fix"),
    [
        (
            {"roles": "{nope"},
            "roles",
            "is not valid JSON (Expecting property name enclosed in double quotes at character",
        ),
        ({"roles": "[]"}, "roles", "expected a JSON object of role name -> definition"),
        ({"roles": '{"Viewer": {}}'}, "roles", "clashes with the role 'Viewer'; pick another name"),
        ({"roles": '{"R": {"extends": "Root"}}'}, "roles", "role 'R' extends unknown role 'Root'; known:"),
        ({"roles": '{"R": {"allow": ["dags:GET"]}}'}, "roles", "role 'R': unknown resource 'dags'; resources are"),
        ({"roles": '{"R": {"allow": ["dag:READ"]}}'}, "roles", "role 'R': unknown method 'READ'"),
        ({"roles": '{"R": {"alow": []}}'}, "roles", "unknown key 'alow'; a role has extends, allow and deny"),
        ({"roles": '{"A": {"extends": "B"}, "B": {"extends": "A"}}'}, "roles", "extends itself through"),
        ({"dag_grants": "[{"}, "dag_grants", "is not valid JSON"),
        ({"dag_grants": "{}"}, "dag_grants", "expected a JSON list of grants"),
        ({"dag_grants": '[{"dags": ["x"], "role": "Op"}]'}, "dag_grants", "grant 0: groups is empty; list the"),
        ({"dag_grants": '[{"groups": ["g"], "role": "Op"}]'}, "dag_grants", "names no DAGs; give dags (globs), tags"),
        ({"dag_grants": '[{"groups": ["g"], "dags": ["x"], "role": "Boss"}]'}, "dag_grants", "'Boss' is not a role"),
        ({"dag_grants": '[{"groups": ["g"], "dags": ["x"], "role": "Op", "x": 1}]'}, "dag_grants", "unknown key 'x'"),
        ({"team_mapping": "nope"}, "team_mapping", "is not valid JSON"),
        ({"team_mapping": '["t"]'}, "team_mapping", "expected a JSON object of group -> team name(s)"),
        ({"team_mapping": '{"g": 1}'}, "team_mapping", "must be a team name or a list of them"),
        ({"honour_dag_access_control": "sometimes"}, "honour_dag_access_control", "expected True or False"),
        ({"default_role": "Editor"}, "default_role", "or empty to refuse users with no mapped group"),
    ],
)
def test_each_bad_value_names_the_key_and_the_fix(raw: dict[str, str], key: str, fix: str) -> None:
    with pytest.raises(SettingsError) as info:
        parse_settings({**BASE, **raw})
    assert info.value.key == key
    assert info.value.reason == "bad_setting"
    assert str(info.value).startswith(f"[identity_auth_manager] {key}:")
    assert fix in str(info.value)


def test_a_grant_naming_a_role_that_holds_no_dag_permission_fails() -> None:
    raw = {
        **BASE,
        "roles": '{"VarOnly": {"allow": ["variable:*"]}}',
        "dag_grants": '[{"groups": ["g"], "dags": ["*"], "role": "VarOnly"}]',
    }
    with pytest.raises(SettingsError, match=r"^\[identity_auth_manager\] dag_grants: grant 0: role 'VarOnly' holds no"):
        parse_settings(raw)


def test_a_grant_naming_an_undefined_custom_role_fails() -> None:
    raw = {**BASE, "dag_grants": '[{"groups": ["g"], "dags": ["*"], "role": "VariableEditor"}]'}
    with pytest.raises(SettingsError, match="'VariableEditor' is not a role; known: Viewer, User, Op, Admin"):
        parse_settings(raw)
