"""What a preflight found (:class:`AccessReport`), how it refuses (:class:`PreflightRefused`) and where it logs
(:class:`PreflightLogger`). SDK-free, so operators import it when their DAG file is parsed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from airflow_identity_provider.azure.rules.overprivilege import Finding
from airflow_identity_provider.azure.rules.preflight_rules import ALLOWED_SCOPES_SETTING, Violation
from airflow_identity_provider.azure.rules.rbac import PermissionVerdict
from airflow_identity_provider.azure.rules.template_terms import LinkedAccess
from airflow_identity_provider.azure.rules.what_if_diagnostics import Diagnostic
from airflow_identity_provider.errors import Refusal
from airflow_identity_provider.version_compat import AirflowFailException

__all__ = [
    "LEAST_PRIVILEGE_MODES",
    "OVERPRIVILEGE_MODES",
    "AccessReport",
    "LeastPrivilegeMode",
    "OverprivilegeMode",
    "PreflightLogger",
    "PreflightRefused",
]

LeastPrivilegeMode = Literal["enforce", "warn", "off"]
OverprivilegeMode = Literal["fail", "warn", "ignore"]
LEAST_PRIVILEGE_MODES: tuple[str, ...] = ("enforce", "warn", "off")
OVERPRIVILEGE_MODES: tuple[str, ...] = ("fail", "warn", "ignore")


class PreflightLogger(Protocol):
    """Where a Preflight writes its report: anything with ``info``/``warning``/``error(msg, *args)``, such as
    a ``logging.Logger`` or an Airflow task's (structlog) ``self.log``."""

    def info(self, msg: str, /, *args: Any) -> None: ...

    def warning(self, msg: str, /, *args: Any) -> None: ...

    def error(self, msg: str, /, *args: Any) -> None: ...


class PreflightRefused(Refusal, AirflowFailException):
    """The preflight refused the write. No retries: a refusal does not change by trying again.

    The message lists every reason and the setting or role that would change the outcome;
    :attr:`report` is the full :class:`AccessReport`. ``reason`` is the rule of a fence refusal
    (``outside_scope``, ``no_fence``...), else ``preflight_refused``; :attr:`reasons` are the reasons one by
    one (the audit event lists them), by default the message."""

    def __init__(
        self,
        message: str,
        report: AccessReport | None = None,
        *,
        reason: str = "preflight_refused",
        reasons: Sequence[str] = (),
    ) -> None:
        super().__init__(reason, message)
        self.report = report
        self.reasons: tuple[str, ...] = tuple(reasons) or (message,)


