"""Tags at any ARM scope (subscription, resource group, resource) through ``Microsoft.Resources/tags``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException

from airflow_identity_provider.azure.hooks.errors import raise_arm_error
from airflow_identity_provider.azure.operators._base import AzureResourceManagerBaseOperator
from airflow_identity_provider.azure.rules.scopes import normalize_scope

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["AzureTagsUpdateOperator"]

OPERATIONS = ("Merge", "Replace", "Delete")


class AzureTagsUpdateOperator(AzureResourceManagerBaseOperator):
    """Merge, replace or delete tags on a resource, resource group or subscription; returns the tags after.

    :param scope: the ARM id to tag (templated), e.g. ``/subscriptions/<id>/resourceGroups/rg`` or a
        resource id.
    :param tags: the tags (templated). For ``Delete``, the tags to remove (a value given must match).
    :param operation: ``Merge`` (add or overwrite these), ``Replace`` (exactly these), ``Delete``.
    """

    template_fields: Sequence[str] = ("scope", "tags")
    template_fields_renderers = {"tags": "json"}
    ui_color = "#e2e3e5"

    def __init__(
        self,
        *,
        scope: str,
        tags: Mapping[str, str],
        operation: str = "Merge",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        canonical = next((op for op in OPERATIONS if op.lower() == str(operation).lower()), None)
        if canonical is None:
            raise ValueError(f"operation must be one of {', '.join(OPERATIONS)}, not {operation!r}")
        self.scope = scope
        self.tags = tags
        self.operation = canonical

    def execute(self, context: Context) -> dict[str, str]:
        from azure.core.exceptions import HttpResponseError

        try:
            scope = normalize_scope(self.scope)
        except ValueError as err:
            raise AirflowException(f"Invalid scope {self.scope!r}: {err}") from None
        if not isinstance(self.tags, Mapping):
            raise AirflowException(f"tags must be a dict, got {type(self.tags).__name__}")
        tags = {str(k): str(v) for k, v in self.tags.items()}
        hook = self.make_hook(context)
        try:
            self.run_preflight(context, self.make_preflight(hook), target_scope=scope, operation="tags_write")
            body = {"operation": self.operation, "properties": {"tags": tags}}
            try:
                result = hook.get_resource_client().tags.begin_update_at_scope(scope, body).result()
            except HttpResponseError as err:
                raise_arm_error(f"{self.operation.lower()} tags at {scope}", err)
            after = dict(getattr(getattr(result, "properties", None), "tags", None) or {})
            self.log.info("%s %d tag(s) at %s; it now has %d", self.operation, len(tags), scope, len(after))
            return after
        finally:
            hook.close()
