"""A DAG file's ``access_control``, in Airflow's own format, turned into permissions on that one DAG.

``access_control={"finance-team": {"DAGs": {"can_read", "can_edit"}, "DAG Runs": {"can_create"}}}``, or the
legacy form ``{"finance-team": {"can_read"}}`` (actions on ``DAGs``). Keys are directory groups (names or
Entra object ids) or role names. FAB understands the resources ``DAGs`` and ``DAG Runs``; so do we.

FAB pairs a per-DAG permission with the entity permissions of the user's global role. Here the entry
stands on its own, so that someone whose only access is this entry can use the DAG:

* ``DAGs.can_read``: what a Viewer may do on a DAG (see it, its runs, tasks, logs, code, XComs);
* ``DAGs.can_edit``: edit the DAG and its runs, task instances and HITL answers (pause, clear, mark);
* ``DAGs.can_delete``: delete it; ``DAGs.menu_access``: the Dags menu entry;
* ``DAG Runs.can_create`` / ``can_read`` / ``can_edit`` / ``can_delete`` / ``menu_access``: that on its runs.

An entry we cannot read grants nothing (fail closed) and is reported, never guessed at.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from airflow_identity_provider.auth.rules.permissions import Permission, is_dag_level
from airflow_identity_provider.auth.rules.policy import builtin_permissions
from airflow_identity_provider.auth.rules.roles import Role

_ACTION_METHOD: Final = {
    "can_read": "GET",
    "can_create": "POST",
    "can_edit": "PUT",
    "can_delete": "DELETE",
    "menu_access": "MENU",
}
_VIEWER_ON_A_DAG: Final = frozenset(p for p in builtin_permissions(Role.VIEWER) if is_dag_level(p[0]))
_EDIT_ON_A_DAG: Final = frozenset(
    (key, "PUT") for key in ("dag", "dag.run", "dag.task", "dag.task_instance", "dag.hitl_detail")
)
_DAGS: Final[Mapping[str, frozenset[Permission]]] = {
    "can_read": _VIEWER_ON_A_DAG,
    "can_edit": _EDIT_ON_A_DAG,
    "can_delete": frozenset({("dag", "DELETE")}),
    "menu_access": frozenset({("dag", "MENU")}),
}
RESOURCES: Final = ("DAGs", "DAG Runs")

AccessControl = dict[str, frozenset[Permission]]


def compile_access_control(raw: object) -> tuple[AccessControl, list[str]]:
    """Principal -> permissions on the DAG, and one line per entry that was refused (and grants nothing)."""
    if raw is None:
        return {}, []
    if not isinstance(raw, Mapping):
        return {}, [f"access_control is a {type(raw).__name__}, not a mapping of group or role -> permissions"]
    compiled: AccessControl = {}
    problems: list[str] = []
    for principal, entry in raw.items():
        try:
            compiled[str(principal)] = _entry(entry)
        except ValueError as err:
            problems.append(f"access_control[{principal!r}]: {err}")
    return compiled, problems


def _entry(entry: object) -> frozenset[Permission]:
    if isinstance(entry, Mapping):
        held: set[Permission] = set()
        for resource, actions in entry.items():
            held |= _resource(str(resource), actions)
        return frozenset(held)
    return _resource("DAGs", entry)  # the legacy set form names actions on DAGs


def _resource(resource: str, actions: object) -> frozenset[Permission]:
    # The resource first, as FAB does: a misspelt "DAG Run" is reported even with no (or bad) actions.
    if resource not in RESOURCES:
        raise ValueError(f"unknown resource {resource!r}; expected {' or '.join(RESOURCES)}")
    if isinstance(actions, str) or not isinstance(actions, Iterable):
        raise ValueError(f"the actions of {resource!r} must be a set of action names, got {actions!r}")
    held: set[Permission] = set()
    for action in actions:
        method = _ACTION_METHOD.get(str(action))
        if method is None:
            raise ValueError(f"unknown action {action!r}; expected {', '.join(_ACTION_METHOD)}")
        if resource == "DAGs":
            if action not in _DAGS:
                raise ValueError(f"{action!r} does not apply to DAGs (FAB refuses it too)")
            held |= _DAGS[str(action)]
        else:  # "DAG Runs"
            held.add(("dag.run", method))
    return frozenset(held)


__all__ = ["RESOURCES", "AccessControl", "compile_access_control"]
