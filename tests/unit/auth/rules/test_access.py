"""AccessPolicy: roles and teams at sign-in, the groups worth keeping, and DAG access from grants and access_control."""

from __future__ import annotations

import json
import uuid

import pytest

from airflow_identity_provider.auth.rules.access import AccessPolicy, Principal, TeamMappingError, parse_team_mapping
from airflow_identity_provider.auth.rules.access_control import compile_access_control
from airflow_identity_provider.auth.rules.custom_roles import parse_custom_roles
from airflow_identity_provider.auth.rules.dag_grants import parse_dag_grants
from airflow_identity_provider.auth.rules.permissions import is_dag_level
from airflow_identity_provider.auth.rules.policy import builtin_permissions
from airflow_identity_provider.auth.rules.roles import Role

ROLES = parse_custom_roles('{"VariableEditor": {"extends": "Viewer", "allow": ["variable:*"]}}')
GRANTS = parse_dag_grants(
    json.dumps(
        [
            {"groups": ["analytics-ops"], "dags": ["analytics_*"], "role": "Op"},
            {"groups": ["finance"], "tags": ["finance"], "bundles": ["money"], "role": "Viewer"},
        ]
    ),
    ROLES,
)
OP_ON_A_DAG = frozenset(p for p in builtin_permissions(Role.OP) if is_dag_level(p[0]))
VIEWER_ON_A_DAG = frozenset(p for p in builtin_permissions(Role.VIEWER) if is_dag_level(p[0]))
READ = compile_access_control({"data-team": {"can_read"}})[0]


def policy(**overrides: object) -> AccessPolicy:
    fields: dict[str, object] = {
        "role_mapping": {"admins": ("Admin",), "viewers": ("Viewer",), "editors": ("VariableEditor", "User")},
        "default_roles": ("Viewer",),
        "roles": ROLES,
        "grants": GRANTS,
        "team_mapping": {"grp-analytics": ("analytics",), "grp-both": ("finance", "analytics")},
    }
    fields.update(overrides)
    return AccessPolicy(**fields)  # type: ignore[arg-type]


# --- roles and teams at sign-in ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        (["admins"], ("Admin",)),
        (["viewers", "admins"], ("Viewer", "Admin")),  # the union, in table order
        (["editors"], ("User", "VariableEditor")),
        (["editors", "viewers", "x"], ("Viewer", "User", "VariableEditor")),
        (["unmapped"], ("Viewer",)),  # the default, only when nothing maps
        ([], ("Viewer",)),
    ],
)
def test_roles_for_is_the_union_else_the_default(groups: list[str], expected: tuple[str, ...]) -> None:
    assert policy().roles_for(groups) == expected


def test_the_default_is_not_added_to_mapped_roles() -> None:
    assert policy(default_roles=("Admin",)).roles_for(["viewers"]) == ("Viewer",)


def test_use_default_false_and_no_default() -> None:
    assert policy().roles_for(["unmapped"], use_default=False) == ()
    assert policy(default_roles=()).roles_for(["unmapped"]) == ()
    assert policy().roles_for(["admins"], use_default=False) == ("Admin",)


@pytest.mark.parametrize(
    ("groups", "expected"),
    [(["grp-analytics"], ("analytics",)), (["grp-analytics", "grp-both"], ("analytics", "finance")), (["x"], ())],
)
def test_teams_for(groups: list[str], expected: tuple[str, ...]) -> None:
    assert policy().teams_for(groups) == expected


def test_named_groups_are_every_group_a_setting_names() -> None:
    assert policy().named_groups == {
        "admins",
        "viewers",
        "editors",
        "grp-analytics",
        "grp-both",
        "analytics-ops",
        "finance",
    }


def test_assign_a_mapped_user() -> None:
    assigned = policy().assign(["x", "admins", "grp-analytics", "admins"])
    assert assigned is not None
    assert assigned.roles == ("Admin",)
    assert assigned.groups == ("admins", "grp-analytics")  # named ones only, once each, in the IdP's order
    assert assigned.teams == ("analytics",)


def test_assign_returns_none_when_nothing_gives_access() -> None:
    assert policy(default_roles=()).assign(["x", "grp-analytics"]) is None
    assert policy().assign(["x"], use_default=False) is None
    assert policy().assign(["x"]) is not None  # the default role


def test_assign_a_grant_only_user() -> None:
    assigned = policy(default_roles=()).assign(["analytics-ops", "x"])
    assert assigned is not None
    assert assigned.roles == ()
    assert assigned.groups == ("analytics-ops",)


def test_assign_an_access_control_only_user() -> None:
    names = frozenset({"data-team", "Op"})
    assigned = policy(default_roles=()).assign(["x", "data-team"], access_control_names=names)
    assert assigned is not None
    assert assigned.roles == ()
    assert assigned.groups == ("data-team",)
    off = policy(default_roles=(), honour_dag_access_control=False)
    assert off.assign(["data-team"], access_control_names=names) is None


def test_only_named_groups_are_kept_out_of_200_guids() -> None:
    guids = [str(uuid.UUID(int=n)) for n in range(200)]
    named = [guids[7], guids[70], guids[170]]
    mapped = policy(
        role_mapping={named[0]: ("Viewer",)}, team_mapping={named[1]: ("analytics",)}, grants=(), default_roles=()
    )
    assigned = mapped.assign(guids, access_control_names=frozenset({named[2]}))
    assert assigned is not None
    assert assigned.groups == tuple(named)
    assert assigned.roles == ("Viewer",)
    assert assigned.teams == ("analytics",)


