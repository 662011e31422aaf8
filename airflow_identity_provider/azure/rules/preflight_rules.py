"""What an ARM write needs and what a deployment may change: pure rules for the least-privilege preflight.

No network, no azure SDK and no Airflow imports. Input is what ARM returns (the what-if ``changes`` in REST
camelCase or the SDK's ``as_dict()`` snake_case); output is action names for :func:`rbac.evaluate` and
:class:`Violation` objects whose messages name the setting that would allow the change.

What-if change types: Microsoft's "ARM template deployment what-if operation". ``Ignore`` counts as a
write: what-if also gives it to resources it stopped expanding at its limits, which ARM still deploys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from airflow_identity_provider.azure.rules.scopes import (
    ArmScope,
    ScopeError,
    ascii_fold,
    dedupe_folded,
    first_containing,
    lookalike_fold,
    parse_scope,
)

__all__ = [
    "ALLOWED_CHANGE_TYPES_SETTING",
    "ALLOWED_SCOPES_SETTING",
    "ALLOW_COMPLETE_SETTING",
    "ALLOW_DELETE_SETTING",
    "ALLOW_RBAC_SETTING",
    "CHANGE_TYPES",
    "DEPLOYMENT_MODES",
    "GOVERNANCE_TYPES",
    "REDEPLOY_CHANGE_TYPES",
    "REQUIRED_ACTIONS",
    "Violation",
    "WhatIfChange",
    "check_changes",
    "check_mode",
    "contained_delete_actions",
    "derived_actions",
    "parse_what_if",
    "required_actions",
]

# ------------------------------------------------------------------------------------ required actions

_RG = "Microsoft.Resources/subscriptions/resourceGroups"
_DEPLOY = "Microsoft.Resources/deployments"

REQUIRED_ACTIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        # Checked at the subscription scope: the resource group may not exist yet.
        "resource_group_write": (f"{_RG}/write", f"{_RG}/read"),
        # Plus delete on every contained type: see contained_delete_actions().
        "resource_group_delete": (f"{_RG}/delete", f"{_RG}/read"),
        "deployment_write": (
            f"{_DEPLOY}/write",
            f"{_DEPLOY}/read",
            f"{_DEPLOY}/operationstatuses/read",
            f"{_DEPLOY}/operations/read",
        ),
        "deployment_cancel": (f"{_DEPLOY}/cancel/action",),
        "deployment_validate": (f"{_DEPLOY}/validate/action",),
        "deployment_what_if": (f"{_DEPLOY}/whatIf/action",),
        "tags_write": ("Microsoft.Resources/tags/write",),
        "lock_write": ("Microsoft.Authorization/locks/write", "Microsoft.Authorization/locks/read"),
        "lock_delete": ("Microsoft.Authorization/locks/delete", "Microsoft.Authorization/locks/read"),
    }
)


def required_actions(kind: str, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """``REQUIRED_ACTIONS[kind]`` plus ``extra`` (a user's additions), de-duplicated case-insensitively."""
    try:
        base = REQUIRED_ACTIONS[kind]
    except KeyError:
        raise KeyError(f"unknown operation kind {kind!r}; known: {', '.join(sorted(REQUIRED_ACTIONS))}") from None
    return dedupe_folded([*base, *extra])


# Resource types whose RBAC actions live under another name.
_ACTION_PREFIX_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "microsoft.resources/resourcegroups": _RG,
    }
)


def _action_prefix(resource_type: str) -> str:
    return _ACTION_PREFIX_ALIASES.get(ascii_fold(resource_type), resource_type)


def contained_delete_actions(resource_types: Iterable[str]) -> tuple[str, ...]:
    """``{type}/delete`` for each resource type found in a resource group about to be deleted."""
    return dedupe_folded(f"{_action_prefix(t)}/delete" for t in resource_types)


# ----------------------------------------------------------------------------------------- what-if

CHANGE_TYPES: tuple[str, ...] = ("Create", "Delete", "Ignore", "Deploy", "NoChange", "Modify", "Unsupported")
_CANONICAL_CHANGE = {c.lower(): c for c in CHANGE_TYPES}
REDEPLOY_CHANGE_TYPES: frozenset[str] = frozenset({"NoChange", "Unsupported"})
"""ARM redeploys these (a PUT that needs ``{type}/write``) though what-if predicts no property change
(NoChange) or cannot predict (Unsupported)."""
DEPLOYMENT_MODES: tuple[str, ...] = ("Incremental", "Complete")

