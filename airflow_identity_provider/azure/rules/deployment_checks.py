"""Everything the preflight judges about a deployment's *content*, offline: the what-if changes (fence,
deletes, RBAC, change types, ``Ignore``), the what-if diagnostics, the template itself (nested scopes,
links, deployment scripts, outputs) and the ids it references. Pure: the preflight passes what it has.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_identity_provider.azure.rules.fence_judgement import Fence
from airflow_identity_provider.azure.rules.preflight_rules import Violation, WhatIfChange, check_changes
from airflow_identity_provider.azure.rules.references import check_deployment_scripts, check_references
from airflow_identity_provider.azure.rules.template_scan import scan_template
from airflow_identity_provider.azure.rules.template_terms import LinkedAccess
from airflow_identity_provider.azure.rules.what_if_diagnostics import Diagnostic, check_diagnostics

__all__ = ["ContentOptions", "ContentVerdict", "judge_content", "secure_parameter_names"]

_SECURE_TYPES = frozenset({"securestring", "secureobject"})
_MIN_SECRET = 3  # shorter strings would turn every message into asterisks; they are too short to matter


@dataclass(frozen=True)
class ContentOptions:
    """The operator's switches; every one is off by default, i.e. refuse."""

    allow_delete_changes: bool = False
    allow_rbac_changes: bool = False
    allowed_change_types: Collection[str] | None = None
    allow_what_if_diagnostics: bool = False
    allow_deployment_scripts: bool = False
    allow_nested_template_links: bool = False
    secure_parameters: Collection[str] = ()


@dataclass(frozen=True)
class ContentVerdict:
    violations: tuple[Violation, ...]
    linked: tuple[LinkedAccess, ...]
    diagnostics: tuple[Diagnostic, ...]


def secure_parameter_names(template: Any, extra: Collection[str] = ()) -> tuple[str, ...]:
    """Parameters the template declares ``securestring``/``secureObject``, plus the ones the operator is told."""
    names = list(extra)
    declared = template.get("parameters") if isinstance(template, Mapping) else None
    if isinstance(declared, Mapping):
        names += [
            str(n)
            for n, spec in declared.items()
            if isinstance(spec, Mapping) and str(spec.get("type", "")).lower() in _SECURE_TYPES
        ]
    return tuple(dict.fromkeys(names))


def judge_content(
    *,
    changes: tuple[WhatIfChange, ...],
    diagnostics: tuple[Diagnostic, ...],
    template: Mapping[str, Any] | None,
    parameters: Mapping[str, Any],
    target: str,
    fence: Fence,
    options: ContentOptions,
) -> ContentVerdict:
    """All content violations, in a stable order, and the linked rights the deployment needs.

    :param template: the template ARM will deploy (inline, or the fetched link / template spec content);
        None when it is not known, in which case only what-if speaks for it.
    """
    violations = check_changes(
        changes,
        fence.write,
        allow_delete=options.allow_delete_changes,
        allow_rbac_changes=options.allow_rbac_changes,
        allowed_change_types=options.allowed_change_types,
    )
    violations += check_diagnostics(diagnostics, allow=options.allow_what_if_diagnostics)
    violations += check_deployment_scripts(changes, allow=options.allow_deployment_scripts)
    linked: list[LinkedAccess] = []
    secure = secure_parameter_names(template, options.secure_parameters)
    if template is not None:
        scan = scan_template(
            template,
            parameters,
            target=target,
            fence=fence,
            allow_nested_template_links=options.allow_nested_template_links,
            allow_deployment_scripts=options.allow_deployment_scripts,
        )
        violations += scan.violations
        linked += scan.linked
    ref_violations, ref_linked = check_references(changes, parameters, fence, secure_parameters=secure)
    violations += ref_violations
    linked += ref_linked
    # The same deploymentScripts resource is found by what-if and by the template scan: report it once.
    unique = tuple({(v.rule, v.message): v for v in violations}.values())
    hidden = _redact([v for v in unique], _secret_strings(parameters, secure))
    return ContentVerdict(tuple(hidden), tuple(dict.fromkeys(linked)), diagnostics)


def _secret_strings(parameters: Mapping[str, Any], secure: Collection[str]) -> list[str]:
    """Every string inside a secure parameter's value (a secureObject's leaves too), longest first."""
    wanted = {n.lower() for n in secure}
    out: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str) and len(value) >= _MIN_SECRET:
            out.append(value)
        elif isinstance(value, Mapping):
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)

    for name, wrapped in parameters.items():
        if name.lower() in wanted and isinstance(wrapped, Mapping):
            walk(wrapped.get("value"))
    return sorted(set(out), key=len, reverse=True)


def _redact(violations: list[Violation], secrets: list[str]) -> list[Violation]:
    """Messages are built from resolved expressions, which may contain a secure parameter's value: they go
    to the task log, the exception and the access report in XCom, so the value is replaced by ***."""
    if not secrets:
        return violations
    out = []
    for v in violations:
        message, resource = v.message, v.resource_id
        for secret in secrets:
            message, resource = message.replace(secret, "***"), resource.replace(secret, "***")
        out.append(Violation(v.rule, resource, message))
    return out
