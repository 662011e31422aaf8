"""The decision: a route's level against the caller's roles, and the call's data (pure)."""

from __future__ import annotations

import json

import pytest

from airflow_identity_provider.luigi_gateway.access import (
    MAX_DATA_BYTES,
    Allowed,
    CallData,
    Denied,
    audit_fields,
    authorize,
    call_data,
)
from airflow_identity_provider.luigi_gateway.methods import Level, classify, level_of


def decide(path: str, roles: tuple[str, ...], http_method: str = "GET") -> Allowed | Denied:
    return authorize(classify(path), http_method, roles, level_of(roles))


def test_a_viewer_reads_but_cannot_mark_done_and_is_told_which_role_it_needs() -> None:
    assert isinstance(decide("/api/task_list", ("Viewer",)), Allowed)
    assert isinstance(decide("/static/visualiser/index.html", ("Viewer",)), Allowed)
    denied = decide("/api/mark_as_done", ("Viewer",))
    assert isinstance(denied, Denied)
    assert (denied.status, denied.reason, denied.needed) == (403, "not_permitted", Level.OP)
    assert "'mark_as_done'" in denied.message and "Op" in denied.message and "Viewer" in denied.message


@pytest.mark.parametrize(
    ("roles", "path", "allowed"),
    [
        (("Worker",), "/api/add_task", True),
        (("Worker",), "/api/get_work", True),
        (("Worker",), "/api/mark_as_done", False),
        (("Op",), "/api/mark_as_done", True),
        (("Op",), "/api/add_task", True),
        (("Op",), "/api/prune", False),
        (("Admin",), "/api/prune", True),
        (("Viewer",), "/api/add_task", False),
        (("User",), "/api/pause", False),
        (("Auditor",), "/api/task_list", False),  # a custom role that gives nothing in luigi
        ((), "/", False),
    ],
)
def test_levels(roles: tuple[str, ...], path: str, allowed: bool) -> None:
    assert isinstance(decide(path, roles), Allowed) is allowed


def test_unknown_methods_routes_and_verbs_are_refused_even_for_admin() -> None:
    unknown = decide("/api/drop_everything", ("Admin",))
    assert isinstance(unknown, Denied) and (unknown.status, unknown.reason) == (403, "unknown_method")
    route = decide("/debug", ("Admin",))
    assert isinstance(route, Denied) and (route.status, route.reason) == (404, "unknown_route")
    verb = decide("/api/task_list", ("Admin",), "DELETE")
    assert isinstance(verb, Denied) and verb.status == 405
    assert isinstance(decide("/static/visualiser/index.html", ("Admin",), "POST"), Denied)
    assert isinstance(decide("/api/task_list", ("Admin",), "POST"), Allowed)


def test_call_data_is_one_json_object_and_is_forwarded_as_checked() -> None:
    data = call_data(['{"task_id": "A_x_0123456789", "worker": "w"}'])
    assert isinstance(data, CallData)
    assert json.loads(data.canonical) == {"task_id": "A_x_0123456789", "worker": "w"}
    assert isinstance(call_data([]), CallData) and call_data([]).arguments == {}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (['{"worker": "a"}', '{"worker": "b"}'], "ambiguous_data"),  # luigid would take the last
        (["not json"], "malformed_data"),
        (["[1, 2]"], "malformed_data"),
        (["[" * 200_000], "malformed_data"),  # deep enough to exhaust json's stack: a 400, never a 500
        (['{"a": "' + "x" * MAX_DATA_BYTES + '"}'], "data_too_large"),
    ],
)
def test_bad_call_data_is_refused(values: list[str], reason: str) -> None:
    refused = call_data(values)
    assert isinstance(refused, Denied) and refused.reason == reason


def test_audit_fields_split_luigi_task_ids() -> None:
    fields = audit_fields({"task_id": "Transform__tmp_out_8d2af034bc", "worker": "W", "status": "DONE", "x": 1})
    assert fields == {
        "task_id": "Transform__tmp_out_8d2af034bc",
        "worker": "W",
        "status": "DONE",
        "task_family": "Transform",
        "task_hash": "8d2af034bc",
    }
    assert audit_fields({"task_id": 3}) == {"task_id": None, "worker": None, "status": None}