@dataclass(frozen=True)
class AccessReport:
    """What one preflight found. Operators push :meth:`to_dict` to XCom."""

    principal_id: str | None
    """Object id of the identity (the token's ``oid``); None when the token carries none or the check
    stopped before the token was needed (fence refusal)."""
    target_scope: str
    fence: tuple[str, ...]
    """The connection's ``allowed_scopes``."""
    operation: str
    required_actions: tuple[str, ...]
    """Operation defaults + the caller's extra actions + the actions derived from what-if."""
    verdict: PermissionVerdict | None
    """None when ``least_privilege='off'`` (permissions were not read) or the check stopped earlier."""
    violations: tuple[Violation, ...]
    findings: tuple[Finding, ...]
    arm_calls: int
    """ARM requests this check sent (every page and retry counts; token requests do not). 0 on a cache hit."""
    permission_scope: str | None = None
    """Where the effective permissions were read (the target, or its subscription, see the notes)."""
    cached: bool = False
    """True when the ARM facts came from this Preflight's cache (a retried check in the same task)."""
    notes: tuple[str, ...] = ()
    """Things the reader should know: reads ARM refused, fallbacks taken."""
    diagnostics: tuple[Diagnostic, ...] = ()
    """What-if's own diagnostics, verbatim."""
    linked: tuple[LinkedAccess, ...] = ()
    """Rights on resources the deployment uses without writing them (listKeys, subnet join, identity assign)."""
    linked_missing: tuple[tuple[str, str], ...] = ()
    """``(action, resource id)`` of the linked rights the identity lacks there."""

    @property
    def ok(self) -> bool:
        """Clean: no violation, every required action allowed and not denied (when evaluated), and no
        high-severity over-privilege finding. A write can proceed with ``ok=False`` in the warn modes."""
        return (
            not self.violations
            and not self.linked_missing
            and (self.verdict is None or self.verdict.ok)
            and not any(f.severity == "high" for f in self.findings)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable (XCom)."""
        verdict: dict[str, Any] | None = None
        if self.verdict is not None:
            verdict = {
                "ok": self.verdict.ok,
                "allowed": list(self.verdict.allowed),
                "missing": list(self.verdict.missing),
                "denied": [{"action": a, "deny_assignment": name} for a, name in self.verdict.denied],
            }
        return {
            "ok": self.ok,
            "principal_id": self.principal_id,
            "target_scope": self.target_scope,
            "fence": list(self.fence),
            "operation": self.operation,
            "required_actions": list(self.required_actions),
            "verdict": verdict,
            "violations": [
                {"rule": v.rule, "resource_id": v.resource_id, "message": v.message} for v in self.violations
            ],
            "findings": [_jsonable(f.to_dict()) for f in self.findings],
            "arm_calls": self.arm_calls,
            "permission_scope": self.permission_scope,
            "cached": self.cached,
            "notes": list(self.notes),
            "what_if_diagnostics": [d.to_dict() for d in self.diagnostics],
            "linked_access": [{"resource_id": x.resource_id, "action": x.action, "why": x.why} for x in self.linked],
            "linked_missing": [{"action": a, "resource_id": r} for a, r in self.linked_missing],
        }

    def summary_lines(self) -> list[str]:
        """A readable block, one fact per line (the task log shows it as is)."""
        lines = [
            f"ARM preflight: {self.operation} at {self.target_scope}",
            f"  fence ({ALLOWED_SCOPES_SETTING}): {', '.join(self.fence) or '(none)'}",
            f"  principal (oid): {self.principal_id or 'unknown'}",
            f"  required actions: {', '.join(self.required_actions) or '(none)'}",
        ]
        v = self.verdict
        if v is None:
            lines.append("  permissions: not checked (least_privilege='off' or stopped earlier)")
        else:
            where = f" at {self.permission_scope}" if self.permission_scope else ""
            if v.ok:
                lines.append(f"  permissions: all {len(v.allowed)} required actions allowed{where}")
            else:
                if v.missing:
                    lines.append(f"  permissions: MISSING{where}: {', '.join(v.missing)}")
                for action, name in v.denied:
                    lines.append(f"  permissions: DENIED {action} by deny assignment {name!r}")
        lines.extend(f"  what-if diagnostic: {d.line()}" for d in self.diagnostics)
        lines.extend(f"  linked access: {x.action} on {x.resource_id} ({x.why})" for x in self.linked)
        lines.extend(f"  linked access: MISSING {a} on {r}" for a, r in self.linked_missing)
        if self.violations:
            lines.append(f"  violations ({len(self.violations)}):")
            lines.extend(f"    - [{x.rule}] {x.message}" for x in self.violations)
        else:
            lines.append("  violations: none")
        if self.findings:
            lines.append(f"  over-privilege findings ({len(self.findings)}):")
            lines.extend(f"    - [{f.severity}] {f.message}" for f in self.findings)
        else:
            lines.append("  over-privilege findings: none")
        lines.extend(f"  note: {n}" for n in self.notes)
        lines.append(f"  ARM reads: {self.arm_calls}{' (cached facts)' if self.cached else ''}")
        lines.append(f"  result: {'OK' if self.ok else 'NOT CLEAN'}")
        return lines


def _jsonable(value: Any) -> Any:
    """Finding details are built from strings, lists and bools, but a Mapping proxy or tuple may slip in."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
