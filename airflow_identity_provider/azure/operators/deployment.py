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

import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import conf
from airflow.sdk.exceptions import AirflowException

from airflow_identity_provider.azure.connection import normalize_scope
from airflow_identity_provider.azure.deployment_checks import secure_parameter_names
from airflow_identity_provider.azure.operators._base import (
    AzureResourceManagerBaseOperator,
    raise_arm_error,
    resource_group_scope,
    task_identity,
)
from airflow_identity_provider.azure.operators._sources import PinnedSpec, read_template_spec
from airflow_identity_provider.azure.operators._template import (
    CONTENT_HASH_TAG,
    RUN_KEY_TAG,
    TemplateSourceError,
    content_hash,
    declared_secure_names,
    default_deployment_name,
    deployment_tags,
    hide_secret_parameters,
    load_parameters,
    mask_secure_parameters,
    outputs_for_xcom,
    read_json,
    restore_secret_parameters,
    run_key,
    template_properties,
)
from airflow_identity_provider.azure.preflight_rules import (
    DEPLOYMENT_MODES,
    REQUIRED_ACTIONS,
    check_changes,
    parse_what_if,
)
from airflow_identity_provider.azure.triggers.deployment import (
    TERMINAL_STATES,
    AzureDeploymentTrigger,
    provisioning_state,
)
from airflow_identity_provider.azure.what_if_diagnostics import parse_diagnostics

if TYPE_CHECKING:
    from airflow.sdk import Context
    from azure.mgmt.resource.deployments import DeploymentsMgmtClient

    from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerHook

__all__ = [
    "DEPLOYMENT_XCOM_KEY",
    "AzureTemplateDeploymentOperator",
    "AzureTemplateValidateOperator",
    "AzureTemplateWhatIfOperator",
]

DEPLOYMENT_XCOM_KEY = "deployment"
_TEMPLATE_FIELDS: tuple[str, ...] = (
    "resource_group_name",
    "scope",
    "subscription_id",
    "deployment_name",
    "location",
    "template",
    "template_file",
    "template_link",
    "template_spec_id",
    "parameters",
    "parameters_file",
)


@dataclass(frozen=True)
class _Target:
    """Where a deployment lives: a resource group, or a subscription (``resource_group`` None)."""

    scope: str
    subscription_id: str
    resource_group: str | None


def _target_of(scope: str) -> _Target:
    """A subscription or resource-group scope as a deployment target; anything else is refused."""
    try:
        scope = normalize_scope(scope)
    except ValueError as err:
        raise AirflowException(f"Invalid deployment scope {scope!r}: {err}") from None
    parts = scope.split("/")
    if len(parts) == 3 and parts[1] == "subscriptions":
        return _Target(scope, parts[2], None)
    if len(parts) == 5 and parts[3] == "resourceGroups":
        return _Target(scope, parts[2], parts[4])
    raise AirflowException(
        f"Deployment scope {scope!r} is not supported: use /subscriptions/<id> or a resource group "
        "(management-group and tenant deployments are not supported by these operators yet)"
    )


def _as_dict(model: Any) -> dict[str, Any]:
    if model is None:
        return {}
    if hasattr(model, "as_dict"):
        result: dict[str, Any] = model.as_dict()
        return result
    return dict(model) if isinstance(model, Mapping) else {}


def _canonical_mode(mode: str) -> str:
    for known in DEPLOYMENT_MODES:
        if isinstance(mode, str) and mode.strip().lower() == known.lower():
            return known
    raise ValueError(f"mode must be one of {', '.join(DEPLOYMENT_MODES)}, not {mode!r}")


def _error_lines(error: Mapping[str, Any] | None, indent: str = "") -> list[str]:
    """ARM's error object, verbatim, one ``(Code) message`` per line, details indented."""
    if not error:
        return []
    lines = [f"{indent}({error.get('code')}) {error.get('message')}"]
    for detail in error.get("details") or ():
        if isinstance(detail, Mapping):
            lines.extend(_error_lines(detail, indent + "  "))
    return lines


def _operation_failure(op: Mapping[str, Any]) -> str | None:
    """One failed deployment operation: target resource and ARM's ``statusMessage``, verbatim."""
    props = op.get("properties") or {}
    if str(props.get("provisioningState", "")).lower() != "failed":
        return None
    target = props.get("targetResource") or {}
    what = f"{target.get('resourceType', '?')} '{target.get('resourceName', '?')}'" if target else "(no target)"
    message = props.get("statusMessage")
    error = message.get("error") if isinstance(message, Mapping) else None
    if isinstance(error, Mapping):
        text = " ".join(_error_lines(error)).strip()
    else:
        text = message if isinstance(message, str) else json.dumps(message, default=str)
    return f"{what} ({props.get('statusCode', 'no status code')}): {text}"


