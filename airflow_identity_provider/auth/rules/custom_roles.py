"""The ``roles`` setting: custom roles built from the built-in ones, compiled once into permission sets.

``{"VariableEditor": {"extends": "Viewer", "allow": ["variable:*"]},
   "Auditor": {"extends": "Viewer", "allow": ["dag.audit_log:GET"], "deny": ["dag.code:GET"]}}``

A role holds what the roles it extends hold, plus ``allow``, minus ``deny`` (deny wins, also over what
was inherited). Menu entries follow the permission behind them, as for the built-in roles: allowing
``variable:*`` shows Variables, denying ``dag:MENU`` hides Dags; ``menu.<item>`` in allow or deny overrides.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

from airflow_identity_provider.auth.rules.permissions import (
    ANY_CUSTOM_VIEW,
    MENU_KEYS,
    BadPermission,
    Permission,
    menu_key,
    parse_permissions,
)
from airflow_identity_provider.auth.rules.policy import MENU_PERMISSION, builtin_permissions
from airflow_identity_provider.auth.rules.roles import Role

BUILTIN_NAMES: Final[tuple[str, ...]] = tuple(role.display_name for role in sorted(Role))
_ROLE_KEYS: Final = frozenset({"extends", "allow", "deny"})
_MENU_KEYS: Final = frozenset(MENU_KEYS)


class RoleError(ValueError):
    """A custom role is malformed; the message says which role and what to change."""


RoleTable = dict[str, frozenset[Permission]]


def builtin_role_table() -> RoleTable:
    return {role.display_name: builtin_permissions(role) for role in sorted(Role)}


def parse_custom_roles(text: str) -> RoleTable:
    """Every role by its canonical name, the four built-in ones first, each compiled to its permissions."""
    table = builtin_role_table()
    try:
        raw = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as err:
        raise RoleError(
            f"is not valid JSON ({err.msg} at character {err.pos}); expected an object such as "
            '{"VariableEditor": {"extends": "Viewer", "allow": ["variable:*"]}}'
        ) from None
    if not isinstance(raw, dict):
        raise RoleError(f"expected a JSON object of role name -> definition, got a {type(raw).__name__}")
    seen = {name.lower(): name for name in BUILTIN_NAMES}
    for name, definition in raw.items():
        if not isinstance(name, str) or not name.strip():
            raise RoleError("role names must be non-empty strings")
        if name.lower() in seen:
            raise RoleError(f"role {name!r} clashes with the role {seen[name.lower()]!r}; pick another name")
        seen[name.lower()] = name
        if not isinstance(definition, dict):
            raise RoleError(f"role {name!r}: expected an object with extends, allow, deny")
        unknown = sorted(set(definition) - _ROLE_KEYS)
        if unknown:
            raise RoleError(f"role {name!r}: unknown key {unknown[0]!r}; a role has extends, allow and deny")
    for name in raw:
        _compile(name, raw, table, seen, stack=())
    return table


def _compile(
    name: str, raw: Mapping[str, dict[str, object]], table: RoleTable, seen: Mapping[str, str], stack: tuple[str, ...]
) -> frozenset[Permission]:
    if name in table:
        return table[name]
    if name in stack:
        raise RoleError(f"role {name!r} extends itself through {' -> '.join((*stack, name))}")
    definition = raw[name]
    extends = definition.get("extends", [])
    parents = [extends] if isinstance(extends, str) else extends
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise RoleError(f"role {name!r}: extends must be a role name or a list of them, got {extends!r}")
    inherited: set[Permission] = set()
    for parent in parents:
        canonical = seen.get(parent.strip().lower())
        if canonical is None:
            raise RoleError(f"role {name!r} extends unknown role {parent!r}; known: {', '.join(seen.values())}")
        inherited |= _compile(canonical, raw, table, seen, (*stack, name))
    try:
        allow = parse_permissions(definition.get("allow", []), what="allow")
        deny = parse_permissions(definition.get("deny", []), what="deny")
    except BadPermission as err:
        raise RoleError(f"role {name!r}: {err.message}") from None
    _refuse_partial_custom_view_deny(name, inherited | allow, deny)
    compiled = _with_menus(inherited, allow, deny)
    table[name] = _with_dag_rule(compiled)
    dropped = sorted((allow - deny) & (compiled - table[name]))
    if dropped:
        key, method = dropped[0]
        needs = "dag:GET" if method == "GET" else "dag:PUT"
        raise RoleError(
            f"role {name!r}: {key}:{method} needs {needs} too (as in FAB: reading anything of a DAG needs "
            f"GET on the DAG, changing anything of it needs PUT on it); add {needs} to allow"
        )
    return table[name]


def _refuse_partial_custom_view_deny(name: str, held: set[Permission], deny: frozenset[Permission]) -> None:
    """``custom_view.*`` covers pages whose names we never see, so one named page cannot be cut out of it."""
    for key, method in deny:
        if key.startswith("custom_view.") and key != ANY_CUSTOM_VIEW and (ANY_CUSTOM_VIEW, method) in held:
            raise RoleError(
                f"role {name!r}: cannot deny {key}:{method} while the role holds {ANY_CUSTOM_VIEW}:{method} "
                f"(every plugin page); deny {ANY_CUSTOM_VIEW}:{method} and allow the pages it may open instead"
            )


def _with_dag_rule(held: frozenset[Permission]) -> frozenset[Permission]:
    """FAB's rule, as the built-in roles have it: reading anything of a DAG needs ``dag:GET``, changing
    anything of it needs ``dag:PUT``. So denying ``dag:GET`` also takes away its logs, code and XComs."""
    can_read, can_edit = ("dag", "GET") in held, ("dag", "PUT") in held
    return frozenset(
        (key, method)
        for key, method in held
        if not key.startswith("dag.") or (can_read if method == "GET" else can_edit)
    )


def _with_menus(
    inherited: set[Permission], allow: frozenset[Permission], deny: frozenset[Permission]
) -> frozenset[Permission]:
    def is_menu(permission: Permission) -> bool:
        return permission[0] in _MENU_KEYS

    held = {p for p in inherited | allow if not is_menu(p)} - deny
    # Inherited menus stay as the parent had them (its own menu allows and denies included); only what this
    # role changes moves a menu: a permission it allows shows the entry, one it denies hides it.
    menus = {p for p in inherited if is_menu(p)}
    menus -= {(menu_key(item), "MENU") for item, target in MENU_PERMISSION.items() if target in deny}
    menus |= {(menu_key(item), "MENU") for item, target in MENU_PERMISSION.items() if target in (allow & held)}
    menus |= {p for p in allow if is_menu(p)}
    menus -= {p for p in deny if is_menu(p)}
    return frozenset(held | menus)


def role_lookup(table: Mapping[str, object]) -> dict[str, str]:
    """Lower-cased name -> canonical name: role names in settings and tokens are matched case-insensitively."""
    return {name.lower(): name for name in table}


__all__ = ["BUILTIN_NAMES", "RoleError", "RoleTable", "builtin_role_table", "parse_custom_roles", "role_lookup"]
