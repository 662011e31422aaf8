"""The judgement half of a preflight: the fence, the what-if result, the over-privilege findings and the
decision of the modes. Reads nothing from ARM: it judges the facts it is handed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from airflow_identity_provider.azure.preflight.facts import Facts, subscription_scope
from airflow_identity_provider.azure.preflight.report import AccessReport, PreflightLogger, PreflightRefused
from airflow_identity_provider.azure.rules.arm_json import as_plain
from airflow_identity_provider.azure.rules.overprivilege import (
    ESCALATION_ACTION,
    Finding,
    broad_assignments,
    escalation_findings,
    unused_breadth,
)
from airflow_identity_provider.azure.rules.preflight_rules import (
    ALLOWED_SCOPES_SETTING,
    Violation,
    WhatIfChange,
    parse_what_if,
)
from airflow_identity_provider.azure.rules.rbac import PermissionVerdict, action_matches
from airflow_identity_provider.azure.rules.scopes import ArmScope, ScopeError, first_containing, parse_scope

__all__ = ["check_fence", "decide", "findings", "read_what_if", "refusal_message"]


def check_fence(
    target_scope: str, fence: tuple[str, ...], operation: str, conn_id: str, log: PreflightLogger
) -> ArmScope:
    """Step 1, offline: the target parsed, or :class:`PreflightRefused` when it is not inside the fence."""

    def refuse(rule: str, reason: str, target: str) -> NoReturn:
        report = AccessReport(
            principal_id=None,
            target_scope=target,
            fence=fence,
            operation=operation,
            required_actions=(),
            verdict=None,
            violations=(Violation(rule, target, reason),),
            findings=(),
            arm_calls=0,
        )
        log.error("\n".join(report.summary_lines()))
        raise PreflightRefused(refusal_message(report, conn_id, [reason]), report, reason=rule, reasons=[reason])

    try:
        target = parse_scope(target_scope)
    except ScopeError as err:
        refuse("invalid_target", f"the target scope cannot be checked against the fence: {err}", str(target_scope))
    if not fence:
        refuse(
            "no_fence",
            f"connection {conn_id!r} declares no {ALLOWED_SCOPES_SETTING}, and writes are never unfenced: set "
            f"the connection extra {ALLOWED_SCOPES_SETTING} to the scopes this identity may write to, e.g. "
            f'["/subscriptions/<subscription id>/resourceGroups/<resource group>"]',
            str(target),
        )
    try:
        inside = first_containing(target, fence)
    except ScopeError as err:  # the connection validated its scopes; this is belt and braces
        refuse(
            "invalid_fence", f"connection {conn_id!r} has an invalid {ALLOWED_SCOPES_SETTING}: {err}", str(target)
        )
    if inside is None:
        refuse(
            "outside_scope",
            f"target scope {target} is outside connection {conn_id!r}'s {ALLOWED_SCOPES_SETTING} "
            f"({', '.join(fence)}): target a scope inside them, or ask the connection's owner to add this "
            f"scope to the connection extra {ALLOWED_SCOPES_SETTING}",
            str(target),
        )
    return target


def read_what_if(what_if: Any) -> tuple[tuple[WhatIfChange, ...], list[Violation]]:
    """The changes of a what-if result, and the violations of a failed or unreadable one."""
    payload = as_plain(what_if)
    violations: list[Violation] = []
    if isinstance(payload, Mapping):
        # A failed what-if predicts nothing, so "no changes" would prove nothing: refuse.
        status = payload.get("status")
        if isinstance(status, str) and status.lower() not in ("succeeded", ""):
            error = payload.get("error")
            violations.append(
                Violation(
                    "what_if_failed",
                    "",
                    f"what-if ended {status!r}, so the deployment's changes are unknown: {error!r}",
                )
            )
    try:
        changes = parse_what_if(payload)
    except ValueError as err:
        violations.append(Violation("invalid_what_if", "", f"the what-if result cannot be read: {err}"))
        changes = ()
    return changes, violations


def findings(
    facts: Facts, fence: tuple[str, ...], required: tuple[str, ...], target: ArmScope, overprivilege: str
) -> list[Finding]:
    """The over-privilege findings the facts support (none with ``overprivilege='ignore'``)."""
    if overprivilege == "ignore":
        return []
    findings: list[Finding] = []
    if facts.assignments is not None:
        findings += broad_assignments(facts.assignments, fence)
    entries = facts.entries if facts.entries is not None else facts.subscription_entries
    if entries is not None:
        scope = facts.permission_scope or str(target)
        findings += unused_breadth(entries, required, scope=scope)
        escalation = escalation_findings(entries, scope=scope)
        if facts.subscription_entries is not None and facts.subscription_entries is not entries:
            escalation = escalation or escalation_findings(
                facts.subscription_entries, scope=subscription_scope(target) or ""
            )
        needed = any(action_matches(a, ESCALATION_ACTION) for a in required)
        for f in escalation:
            if needed:
                # The what-if itself assigns roles (allow_rbac_changes=True): the right is needed, so it is
                # reported, not treated as excess.
                f = dataclasses.replace(
                    f,
                    severity="medium",
                    message=f.message + " (this task needs it: its deployment changes role assignments)",
                )
            findings.append(f)
    return findings

def decide(
    report: AccessReport,
    conn_id: str,
    facts: Facts,
    *,
    least_privilege: str,
    overprivilege: str,
    log: PreflightLogger,
) -> None:
    """Step 6: refuse with every reason, or log the report (warning when something is not clean)."""
    reasons: list[str] = [v.message for v in report.violations]
    warnings = False
    verdict = report.verdict
    if verdict is not None and not verdict.ok:
        lp_reasons = _verdict_reasons(report, verdict, facts)
        if least_privilege == "enforce":
            reasons += lp_reasons
        else:
            warnings = True
    for action, resource_id in report.linked_missing:
        reason = (
            f"the identity (oid {report.principal_id or 'unknown'}) is not allowed {action} on {resource_id}, "
            "which the deployment uses: assign it a role granting that action on that resource (e.g. Managed "
            "Identity Operator for an identity, a custom role with exactly this action), or set "
            "least_privilege='warn' on the operator"
        )
        if least_privilege == "enforce":
            reasons.append(reason)
        else:
            warnings = True
    high = [f for f in report.findings if f.severity == "high"]
    if high and overprivilege == "fail":
        reasons += [f"{f.message} (overprivilege='fail' on the operator; 'warn' only reports this)" for f in high]
    elif overprivilege == "warn" and any(f.severity in ("high", "medium") for f in report.findings):
        warnings = True
    block = "\n".join(report.summary_lines())
    if reasons:
        log.error(block)
        raise PreflightRefused(refusal_message(report, conn_id, reasons), report, reasons=reasons)
    if warnings or report.notes:
        log.warning(block)
    else:
        log.info(block)

def _verdict_reasons(report: AccessReport, verdict: PermissionVerdict, facts: Facts) -> list[str]:
    reasons: list[str] = []
    if verdict.missing:
        where = report.permission_scope or report.target_scope
        reasons.append(
            f"the identity (oid {report.principal_id or 'unknown'}) is not allowed {', '.join(verdict.missing)} "
            f"at {where}: assign it a role that grants these actions at {report.target_scope} (a custom role "
            "with exactly the required actions is the least-privileged choice), or set least_privilege='warn' "
            "on the operator to proceed on ARM's own checks"
        )
    scopes = {d.name: str(d.scope) for d in facts.denies or ()}
    for action, name in verdict.denied:
        reasons.append(
            f"{action} is denied to this identity by deny assignment {name!r} at {scopes.get(name, '?')}; no "
            "role can override a deny assignment: its owner must add the identity to excludePrincipals or "
            "remove it"
        )
    return reasons

def refusal_message(report: AccessReport, conn_id: str, reasons: Iterable[str]) -> str:
    head = (
        f"ARM preflight refused {report.operation!r} at {report.target_scope} "
        f"(connection {conn_id!r}, principal {report.principal_id or 'unknown'}):"
    )
    body = [f"  - {r}" for r in reasons]
    tail = [f"  note: {n}" for n in report.notes]
    return "\n".join([head, *body, *tail])
