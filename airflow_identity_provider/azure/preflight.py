"""Least-privilege preflight for ARM writes: gather the facts from ARM, judge them with the pure rules.

:class:`Preflight` is the only part of the least-privilege
machinery that talks to ARM; what the facts *mean* lives in :mod:`.rbac` (scopes, wildcards, deny
assignments, over-privilege findings) and :mod:`.preflight_rules` (actions per operation, what-if rules).

One :meth:`Preflight.check`, in this order:

1. **Fence** (no network). The target scope must equal or lie inside one of the connection's
   ``allowed_scopes``, compared segment by segment (``rg1`` never admits ``rg10``). An empty fence refuses
   every write. This step is never optional, whatever ``least_privilege`` says.
2. **What-if** (no network; the operator passes the result it already has). Changes outside the fence,
   deletes, access-control changes, unwanted change types and Complete mode are violations. They are
   always refused; the operator's ``allow_*`` arguments are the way to permit them. The types the
   deployment writes or deletes become required actions.
3. **Principal** (no network): the ``oid`` claim of the ARM token the hook's credential already holds.
4. **ARM reads**, at most three in the usual case, counted in :attr:`AccessReport.arm_calls`:
   ``permissions`` at the target (or subscription), ``denyAssignments?$filter=atScope()`` and, for
   over-privilege, ``roleAssignments?$filter=assignedTo('{oid}')`` at the subscription.
5. **Verdict** with :func:`rbac.evaluate` and findings with :func:`rbac.broad_assignments`,
   :func:`rbac.unused_breadth` and :func:`rbac.escalation_findings`.
6. **Modes**: ``least_privilege`` (``enforce``/``warn``/``off``) governs missing or denied actions;
   ``overprivilege`` (``fail``/``warn``/``ignore``) governs high-severity findings.

Known limits (documented rather than papered over):

- Derived actions are evaluated at the target scope. A what-if change in another scope inside the fence
  (a nested deployment into a second allowed resource group) is admitted by the fence, but its
  permissions are only checked by ARM itself (what-if/validate with ``validationLevel: Provider``).
- Deny assignments are read with ``atScope()`` (at and above the target), so a deny on a single child
  resource is left to ARM. For ``resource_group_write`` they are read at the subscription unless the
  group is known to exist, because the group's own path 404s before it is created.
- Group-inherited role assignments are found by ``assignedTo()``; deny assignments naming a group the
  identity is in are not resolved (that would need Microsoft Graph).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NoReturn, Protocol

from airflow.sdk.exceptions import AirflowFailException
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from airflow_identity_provider.azure.deployment_checks import ContentOptions, judge_content
from airflow_identity_provider.azure.fence_judgement import Fence
from airflow_identity_provider.azure.preflight_rules import (
    ALLOWED_SCOPES_SETTING,
    Violation,
    WhatIfChange,
    check_mode,
    derived_actions,
    parse_what_if,
    required_actions,
)
from airflow_identity_provider.azure.rbac import (
    ESCALATION_ACTION,
    ArmScope,
    DenyAssignment,
    Finding,
    PermissionEntry,
    PermissionVerdict,
    RoleAssignment,
    ScopeError,
    action_matches,
    broad_assignments,
    escalation_findings,
    evaluate,
    first_containing,
    parse_permissions,
    parse_scope,
    unused_breadth,
)
from airflow_identity_provider.azure.scopes import ascii_fold
from airflow_identity_provider.azure.template_terms import LinkedAccess
from airflow_identity_provider.azure.what_if_diagnostics import Diagnostic, parse_diagnostics

if TYPE_CHECKING:
    from azure.mgmt.authorization import AuthorizationManagementClient

    from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerHook

__all__ = [
    "AUTHORIZATION_API_VERSION",
    "AccessReport",
    "LeastPrivilegeMode",
    "OverprivilegeMode",
    "Preflight",
    "PreflightLogger",
    "PreflightRefused",
]

LeastPrivilegeMode = Literal["enforce", "warn", "off"]
OverprivilegeMode = Literal["fail", "warn", "ignore"]

AUTHORIZATION_API_VERSION = "2022-04-01"
_LEAST_PRIVILEGE_MODES: tuple[str, ...] = ("enforce", "warn", "off")
_OVERPRIVILEGE_MODES: tuple[str, ...] = ("fail", "warn", "ignore")
_MAX_PAGES = 20  # a permissions list has one entry per role; more pages than this means something is wrong
# Incremental is only a placeholder for derived_actions(), which validates the mode but does not use it;
# the real mode is judged by check_mode().
_DERIVATION_MODE = "Incremental"

_log = logging.getLogger(__name__)


class PreflightLogger(Protocol):
    """Where a Preflight writes its report: anything with ``info``/``warning``/``error(msg, *args)``, such as
    a ``logging.Logger`` or an Airflow task's (structlog) ``self.log``."""

    def info(self, msg: str, /, *args: Any) -> None: ...

    def warning(self, msg: str, /, *args: Any) -> None: ...

    def error(self, msg: str, /, *args: Any) -> None: ...


