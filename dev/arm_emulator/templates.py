"""A deliberately tiny ARM template "engine": validation rules and a few expressions.

Validation rule (used by PUT, validate and whatIf):

* ``properties`` must hold ``template`` or ``templateLink`` (else 400 ``InvalidRequestContent``);
* an inline template must be an object with a ``$schema`` string and a ``resources`` array/object
  (else 400 ``InvalidTemplate``);
* every template parameter without ``defaultValue`` must be supplied, and every supplied parameter
  must be declared (else 400 ``InvalidTemplate``), unless ``parametersLink`` is used.

``templateLink`` is accepted without fetching anything (no resources, no outputs).

Expressions: only whole-string ``[parameters('x')]``, ``[variables('x')]``,
``[resourceGroup().name|location|id]``, ``[subscription().subscriptionId|id]`` and
``[deployment().name]`` are evaluated; anything else is returned verbatim.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

_TYPE_NAMES = {
    "string": "String",
    "securestring": "SecureString",
    "int": "Int",
    "bool": "Bool",
    "object": "Object",
    "secureobject": "SecureObject",
    "array": "Array",
}
_SECURE = {"securestring", "secureobject"}


class TemplateError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Context:
    deployment_name: str
    subscription: str | None
    resource_group: str | None
    location: str
    parameters: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)

    @property
    def scope_id(self) -> str:
        if self.subscription and self.resource_group:
            return f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
        if self.subscription:
            return f"/subscriptions/{self.subscription}"
        return ""


@dataclass
class Evaluated:
    template_hash: str
    parameters: dict[str, Any]  # echo shape {"p": {"type": "String", "value": v}}
    resources: list[dict[str, Any]]
    outputs: dict[str, Any]


def _properties(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
        raise TemplateError("InvalidRequestContent", "The request content was invalid: 'properties' is required.")
    props: dict[str, Any] = body["properties"]
    if props.get("template") is None and props.get("templateLink") is None:
        raise TemplateError(
            "InvalidRequestContent",
            "The request content was invalid: 'properties.template' or 'properties.templateLink' is required.",
        )
    return props


def _check_template(template: Any, supplied: dict[str, Any], has_link: bool) -> None:
    prefix = "Deployment template validation failed: "
    if not isinstance(template, dict):
        raise TemplateError("InvalidTemplate", prefix + "the template must be a JSON object.")
    if not isinstance(template.get("$schema"), str):
        raise TemplateError("InvalidTemplate", prefix + "the template is missing the '$schema' property.")
    if not isinstance(template.get("resources"), (list, dict)):
        raise TemplateError("InvalidTemplate", prefix + "the template is missing the 'resources' property.")
    declared = template.get("parameters") or {}
    if not isinstance(declared, dict):
        raise TemplateError("InvalidTemplate", prefix + "'parameters' must be an object.")
    if has_link:
        return
    unknown = sorted(set(supplied) - set(declared))
    if unknown:
        raise TemplateError(
            "InvalidTemplate",
            prefix + f"The template parameters '{', '.join(unknown)}' are not valid; "
            "they are not present in the original template.",
        )
    missing = sorted(
        name
        for name, spec in declared.items()
        if name not in supplied and not (isinstance(spec, dict) and "defaultValue" in spec)
    )
    if missing:
        raise TemplateError(
            "InvalidTemplate",
            prefix + f"The value for the template parameter(s) '{', '.join(missing)}' is not provided.",
        )


def _expression(value: Any, ctx: Context) -> Any:
    if not (isinstance(value, str) and value.startswith("[") and value.endswith("]")):
        return value
    if value.startswith("[["):  # escaped literal
        return value[1:]
    expr = value[1:-1].strip()
    match = re.fullmatch(r"(parameters|variables)\(\s*'([^']*)'\s*\)", expr, re.IGNORECASE)
    if match:
        kind, name = match.group(1).lower(), match.group(2)
        source = ctx.parameters if kind == "parameters" else ctx.variables
        if name in source:
            return _expression(source[name], ctx)
        return value
    simple = {
        "resourcegroup().name": ctx.resource_group,
        "resourcegroup().location": ctx.location if ctx.resource_group else None,
        "resourcegroup().id": ctx.scope_id if ctx.resource_group else None,
        "subscription().subscriptionid": ctx.subscription,
        "subscription().id": f"/subscriptions/{ctx.subscription}" if ctx.subscription else None,
        "deployment().name": ctx.deployment_name,
    }
    result = simple.get(expr.replace(" ", "").lower())
    return value if result is None else result


def evaluate(value: Any, ctx: Context) -> Any:
    """Evaluate supported expressions anywhere inside ``value``."""
    if isinstance(value, dict):
        return {k: evaluate(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate(v, ctx) for v in value]
    return _expression(value, ctx)


def resource_id(scope_id: str, rtype: str, name: str) -> str:
    if rtype.lower() == "microsoft.resources/resourcegroups" and scope_id.startswith("/subscriptions/"):
        sub = scope_id.split("/")[2]
        return f"/subscriptions/{sub}/resourceGroups/{name}"
    namespace, *types = rtype.split("/")
    names = name.split("/")
    segments: list[str] = []
    for i, t in enumerate(types):
        segments += [t, names[i] if i < len(names) else "unknown"]
    return f"{scope_id}/providers/{namespace}/" + "/".join(segments)


def process(body: Any, ctx: Context) -> Evaluated:
    """Validate a deployment request body and evaluate what the emulator needs from it."""
    props = _properties(body)
    raw_params = props.get("parameters") or {}
    if not isinstance(raw_params, dict):
        raise TemplateError("InvalidRequestContent", "The request content was invalid: 'parameters'.")
    supplied = {k: (v.get("value") if isinstance(v, dict) else v) for k, v in raw_params.items()}
    template = props.get("template")
    template_hash = str(
        int(
            hashlib.sha256(json.dumps(template or props.get("templateLink"), sort_keys=True).encode()).hexdigest()[:15],
            16,
        )
    )
    if template is None:
        return Evaluated(template_hash, {}, [], {})
    _check_template(template, supplied, props.get("parametersLink") is not None)
    declared: dict[str, Any] = template.get("parameters") or {}
    values = {
        name: supplied[name] if name in supplied else spec.get("defaultValue")
        for name, spec in declared.items()
        if isinstance(spec, dict)
    }
    ctx.parameters = values
    ctx.variables = template.get("variables") or {}
    values = {k: evaluate(v, ctx) for k, v in values.items()}
    ctx.parameters = values

    echoed: dict[str, Any] = {}
    for name, spec in declared.items():
        ptype = str(spec.get("type", "string")).lower() if isinstance(spec, dict) else "string"
        entry: dict[str, Any] = {"type": _TYPE_NAMES.get(ptype, ptype)}
        if ptype not in _SECURE:
            entry["value"] = values.get(name)
        echoed[name] = entry

    raw_resources = template["resources"]
    items = list(raw_resources.values()) if isinstance(raw_resources, dict) else list(raw_resources)
    resources: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict) or item.get("existing") or "type" not in item:
            continue
        resolved = evaluate({k: v for k, v in item.items() if k not in ("resources", "dependsOn")}, ctx)
        name = str(resolved.get("name", "unnamed"))
        resolved["name"] = name
        resolved["id"] = resource_id(ctx.scope_id, str(resolved["type"]), name)
        resources.append(resolved)

    outputs: dict[str, Any] = {}
    for name, spec in (template.get("outputs") or {}).items():
        if not isinstance(spec, dict):
            continue
        otype = str(spec.get("type", "string")).lower()
        out: dict[str, Any] = {"type": _TYPE_NAMES.get(otype, otype)}
        if otype not in _SECURE:
            out["value"] = evaluate(spec.get("value"), ctx)
        outputs[name] = out
    return Evaluated(template_hash, echoed, resources, outputs)
