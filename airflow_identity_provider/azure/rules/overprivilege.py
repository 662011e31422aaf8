"""Over-privilege findings for the access report: broad role assignments, unused wildcard breadth and the
right to assign roles (escalation). Pure, like :mod:`.rbac`, whose permission entries it reads."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_identity_provider.azure.rules.arm_json import field_of as _get
from airflow_identity_provider.azure.rules.arm_json import require_mapping as _mapping
from airflow_identity_provider.azure.rules.rbac import PermissionEntry, action_matches, is_action_allowed
from airflow_identity_provider.azure.rules.scopes import (
    ArmScope,
    ScopeError,
    ascii_fold,
    dedupe_folded,
    is_within,
    parse_scope,
)

__all__ = [
    "CONTRIBUTOR_ROLE_ID",
    "ESCALATION_ACTION",
    "OWNER_ROLE_ID",
    "PRIVILEGED_ROLE_IDS",
    "RBAC_ADMINISTRATOR_ROLE_ID",
    "READER_ROLE_ID",
    "ROLE_NAMES",
    "USER_ACCESS_ADMINISTRATOR_ROLE_ID",
    "Finding",
    "RoleAssignment",
    "Severity",
    "broad_assignments",
    "escalation_capable",
    "escalation_findings",
    "unused_breadth",
]

Severity = Literal["high", "medium", "low"]
# re.ASCII: case-insensitive in ASCII only, like ascii_fold.
_ROLE_ASSIGNMENT_SUFFIX = re.compile(r"/providers/Microsoft\.Authorization/roleAssignments/[^/]+/?\Z", re.I | re.ASCII)


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
    required = dedupe_folded(required_actions)
    required_data = dedupe_folded(required_data_actions)
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
