"""``GET .../resourceGroups/{rg}/resources`` through the real SDK (``resources.list_by_resource_group``):
a group lists the top-level resources its succeeded deployments declared, nothing else."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from dev.arm_emulator.client import ArmEmulator
from tests.emulator.support import SUB, TEMPLATE, Clients, deployment_body

pytestmark = pytest.mark.integration

RG = "rg-airflow"
RG_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}"
STORAGE = "Microsoft.Storage/storageAccounts"
VAULT = "Microsoft.KeyVault/vaults"


def _template_with_more() -> dict[str, Any]:
    """The storage template plus a child resource (not listed by ARM) and a key vault in another region."""
    template = copy.deepcopy(TEMPLATE)
    template["resources"] += [
        {
            "type": f"{STORAGE}/blobServices",
            "apiVersion": "2023-05-01",
            "name": "stmore01/default",
            "properties": {},
        },
        {
            "type": VAULT,
            "apiVersion": "2023-07-01",
            "name": "kv-airflow",
            "location": "northeurope",
            "tags": {"team": "data"},
            "properties": {"tenantId": "[subscription().subscriptionId]", "sku": {"family": "A", "name": "standard"}},
        },
    ]
    return template


def _deploy(clients: Clients, rg: str, name: str, account: str, template: dict[str, Any] | None = None) -> None:
    body = deployment_body(account)
    if template is not None:
        body["properties"]["template"] = template
    clients.deployments.deployments.begin_create_or_update(rg, name, body).result()


def _listed(clients: Clients, rg: str = RG, **kwargs: Any) -> list[tuple[str, str, str]]:
    return [(r.type, r.name, r.location) for r in clients.resources.resources.list_by_resource_group(rg, **kwargs)]


def test_lists_resources_of_succeeded_deployments(emu: ArmEmulator, clients: Clients) -> None:
    groups = clients.resources.resource_groups
    groups.create_or_update(RG, {"location": "westeurope"})
    groups.create_or_update("rg-other", {"location": "westeurope"})
    assert _listed(clients) == []

    _deploy(clients, RG, "deploy-1", "stairflow01")
    _deploy(clients, RG, "deploy-2", "stmore01", _template_with_more())
    _deploy(clients, "rg-other", "deploy-3", "stother01")  # another group: not listed in rg-airflow
    emu.fail_deployment("deploy-bad", "StorageAccountAlreadyTaken", "taken")
    with pytest.raises(HttpResponseError, match="DeploymentFailed"):
        _deploy(clients, RG, "deploy-bad", "stfailed01")
    emu.set_deployment_duration(100)
    clients.deployments.deployments.begin_create_or_update(RG, "deploy-running", deployment_body("strunning01"))

    resources = list(clients.resources.resources.list_by_resource_group(RG))
    assert [(r.type, r.name, r.location) for r in resources] == [
        (STORAGE, "stairflow01", "westeurope"),
        (STORAGE, "stmore01", "westeurope"),
        (VAULT, "kv-airflow", "northeurope"),
    ]
    assert resources[0].id == f"{RG_ID}/providers/{STORAGE}/stairflow01"
    assert resources[0].kind == "StorageV2" and resources[0].sku.name == "Standard_LRS"
    assert resources[2].tags == {"team": "data"}
    assert _listed(clients, "rg-other") == [(STORAGE, "stother01", "westeurope")]

    record = emu.requests(rf"/resourcegroups/{RG}/resources$")[-1]
    assert record.method == "GET" and record.status == 200
    assert record.api_version == clients.resources._config.api_version  # what the SDK sent, recorded


def test_filter_top_and_redeploy(emu: ArmEmulator, clients: Clients) -> None:
    clients.resources.resource_groups.create_or_update(RG, {"location": "westeurope"})
    _deploy(clients, RG, "deploy-2", "stmore01", _template_with_more())
    assert _listed(clients, filter=f"resourceType eq '{VAULT}'") == [(VAULT, "kv-airflow", "northeurope")]
    assert len(_listed(clients, top=1)) == 1

    # Redeploying the same account with new tags: one entry, the latest deployment's view of it.
    template = copy.deepcopy(TEMPLATE)
    template["resources"][0]["tags"] = {"v": "2"}
    body = deployment_body("stmore01")
    body["properties"]["template"] = template
    clients.deployments.deployments.begin_create_or_update(RG, "deploy-4", body).result()
    (account,) = [r for r in clients.resources.resources.list_by_resource_group(RG) if r.type == STORAGE]
    assert account.name == "stmore01" and account.tags == {"v": "2"}


def test_missing_group_and_delete(emu: ArmEmulator, clients: Clients) -> None:
    with pytest.raises(ResourceNotFoundError) as err:
        _listed(clients, "rg-missing")
    assert err.value.error is not None and err.value.error.code == "ResourceGroupNotFound"

    groups = clients.resources.resource_groups
    groups.create_or_update(RG, {"location": "westeurope"})
    _deploy(clients, RG, "deploy-1", "stairflow01")
    assert [name for _, name, _ in _listed(clients)] == ["stairflow01"]
    groups.begin_delete(RG).result()
    groups.create_or_update(RG, {"location": "westeurope"})
    assert _listed(clients) == []  # the group's deployments went with it, and so did their resources