# Settings named in violation messages (operator arguments and the connection extra).
ALLOWED_SCOPES_SETTING = "allowed_scopes"
ALLOW_DELETE_SETTING = "allow_delete_changes"
ALLOW_RBAC_SETTING = "allow_rbac_changes"
ALLOWED_CHANGE_TYPES_SETTING = "allowed_change_types"
ALLOW_COMPLETE_SETTING = "allow_complete_mode"

GOVERNANCE_TYPES: frozenset[str] = frozenset(
    lookalike_fold(t)
    for t in (
        "Microsoft.Authorization/roleAssignments",
        "Microsoft.Authorization/roleDefinitions",
        "Microsoft.Authorization/denyAssignments",
        "Microsoft.Authorization/locks",
        "Microsoft.Authorization/policyAssignments",
        "Microsoft.Authorization/policyDefinitions",
        "Microsoft.Authorization/policySetDefinitions",
        "Microsoft.Authorization/policyExemptions",
    )
)
"""Named governance types. Any other ``Microsoft.Authorization/*`` type (PIM schedule requests, role
management policies...) is treated the same: the whole namespace is access control."""
_GOVERNANCE_NAMESPACE = "microsoft.authorization/"


@dataclass(frozen=True)
class WhatIfChange:
    """One element of a what-if result's ``changes`` (or ``potentialChanges``)."""

    resource_id: str
    change_type: str
    """Canonical spelling (``Create``...) when known, else as ARM sent it."""
    resource_type: str | None
    """``after.type``, else ``before.type``, else the type parsed from ``resource_id``; None if none works."""
    scope: ArmScope | None = field(default=None, compare=False)
    """``resource_id`` parsed; None when it is not a valid ARM id (:func:`check_changes` reports it)."""
    unsupported_reason: str | None = field(default=None, compare=False)
    after: Mapping[str, Any] | None = field(default=None, compare=False)
    """The predicted resource body, for the linked-resource checks."""

    @classmethod
    def from_api(cls, d: Mapping[str, Any]) -> WhatIfChange:
        if not isinstance(d, Mapping):
            raise ValueError(f"a what-if change must be a JSON object, got {type(d).__name__}: {d!r}")
        rid = d.get("resourceId", d.get("resource_id"))
        change = d.get("changeType", d.get("change_type"))
        rid = rid if isinstance(rid, str) else ""
        change = change if isinstance(change, str) else ""
        # The SDK enum's value is a str subclass; str() of it may be "ChangeType.CREATE": use .value if present.
        change = str(getattr(change, "value", change))
        try:
            scope: ArmScope | None = parse_scope(rid)
        except ScopeError:
            scope = None
        declared = None
        for snap in (d.get("after"), d.get("before")):
            if isinstance(snap, Mapping) and isinstance(snap.get("type"), str) and snap["type"]:
                declared = snap["type"]
                break
        resource_type = declared or (scope.resource_type if scope is not None else None)
        reason = d.get("unsupportedReason", d.get("unsupported_reason"))
        return cls(
            resource_id=rid,
            change_type=_CANONICAL_CHANGE.get(change.lower(), change),
            resource_type=resource_type,
            scope=scope,
            unsupported_reason=reason if isinstance(reason, str) else None,
            after=d["after"] if isinstance(d.get("after"), Mapping) else None,
        )

    @property
    def types(self) -> tuple[str, ...]:
        """Declared and id-parsed types (both, when they differ): rules look at either."""
        out = [t for t in (self.resource_type, self.scope.resource_type if self.scope else None) if t]
        return dedupe_folded(out)


