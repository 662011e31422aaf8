"""Reading an ARM template the way ARM does, for :mod:`.template_scan`: keys ignoring ASCII case, parameter
values as template functions see them, the resources of either language version, and where a nested
deployment lands. Pure."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_identity_provider.azure.rules.scopes import ScopeError, ascii_fold, parse_scope
from airflow_identity_provider.azure.rules.template_expressions import UNRESOLVED, ExprContext

__all__ = [
    "AMBIGUOUS",
    "Level",
    "as_mapping",
    "get_folded",
    "parameter_values",
    "placement",
    "resources_of",
    "strings_in",
]

AMBIGUOUS = object()
"""What :func:`get_folded` returns when two keys of one object fold to the same name."""


def get_folded(m: Mapping[str, Any], key: str) -> Any:
    """``m[key]`` ignoring ASCII case (ARM's rule); None when absent, AMBIGUOUS when two keys fold alike."""
    found = [v for k, v in m.items() if isinstance(k, str) and ascii_fold(k) == ascii_fold(key)]
    return found[0] if len(found) == 1 else (AMBIGUOUS if found else None)


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def parameter_values(declared: Any, supplied: Mapping[str, Any]) -> dict[str, Any]:
    """Parameter values as template functions see them: a supplied ``{"value": v}`` first, else the
    declared default. A Key Vault reference, or a supplied value that cannot be resolved, is UNRESOLVED
    (never the default: the default is not what ARM will use)."""
    values: dict[str, Any] = {}
    for name, spec in as_mapping(declared).items():
        default = get_folded(spec, "defaultValue") if isinstance(spec, Mapping) else None
        if default is not None and default is not AMBIGUOUS:
            values[str(name)] = default
    for name, wrapped in supplied.items():
        value = get_folded(wrapped, "value") if isinstance(wrapped, Mapping) else None
        known = isinstance(wrapped, Mapping) and value is not None and value is not AMBIGUOUS
        values[str(name)] = value if known and get_folded(wrapped, "reference") is None else UNRESOLVED
    return values


def resources_of(template: Mapping[str, Any]) -> list[tuple[str, Any]]:
    raw = get_folded(template, "resources")
    if isinstance(raw, Mapping):  # languageVersion 2.0: symbolic names
        return [(str(k), v) for k, v in raw.items()]
    return [(str(i), v) for i, v in enumerate(raw)] if isinstance(raw, list) else []


@dataclass(frozen=True)
class Level:
    """One template being read: where its resources land and what its functions see."""

    placement: str
    ctx: ExprContext
    path: str
    depth: int
    symbols: Mapping[str, str] = field(default_factory=dict)
    """2.0 symbolic name -> the id of that resource (existing ones included), for reference('name')."""
    resources: tuple[tuple[str, Any], ...] = ()
    """This template's resources, for reference('<nested deployment>')."""


def strings_in(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from strings_in(k, f"{path}.{k}") if isinstance(k, str) and k.startswith("[") else iter(())
            yield from strings_in(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings_in(v, f"{path}[{i}]")


def placement(parent: str, resolved: Mapping[str, str]) -> str | None:
    """The scope a nested deployment (or an existing resource) lands in, from subscriptionId/resourceGroup/scope."""
    if "scope" in resolved:
        value = resolved["scope"]
        if value.startswith("/"):
            return value
        if ascii_fold(value).startswith("microsoft.management/managementgroups/"):
            return f"/providers/{value}"
        return None
    try:
        base = parse_scope(parent)
    except ScopeError:
        return None
    sub = resolved.get("subscriptionId", base.subscription_id)
    if "resourceGroup" in resolved:
        return f"/subscriptions/{sub}/resourceGroups/{resolved['resourceGroup']}"
    if "subscriptionId" in resolved:
        return f"/subscriptions/{sub}"  # a subscription-level nested deployment
    return parent
