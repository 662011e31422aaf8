"""What validate, what-if and deploy share: target, deployment name, template source, parameters and mode,
secret parameters kept out of rendered fields, the request body and the what-if change log."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException

from airflow_identity_provider.azure.deployments.state import DeploymentTarget, target_of
from airflow_identity_provider.azure.operators._base import (
    AzureResourceManagerBaseOperator,
    resource_group_scope,
    task_identity,
)
from airflow_identity_provider.azure.operators._template import (
    TemplateSourceError,
    declared_secure_names,
    default_deployment_name,
    hide_secret_parameters,
    load_parameters,
    mask_secure_parameters,
    read_json,
    restore_secret_parameters,
    template_properties,
)
from airflow_identity_provider.azure.rules.preflight_rules import DEPLOYMENT_MODES, parse_what_if
from airflow_identity_provider.azure.rules.what_if_diagnostics import parse_diagnostics

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_identity_provider.azure.deployments.session import DeploymentSession
    from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerHook

__all__ = ["TEMPLATE_FIELDS", "TemplateOperatorBase"]

TEMPLATE_FIELDS: tuple[str, ...] = (
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


def _canonical_mode(mode: str) -> str:
    for known in DEPLOYMENT_MODES:
        if isinstance(mode, str) and mode.strip().lower() == known.lower():
            return known
    raise ValueError(f"mode must be one of {', '.join(DEPLOYMENT_MODES)}, not {mode!r}")


class TemplateOperatorBase(AzureResourceManagerBaseOperator):
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

    template_fields: Sequence[str] = TEMPLATE_FIELDS
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

    def _target(self, hook: AzureResourceManagerHook) -> DeploymentTarget:
        if self.resource_group_name:
            subscription = self.target_subscription(hook)
            return DeploymentTarget(
                resource_group_scope(subscription, self.resource_group_name), subscription, self.resource_group_name
            )
        return target_of(str(self.scope))

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
        self, target: DeploymentTarget, properties: Mapping[str, Any], tags: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"properties": dict(properties)}
        if target.resource_group is None:
            if not self.location:
                raise AirflowException("location is required for a subscription-level deployment")
            body["location"] = self.location
        if tags:
            body["tags"] = dict(tags)
        return body

    def _session(self, hook: AzureResourceManagerHook, target: DeploymentTarget, name: str) -> DeploymentSession:
        from airflow_identity_provider.azure.deployments.session import DeploymentSession

        return DeploymentSession(hook, target, name)

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
