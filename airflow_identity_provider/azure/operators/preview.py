"""Template deployments that write nothing: ARM's ``validate``, and what-if as a preview and a gate.

Both run the offline fence check before they ask ARM anything about the target; see
:mod:`.deployment` for the deploy path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException

from airflow_identity_provider.azure.operators._template_base import TemplateOperatorBase
from airflow_identity_provider.azure.rules.arm_json import error_lines
from airflow_identity_provider.azure.rules.preflight_rules import check_changes, parse_what_if

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_identity_provider.azure.deployments.state import DeploymentTarget
    from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerHook

__all__ = ["AzureTemplateValidateOperator", "AzureTemplateWhatIfOperator"]


class _PreviewBase(TemplateOperatorBase):
    """Validate and what-if write nothing: the fence and the operation's own permission are all they prove."""

    def _checked_target(
        self, context: Context, hook: AzureResourceManagerHook, operation: str
    ) -> tuple[DeploymentTarget, str]:
        target = self._target(hook)
        name = self._deployment_name(context)
        self.run_preflight(context, self.make_preflight(hook), target_scope=target.scope, operation=operation)
        return target, name


class AzureTemplateValidateOperator(_PreviewBase):
    """Validate a template deployment (ARM's ``validate``; nothing is written).

    Returns ``{"deployment_name", "scope", "validated_resources": [ids], "template_hash"}``; fails with
    ARM's error verbatim when the template or parameters are invalid.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        hook = self.make_hook(context)
        try:
            target, name = self._checked_target(context, hook, "deployment_validate")
            raw = self._session(hook, target, name).validate(self._body(target, self._properties(hook)))
            props = raw.get("properties") or {}
            if raw.get("error") or props.get("error"):
                lines = "\n".join(error_lines(raw.get("error") or props.get("error")))
                raise AirflowException(f"Template validation of {name} at {target.scope} failed:\n{lines}")
            resources = [r.get("id") for r in props.get("validatedResources") or () if isinstance(r, Mapping)]
            self.log.info("Template valid: %d resource(s) at %s", len(resources), target.scope)
            return {
                "deployment_name": name,
                "scope": target.scope,
                "validated_resources": resources,
                "template_hash": props.get("templateHash"),
            }
        finally:
            hook.close()


class AzureTemplateWhatIfOperator(_PreviewBase):
    """Run what-if and return the change summary (XCom ``return_value``): ``{"status", "counts":
    {"Create": n, ...}, "changes": [{"resource_id", "change_type", "resource_type"}]}``.

    Changes outside the connection's ``allowed_scopes`` always fail the task. The gates below make it
    a pre-deploy check too (by default it only reports):

    :param fail_on_delete: fail if any resource would be deleted.
    :param fail_on_rbac_change: fail on role assignments, role definitions, locks or policy changes.
    :param allowed_change_types: fail on any other change type (e.g. ``["Create", "NoChange"]``).
    """

    def __init__(
        self,
        *,
        fail_on_delete: bool = False,
        fail_on_rbac_change: bool = False,
        allowed_change_types: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.fail_on_delete = fail_on_delete
        self.fail_on_rbac_change = fail_on_rbac_change
        self.allowed_change_types = None if allowed_change_types is None else tuple(allowed_change_types)

    def execute(self, context: Context) -> dict[str, Any]:
        hook = self.make_hook(context)
        try:
            target, name = self._checked_target(context, hook, "deployment_what_if")
            what_if = self._session(hook, target, name).what_if(self._body(target, self._properties(hook)))
            summary = self._log_changes(what_if)
            self._gate(what_if, hook.settings.allowed_scopes)
            return {"deployment_name": name, "scope": target.scope, **summary}
        finally:
            hook.close()

    def _gate(self, what_if: Mapping[str, Any], fence: Sequence[str]) -> None:
        """The deploy's change rules with this operator's switches, judged offline on the result.

        Not a second preflight: that would also demand the write permissions the changes need, and a
        what-if is a preview that a read-and-what-if identity must be able to run.
        """
        violations = check_changes(
            parse_what_if(what_if),
            fence,
            allow_delete=not self.fail_on_delete,
            allow_rbac_changes=not self.fail_on_rbac_change,
            allowed_change_types=self.allowed_change_types,
        )
        if violations:
            reasons = "\n".join(f"  - [{v.rule}] {v.message}" for v in violations)
            raise AirflowException(f"What-if gate refused {len(violations)} change(s):\n{reasons}")
