"""The authorization table, checked against FAB's role matrix transcribed by hand.

The expectations below are written out independently of ``policy.py``, from FAB's ``ROLE_CONFIGS`` in
https://github.com/apache/airflow/blob/main/providers/fab/src/airflow/providers/fab/auth_manager/security_manager/override.py
(as Airflow's auth-manager calls map onto it), as the lowest role that holds each permission.
FAB's DAG rule is applied by hand: a sub-entity GET also needs GET on DAGs (every role), and any other
method on a sub-entity also needs PUT on DAGs, which starts at User.
"""

from __future__ import annotations

import itertools
from enum import Enum
from typing import Any

import pytest
from airflow.api_fastapi.auth.managers import base_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagAccessEntity
from airflow.api_fastapi.common.types import MenuItem

from airflow_identity_provider.auth.rules import policy
from airflow_identity_provider.auth.rules.roles import Role

# Literal aliases for type checkers, str Enums at runtime: the runtime form is what the core passes.
ResourceMethod: Any = base_auth_manager.ResourceMethod
ExtendedResourceMethod: Any = base_auth_manager.ExtendedResourceMethod
# Airflow 3.1 has only the Literal aliases at runtime too, and passes plain strings (remove when the floor is 3.2).
METHOD_ENUMS = isinstance(ResourceMethod, type) and issubclass(ResourceMethod, Enum)

VIEWER, USER, OP, ADMIN = Role.VIEWER, Role.USER, Role.OP, Role.ADMIN
ROLES = (VIEWER, USER, OP, ADMIN)
METHODS = ("GET", "POST", "PUT", "DELETE", "MENU")
RESOURCES = ("configuration", "connection", "dag", "asset", "asset_alias", "pool", "variable", "backfill")
ENTITIES = (
    "AUDIT_LOG",
    "CODE",
    "DEPENDENCIES",
    "HITL_DETAIL",
    "RUN",
    "TASK",
    "TASK_INSTANCE",
    "TASK_LOGS",
    "VERSION",
    "WARNING",
    "XCOM",
)

