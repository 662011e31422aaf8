"""DAG grants: which DAGs a grant covers, what it gives (DAG-level rights only) and every refusal."""

from __future__ import annotations

import json

import pytest

from airflow_identity_provider.auth.rules.custom_roles import builtin_role_table, parse_custom_roles
from airflow_identity_provider.auth.rules.dag_grants import DagGrant, GrantError, parse_dag_grants
from airflow_identity_provider.auth.rules.permissions import is_dag_level
from airflow_identity_provider.auth.rules.policy import builtin_permissions
from airflow_identity_provider.auth.rules.roles import Role

ROLES = builtin_role_table()
NO_TAGS: frozenset[str] = frozenset()


def grant(**fields: object) -> DagGrant:
    (only,) = parse_dag_grants(json.dumps([{"groups": ["g"], "role": "Op", **fields}]), ROLES)
    return only


def dag_level(role: Role) -> frozenset[tuple[str, str]]:
    return frozenset(p for p in builtin_permissions(role) if is_dag_level(p[0]))


def test_empty_text_is_no_grants() -> None:
    assert parse_dag_grants("", ROLES) == ()
    assert parse_dag_grants("  []  ", ROLES) == ()


def test_a_grant_is_parsed() -> None:
    text = '[{"groups": ["ops", "oncall"], "dags": ["a_*", "b"], "tags": ["t"], "bundles": ["main"], "role": "op"}]'
    (parsed,) = parse_dag_grants(text, ROLES)
    assert parsed.groups == {"ops", "oncall"}
    assert parsed.dags == ("a_*", "b")
    assert parsed.tags == {"t"}
    assert parsed.bundles == {"main"}
    assert parsed.role == "Op"  # canonical spelling
    assert parsed.describe(3) == "dag_grants[3]: Op for oncall, ops on dags a_*, b; tags t; bundles main"


@pytest.mark.parametrize(
    ("dag_id", "expected"),
    [
        ("analytics_daily", True),
        ("analytics_", True),
        ("analytics", False),
        ("Analytics_daily", False),  # DAG ids are case-sensitive, so are the globs
        ("ANALYTICS_DAILY", False),
        ("finance_daily", False),
        ("report_7", True),
        ("report_77", False),
        ("exact", True),
        ("exact_not", False),
    ],
)
def test_globs_are_case_sensitive(dag_id: str, expected: bool) -> None:
    covered = grant(dags=["analytics_*", "report_?", "exact"])
    assert covered.matches(dag_id, NO_TAGS, "") is expected


@pytest.mark.parametrize(
    ("tags", "expected"),
    [({"analytics"}, True), ({"other", "analytics"}, True), ({"Analytics"}, False), (set(), False)],
)
def test_tags(tags: set[str], expected: bool) -> None:
    assert grant(tags=["analytics"]).matches("any_dag", frozenset(tags), "") is expected


@pytest.mark.parametrize(("bundle", "expected"), [("analytics", True), ("other", False), ("", False)])
def test_bundles(bundle: str, expected: bool) -> None:
    assert grant(bundles=["analytics"]).matches("any_dag", NO_TAGS, bundle) is expected


@pytest.mark.parametrize(
    ("dag_id", "tags", "bundle", "expected"),
    [
        ("fin_x", set(), "", True),  # the glob alone
        ("x", {"fin"}, "", True),  # the tag alone
        ("x", set(), "finance", True),  # the bundle alone
        ("fin_x", {"fin"}, "finance", True),
        ("x", {"other"}, "other", False),  # none of them
    ],
)
def test_globs_tags_and_bundles_are_or(dag_id: str, tags: set[str], bundle: str, expected: bool) -> None:
    covered = grant(dags=["fin_*"], tags=["fin"], bundles=["finance"])
    assert covered.matches(dag_id, frozenset(tags), bundle) is expected


@pytest.mark.parametrize("role", list(Role))
def test_a_grant_gives_only_the_dag_level_permissions_of_its_role(role: Role) -> None:
    given = grant(dags=["*"], role=role.display_name).permissions
    # Minus the audit log: it also lists entries of no DAG, which only a global role may read.
    assert given == {p for p in dag_level(role) if p[0] != "dag.audit_log"}
    assert all(key == "dag" or key.startswith("dag.") for key, _ in given)


