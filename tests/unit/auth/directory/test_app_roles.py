"""AppRoles: app-role holders from the resource service principals' appRoleAssignedTo, with canned Graph v1.0
answers (refresh cadence, a Graph that refuses the lookup); test_graph.py runs the same calls against the emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_identity_provider.auth.directory import DirectoryUnavailable
from airflow_identity_provider.auth.directory.app_roles import RESOURCE_REFRESH_ROUNDS, AppRoles

GRAPH = "https://graph.microsoft.com"
APP = "11111111-2222-3333-4444-555555555555"
SP = "99999999-0000-0000-0000-000000000001"
ADMIN_ROLE, OP_ROLE = "aaaaaaaa-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000002"
GROUP = "bbbbbbbb-0000-0000-0000-000000000001"
SCOPE = "t:"


class FakeGraph:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.assignments = [
            {"appRoleId": ADMIN_ROLE, "principalType": "User", "principalId": "ada"},
            {"appRoleId": OP_ROLE, "principalType": "ServicePrincipal", "principalId": "svc"},
            {"appRoleId": ADMIN_ROLE, "principalType": "Group", "principalId": GROUP},
        ]
        self.fail_lookup: int | None = None

    def __call__(self, url: str, family: str, take: Callable[[list[Any]], None]) -> None:
        self.calls.append(family)
        if family == "servicePrincipals":
            if self.fail_lookup:
                raise DirectoryUnavailable(url, "HTTP 400", status=self.fail_lookup)
            assert f"appId%20eq%20%27{APP}%27" in url or "servicePrincipalNames" in url, url
            roles = [{"id": ADMIN_ROLE, "value": "Airflow.Admin"}, {"id": OP_ROLE, "value": "Airflow.Op"}]
            take([{"id": SP, "appId": APP, "appRoles": roles}] if APP in url else [])
        else:
            assert url.startswith(f"{GRAPH}/v1.0/servicePrincipals/{SP}/appRoleAssignedTo"), url
            take(self.assignments)


def test_holders_direct_and_through_a_group() -> None:
    graph = FakeGraph()
    roles = AppRoles(GRAPH, [APP, "api://airflow"], graph)
    roles.sync()
    users = {GROUP: {"t:bob", "t:cy"}}
    holders = roles.holders("Airflow.Admin", scope=SCOPE, group_users=lambda gid: users.get(gid, set()))
    assert holders == {"t:ada", "t:bob", "t:cy"}
    assert roles.holders("Airflow.Op", scope=SCOPE, group_users=lambda gid: set()) == {"t:svc"}
    assert roles.holders("Unknown.Role", scope=SCOPE, group_users=lambda gid: set()) is None  # not tracked
    assert roles.assigned_groups({"Airflow.Admin"}) == {GROUP} and roles.assigned_groups({"Airflow.Op"}) == set()


def test_definitions_are_re_read_hourly_assignments_every_round() -> None:
    graph = FakeGraph()
    roles = AppRoles(GRAPH, [APP], graph)
    for _ in range(RESOURCE_REFRESH_ROUNDS + 1):
        roles.sync()
    assert graph.calls.count("servicePrincipals") == 2
    assert graph.calls.count("appRoleAssignedTo") == RESOURCE_REFRESH_ROUNDS + 1
    graph.assignments = []
    roles.sync()
    assert roles.holders("Airflow.Admin", scope=SCOPE, group_users=lambda gid: set()) == set()  # unassigned


def test_a_graph_without_the_query_leaves_app_roles_untracked() -> None:
    graph = FakeGraph()
    graph.fail_lookup = 400
    roles = AppRoles(GRAPH, [APP], graph)
    roles.sync()
    assert roles.holders("Airflow.Admin", scope=SCOPE, group_users=lambda gid: set()) is None
    graph.fail_lookup = 503
    with pytest.raises(DirectoryUnavailable):
        AppRoles(GRAPH, [APP], graph).sync()
