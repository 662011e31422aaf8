"""Azure RBAC evaluation: permissions, deny assignments and the verdict of the least-privilege preflight.

No network, no azure SDK and no Airflow imports. Everything here takes the JSON the Authorization
resource provider returns (camelCase REST shape, or the snake_case of the SDK's ``as_dict()``) and
answers questions offline.

Scopes (:mod:`~airflow_identity_provider.azure.rules.scopes`)
    :func:`parse_scope` turns a scope or resource id into an :class:`ArmScope`. Comparison is
    segment-wise (``rg1`` never contains ``rg10``) and case-insensitive in ASCII only (:func:`ascii_fold`:
    ``K-RG`` is ``k-rg``, but ``\u212a-rg`` with a KELVIN SIGN is a different name, as in ARM); ``resourcegroups`` and
    ``resourceGroups`` are the same segment; one trailing ``/`` is ignored; empty, ``.``/``..`` and
    URL-ish segments (``?``, ``#``, ``%``, ``\\``, control characters) are refused so that a checked
    id cannot mean a different path once it is put in a URL.

    :func:`is_within` is containment by segment prefix. ``/`` contains everything,
    ``/subscriptions/S`` contains its resource groups, their resources and the subscription's
    extension resources. A **management group** fence contains only the management group itself and
    the resources under its own path (``/providers/Microsoft.Management/managementGroups/mg/providers/
    Microsoft.Authorization/policyAssignments/x``): which subscriptions sit below a management group
    is not knowable offline (and can change at any time), so an MG fence never admits a subscription,
    resource group or resource id. Declare those scopes explicitly.

Permissions (Microsoft: "Understand Azure role definitions", Actions / NotActions)
    ``*`` matches any run of characters, ``/`` included, ignoring ASCII case. An action is allowed when
    some permission entry (one per role) matches it in ``actions`` and does not match it in that same
    entry's ``notActions``. ``notActions`` is not a deny: another role can grant the action back.
    Only deny assignments deny (:func:`denied_by`). Data actions are evaluated separately.

Over-privilege findings built on these live in :mod:`.overprivilege`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from airflow_identity_provider.azure.rules.arm_json import field_of as _get
from airflow_identity_provider.azure.rules.arm_json import require_mapping as _mapping
from airflow_identity_provider.azure.rules.scopes import ArmScope, ascii_fold, dedupe_folded, is_within, parse_scope

__all__ = [
    "EVERYONE_PRINCIPAL_ID",
    "DenyAssignment",
    "PermissionEntry",
    "PermissionVerdict",
    "action_matches",
    "denied_by",
    "evaluate",
    "is_action_allowed",
    "parse_permissions",
]

# ------------------------------------------------------------------------------------------- permissions


@lru_cache(maxsize=4096)
def _pattern(folded_pattern: str) -> re.Pattern[str]:
    # No re.IGNORECASE: it folds Unicode too (U+017F would match "s"); both sides are ASCII-folded instead.
    return re.compile(".*".join(re.escape(part) for part in folded_pattern.split("*")), re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    """Azure RBAC match: ASCII case-insensitive, ``*`` matches any characters including ``/``, whole string."""
    return _pattern(ascii_fold(pattern)).fullmatch(ascii_fold(action)) is not None


def _matches_any(patterns: Iterable[str], action: str) -> bool:
    return any(action_matches(p, action) for p in patterns)


def _str_tuple(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    # A bare string would iterate character by character and "*" would become a grant: refuse it.
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{what} must be a list of strings, got {type(value).__name__}: {value!r}")
    if not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a list of strings, got {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class PermissionEntry:
    """One ``permissions`` element: a role's actions minus its notActions (control and data plane)."""

    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, d: Mapping[str, Any]) -> PermissionEntry:
        d = _mapping(d, "a permission entry")
        return cls(
            actions=_str_tuple(_get(d, "actions", "actions"), "actions"),
            not_actions=_str_tuple(_get(d, "notActions", "not_actions"), "notActions"),
            data_actions=_str_tuple(_get(d, "dataActions", "data_actions"), "dataActions"),
            not_data_actions=_str_tuple(_get(d, "notDataActions", "not_data_actions"), "notDataActions"),
        )

    def allows(self, action: str, *, data: bool = False) -> bool:
        granted, excluded = (self.data_actions, self.not_data_actions) if data else (self.actions, self.not_actions)
        return _matches_any(granted, action) and not _matches_any(excluded, action)