class PreflightRefused(AirflowFailException):
    """The preflight refused the write. No retries: a refusal does not change by trying again.

    The message lists every reason and the setting or role that would change the outcome;
    :attr:`report` is the full :class:`AccessReport`."""

    def __init__(self, message: str, report: AccessReport | None = None) -> None:
        super().__init__(message)
        self.report = report


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


# ------------------------------------------------------------------------------------------ internals


@dataclass
class _Facts:
    """What ARM said, cached per check key. None = not read (mode off/ignore, or no principal)."""

    permission_scope: str | None = None
    entries: tuple[PermissionEntry, ...] | None = None
    deny_scope: str | None = None
    denies: tuple[DenyAssignment, ...] | None = None
    assignments: tuple[RoleAssignment, ...] | None = None
    subscription_entries: tuple[PermissionEntry, ...] | None = None
    """Permissions read at the subscription (the escalation fallback), when they were."""
    linked_entries: dict[str, tuple[PermissionEntry, ...]] = field(default_factory=dict)
    """Permissions read at linked resources outside the target, by resource id."""
    notes: list[str] = field(default_factory=list)
    arm_calls: int = 0


class _NotFound(Exception):
    """A read answered 404: the scope (usually a resource group) does not exist (yet)."""

    def __init__(self, err: HttpResponseError) -> None:
        super().__init__(str(err))
        self.err = err


class _Forbidden(Exception):
    """A read answered 403."""

    def __init__(self, err: HttpResponseError) -> None:
        super().__init__(str(err))
        self.err = err


def _error_summary(err: HttpResponseError) -> str:
    """``403 AuthorizationFailed: <ARM's message>``: enough to act on without the multi-line repr."""
    code = getattr(getattr(err, "error", None), "code", None) or ""
    message = getattr(getattr(err, "error", None), "message", None) or err.message or str(err)
    return f"{err.status_code} {code}: {message}".replace("  ", " ")


