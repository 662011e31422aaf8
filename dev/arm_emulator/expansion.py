"""Expand a template's resources: ``copy`` loops and nested ``Microsoft.Resources/deployments``.

* A resource with ``copy: {name, count}`` whose ``count`` evaluates to an int (0..800) becomes
  ``count`` resources, ``copyIndex()`` bound to 0..count-1 (the ``copy`` key is dropped). Any other
  ``copy`` is left as one resource, as before.
* A ``Microsoft.Resources/deployments`` resource with an inline ``properties.template`` (or a
  ``properties.templateLink`` the resolver can fetch) is replaced by the resources of its template,
  recursively, at the nested deployment's target scope (``subscriptionId``/``resourceGroup`` on
  the resource, evaluated in the parent's context; default: the parent's scope). Inner expressions
  are evaluated with the nested deployment's own ``properties.parameters`` when
  ``expressionEvaluationOptions.scope`` is ``inner`` (always for linked templates), else in the
  parent's context (so ``resourceGroup()`` is still the parent's group, as in ARM). A nested
  deployment that cannot be resolved stays one resource, at its target scope.
* ``max_depth`` (what-if only): the resources of nested deployments deeper than that are still
  listed but flagged ``ignored``, and each outermost such deployment adds one
  ``NestedDeploymentShortCircuited`` warning.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .expressions import Context, evaluate, resource_id

LinkResolver = Callable[[dict[str, Any]], dict[str, Any] | None]  # templateLink -> template, None: not ours
Locator = Callable[[str, str], str | None]  # (subscription, group) -> the group's location

DEPLOYMENTS_TYPE = "microsoft.resources/deployments"
_MAX_COPIES = 800
_HARD_DEPTH = 64  # linked templates that link to themselves


@dataclass
class Scope:
    subscription: str | None
    resource_group: str | None
    location: str

    @property
    def id(self) -> str:
        if self.subscription and self.resource_group:
            return f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
        if self.subscription:
            return f"/subscriptions/{self.subscription}"
        return ""


@dataclass
class Expansion:
    resources: list[dict[str, Any]] = field(default_factory=list)  # evaluated, each with "id"
    ignored: list[bool] = field(default_factory=list)  # parallel to resources
    diagnostics: list[dict[str, Any]] = field(default_factory=list)


def resource_items(template: dict[str, Any]) -> list[Any]:
    raw = template.get("resources") or []
    return list(raw.values()) if isinstance(raw, dict) else list(raw)


def supplied_values(raw: Any) -> dict[str, Any]:
    """``{"p": {"value": v}}`` (or bare values) -> ``{"p": v}``."""
    if not isinstance(raw, dict):
        return {}
    return {k: (v.get("value") if isinstance(v, dict) else v) for k, v in raw.items()}


def bind_parameters(template: dict[str, Any], supplied: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Supplied values or defaults of the template's parameters, defaults evaluated in ``ctx``;
    also sets ``ctx.parameters``/``ctx.variables``."""
    declared = template.get("parameters") or {}
    values = {
        name: supplied[name] if name in supplied else spec.get("defaultValue")
        for name, spec in (declared.items() if isinstance(declared, dict) else [])
        if isinstance(spec, dict)
    }
    variables = template.get("variables")
    ctx.parameters = values
    ctx.variables = variables if isinstance(variables, dict) else {}
    values = {k: evaluate(v, ctx) for k, v in values.items()}
    ctx.parameters = values
    return values


