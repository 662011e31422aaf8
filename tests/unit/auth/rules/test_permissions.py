"""The ``<resource>:<method>`` vocabulary: what each string stands for, and every typo refused by name."""

from __future__ import annotations

import pytest
from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagAccessEntity
from airflow.api_fastapi.common.types import MenuItem

from airflow_identity_provider.auth.rules.permissions import (
    DAG_KEYS,
    GLOBAL_RESOURCES,
    MENU_KEYS,
    METHODS,
    VIEW_KEYS,
    BadPermission,
    format_permissions,
    is_dag_level,
    parse_permission,
    parse_permissions,
)

ALL_METHODS = ("GET", "POST", "PUT", "DELETE", "MENU")
# Written out by hand, not read off the module, so that a renamed key shows up here.
ENTITY_KEYS = (
    "dag.audit_log",
    "dag.code",
    "dag.dependencies",
    "dag.hitl_detail",
    "dag.run",
    "dag.task",
    "dag.task_instance",
    "dag.task_logs",
    "dag.version",
    "dag.warning",
    "dag.xcom",
)
VIEWS = tuple(f"view.{view.name.lower()}" for view in AccessView)
# Deadlines (3.3) and Jobs (3.2) are known names on every Airflow, so one set of settings starts everywhere.
MENUS = tuple(dict.fromkeys((*(f"menu.{item.name.lower()}" for item in MenuItem), "menu.deadlines", "menu.jobs")))


def test_vocabulary_is_what_the_docstring_lists() -> None:
    assert METHODS == ALL_METHODS
    assert GLOBAL_RESOURCES == (
        "configuration",
        "connection",
        "asset",
        "asset_alias",
        "pool",
        "variable",
        "backfill",
        "team",
    )
    assert set(DAG_KEYS) == {"dag", *ENTITY_KEYS}
    assert len(DAG_KEYS) == len(DagAccessEntity) + 1
    assert set(VIEW_KEYS) == set(VIEWS)
    assert set(MENU_KEYS) == set(MENUS)
    assert {"menu.dags", "menu.variables", "menu.required_actions", "menu.deadlines", "menu.jobs"} <= set(MENUS)


@pytest.mark.parametrize("resource", [*GLOBAL_RESOURCES, "dag", *ENTITY_KEYS])
@pytest.mark.parametrize("method", ALL_METHODS)
def test_each_resource_and_method_parses_to_one_permission(resource: str, method: str) -> None:
    assert parse_permission(f"{resource}:{method}") == {(resource, method)}


@pytest.mark.parametrize("resource", [*GLOBAL_RESOURCES, "dag", *ENTITY_KEYS])
def test_star_method_is_every_method(resource: str) -> None:
    assert parse_permission(f"{resource}:*") == {(resource, m) for m in ALL_METHODS}


def test_dag_star_is_every_entity_but_not_the_dag_itself() -> None:
    assert parse_permission("dag.*:GET") == {(key, "GET") for key in ENTITY_KEYS}
    assert parse_permission("dag.*:*") == {(key, m) for key in ENTITY_KEYS for m in ALL_METHODS}


@pytest.mark.parametrize("view", VIEWS)
def test_each_view_parses_and_star_on_a_view_is_get(view: str) -> None:
    assert parse_permission(f"{view}:GET") == {(view, "GET")}
    assert parse_permission(f"{view}:*") == {(view, "GET")}


@pytest.mark.parametrize("menu", MENUS)
def test_each_menu_parses_and_star_on_a_menu_is_menu(menu: str) -> None:
    assert parse_permission(f"{menu}:MENU") == {(menu, "MENU")}
    assert parse_permission(f"{menu}:*") == {(menu, "MENU")}


def test_view_and_menu_wildcards() -> None:
    assert parse_permission("view.*:*") == {(v, "GET") for v in VIEWS}
    assert parse_permission("view.*:GET") == {(v, "GET") for v in VIEWS}
    assert parse_permission("menu.*:*") == {(m, "MENU") for m in MENUS}
    assert parse_permission("menu.*:MENU") == {(m, "MENU") for m in MENUS}


