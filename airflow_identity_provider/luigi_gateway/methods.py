"""What each of luigid's routes needs, read from luigi 3.8's ``luigi/server.py`` and ``luigi/scheduler.py``. Pure.

``server.app()`` serves ``/api/<method>`` (every ``@rpc_method`` of ``Scheduler``, GET or POST with one
``data`` argument holding JSON), the visualiser's files under ``/static/``, ``/`` (a redirect to the
visualiser), the task history pages (``/tasklist``, ``/history``...) and ``/metrics``. Each route and each
scheduler method is given the least level that may use it:

- ``VIEWER``: the visualiser, the history pages and every method that only reads;
- ``WORKER``: what luigi's ``Worker`` and its task processes call (``add_task``, ``get_work``, ``ping``...);
- ``OP``: what the visualiser's buttons change (``mark_as_done``, ``forgive_failures``, ``disable_worker``,
  ``pause``...);
- ``ADMIN``: maintenance no client calls (``prune``, ``update_metrics_task_started``).

Levels are ordered: each holds the ones below. A method or route not listed here is refused, so a luigi
upgrade that adds a method stays closed until it is classified (``tests/luigi`` fails on it first).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum


class Level(IntEnum):
    VIEWER = 1
    WORKER = 2
    OP = 3
    ADMIN = 4

    @property
    def role_name(self) -> str:
        """The role of role_mapping that grants this level (people and logs read it)."""
        return self.name.capitalize()


class WorkerField(Enum):
    """What the ``worker`` argument of a call means."""

    NONE = "none"  # the method takes none
    SELF = "self"  # the caller itself: it must be a worker of the caller's principal
    TARGET = "target"  # another worker the call acts on (the visualiser's Workers tab)


@dataclass(frozen=True)
class Rule:
    level: Level
    changes_state: bool  # an audit event for every allowed call
    worker: WorkerField = WorkerField.NONE


def _rule(level: Level, changes_state: bool, worker: WorkerField = WorkerField.NONE) -> Rule:
    return Rule(level, changes_state, worker)


_V, _W, _O, _A = Level.VIEWER, Level.WORKER, Level.OP, Level.ADMIN
_SELF, _TARGET = WorkerField.SELF, WorkerField.TARGET

RPC_RULES: Mapping[str, Rule] = {
    # Reads: the visualiser's lists and graphs.
    "graph": _rule(_V, False),
    "dep_graph": _rule(_V, False),
    "inverse_dep_graph": _rule(_V, False),
    "task_list": _rule(_V, False),
    "task_search": _rule(_V, False),
    "worker_list": _rule(_V, False),
    "resource_list": _rule(_V, False),
    "fetch_error": _rule(_V, False),
    "has_task_history": _rule(_V, False),
    "is_pause_enabled": _rule(_V, False),
    "is_paused": _rule(_V, False),
    "get_task_status_message": _rule(_V, False),
    "get_task_progress_percentage": _rule(_V, False),
    "get_running_task_resources": _rule(_V, False),
    # A worker speaking for itself (luigi/worker.py). ping and count_pending only report liveness and
    # counts; every other call moves tasks or workers and is audited.
    "add_worker": _rule(_W, True, _SELF),
    "add_task": _rule(_W, True, _SELF),
    "add_task_batcher": _rule(_W, True, _SELF),
    "announce_scheduling_failure": _rule(_W, True, _SELF),
    "get_work": _rule(_W, True, _SELF),
    "ping": _rule(_W, False, _SELF),
    "count_pending": _rule(_W, False, _SELF),
    # A worker's task process reporting on the task it runs (luigi/worker.py TaskStatusReporter).
    "set_task_status_message": _rule(_W, True),
    "set_task_progress_percentage": _rule(_W, True),
    "decrease_running_task_resources": _rule(_W, True),
    "report_task_statistics": _rule(_W, True),
    "add_scheduler_message_response": _rule(_W, True),
    # People changing state from the visualiser.
    "mark_as_done": _rule(_O, True),
    "forgive_failures": _rule(_O, True),
    "re_enable_task": _rule(_O, True),
    "disable_worker": _rule(_O, True, _TARGET),
    "set_worker_processes": _rule(_O, True, _TARGET),
    "send_scheduler_message": _rule(_O, True, _TARGET),
    # Pops the answer it returns: only whoever may send the message may take the answer.
    "get_scheduler_message_response": _rule(_O, True),
    "pause": _rule(_O, True),
    "unpause": _rule(_O, True),
    "update_resource": _rule(_O, True),
    "update_resources": _rule(_O, True),
    # luigid's own maintenance (its pruner calls prune every minute in-process); no client calls these.
    "prune": _rule(_A, True),
    "update_metrics_task_started": _rule(_A, True),
}


class RouteKind(Enum):
    API = "api"
    PAGE = "page"  # the visualiser, history pages, metrics
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Route:
    kind: RouteKind
    method: str = ""  # the scheduler method of an API route (also when unknown)
    rule: Rule | None = None

    @property
    def label(self) -> str:
        """What a refusal or an audit event names: the method, or the page."""
        return self.method or self.kind.value


PAGE_RULE = Rule(Level.VIEWER, False)
# luigi/server.py's handlers other than /api/(.*), and tornado's static_path handler.
_PAGES = (
    re.compile(r"/"),
    re.compile(r"/static/[A-Za-z0-9_./-]+"),
    re.compile(r"/tasklist"),
    re.compile(r"/tasklist/[^/]+"),
    re.compile(r"/history"),
    re.compile(r"/history/by_(?:name|id|task_id|params)/[^/]+"),
    re.compile(r"/metrics"),
)
_METHOD_NAME = re.compile(r"[a-z_][a-z0-9_]*")
# Methods a browser or worker may use on a page or the API; everything else (PUT, DELETE...) is refused.
PAGE_HTTP_METHODS = frozenset({"GET", "HEAD"})
API_HTTP_METHODS = frozenset({"GET", "POST"})


def classify(path: str) -> Route:
    """The route of a (percent-decoded) request path. ``..`` segments are refused, never resolved."""
    if "/../" in path + "/" or "/./" in path + "/" or "//" in path:
        return Route(RouteKind.UNKNOWN)
    if path.startswith("/api/"):
        method = path.removeprefix("/api/")
        rule = RPC_RULES.get(method) if _METHOD_NAME.fullmatch(method) else None
        return Route(RouteKind.API, method, rule)
    if any(pattern.fullmatch(path) for pattern in _PAGES):
        return Route(RouteKind.PAGE, "", PAGE_RULE)
    return Route(RouteKind.UNKNOWN)


def level_of(roles: tuple[str, ...]) -> Level | None:
    """The highest level the roles give; None when none gives any (a custom role other than Worker).

    Airflow's User role reads only: luigi has nothing between reading and changing state.
    """
    levels = [_ROLE_LEVELS[name.lower()] for name in roles if name.lower() in _ROLE_LEVELS]
    return max(levels) if levels else None


_ROLE_LEVELS: Mapping[str, Level] = {
    "viewer": Level.VIEWER,
    "user": Level.VIEWER,
    "worker": Level.WORKER,
    "op": Level.OP,
    "admin": Level.ADMIN,
}