class Expander:
    def __init__(self, resolve: LinkResolver, locate: Locator, max_depth: int | None = None) -> None:
        self.resolve = resolve
        self.locate = locate
        self.max_depth = max_depth
        self.result = Expansion()

    def expand(self, template: dict[str, Any], ctx: Context) -> Expansion:
        self._walk(template, ctx, Scope(ctx.subscription, ctx.resource_group, ctx.location), 0, False)
        return self.result

    def _add(self, resource: dict[str, Any], ignored: bool) -> None:
        self.result.resources.append(resource)
        self.result.ignored.append(ignored)

    def _walk(self, template: dict[str, Any], ctx: Context, target: Scope, depth: int, ignored: bool) -> None:
        for item in resource_items(template):
            if not isinstance(item, dict) or item.get("existing") or "type" not in item:
                continue
            for item_ctx, looped in _copies(item, ctx):
                raw = {k: v for k, v in item.items() if not (looped and k == "copy")}
                if str(item.get("type", "")).lower() == DEPLOYMENTS_TYPE and depth < _HARD_DEPTH:
                    self._nested(raw, item_ctx, target, depth, ignored)
                else:
                    self._add(_resolve_resource(raw, item_ctx, target.id), ignored)

    def _nested(self, item: dict[str, Any], ctx: Context, parent: Scope, depth: int, ignored: bool) -> None:
        raw_props = item.get("properties")
        props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
        shell = evaluate({k: v for k, v in item.items() if k not in ("resources", "dependsOn", "properties")}, ctx)
        shell_props = evaluate({k: v for k, v in props.items() if k != "template"}, ctx)
        target = self._target(shell, parent)
        name = str(shell.get("name", "unnamed"))
        nested_id = resource_id(target.id, "Microsoft.Resources/deployments", name)
        template: Any = props.get("template")
        linked = False
        if not isinstance(template, dict) and isinstance(shell_props.get("templateLink"), dict):
            template, linked = self.resolve(shell_props["templateLink"]), True
        if not isinstance(template, dict):  # not expandable: one resource, as before
            resolved = _resolve_resource(item, ctx, target.id)
            resolved["id"] = nested_id
            self._add(resolved, ignored)
            return
        options = shell_props.get("expressionEvaluationOptions") or {}
        inner = linked or (isinstance(options, dict) and str(options.get("scope", "")).lower() == "inner")
        if inner:
            inner_ctx = Context(name, target.subscription, target.resource_group, target.location)
            bind_parameters(template, supplied_values(shell_props.get("parameters")), inner_ctx)
        else:
            inner_ctx = dataclasses.replace(ctx)
        if not ignored and self.max_depth is not None and depth + 1 > self.max_depth:
            ignored = True
            self.result.diagnostics.append(
                {
                    "level": "Warning",
                    "code": "NestedDeploymentShortCircuited",
                    "message": f"The nested deployment '{name}' was not expanded: it is nested deeper than "
                    f"{self.max_depth} level(s). The resources it deploys are reported with change type "
                    "'Ignore' and will still be deployed.",
                    "target": nested_id,
                    "additionalInfo": [],
                }
            )
        self._walk(template, inner_ctx, target, depth + 1, ignored)

    def _target(self, shell: dict[str, Any], parent: Scope) -> Scope:
        sub, group = shell.get("subscriptionId"), shell.get("resourceGroup")
        if isinstance(group, str) and group:
            subscription = sub if isinstance(sub, str) and sub else parent.subscription
            if (
                subscription == parent.subscription
                and parent.resource_group
                and group.lower() == parent.resource_group.lower()
            ):
                return parent
            location = self.locate(subscription, group) if subscription else None
            return Scope(subscription, group, location or parent.location)
        if isinstance(sub, str) and sub:
            return Scope(sub, None, parent.location)
        return parent


def _copies(item: dict[str, Any], ctx: Context) -> Iterator[tuple[Context, bool]]:
    copy = item.get("copy")
    if not isinstance(copy, dict):
        yield ctx, False
        return
    count = evaluate(copy.get("count"), ctx)
    name = str(copy.get("name") or "copy").lower()
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= _MAX_COPIES:
        yield ctx, False
        return
    for index in range(count):
        yield dataclasses.replace(ctx, copy_indexes={**ctx.copy_indexes, name: index}, copy_loop=name), True


def _resolve_resource(item: dict[str, Any], ctx: Context, scope_id: str) -> dict[str, Any]:
    resolved: dict[str, Any] = evaluate({k: v for k, v in item.items() if k not in ("resources", "dependsOn")}, ctx)
    name = str(resolved.get("name", "unnamed"))
    resolved["name"] = name
    resolved["id"] = resource_id(scope_id, str(resolved["type"]), name)
    return resolved
