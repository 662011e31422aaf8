"""A deliberately tiny ARM template "engine": validation rules, expressions and expansion.

Validation rule (used by PUT, validate and whatIf):

* ``properties`` must hold ``template`` or ``templateLink`` (else 400 ``InvalidRequestContent``);
* an inline template must be an object with a ``$schema`` string and a ``resources`` array/object
  (else 400 ``InvalidTemplate``);
* every template parameter without ``defaultValue`` must be supplied, and every supplied parameter
  must be declared (else 400 ``InvalidTemplate``), unless ``parametersLink`` is used.

A ``templateLink`` the resolver can fetch (this emulator's ``/linked-templates/…`` route, a stored
template-spec version) is treated like an inline template; any other one is accepted without
fetching anything (no resources, no outputs).

Expressions: see ``expressions.py``; ``copy`` loops and nested deployments: see ``expansion.py``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .expansion import Expander, LinkResolver, Locator, bind_parameters, supplied_values
from .expressions import Context as Context
from .expressions import evaluate as evaluate
from .expressions import resource_id as resource_id

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
class Evaluated:
    template_hash: str
    parameters: dict[str, Any]  # echo shape {"p": {"type": "String", "value": v}}
    resources: list[dict[str, Any]]
    outputs: dict[str, Any]
    ignored: list[bool] = field(default_factory=list)  # parallel to resources (what-if nesting limit)
    diagnostics: list[dict[str, Any]] = field(default_factory=list)


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


def _no_link(link: dict[str, Any]) -> dict[str, Any] | None:
    return None


def _no_location(subscription: str, group: str) -> str | None:
    return None


def template_hash(template: Any) -> str:
    return str(int(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:15], 16))


def process(
    body: Any,
    ctx: Context,
    *,
    resolve: LinkResolver = _no_link,
    locate: Locator = _no_location,
    max_depth: int | None = None,
) -> Evaluated:
    """Validate a deployment request body and evaluate what the emulator needs from it.

    ``resolve`` turns a ``templateLink`` into a template (``None``: not fetchable, accepted as is);
    ``locate`` gives a resource group's location; ``max_depth`` is the what-if nesting limit.
    """
    props = _properties(body)
    raw_params = props.get("parameters") or {}
    if not isinstance(raw_params, dict):
        raise TemplateError("InvalidRequestContent", "The request content was invalid: 'parameters'.")
    supplied = supplied_values(raw_params)
    template = props.get("template")
    if template is None and isinstance(props.get("templateLink"), dict):
        template = resolve(props["templateLink"])
    if template is None:
        return Evaluated(template_hash(props.get("templateLink")), {}, [], {})
    _check_template(template, supplied, props.get("parametersLink") is not None)
    declared: dict[str, Any] = template.get("parameters") or {}
    values = bind_parameters(template, supplied, ctx)

    echoed: dict[str, Any] = {}
    for name, spec in declared.items():
        ptype = str(spec.get("type", "string")).lower() if isinstance(spec, dict) else "string"
        entry: dict[str, Any] = {"type": _TYPE_NAMES.get(ptype, ptype)}
        if ptype not in _SECURE:
            entry["value"] = values.get(name)
        echoed[name] = entry

    expansion = Expander(resolve, locate, max_depth).expand(template, ctx)

    outputs: dict[str, Any] = {}
    for name, spec in (template.get("outputs") or {}).items():
        if not isinstance(spec, dict):
            continue
        otype = str(spec.get("type", "string")).lower()
        out: dict[str, Any] = {"type": _TYPE_NAMES.get(otype, otype)}
        if otype not in _SECURE:
            out["value"] = evaluate(spec.get("value"), ctx)
        outputs[name] = out
    return Evaluated(
        template_hash(template), echoed, expansion.resources, outputs, expansion.ignored, expansion.diagnostics
    )