# (resource, entity or None, method) -> lowest role allowed. Missing means no role at all.
EXPECTED: dict[tuple[str, str | None, str], Role] = {
    # DAGs: Viewer GET, MENU; User adds PUT, DELETE.
    ("dag", None, "GET"): VIEWER,
    ("dag", None, "MENU"): VIEWER,
    ("dag", None, "PUT"): USER,
    ("dag", None, "DELETE"): USER,
    # DAG Runs: Viewer GET, MENU; User adds POST, PUT, DELETE. Viewer's MENU falls to the DAG rule.
    ("dag", "RUN", "GET"): VIEWER,
    ("dag", "RUN", "MENU"): USER,
    ("dag", "RUN", "POST"): USER,
    ("dag", "RUN", "PUT"): USER,
    ("dag", "RUN", "DELETE"): USER,
    # Task Instances: same as DAG Runs.
    ("dag", "TASK", "GET"): VIEWER,
    ("dag", "TASK", "MENU"): USER,
    ("dag", "TASK", "POST"): USER,
    ("dag", "TASK", "PUT"): USER,
    ("dag", "TASK", "DELETE"): USER,
    # DAG Runs + Task Instances: Viewer GET; User adds POST, PUT, DELETE; no MENU row.
    ("dag", "TASK_INSTANCE", "GET"): VIEWER,
    ("dag", "TASK_INSTANCE", "POST"): USER,
    ("dag", "TASK_INSTANCE", "PUT"): USER,
    ("dag", "TASK_INSTANCE", "DELETE"): USER,
    # Read-only entities.
    ("dag", "TASK_LOGS", "GET"): VIEWER,
    ("dag", "CODE", "GET"): VIEWER,
    ("dag", "DEPENDENCIES", "GET"): VIEWER,
    ("dag", "VERSION", "GET"): VIEWER,
    ("dag", "WARNING", "GET"): VIEWER,
    # XComs: Viewer GET; Op adds POST, PUT, DELETE, MENU.
    ("dag", "XCOM", "GET"): VIEWER,
    ("dag", "XCOM", "POST"): OP,
    ("dag", "XCOM", "PUT"): OP,
    ("dag", "XCOM", "DELETE"): OP,
    ("dag", "XCOM", "MENU"): OP,
    # HITL Detail: Viewer GET; User adds PUT; Op adds MENU.
    ("dag", "HITL_DETAIL", "GET"): VIEWER,
    ("dag", "HITL_DETAIL", "PUT"): USER,
    ("dag", "HITL_DETAIL", "MENU"): OP,
    # Audit Logs: Admin GET, MENU.
    ("dag", "AUDIT_LOG", "GET"): ADMIN,
    ("dag", "AUDIT_LOG", "MENU"): ADMIN,
    # Backfills are DAG runs.
    ("backfill", None, "GET"): VIEWER,
    ("backfill", None, "MENU"): USER,
    ("backfill", None, "POST"): USER,
    ("backfill", None, "PUT"): USER,
    ("backfill", None, "DELETE"): USER,
    # Assets: Viewer GET, MENU; User adds POST; Op adds PUT, DELETE.
    ("asset", None, "GET"): VIEWER,
    ("asset", None, "MENU"): VIEWER,
    ("asset", None, "POST"): USER,
    ("asset", None, "PUT"): OP,
    ("asset", None, "DELETE"): OP,
    # Asset Aliases: Viewer GET; Admin has all existing permissions, taken as the writes.
    ("asset_alias", None, "GET"): VIEWER,
    ("asset_alias", None, "POST"): ADMIN,
    ("asset_alias", None, "PUT"): ADMIN,
    ("asset_alias", None, "DELETE"): ADMIN,
    # Pools: Viewer GET; Op adds POST, PUT, DELETE, MENU.
    ("pool", None, "GET"): VIEWER,
    ("pool", None, "POST"): OP,
    ("pool", None, "PUT"): OP,
    ("pool", None, "DELETE"): OP,
    ("pool", None, "MENU"): OP,
    # Connections and Variables: Op gets everything.
    ("connection", None, "GET"): OP,
    ("connection", None, "POST"): OP,
    ("connection", None, "PUT"): OP,
    ("connection", None, "DELETE"): OP,
    ("connection", None, "MENU"): OP,
    ("variable", None, "GET"): OP,
    ("variable", None, "POST"): OP,
    ("variable", None, "PUT"): OP,
    ("variable", None, "DELETE"): OP,
    ("variable", None, "MENU"): OP,
    # Configurations: Op GET, MENU.
    ("configuration", None, "GET"): OP,
    ("configuration", None, "MENU"): OP,
}

EXPECTED_VIEWS: dict[str, Role] = {
    "CLUSTER_ACTIVITY": VIEWER,
    "IMPORT_ERRORS": VIEWER,
    "JOBS": VIEWER,
    "WEBSITE": VIEWER,
    "DOCS": VIEWER,
    "PLUGINS": OP,
    "PROVIDERS": OP,
    "TRIGGERS": ADMIN,
}

EXPECTED_MENU: dict[str, Role] = {
    "Dags": VIEWER,
    "Assets": VIEWER,
    "Docs": VIEWER,
    "Jobs": VIEWER,
    "Deadlines": VIEWER,
    "Connections": OP,
    "Variables": OP,
    "Pools": OP,
    "Config": OP,
    "XComs": OP,
    "Plugins": OP,
    "Providers": OP,
    "Required Actions": OP,
    "Audit Log": ADMIN,
}
# Jobs came with Airflow 3.2, Deadlines with 3.3: only the installed Airflow's entries can be asked about.
INSTALLED_MENU: dict[str, Role] = {k: v for k, v in EXPECTED_MENU.items() if k in {i.value for i in MenuItem}}


def _resource_cases() -> list[tuple[str, str | None]]:
    return [(r, None) for r in RESOURCES] + [("dag", e) for e in ENTITIES]


def _expected(role: Role, resource: str, entity: str | None, method: str) -> bool:
    lowest = EXPECTED.get((resource, entity, method))
    return lowest is not None and role >= lowest


def _entity(entity: str | None) -> DagAccessEntity | None:
    return None if entity is None else DagAccessEntity[entity]


MATRIX = [
    pytest.param(role, resource, entity, method, id=f"{role.display_name}-{resource}-{entity or ''}-{method}")
    for (resource, entity), role, method in itertools.product(_resource_cases(), ROLES, METHODS)
]


