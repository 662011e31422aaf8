"""Static inspection of an ARM template before any write: the second line behind what-if.

What-if stops expanding nested deployments at its limits (Microsoft: 500 nested templates, 800 resource
groups, 5 minutes) and reports the rest as ``Ignore`` although ARM still deploys them. So the template
itself is read, at every depth (child resources, copy loops, ``languageVersion 2.0`` symbolic names), and
these are refused before ARM sees a write. The rule names appear in the messages:

- ``nested_outside_scope`` / ``nested_scope_unresolved``: a ``Microsoft.Resources/deployments`` whose
  ``subscriptionId``, ``resourceGroup`` or ``scope`` (what Bicep ``scope:`` compiles to) is outside the
  fence, or cannot be resolved offline;
- ``nested_template_link``: a nested ``templateLink`` or ``parametersLink`` (content ARM fetches and this
  check cannot see), unless allowed; ``on_error_deployment``: a nested ``onErrorDeployment``, which
  redeploys a past deployment nobody checked;
- ``deployment_script``: ``Microsoft.Resources/deploymentScripts`` (arbitrary code), unless allowed;
- ``extension_outside_scope`` / ``scope_unresolved``: an extension resource on a scope outside the fence;
- ``existing_outside_scope``: an ``existing`` resource outside the fence and the reference scopes;
- ``reference_outside_scope`` / ``reference_unresolved``: an ARM id, ``reference()`` or ``list*()``
  target outside the fence and the reference scopes, or one that cannot be resolved offline;
- ``secret_in_output``: a ``list*()`` result (directly, or from a nested deployment that calls one) in a
  non-secure output, which the operator would push to XCom where Viewers read it;
- ``unreadable_template`` / ``unparseable_expression``: a shape or expression this check cannot read,
  so it cannot vouch for it.

Template keys are matched ignoring ASCII case, as ARM does. Pure: no network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_identity_provider.azure.rules.fence_judgement import ALLOWED_REFERENCE_SCOPES_SETTING, Fence
from airflow_identity_provider.azure.rules.preflight_rules import ALLOWED_SCOPES_SETTING, Violation
from airflow_identity_provider.azure.rules.references import ids_in
from airflow_identity_provider.azure.rules.scopes import ascii_fold, lookalike_fold, parse_scope, resource_type_of
from airflow_identity_provider.azure.rules.template_expressions import (
    UNPARSEABLE,
    UNRESOLVED,
    Call,
    ExprContext,
    calls_in,
    eval_arg,
    evaluate,
)
from airflow_identity_provider.azure.rules.template_terms import (
    ALLOW_DEPLOYMENT_SCRIPTS_SETTING,
    ALLOW_NESTED_TEMPLATE_LINKS_SETTING,
    DEPLOYMENT_SCRIPTS_TYPE,
    DEPLOYMENTS_TYPE,
    LinkedAccess,
    is_definition_id,
)
from airflow_identity_provider.azure.rules.template_walk import AMBIGUOUS as _AMBIGUOUS
from airflow_identity_provider.azure.rules.template_walk import Level as _Level
from airflow_identity_provider.azure.rules.template_walk import as_mapping as _mapping
from airflow_identity_provider.azure.rules.template_walk import get_folded as _get
from airflow_identity_provider.azure.rules.template_walk import parameter_values
from airflow_identity_provider.azure.rules.template_walk import placement as _placement
from airflow_identity_provider.azure.rules.template_walk import resources_of as _resources
from airflow_identity_provider.azure.rules.template_walk import strings_in as _strings

__all__ = ["TemplateScan", "parameter_values", "scan_template"]

_SECURE = frozenset({"securestring", "secureobject"})
_MAX_NESTING = 64  # far above what ARM accepts in one template file; bounds a malicious self-similar one


@dataclass(frozen=True)
class TemplateScan:
    violations: tuple[Violation, ...]
    linked: tuple[LinkedAccess, ...]


class _Scanner:
    def __init__(self, fence: Fence, *, allow_links: bool, allow_scripts: bool) -> None:
        self.fence = fence
        self.allow_links = allow_links
        self.allow_scripts = allow_scripts
        self.violations: list[Violation] = []
        self.linked: list[LinkedAccess] = []

    def refuse(self, rule: str, resource: str, message: str) -> None:
        self.violations.append(Violation(rule, resource, message))

    def both_fences(self) -> str:
        return (
            f"the connection's {ALLOWED_SCOPES_SETTING} and {ALLOWED_REFERENCE_SCOPES_SETTING} "
            f"({self.fence.describe()})"
        )

    def unreadable(self, path: str, what: str) -> None:
        self.refuse(
            "unreadable_template",
            path,
            f"{path}: {what}, so this check cannot show that it stays inside {ALLOWED_SCOPES_SETTING}. Write it as "
            "a plain JSON object (Bicep's compiled output is fine)",
        )

    # -- one template --------------------------------------------------------------------------------

    def template(self, template: Mapping[str, Any], level: _Level) -> None:
        if level.depth > _MAX_NESTING:
            self.unreadable(level.path, f"more than {_MAX_NESTING} nested levels")
            return
        resources = _resources(template)
        if _get(template, "resources") is _AMBIGUOUS:
            self.unreadable(level.path, "two 'resources' keys that differ only in case")
        symbols = dict(level.symbols)
        for key, r in resources:
            if isinstance(r, Mapping) and isinstance(_get(template, "resources"), Mapping):
                rid = self.resource_id(r, level)
                if rid:
                    symbols[key] = rid
        level = _Level(level.placement, level.ctx, level.path, level.depth, symbols, tuple(resources))
        for key, r in resources:
            self.resource(r, f"{level.path}.resources[{key}]", level)
        outputs = _get(template, "outputs")
        for name, spec in _mapping(outputs).items():
            if isinstance(spec, Mapping):
                secure = str(_get(spec, "type") or "").lower() in _SECURE
                where = f"{level.path}.outputs.{name}"
                self.expressions({k: v for k, v in spec.items() if ascii_fold(str(k)) != "type"}, where, level, secure)

    def resource_id(self, r: Mapping[str, Any], level: _Level) -> str | None:
        """The id of a (2.0 symbolic) resource, at its own scope when it names one; None if unknowable."""
        rtype, name = evaluate(_get(r, "type"), level.ctx), evaluate(_get(r, "name"), level.ctx)
        if not isinstance(rtype, str) or not isinstance(name, str) or "/" not in rtype:
            return None
        resolved = {p: evaluate(_get(r, p), level.ctx) for p in ("subscriptionId", "resourceGroup") if _get(r, p)}
        if any(not isinstance(v, str) for v in resolved.values()):
            return None
        base = _placement(level.placement, {k: str(v) for k, v in resolved.items()})
        namespace, *types = rtype.split("/")
        names = name.split("/")
        if base is None or len(types) != len(names):
            return None
        return f"{base}/providers/{namespace}/" + "/".join(f"{t}/{n}" for t, n in zip(types, names, strict=True))

    def resource(self, r: Any, path: str, level: _Level) -> None:
        if not isinstance(r, Mapping):
            self.unreadable(path, f"a resource that is not an object ({type(r).__name__})")
            return
        rtype = evaluate(_get(r, "type"), level.ctx)
        if not isinstance(rtype, str):
            self.unreadable(path, f"a resource type that cannot be resolved offline ({_get(r, 'type')!r})")
            return
        kind = lookalike_fold(rtype)  # deny rules: lookalike spellings are caught, not let through
        if kind == DEPLOYMENT_SCRIPTS_TYPE and not self.allow_scripts:
            self.refuse(
                "deployment_script",
                path,
                f"{path} is a Microsoft.Resources/deploymentScripts resource: it runs arbitrary code as its identity, "
                f"which no fence can contain. Set {ALLOW_DEPLOYMENT_SCRIPTS_SETTING}=True on the operator if this "
                "script is reviewed and intended",
            )
        props = _get(r, "properties")
        if props is not None and not isinstance(props, Mapping):
            self.unreadable(path, "'properties' that is not an object (an expression or an ambiguous key)")
        if _get(r, "existing") is True:
            self.existing(r, path, level)
        elif kind == DEPLOYMENTS_TYPE:
            self.nested(r, path, level)
            return
        else:
            self.extension_scope(r, path, level)
        # Keys handled above or naming this deployment's own resources are not references.
        skip = {"resources", "scope", "subscriptionid", "resourcegroup", "dependson"}
        self.expressions({k: v for k, v in r.items() if ascii_fold(str(k)) not in skip}, path, level, None)
        children = _get(r, "resources")
        if isinstance(children, list):
            for i, child in enumerate(children):
                self.resource(child, f"{path}.resources[{i}]", level)

    # -- nested deployments -------------------------------------------------------------------------

    def scope_props(self, r: Mapping[str, Any], path: str, level: _Level, rule: str) -> dict[str, str] | None:
        resolved: dict[str, str] = {}
        for prop in ("subscriptionId", "resourceGroup", "scope"):
            raw = _get(r, prop)
            if raw is None:
                continue
            value = evaluate(raw, level.ctx) if raw is not _AMBIGUOUS else UNRESOLVED
            if not isinstance(value, str) or not value:
                self.refuse(
                    rule,
                    path,
                    f"{path} sets {prop} to {raw!r}, which cannot be resolved before the deployment runs, so it "
                    f"cannot be shown to stay inside {ALLOWED_SCOPES_SETTING}. Use a literal or a parameter given to "
                    "the operator",
                )
                return None
            resolved[prop] = value
        return resolved

    def nested(self, r: Mapping[str, Any], path: str, level: _Level) -> None:
        resolved = self.scope_props(r, path, level, "nested_scope_unresolved")
        if resolved is None:
            return
        placement = _placement(level.placement, resolved)
        if placement is None or self.fence.where(placement) != "inside":
            self.refuse(
                "nested_outside_scope",
                path,
                f"nested deployment {path} deploys into {placement or resolved}, outside the connection's "
                f"{ALLOWED_SCOPES_SETTING} ({', '.join(map(str, self.fence.write)) or 'empty'}); add that scope to "
                f"{ALLOWED_SCOPES_SETTING} on the connection if this is intended, or deploy it with a connection "
                "fenced to it",
            )
            return
        props = _get(r, "properties")
        if not isinstance(props, Mapping):
            self.unreadable(path, "a nested deployment whose 'properties' is not an object")
            return
        for key in ("templateLink", "parametersLink"):
            if _get(props, key) is not None and not self.allow_links:
                self.refuse(
                    "nested_template_link",
                    path,
                    f"nested deployment {path} has a {key} ({_get(props, key)!r}) that ARM fetches while deploying, "
                    "so its content cannot be checked here. Inline it (Bicep modules are inlined by 'bicep build'), "
                    f"or set {ALLOW_NESTED_TEMPLATE_LINKS_SETTING}=True on the operator to rely on what-if alone",
                )
        if _get(props, "onErrorDeployment") is not None:
            self.refuse(
                "on_error_deployment",
                path,
                f"nested deployment {path} sets onErrorDeployment, which makes ARM redeploy an earlier deployment "
                "whose content this check never saw: remove it (retry the Airflow task instead)",
            )
        supplied = _get(props, "parameters")
        self.expressions(supplied, f"{path}.properties.parameters", level, None)
        inner = _get(props, "template")
        if inner is None:
            return
        if not isinstance(inner, Mapping):
            self.unreadable(path, "a nested 'template' that is not an object")
            return
        options = _get(props, "expressionEvaluationOptions")
        inner_scope = isinstance(options, Mapping) and str(_get(options, "scope") or "").lower() == "inner"
        scope = parse_scope(placement)
        if inner_scope:
            values = {k: evaluate(v, level.ctx) for k, v in _mapping(supplied).items()}
            ctx = ExprContext(
                parameters=parameter_values(_get(inner, "parameters"), values),
                variables=_mapping(_get(inner, "variables")),
                subscription_id=scope.subscription_id,
                resource_group=scope.resource_group,
            )
            symbols: Mapping[str, str] = {}
        else:
            # Outer scope (ARM's default): the inner template sees the parent's parameters, variables and
            # even resourceGroup(), although its resources land in the nested scope.
            ctx, symbols = level.ctx, level.symbols
        self.template(inner, _Level(placement, ctx, f"{path}.properties.template", level.depth + 1, symbols))

    # -- other resources ----------------------------------------------------------------------------

    def existing(self, r: Mapping[str, Any], path: str, level: _Level) -> None:
        resolved = self.scope_props(r, path, level, "reference_unresolved")
        if resolved is None:
            return
        placement = _placement(level.placement, resolved)
        if placement is None or self.fence.where(placement) in ("outside", "invalid"):
            self.refuse(
                "existing_outside_scope",
                path,
                f"{path} uses an existing resource in {placement or resolved}, outside {self.both_fences()}; add "
                f"that scope to {ALLOWED_REFERENCE_SCOPES_SETTING} on the connection if using it is intended",
            )

    def extension_scope(self, r: Mapping[str, Any], path: str, level: _Level) -> None:
        raw = _get(r, "scope")
        if raw is None:
            return
        value = evaluate(raw, level.ctx) if raw is not _AMBIGUOUS else UNRESOLVED
        if not isinstance(value, str):
            self.refuse(
                "scope_unresolved",
                path,
                f"{path} is an extension resource whose scope {raw!r} cannot be resolved before the deployment runs, "
                f"so it cannot be shown to stay inside {ALLOWED_SCOPES_SETTING}: use a literal, resourceId() or a "
                "parameter given to the operator",
            )
        elif value.startswith("/") and self.fence.where(value) != "inside":
            self.refuse(
                "extension_outside_scope",
                path,
                f"{path} is an extension resource on {value}, outside the connection's {ALLOWED_SCOPES_SETTING} "
                f"({', '.join(map(str, self.fence.write))}); add that scope to {ALLOWED_SCOPES_SETTING} if this "
                "write is intended",
            )

    # -- expressions: ids, reference(), list*() ------------------------------------------------------

    def expressions(self, value: Any, path: str, level: _Level, secure_output: bool | None) -> None:
        """``secure_output``: None for anything but an output, else whether the output is secure."""
        for where, text in _strings(value, path):
            resolved = evaluate(text, level.ctx)
            for at, rid in ids_in(resolved, where) if isinstance(resolved, str) else ():
                if not is_definition_id(rid) and self.fence.where(rid) in ("outside", "invalid"):
                    self.refuse(
                        "reference_outside_scope",
                        at,
                        f"{at} names {rid}, outside {self.both_fences()}; add its scope to "
                        f"{ALLOWED_REFERENCE_SCOPES_SETTING} on the connection if using it is intended",
                    )
        for call, ctx in calls_in(value, level.ctx):
            self.call(call, ctx, path, level, secure_output)

    def call(self, call: Call, ctx: ExprContext, path: str, level: _Level, secure_output: bool | None) -> None:
        name = call.name.lower()
        if name == UNPARSEABLE:
            self.refuse(
                "unparseable_expression",
                path,
                f"{path} holds an expression this check cannot read ({eval_arg(call, 0, ctx)!r}), so calls hidden in "
                "it cannot be checked: simplify it, or compute the value in the DAG and pass it as a parameter",
            )
            return
        if not (name == "reference" or name.startswith("list")):
            return
        target = eval_arg(call, 0, ctx)
        if secure_output is False and (name.startswith("list") or self.secret_bearing(target, level)):
            self.refuse(
                "secret_in_output",
                path,
                f"{path} returns {call.name}() "
                + ("of a nested deployment that calls list*() " if name == "reference" else "")
                + "in a plain output, which the operator pushes to XCom where Viewers read it: declare the output "
                "securestring / secureObject (it is then masked) or drop it",
            )
        if isinstance(target, str) and "/" not in target:
            target = level.symbols.get(target, target)  # a symbolic name, or a resource of this deployment
        if not isinstance(target, str):
            self.refuse(
                "reference_unresolved",
                path,
                f"{path} calls {call.name}() on a resource that cannot be resolved before the deployment runs, so it "
                f"cannot be shown to lie inside {self.both_fences()}: use resourceId() with literal or parameter "
                "arguments",
            )
        elif target.startswith("/"):
            if self.fence.where(target) in ("outside", "invalid"):
                self.refuse(
                    "reference_outside_scope",
                    path,
                    f"{path} calls {call.name}() on {target}, outside {self.both_fences()}; add its scope to "
                    f"{ALLOWED_REFERENCE_SCOPES_SETTING} on the connection if reading it is intended",
                )
            elif name.startswith("list"):
                rtype = resource_type_of(target)
                if rtype:
                    self.linked.append(LinkedAccess(target, f"{rtype}/{call.name}/action", f"{call.name}() in {path}"))

    def secret_bearing(self, target: Any, level: _Level) -> bool:
        """``reference(<nested deployment>)``: does that deployment call list*() anywhere? Its outputs may
        then carry keys (the taint is followed coarsely: any list*() in it counts)."""
        if not isinstance(target, str):
            return False
        name = target.rsplit("/", 1)[-1] if "/deployments/" in ascii_fold(target) else target
        for _key, r in level.resources:
            if not isinstance(r, Mapping) or evaluate(_get(r, "name"), level.ctx) != name:
                continue
            if any(c.name.lower().startswith("list") for c, _ in calls_in(_get(r, "properties"), level.ctx)):
                return True
        return False


def scan_template(
    template: Mapping[str, Any],
    parameters: Mapping[str, Any],
    *,
    target: str,
    fence: Fence,
    allow_nested_template_links: bool = False,
    allow_deployment_scripts: bool = False,
) -> TemplateScan:
    """Every rule the template breaks (see the module doc), and the linked rights it needs.

    :param parameters: the request's parameters in ARM's ``{name: {"value": v}}`` shape.
    :param target: the deployment's own scope (resource group or subscription).
    """
    scope = parse_scope(target)
    ctx = ExprContext(
        parameters=parameter_values(_get(template, "parameters"), parameters),
        variables=_mapping(_get(template, "variables")),
        subscription_id=scope.subscription_id,
        resource_group=scope.resource_group,
    )
    scanner = _Scanner(fence, allow_links=allow_nested_template_links, allow_scripts=allow_deployment_scripts)
    scanner.template(template, _Level(str(scope), ctx, "template", 0))
    return TemplateScan(tuple(scanner.violations), tuple(scanner.linked))