def test_custom_views_keep_the_plugins_spelling() -> None:
    assert parse_permission("custom_view.MyPlugin:GET") == {("custom_view.MyPlugin", "GET")}
    assert parse_permission("CUSTOM_VIEW.MyPlugin:get") == {("custom_view.MyPlugin", "GET")}
    assert parse_permission("custom_view.*:*") == {("custom_view.*", m) for m in ALL_METHODS}
    assert parse_permission("custom_view.*:MENU") == {("custom_view.*", "MENU")}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Variable:get", {("variable", "GET")}),
        ("DAG.Run:Post", {("dag.run", "POST")}),
        (" dag.task_instance : put ", {("dag.task_instance", "PUT")}),
        ("VIEW.Plugins:get", {("view.plugins", "GET")}),
        ("Menu.Variables:menu", {("menu.variables", "MENU")}),
        ("ASSET_ALIAS:delete", {("asset_alias", "DELETE")}),
    ],
)
def test_resource_and_method_are_case_insensitive(text: str, expected: set[tuple[str, str]]) -> None:
    assert parse_permission(text) == expected


@pytest.mark.parametrize(
    ("text", "named"),
    [
        # unknown resources: the message names the resource and lists the vocabulary
        ("dags:GET", "unknown resource 'dags'"),
        ("variables:GET", "unknown resource 'variables'"),
        ("dag.runs:POST", "unknown resource 'dag.runs'"),
        ("connections:*", "unknown resource 'connections'"),
        ("view.plugin:GET", "unknown resource 'view.plugin'"),
        ("menu.dag:MENU", "unknown resource 'menu.dag'"),
        ("custom_view.:GET", "unknown resource 'custom_view.'"),
        (":GET", "unknown resource ''"),
        # unknown methods: the message names the method
        ("dag:PATCH", "unknown method 'PATCH'"),
        ("dag:READ", "unknown method 'READ'"),
        ("variable:can_read", "unknown method 'can_read'"),
        ("dag:", "unknown method ''"),
        # not <resource>:<method>
        ("dag", "'dag' is not <resource>:<method>"),
        ("dag:GET:PUT", "'dag:GET:PUT' is not <resource>:<method>"),
        ("", "'' is not <resource>:<method>"),
        # views take GET, menus MENU
        ("view.plugins:POST", "take the method GET"),
        ("view.*:MENU", "take the method GET"),
        ("menu.dags:GET", "take the method MENU"),
        ("menu.*:DELETE", "take the method MENU"),
    ],
)
def test_typos_are_refused_naming_the_bad_part(text: str, named: str) -> None:
    with pytest.raises(BadPermission) as info:
        parse_permission(text)
    assert named in str(info.value)
    assert info.value.reason == "bad_permission"
    assert isinstance(info.value, ValueError)


def test_unknown_resource_message_lists_the_vocabulary() -> None:
    with pytest.raises(BadPermission) as info:
        parse_permission("dags:GET")
    for word in ("variable", "dag.<entity>", "run", "view.<view>", "plugins", "menu.<item>", "custom_view.*"):
        assert word in info.value.message


@pytest.mark.parametrize("value", [42, None, ["dag:GET"], b"dag:GET"])
def test_a_non_string_is_refused(value: object) -> None:
    with pytest.raises(BadPermission, match="is not <resource>:<method>"):
        parse_permission(value)  # type: ignore[arg-type]


def test_parse_permissions_unions_a_list() -> None:
    assert parse_permissions(["variable:GET", "variable:PUT", "pool:GET"], what="allow") == {
        ("variable", "GET"),
        ("variable", "PUT"),
        ("pool", "GET"),
    }
    assert parse_permissions([], what="allow") == frozenset()


@pytest.mark.parametrize("value", ["variable:GET", {"variable": "GET"}, ["variable:GET", 3], None])
def test_parse_permissions_wants_a_list_of_strings(value: object) -> None:
    with pytest.raises(BadPermission, match="deny must be a list of permission strings"):
        parse_permissions(value, what="deny")


def test_parse_permissions_refuses_the_first_bad_entry() -> None:
    with pytest.raises(BadPermission, match="unknown resource 'variables'"):
        parse_permissions(["variable:GET", "variables:GET"], what="allow")


def test_format_permissions_groups_methods_in_a_fixed_order() -> None:
    held = parse_permission("variable:*") | {("dag", "PUT"), ("dag", "GET")}
    assert format_permissions(held) == ["dag:GET,PUT", "variable:GET,POST,PUT,DELETE,MENU"]
    assert format_permissions([]) == []


@pytest.mark.parametrize(("key", "expected"), [("dag", True), ("dag.run", True), ("dags", False), ("pool", False)])
def test_is_dag_level(key: str, expected: bool) -> None:
    assert is_dag_level(key) is expected