class TestMatrix:
    @pytest.mark.parametrize(("role", "resource", "entity", "method"), MATRIX)
    def test_cell(self, role: Role, resource: str, entity: str | None, method: str) -> None:
        assert policy.is_allowed(role, resource, method, _entity(entity)) is _expected(role, resource, entity, method)

    @pytest.mark.parametrize(("role", "resource", "entity", "method"), MATRIX)
    def test_method_as_enum_and_lowercase(self, role: Role, resource: str, entity: str | None, method: str) -> None:
        expected = _expected(role, resource, entity, method)
        if METHOD_ENUMS:
            assert policy.is_allowed(role, resource, ExtendedResourceMethod(method), _entity(entity)) is expected
        assert policy.is_allowed(role, resource, method.lower(), _entity(entity)) is expected

    @pytest.mark.parametrize(
        ("role", "resource", "entity"),
        [(role, r, e) for (r, e), role in itertools.product(_resource_cases(), ROLES)],
    )
    def test_patch_is_put(self, role: Role, resource: str, entity: str | None) -> None:
        assert policy.is_allowed(role, resource, "PATCH", _entity(entity)) is _expected(role, resource, entity, "PUT")

    @pytest.mark.skipif(not METHOD_ENUMS, reason="Airflow 3.1: ResourceMethod is a Literal, methods are strings")
    def test_resource_method_enum(self) -> None:
        assert policy.is_allowed(VIEWER, "dag", ResourceMethod.GET)
        assert not policy.is_allowed(VIEWER, "dag", ResourceMethod.PUT)

    def test_entity_given_as_its_value(self) -> None:
        assert policy.is_allowed(USER, "dag", "POST", "RUN")  # type: ignore[arg-type]
        assert not policy.is_allowed(VIEWER, "dag", "POST", "RUN")  # type: ignore[arg-type]

    def test_every_expected_permission_is_reachable(self) -> None:
        # Guards the transcription itself: a typo in EXPECTED would otherwise only ever deny.
        for resource, entity, method in EXPECTED:
            assert resource in RESOURCES
            assert entity is None or entity in ENTITIES
            assert method in METHODS
            assert policy.is_allowed(ADMIN, resource, method, _entity(entity))


class TestExamplesFromTheBrief:
    @pytest.mark.parametrize(
        ("role", "entity", "method", "allowed"),
        [
            (VIEWER, "TASK_LOGS", "GET", True),
            (VIEWER, "RUN", "POST", False),
            (USER, "RUN", "POST", True),
            (OP, "XCOM", "POST", True),
            (USER, "XCOM", "POST", False),
            (OP, "AUDIT_LOG", "GET", False),
            (ADMIN, "AUDIT_LOG", "GET", True),
            (VIEWER, "HITL_DETAIL", "GET", True),
            (VIEWER, "HITL_DETAIL", "PUT", False),
            (USER, "HITL_DETAIL", "PUT", True),
            (USER, "HITL_DETAIL", "MENU", False),
            (OP, "HITL_DETAIL", "MENU", True),
        ],
    )
    def test_example(self, role: Role, entity: str, method: str, allowed: bool) -> None:
        assert policy.is_allowed(role, "dag", method, DagAccessEntity[entity]) is allowed

    def test_viewer_cannot_read_secrets(self) -> None:
        assert not policy.is_allowed(VIEWER, "connection", "GET")
        assert not policy.is_allowed(USER, "variable", "GET")
        assert policy.is_allowed(OP, "variable", "GET")

    def test_admin_cannot_edit_configuration(self) -> None:
        # FAB has no such permission, so "everything" for Admin does not include it.
        assert not policy.is_allowed(ADMIN, "configuration", "PUT")


