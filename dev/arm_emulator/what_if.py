"""The what-if result: computed from the expanded template, parts overridable from the control plane.

``set_what_if_changes`` / ``set_what_if_result`` store, per deployment name (or ``"*"``), any of
``changes``, ``potentialChanges`` and ``diagnostics``; a part configured for the name wins over one
configured for ``"*"``, which wins over the computed one. Computed: every expanded resource becomes a
``Create`` change (``Ignore`` beyond the nesting limit) with ``after`` = the evaluated resource minus
``resources``/``dependsOn``; ``potentialChanges`` is empty; ``diagnostics`` holds the
``NestedDeploymentShortCircuited`` warnings.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from . import lro, templates
from .state import ResourceGroup, State
from .web import Request, Response

PARTS = ("changes", "potentialChanges", "diagnostics")
_ANY_SUB = re.compile(r"^/subscriptions/(?P<sub>[^/]+)", re.I)


def configure(state: State, name: str, parts: dict[str, Any]) -> None:
    entry = state.what_if_results.setdefault(name.lower(), {})
    for part, value in parts.items():
        if part not in PARTS:
            raise ValueError(f"unknown what-if part {part!r}")
        if value is not None:
            if not isinstance(value, list):
                raise TypeError(f"{part} must be a list")
            entry[part] = list(value)


def result(state: State, name: str, evaluated: templates.Evaluated) -> dict[str, Any]:
    ignored = evaluated.ignored or [False] * len(evaluated.resources)
    computed: dict[str, list[Any]] = {
        "changes": [
            {"resourceId": r["id"], "changeType": "Ignore" if skip else "Create", "after": dict(r)}
            for r, skip in zip(evaluated.resources, ignored, strict=True)
        ],
        "potentialChanges": [],
        "diagnostics": list(evaluated.diagnostics),
    }
    own = state.what_if_results.get(name.lower(), {})
    star = state.what_if_results.get("*", {})
    props = {
        part: copy.deepcopy(own[part] if part in own else star[part]) if part in own or part in star else value
        for part, value in computed.items()
    }
    return {"status": "Succeeded", "properties": props}


def respond(
    state: State,
    req: Request,
    scope: str,
    name: str,
    rg: ResourceGroup | None,
    body: Any,
    evaluated: templates.Evaluated,
) -> Response:
    final = result(state, name, evaluated)
    location = str(body.get("location") or (rg.location if rg else "westeurope"))
    sub = _ANY_SUB.match(scope)
    base = f"/subscriptions/{sub.group('sub')}" if sub else ""
    return lro.start_location_operation(
        state, req, f"{base}/providers/Microsoft.Resources/locations/{location}/operationResults", 200, final
    )
