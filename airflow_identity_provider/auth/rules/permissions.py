"""The permission vocabulary of custom roles: ``<resource>:<method>`` strings, parsed once at start.

A permission names exactly one kind of auth-manager call, so that a role reads like the list of calls it
allows. Resources:

* ``configuration``, ``connection``, ``asset``, ``asset_alias``, ``pool``, ``variable``, ``backfill``, ``team``
* ``dag`` (the DAG itself) and ``dag.<entity>`` for each ``DagAccessEntity`` in lower case: ``dag.run``,
  ``dag.task``, ``dag.task_instance``, ``dag.task_logs``, ``dag.code``, ``dag.dependencies``, ``dag.version``,
  ``dag.warning``, ``dag.xcom``, ``dag.hitl_detail``, ``dag.audit_log``; ``dag.*`` is every entity
* ``view.<AccessView>`` (``view.plugins``, ``view.import_errors``, ...; method ``GET``), ``view.*``
* ``menu.<MenuItem>`` (``menu.variables``, ``menu.required_actions``, ...; method ``MENU``), ``menu.*``
* ``custom_view.<name>`` (a plugin's page) or ``custom_view.*``

Methods are ``GET``, ``POST``, ``PUT``, ``DELETE``, ``MENU`` or ``*`` (all that apply). A name outside this
vocabulary is a start-up error: a typo silently ignored would be a permission nobody notices is missing.
Airflow asks PATCH as an edit, so PATCH is checked as PUT and is not a method of its own here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagAccessEntity
from airflow.api_fastapi.common.types import MenuItem

from airflow_identity_provider.errors import Refusal

# (resource key, method): "dag.run", "POST". Keys are always lower case, methods upper case.
Permission = tuple[str, str]

METHODS: Final[tuple[str, ...]] = ("GET", "POST", "PUT", "DELETE", "MENU")
GLOBAL_RESOURCES: Final[tuple[str, ...]] = (
    "configuration",
    "connection",
    "asset",
    "asset_alias",
    "pool",
    "variable",
    "backfill",
    "team",
)
DAG_KEYS: Final[tuple[str, ...]] = ("dag", *(f"dag.{entity.name.lower()}" for entity in DagAccessEntity))
VIEW_KEYS: Final[tuple[str, ...]] = tuple(f"view.{view.name.lower()}" for view in AccessView)
# Entries newer than the floor (3.2: JOBS, 3.3: DEADLINES) are known names everywhere, so one set of
# settings starts on every supported Airflow; an Airflow without the entry never asks about it.
MENU_KEYS: Final[tuple[str, ...]] = tuple(
    dict.fromkeys((*(f"menu.{item.name.lower()}" for item in MenuItem), "menu.deadlines", "menu.jobs"))
)
ANY_CUSTOM_VIEW: Final = "custom_view.*"
# Views are opened, menus shown: one method each, and "*" on them means that one.
_ONLY_METHOD: Final = {"view": "GET", "menu": "MENU"}


class BadPermission(Refusal, ValueError):
    """A permission string outside the vocabulary (``reason`` is ``bad_permission``)."""

    def __init__(self, message: str) -> None:
        super().__init__("bad_permission", message)


def dag_key(access_entity: DagAccessEntity | None) -> str:
    return "dag" if access_entity is None else f"dag.{access_entity.name.lower()}"


def view_key(view: AccessView) -> str:
    return f"view.{view.name.lower()}"


def menu_key(item: MenuItem) -> str:
    return f"menu.{item.name.lower()}"


def custom_view_key(name: str) -> str:
    return f"custom_view.{name}"


def is_dag_level(key: str) -> bool:
    return key == "dag" or key.startswith("dag.")


def parse_permission(text: str) -> frozenset[Permission]:
    """``"variable:*"`` -> every (key, method) it stands for; wildcards expand to what exists today."""
    if not isinstance(text, str) or text.count(":") != 1:
        raise BadPermission(f"{text!r} is not <resource>:<method>, e.g. variable:GET or dag.run:POST")
    resource, method = (part.strip() for part in text.split(":"))
    keys = _keys(resource)
    family = keys[0].split(".", 1)[0]
    methods = _methods(method, family, text)
    return frozenset((key, verb) for key in keys for verb in methods)


def parse_permissions(texts: object, *, what: str) -> frozenset[Permission]:
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise BadPermission(f"{what} must be a list of permission strings, got {texts!r}")
    held: set[Permission] = set()
    for text in texts:
        held |= parse_permission(text)
    return frozenset(held)


def _keys(resource: str) -> tuple[str, ...]:
    lowered = resource.lower()
    if lowered in GLOBAL_RESOURCES or lowered in DAG_KEYS or lowered in VIEW_KEYS or lowered in MENU_KEYS:
        return (lowered,)
    if lowered == "dag.*":
        return DAG_KEYS[1:]
    if lowered == "view.*":
        return VIEW_KEYS
    if lowered == "menu.*":
        return MENU_KEYS
    if lowered.startswith("custom_view.") and len(resource) > len("custom_view."):
        # Plugin page names are the plugin's own spelling; keep their case.
        return (f"custom_view.{resource.split('.', 1)[1]}",)
    raise BadPermission(f"unknown resource {resource!r}; {describe_vocabulary()}")


def _methods(method: str, family: str, text: str) -> tuple[str, ...]:
    verb = method.upper()
    only = _ONLY_METHOD.get(family)
    if verb == "*":
        return (only,) if only else METHODS
    if verb not in METHODS:
        raise BadPermission(f"unknown method {method!r} in {text!r}; expected one of {', '.join(METHODS)} or *")
    if only and verb != only:
        raise BadPermission(f"{text!r}: {family}.* permissions take the method {only} (or *)")
    return (verb,)


def describe_vocabulary() -> str:
    return (
        f"resources are {', '.join(GLOBAL_RESOURCES)}, dag, dag.<entity> ({', '.join(k[4:] for k in DAG_KEYS[1:])}), "
        f"view.<view> ({', '.join(k[5:] for k in VIEW_KEYS)}), menu.<item> ({', '.join(k[5:] for k in MENU_KEYS)}), "
        "custom_view.<name> and the wildcards dag.*, view.*, menu.*, custom_view.*"
    )


def format_permissions(held: Iterable[Permission]) -> list[str]:
    """``["dag:GET,PUT", "variable:GET"]``: one line per resource, methods in a fixed order, for people."""
    by_key: dict[str, set[str]] = {}
    for key, method in held:
        by_key.setdefault(key, set()).add(method)
    return [f"{key}:{','.join(m for m in METHODS if m in methods)}" for key, methods in sorted(by_key.items())]


__all__ = [
    "ANY_CUSTOM_VIEW",
    "DAG_KEYS",
    "GLOBAL_RESOURCES",
    "MENU_KEYS",
    "METHODS",
    "VIEW_KEYS",
    "BadPermission",
    "Permission",
    "custom_view_key",
    "dag_key",
    "describe_vocabulary",
    "format_permissions",
    "is_dag_level",
    "menu_key",
    "parse_permission",
    "parse_permissions",
    "view_key",
]
