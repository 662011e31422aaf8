"""ARM template deployments: validate, what-if (a gate with an XCom change summary) and deploy.

The deploy path, in order, and why:

1. preflight ``deployment_what_if``: the scope fence and the what-if permission, before the task asks
   ARM anything about the target (a deployment aimed outside ``allowed_scopes`` stops here);
2. ``GET`` the deployment: a retry finds the deployment its previous try started (same derived name,
   same ``airflow_run_key`` tag) and re-attaches to it instead of starting a second one;
3. what-if (the real request body): what the deployment will create, modify or delete;
4. preflight ``deployment_write`` with the what-if and the template: fence for every change (``Ignore``
   included), what-if diagnostics, nested deployments and linked ids read from the template itself,
   delete / RBAC / change-type gates, Complete mode, and the permissions those changes need. Its report
   goes to XCom ``access_report``;
5. a template spec version is read again: a change since step 4 refuses the deployment;
6. ``PUT`` (accepted, not awaited), then wait here or defer to :class:`AzureDeploymentTrigger`.

A ``template_link`` is fetched once by the operator and sent inline to what-if and to the deployment, so
the content checked is the content deployed (see :mod:`._sources`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException

from airflow_identity_provider.azure.deployments.state import (
    TERMINAL_STATES,
    DeploymentTarget,
    provisioning_state,
    target_of,
    timeout_message,
)
from airflow_identity_provider.azure.operators._base import task_identity
from airflow_identity_provider.azure.operators._sources import PinnedSpec, read_template_spec
from airflow_identity_provider.azure.operators._template import (
    CONTENT_HASH_TAG,
    RUN_KEY_TAG,
    content_hash,
    deployment_tags,
    outputs_for_xcom,
    run_key,
)
from airflow_identity_provider.azure.operators._template_base import TEMPLATE_FIELDS, TemplateOperatorBase
from airflow_identity_provider.azure.operators.preview import AzureTemplateValidateOperator, AzureTemplateWhatIfOperator
from airflow_identity_provider.azure.rules.arm_json import as_dict, error_lines
from airflow_identity_provider.azure.rules.deployment_checks import secure_parameter_names
from airflow_identity_provider.azure.rules.preflight_rules import REQUIRED_ACTIONS
from airflow_identity_provider.azure.triggers.deployment import AzureDeploymentTrigger
from airflow_identity_provider.version_compat import conf

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_identity_provider.azure.deployments.session import DeploymentSession
    from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerHook

__all__ = [
    "DEPLOYMENT_XCOM_KEY",
    "AzureTemplateDeploymentOperator",
    "AzureTemplateValidateOperator",
    "AzureTemplateWhatIfOperator",
]

DEPLOYMENT_XCOM_KEY = "deployment"


class AzureTemplateDeploymentOperator(TemplateOperatorBase):
    """Deploy an ARM template behind the least-privilege preflight; outputs go to XCom.

    Returns the outputs as ``{name: value}`` (secure outputs as ``"***"``, their values masked in logs)
    and pushes XCom ``deployment`` (id, correlation id, provisioning state, duration) and
    ``access_report``.

    :param allow_delete_changes: permit what-if ``Delete`` changes.
    :param allow_rbac_changes: permit role assignment / definition, lock and policy changes.
    :param allowed_change_types: permit only these change types (None: any).
    :param allow_complete_mode: required for ``mode="Complete"``.
    :param allow_what_if_diagnostics: deploy although what-if reports Warning or Error diagnostics (its
        prediction may then be incomplete).
    :param allow_deployment_scripts: permit ``Microsoft.Resources/deploymentScripts`` (arbitrary code).
    :param allow_nested_template_links: permit nested deployments that link a template ARM fetches itself.
    :param tags: tags for the deployment object (it also gets ``airflow_dag_id``, ``airflow_task_id``,
        ``airflow_run_key``, ``airflow_content_hash``).
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param poll_interval: seconds between status polls.
    :param timeout: give up waiting after this long (seconds or timedelta); the deployment keeps running
        in Azure and a retry of the task re-attaches to it.
    :param cancel_on_kill: cancel the deployment when the task is killed (also makes the preflight
        require ``Microsoft.Resources/deployments/cancel/action``).
    """

    template_fields: Sequence[str] = (*TEMPLATE_FIELDS, "tags")
    template_fields_renderers = {"template": "json", "parameters": "json", "tags": "json"}

    def __init__(
        self,
        *,
        allow_delete_changes: bool = False,
        allow_rbac_changes: bool = False,
        allowed_change_types: Sequence[str] | None = None,
        allow_complete_mode: bool = False,
        allow_what_if_diagnostics: bool = False,
        allow_deployment_scripts: bool = False,
        allow_nested_template_links: bool = False,
        tags: Mapping[str, str] | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 10,
        timeout: float | timedelta | None = None,
        cancel_on_kill: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self.allow_delete_changes = allow_delete_changes
        self.allow_rbac_changes = allow_rbac_changes
        self.allowed_change_types = None if allowed_change_types is None else tuple(allowed_change_types)
        self.allow_complete_mode = allow_complete_mode
        self.allow_what_if_diagnostics = allow_what_if_diagnostics
        self.allow_deployment_scripts = allow_deployment_scripts
        self.allow_nested_template_links = allow_nested_template_links
        self.tags = tags
        self.deferrable = deferrable
        self.poll_interval = float(poll_interval)
        self.timeout = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        self.cancel_on_kill = cancel_on_kill
        self._active: tuple[str, str, str] | None = None  # (scope, name, correlation id) while waiting here

    # -- execute ------------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        started = time.monotonic()
        hook = self.make_hook(context)
        try:
            target = self._target(hook)
            name = self._deployment_name(context)
            dag_id, task_id, run_id, _, map_index = task_identity(context)
            marker = run_key(dag_id, task_id, run_id, map_index)
            self.check_fence(
                hook,
                target_scope=target.scope,
                operation="deployment_write",
                mode=self.mode,
                allow_complete_mode=self.allow_complete_mode,
            )
            pinned = self._read_spec(hook) if self.template_spec_id else None
            inline = pinned.main_template if pinned is not None and not pinned.has_linked_templates else None
            properties = self._properties(hook, inline)
            secure = secure_parameter_names(properties.get("template", pinned and pinned.main_template))
            content = content_hash(target.scope, properties, secret_parameters=[*secure, *self.secure_parameters])

            session = self._session(hook, target, name)
            existing = session.get()
            if existing is not None:
                try_number = task_identity(context)[3]
                reattached = self._reattach(context, hook, target, name, existing, marker, content, started, try_number)
                if reattached is not None:
                    return reattached

            tags = deployment_tags(self.tags, dag_id=dag_id, task_id=task_id, run_key_value=marker, content=content)
            body = self._body(target, properties, tags)
            what_if = session.what_if(body)
            self._log_changes(what_if)
            self.run_preflight(
                context,
                self.make_preflight(hook),
                target_scope=target.scope,
                operation="deployment_write",
                extra_actions=REQUIRED_ACTIONS["deployment_cancel"] if self.cancel_on_kill else (),
                what_if=what_if,
                mode=self.mode,
                allow_delete_changes=self.allow_delete_changes,
                allow_rbac_changes=self.allow_rbac_changes,
                allowed_change_types=self.allowed_change_types,
                allow_complete_mode=self.allow_complete_mode,
                deployment={**properties, "template": pinned.main_template if pinned else properties.get("template")},
                allow_what_if_diagnostics=self.allow_what_if_diagnostics,
                allow_deployment_scripts=self.allow_deployment_scripts,
                allow_nested_template_links=self.allow_nested_template_links,
                secure_parameters=self.secure_parameters,
            )
            if pinned is not None and inline is None:
                self._check_spec_unchanged(hook, pinned)  # sent by id: ARM reads it again, so compare first
            self._start(session, body)
            return self._wait_or_defer(context, hook, target, name, started)
        finally:
            hook.close()

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger: fetch the deployment once more for outputs or the failure details."""
        status = event.get("status")
        name, scope = str(event["deployment_name"]), str(event["scope"])
        self.log.info("Trigger reported deployment %s at %s: %s", name, scope, status)
        if status == "error":
            error = event.get("error") or {}
            raise AirflowException(f"Polling deployment {name} at {scope} failed: {error.get('message', error)}")
        if status == "timeout":
            raise AirflowException(timeout_message(name, scope, event.get("provisioning_state")))
        hook = self.make_hook(context)
        try:
            target = target_of(scope)
            deployment = self._session(hook, target, name).get()
            if deployment is None:
                raise AirflowException(f"Deployment {name} at {scope} no longer exists")
            return self._finish(context, hook, target, name, deployment)
        finally:
            hook.close()

    def on_kill(self) -> None:
        """Cancel the deployment this task is waiting for (blocking mode; deferred tasks: the trigger's on_kill)."""
        active, self._active = self._active, None
        if active is None or not self.cancel_on_kill:
            return
        from azure.core.exceptions import HttpResponseError

        from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerHook

        scope, name, correlation_id = active
        # A fresh hook: on_kill may interrupt the execute thread in the middle of a request on the old one.
        hook = AzureResourceManagerHook(self.azure_resource_manager_conn_id, correlation_id=correlation_id)
        try:
            self._session(hook, target_of(scope), name).cancel()
            self.log.warning("Task killed: canceled deployment %s at %s", name, scope)
        except HttpResponseError as err:
            self.log.warning("Task killed: could not cancel deployment %s at %s: %s", name, scope, err)
        finally:
            hook.close()

    # -- steps --------------------------------------------------------------------------------------

    def _read_spec(self, hook: AzureResourceManagerHook) -> PinnedSpec:
        """Read the template spec version once. It must lie inside allowed_scopes or allowed_reference_scopes:
        whoever can change it there decides what this task deploys."""
        from airflow_identity_provider.azure.rules.fence_judgement import ALLOWED_REFERENCE_SCOPES_SETTING, Fence

        spec_id = str(self.template_spec_id)
        settings = hook.settings
        fence = Fence.of(settings.allowed_scopes, settings.allowed_reference_scopes)
        if fence.where(spec_id) in ("outside", "invalid"):
            raise self.refusal(
                hook,
                f"template_spec_id {spec_id} is outside the connection's allowed_scopes and "
                f"{ALLOWED_REFERENCE_SCOPES_SETTING} ({fence.describe()}): whoever can publish there decides what "
                f"this task deploys. Add its scope to {ALLOWED_REFERENCE_SCOPES_SETTING} on the connection if it is "
                "trusted",
                reason="template_spec_outside_fence",
                target_scope=spec_id,
            )
        pinned = read_template_spec(hook, spec_id)
        how = "sent by id and re-read before the deployment" if pinned.has_linked_templates else "sent inline"
        self.log.info("template spec %s read; sha256 %s; %s", pinned.version_id, pinned.sha256, how)
        return pinned

    def _check_spec_unchanged(self, hook: AzureResourceManagerHook, pinned: PinnedSpec) -> None:
        """The version checked must be the version deployed: read it again right before the PUT."""
        again = read_template_spec(hook, pinned.version_id)
        if again.sha256 != pinned.sha256:
            raise self.refusal(
                hook,
                f"template spec version {pinned.version_id} changed while the preflight checked it (sha256 "
                f"{pinned.sha256} before, {again.sha256} now): a version must not change once published. Publish "
                "the change as a new version and point template_spec_id at it",
                reason="template_spec_changed",
                target_scope=pinned.version_id,
            )
        self.log.info("template spec %s unchanged since the preflight (sha256 %s)", pinned.version_id, again.sha256)

    def _reattach(
        self,
        context: Context,
        hook: AzureResourceManagerHook,
        target: DeploymentTarget,
        name: str,
        existing: Any,
        marker: str,
        content: str,
        started: float,
        try_number: int,
    ) -> dict[str, Any] | None:
        """A deployment by this name exists. Use it when an earlier try of this task instance started it with
        the same content; else None (deploy). The tags can be written by anyone with deployment write in the
        group, so a first try never re-attaches, and the content must match: what is awaited was checked."""
        state = provisioning_state(existing)
        tags = dict(getattr(existing, "tags", None) or {})
        ours = tags.get(RUN_KEY_TAG) == marker and tags.get(CONTENT_HASH_TAG) == content and try_number > 1
        if state not in TERMINAL_STATES:
            if not ours:
                raise AirflowException(
                    f"Deployment {name} at {target.scope} is already {state} and was not started by an earlier try "
                    f"of this task instance with the same content (tags {RUN_KEY_TAG} / {CONTENT_HASH_TAG}); wait for "
                    "it or use another deployment_name"
                )
            self.log.info("Re-attaching to deployment %s (%s), started by an earlier try of this task", name, state)
            return self._wait_or_defer(context, hook, target, name, started)
        if ours and state == "Succeeded":
            self.log.info("Deployment %s already succeeded for this task instance with the same content", name)
            return self._finish(context, hook, target, name, existing)
        return None

    def _start(self, session: DeploymentSession, body: Mapping[str, Any]) -> None:
        accepted = session.start(body)
        props = getattr(accepted, "properties", None)
        self.log.info(
            "Deployment %s accepted at %s (%s); correlation id %s",
            session.name,
            session.target.scope,
            provisioning_state(accepted),
            getattr(props, "correlation_id", None) or session.hook.correlation_id,
        )

    def _wait_or_defer(
        self, context: Context, hook: AzureResourceManagerHook, target: DeploymentTarget, name: str, started: float
    ) -> dict[str, Any]:
        if self.deferrable:
            self.log.info("Deferring: the triggerer polls deployment %s every %ss", name, self.poll_interval)
            self.defer(
                trigger=AzureDeploymentTrigger(
                    conn_id=self.azure_resource_manager_conn_id,
                    deployment_name=name,
                    subscription_id=target.subscription_id,
                    resource_group_name=target.resource_group,
                    scope=target.scope,
                    poll_interval=self.poll_interval,
                    timeout_at=None
                    if self.timeout is None
                    else time.time() + self.timeout - (time.monotonic() - started),
                    correlation_id=hook.correlation_id,
                ),
                method_name="execute_complete",
            )
        deployment = self._wait(hook, target, name, started)
        return self._finish(context, hook, target, name, deployment)

    def _wait(self, hook: AzureResourceManagerHook, target: DeploymentTarget, name: str, started: float) -> Any:
        self._active = (target.scope, name, hook.correlation_id)
        try:
            return self._session(hook, target, name).wait(
                poll_interval=self.poll_interval, timeout=self.timeout, started=started, log=self.log
            )
        finally:
            self._active = None

    def _finish(
        self, context: Context, hook: AzureResourceManagerHook, target: DeploymentTarget, name: str, deployment: Any
    ) -> dict[str, Any]:
        """XCom ``deployment``; outputs (secure ones masked) on success; ARM's errors verbatim on failure."""
        from airflow.sdk.log import mask_secret

        raw = as_dict(deployment)
        props = raw.get("properties") or {}
        state = provisioning_state(deployment)
        info = {
            "name": name,
            "id": raw.get("id"),
            "scope": target.scope,
            "correlation_id": props.get("correlationId"),
            "provisioning_state": state,
            "duration": props.get("duration"),
            "timestamp": props.get("timestamp"),
            "template_hash": props.get("templateHash"),
        }
        context["ti"].xcom_push(key=DEPLOYMENT_XCOM_KEY, value=info)
        self.log.info(
            "Deployment %s %s in %s (correlation id %s)", name, state, info["duration"], info["correlation_id"]
        )
        if state != "Succeeded":
            raise AirflowException(self._failure_message(hook, target, name, state, props))
        outputs = outputs_for_xcom(props.get("outputs"), mask_secret)
        self.log.info("Deployment outputs: %s", ", ".join(outputs) or "none")
        return outputs

    def _failure_message(
        self, hook: AzureResourceManagerHook, target: DeploymentTarget, name: str, state: str, props: Mapping[str, Any]
    ) -> str:
        from azure.core.exceptions import HttpResponseError

        lines = [f"Deployment {name} at {target.scope} ended {state} (correlation id {props.get('correlationId')})."]
        lines += error_lines(props.get("error"), "  ")
        try:
            failed = self._session(hook, target, name).failed_operations()
        except HttpResponseError as err:
            lines.append(f"  (could not list the deployment operations: {err})")
            failed = []
        if failed:
            lines.append("Failed deployment operations:")
            lines += [f"  - {text}" for text in failed]
        for line in lines:
            self.log.error("%s", line)
        return "\n".join(lines)