def parse_what_if(payload: Any) -> tuple[WhatIfChange, ...]:
    """Changes and potentialChanges of a what-if result.

    Accepts the LRO's final body ``{"status", "properties": {"changes", "potentialChanges"}}``, its
    ``properties``, the SDK's ``as_dict()`` (``potential_changes``), or a plain list of changes.
    Potential changes are included: they may happen, so they are checked like the others.
    """
    if isinstance(payload, Mapping):
        body = payload.get("properties", payload)
        if not isinstance(body, Mapping):
            raise ValueError("what-if 'properties' must be a JSON object")
        items: list[Any] = []
        for key in ("changes", "potentialChanges", "potential_changes"):
            part = body.get(key)
            if part is None:
                continue
            if isinstance(part, str) or not isinstance(part, (list, tuple)):
                raise ValueError(f"what-if {key!r} must be a list")
            items.extend(part)
    elif isinstance(payload, (list, tuple)):
        items = list(payload)
    else:
        raise ValueError(f"expected a what-if result or a list of changes, got {type(payload).__name__}")
    return tuple(WhatIfChange.from_api(c) for c in items)


def _canonical_mode(mode: str) -> str | None:
    for m in DEPLOYMENT_MODES:
        if isinstance(mode, str) and mode.strip().lower() == m.lower():
            return m
    return None


def derived_actions(changes: Iterable[WhatIfChange], *, include_redeploys: bool = True) -> tuple[str, ...]:
    """Actions the deployment itself needs on top of ``REQUIRED_ACTIONS["deployment_write"]``.

    ``Create``/``Modify``/``Deploy``/``Ignore`` -> ``{type}/write``; ``Delete`` -> ``{type}/delete`` (in either
    mode: a nested Complete-mode deployment can delete under an Incremental parent). ``Ignore`` counts: past
    what-if's expansion limits it marks resources ARM still deploys. ``NoChange`` and ``Unsupported`` are
    redeployed by ARM (a PUT that needs ``{type}/write``), so they count unless ``include_redeploys=False``.
    An unknown change type counts as a write (fail closed). Groups map to ``.../subscriptions/resourceGroups``.

    The same in either deployment mode; :func:`check_mode` judges the mode itself.

    Raises ValueError for a write/delete change whose type cannot be determined.
    """
    out: list[str] = []
    for c in changes:
        if c.change_type in REDEPLOY_CHANGE_TYPES and not include_redeploys:
            continue
        if not c.resource_type:
            raise ValueError(
                f"cannot tell the resource type of what-if change {c.change_type} {c.resource_id!r}, so the "
                "permission it needs is unknown"
            )
        verb = "delete" if c.change_type == "Delete" else "write"
        out.append(f"{_action_prefix(c.resource_type)}/{verb}")
    return dedupe_folded(out)


# ------------------------------------------------------------------------------------------ violations


@dataclass(frozen=True)
class Violation:
    """A rule the planned write breaks. ``rule`` is one of ``invalid_resource_id``, ``outside_scope``,
    ``delete``, ``rbac_change``, ``unknown_change_type``, ``change_type``, ``complete_mode``, ``invalid_mode``."""

    rule: str
    resource_id: str
    message: str


def _normalise_change_types(allowed: Iterable[str]) -> frozenset[str]:
    if isinstance(allowed, str):
        raise ValueError(f"{ALLOWED_CHANGE_TYPES_SETTING} must be a set of change types, not the string {allowed!r}")
    out: set[str] = set()
    for t in allowed:
        canon = _CANONICAL_CHANGE.get(str(t).lower())
        if canon is None:
            raise ValueError(
                f"{ALLOWED_CHANGE_TYPES_SETTING} contains {t!r}; valid change types are {', '.join(CHANGE_TYPES)}"
            )
        out.add(canon)
    return frozenset(out)


def _is_governance(resource_type: str) -> bool:
    t = lookalike_fold(resource_type)  # a deny rule: lookalike spellings are caught, not let through
    return t in GOVERNANCE_TYPES or t.startswith(_GOVERNANCE_NAMESPACE)


