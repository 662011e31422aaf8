"""Who may do what: FAB's built-in Viewer < User < Op < Admin matrix, as a static in-memory table.

People who know Airflow's FAB roles should find ours behave the same, so the table below transcribes
FAB's ``ROLE_CONFIGS`` (``FabAirflowSecurityManagerOverride`` in
https://github.com/apache/airflow/blob/main/providers/fab/src/airflow/providers/fab/auth_manager/security_manager/override.py)
as mapped onto the auth-manager calls. Each role includes everything the roles below it hold; cumulative
sets are computed once at import so that every check on the request path is a couple of dict lookups.

Anything the table does not name is denied to every role, Admin included: unknown resources, methods,
DAG sub-entities, views and menu items. Airflow adds enum members between releases (FAB already maps
``AccessView.IMPORT_ERRORS_ALL``, ``AUDIT_LOGS_ALL`` and ``REPARSE_ALL`` "for Airflow >= 3.4"); each of
those widens what someone can see, so it gets an explicit line here rather than a silent default.

Judgement calls, where FAB's behaviour could not be copied as-is:

* FAB checks the DAG permission for a sub-entity (GET needs GET on DAGs, anything else PUT on DAGs)
  only when a DAG id is given. We never see the id, so we always apply the rule. For the built-in roles
  this only changes one thing: Viewer loses ``MENU`` on DAG runs and task instances. Airflow 3 never
  asks that question (menus go through ``allowed_menu_items``), so nothing visible changes.
* FAB gives Admin "every permission that exists". That means the rows below, plus writes on asset
  aliases, plus the TRIGGERS view and all custom views. It does not mean everything anyone could ever
  ask for: Admin cannot ``PUT`` configuration, because FAB has no such permission either.
* ``MenuItem.DEADLINES`` has no FAB permission of its own. The page lists deadlines through
  ``GET dag RUN``, so the item is shown to whoever can make that call (Viewer and up).
* Custom views (plugin pages): Viewer may ``GET``/``MENU`` any of them, and writes need Admin. A plugin
  can't say what role its page expects, so reading stays open to every signed-in role, while writing
  needs the one role that is trusted with everything.
* ``backfill`` is checked as ``dag`` + ``DagAccessEntity.RUN``, which is how Airflow 3.1+ checks it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Final, Literal, TypeVar

from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagAccessEntity
from airflow.api_fastapi.common.types import MenuItem

from airflow_identity_provider.auth.rules.permissions import ANY_CUSTOM_VIEW, dag_key, menu_key, view_key
from airflow_identity_provider.auth.rules.roles import Role
from airflow_identity_provider.version_compat import menu_item

ResourceName = Literal["configuration", "connection", "dag", "asset", "asset_alias", "pool", "variable", "backfill"]

GET: Final = "GET"
POST: Final = "POST"
PUT: Final = "PUT"
DELETE: Final = "DELETE"
MENU: Final = "MENU"
# Also the order describe() lists methods in.
METHODS: Final[tuple[str, ...]] = (GET, POST, PUT, DELETE, MENU)
_WRITES: Final = (POST, PUT, DELETE)

_Key = tuple[str, DagAccessEntity | None]

# What each role ADDS to the role below it, read straight off FAB's ROLE_CONFIGS. A role missing from a
# row adds nothing. Keep this literal: it is the one place an auditor needs to read.
# fmt: off
_TABLE: Final[Mapping[_Key, Mapping[Role, tuple[str, ...]]]] = {
    ("dag", None):                           {Role.VIEWER: (GET, MENU), Role.USER: (PUT, DELETE)},
    ("dag", DagAccessEntity.RUN):            {Role.VIEWER: (GET, MENU), Role.USER: _WRITES},
    ("dag", DagAccessEntity.TASK):           {Role.VIEWER: (GET, MENU), Role.USER: _WRITES},
    # FAB checks "DAG Runs" and "Task Instances" together here; no MENU (the sub-entity rule above).
    ("dag", DagAccessEntity.TASK_INSTANCE):  {Role.VIEWER: (GET,), Role.USER: _WRITES},
    ("dag", DagAccessEntity.TASK_LOGS):      {Role.VIEWER: (GET,)},
    ("dag", DagAccessEntity.CODE):           {Role.VIEWER: (GET,)},
    ("dag", DagAccessEntity.DEPENDENCIES):   {Role.VIEWER: (GET,)},
    ("dag", DagAccessEntity.VERSION):        {Role.VIEWER: (GET,)},
    ("dag", DagAccessEntity.WARNING):        {Role.VIEWER: (GET,)},
    ("dag", DagAccessEntity.XCOM):           {Role.VIEWER: (GET,), Role.OP: (*_WRITES, MENU)},
    ("dag", DagAccessEntity.HITL_DETAIL):    {Role.VIEWER: (GET,), Role.USER: (PUT,), Role.OP: (MENU,)},
    ("dag", DagAccessEntity.AUDIT_LOG):      {Role.ADMIN: (GET, MENU)},
    ("asset", None):                         {Role.VIEWER: (GET, MENU), Role.USER: (POST,), Role.OP: (PUT, DELETE)},
    # FAB's Admin holds "all existing permissions" here, which we read as the writes; no menu entry exists.
    ("asset_alias", None):                   {Role.VIEWER: (GET,), Role.ADMIN: _WRITES},
    ("pool", None):                          {Role.VIEWER: (GET,), Role.OP: (*_WRITES, MENU)},
    # Connections and variables hold secrets, so FAB keeps even reading them from Viewer and User.
    ("connection", None):                    {Role.OP: (GET, *_WRITES, MENU)},
    ("variable", None):                      {Role.OP: (GET, *_WRITES, MENU)},
    ("configuration", None):                 {Role.OP: (GET, MENU)},
}

# Views are all-or-nothing, so each row is the lowest role that may open it.
_VIEW_MIN_ROLE: Final[Mapping[AccessView, Role]] = {
    AccessView.CLUSTER_ACTIVITY: Role.VIEWER,
    AccessView.DOCS:             Role.VIEWER,
    AccessView.IMPORT_ERRORS:    Role.VIEWER,
    AccessView.JOBS:             Role.VIEWER,
    AccessView.WEBSITE:          Role.VIEWER,
    AccessView.PLUGINS:          Role.OP,
    AccessView.PROVIDERS:        Role.OP,
    AccessView.TRIGGERS:         Role.ADMIN,
}

# Plugin pages: any name, same rule for all (see the module docstring).
_CUSTOM_VIEW: Final[Mapping[Role, tuple[str, ...]]] = {Role.VIEWER: (GET, MENU), Role.ADMIN: _WRITES}

# The permission FAB checks before showing each menu entry.
_MenuTarget = tuple[str, DagAccessEntity | None, str] | AccessView
# Entries newer than the floor, by name: an Airflow without the entry never asks about it.
_NEWER_MENU_TARGET: Final[Mapping[str, _MenuTarget]] = {
    # No FAB permission exists; the page reads deadlines with GET dag RUN (see the module docstring). 3.3+.
    "DEADLINES":               ("dag", DagAccessEntity.RUN, GET),
    "JOBS":                    AccessView.JOBS,  # 3.2+
}
_MENU_TARGET: Final[Mapping[MenuItem, _MenuTarget]] = {
    MenuItem.DAGS:             ("dag", None, MENU),
    MenuItem.ASSETS:           ("asset", None, MENU),
    MenuItem.CONNECTIONS:      ("connection", None, MENU),
    MenuItem.VARIABLES:        ("variable", None, MENU),
    MenuItem.POOLS:            ("pool", None, MENU),
    MenuItem.CONFIG:           ("configuration", None, MENU),
    MenuItem.XCOMS:            ("dag", DagAccessEntity.XCOM, MENU),
    MenuItem.AUDIT_LOG:        ("dag", DagAccessEntity.AUDIT_LOG, MENU),
    MenuItem.REQUIRED_ACTIONS: ("dag", DagAccessEntity.HITL_DETAIL, MENU),
    MenuItem.PLUGINS:          AccessView.PLUGINS,
    MenuItem.PROVIDERS:        AccessView.PROVIDERS,
    MenuItem.DOCS:             AccessView.DOCS,
    **{item: target for name, target in _NEWER_MENU_TARGET.items() if (item := menu_item(name)) is not None},
}
# fmt: on


def _cumulative(adds: Mapping[Role, Iterable[str]]) -> dict[Role, frozenset[str]]:
    held: set[str] = set()
    out: dict[Role, frozenset[str]] = {}
    for role in sorted(Role):
        held.update(adds.get(role, ()))
        out[role] = frozenset(held)
    return out


def _build_grants() -> dict[_Key, dict[Role, frozenset[str]]]:
    raw = {key: _cumulative(adds) for key, adds in _TABLE.items()}
    dag = raw[("dag", None)]
    grants: dict[_Key, dict[Role, frozenset[str]]] = {}
    for (resource, entity), by_role in raw.items():
        if entity is None:
            grants[(resource, entity)] = by_role
            continue
        # FAB: a sub-entity also needs the DAG itself: GET to read it, PUT to change anything under it.
        grants[(resource, entity)] = {
            role: frozenset(m for m in methods if (GET if m == GET else PUT) in dag[role])
            for role, methods in by_role.items()
        }
    grants[("backfill", None)] = grants[("dag", DagAccessEntity.RUN)]
    return grants


_GRANTS: Final = _build_grants()
_VIEW_ROLES: Final[dict[AccessView, frozenset[Role]]] = {
    view: frozenset(r for r in Role if r >= lowest) for view, lowest in _VIEW_MIN_ROLE.items()
}
_CUSTOM_VIEW_GRANTS: Final = _cumulative(_CUSTOM_VIEW)

_E = TypeVar("_E", bound=Enum)


def _member(enum_cls: type[_E], value: object) -> _E | None:
    """The enum member ``value`` is or names by value; ``None`` for anything else, look-alikes included."""
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        try:
            return enum_cls(value)
        except ValueError:
            return None
    return None


def _method(method: object) -> str | None:
    value = method.value if isinstance(method, Enum) else method
    if not isinstance(value, str):
        return None
    value = value.upper()
    # Airflow's auth managers treat PATCH as an edit, as FAB's can_edit does.
    if value == "PATCH":
        value = PUT
    return value if value in METHODS else None


def normalize_method(method: object) -> str | None:
    """``GET`` ... ``MENU`` for a ``ResourceMethod`` member or a string in any case (PATCH is PUT)."""
    return _method(method)


def enum_member(enum_cls: type[_E], value: object) -> _E | None:
    """The member of ``enum_cls`` that ``value`` is or names by value; ``None`` for anything else."""
    return _member(enum_cls, value)


def is_allowed(role: Role, resource: str, method: str, access_entity: DagAccessEntity | None = None) -> bool:
    """Whether ``role`` may call ``method`` on ``resource`` (and DAG sub-entity), per FAB's built-in roles.

    ``method`` may be a ``ResourceMethod``/``ExtendedResourceMethod`` member or a plain string, any case;
    PATCH counts as PUT. An ``access_entity`` is only meaningful with ``resource="dag"``: with any other
    resource, ``"backfill"`` included, it is denied.
    """
    if not isinstance(role, Role):
        return False
    verb = _method(method)
    if verb is None:
        return False
    entity: DagAccessEntity | None = None
    if access_entity is not None:
        entity = _member(DagAccessEntity, access_entity)
        if entity is None:
            return False
    grants = _GRANTS.get((resource, entity))
    return grants is not None and verb in grants[role]


def is_view_allowed(role: Role, access_view: AccessView | str) -> bool:
    """Whether ``role`` may open ``access_view``, given as an ``AccessView`` member or its value."""
    if not isinstance(role, Role):
        return False
    view = _member(AccessView, access_view)
    return view is not None and role in _VIEW_ROLES.get(view, ())


def is_custom_view_allowed(role: Role, method: str, resource_name: str) -> bool:
    """Whether ``role`` may call ``method`` on a plugin's page; the page's name does not change the answer."""
    if not isinstance(role, Role):
        return False
    verb = _method(method)
    return verb is not None and verb in _CUSTOM_VIEW_GRANTS[role]


def _menu_roles(target: _MenuTarget) -> frozenset[Role]:
    if isinstance(target, AccessView):
        return _VIEW_ROLES[target]
    resource, entity, method = target
    return frozenset(r for r in Role if is_allowed(r, resource, method, entity))


_MENU_ROLES: Final[dict[MenuItem, frozenset[Role]]] = {
    item: _menu_roles(target) for item, target in _MENU_TARGET.items()
}


def allowed_menu_items(role: Role, menu_items: Iterable[MenuItem]) -> list[MenuItem]:
    """The items of ``menu_items`` that ``role`` may see, in their input order.

    Items may also be given by value (``"Dags"``); anything that is not a ``MenuItem`` we have a row for
    is dropped.
    """
    if not isinstance(role, Role):
        return []
    allowed: list[MenuItem] = []
    for raw in menu_items:
        item = _member(MenuItem, raw)
        if item is not None and role in _MENU_ROLES.get(item, ()):
            allowed.append(item)
    return allowed


def _joined(methods: Iterable[str]) -> str:
    held = set(methods)
    return ",".join(m for m in METHODS if m in held)


def describe() -> list[tuple[str, str, str, str]]:
    """Every grant as (role, resource, entity or "", comma-joined methods), for a "who can do what" listing.

    These are the effective grants, with the DAG rule and the role hierarchy already applied. Views are
    listed as resource ``"view"`` with method GET, plugin pages as ``"custom_view"`` with entity ``"*"``, and
    menu entries as ``"menu"`` with method MENU. Rows that grant nothing are left out.
    """
    rows: list[tuple[str, str, str, str]] = []
    for role in sorted(Role):
        name = role.display_name
        for (resource, entity), by_role in _GRANTS.items():
            if by_role[role]:
                rows.append((name, resource, entity.value if entity else "", _joined(by_role[role])))
        rows.extend((name, "view", view.value, GET) for view, roles in _VIEW_ROLES.items() if role in roles)
        if _CUSTOM_VIEW_GRANTS[role]:
            rows.append((name, "custom_view", "*", _joined(_CUSTOM_VIEW_GRANTS[role])))
        rows.extend((name, "menu", item.value, MENU) for item, roles in _MENU_ROLES.items() if role in roles)
    return rows


def _target_permission(target: _MenuTarget) -> tuple[str, str]:
    if isinstance(target, AccessView):
        return view_key(target), GET
    resource, entity, method = target
    return (dag_key(entity) if resource == "dag" else resource), method


# Each menu entry's permission as a (key, method) pair: custom roles show an entry when they hold it.
MENU_PERMISSION: Final[Mapping[MenuItem, tuple[str, str]]] = {
    item: _target_permission(target) for item, target in _MENU_TARGET.items()
}


def builtin_permissions(role: Role) -> frozenset[tuple[str, str]]:
    """Everything ``role`` may do, as (key, method) pairs of the vocabulary in ``permissions``.

    These are the same answers ``is_allowed`` and friends give, so a custom role that extends a built-in
    one starts from exactly what that role can do (the FAB DAG rule already applied).
    """
    held: set[tuple[str, str]] = set()
    for (resource, entity), by_role in _GRANTS.items():
        key = dag_key(entity) if resource == "dag" else resource
        held.update((key, method) for method in by_role[role])
    held.update((view_key(view), GET) for view, roles in _VIEW_ROLES.items() if role in roles)
    held.update((ANY_CUSTOM_VIEW, method) for method in _CUSTOM_VIEW_GRANTS[role])
    held.update((menu_key(item), MENU) for item, roles in _MENU_ROLES.items() if role in roles)
    if role is Role.ADMIN:
        # FAB has no teams; with [core] multi_team, Admin is the one role that belongs to every team.
        held.update(("team", method) for method in METHODS)
    return frozenset(held)


__all__ = [
    "MENU_PERMISSION",
    "METHODS",
    "ResourceName",
    "allowed_menu_items",
    "builtin_permissions",
    "describe",
    "enum_member",
    "is_allowed",
    "is_custom_view_allowed",
    "is_view_allowed",
    "normalize_method",
]
