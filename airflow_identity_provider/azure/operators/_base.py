"""What every ARM operator shares: the connection, the task's correlation id, the preflight and ARM errors.

An operator builds ONE hook per ``execute`` (one credential, one token, one correlation id for every
request of the task try) and closes it when ``execute`` returns or raises, ``TaskDeferred`` included.
Nothing here imports the azure SDK at module level: DAG files import the operators at parse time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerHook
from airflow_identity_provider.azure.preflight.report import (
    LEAST_PRIVILEGE_MODES,
    OVERPRIVILEGE_MODES,
    LeastPrivilegeMode,
    OverprivilegeMode,
    PreflightRefused,
)
from airflow_identity_provider.azure.rules.scopes import canonical_subscription_id, normalize_scope

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_identity_provider.azure.preflight import AccessReport, Preflight, PreflightLogger

__all__ = [
    "ACCESS_REPORT_XCOM_KEY",
    "AzureResourceManagerBaseOperator",
    "LeastPrivilege",
    "Overprivilege",
    "resource_group_scope",
    "task_identity",
]

ACCESS_REPORT_XCOM_KEY = "access_report"
LeastPrivilege = LeastPrivilegeMode
Overprivilege = OverprivilegeMode

T = TypeVar("T")


def task_identity(context: Context | Mapping[str, Any]) -> tuple[str, str, str, int, int]:
    """``(dag_id, task_id, run_id, try_number, map_index)`` of the running task instance."""
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    return (
        str(ti.dag_id),
        str(ti.task_id),
        str(ti.run_id),
        int(getattr(ti, "try_number", 1) or 1),
        -1 if map_index is None else int(map_index),
    )


def resource_group_scope(subscription_id: str, resource_group_name: str) -> str:
    """The canonical ARM scope of a resource group (validated: a bad name fails before any request)."""
    try:
        return normalize_scope(f"/subscriptions/{subscription_id}/resourceGroups/{resource_group_name}")
    except ValueError as err:
        raise AirflowException(f"Invalid resource group {resource_group_name!r}: {err}") from None


class _InfoAsDebug:
    """A PreflightLogger that turns info into debug and passes warnings and errors through."""

    def __init__(self, log: Any) -> None:
        self._log = log

    def info(self, msg: str, /, *args: Any) -> None:
        self._log.debug(msg, *args)

    def warning(self, msg: str, /, *args: Any) -> None:
        self._log.warning(msg, *args)

    def error(self, msg: str, /, *args: Any) -> None:
        self._log.error(msg, *args)


class AzureResourceManagerBaseOperator(BaseOperator):
    """Base of the ARM operators: connection, correlation id, least-privilege preflight.

    :param azure_resource_manager_conn_id: an ``azure_resource_manager`` connection; its
        ``allowed_scopes`` extra is the fence no operator may write outside of.
    :param least_privilege: ``enforce`` (refuse a write the identity lacks a permission for, or that
        leaves the fence), ``warn`` (log and go on), ``off``.
    :param overprivilege: what to do when the identity holds far more than it needs (Owner or
        Contributor on the subscription, role-assignment write): ``fail``, ``warn`` or ``ignore``.
    :param required_actions: actions this task needs on top of the operator's own list (REQUIRED_ACTIONS).
    :param subscription_id: the subscription to work in; default: the connection's.
    """

    def __init__(
        self,
        *,
        azure_resource_manager_conn_id: str = AzureResourceManagerHook.default_conn_name,
        least_privilege: LeastPrivilege = "enforce",
        overprivilege: Overprivilege = "warn",
        required_actions: Sequence[str] = (),
        subscription_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if least_privilege not in LEAST_PRIVILEGE_MODES:
            choices = ", ".join(LEAST_PRIVILEGE_MODES)
            raise ValueError(f"least_privilege must be one of {choices}, not {least_privilege!r}")
        if overprivilege not in OVERPRIVILEGE_MODES:
            raise ValueError(f"overprivilege must be one of {', '.join(OVERPRIVILEGE_MODES)}, not {overprivilege!r}")
        if isinstance(required_actions, str):
            raise ValueError("required_actions must be a list of action names, not one string")
        self.azure_resource_manager_conn_id = azure_resource_manager_conn_id
        self.least_privilege: LeastPrivilege = least_privilege
        self.overprivilege: Overprivilege = overprivilege
        self.required_actions = tuple(required_actions)
        self.subscription_id = subscription_id

    # -- connection --------------------------------------------------------------------------------

    def make_hook(self, context: Context | Mapping[str, Any]) -> AzureResourceManagerHook:
        """A hook whose every request carries this task try's correlation id (uuid5 of dag/run/task/try).

        Passed explicitly rather than read from the current context so that it is the same id whether
        the operator runs under the task runner, ``dag.test()`` or a unit test.
        """
        from airflow_identity_provider.azure.policies import correlation_id_for

        identity = task_identity(context)
        self._audit_task = identity  # for the audit events of this execute's preflight decisions
        dag_id, task_id, run_id, try_number, map_index = identity
        correlation_id = correlation_id_for(dag_id, run_id, task_id, try_number, map_index)
        return AzureResourceManagerHook(self.azure_resource_manager_conn_id, correlation_id=correlation_id)

    def target_subscription(self, hook: AzureResourceManagerHook) -> str:
        """The subscription this task works in: the operator's ``subscription_id`` or the connection's."""
        if self.subscription_id:
            try:
                return canonical_subscription_id(self.subscription_id)
            except ValueError:
                raise AirflowException(f"subscription_id {self.subscription_id!r} is not a GUID") from None
        return hook.settings.require_subscription_id()

    # -- least-privilege preflight -----------------------------------------------------------------

    def make_preflight(self, hook: AzureResourceManagerHook) -> Preflight:
        """One Preflight per execute, so its permission reads are cached across the checks of one task."""
        from airflow_identity_provider.azure.preflight import Preflight

        return Preflight(
            hook, least_privilege=self.least_privilege, overprivilege=self.overprivilege, logger=self._logger()
        )

    def _logger(self) -> PreflightLogger:
        # The task logger (structlog's, not a logging.Logger) fits PreflightLogger: the report lands in the task log.
        return self.log

    def check_fence(self, hook: AzureResourceManagerHook, *, target_scope: str, operation: str, **check: Any) -> None:
        """The offline half of the preflight: scope fence (and e.g. Complete mode), no ARM request.

        Run before the task sends anything about the target to ARM (a GET, a what-if), so a task aimed
        outside ``allowed_scopes`` is refused with the fence's reason rather than whatever ARM says
        about a group it should not touch. Permissions are read later, once, by the full check.
        """
        from airflow_identity_provider.azure.preflight import Preflight

        self.log.info("Scope fence check for %s at %s (offline)", operation, target_scope)
        # Its OK-report would say "permissions: not checked", which reads like a gap: keep it at debug
        # (the full report follows before the write); a refusal is still logged as an error.
        try:
            Preflight(hook, least_privilege="off", overprivilege="ignore", logger=_InfoAsDebug(self.log)).check(
                target_scope=target_scope, operation=operation, **check
            )
        except PreflightRefused as refused:  # a decision: the task stops here (a pass decides nothing yet)
            self.audit_preflight(hook, operation=operation, target_scope=target_scope, check="fence", refused=refused)
            raise

    def run_preflight(
        self,
        context: Context | Mapping[str, Any],
        preflight: Preflight,
        *,
        target_scope: str,
        operation: str,
        extra_actions: Iterable[str] = (),
        push: bool = True,
        **check: Any,
    ) -> AccessReport:
        """Check ``operation`` at ``target_scope``; the Preflight logs the report, this pushes it to XCom.

        A refusal (PreflightRefused) propagates unchanged, so the task fails with the preflight's own
        readable reason; its report, when it carries one, is pushed first so the UI shows why.
        """
        actions = tuple(dict.fromkeys([*extra_actions, *self.required_actions]))
        modes = {"least_privilege": preflight.least_privilege, "overprivilege": preflight.overprivilege}
        try:
            report = preflight.check(target_scope=target_scope, operation=operation, extra_actions=actions, **check)
        except PreflightRefused as refused:
            self.audit_preflight(
                preflight.hook, operation=operation, target_scope=target_scope, refused=refused, modes=modes
            )
            report_of_refusal = getattr(refused, "report", None)
            if push and report_of_refusal is not None:
                self._push_report(context, report_of_refusal)
            raise
        self.audit_preflight(preflight.hook, operation=operation, target_scope=target_scope, report=report, modes=modes)
        if push:
            self._push_report(context, report)
        return report

    def refusal(
        self,
        hook: AzureResourceManagerHook,
        message: str,
        *,
        reason: str,
        target_scope: str,
        operation: str = "deployment_write",
        check: str = "template_spec",
    ) -> PreflightRefused:
        """A refusal of the operator's own (not the Preflight's), audited like the Preflight's: raise it."""
        refused = PreflightRefused(message, reason=reason)
        self.audit_preflight(hook, operation=operation, target_scope=target_scope, check=check, refused=refused)
        return refused

    def audit_preflight(
        self,
        hook: AzureResourceManagerHook,
        *,
        operation: str,
        target_scope: str,
        check: str = "full",
        report: AccessReport | None = None,
        refused: BaseException | None = None,
        reason: str | None = None,
        modes: Mapping[str, Any] | None = None,
    ) -> None:
        """The audit event of one decision (``operators._audit``); operators call it for their own refusals."""
        from airflow_identity_provider.azure.operators._audit import preflight_event

        preflight_event(
            hook,
            task=getattr(self, "_audit_task", None),
            operation=operation,
            target_scope=target_scope,
            check=check,
            report=report,
            refused=refused,
            reason=reason,
            modes=modes or {"least_privilege": self.least_privilege, "overprivilege": self.overprivilege},
        )

    def _push_report(self, context: Context | Mapping[str, Any], report: AccessReport) -> None:
        # The Preflight has already logged the report (info when clean, warning or error otherwise).
        context["ti"].xcom_push(key=ACCESS_REPORT_XCOM_KEY, value=report.to_dict())
