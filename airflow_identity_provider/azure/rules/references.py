"""Linked resources across the fence: ARM ids a deployment *uses* without writing them.

A change inside the fence can still reach outside it: a user-assigned identity of another group
(``identity.userAssignedIdentities``, whose keys are ids), a subnet of another network, a Key Vault
reference in the parameters. Every ARM id in the what-if ``after`` payloads and in the request's
parameters must lie inside ``allowed_scopes`` or ``allowed_reference_scopes``. Using such a resource
needs its own right where it lives (Microsoft documents ``userAssignedIdentities/assign/action``,
``virtualNetworks/subnets/join/action`` and, for Key Vault references in deployments,
``vaults/deploy/action``); those become :class:`LinkedAccess` entries checked by the preflight.

Pure: no network.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from airflow_identity_provider.azure.rules.fence_judgement import ALLOWED_REFERENCE_SCOPES_SETTING, Fence
from airflow_identity_provider.azure.rules.preflight_rules import Violation, WhatIfChange
from airflow_identity_provider.azure.rules.scopes import (
    ScopeError,
    ascii_fold,
    lookalike_fold,
    parse_scope,
    resource_type_of,
)
from airflow_identity_provider.azure.rules.template_terms import (
    ALLOW_DEPLOYMENT_SCRIPTS_SETTING,
    DEPLOYMENT_SCRIPTS_TYPE,
    LinkedAccess,
    is_definition_id,
)

__all__ = ["KEY_VAULT_DEPLOY_ACTION", "LINKED_ACTIONS", "check_deployment_scripts", "check_references", "ids_in"]

# An id anywhere in a string (a URL that embeds one counts too); leading runs of '/' are one '/'.
_ID = re.compile(r"/+((?:subscriptions|providers)/[^\s\"'?#,;()\[\]{}<>]+)", re.IGNORECASE)
KEY_VAULT_DEPLOY_ACTION = "Microsoft.KeyVault/vaults/deploy/action"
LINKED_ACTIONS: Mapping[str, str] = MappingProxyType(
    {
        "microsoft.managedidentity/userassignedidentities": (
            "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"
        ),
        "microsoft.network/virtualnetworks/subnets": "Microsoft.Network/virtualNetworks/subnets/join/action",
    }
)


def _ids(text: str) -> list[str]:
    """Ids in ``text``. A string that is an id (give or take blanks and slashes) is returned even when it
    does not parse, so that the fence calls it invalid; an id-like piece of a longer string (a URL) only
    when it parses, so that ``https://host/providers/...`` paths of other services are not taken for one."""
    found: list[str] = []
    whole = text.strip()
    for m in _ID.finditer(text):
        rid = "/" + m.group(1).rstrip("/")
        if whole.lstrip("/").rstrip("/") == m.group(1).rstrip("/"):
            found.append(rid)
            continue
        try:
            parse_scope(rid)
        except ScopeError:
            continue
        found.append(rid)
    return found


def ids_in(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """``(path, id)`` for every ARM id in strings, values and object keys alike (``userAssignedIdentities``
    keys are ids), also when embedded in a longer string such as a URL."""
    if isinstance(value, str):
        for rid in _ids(value):
            yield path, rid
    elif isinstance(value, Mapping):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str):
                for rid in _ids(key):
                    yield here, rid
            yield from ids_in(item, here)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from ids_in(item, f"{path}[{i}]")


def _refuse(where: str, resource_id: str, fence: Fence, rule: str = "reference_outside_scope") -> Violation:
    return Violation(
        rule,
        resource_id,
        f"{where} references {resource_id}, outside the connection's allowed_scopes and "
        f"{ALLOWED_REFERENCE_SCOPES_SETTING} ({fence.describe()}); a deployment inside the fence would use it. "
        f"Add its scope to {ALLOWED_REFERENCE_SCOPES_SETTING} on the connection if this use is intended",
    )


def _linked(resource_id: str, where: str) -> list[LinkedAccess]:
    rtype = resource_type_of(resource_id)
    action = LINKED_ACTIONS.get(ascii_fold(rtype)) if rtype else None
    return [LinkedAccess(resource_id, action, where)] if action else []


def check_references(
    changes: Iterable[WhatIfChange],
    parameters: Mapping[str, Any],
    fence: Fence,
    *,
    secure_parameters: Collection[str] = (),
) -> tuple[list[Violation], list[LinkedAccess]]:
    """Violations for ids outside both fences, and the linked rights the ids inside them need."""
    violations: list[Violation] = []
    linked: list[LinkedAccess] = []
    for change in changes:
        if change.after is None or change.change_type == "Delete":
            continue
        for path, rid in ids_in(change.after):
            # Parsed before the "its own id or a child" skip, so '..' or lookalike tricks never skip.
            if change.scope is not None and fence.where(rid) != "invalid" and change.scope.contains(rid):
                continue
            if is_definition_id(rid):
                continue
            where = f"what-if {change.change_type} of {change.resource_id} ({path})"
            if fence.where(rid) in ("outside", "invalid"):
                violations.append(_refuse(where, rid, fence))
            else:
                linked += _linked(rid, where)
    secure = {ascii_fold(n) for n in secure_parameters}
    for name, wrapped in parameters.items():
        shown = f"parameter {name!r}" + (" (secure; its value is not shown)" if ascii_fold(name) in secure else "")
        if isinstance(wrapped, Mapping) and isinstance(wrapped.get("reference"), Mapping):
            vault = wrapped["reference"].get("keyVault")
            vault_id = vault.get("id") if isinstance(vault, Mapping) else None
            if not isinstance(vault_id, str):
                violations.append(
                    Violation("invalid_reference", name, f"{shown} is a Key Vault reference without keyVault.id")
                )
                continue
            if fence.where(vault_id) in ("outside", "invalid"):
                violations.append(_refuse(f"{shown} (Key Vault reference)", vault_id, fence))
            else:
                linked.append(LinkedAccess(vault_id, KEY_VAULT_DEPLOY_ACTION, f"Key Vault reference in {shown}"))
            continue
        value = wrapped.get("value") if isinstance(wrapped, Mapping) else wrapped
        for path, rid in ids_in(value):
            where = f"{shown}{'.' + path if path else ''}"
            if fence.where(rid) in ("outside", "invalid"):
                if ascii_fold(name) in secure:
                    violations.append(
                        Violation(
                            "reference_outside_scope",
                            name,
                            f"{where} holds an ARM id outside the connection's allowed_scopes and "
                            f"{ALLOWED_REFERENCE_SCOPES_SETTING}; add its scope to {ALLOWED_REFERENCE_SCOPES_SETTING} "
                            "if this use is intended",
                        )
                    )
                else:
                    violations.append(_refuse(where, rid, fence))
            else:
                linked += _linked(rid, where)
    return violations, linked


def check_deployment_scripts(changes: Iterable[WhatIfChange], *, allow: bool) -> list[Violation]:
    """deploymentScripts run arbitrary code as their identity: refused (in any change type) unless allowed."""
    if allow:
        return []
    return [
        Violation(
            "deployment_script",
            c.resource_id,
            f"what-if predicts {c.change_type} of {c.resource_id}, a Microsoft.Resources/deploymentScripts "
            "resource: it runs arbitrary code as its identity, which no fence can contain. Set "
            f"{ALLOW_DEPLOYMENT_SCRIPTS_SETTING}=True on the operator if this script is reviewed and intended",
        )
        for c in changes
        if any(lookalike_fold(t) == DEPLOYMENT_SCRIPTS_TYPE for t in c.types)
    ]
