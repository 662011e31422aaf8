"""The preflight's steps in order (see the package doc): fence, what-if and content rules, principal, ARM
reads (cached per check), verdict and findings, then the modes' decision."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_identity_provider.azure.preflight.arm_reads import HookArmFacts
from airflow_identity_provider.azure.preflight.facts import ArmFacts, Facts, gather, linked_missing
from airflow_identity_provider.azure.preflight.judgement import check_fence, decide, findings, read_what_if
from airflow_identity_provider.azure.preflight.report import (
    LEAST_PRIVILEGE_MODES,
    OVERPRIVILEGE_MODES,
    AccessReport,
    LeastPrivilegeMode,
    OverprivilegeMode,
    PreflightLogger,
)
from airflow_identity_provider.azure.rules.arm_json import as_plain
from airflow_identity_provider.azure.rules.deployment_checks import ContentOptions, judge_content
from airflow_identity_provider.azure.rules.fence_judgement import Fence
from airflow_identity_provider.azure.rules.preflight_rules import (
    Violation,
    WhatIfChange,
    check_mode,
    derived_actions,
    required_actions,
)
from airflow_identity_provider.azure.rules.rbac import PermissionVerdict, evaluate
from airflow_identity_provider.azure.rules.scopes import ascii_fold
from airflow_identity_provider.azure.rules.template_terms import LinkedAccess
from airflow_identity_provider.azure.rules.what_if_diagnostics import Diagnostic, parse_diagnostics

if TYPE_CHECKING:
    from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerHook

__all__ = ["Preflight"]

# The package's name: the logger operators and tests have always configured.
_log = logging.getLogger("airflow_identity_provider.azure.preflight")


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
    :param reads: where the ARM facts come from; default: :class:`~.arm_reads.HookArmFacts` of ``hook``.
    """

    def __init__(
        self,
        hook: AzureResourceManagerHook,
        *,
        least_privilege: LeastPrivilegeMode = "enforce",
        overprivilege: OverprivilegeMode = "warn",
        logger: PreflightLogger | None = None,
        reads: ArmFacts | None = None,
    ) -> None:
        if least_privilege not in LEAST_PRIVILEGE_MODES:
            raise ValueError(
                f"least_privilege must be one of {', '.join(LEAST_PRIVILEGE_MODES)}, got {least_privilege!r}"
            )
        if overprivilege not in OVERPRIVILEGE_MODES:
            raise ValueError(f"overprivilege must be one of {', '.join(OVERPRIVILEGE_MODES)}, got {overprivilege!r}")
        self.hook = hook
        self.reads: ArmFacts = reads if reads is not None else HookArmFacts(hook)
        self.least_privilege: LeastPrivilegeMode = least_privilege
        self.overprivilege: OverprivilegeMode = overprivilege
        self.log: PreflightLogger = logger or _log
        self._cache: dict[tuple[Any, ...], Facts] = {}

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
        target = check_fence(target_scope, fence, operation, conn_id, self.log)
        required_actions(operation)  # an unknown operation name is a KeyError listing the known ones, offline

        # 2. What-if rules (offline).
        violations: list[Violation] = []
        derived: tuple[str, ...] = ()
        diagnostics: tuple[Diagnostic, ...] = ()
        linked: tuple[LinkedAccess, ...] = ()
        if what_if is not None or deployment is not None:
            changes: tuple[WhatIfChange, ...] = ()
            if what_if is not None:
                changes, what_if_violations = read_what_if(what_if)
                violations += what_if_violations
                diagnostics = parse_diagnostics(as_plain(what_if))
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
            derived = derived_actions([c for c in changes if c.resource_type])
        if mode is not None:
            mode_violation = check_mode(mode, allow_complete_mode, deployment_id=str(target))
            if mode_violation is not None:
                violations.append(mode_violation)
        required = required_actions(operation, [*extra_actions, *derived])

        # 3. Principal. The credential caches its token, so the ARM clients reuse this one. With both
        # modes off nothing reads or judges ARM facts, so the check stays fully offline (no token either):
        # operators use that for a fence-only check before they send anything about the target.
        offline = self.least_privilege == "off" and self.overprivilege == "ignore"
        principal = None if offline else self.reads.principal()

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
            facts = gather(
                self.reads,
                target,
                operation,
                required,
                principal,
                conn_id,
                least_privilege=self.least_privilege,
                overprivilege=self.overprivilege,
            )
            self._cache[key] = facts

        # 5. Evaluate.
        verdict: PermissionVerdict | None = None
        if self.least_privilege != "off":
            verdict = evaluate(facts.entries or (), facts.denies or (), principal, required, target)
        found = findings(facts, fence, required, target, self.overprivilege)
        missing_linked: tuple[tuple[str, str], ...] = ()
        linked_reads = 0
        if linked and self.least_privilege != "off" and not violations:
            missing_linked, linked_reads = linked_missing(self.reads, linked, facts, target)

        report = AccessReport(
            principal_id=principal,
            target_scope=str(target),
            fence=fence,
            operation=operation,
            required_actions=required,
            verdict=verdict,
            violations=tuple(violations),
            findings=tuple(found),
            arm_calls=linked_reads + (0 if cached else facts.arm_calls),
            permission_scope=facts.permission_scope,
            cached=cached,
            notes=tuple(facts.notes),
            diagnostics=diagnostics,
            linked=linked,
            linked_missing=missing_linked,
        )
        # 6. Modes.
        decide(
            report,
            conn_id,
            facts,
            least_privilege=self.least_privilege,
            overprivilege=self.overprivilege,
            log=self.log,
        )
        return report