class _TemplateOperatorBase(AzureResourceManagerBaseOperator):
    """Arguments shared by validate, what-if and deploy: target, name, template, parameters, mode.

    :param resource_group_name: deploy into this resource group (templated). Or:
    :param scope: ``/subscriptions/<id>`` for a subscription-level deployment (or a resource group id).
    :param location: required for subscription-level deployments (where ARM keeps the deployment).
    :param deployment_name: (templated) default: derived from dag_id/task_id/run_id (and map index), the
        same for every try of one task instance.
    :param template: an ARM JSON template as a dict; or ``template_file`` (a JSON file, relative to the
        DAG file's folder), ``template_link`` (a URI ARM fetches) or ``template_spec_id``.
    :param parameters: ``{name: value}`` (or ARM's ``{name: {"value": v}}`` / Key Vault
        ``{"reference": ...}``); overrides ``parameters_file``.
    :param mode: ``Incremental`` (default) or ``Complete`` (deletes what the template does not name).
    :param secure_parameters: names of parameters to treat as secret on top of those the template declares
        ``securestring``/``secureObject``: never stored in rendered fields, XCom or logs. Key Vault
        references (``{"reference": ...}``) are the better way to pass secrets.
    """

    template_fields: Sequence[str] = _TEMPLATE_FIELDS
    template_fields_renderers = {"template": "json", "parameters": "json"}
    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        resource_group_name: str | None = None,
        scope: str | None = None,
        location: str | None = None,
        deployment_name: str | None = None,
        template: Mapping[str, Any] | None = None,
        template_file: str | None = None,
        template_link: str | None = None,
        template_spec_id: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        parameters_file: str | None = None,
        mode: str = "Incremental",
        secure_parameters: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(secure_parameters, str):
            raise ValueError("secure_parameters must be a list of parameter names, not one string")
        if bool(resource_group_name) == bool(scope):
            raise ValueError("give exactly one of resource_group_name and scope")
        sources = [s for s in (template, template_file, template_link, template_spec_id) if s is not None]
        if len(sources) != 1:
            raise ValueError("give exactly one of template, template_file, template_link, template_spec_id")
        self.resource_group_name = resource_group_name
        self.scope = scope
        self.location = location
        self.deployment_name = deployment_name
        self.template = template
        self.template_file = template_file
        self.template_link = template_link
        self.template_spec_id = template_spec_id
        self.parameters = parameters
        self.parameters_file = parameters_file
        self.mode = _canonical_mode(mode)
        self.secure_parameters = tuple(secure_parameters)
        self._secret_parameter_values: dict[str, Any] = {}
        self._template_link_query = ""

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Render, then take secret parameter values out of the rendered ``parameters`` field: Airflow stores
        rendered fields for the UI right after this returns, before ``execute()``."""
        super().render_template_fields(context, jinja_env)
        from airflow.sdk.log import mask_secret

        if self.parameters is not None and not isinstance(self.parameters, Mapping):
            # A string (non-native Jinja rendering) would be stored as is, secrets included: refuse now.
            raise AirflowException(
                f"parameters must render to a dict, not {type(self.parameters).__name__}; use "
                "render_template_as_native_obj=True on the DAG, or give a dict of templated values"
            )
        if self.template_link and "?" in self.template_link:
            # The query of a blob URL is usually a SAS token: the rendered field keeps "?***".
            self.template_link, self._template_link_query = self.template_link.split("?", 1)
            mask_secret(self._template_link_query)
            self.template_link += "?***"
        shown, kept = hide_secret_parameters(self.parameters, self._secret_names_at_render())
        for wrapped in kept.values():
            value = wrapped.get("value") if isinstance(wrapped, Mapping) and set(wrapped) == {"value"} else wrapped
            if value not in (None, ""):
                mask_secret(value)
        self.parameters, self._secret_parameter_values = shown, kept

    def _secret_names_at_render(self) -> list[str] | None:
        """Declared secure parameters plus ``secure_parameters``; None (hide all) when the template is only
        fetched later (link, spec) or its file cannot be read now (execute reports that)."""
        if self.template_link or self.template_spec_id:
            return None
        template: Any = self.template
        if self.template_file:
            try:
                template = read_json(self.template_file, self._base_dir(), "template_file")
            except TemplateSourceError:
                return None
        return [*declared_secure_names(template), *self.secure_parameters]

    # -- request ------------------------------------------------------------------------------------

    def _target(self, hook: AzureResourceManagerHook) -> _Target:
        if self.resource_group_name:
            subscription = self.target_subscription(hook)
            return _Target(
                resource_group_scope(subscription, self.resource_group_name), subscription, self.resource_group_name
            )
        return _target_of(str(self.scope))

    def _base_dir(self) -> Path | None:
        """Relative template/parameter files are relative to the DAG file, not the worker's cwd."""
        dag = self.get_dag()
        fileloc = getattr(dag, "fileloc", None) if dag is not None else None
        return Path(fileloc).parent if fileloc else None

    def _deployment_name(self, context: Context | Mapping[str, Any]) -> str:
        if self.deployment_name:
            return self.deployment_name
        dag_id, task_id, run_id, _, map_index = task_identity(context)
        return default_deployment_name(dag_id, task_id, run_id, map_index)

    def _properties(self, hook: AzureResourceManagerHook, scanned: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``properties`` of the deployment request; secure parameter values are masked first.

        A ``template_link`` is fetched here, once, and sent inline (check-then-use safety).
        :param scanned: the template a spec id resolves to, when the caller read it.
        """
        from airflow.sdk.log import mask_secret

        from airflow_identity_provider.azure.operators._sources import fetch_linked_template, template_sha256

        base_dir = self._base_dir()
        try:
            properties = template_properties(
                template=self.template,
                template_file=self.template_file,
                template_link=self.template_link,
                template_spec_id=self.template_spec_id,
                base_dir=base_dir,
            )
            given = restore_secret_parameters(self.parameters, self._secret_parameter_values)
            parameters = load_parameters(given, self.parameters_file, base_dir)
        except TemplateSourceError as err:
            raise AirflowException(str(err)) from None
        if self.template_link:
            verify = hook.settings.connection_verify or True
            link = self.template_link
            if self._template_link_query:
                link = f"{link.removesuffix('?***')}?{self._template_link_query}"
            fetched = fetch_linked_template(link, verify=verify)
            self.log.info("template_link fetched once and sent inline; sha256 %s", template_sha256(fetched))
            properties = {"template": fetched}
        if scanned is not None:
            properties = {"template": scanned}  # a template spec without linked templates, sent inline
        template = properties.get("template")
        mask_secure_parameters(template, parameters, mask_secret, self.secure_parameters)
        return {"mode": self.mode, **properties, "parameters": parameters}

    def _body(
        self, target: _Target, properties: Mapping[str, Any], tags: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"properties": dict(properties)}
        if target.resource_group is None:
            if not self.location:
                raise AirflowException("location is required for a subscription-level deployment")
            body["location"] = self.location
        if tags:
            body["tags"] = dict(tags)
        return body

    def _deployments_client(self, hook: AzureResourceManagerHook, target: _Target) -> DeploymentsMgmtClient:
        return hook.get_deployments_client(subscription_id=target.subscription_id)

    def _what_if(
        self, hook: AzureResourceManagerHook, target: _Target, name: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """ARM's what-if for exactly the request that would be sent; the final result body as a dict."""
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.resource.deployments.models import DeploymentWhatIf

        # The SDK's hybrid models wrap the REST JSON as is; tags are not part of a what-if request.
        request = DeploymentWhatIf({key: value for key, value in body.items() if key != "tags"})
        deployments = self._deployments_client(hook, target).deployments
        try:
            if target.resource_group is not None:
                poller = deployments.begin_what_if(target.resource_group, name, request)
            else:
                poller = deployments.begin_what_if_at_subscription_scope(name, request)
            result = _as_dict(poller.result())
        except HttpResponseError as err:
            raise_arm_error(f"run what-if for deployment {name} at {target.scope}", err)
        if str(result.get("status", "")).lower() == "failed" or result.get("error"):
            lines = "\n".join(_error_lines(result.get("error")))
            raise AirflowException(f"What-if for deployment {name} at {target.scope} failed:\n{lines}")
        return result

    def _log_changes(self, what_if: Mapping[str, Any]) -> dict[str, Any]:
        """Log the predicted changes and return the summary the what-if operator pushes to XCom."""
        changes = parse_what_if(what_if)
        counts = Counter(c.change_type for c in changes)
        self.log.info("What-if: %s", ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "no changes")
        for c in changes:
            self.log.info("  %-11s %s (%s)", c.change_type, c.resource_id, c.resource_type or "unknown type")
        diagnostics = parse_diagnostics(what_if)
        for d in diagnostics:
            self.log.warning("What-if diagnostic: %s", d.line())
        return {
            "status": what_if.get("status"),
            "counts": dict(counts),
            "diagnostics": [d.to_dict() for d in diagnostics],
            "changes": [
                {"resource_id": c.resource_id, "change_type": c.change_type, "resource_type": c.resource_type}
                for c in changes
            ],
        }


class AzureTemplateValidateOperator(_TemplateOperatorBase):
    """Validate a template deployment (ARM's ``validate``; nothing is written).

    Returns ``{"deployment_name", "scope", "validated_resources": [ids], "template_hash"}``; fails with
    ARM's error verbatim when the template or parameters are invalid.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.resource.deployments.models import Deployment

        hook = self.make_hook(context)
        try:
            target = self._target(hook)
            name = self._deployment_name(context)
            self.run_preflight(
                context, self.make_preflight(hook), target_scope=target.scope, operation="deployment_validate"
            )
            body = self._body(target, self._properties(hook))
            try:
                deployments = self._deployments_client(hook, target).deployments
                result = deployments.begin_validate_at_scope(target.scope, name, Deployment(body)).result()
            except HttpResponseError as err:
                raise_arm_error(f"validate deployment {name} at {target.scope}", err)
            raw = _as_dict(result)
            props = raw.get("properties") or {}
            if raw.get("error") or props.get("error"):
                lines = "\n".join(_error_lines(raw.get("error") or props.get("error")))
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


class AzureTemplateWhatIfOperator(_TemplateOperatorBase):
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
            target = self._target(hook)
            name = self._deployment_name(context)
            self.run_preflight(
                context, self.make_preflight(hook), target_scope=target.scope, operation="deployment_what_if"
            )
            what_if = self._what_if(hook, target, name, self._body(target, self._properties(hook)))
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


class AzureTemplateDeploymentOperator(_TemplateOperatorBase):
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

    template_fields: Sequence[str] = (*_TEMPLATE_FIELDS, "tags")
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

            existing = self._get(hook, target, name)
            if existing is not None:
                try_number = task_identity(context)[3]
                reattached = self._reattach(context, hook, target, name, existing, marker, content, started, try_number)
                if reattached is not None:
                    return reattached

            tags = deployment_tags(self.tags, dag_id=dag_id, task_id=task_id, run_key_value=marker, content=content)
            body = self._body(target, properties, tags)
            what_if = self._what_if(hook, target, name, body)
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
            self._start(hook, target, name, body)
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
            raise AirflowException(self._timeout_message(name, scope, event.get("provisioning_state")))
        hook = self.make_hook(context)
        try:
            target = _target_of(scope)
            deployment = self._get(hook, target, name)
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
            hook.get_deployments_client().deployments.cancel_at_scope(scope, name)
            self.log.warning("Task killed: canceled deployment %s at %s", name, scope)
        except HttpResponseError as err:
            self.log.warning("Task killed: could not cancel deployment %s at %s: %s", name, scope, err)
        finally:
            hook.close()

    # -- steps --------------------------------------------------------------------------------------

    def _read_spec(self, hook: AzureResourceManagerHook) -> PinnedSpec:
        """Read the template spec version once. It must lie inside allowed_scopes or allowed_reference_scopes:
        whoever can change it there decides what this task deploys."""
        from airflow_identity_provider.azure.fence_judgement import ALLOWED_REFERENCE_SCOPES_SETTING, Fence
        from airflow_identity_provider.azure.preflight import PreflightRefused

        spec_id = str(self.template_spec_id)
        settings = hook.settings
        fence = Fence.of(settings.allowed_scopes, settings.allowed_reference_scopes)
        if fence.where(spec_id) in ("outside", "invalid"):
            raise PreflightRefused(
                f"template_spec_id {spec_id} is outside the connection's allowed_scopes and "
                f"{ALLOWED_REFERENCE_SCOPES_SETTING} ({fence.describe()}): whoever can publish there decides what "
                f"this task deploys. Add its scope to {ALLOWED_REFERENCE_SCOPES_SETTING} on the connection if it is "
                "trusted"
            )
        pinned = read_template_spec(hook, spec_id)
        how = "sent by id and re-read before the deployment" if pinned.has_linked_templates else "sent inline"
        self.log.info("template spec %s read; sha256 %s; %s", pinned.version_id, pinned.sha256, how)
        return pinned

    def _check_spec_unchanged(self, hook: AzureResourceManagerHook, pinned: PinnedSpec) -> None:
        """The version checked must be the version deployed: read it again right before the PUT."""
        from airflow_identity_provider.azure.preflight import PreflightRefused

        again = read_template_spec(hook, pinned.version_id)
        if again.sha256 != pinned.sha256:
            raise PreflightRefused(
                f"template spec version {pinned.version_id} changed while the preflight checked it (sha256 "
                f"{pinned.sha256} before, {again.sha256} now): a version must not change once published. Publish "
                "the change as a new version and point template_spec_id at it"
            )
        self.log.info("template spec %s unchanged since the preflight (sha256 %s)", pinned.version_id, again.sha256)

    def _get(self, hook: AzureResourceManagerHook, target: _Target, name: str) -> Any:
        """The deployment, or None if ARM has none by that name (or the group does not exist yet)."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        try:
            return self._deployments_client(hook, target).deployments.get_at_scope(target.scope, name)
        except ResourceNotFoundError:
            return None
        except HttpResponseError as err:
            raise_arm_error(f"read deployment {name} at {target.scope}", err)

    def _reattach(
        self,
        context: Context,
        hook: AzureResourceManagerHook,
        target: _Target,
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

    def _start(self, hook: AzureResourceManagerHook, target: _Target, name: str, body: Mapping[str, Any]) -> None:
        """PUT the deployment; only the acceptance is awaited (waiting is done by GET, here or in the trigger)."""
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.resource.deployments.models import Deployment

        try:
            poller = self._deployments_client(hook, target).deployments.begin_create_or_update_at_scope(
                target.scope, name, Deployment(body), polling=False
            )
            accepted = poller.result()
        except HttpResponseError as err:
            raise_arm_error(f"start deployment {name} at {target.scope}", err)
        props = getattr(accepted, "properties", None)
        self.log.info(
            "Deployment %s accepted at %s (%s); correlation id %s",
            name,
            target.scope,
            provisioning_state(accepted),
            getattr(props, "correlation_id", None) or hook.correlation_id,
        )

    def _wait_or_defer(
        self, context: Context, hook: AzureResourceManagerHook, target: _Target, name: str, started: float
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

    def _wait(self, hook: AzureResourceManagerHook, target: _Target, name: str, started: float) -> Any:
        self._active = (target.scope, name, hook.correlation_id)
        try:
            while True:
                deployment = self._get(hook, target, name)
                if deployment is None:
                    raise AirflowException(f"Deployment {name} at {target.scope} disappeared while running")
                state = provisioning_state(deployment)
                if state in TERMINAL_STATES:
                    return deployment
                if self.timeout is not None and time.monotonic() - started >= self.timeout:
                    raise AirflowException(self._timeout_message(name, target.scope, state))
                self.log.info("Deployment %s: %s; next poll in %ss", name, state, self.poll_interval)
                time.sleep(self.poll_interval)
        finally:
            self._active = None

    @staticmethod
    def _timeout_message(name: str, scope: str, state: Any) -> str:
        return (
            f"Deployment {name} at {scope} is still {state} after the operator's timeout. It keeps running in "
            "Azure; a retry of this task re-attaches to it (same deployment name), or cancel it in the portal."
        )

    def _finish(
        self, context: Context, hook: AzureResourceManagerHook, target: _Target, name: str, deployment: Any
    ) -> dict[str, Any]:
        """XCom ``deployment``; outputs (secure ones masked) on success; ARM's errors verbatim on failure."""
        from airflow.sdk.log import mask_secret

        raw = _as_dict(deployment)
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
        self, hook: AzureResourceManagerHook, target: _Target, name: str, state: str, props: Mapping[str, Any]
    ) -> str:
        from azure.core.exceptions import HttpResponseError

        lines = [f"Deployment {name} at {target.scope} ended {state} (correlation id {props.get('correlationId')})."]
        lines += _error_lines(props.get("error"), "  ")
        try:
            operations = [
                _as_dict(op)
                for op in self._deployments_client(hook, target).deployment_operations.list_at_scope(target.scope, name)
            ]
        except HttpResponseError as err:
            lines.append(f"  (could not list the deployment operations: {err})")
            operations = []
        failed = [text for text in map(_operation_failure, operations) if text]
        if failed:
            lines.append("Failed deployment operations:")
            lines += [f"  - {text}" for text in failed]
        for line in lines:
            self.log.error("%s", line)
        return "\n".join(lines)