def _principal_from_token(token: str) -> str | None:
    """The ``oid`` claim of a JWT access token, or None for an opaque token.

    The token is decoded WITHOUT verifying its signature, on purpose: it came straight from our own
    credential, and the oid is used only to choose which role/deny assignments to look at. Nothing is
    authorised on its strength; ARM verifies the token on every request.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        return None
    oid = claims.get("oid") if isinstance(claims, dict) else None
    return ascii_fold(oid) if isinstance(oid, str) and oid else None


def _as_plain(model: Any) -> Any:
    """SDK models to plain data: ``as_dict()`` (snake_case for msrest models, REST names for the hybrid
    models); rbac and preflight_rules read both spellings."""
    as_dict = getattr(model, "as_dict", None)
    return as_dict() if callable(as_dict) else model


def _subscription_scope(scope: ArmScope) -> str | None:
    return f"/subscriptions/{scope.subscription_id}" if scope.subscription_id else None


# ------------------------------------------------------------------------------------------ Preflight


class Preflight:
    """Gathers ARM facts through one hook and judges them. Create one per task execution: it caches the
    facts of each distinct check, so a retried check in the same task sends no new ARM request.

    :param hook: the operator's ARM hook (its credential and authorization client are reused).
    :param least_privilege: ``enforce`` refuses missing or denied actions; ``warn`` logs them; ``off``
        skips the permission and deny-assignment reads. The fence and the what-if rules apply in every
        mode: an unfenced write is never allowed.
    :param overprivilege: ``fail`` refuses on a high-severity finding; ``warn`` logs findings;
        ``ignore`` skips the role-assignment read and reports no findings.
    :param logger: where the per-check block goes (the task logger when called from an operator).
    """

    def __init__(
        self,
        hook: AzureResourceManagerHook,
        *,
        least_privilege: LeastPrivilegeMode = "enforce",
        overprivilege: OverprivilegeMode = "warn",
        logger: PreflightLogger | None = None,
    ) -> None:
        if least_privilege not in _LEAST_PRIVILEGE_MODES:
            raise ValueError(
                f"least_privilege must be one of {', '.join(_LEAST_PRIVILEGE_MODES)}, got {least_privilege!r}"
            )
        if overprivilege not in _OVERPRIVILEGE_MODES:
            raise ValueError(f"overprivilege must be one of {', '.join(_OVERPRIVILEGE_MODES)}, got {overprivilege!r}")
        self.hook = hook
        self.least_privilege: LeastPrivilegeMode = least_privilege
        self.overprivilege: OverprivilegeMode = overprivilege
        self.log: PreflightLogger = logger or _log
        self._cache: dict[tuple[Any, ...], _Facts] = {}

    # -- public ------------------------------------------------------------------------------------

    def check(
        self,
        *,
        target_scope: str,
        operation: str,
        extra_actions: Sequence[str] = (),
        what_if: Any | None = None,
        mode: str | None = None,
        allow_delete_changes: bool = False,
        allow_rbac_changes: bool = False,
        allowed_change_types: Collection[str] | None = None,
        allow_complete_mode: bool = False,
        deployment: Mapping[str, Any] | None = None,
        allow_what_if_diagnostics: bool = False,
        allow_deployment_scripts: bool = False,
        allow_nested_template_links: bool = False,
        secure_parameters: Collection[str] = (),
    ) -> AccessReport:
        """Prove the write may go ahead, or raise :class:`PreflightRefused` naming every reason.

        :param target_scope: the scope written to (a resource group for a deployment or a group
            create/delete, a resource id for a lock...).
        :param operation: a key of :data:`preflight_rules.REQUIRED_ACTIONS` (``deployment_write``...).
        :param extra_actions: actions on top of the operation's defaults (an operator's
            ``required_actions`` argument, ``contained_delete_actions()`` for a group delete...).
        :param what_if: the final what-if result (REST body, SDK model or list of changes), if any.
        :param mode: the deployment mode; ``Complete`` needs ``allow_complete_mode``.
        :param deployment: the deployment's ``properties`` as they will be sent, with the template ARM will
            run under ``template`` (a fetched link or template spec included): the template is scanned and
            the parameters' ids are checked, see :mod:`.deployment_checks`.
        """
        settings = self.hook.settings
        conn_id = settings.conn_id
        fence = tuple(settings.allowed_scopes)

        # 1. Fence, before anything touches the network.
        target = self._fence(target_scope, fence, operation, conn_id)
        required_actions(operation)  # an unknown operation name is a KeyError listing the known ones, offline

        # 2. What-if rules (offline).
        violations: list[Violation] = []
        derived: tuple[str, ...] = ()
        diagnostics: tuple[Diagnostic, ...] = ()
        linked: tuple[LinkedAccess, ...] = ()
        if what_if is not None or deployment is not None:
            changes: tuple[WhatIfChange, ...] = ()
            if what_if is not None:
                changes, what_if_violations = self._what_if(what_if)
                violations += what_if_violations
                diagnostics = parse_diagnostics(_as_plain(what_if))
            template = deployment.get("template") if deployment is not None else None
            content = judge_content(
                changes=changes,
                diagnostics=diagnostics,
                template=template if isinstance(template, Mapping) else None,
                parameters=(deployment or {}).get("parameters") or {},
                target=str(target),
                fence=Fence.of(fence, tuple(getattr(settings, "allowed_reference_scopes", ()))),
                options=ContentOptions(
                    allow_delete_changes=allow_delete_changes,
                    allow_rbac_changes=allow_rbac_changes,
                    allowed_change_types=allowed_change_types,
                    allow_what_if_diagnostics=allow_what_if_diagnostics,
                    allow_deployment_scripts=allow_deployment_scripts,
                    allow_nested_template_links=allow_nested_template_links,
                    secure_parameters=secure_parameters,
                ),
            )
            violations += content.violations
            linked = content.linked
            # A change without a resource type is already a violation (invalid_resource_id); deriving
            # from the rest keeps the report complete instead of stopping at a ValueError.
            derived = derived_actions([c for c in changes if c.resource_type], _DERIVATION_MODE)
        if mode is not None:
            mode_violation = check_mode(mode, allow_complete_mode, deployment_id=str(target))
            if mode_violation is not None:
                violations.append(mode_violation)
        required = required_actions(operation, [*extra_actions, *derived])

        # 3. Principal. The credential caches its token, so the ARM clients reuse this one. With both
        # modes off nothing reads or judges ARM facts, so the check stays fully offline (no token either):
        # operators use that for a fence-only check before they send anything about the target.
        offline = self.least_privilege == "off" and self.overprivilege == "ignore"
        principal = None if offline else self._principal()

        # 4. ARM reads (cached per check key for the lifetime of this Preflight).
        key = (
            conn_id,
            target.key,
            operation,
            tuple(sorted({ascii_fold(a) for a in required})),
            principal,
        )
        facts = self._cache.get(key)
        cached = facts is not None
        if facts is None:
            facts = self._gather(target, operation, required, principal, conn_id)
            self._cache[key] = facts

        # 5. Evaluate.
        verdict: PermissionVerdict | None = None
        if self.least_privilege != "off":
            verdict = evaluate(facts.entries or (), facts.denies or (), principal, required, target)
        findings = self._findings(facts, fence, required, target)
        linked_missing: tuple[tuple[str, str], ...] = ()
        linked_reads = 0
        if linked and self.least_privilege != "off" and not violations:
            linked_missing, linked_reads = self._linked_missing(linked, facts, target)

        report = AccessReport(
            principal_id=principal,
            target_scope=str(target),
            fence=fence,
            operation=operation,
            required_actions=required,
            verdict=verdict,
            violations=tuple(violations),
            findings=tuple(findings),
            arm_calls=linked_reads + (0 if cached else facts.arm_calls),
            permission_scope=facts.permission_scope,
            cached=cached,
            notes=tuple(facts.notes),
            diagnostics=diagnostics,
            linked=linked,
            linked_missing=linked_missing,
        )
        # 6. Modes.
        self._decide(report, conn_id, facts)
        return report

    # -- steps -------------------------------------------------------------------------------------

    def _fence(self, target_scope: str, fence: tuple[str, ...], operation: str, conn_id: str) -> ArmScope:
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
            self.log.error("\n".join(report.summary_lines()))
            raise PreflightRefused(self._message(report, conn_id, [reason]), report)

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

    @staticmethod
    def _what_if(what_if: Any) -> tuple[tuple[WhatIfChange, ...], list[Violation]]:
        payload = _as_plain(what_if)
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

    def _principal(self) -> str | None:
        token = self.hook.get_credential().get_token(self.hook.settings.cloud.arm_scope)
        return _principal_from_token(token.token)

    # -- ARM reads ---------------------------------------------------------------------------------

    def _gather(
        self,
        target: ArmScope,
        operation: str,
        required: tuple[str, ...],
        principal: str | None,
        conn_id: str,
    ) -> _Facts:
        facts = _Facts()
        client = self.hook.get_authorization_client()

        def count(_response: Any) -> None:
            # raw_response_hook runs once per HTTP response (pages and retries included).
            facts.arm_calls += 1

        sub_scope = _subscription_scope(target)
        deny_scope: str | None = str(target)

        if self.least_privilege != "off":
            if operation == "resource_group_write" and target.kind == "resource_group" and sub_scope:
                # The group may not exist yet, so its own path would 404: read the subscription's
                # permissions first. They are inherited, i.e. a lower bound; only if they fall short is the
                # group itself asked (it may exist, with a group-scoped role granting the update).
                entries = self._read_permissions(client, sub_scope, count, facts)
                facts.permission_scope = sub_scope
                facts.subscription_entries = entries
                deny_scope = sub_scope
                if not all(any(e.allows(a) for e in entries) for a in required):
                    try:
                        entries = self._read_permissions(client, str(target), count, facts, not_found=True)
                    except _NotFound:
                        facts.notes.append(f"resource group {target} does not exist yet; checked at {sub_scope}")
                    else:
                        facts.permission_scope = str(target)
                        deny_scope = str(target)
                facts.entries = entries
            else:
                try:
                    facts.entries = self._read_permissions(
                        client, str(target), count, facts, not_found=target.kind not in ("subscription", "root")
                    )
                    facts.permission_scope = str(target)
                    if target.kind == "subscription":
                        facts.subscription_entries = facts.entries
                except _NotFound as missing:
                    if sub_scope is None:  # a management group or tenant-level id: nothing to fall back to
                        self._arm_error(missing.err, str(target), "permissions", conn_id)
                    facts.notes.append(
                        f"{target} does not exist ({_error_summary(missing.err)}); permissions and deny "
                        f"assignments were read at {sub_scope} instead"
                    )
                    facts.entries = self._read_permissions(client, sub_scope, count, facts)
                    facts.subscription_entries = facts.entries
                    facts.permission_scope = sub_scope
                    deny_scope = sub_scope
            facts.deny_scope = deny_scope
            facts.denies = self._read_denies(client, deny_scope or str(target), count, facts, conn_id)

        if self.overprivilege != "ignore":
            facts.assignments = self._read_assignments(client, target, principal, count, facts, conn_id)
            if facts.assignments is None and facts.entries is None:
                # Role assignments could not be read and least_privilege='off' read no permissions: one
                # permissions read still lets escalation be detected (roleAssignments/write in the entries).
                scope = sub_scope or str(target)
                facts.subscription_entries = self._read_permissions(client, scope, count, facts)
                facts.notes.append(f"over-privilege judged from the effective permissions at {scope}")
        return facts

    def _drain(self, read: Callable[[], Iterable[Any]], where: str, what: str, conn_id: str) -> list[Any]:
        """Run a read to the last page; map 403/404 to the internal signals, any other ARM error to a refusal."""
        try:
            return [_as_plain(item) for item in read()]
        except HttpResponseError as err:
            if err.status_code == 403:
                raise _Forbidden(err) from err
            if err.status_code == 404:
                raise _NotFound(err) from err
            self._arm_error(err, where, what, conn_id)

    def _read_permissions(
        self,
        client: AuthorizationManagementClient,
        scope: str,
        count: Callable[[Any], None],
        facts: _Facts,
        *,
        not_found: bool = False,
    ) -> tuple[PermissionEntry, ...]:
        """Effective permissions of the caller at ``scope``. A 403 or an empty list means nothing is allowed
        (the permissions API needs no action of its own). With ``not_found`` a 404 raises :class:`_NotFound` for the
        caller's fallback; otherwise any 404 is ARM's error, surfaced verbatim."""
        parsed = parse_scope(scope)
        conn_id = self.hook.settings.conn_id
        read: Callable[[], Iterable[Any]]
        rg = parsed.resource_group
        if parsed.kind == "resource_group" and rg and parsed.subscription_id == self._client_subscription():
            read = lambda: client.permissions.list_for_resource_group(rg, raw_response_hook=count)  # noqa: E731
        else:
            # The subscription path is not in azure-mgmt-authorization 4.0's stable API, and extension or
            # nested resources have no list_for_resource shape: send the same REST call directly.
            path = f"{parsed}/providers/Microsoft.Authorization/permissions"
            read = lambda: self._send_paged(client, path, count)  # noqa: E731
        try:
            items = self._drain(read, scope, "permissions", conn_id)
        except _Forbidden as denied:
            facts.notes.append(
                f"ARM refused to list this identity's permissions at {scope} ({_error_summary(denied.err)}); "
                "treated as nothing allowed"
            )
            return ()
        except _NotFound as missing:
            if not_found:
                raise
            self._arm_error(missing.err, scope, "permissions", conn_id)
        try:
            entries = parse_permissions(items)
        except ValueError as err:
            raise PreflightRefused(f"ARM returned unreadable permissions at {scope}: {err}") from err
        if not entries:
            facts.notes.append(f"ARM lists no permissions for this identity at {scope}; treated as nothing allowed")
        return entries

    @staticmethod
    def _send_paged(client: AuthorizationManagementClient, path: str, count: Callable[[Any], None]) -> list[Any]:
        """GET a list through the authorization client's own pipeline (host pin, correlation id, retries,
        token) and follow ``nextLink``. Raises HttpResponseError as the SDK would."""
        pipeline = client._client  # the generated client's ARMPipelineClient
        items: list[Any] = []
        request = HttpRequest("GET", path, params={"api-version": AUTHORIZATION_API_VERSION})
        # PipelineClient.send_request does not resolve a relative URL against base_url; the SDK's does.
        request.url = pipeline.format_url(request.url)
        for _ in range(_MAX_PAGES):
            response = pipeline.send_request(request, raw_response_hook=count)
            if response.status_code != 200:
                from azure.mgmt.core.exceptions import ARMErrorFormat

                raise HttpResponseError(response=response, error_format=ARMErrorFormat)
            body = response.json()
            if not isinstance(body, Mapping) or not isinstance(body.get("value", []), list):
                raise HttpResponseError(message=f"GET {path}: unexpected response body", response=response)
            items.extend(body.get("value") or [])
            next_link = body.get("nextLink")
            if not next_link:
                return items
            # nextLink is absolute; the hook's host-pin policy refuses it if it points off the ARM host.
            request = HttpRequest("GET", str(next_link))
        raise HttpResponseError(message=f"GET {path}: more than {_MAX_PAGES} pages of nextLink")

    def _read_denies(
        self,
        client: AuthorizationManagementClient,
        scope: str,
        count: Callable[[Any], None],
        facts: _Facts,
        conn_id: str,
    ) -> tuple[DenyAssignment, ...] | None:
        try:
            items = self._drain(
                lambda: client.deny_assignments.list_for_scope(scope, filter="atScope()", raw_response_hook=count),
                scope,
                "deny assignments",
                conn_id,
            )
        except (_Forbidden, _NotFound) as err:
            # Least-privileged custom roles often lack Microsoft.Authorization/denyAssignments/read; refusing
            # here would punish exactly the identities this feature recommends. ARM still enforces denies.
            facts.notes.append(
                f"deny assignments at {scope} could not be read ({_error_summary(err.err)}); they were not "
                "checked (ARM still enforces them). Grant Microsoft.Authorization/denyAssignments/read to "
                "include them"
            )
            return None
        try:
            return tuple(DenyAssignment.from_api(d) for d in items)
        except (ValueError, ScopeError) as err:
            raise PreflightRefused(f"ARM returned an unreadable deny assignment at {scope}: {err}") from err

    def _read_assignments(
        self,
        client: AuthorizationManagementClient,
        target: ArmScope,
        principal: str | None,
        count: Callable[[Any], None],
        facts: _Facts,
        conn_id: str,
    ) -> tuple[RoleAssignment, ...] | None:
        if principal is None:
            facts.notes.append(
                "the ARM token carries no oid claim, so this identity's role assignments cannot be looked up"
            )
            return None
        flt = f"assignedTo('{principal}')"
        scope = _subscription_scope(target) or str(target)
        read: Callable[[], Iterable[Any]]
        if target.subscription_id and target.subscription_id == self._client_subscription():
            read = lambda: client.role_assignments.list_for_subscription(filter=flt, raw_response_hook=count)  # noqa: E731
        else:
            read = lambda: client.role_assignments.list_for_scope(scope, filter=flt, raw_response_hook=count)  # noqa: E731
        try:
            items = self._drain(read, scope, "role assignments", conn_id)
        except (_Forbidden, _NotFound) as err:
            facts.notes.append(
                f"role assignments at {scope} could not be read ({_error_summary(err.err)}); over-privilege was "
                "judged from the effective permissions only"
            )
            return None
        assignments: list[RoleAssignment] = []
        for item in items:
            try:
                assignments.append(RoleAssignment.from_api(item))
            except ValueError as err:
                raise PreflightRefused(f"ARM returned an unreadable role assignment at {scope}: {err}") from err
        return tuple(assignments)

    def _client_subscription(self) -> str | None:
        sub = self.hook.settings.subscription_id
        return ascii_fold(sub) if sub else None

    def _arm_error(self, err: HttpResponseError, scope: str, what: str, conn_id: str) -> NoReturn:
        # ARM's own words, verbatim: they name the code, the principal and the action to fix.
        raise PreflightRefused(
            f"ARM preflight could not read {what} at {scope} through connection {conn_id!r}; ARM answered:\n{err}"
        ) from err

    def _linked_missing(
        self, linked: Iterable[LinkedAccess], facts: _Facts, target: ArmScope
    ) -> tuple[tuple[tuple[str, str], ...], int]:
        """Linked rights the identity lacks, and the ARM reads spent finding out.

        A right already granted at the target (inherited by everything in it) costs nothing more; any other
        is read where the resource lives, once per resource (roles on a single identity or vault are common).
        """
        client = self.hook.get_authorization_client()
        reads = 0

        def count(_response: Any) -> None:
            nonlocal reads
            reads += 1

        missing: list[tuple[str, str]] = []
        for item in linked:
            granted_at_target = facts.entries and any(e.allows(item.action) for e in facts.entries)
            if granted_at_target and target.contains(item.resource_id):
                continue
            entries = facts.linked_entries.get(item.resource_id)
            if entries is None:
                try:
                    entries = self._read_permissions(client, item.resource_id, count, facts, not_found=True)
                except _NotFound:
                    facts.notes.append(f"linked resource {item.resource_id} was not found; ARM will say so too")
                    entries = ()
                facts.linked_entries[item.resource_id] = entries
            if not any(e.allows(item.action) for e in entries):
                missing.append((item.action, item.resource_id))
        return tuple(dict.fromkeys(missing)), reads

    # -- judgement ---------------------------------------------------------------------------------

    def _findings(
        self, facts: _Facts, fence: tuple[str, ...], required: tuple[str, ...], target: ArmScope
    ) -> list[Finding]:
        if self.overprivilege == "ignore":
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
                    facts.subscription_entries, scope=_subscription_scope(target) or ""
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

    def _decide(self, report: AccessReport, conn_id: str, facts: _Facts) -> None:
        reasons: list[str] = [v.message for v in report.violations]
        warnings = False
        verdict = report.verdict
        if verdict is not None and not verdict.ok:
            lp_reasons = self._verdict_reasons(report, verdict, facts)
            if self.least_privilege == "enforce":
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
            if self.least_privilege == "enforce":
                reasons.append(reason)
            else:
                warnings = True
        high = [f for f in report.findings if f.severity == "high"]
        if high and self.overprivilege == "fail":
            reasons += [f"{f.message} (overprivilege='fail' on the operator; 'warn' only reports this)" for f in high]
        elif self.overprivilege == "warn" and any(f.severity in ("high", "medium") for f in report.findings):
            warnings = True
        block = "\n".join(report.summary_lines())
        if reasons:
            self.log.error(block)
            raise PreflightRefused(self._message(report, conn_id, reasons), report)
        if warnings or report.notes:
            self.log.warning(block)
        else:
            self.log.info(block)

    def _verdict_reasons(self, report: AccessReport, verdict: PermissionVerdict, facts: _Facts) -> list[str]:
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

    @staticmethod
    def _message(report: AccessReport, conn_id: str, reasons: Iterable[str]) -> str:
        head = (
            f"ARM preflight refused {report.operation!r} at {report.target_scope} "
            f"(connection {conn_id!r}, principal {report.principal_id or 'unknown'}):"
        )
        body = [f"  - {r}" for r in reasons]
        tail = [f"  note: {n}" for n in report.notes]
        return "\n".join([head, *body, *tail])