def parse_permissions(payload: Any) -> tuple[PermissionEntry, ...]:
    """``{"value": [...]}`` (one page of ``.../permissions``), a role definition's ``permissions`` list, or a list."""
    if isinstance(payload, Mapping):
        if "value" in payload:
            payload = payload["value"]
        elif "properties" in payload:  # a role definition
            payload = _mapping(payload["properties"], "properties").get("permissions")
        elif "permissions" in payload:
            payload = payload["permissions"]
    if payload is None:
        return ()
    if isinstance(payload, str) or not isinstance(payload, (list, tuple)):
        raise ValueError(f"expected a list of permission entries, got {type(payload).__name__}")
    return tuple(PermissionEntry.from_api(e) for e in payload)


def is_action_allowed(entries: Iterable[PermissionEntry], action: str, *, data: bool = False) -> bool:
    """∃ entry: the action matches its (data)actions and not its not(Data)Actions. No entries: not allowed."""
    return any(e.allows(action, data=data) for e in entries)


# -------------------------------------------------------------------------------------- deny assignments

EVERYONE_PRINCIPAL_ID = "00000000-0000-0000-0000-000000000000"
# re.ASCII: case-insensitive in ASCII only, like ascii_fold.
_DENY_SUFFIX = re.compile(r"/providers/Microsoft\.Authorization/denyAssignments/[^/]+/?\Z", re.I | re.ASCII)


