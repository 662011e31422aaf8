"""The azure wing's table for ``get_provider_info()["connection-types"]``: the ``azure_resource_manager``
connection form, Airflow 3's declarative ``conn-fields`` and ``ui-field-behaviour``. Data only: the hook
builds its legacy wtforms fallback from this same table, so the two never drift."""

from __future__ import annotations

from typing import Any

__all__ = ["ARM_CONNECTION_TYPE"]

ARM_CONNECTION_TYPE: dict[str, Any] = {
    "hook-class-name": "airflow_identity_provider.azure.hooks.arm.AzureResourceManagerHook",
    "hook-name": "Azure Resource Manager",
    "connection-type": "azure_resource_manager",
    "conn-fields": {
        "auth_type": {
            "label": "Auth type",
            "schema": {
                "type": ["string", "null"],
                "default": "managed_identity",
                "enum": [
                    "managed_identity",
                    "workload_identity",
                    "client_secret",
                    "certificate",
                    "default",
                ],
            },
            "description": "How the connection authenticates to Microsoft Entra ID.",
        },
        "tenant_id": {"label": "Tenant ID", "schema": {"type": ["string", "null"]}},
        "subscription_id": {"label": "Subscription ID", "schema": {"type": ["string", "null"]}},
        "managed_identity_client_id": {
            "label": "Managed identity client ID",
            "schema": {"type": ["string", "null"]},
            "description": "User-assigned managed identity, by client id (give at most one id).",
        },
        "managed_identity_object_id": {
            "label": "Managed identity object ID",
            "schema": {"type": ["string", "null"]},
        },
        "managed_identity_resource_id": {
            "label": "Managed identity resource ID",
            "schema": {"type": ["string", "null"]},
        },
        "certificate_path": {
            "label": "Certificate path (PEM)",
            "schema": {"type": ["string", "null"]},
        },
        "certificate_data": {
            "label": "Certificate (inline PEM)",
            "schema": {"type": ["string", "null"], "format": "password"},
            "sensitive": True,
        },
        "federated_token_file": {
            "label": "Workload identity: federated token file",
            "schema": {"type": ["string", "null"]},
            "description": "Default: AZURE_FEDERATED_TOKEN_FILE (set by AKS workload identity).",
        },
        "polling_interval": {
            "label": "Polling interval (seconds)",
            "schema": {"type": ["number", "null"], "default": 10},
            "description": "How often long-running operations are polled without a Retry-After.",
        },
        "cloud": {
            "label": "Cloud",
            "schema": {
                "type": ["string", "null"],
                "default": "public",
                "enum": ["public", "usgov", "china", "custom"],
            },
        },
        "authority": {
            "label": "Custom cloud: Entra authority host (https)",
            "schema": {"type": ["string", "null"]},
        },
        "resource_manager_url": {
            "label": "Custom cloud: ARM endpoint (https)",
            "schema": {"type": ["string", "null"]},
        },
        "credential_scope": {
            "label": "Custom cloud: ARM token scope",
            "schema": {"type": ["string", "null"]},
        },
        "allowed_scopes": {
            "label": "Allowed scopes",
            "schema": {"type": ["string", "null"]},
            "description": (
                "JSON list (or comma-separated) of ARM scopes this connection may write inside, "
                "for example /subscriptions/<id>/resourceGroups/rg-etl."
            ),
        },
        "allowed_reference_scopes": {
            "label": "Allowed reference scopes",
            "schema": {"type": ["string", "null"]},
            "description": (
                "JSON list (or comma-separated) of ARM scopes outside the allowed scopes that a "
                "deployment may reference but never write: a user-assigned identity, a subnet, a Key "
                "Vault secret, listKeys. Default: none."
            ),
        },
    },
    "ui-field-behaviour": {
        "hidden-fields": ["schema", "port", "host"],
        "relabeling": {
            "login": "Client ID (service principal or workload identity)",
            "password": "Client secret (or certificate password)",
        },
        "placeholders": {
            "login": "application (client) id",
            "tenant_id": "directory (tenant) id",
            "subscription_id": "subscription id",
            "allowed_scopes": '["/subscriptions/<id>/resourceGroups/<rg>"]',
            "allowed_reference_scopes": '["/subscriptions/<id>/resourceGroups/<shared-rg>"]',
        },
    },
}
