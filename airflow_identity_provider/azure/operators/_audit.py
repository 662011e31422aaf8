"""The audit event of each ARM preflight decision an operator takes: which task, through which connection, as
which principal, at which scope, allowed or refused and why (event ``arm_preflight`` of the shared leaf
:mod:`airflow_identity_provider.audit`, where the fields are listed).

One event per decision before an ARM write: the full preflight (allowed or refused), and every refusal that
stops a task earlier (the offline fence, a template spec outside the fence or changed since it was checked,
a group whose contents cannot be checked). A fence check that passes decides nothing yet and is not an event.
The event never holds credential material: no token, and the connection's secrets are registered with the
leaf's redaction (masked should a message ever quote one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_identity_provider import audit
from airflow_identity_provider.azure.hooks.base import secret_fragments

if TYPE_CHECKING:
    from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerHook
    from airflow_identity_provider.azure.preflight.report import AccessReport

__all__ = ["TASK_FIELDS", "preflight_event", "report_warnings", "task_fields"]

TASK_FIELDS = ("dag_id", "task_id", "run_id", "try_number", "map_index")


def task_fields(identity: Sequence[object] | None) -> dict[str, Any]:
    """``task_identity(context)`` as event fields (empty outside a task)."""
    return dict(zip(TASK_FIELDS, identity, strict=True)) if identity else {}


def report_warnings(report: AccessReport) -> list[str]:
    """What an allowed but not clean preflight let through (the warn modes), one line each."""
    warnings: list[str] = []
    verdict = report.verdict
    if verdict is not None and verdict.missing:
        warnings.append(f"missing {', '.join(verdict.missing)} at {report.permission_scope or report.target_scope}")
    warnings += [f"{action} denied by deny assignment {name!r}" for action, name in verdict.denied] if verdict else []
    warnings += [f"missing {action} on {resource}" for action, resource in report.linked_missing]
    warnings += [f"[{f.severity}] {f.message}" for f in report.findings if f.severity in ("high", "medium")]
    return warnings + [f"note: {n}" for n in report.notes]


def _principal(hook: AzureResourceManagerHook) -> dict[str, Any]:
    try:
        settings = hook.settings
    except Exception:  # a connection that cannot be read: the event still says which one
        return {"conn_id": hook.azure_resource_manager_conn_id}
    audit.register_secret(*secret_fragments(settings))
    identity = settings.managed_identity
    return {
        "conn_id": settings.conn_id,
        "auth_type": settings.auth_type.value,
        "tenant": settings.tenant_id,
        "client_id": settings.client_id or (identity.value if identity and identity.kind == "client_id" else None),
        "managed_identity": f"{identity.kind}:{identity.value}" if identity and identity.kind != "client_id" else None,
    }


def preflight_event(
    hook: AzureResourceManagerHook,
    *,
    task: Sequence[object] | None,
    operation: str,
    target_scope: str,
    check: str,
    report: AccessReport | None = None,
    refused: BaseException | None = None,
    reason: str | None = None,
    modes: Mapping[str, Any] | None = None,
) -> str:
    """Emit the decision: refused when ``refused`` is given (a PreflightRefused or the operator's own
    refusal), else allowed with the report's warnings."""
    if report is None and refused is not None:
        report = getattr(refused, "report", None)
    reasons: list[str] = []
    if refused is not None:
        reasons = list(getattr(refused, "reasons", None) or [str(refused)])
    return audit.emit(
        "arm_preflight",
        outcome="failure" if refused is not None else "success",
        reason=(reason or getattr(refused, "reason", "preflight_refused")) if refused is not None else None,
        verdict="refused" if refused is not None else "allowed",
        **task_fields(task),
        **_principal(hook),
        principal_id=report.principal_id if report else None,
        scope=report.target_scope if report else target_scope,
        operation=operation,
        check=check,
        reasons=reasons or None,
        warnings=(report_warnings(report) or None) if report is not None and refused is None else None,
        required_actions=list(report.required_actions) if report and report.required_actions else None,
        correlation_id=hook.correlation_id,
        **(modes or {}),
    )
