"""Every route and scheduler method of the installed luigi is classified; anything else is refused."""

from __future__ import annotations

import re
from pathlib import Path

import luigi.scheduler
import luigi.server
import pytest

from airflow_identity_provider.luigi_gateway.methods import (
    RPC_RULES,
    Level,
    RouteKind,
    WorkerField,
    classify,
    level_of,
)

LUIGI_DIR = Path(luigi.__file__).parent


def test_every_rpc_method_of_the_installed_luigi_is_classified() -> None:
    unclassified = sorted(set(luigi.scheduler.RPC_METHODS) - set(RPC_RULES))
    assert not unclassified, f"classify these luigid methods in luigi_gateway/methods.py: {unclassified}"


def test_no_rule_for_a_method_luigi_does_not_have() -> None:
    assert sorted(set(RPC_RULES) - set(luigi.scheduler.RPC_METHODS)) == []


def test_every_route_of_luigid_is_classified() -> None:
    app = luigi.server.app(luigi.scheduler.Scheduler())
    patterns = [rule.matcher.regex.pattern for rule in app.wildcard_router.rules]
    samples = {
        r"/api/(.*)$": "/api/task_list",
        r"/$": "/",
        r"/tasklist$": "/tasklist",
        r"/tasklist/(.*?)$": "/tasklist/Report",
        r"/history$": "/history",
        r"/history/by_name/(.*?)$": "/history/by_name/Report",
        r"/history/by_id/(.*?)$": "/history/by_id/3",
        r"/history/by_task_id/(.*?)$": "/history/by_task_id/Report_x_123",
        r"/history/by_params/(.*?)$": "/history/by_params/Report",
        r"/metrics$": "/metrics",
        r"/static/(.*)$": "/static/visualiser/index.html",
    }
    # tornado's static_path also serves /favicon.ico and /robots.txt; luigi ships neither file: not forwarded.
    handled = [p for p in patterns if not p.startswith(("/(favicon", "/(robots"))]
    assert set(handled) <= set(samples), f"a luigid route without a sample here: {set(handled) - set(samples)}"
    for pattern in handled:
        assert re.fullmatch(pattern.rstrip("$"), samples[pattern])
        assert classify(samples[pattern]).kind is not RouteKind.UNKNOWN, pattern


def test_the_visualiser_files_are_pages() -> None:
    static = LUIGI_DIR / "static"
    files = [p for p in static.rglob("*") if p.is_file() and " " not in p.name]
    assert len(files) > 20
    for path in files:
        route = classify("/static/" + path.relative_to(static).as_posix())
        assert route.kind is RouteKind.PAGE and route.rule is not None and route.rule.level is Level.VIEWER, path


def test_what_the_visualiser_reads_a_viewer_may_and_its_buttons_need_op() -> None:
    script = (LUIGI_DIR / "static/visualiser/js/luigi.js").read_text()
    called = set(re.findall(r"jsonRPC\(this\.urlRoot \+ ['\"]/(\w+)['\"]", script))
    assert {"task_list", "mark_as_done", "pause"} <= called
    buttons = {
        "mark_as_done",
        "forgive_failures",
        "re_enable_task",
        "disable_worker",
        "set_worker_processes",
        "send_scheduler_message",
        "get_scheduler_message_response",
        "pause",
        "unpause",
        "update_resource",
    }
    for method in called:
        expected = Level.OP if method in buttons else Level.VIEWER
        assert RPC_RULES[method].level is expected, method


def test_what_a_worker_calls_is_worker_level_and_speaks_for_itself() -> None:
    source = (LUIGI_DIR / "worker.py").read_text()
    called = set(re.findall(r"_scheduler\.(\w+)\(", source))
    assert {"add_task", "get_work", "ping", "add_worker"} <= called
    for method in called:
        assert RPC_RULES[method].level is Level.WORKER, method
    takes_worker = {
        "add_task",
        "add_worker",
        "get_work",
        "ping",
        "count_pending",
        "add_task_batcher",
        "announce_scheduling_failure",
    }
    for method in takes_worker:
        assert RPC_RULES[method].worker is WorkerField.SELF, method


@pytest.mark.parametrize(
    "path",
    ["/api/no_such_method", "/api/Task_List", "/api/task_list/x", "/api/_request", "/api/"],
)
def test_an_unknown_method_has_no_rule(path: str) -> None:
    route = classify(path)
    assert route.kind is RouteKind.API and route.rule is None


@pytest.mark.parametrize(
    "path",
    [
        "/static/../scheduler.py",
        "/static/visualiser/../../server.py",
        "//api/task_list",
        "/admin",
        "/api",
        "/static/visualiser/./index.html",
        "/history/by_name/a/b",
    ],
)
def test_paths_outside_luigid_routes_are_unknown(path: str) -> None:
    assert classify(path).kind is RouteKind.UNKNOWN


def test_role_levels() -> None:
    assert level_of(("Viewer",)) is Level.VIEWER
    assert level_of(("User",)) is Level.VIEWER  # luigi has nothing between reading and changing
    assert level_of(("Worker",)) is Level.WORKER
    assert level_of(("Viewer", "Op")) is Level.OP
    assert level_of(("admin",)) is Level.ADMIN
    assert level_of(("Auditor",)) is None and level_of(()) is None
    assert [lvl.role_name for lvl in Level] == ["Viewer", "Worker", "Op", "Admin"]
