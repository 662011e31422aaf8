"""The Authorizer over an in-memory DAG index: parity with the FAB table, grants, access_control, teams, HITL."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagAccessEntity
from airflow.api_fastapi.common.types import MenuItem

from airflow_identity_provider.auth.rules import policy as fab
from airflow_identity_provider.auth.rules.access import AccessPolicy
from airflow_identity_provider.auth.rules.custom_roles import builtin_role_table
from airflow_identity_provider.auth.rules.dag_grants import parse_dag_grants
from airflow_identity_provider.auth.rules.permissions import dag_key, is_dag_level
from airflow_identity_provider.auth.rules.roles import Role
from airflow_identity_provider.auth.rules.user import IdentityUser
from airflow_identity_provider.auth.services.authorizer import Authorizer

METHODS = ("GET", "POST", "PUT", "DELETE", "MENU", "PATCH", "get")
RESOURCES = ("configuration", "connection", "dag", "asset", "asset_alias", "pool", "variable", "backfill")
ENTITIES: tuple[DagAccessEntity | None, ...] = (None, *DagAccessEntity)
ROLES = builtin_role_table()
OP_ON_A_DAG = sorted(p for p in ROLES["Op"] if is_dag_level(p[0]))
GRANTS = parse_dag_grants(
    json.dumps(
        [
            {"groups": ["analytics-ops"], "dags": ["analytics_*"], "role": "Op"},
            {"groups": ["tagged"], "tags": ["gold"], "role": "Viewer"},
        ]
    ),
    ROLES,
)


@dataclass(frozen=True)
class Facts:
    dag_id: str
    tags: frozenset[str] = frozenset()
    bundle: str = ""
    access_control: Mapping[str, Any] | None = field(default=None, hash=False)


class FakeIndex:
    def __init__(self, *dags: Facts) -> None:
        self.generation = 1
        self.dags = {dag.dag_id: dag for dag in dags}

    def get(self, dag_id: str) -> Facts | None:
        return self.dags.get(dag_id)

    def all(self) -> Mapping[str, Facts]:
        return self.dags

    def put(self, dag: Facts) -> None:
        self.dags[dag.dag_id] = dag
        self.generation += 1


def index() -> FakeIndex:
    return FakeIndex(
        Facts("analytics_daily"),
        Facts("analytics_hourly", bundle="main"),
        Facts("finance_daily", tags=frozenset({"finance"})),
        Facts("shared", access_control={"data-team": {"can_read"}, "Op": {"DAG Runs": {"can_create"}}}),
    )


def authorizer(dags: FakeIndex | None = None, **policy: Any) -> Authorizer:
    return Authorizer({"default": AccessPolicy(roles=ROLES, grants=GRANTS, **policy)}, dags or index())


def user(*roles: str, groups: tuple[str, ...] = (), teams: tuple[str, ...] = (), **kw: Any) -> IdentityUser:
    fields: dict[str, Any] = {"user_id": "u1", "name": "U", "email": "Ada@Example.com", "idp": "default", **kw}
    return IdentityUser(roles=roles, groups=groups, teams=teams, **fields)


GRANT_ONLY = user(groups=("analytics-ops",))


# --- built-in roles: the same answers as the FAB table ------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_builtin_roles_answer_as_the_fab_table(role: Role) -> None:
    auth, someone = authorizer(), user(role.display_name)
    for resource, method in itertools.product(RESOURCES, METHODS):
        assert auth.allows(someone, resource, method) is fab.is_allowed(role, resource, method), (resource, method)
    for entity, method in itertools.product(ENTITIES, METHODS):
        expected = fab.is_allowed(role, "dag", method, entity)
        assert auth.allows_dag(someone, method, access_entity=entity) is expected, (entity, method)
        assert auth.allows_dag(someone, method, access_entity=entity, dag_id="finance_daily") is expected
        if entity is not None:
            assert auth.allows_dag(someone, method, access_entity=entity.value) is expected
    for view in AccessView:
        assert auth.allows_view(someone, view) is fab.is_view_allowed(role, view), view
        assert auth.allows_view(someone, view.value) is fab.is_view_allowed(role, view), view
    for method in METHODS:
        assert auth.allows_custom_view(someone, method, "MyPlugin") is fab.is_custom_view_allowed(role, method, "p")
    assert auth.menu_items(someone, list(MenuItem)) == fab.allowed_menu_items(role, list(MenuItem))
    dag_ids = set(index().all())
    assert auth.filter_dags(someone, dag_ids, "GET") == dag_ids


def test_a_user_of_an_unknown_provider_gets_nothing() -> None:
    stranger = user("Admin", groups=("analytics-ops",), idp="gone")
    auth = authorizer()
    assert not auth.allows(stranger, "variable", "GET")
    assert not auth.allows_dag(stranger, "GET", dag_id="analytics_daily")
    assert auth.filter_dags(stranger, ["analytics_daily"], "GET") == set()
    assert auth.menu_items(stranger, list(MenuItem)) == []


# --- grant-only users ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "method"), OP_ON_A_DAG)
def test_a_grant_gives_ops_dag_rights_on_granted_dags_only(key: str, method: str) -> None:
    entity = None if key == "dag" else DagAccessEntity[key.split(".", 1)[1].upper()]
    auth = authorizer()
    assert dag_key(entity) == key
    assert auth.allows_dag(GRANT_ONLY, method, access_entity=entity, dag_id="analytics_daily")
    assert not auth.allows_dag(GRANT_ONLY, method, access_entity=entity, dag_id="finance_daily")
    assert not auth.allows_dag(GRANT_ONLY, method, access_entity=entity, dag_id="not_in_the_index")
    assert auth.allows_dag(GRANT_ONLY, method, access_entity=entity)  # dag_id None: some DAG allows it


def test_a_grant_gives_nothing_beyond_ops_dag_rights() -> None:
    auth = authorizer()
    assert not auth.allows_dag(GRANT_ONLY, "GET", access_entity=DagAccessEntity.AUDIT_LOG, dag_id="analytics_daily")
    assert not auth.allows_dag(GRANT_ONLY, "GET", access_entity=DagAccessEntity.AUDIT_LOG)
    for resource, method in itertools.product(("variable", "connection", "pool", "configuration", "asset"), METHODS):
        assert not auth.allows(GRANT_ONLY, resource, method), (resource, method)
    assert not any(auth.allows_view(GRANT_ONLY, view) for view in AccessView)
    assert not auth.allows_custom_view(GRANT_ONLY, "GET", "MyPlugin")


def test_without_grants_dag_id_none_is_denied() -> None:
    assert not authorizer().allows_dag(user(groups=("nobody",)), "GET")
    assert not authorizer().allows_dag(user(), "GET")


def test_filter_dags_returns_only_granted_ids() -> None:
    auth = authorizer()
    dag_ids = ["analytics_daily", "analytics_hourly", "finance_daily", "shared", "ghost"]
    assert auth.filter_dags(GRANT_ONLY, dag_ids, "PUT") == {"analytics_daily", "analytics_hourly"}
    assert auth.filter_dags(user(groups=("nobody",)), dag_ids, "GET") == set()
    assert auth.filter_dags(GRANT_ONLY, dag_ids, "FLY") == set()


def test_menu_items_of_a_grant_only_user_are_the_dag_level_ones_op_gives() -> None:
    expected = {MenuItem.DAGS, MenuItem.XCOMS, MenuItem.REQUIRED_ACTIONS}
    if "DEADLINES" in MenuItem.__members__:  # Airflow 3.3+: shown to whoever may GET dag runs
        expected.add(MenuItem["DEADLINES"])
    shown = authorizer().menu_items(GRANT_ONLY, list(MenuItem))
    assert set(shown) == expected
    assert [item for item in MenuItem if item in expected] == shown  # input order kept
    assert authorizer().menu_items(user(groups=("tagged",)), [MenuItem.DAGS, MenuItem.XCOMS]) == [MenuItem.DAGS]


# --- a DAG's access_control ---------------------------------------------------------------------------------


def test_access_control_by_group_and_by_role_name() -> None:
    auth = authorizer()
    reader = user(groups=("data-team",))
    assert auth.allows_dag(reader, "GET", dag_id="shared")
    assert auth.allows_dag(reader, "GET", access_entity=DagAccessEntity.TASK_LOGS, dag_id="shared")
    assert not auth.allows_dag(reader, "PUT", dag_id="shared")
    assert not auth.allows_dag(reader, "GET", dag_id="analytics_daily")
    assert auth.allows_dag(reader, "GET")  # some DAG: "shared"
    assert auth.filter_dags(reader, index().all(), "GET") == {"shared"}
    assert auth.menu_items(reader, [MenuItem.DAGS, MenuItem.VARIABLES]) == [MenuItem.DAGS]
    viewer = user("viewer")  # role names match case-insensitively, as in the role_mapping
    assert not auth.allows_dag(viewer, "POST", access_entity=DagAccessEntity.RUN, dag_id="shared")
    assert auth.allows_dag(user("op"), "POST", access_entity="RUN", dag_id="shared")
    assert auth.access_control_names() == {"data-team", "Op"}


def test_access_control_group_keys_match_exactly_also_for_any_dag() -> None:
    # Groups are case-sensitive ids: per DAG and "on some DAG" must give the same answer.
    dags = FakeIndex(Facts("shared", access_control={"Data-Team": {"can_read"}}))
    auth = authorizer(dags)
    other_case = user(groups=("data-team",))
    assert not auth.allows_dag(other_case, "GET", dag_id="shared")
    assert not auth.allows_dag(other_case, "GET")
    assert auth.menu_items(other_case, [MenuItem.DAGS]) == []


def test_honour_dag_access_control_false_ignores_it() -> None:
    auth = authorizer(honour_dag_access_control=False)
    reader = user(groups=("data-team",))
    assert not auth.allows_dag(reader, "GET", dag_id="shared")
    assert not auth.allows_dag(reader, "GET")
    assert auth.filter_dags(reader, ["shared"], "GET") == set()


def test_a_bad_access_control_entry_grants_nothing_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    dags = FakeIndex(Facts("d", access_control={"data-team": {"can_fly"}, "ok": {"can_read"}}))
    auth = authorizer(dags)
    assert not auth.allows_dag(user(groups=("data-team",)), "GET", dag_id="d")
    assert auth.allows_dag(user(groups=("ok",)), "GET", dag_id="d")
    assert "unknown action 'can_fly'" in caplog.text


# --- the index changes --------------------------------------------------------------------------------------


def test_a_new_generation_drops_the_memo() -> None:
    dags = index()
    auth = authorizer(dags)
    gold = user(groups=("tagged",))
    assert not auth.allows_dag(gold, "GET", dag_id="finance_daily")
    assert auth.filter_dags(gold, dags.all(), "GET") == set()
    dags.put(Facts("finance_daily", tags=frozenset({"finance", "gold"})))  # a tag added
    assert auth.allows_dag(gold, "GET", dag_id="finance_daily")
    assert auth.filter_dags(gold, dags.all(), "GET") == {"finance_daily"}
    # access_control too, "on some DAG" and the names sign-in keeps included
    assert not auth.allows_dag(gold, "PUT", dag_id="shared")
    assert not auth.allows_dag(gold, "PUT")
    assert auth.access_control_names() == {"data-team", "Op"}
    dags.put(Facts("shared", access_control={"tagged": {"can_edit"}}))
    assert auth.allows_dag(gold, "PUT", dag_id="shared")
    assert auth.allows_dag(gold, "PUT")
    assert auth.access_control_names() == {"tagged"}


def test_the_same_generation_keeps_the_memo() -> None:
    dags = index()
    auth = authorizer(dags)
    assert not auth.allows_dag(user(groups=("tagged",)), "GET", dag_id="finance_daily")
    dags.dags["finance_daily"] = Facts("finance_daily", tags=frozenset({"gold"}))  # no new generation
    assert not auth.allows_dag(user(groups=("tagged",)), "GET", dag_id="finance_daily")


# --- teams ----------------------------------------------------------------------------------------------------


def test_team_owned_resources_are_for_members_and_admin() -> None:
    auth = authorizer()
    member, outsider, admin = user("Op", teams=("analytics",)), user("Op", teams=("finance",)), user("Admin")
    assert auth.allows(member, "variable", "GET", team_name="analytics")
    assert not auth.allows(outsider, "variable", "GET", team_name="analytics")
    assert auth.allows(admin, "variable", "GET", team_name="analytics")
    assert auth.allows(outsider, "variable", "GET", team_name=None)  # not team-owned: unaffected
    assert auth.filter_named(member, "pool", {"a", "b"}, "GET", team_name="analytics") == {"a", "b"}
    assert auth.filter_named(outsider, "pool", {"a", "b"}, "GET", team_name="analytics") == set()
    assert not auth.allows_dag(outsider, "GET", dag_id="analytics_daily", team_name="analytics")
    assert auth.filter_dags(outsider, ["analytics_daily"], "GET", team_name="analytics") == set()
    assert auth.filter_dags(member, ["analytics_daily"], "GET", team_name="analytics") == {"analytics_daily"}


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])  # Airflow only ever asks GET today
def test_in_team(method: str) -> None:
    auth = authorizer()
    assert auth.in_team(user("Viewer", teams=("analytics",)), "analytics", method)
    assert not auth.in_team(user("Op", teams=("finance",)), "analytics", method)
    assert auth.in_team(user("Admin"), "analytics", method)
    assert auth.in_team(user("Viewer"), None, method)


# --- HITL, unknown inputs, PATCH --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("assigned", "expected"),
    [
        ({"u1"}, True),
        ({"U1"}, False),  # ids are exact
        # The token's email alone does not count: only verified e-mail-shaped aliases do (claims.py).
        ({"ada@example.com"}, False),
        ({"ADA@EXAMPLE.COM", "x"}, False),
        ({"ada@corp.example.com"}, True),  # an alias (UPN)
        ({"Ada@Corp.Example.com"}, True),
        ({"bob@example.com"}, False),
        (set(), False),
    ],
)
def test_hitl_assignee(assigned: set[str], expected: bool) -> None:
    ada = user("Viewer", aliases=("ada@corp.example.com",))
    assert authorizer().is_hitl_assignee(ada, assigned) is expected


def test_no_email_never_matches_an_empty_assignee() -> None:
    assert not authorizer().is_hitl_assignee(user(email=""), {""})


@pytest.mark.parametrize("entity", ["BOGUS", "run", 3, object()])
def test_an_unknown_access_entity_is_denied(entity: object) -> None:
    assert not authorizer().allows_dag(user("Admin"), "GET", access_entity=entity, dag_id="analytics_daily")


@pytest.mark.parametrize("method", ["FLY", "", None, 3, "PATCHES"])
def test_an_unknown_method_is_denied(method: object) -> None:
    auth, admin = authorizer(), user("Admin")
    assert not auth.allows(admin, "variable", method)
    assert not auth.allows_dag(admin, method, dag_id="analytics_daily")
    assert not auth.allows_dag(GRANT_ONLY, method, dag_id="analytics_daily")
    assert not auth.allows_custom_view(admin, method, "p")
    assert auth.filter_dags(admin, ["analytics_daily"], method) == set()


@pytest.mark.parametrize("holder", [user("Viewer"), user("User"), user("Op"), user("Admin"), GRANT_ONLY])
def test_patch_is_put(holder: IdentityUser) -> None:
    auth = authorizer()
    for resource in RESOURCES:
        assert auth.allows(holder, resource, "PATCH") is auth.allows(holder, resource, "PUT")
    for entity in ENTITIES:
        for dag_id in ("analytics_daily", None):
            put = auth.allows_dag(holder, "PUT", access_entity=entity, dag_id=dag_id)
            assert auth.allows_dag(holder, "PATCH", access_entity=entity, dag_id=dag_id) is put
    dag_ids = ["analytics_daily", "finance_daily"]
    assert auth.filter_dags(holder, dag_ids, "PATCH") == auth.filter_dags(holder, dag_ids, "PUT")
    assert auth.allows_custom_view(holder, "PATCH", "p") is auth.allows_custom_view(holder, "PUT", "p")


# --- what the security review tried --------------------------------------------------------------------------


def test_a_directory_group_named_like_a_role_does_not_pass_for_the_role() -> None:
    """access_control={"Op": ...} means the Op role (as in FAB); a self-made OIDC group "Op" gets nothing."""
    impostor = user(groups=("Op",))
    assert not authorizer().allows_dag(impostor, "POST", access_entity=DagAccessEntity.RUN, dag_id="shared")
    assert not authorizer().allows_dag(impostor, "POST", access_entity=DagAccessEntity.RUN)
    policy = AccessPolicy(roles=ROLES, grants=GRANTS)
    assert policy.assign(["Op"], access_control_names=frozenset({"Op"})) is None


def test_a_role_removed_from_the_settings_no_longer_matches_access_control() -> None:
    dags = FakeIndex(Facts("legacy", access_control={"Gone": {"can_read"}}))
    stale = user("Gone")  # a token minted while "Gone" was a custom role
    assert not authorizer(dags).allows_dag(stale, "GET", dag_id="legacy")


def test_no_grant_opens_the_event_log_even_with_role_admin() -> None:
    """The event log also lists rows of no DAG (variable and connection changes): a global right only."""
    grants = parse_dag_grants('[{"groups": ["team-x"], "dags": ["x_*"], "role": "Admin"}]', ROLES)
    checker = Authorizer({"default": AccessPolicy(roles=ROLES, grants=grants)}, FakeIndex(Facts("x_1")))
    member = user(groups=("team-x",))
    assert checker.allows_dag(member, "DELETE", dag_id="x_1")
    for dag_id in (None, "x_1"):
        assert not checker.allows_dag(member, "GET", access_entity=DagAccessEntity.AUDIT_LOG, dag_id=dag_id)
    assert MenuItem.AUDIT_LOG not in checker.menu_items(member, list(MenuItem))


def test_a_team_question_without_a_team_is_answered_no() -> None:
    assert authorizer().in_team(user("Viewer"), None)  # a resource of no team: the roles decide
    assert not authorizer().in_team(user("Viewer"), "finance")
    assert authorizer().in_team(user("Admin"), "finance", "patch")
