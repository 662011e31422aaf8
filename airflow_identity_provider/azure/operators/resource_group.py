"""Resource group create-or-update and delete, each behind the least-privilege preflight."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException

from airflow_identity_provider.azure.hooks.errors import raise_arm_error
from airflow_identity_provider.azure.operators._base import AzureResourceManagerBaseOperator, resource_group_scope
from airflow_identity_provider.azure.rules.arm_json import arm_error_text
from airflow_identity_provider.azure.rules.preflight_rules import contained_delete_actions

if TYPE_CHECKING:
    from airflow.sdk import Context
    from azure.mgmt.resource.resources import ResourceManagementClient
    from azure.mgmt.resource.resources.models import ResourceGroup

    from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerHook

__all__ = ["AzureResourceGroupCreateOrUpdateOperator", "AzureResourceGroupDeleteOperator"]


def _group_dict(group: ResourceGroup) -> dict[str, Any]:
    props = getattr(group, "properties", None)
    return {
        "id": group.id,
        "name": group.name,
        "location": group.location,
        "tags": dict(group.tags or {}),
        "provisioning_state": getattr(props, "provisioning_state", None),
    }


class AzureResourceGroupCreateOrUpdateOperator(AzureResourceManagerBaseOperator):
    """Create a resource group, or update its tags; returns ``{id, name, location, tags, provisioning_state}``.

    Idempotent and write-shy: it reads the group first and sends no PUT when it already exists with the
    same tags (``tags=None`` keeps the existing tags instead of wiping them, as a bare PUT would).

    :param resource_group_name: the group (templated).
    :param location: its region, e.g. ``westeurope`` (templated). A group cannot move: a different
        location for an existing group is refused before any write.
    :param tags: the group's tags (templated); None keeps the current ones.
    """

    template_fields: Sequence[str] = ("resource_group_name", "location", "tags", "subscription_id")
    template_fields_renderers = {"tags": "json"}
    ui_color = "#cce5ff"

    def __init__(
        self,
        *,
        resource_group_name: str,
        location: str,
        tags: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.resource_group_name = resource_group_name
        self.location = location
        self.tags = tags

    def execute(self, context: Context) -> dict[str, Any]:
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        hook = self.make_hook(context)
        try:
            subscription = self.target_subscription(hook)
            scope = resource_group_scope(subscription, self.resource_group_name)
            self.check_fence(hook, target_scope=scope, operation="resource_group_write")
            groups = hook.get_resource_client(subscription_id=subscription).resource_groups
            try:
                existing: ResourceGroup | None = groups.get(self.resource_group_name)
            except ResourceNotFoundError:
                existing = None
            except HttpResponseError as err:
                raise_arm_error(f"read resource group {scope}", err)
            tags = dict(self.tags) if self.tags is not None else None
            if existing is not None:
                if (existing.location or "").replace(" ", "").lower() != self.location.replace(" ", "").lower():
                    raise AirflowException(
                        f"Resource group {scope} exists in {existing.location}, not {self.location}; a resource "
                        "group cannot move. Use its current location or another group name."
                    )
                if tags is None or tags == dict(existing.tags or {}):
                    self.log.info("Resource group %s already exists as requested; nothing to write", scope)
                    return _group_dict(existing)
            self.run_preflight(context, self.make_preflight(hook), target_scope=scope, operation="resource_group_write")
            body: dict[str, Any] = {"location": self.location}
            if tags is not None:  # an existing group with tags=None returned above, so its tags are never wiped
                body["tags"] = tags
            try:
                group = groups.create_or_update(self.resource_group_name, body)
            except HttpResponseError as err:
                raise_arm_error(f"create or update resource group {scope}", err)
            self.log.info("Resource group %s %s in %s", scope, "updated" if existing else "created", group.location)
            return _group_dict(group)
        finally:
            hook.close()


class AzureResourceGroupDeleteOperator(AzureResourceManagerBaseOperator):
    """Delete a resource group and everything in it. A group that does not exist is a success (a retry
    after a delete that went through must not fail).

    :param resource_group_name: the group (templated).
    :param force_deletion_types: resource types to force-delete, e.g.
        ``["Microsoft.Compute/virtualMachines", "Microsoft.Compute/virtualMachineScaleSets"]`` (templated).
    :param wait_for_completion: poll until the group is gone (ARM's delete is long-running).
    """

    template_fields: Sequence[str] = ("resource_group_name", "force_deletion_types", "subscription_id")
    ui_color = "#f8d7da"

    def __init__(
        self,
        *,
        resource_group_name: str,
        force_deletion_types: str | Sequence[str] | None = None,
        wait_for_completion: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.resource_group_name = resource_group_name
        self.force_deletion_types = force_deletion_types
        self.wait_for_completion = wait_for_completion

    def _force_types(self) -> str | None:
        value = self.force_deletion_types
        if not value:
            return None
        return value if isinstance(value, str) else ",".join(value)

    def execute(self, context: Context) -> dict[str, Any]:
        from azure.core.exceptions import HttpResponseError

        hook = self.make_hook(context)
        try:
            subscription = self.target_subscription(hook)
            scope = resource_group_scope(subscription, self.resource_group_name)
            self.check_fence(hook, target_scope=scope, operation="resource_group_delete")
            client = hook.get_resource_client(subscription_id=subscription)
            try:
                exists = client.resource_groups.check_existence(self.resource_group_name)
            except HttpResponseError as err:
                raise_arm_error(f"read resource group {scope}", err)
            if not exists:
                self.log.info("Resource group %s does not exist; nothing to delete", scope)
                return {"id": scope, "deleted": False}
            self.run_preflight(
                context,
                self.make_preflight(hook),
                target_scope=scope,
                operation="resource_group_delete",
                extra_actions=self._contained_delete_actions(client, scope, hook),
            )
            try:
                poller = client.resource_groups.begin_delete(
                    self.resource_group_name,
                    force_deletion_types=self._force_types(),
                    polling=self.wait_for_completion,
                )
                if self.wait_for_completion:
                    poller.result()
            except HttpResponseError as err:
                raise_arm_error(f"delete resource group {scope}", err)
            self.log.info("Resource group %s %s", scope, "deleted" if self.wait_for_completion else "delete accepted")
            return {"id": scope, "deleted": True, "completed": self.wait_for_completion}
        finally:
            hook.close()

    def _contained_delete_actions(
        self, client: ResourceManagementClient, scope: str, hook: AzureResourceManagerHook
    ) -> tuple[str, ...]:
        """``{type}/delete`` for every resource type in the group: deleting the group deletes them all, and
        ARM deletes what it may and leaves the rest, so a missing right means a half-deleted group.

        If the group's resources cannot be listed, ``enforce`` refuses (the check would be blind) and
        ``warn`` goes on with the group's own delete right only.
        """
        from azure.core.exceptions import HttpResponseError

        if self.least_privilege == "off":
            return ()
        try:
            types = sorted({str(r.type) for r in client.resources.list_by_resource_group(self.resource_group_name)})
        except HttpResponseError as err:
            problem = (
                f"cannot list the resources in {scope} to check the delete right on each of their types "
                f"({arm_error_text(err)})"
            )
            if self.least_privilege == "enforce":
                refused = AirflowException(
                    f"ARM preflight refused resource_group_delete at {scope}: {problem}. Grant the identity "
                    "read on the group (e.g. Microsoft.Resources/subscriptions/resourceGroups/resources/read), "
                    "or set least_privilege='warn' to rely on ARM's own checks."
                )
                self.audit_preflight(
                    hook,
                    operation="resource_group_delete",
                    target_scope=scope,
                    check="contents",
                    refused=refused,
                    reason="contents_unreadable",
                )
                raise refused from err
            self.log.warning("%s; checking only the group's own delete right", problem)
            return ()
        self.log.info("Resource group %s holds %d resource type(s): %s", scope, len(types), ", ".join(types) or "none")
        return contained_delete_actions(types)