def check_changes(
    changes: Iterable[WhatIfChange],
    fence_scopes: Iterable[ArmScope | str],
    *,
    allow_delete: bool = False,
    allow_rbac_changes: bool = False,
    allowed_change_types: Iterable[str] | None = None,
) -> list[Violation]:
    """Every rule each change breaks, in input order.

    - ``invalid_resource_id``: the id does not parse (so containment cannot be proven).
    - ``outside_scope``: the id is under no fence scope. An empty fence admits nothing. ``Ignore`` and
      ``NoChange`` are not exempt: ARM may still deploy or PUT them.
    - ``delete``: a ``Delete`` change unless ``allow_delete``.
    - ``rbac_change``: any change to a ``Microsoft.Authorization/*`` type (role
      assignments/definitions, deny assignments, locks, policy assignments/definitions/exemptions...) unless
      ``allow_rbac_changes``. Both the declared and the id-parsed type are looked at.
    - ``unknown_change_type``: a change type ARM did not document.
    - ``change_type``: a change type outside ``allowed_change_types`` (None = any). ``NoChange`` and
      ``Ignore`` pass this one rule (the others still apply). Unknown names in it raise ValueError.
    """
    fences = [parse_scope(f) for f in fence_scopes]
    fence_text = ", ".join(str(f) for f in fences)
    allowed_types = None if allowed_change_types is None else _normalise_change_types(allowed_change_types)
    violations: list[Violation] = []
    for c in changes:
        rid = c.resource_id
        if c.change_type not in _CANONICAL_CHANGE.values():
            violations.append(
                Violation(
                    "unknown_change_type",
                    rid,
                    f"what-if reports change type {c.change_type!r} for {rid!r}, which is not one of "
                    f"{', '.join(CHANGE_TYPES)}; refusing a change whose effect is unknown",
                )
            )
        if c.scope is None:
            violations.append(
                Violation(
                    "invalid_resource_id",
                    rid,
                    f"what-if change {c.change_type} has resource id {rid!r}, which is not a valid ARM id, so it "
                    f"cannot be shown to lie inside {ALLOWED_SCOPES_SETTING}",
                )
            )
        elif first_containing(c.scope, fences) is None:
            where = (
                f"the connection's {ALLOWED_SCOPES_SETTING} ({fence_text})"
                if fences
                else f"the connection's {ALLOWED_SCOPES_SETTING}, which is empty"
            )
            violations.append(
                Violation(
                    "outside_scope",
                    rid,
                    f"what-if predicts {c.change_type} of {c.scope} ({c.resource_type or 'unknown type'}), outside "
                    f"{where}; nested deployments and Bicep 'scope:' can reach other resource groups or "
                    f"subscriptions. Add the scope to {ALLOWED_SCOPES_SETTING} on the connection if this is intended",
                )
            )
        if c.change_type == "Delete" and not allow_delete:
            violations.append(
                Violation(
                    "delete",
                    rid,
                    f"what-if predicts Delete of {rid} ({c.resource_type or 'unknown type'}); set "
                    f"{ALLOW_DELETE_SETTING}=True on the operator to permit deletions",
                )
            )
        governance = [t for t in c.types if _is_governance(t)]
        if governance and not allow_rbac_changes:
            violations.append(
                Violation(
                    "rbac_change",
                    rid,
                    f"what-if predicts {c.change_type} of {governance[0]} {rid}: an access-control change "
                    f"(role assignments, role definitions, deny assignments, locks and policies); set "
                    f"{ALLOW_RBAC_SETTING}=True on the operator to permit it",
                )
            )
        if (
            allowed_types is not None
            and c.change_type in _CANONICAL_CHANGE.values()
            and c.change_type not in allowed_types
            and c.change_type not in ("NoChange", "Ignore")
        ):
            violations.append(
                Violation(
                    "change_type",
                    rid,
                    f"what-if predicts {c.change_type} of {rid}, but {ALLOWED_CHANGE_TYPES_SETTING} allows only "
                    f"{', '.join(t for t in CHANGE_TYPES if t in allowed_types) or 'no changes'}; add "
                    f"{c.change_type!r} to {ALLOWED_CHANGE_TYPES_SETTING} on the operator to permit it",
                )
            )
    return violations


def check_mode(mode: str, allow_complete: bool, *, deployment_id: str = "") -> Violation | None:
    """Complete mode deletes every resource of the group the template does not name: only with the flag.

    An unknown mode is a violation too (fail closed).
    """
    canon = _canonical_mode(mode)
    if canon is None:
        return Violation(
            "invalid_mode",
            deployment_id,
            f"deployment mode {mode!r} is not one of {', '.join(DEPLOYMENT_MODES)}",
        )
    if canon == "Complete" and not allow_complete:
        return Violation(
            "complete_mode",
            deployment_id,
            "deployment mode Complete deletes every resource in the resource group that the template does not "
            f"define; use Incremental, or set {ALLOW_COMPLETE_SETTING}=True on the operator to permit it",
        )
    return None