def test_even_admin_gives_no_global_rights() -> None:
    given = grant(dags=["*"], role="Admin").permissions
    assert ("dag", "DELETE") in given
    assert not any(k == "dag.audit_log" for k, _ in given)  # event log rows of no DAG: global only
    for key in ("variable", "connection", "pool", "configuration", "team", "view.plugins", "menu.variables"):
        assert not any(k == key for k, _ in given), key
    assert not any(k.startswith(("view.", "menu.", "custom_view.")) for k, _ in given)


def test_a_custom_role_can_be_granted() -> None:
    roles = parse_custom_roles(
        '{"Runner": {"extends": "Viewer", "allow": ["dag:PUT", "dag.run:POST", "variable:GET"]}}'
    )
    (parsed,) = parse_dag_grants('[{"groups": ["g"], "dags": ["*"], "role": "runner"}]', roles)
    assert parsed.role == "Runner"
    assert parsed.permissions == dag_level(Role.VIEWER) | {("dag", "PUT"), ("dag.run", "POST")}


def test_several_grants_keep_their_order() -> None:
    text = json.dumps(
        [
            {"groups": ["a"], "dags": ["a_*"], "role": "Viewer"},
            {"groups": ["b"], "tags": ["b"], "role": "User"},
        ]
    )
    parsed = parse_dag_grants(text, ROLES)
    assert [g.role for g in parsed] == ["Viewer", "User"]


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ({"dags": ["x"], "role": "Op"}, "grant 0: groups is empty; list the directory groups"),
        ({"groups": [], "dags": ["x"], "role": "Op"}, "groups is empty"),
        ({"groups": ["g"], "role": "Op"}, "grant 0: names no DAGs; give dags (globs), tags or bundles"),
        ({"groups": ["g"], "dags": [], "tags": [], "bundles": [], "role": "Op"}, "names no DAGs"),
        ({"groups": ["g"], "dags": ["x"], "role": "Superuser"}, "role 'Superuser' is not a role; known: Viewer"),
        ({"groups": ["g"], "dags": ["x"]}, "role None is not a role"),
        ({"groups": ["g"], "dags": ["x"], "role": 4}, "role 4 is not a role"),
        ({"groups": ["g"], "dag": ["x"], "role": "Op"}, "unknown key 'dag'; a grant has bundles, dags, groups"),
        ({"groups": "g", "dags": ["x"], "role": "Op"}, "groups must be a list of non-empty strings, got 'g'"),
        ({"groups": ["g"], "dags": "x_*", "role": "Op"}, "dags must be a list of non-empty strings"),
        ({"groups": ["g"], "tags": [1], "role": "Op"}, "tags must be a list of non-empty strings"),
        ({"groups": ["g"], "bundles": [""], "role": "Op"}, "bundles must be a list of non-empty strings"),
        ({"groups": [""], "dags": ["x"], "role": "Op"}, "groups must be a list of non-empty strings"),
        ("ops", "grant 0: expected an object with groups, dags, tags, bundles, role"),
    ],
)
def test_bad_grants_are_refused_naming_the_grant_and_the_fix(item: object, fragment: str) -> None:
    with pytest.raises(GrantError) as info:
        parse_dag_grants(json.dumps([item]), ROLES)
    assert fragment in str(info.value)


def test_the_bad_grant_is_named_by_position() -> None:
    text = json.dumps([{"groups": ["g"], "dags": ["x"], "role": "Op"}, {"groups": ["g"], "role": "Op"}])
    with pytest.raises(GrantError) as info:
        parse_dag_grants(text, ROLES)
    assert str(info.value).startswith("grant 1: names no DAGs")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[{", "is not valid JSON"),
        ("{'groups': []}", "is not valid JSON"),
        ('{"groups": ["g"], "dags": ["x"], "role": "Op"}', "expected a JSON list of grants, got a dict"),
        ('"Op"', "expected a JSON list of grants, got a str"),
    ],
)
def test_bad_json_or_not_a_list_is_refused(text: str, fragment: str) -> None:
    with pytest.raises(GrantError) as info:
        parse_dag_grants(text, ROLES)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "definition",
    [
        {"allow": ["variable:*", "pool:GET", "view.plugins:GET"]},
        {},
        {"extends": "Viewer", "deny": ["dag:*", "dag.*:*"]},
    ],
)
def test_a_role_with_no_dag_level_permission_is_refused(definition: dict[str, object]) -> None:
    roles = parse_custom_roles(json.dumps({"Globals": definition}))
    with pytest.raises(GrantError) as info:
        parse_dag_grants('[{"groups": ["g"], "dags": ["*"], "role": "Globals"}]', roles)
    assert "role 'Globals' holds no dag or dag.* permission, so the grant gives nothing" in str(info.value)