def _principal_ids(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{what} must be a list, got {type(value).__name__}: {value!r}")
    ids: list[str] = []
    for item in value:
        pid = item.get("id") if isinstance(item, Mapping) else item
        if not isinstance(pid, str) or not pid:
            raise ValueError(f"{what} entries need an 'id', got {item!r}")
        ids.append(ascii_fold(pid))
    return tuple(ids)


def _scope_from(props: Mapping[str, Any], outer: Mapping[str, Any], suffix: re.Pattern[str], what: str) -> ArmScope:
    scope = props.get("scope")
    if not scope:
        rid = outer.get("id") or props.get("id")
        if isinstance(rid, str) and suffix.search(rid):
            scope = suffix.sub("", rid) or "/"
    if not isinstance(scope, str) or not scope:
        raise ValueError(f"{what} has neither a 'scope' nor an id to derive it from: {outer!r}")
    return parse_scope(scope)


@dataclass(frozen=True)
class DenyAssignment:
    """A deny assignment: ``permissions`` are denied to ``principals`` minus ``exclude_principals`` at ``scope``
    (and below it unless ``do_not_apply_to_child_scopes``). Principal ids are ASCII-folded."""

    name: str
    scope: ArmScope
    permissions: tuple[PermissionEntry, ...]
    principals: tuple[str, ...]
    exclude_principals: tuple[str, ...] = ()
    do_not_apply_to_child_scopes: bool = False
    id: str = ""
    is_system_protected: bool = False

    @classmethod
    def from_api(cls, d: Mapping[str, Any]) -> DenyAssignment:
        """The REST element (``{"id", "name", "properties": {...}}``), its ``properties`` alone, or snake_case."""
        outer = _mapping(d, "a deny assignment")
        props = _mapping(outer["properties"], "properties") if "properties" in outer else outer
        rid = outer.get("id") or props.get("id") or ""
        name = _get(props, "denyAssignmentName", "deny_assignment_name") or outer.get("name") or rid or "<unnamed>"
        perms = _get(props, "permissions", "permissions")
        if perms is None or isinstance(perms, str) or not isinstance(perms, (list, tuple)):
            raise ValueError(f"deny assignment {name!r}: 'permissions' must be a list")
        return cls(
            name=str(name),
            scope=_scope_from(props, outer, _DENY_SUFFIX, f"deny assignment {name!r}"),
            permissions=tuple(PermissionEntry.from_api(p) for p in perms),
            principals=_principal_ids(props.get("principals"), "principals"),
            exclude_principals=_principal_ids(
                _get(props, "excludePrincipals", "exclude_principals"), "excludePrincipals"
            ),
            do_not_apply_to_child_scopes=bool(
                _get(props, "doNotApplyToChildScopes", "do_not_apply_to_child_scopes", False)
            ),
            id=str(rid),
            is_system_protected=bool(_get(props, "isSystemProtected", "is_system_protected", False)),
        )

    def applies_to_principal(self, principal_id: str | None, member_of: Iterable[str] = ()) -> bool:
        """Everyone (the all-zero id) or a listed principal, unless excluded.

        ``member_of`` are group ids the principal belongs to, if the caller knows them; group membership is
        not resolved here. With ``principal_id=None`` (identity unknown) any deny that names principals is
        taken to apply and exclusions cannot help: fail closed.
        """
        if principal_id is None:
            return bool(self.principals)
        ids = {ascii_fold(principal_id), *(ascii_fold(g) for g in member_of)}
        if ids & set(self.exclude_principals):
            return False
        return EVERYONE_PRINCIPAL_ID in self.principals or bool(ids & set(self.principals))

    def applies_at(self, target_scope: ArmScope | str) -> bool:
        target = parse_scope(target_scope)
        if self.do_not_apply_to_child_scopes:
            return target == self.scope
        return is_within(target, self.scope)

    def denies(self, action: str, *, data: bool = False) -> bool:
        return is_action_allowed(self.permissions, action, data=data)


def denied_by(
    deny_assignments: Iterable[DenyAssignment],
    principal_id: str | None,
    action: str,
    target_scope: ArmScope | str,
    *,
    data: bool = False,
    member_of: Iterable[str] = (),
) -> DenyAssignment | None:
    """The first deny assignment that blocks ``action`` for ``principal_id`` at ``target_scope``, or None."""
    groups = tuple(member_of)
    target = parse_scope(target_scope)
    for da in deny_assignments:
        if da.applies_to_principal(principal_id, groups) and da.applies_at(target) and da.denies(action, data=data):
            return da
    return None


# -------------------------------------------------------------------------------------------- verdict


@dataclass(frozen=True)
class PermissionVerdict:
    """``allowed``: granted and not denied. ``missing``: granted by no role. ``denied``: (action, deny assignment
    name) pairs; an action can be both missing and denied."""

    allowed: tuple[str, ...]
    missing: tuple[str, ...]
    denied: tuple[tuple[str, str], ...]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.denied


def evaluate(
    entries: Iterable[PermissionEntry],
    deny_assignments: Iterable[DenyAssignment],
    principal_id: str | None,
    required_actions: Iterable[str],
    target_scope: ArmScope | str,
    *,
    data: bool = False,
    member_of: Iterable[str] = (),
) -> PermissionVerdict:
    """Check every required action (duplicates ignored, case-insensitively) against grants and denies."""
    entries = tuple(entries)
    denies = tuple(deny_assignments)
    groups = tuple(member_of)
    target = parse_scope(target_scope)
    allowed: list[str] = []
    missing: list[str] = []
    denied: list[tuple[str, str]] = []
    for action in dedupe_folded(required_actions):
        granted = is_action_allowed(entries, action, data=data)
        da = denied_by(denies, principal_id, action, target, data=data, member_of=groups)
        if not granted:
            missing.append(action)
        if da is not None:
            denied.append((action, da.name))
        if granted and da is None:
            allowed.append(action)
    return PermissionVerdict(allowed=tuple(allowed), missing=tuple(missing), denied=tuple(denied))
