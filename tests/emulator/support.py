"""Shared constants and client builders for the emulator tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure.identity import ClientSecretCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.resource.deployments import DeploymentsMgmtClient
from azure.mgmt.resource.resources import ResourceManagementClient

from dev.arm_emulator.client import ArmEmulator

SUB = "00000000-1111-2222-3333-444444444444"
TENANT = "aaaaaaaa-0000-0000-0000-000000000001"
CLIENT = "cccccccc-0000-0000-0000-000000000001"
SECRET = "s3cret"
ARM_SCOPE = "https://management.azure.com/.default"

TEMPLATE: dict[str, Any] = {
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {"name": {"type": "string"}, "sku": {"type": "string", "defaultValue": "Standard_LRS"}},
    "resources": [
        {
            "type": "Microsoft.Storage/storageAccounts",
            "apiVersion": "2023-05-01",
            "name": "[parameters('name')]",
            "location": "[resourceGroup().location]",
            "sku": {"name": "[parameters('sku')]"},
            "kind": "StorageV2",
        }
    ],
    "outputs": {"acct": {"type": "string", "value": "[parameters('name')]"}},
}


def deployment_body(name: str = "stairflow01", **extra: Any) -> dict[str, Any]:
    return {
        "properties": {
            "mode": "Incremental",
            "template": TEMPLATE,
            "parameters": {"name": {"value": name}},
            **extra,
        },
        "tags": {"airflow_dag": "etl"},
    }


@dataclass
class Clients:
    resources: ResourceManagementClient
    deployments: DeploymentsMgmtClient
    authorization: AuthorizationManagementClient


def client_kwargs(emu: ArmEmulator, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": emu.url,
        "credential_scopes": [ARM_SCOPE],
        "connection_verify": emu.ca_path,
        "polling_interval": 0,
        **extra,
    }


def secret_credential(emu: ArmEmulator, client_id: str = CLIENT, secret: str = SECRET) -> ClientSecretCredential:
    return ClientSecretCredential(
        TENANT,
        client_id,
        secret,
        authority=emu.url,
        disable_instance_discovery=True,
        connection_verify=emu.ca_path,
    )


def make_clients(emu: ArmEmulator, credential: Any = None, **extra: Any) -> Clients:
    cred = credential or secret_credential(emu)
    kw = client_kwargs(emu, **extra)
    return Clients(
        resources=ResourceManagementClient(cred, SUB, **kw),
        deployments=DeploymentsMgmtClient(cred, SUB, **kw),
        authorization=AuthorizationManagementClient(cred, SUB, **kw),
    )
