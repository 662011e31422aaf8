"""ARM scopes, containment and Azure RBAC evaluation: the pure half of the least-privilege preflight.

No network, no azure SDK and no Airflow imports. Everything here takes the JSON the Authorization
resource provider returns (camelCase REST shape, or the snake_case of the SDK's ``as_dict()``) and
answers questions offline.

Scopes (implemented in :mod:`~airflow_identity_provider.azure.scopes`, re-exported here)
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

Over-privilege
    :func:`broad_assignments`, :func:`unused_breadth` and :func:`escalation_capable` produce
    :class:`Finding` objects for an access report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

# Scope parsing lives in scopes.py (shared with the connection); re-exported so callers keep importing it here.
from airflow_identity_provider.azure.scopes import (
    ArmScope,
    ScopeError,
    ScopeKind,
    ascii_fold,
    first_containing,
    is_within,
    parse_scope,
)

__all__ = [
    "CONTRIBUTOR_ROLE_ID",
    "ESCALATION_ACTION",
    "EVERYONE_PRINCIPAL_ID",
    "OWNER_ROLE_ID",
    "PRIVILEGED_ROLE_IDS",
    "RBAC_ADMINISTRATOR_ROLE_ID",
    "READER_ROLE_ID",
    "ROLE_NAMES",
    "USER_ACCESS_ADMINISTRATOR_ROLE_ID",
    "ArmScope",
    "DenyAssignment",
    "Finding",
    "PermissionEntry",
    "PermissionVerdict",
    "RoleAssignment",
    "ScopeError",
    "ScopeKind",
    "Severity",
    "action_matches",
    "ascii_fold",
    "broad_assignments",
    "denied_by",
    "escalation_capable",
    "escalation_findings",
    "evaluate",
    "first_containing",
    "is_action_allowed",
    "is_within",
    "parse_permissions",
    "parse_scope",
    "unused_breadth",
]

Severity = Literal["high", "medium", "low"]

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


def _get(d: Mapping[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    if camel in d:
        return d[camel]
    return d.get(snake, default)


def _str_tuple(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    # A bare string would iterate character by character and "*" would become a grant: refuse it.
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{what} must be a list of strings, got {type(value).__name__}: {value!r}")
    if not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a list of strings, got {value!r}")
    return tuple(value)


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a JSON object, got {type(value).__name__}: {value!r}")
    return value


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
_ROLE_ASSIGNMENT_SUFFIX = re.compile(r"/providers/Microsoft\.Authorization/roleAssignments/[^/]+/?\Z", re.I | re.ASCII)


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


def _dedupe(actions: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for a in actions:
        if ascii_fold(a) not in seen:
            seen.add(ascii_fold(a))
            out.append(a)
    return out


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
    for action in _dedupe(required_actions):
        granted = is_action_allowed(entries, action, data=data)
        da = denied_by(denies, principal_id, action, target, data=data, member_of=groups)
        if not granted:
            missing.append(action)
        if da is not None:
            denied.append((action, da.name))
        if granted and da is None:
            allowed.append(action)
    return PermissionVerdict(allowed=tuple(allowed), missing=tuple(missing), denied=tuple(denied))


# ------------------------------------------------------------------------------------- over-privilege

OWNER_ROLE_ID = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR_ROLE_ID = "b24988ac-6180-42a0-ab88-20f7382dd24c"
USER_ACCESS_ADMINISTRATOR_ROLE_ID = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
RBAC_ADMINISTRATOR_ROLE_ID = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
READER_ROLE_ID = "acdd72a7-3385-48ef-bd42-f606fba81ae7"

ROLE_NAMES: Mapping[str, str] = {
    OWNER_ROLE_ID: "Owner",
    CONTRIBUTOR_ROLE_ID: "Contributor",
    USER_ACCESS_ADMINISTRATOR_ROLE_ID: "User Access Administrator",
    RBAC_ADMINISTRATOR_ROLE_ID: "Role Based Access Control Administrator",
    READER_ROLE_ID: "Reader",
}
PRIVILEGED_ROLE_IDS: frozenset[str] = frozenset(
    {OWNER_ROLE_ID, CONTRIBUTOR_ROLE_ID, USER_ACCESS_ADMINISTRATOR_ROLE_ID, RBAC_ADMINISTRATOR_ROLE_ID}
)
ESCALATION_ACTION = "Microsoft.Authorization/roleAssignments/write"


@dataclass(frozen=True)
class Finding:
    """One over-privilege observation for the access report."""

    kind: str
    """``broad_assignment``, ``assignment_outside_fence``, ``unused_breadth`` or ``escalation``."""
    severity: Severity
    message: str
    scope: str
    detail: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "scope": self.scope,
            "detail": dict(self.detail),
        }


@dataclass(frozen=True)
class RoleAssignment:
    """A role assignment of the identity (or of a group it is in, with ``assignedTo()``)."""

    id: str
    role_definition_id: str
    principal_id: str
    scope: str
    principal_type: str | None = None
    condition: str | None = None

    @classmethod
    def from_api(cls, d: Mapping[str, Any]) -> RoleAssignment:
        """The REST element (``{"id", "name", "properties": {...}}``), its ``properties`` alone, or snake_case."""
        outer = _mapping(d, "a role assignment")
        props = _mapping(outer["properties"], "properties") if "properties" in outer else outer
        rid = outer.get("id") or props.get("id") or ""
        role = _get(props, "roleDefinitionId", "role_definition_id")
        if not isinstance(role, str) or not role:
            raise ValueError(f"role assignment {rid or outer!r} has no roleDefinitionId")
        scope = props.get("scope")
        if not scope and isinstance(rid, str) and _ROLE_ASSIGNMENT_SUFFIX.search(rid):
            scope = _ROLE_ASSIGNMENT_SUFFIX.sub("", rid) or "/"
        if not isinstance(scope, str) or not scope:
            raise ValueError(f"role assignment {rid or outer!r} has neither a 'scope' nor an id to derive it from")
        return cls(
            id=str(rid),
            role_definition_id=role,
            principal_id=str(_get(props, "principalId", "principal_id", "") or ""),
            scope=scope,
            principal_type=_get(props, "principalType", "principal_type"),
            condition=props.get("condition") or None,
        )

    @property
    def role_guid(self) -> str:
        return ascii_fold(self.role_definition_id.rstrip("/").rsplit("/", 1)[-1])

    @property
    def role_name(self) -> str:
        return ROLE_NAMES.get(self.role_guid, self.role_guid)


def _scope_label(scope: ArmScope) -> str:
    return {
        "root": "the tenant root '/'",
        "management_group": f"management group {scope.management_group}",
        "subscription": f"the whole subscription {scope.subscription_id}",
    }.get(scope.kind, str(scope))


def broad_assignments(assignments: Iterable[RoleAssignment], fence_scopes: Iterable[ArmScope | str]) -> list[Finding]:
    """Owner, Contributor, User Access Administrator or RBAC Administrator assigned at subscription scope or
    wider (``/``, a management group, a subscription), or at a scope that no fence scope contains.

    An assignment scope that cannot be parsed is reported as broad (fail closed).
    """
    fences = [parse_scope(f) for f in fence_scopes]
    fence_text = ", ".join(str(f) for f in fences) or "(none declared)"
    findings: list[Finding] = []
    for ra in assignments:
        if ra.role_guid not in PRIVILEGED_ROLE_IDS:
            continue
        role = ra.role_name
        grants_rbac = ra.role_guid != CONTRIBUTOR_ROLE_ID
        detail: dict[str, Any] = {
            "role": role,
            "role_definition_id": ra.role_definition_id,
            "assignment_id": ra.id,
            "principal_id": ra.principal_id,
            "assignment_scope": ra.scope,
            "fence_scopes": [str(f) for f in fences],
            "can_assign_roles": grants_rbac,
        }
        if ra.condition:
            detail["condition"] = ra.condition
        what = "can grant any role to anyone" if grants_rbac else "can change or delete any resource"
        cond = " (a condition restricts the assignment; review it)" if ra.condition else ""
        try:
            scope = parse_scope(ra.scope)
        except ScopeError:
            findings.append(
                Finding(
                    "broad_assignment",
                    "high",
                    f"{role} assigned at unrecognised scope {ra.scope!r}; treat it as tenant-wide until reviewed",
                    ra.scope,
                    detail,
                )
            )
            continue
        inside = [f for f in fences if is_within(scope, f)]
        narrower = [f for f in fences if is_within(f, scope) and f != scope]
        if scope.kind in ("root", "management_group", "subscription"):
            if narrower:
                fix = f"assign it at {', '.join(str(f) for f in narrower)} instead"
                msg = (
                    f"{role} assigned at {scope} is broader than the connection's allowed scope {fence_text}; "
                    f"it {what} across {_scope_label(scope)}; {fix}"
                )
            else:
                msg = (
                    f"{role} assigned at {scope} {what} across {_scope_label(scope)}; "
                    "assign it at the resource groups the DAGs write to instead"
                )
            findings.append(Finding("broad_assignment", "high", msg + cond, str(scope), detail))
        elif not inside and fences:
            severity: Severity = "high" if grants_rbac else "medium"
            if narrower:
                msg = (
                    f"{role} assigned at {scope} is broader than the connection's allowed scope {fence_text}; "
                    f"assign it at {', '.join(str(f) for f in narrower)} instead"
                )
                findings.append(Finding("broad_assignment", severity, msg + cond, str(scope), detail))
            else:
                msg = (
                    f"{role} assigned at {scope} lies outside the connection's allowed scope {fence_text}; "
                    "this identity does not need it for this connection: remove it or use a separate identity"
                )
                findings.append(Finding("assignment_outside_fence", severity, msg + cond, str(scope), detail))
    return findings


_TYPE_DEPTH = 2  # "<Namespace>/<type>"


def _type_prefix(action: str) -> tuple[str, ...]:
    """Segments of an action without its final operation segment: ``a/b/write`` -> ``(a, b)``."""
    parts = tuple(ascii_fold(action).split("/"))
    return parts[:-1] if len(parts) > 1 else parts


def _common_prefix(items: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    if not items:
        return ()
    first = items[0]
    n = len(first)
    for other in items[1:]:
        n = min(n, len(other))
        for k in range(n):
            if first[k] != other[k]:
                n = k
                break
    return first[:n]


def _literal_prefix(pattern: str) -> tuple[str, ...]:
    """Whole segments before the first ``*``: ``Microsoft.Storage/*`` -> ``(microsoft.storage,)``."""
    head = ascii_fold(pattern).split("*", 1)[0]
    return tuple(s for s in head.split("/")[:-1] if s)


def unused_breadth(
    entries: Iterable[PermissionEntry],
    required_actions: Iterable[str],
    *,
    scope: str = "",
    required_data_actions: Iterable[str] = (),
) -> list[Finding]:
    """Granted wildcard patterns broader than the task needs.

    A wildcard is flagged when it matches none of the required actions, or when its literal head (the whole
    segments before ``*``) does not pin a resource type (``<Namespace>/<type>``), or is shorter than the common
    resource-type prefix of the required actions it matches. So ``Microsoft.Resources/deployments/*`` is fine
    for the deployment actions, while ``*``, ``*/read``, ``Microsoft.Storage/*``, and
    ``Microsoft.Network/virtualNetworks/*`` when only ``.../virtualNetworks/subnets/write`` is needed, are
    flagged. Read-only wildcards (ending in ``/read``) are ``low``, others ``medium``. One finding per pattern;
    exact (non-wildcard) grants are not reported. ``notActions`` do not narrow a pattern here: ``*`` minus
    ``Microsoft.Authorization/*/Write`` is still ``*`` for every other provider.
    """
    required = _dedupe(required_actions)
    required_data = _dedupe(required_data_actions)
    findings: dict[tuple[bool, str], Finding] = {}
    for entry in entries:
        for data, patterns, needed in ((False, entry.actions, required), (True, entry.data_actions, required_data)):
            for pattern in patterns:
                key = (data, ascii_fold(pattern))
                if "*" not in pattern or key in findings:
                    continue
                used = [a for a in needed if action_matches(pattern, a)]
                plane = "data action" if data else "action"
                severity: Severity = "low" if ascii_fold(pattern).endswith("/read") else "medium"
                detail: dict[str, Any] = {"pattern": pattern, "data_plane": data, "needed": used}
                if not used:
                    msg = (
                        f"granted {plane} pattern {pattern!r} covers none of the {plane}s this task needs; "
                        "remove it from the role assigned to this identity"
                    )
                elif len(_literal_prefix(pattern)) < max(
                    _TYPE_DEPTH, len(_common_prefix([_type_prefix(a) for a in used]))
                ):
                    msg = (
                        f"granted {plane} pattern {pattern!r} is broader than this task needs "
                        f"({', '.join(used)}); grant a custom role with just those {plane}s"
                    )
                else:
                    continue
                if scope:
                    msg += f" (at {scope})"
                findings[key] = Finding("unused_breadth", severity, msg, scope, detail)
    return list(findings.values())


def escalation_capable(entries: Iterable[PermissionEntry]) -> bool:
    """True when the entries allow ``Microsoft.Authorization/roleAssignments/write``: the identity can grant itself
    (or anyone) any role at the scope, so every other limit is advisory."""
    return is_action_allowed(entries, ESCALATION_ACTION)


def escalation_findings(entries: Iterable[PermissionEntry], *, scope: str = "") -> list[Finding]:
    """:func:`escalation_capable` as a report entry (empty list when not capable)."""
    if not escalation_capable(entries):
        return []
    where = f" at {scope}" if scope else ""
    return [
        Finding(
            "escalation",
            "high",
            f"this identity is allowed {ESCALATION_ACTION}{where}: it can assign any role, including Owner, to "
            "itself or others; remove Owner / User Access Administrator / RBAC Administrator from it",
            scope,
            {"action": ESCALATION_ACTION},
        )
    ]