class TestFailClosed:
    @pytest.mark.parametrize("role", ROLES)
    @pytest.mark.parametrize("resource", ["team", "user", "DAG", "Dag", "dags", "", "backfills", "view"])
    def test_unknown_resource(self, role: Role, resource: str) -> None:
        for method in METHODS:
            assert not policy.is_allowed(role, resource, method)

    @pytest.mark.parametrize("role", ROLES)
    @pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "LIST", "*", "", "can_read", " GET", "GET "])
    def test_unknown_method(self, role: Role, method: str) -> None:
        for resource, entity in _resource_cases():
            assert not policy.is_allowed(role, resource, method, _entity(entity))
        assert not policy.is_custom_view_allowed(role, method, "my-plugin")

    @pytest.mark.parametrize("method", [None, 1, b"GET", ("GET",)])
    def test_method_of_wrong_type(self, method: object) -> None:
        assert not policy.is_allowed(ADMIN, "dag", method)  # type: ignore[arg-type]
        assert not policy.is_custom_view_allowed(ADMIN, method, "x")  # type: ignore[arg-type]

    @pytest.mark.parametrize("role", ROLES)
    @pytest.mark.parametrize("resource", [r for r in RESOURCES if r != "dag"])
    def test_entity_only_applies_to_dag(self, role: Role, resource: str) -> None:
        for entity, method in itertools.product(DagAccessEntity, METHODS):
            assert not policy.is_allowed(role, resource, method, entity)

    @pytest.mark.parametrize("entity", ["SLA_MISS", "TASK_RESCHEDULE", "run", "", "DAG"])
    def test_unknown_entity(self, entity: str) -> None:
        for method in METHODS:
            assert not policy.is_allowed(ADMIN, "dag", method, entity)  # type: ignore[arg-type]

    def test_look_alike_enums_are_not_the_real_ones(self) -> None:
        class FakeEntity(Enum):
            RUN = "RUN"

        class FakeView(Enum):
            JOBS = "JOBS"

        class FakeMenu(Enum):
            DAGS = "Dags"

        assert not policy.is_allowed(ADMIN, "dag", "GET", FakeEntity.RUN)  # type: ignore[arg-type]
        assert not policy.is_view_allowed(ADMIN, FakeView.JOBS)  # type: ignore[arg-type]
        assert policy.allowed_menu_items(ADMIN, [FakeMenu.DAGS]) == []  # type: ignore[list-item]

    @pytest.mark.parametrize("role", [4, 1, "Admin", "ADMIN", None, 4.0])
    def test_not_a_role(self, role: object) -> None:
        assert not policy.is_allowed(role, "dag", "GET")  # type: ignore[arg-type]
        assert not policy.is_view_allowed(role, "JOBS")  # type: ignore[arg-type]
        assert not policy.is_custom_view_allowed(role, "GET", "x")  # type: ignore[arg-type]
        assert policy.allowed_menu_items(role, list(MenuItem)) == []  # type: ignore[arg-type]


class TestBackfill:
    @pytest.mark.parametrize(("role", "method"), list(itertools.product(ROLES, [*METHODS, "PATCH"])))
    def test_backfill_is_dag_run(self, role: Role, method: str) -> None:
        assert policy.is_allowed(role, "backfill", method) is policy.is_allowed(
            role, "dag", method, DagAccessEntity.RUN
        )

    def test_backfill_with_an_entity_is_denied(self) -> None:
        assert not policy.is_allowed(ADMIN, "backfill", "GET", DagAccessEntity.RUN)


class TestViews:
    @pytest.mark.parametrize(("role", "view"), list(itertools.product(ROLES, EXPECTED_VIEWS)))
    def test_view(self, role: Role, view: str) -> None:
        expected = role >= EXPECTED_VIEWS[view]
        assert policy.is_view_allowed(role, AccessView(view)) is expected
        assert policy.is_view_allowed(role, view) is expected

    def test_every_installed_access_view_has_a_decision(self) -> None:
        # ADMIN new Airflow release that adds a view fails here, so someone decides who may see it.
        assert {v.value for v in AccessView} == set(EXPECTED_VIEWS)

    @pytest.mark.parametrize("view", ["IMPORT_ERRORS_ALL", "AUDIT_LOGS_ALL", "REPARSE_ALL", "jobs", "Jobs", ""])
    def test_unknown_view_denied_even_to_admin(self, view: str) -> None:
        # These are FAB's Airflow 3.4 views; each exposes more than its 3.3 counterpart, so it needs an
        # explicit row, not Admin-by-default.
        for role in ROLES:
            assert not policy.is_view_allowed(role, view)

    @pytest.mark.parametrize("view", [None, 1, ("JOBS",)])
    def test_view_of_wrong_type(self, view: object) -> None:
        assert not policy.is_view_allowed(ADMIN, view)  # type: ignore[arg-type]