# --- permissions and DAG access on the request path -------------------------------------------------------


def test_permissions_of_is_the_union_and_case_insensitive() -> None:
    held = policy().permissions_of(("viewer", "VariableEditor"))
    assert held == ROLES["VariableEditor"]
    assert policy().permissions_of(("Viewer", "Op")) == builtin_permissions(Role.OP)
    assert policy().canonical_role("variableeditor") == "VariableEditor"


def test_a_role_removed_from_settings_grants_nothing() -> None:
    assert policy().permissions_of(("VariableEditor",)) != frozenset()
    assert policy(roles=parse_custom_roles("")).permissions_of(("VariableEditor",)) == frozenset()
    assert policy().permissions_of(("Gone", "Viewer")) == builtin_permissions(Role.VIEWER)


def test_grants_of() -> None:
    assert policy().grants_of(frozenset({"analytics-ops", "finance"})) == (0, 1)
    assert policy().grants_of(frozenset({"finance"})) == (1,)
    assert policy().grants_of(frozenset()) == ()


@pytest.mark.parametrize(
    ("groups", "dag_id", "tags", "bundle", "permissions", "grants"),
    [
        ({"analytics-ops"}, "analytics_daily", set(), "", OP_ON_A_DAG, (0,)),
        ({"analytics-ops"}, "finance_daily", set(), "", frozenset(), ()),
        ({"finance"}, "x", {"finance"}, "", VIEWER_ON_A_DAG, (1,)),
        ({"finance"}, "x", set(), "money", VIEWER_ON_A_DAG, (1,)),
        ({"finance", "analytics-ops"}, "analytics_x", {"finance"}, "", OP_ON_A_DAG, (0, 1)),
        ({"someone-else"}, "analytics_daily", {"finance"}, "money", frozenset(), ()),
    ],
)
def test_dag_access_by_grant(
    groups: set[str], dag_id: str, tags: set[str], bundle: str, permissions: frozenset[object], grants: tuple[int, ...]
) -> None:
    access = policy().dag_access(Principal((), frozenset(groups)), dag_id, tags=frozenset(tags), bundle=bundle)
    assert access.permissions == permissions
    assert access.grants == grants
    assert access.access_control == ()


def test_dag_access_by_access_control_group_key() -> None:
    access = policy().dag_access(Principal((), frozenset({"data-team"})), "d", access_control=READ)
    assert access.permissions == VIEWER_ON_A_DAG
    assert access.access_control == ("data-team",)
    assert policy().dag_access(Principal((), frozenset({"Data-Team"})), "d", access_control=READ).permissions == set()


@pytest.mark.parametrize("role", ["Op", "op", "OP"])
def test_dag_access_by_access_control_role_key_is_case_insensitive(role: str) -> None:
    compiled, _ = compile_access_control({"VariableEditor": {"DAG Runs": {"can_create"}}, role: {"can_edit"}})
    access = policy().dag_access(Principal(("variableeditor", "Op")), "d", access_control=compiled)
    assert access.permissions >= {("dag.run", "POST"), ("dag", "PUT")}
    assert set(access.access_control) == {"VariableEditor", role}


def test_honour_dag_access_control_false_ignores_access_control() -> None:
    off = policy(honour_dag_access_control=False)
    access = off.dag_access(Principal(("Op",), frozenset({"data-team"})), "d", access_control=READ)
    assert access.permissions == frozenset()
    assert access.access_control == ()
    # grants still apply
    assert off.dag_access(Principal((), frozenset({"analytics-ops"})), "analytics_x").permissions == OP_ON_A_DAG


def test_grants_and_access_control_add_up() -> None:
    compiled, _ = compile_access_control({"analytics-ops": {"DAG Runs": {"can_create"}}})
    access = policy().dag_access(
        Principal((), frozenset({"analytics-ops", "data-team"})), "analytics_x", access_control={**compiled, **READ}
    )
    assert access.permissions == OP_ON_A_DAG | VIEWER_ON_A_DAG | {("dag.run", "POST")}
    assert access.grants == (0,)
    assert set(access.access_control) == {"analytics-ops", "data-team"}


def test_any_dag_access() -> None:
    grant_only = Principal((), frozenset({"analytics-ops"}))
    assert policy().any_dag_access(grant_only, ("dag.run", "POST"))
    assert not policy().any_dag_access(grant_only, ("dag.audit_log", "GET"))  # Op has no audit log
    assert not policy().any_dag_access(grant_only, ("variable", "GET"))
    assert not policy().any_dag_access(Principal(("Admin",)), ("dag", "GET"))  # roles are not grants


def test_parse_team_mapping() -> None:
    assert parse_team_mapping("") == {}
    assert parse_team_mapping('{"g": " analytics ", "h": ["a", "b"]}') == {"g": ("analytics",), "h": ("a", "b")}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{", "is not valid JSON"),
        ('["analytics"]', "expected a JSON object of group -> team name(s), got a list"),
        ('{"g": []}', "the team(s) for 'g' must be a team name or a list of them, got []"),
        ('{"g": [" "]}', "must be a team name or a list of them"),
        ('{"g": 3}', "must be a team name or a list of them, got 3"),
    ],
)
def test_bad_team_mapping(text: str, fragment: str) -> None:
    with pytest.raises(TeamMappingError) as info:
        parse_team_mapping(text)
    assert fragment in str(info.value)
