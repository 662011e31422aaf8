"""A DAG file's access_control in Airflow's format: what each action gives, and failing closed."""

from __future__ import annotations

import pytest

from airflow_identity_provider.auth.rules.access_control import RESOURCES, compile_access_control
from airflow_identity_provider.auth.rules.permissions import is_dag_level
from airflow_identity_provider.auth.rules.policy import builtin_permissions
from airflow_identity_provider.auth.rules.roles import Role

VIEWER_ON_A_DAG = frozenset(p for p in builtin_permissions(Role.VIEWER) if is_dag_level(p[0]))
EDIT = frozenset(
    {("dag", "PUT"), ("dag.run", "PUT"), ("dag.task", "PUT"), ("dag.task_instance", "PUT"), ("dag.hitl_detail", "PUT")}
)


def one(entry: object) -> frozenset[tuple[str, str]]:
    compiled, problems = compile_access_control({"team": entry})
    assert problems == []
    return compiled["team"]


def test_resources() -> None:
    assert RESOURCES == ("DAGs", "DAG Runs")


def test_can_read_is_what_a_viewer_may_do_on_a_dag() -> None:
    held = one({"DAGs": {"can_read"}})
    assert held == VIEWER_ON_A_DAG
    # spelled out, so that a change to Viewer's row is noticed here too
    for permission in [("dag", "GET"), ("dag", "MENU"), ("dag.run", "GET"), ("dag.task_logs", "GET")]:
        assert permission in held
    assert ("dag.code", "GET") in held
    assert ("dag.xcom", "GET") in held
    assert ("dag", "PUT") not in held
    assert ("dag.audit_log", "GET") not in held


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        ({"can_edit"}, EDIT),
        ({"can_delete"}, {("dag", "DELETE")}),
        ({"menu_access"}, {("dag", "MENU")}),
        ({"can_read", "can_edit"}, VIEWER_ON_A_DAG | EDIT),
        (set(), set()),
    ],
)
def test_actions_on_dags(actions: set[str], expected: set[tuple[str, str]]) -> None:
    assert one({"DAGs": actions}) == expected


@pytest.mark.parametrize(
    ("action", "method"),
    [
        ("can_create", "POST"),
        ("can_read", "GET"),
        ("can_edit", "PUT"),
        ("can_delete", "DELETE"),
        ("menu_access", "MENU"),
    ],
)
def test_actions_on_dag_runs(action: str, method: str) -> None:
    assert one({"DAG Runs": {action}}) == {("dag.run", method)}


def test_dict_form_combines_resources() -> None:
    held = one({"DAGs": {"can_read"}, "DAG Runs": {"can_create"}})
    assert held == VIEWER_ON_A_DAG | {("dag.run", "POST")}


@pytest.mark.parametrize("actions", [{"can_read", "can_edit"}, ["can_read", "can_edit"], ("can_read", "can_edit")])
def test_legacy_form_is_actions_on_dags_as_set_list_or_tuple(actions: object) -> None:
    assert one(actions) == VIEWER_ON_A_DAG | EDIT


def test_lists_work_in_the_dict_form_too() -> None:
    assert one({"DAGs": ["can_delete"], "DAG Runs": ["can_create", "can_delete"]}) == {
        ("dag", "DELETE"),
        ("dag.run", "POST"),
        ("dag.run", "DELETE"),
    }


def test_several_principals() -> None:
    compiled, problems = compile_access_control(
        {"finance-team": {"can_read"}, "Op": {"DAGs": {"can_edit"}}, "00000000-aaaa": {"DAG Runs": {"can_read"}}}
    )
    assert problems == []
    assert compiled == {
        "finance-team": VIEWER_ON_A_DAG,
        "Op": EDIT,
        "00000000-aaaa": {("dag.run", "GET")},
    }


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"Task Instances": {"can_read"}}, "unknown resource 'Task Instances'; expected DAGs or DAG Runs"),
        ({"dags": {"can_read"}}, "unknown resource 'dags'"),
        ({"DAG Run": {"can_fly"}}, "unknown resource 'DAG Run'"),
        ({"DAG Run": set()}, "unknown resource 'DAG Run'"),
        ({"DAGs": {"can_fly"}}, "unknown action 'can_fly'; expected can_read, can_create"),
        ({"can_view"}, "unknown action 'can_view'"),
        ({"DAGs": {"can_create"}}, "'can_create' does not apply to DAGs"),
        ({"DAGs": "can_read"}, "the actions of 'DAGs' must be a set of action names, got 'can_read'"),
        ("can_read", "the actions of 'DAGs' must be a set of action names"),
        (3, "must be a set of action names, got 3"),
        (None, "must be a set of action names, got None"),
    ],
)
def test_an_entry_we_cannot_read_is_reported_and_grants_nothing(entry: object, fragment: str) -> None:
    compiled, problems = compile_access_control({"finance-team": entry, "ok": {"can_read"}})
    assert "finance-team" not in compiled  # fail closed: nothing from the bad entry
    assert compiled == {"ok": VIEWER_ON_A_DAG}  # the others still count
    assert len(problems) == 1
    assert problems[0].startswith("access_control['finance-team']: ")
    assert fragment in problems[0]


def test_one_bad_resource_voids_the_whole_entry() -> None:
    compiled, problems = compile_access_control({"g": {"DAGs": {"can_read"}, "Pools": {"can_read"}}})
    assert compiled == {}
    assert problems == ["access_control['g']: unknown resource 'Pools'; expected DAGs or DAG Runs"]


def test_no_access_control() -> None:
    assert compile_access_control(None) == ({}, [])
    assert compile_access_control({}) == ({}, [])


@pytest.mark.parametrize(("raw", "kind"), [(["g"], "list"), ("g", "str"), ({"g"}, "set"), (3, "int")])
def test_not_a_mapping_is_reported_and_grants_nothing(raw: object, kind: str) -> None:
    compiled, problems = compile_access_control(raw)
    assert compiled == {}
    assert problems == [f"access_control is a {kind}, not a mapping of group or role -> permissions"]
