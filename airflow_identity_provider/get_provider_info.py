"""Provider metadata read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point.

Assembled from one table per wing (``provider_info.auth_config``, ``provider_info.arm_connection``), which
are plain data: importing this stays cheap for ``airflow providers list`` and every CLI start.
"""

from __future__ import annotations

from typing import Any

from airflow_identity_provider.provider_info.arm_connection import ARM_CONNECTION_TYPE
from airflow_identity_provider.provider_info.auth_config import AUTH_MANAGER_CONFIG, SECTION

__all__ = ["AUTH_MANAGER_CONFIG", "SECTION", "get_provider_info"]  # the first two: kept for existing importers


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-identity-provider",
        "name": "Identity Provider",
        "description": (
            "Single sign-on with Microsoft Entra ID, JumpCloud or OIDC mapped to Airflow roles, and "
            "least-privilege Azure Resource Manager hooks and operators."
        ),
        "integrations": [
            {
                "integration-name": "Azure Resource Manager",
                "external-doc-url": "https://learn.microsoft.com/azure/azure-resource-manager/",
                "tags": ["azure"],
            }
        ],
        "auth-managers": ["airflow_identity_provider.auth.manager.IdentityAuthManager"],
        "operators": [
            {
                "integration-name": "Azure Resource Manager",
                "python-modules": [
                    "airflow_identity_provider.azure.operators.resource_group",
                    "airflow_identity_provider.azure.operators.deployment",
                    "airflow_identity_provider.azure.operators.tags",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "Azure Resource Manager",
                "python-modules": ["airflow_identity_provider.azure.triggers.deployment"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Azure Resource Manager",
                "python-modules": ["airflow_identity_provider.azure.hooks.arm"],
            }
        ],
        "connection-types": [ARM_CONNECTION_TYPE],
        "config": {SECTION: AUTH_MANAGER_CONFIG},
        "cli": ["airflow_identity_provider.auth.cli.get_identity_cli_commands"],
    }