class TestCustomViews:
    @pytest.mark.parametrize(("role", "method"), list(itertools.product(ROLES, [*METHODS, "PATCH", "get", "menu"])))
    @pytest.mark.parametrize("resource_name", ["my-plugin", "", "Connections", "../admin"])
    def test_custom_view(self, role: Role, method: str, resource_name: str) -> None:
        expected = role == ADMIN or method.upper() in ("GET", "MENU")
        assert policy.is_custom_view_allowed(role, method, resource_name) is expected


class TestMenu:
    @pytest.mark.parametrize("role", ROLES)
    def test_menu(self, role: Role) -> None:
        expected = [item for item in MenuItem if role >= EXPECTED_MENU[item.value]]
        assert policy.allowed_menu_items(role, list(MenuItem)) == expected

    @pytest.mark.parametrize("role", ROLES)
    def test_order_is_preserved(self, role: Role) -> None:
        items = list(reversed(MenuItem))
        assert policy.allowed_menu_items(role, items) == [i for i in items if role >= EXPECTED_MENU[i.value]]

    def test_accepts_any_iterable_and_keeps_duplicates(self) -> None:
        items = (i for i in [MenuItem.DAGS, MenuItem.CONFIG, MenuItem.DAGS])
        assert policy.allowed_menu_items(VIEWER, items) == [MenuItem.DAGS, MenuItem.DAGS]

    def test_item_given_by_value(self) -> None:
        assert policy.allowed_menu_items(OP, ["Config", "Audit Log"]) == [MenuItem.CONFIG]  # type: ignore[list-item]

    def test_every_installed_menu_item_has_a_decision(self) -> None:
        assert {i.value for i in MenuItem} == set(INSTALLED_MENU)
        assert {i.value for i in MenuItem} <= set(EXPECTED_MENU)

    @pytest.mark.parametrize("item", ["Import Errors", "Users", "CONFIG", "dags", "", None, 3])
    def test_unknown_menu_item_denied_even_to_admin(self, item: object) -> None:
        for role in ROLES:
            assert policy.allowed_menu_items(role, [item, MenuItem.DAGS]) == [MenuItem.DAGS]  # type: ignore[list-item]

    def test_viewer_menu_is_what_fab_shows(self) -> None:
        viewer_menu = ["ASSETS", "DAGS", "DEADLINES", "DOCS", "JOBS"]
        assert policy.allowed_menu_items(VIEWER, list(MenuItem)) == [
            MenuItem[name] for name in viewer_menu if name in MenuItem.__members__
        ]


class TestDescribe:
    def test_rows_are_strings(self) -> None:
        rows = policy.describe()
        assert rows
        for row in rows:
            assert len(row) == 4
            assert all(isinstance(cell, str) for cell in row)
            assert row[0] in {r.display_name for r in ROLES}
            assert row[3]
            assert set(row[3].split(",")) <= set(METHODS)

    def test_resource_rows_match_the_expected_matrix(self) -> None:
        described = {
            (Role.parse(role), resource, entity or None, method)
            for role, resource, entity, methods in policy.describe()
            if resource in RESOURCES
            for method in methods.split(",")
        }
        expected = {
            (role, resource, entity, method)
            for (resource, entity, method), lowest in EXPECTED.items()
            for role in ROLES
            if role >= lowest
        }
        assert described == expected

    def test_views_custom_views_and_menu_rows(self) -> None:
        rows = policy.describe()
        views = {(Role.parse(r), e) for r, res, e, _ in rows if res == "view"}
        assert views == {(role, v) for v, lowest in EXPECTED_VIEWS.items() for role in ROLES if role >= lowest}
        menu = {(Role.parse(r), e) for r, res, e, _ in rows if res == "menu"}
        assert menu == {(role, m) for m, lowest in INSTALLED_MENU.items() for role in ROLES if role >= lowest}
        custom = {r: m for r, res, _, m in rows if res == "custom_view"}
        assert custom == {
            "Viewer": "GET,MENU",
            "User": "GET,MENU",
            "Op": "GET,MENU",
            "Admin": "GET,POST,PUT,DELETE,MENU",
        }

    def test_methods_are_in_canonical_order(self) -> None:
        assert ("Admin", "connection", "", "GET,POST,PUT,DELETE,MENU") in policy.describe()
        assert ("User", "dag", "", "GET,PUT,DELETE,MENU") in policy.describe()
