"""The real azure-mgmt clients against the emulator: resource groups, deployments, LROs, faults."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.core.polling.arm_polling import ARMPolling

from dev.arm_emulator.client import ArmEmulator
from tests.emulator.support import (
    CLIENT,
    SUB,
    TEMPLATE,
    Clients,
    deployment_body,
    make_clients,
    secret_credential,
)

pytestmark = pytest.mark.integration


def _rg(clients: Clients, name: str = "rg-airflow") -> str:
    clients.resources.resource_groups.create_or_update(name, {"location": "westeurope", "tags": {"owner": "airflow"}})
    return name


def test_resource_group_lifecycle(emu: ArmEmulator, clients: Clients) -> None:
    rgs = clients.resources.resource_groups
    created = rgs.create_or_update("rg-one", {"location": "westeurope", "tags": {"owner": "airflow"}})
    assert created.id == f"/subscriptions/{SUB}/resourceGroups/rg-one"
    assert created.properties.provisioning_state == "Succeeded"
    assert rgs.check_existence("RG-ONE") is True  # names are case-insensitive
    assert rgs.get("rg-one").tags == {"owner": "airflow"}
    assert [g.name for g in rgs.list()] == ["rg-one"]
    assert rgs.update("rg-one", {"tags": {"owner": "ops"}}).tags == {"owner": "ops"}

    rgs.begin_delete("rg-one").result()
    assert rgs.check_existence("rg-one") is False
    with pytest.raises(ResourceNotFoundError) as err:
        rgs.get("rg-one")
    assert err.value.error is not None and err.value.error.code == "ResourceGroupNotFound"

    calls = [(r.method, r.status) for r in emu.requests(r"/operationresults/")]
    assert calls == [("GET", 202), ("GET", 200)]
    put = emu.requests(r"/resourcegroups/rg-one$")[0]
    assert put.method == "PUT" and put.api_version == "2025-04-01"
    assert put.json() == {"location": "westeurope", "tags": {"owner": "airflow"}}


def test_deployment_succeeds_with_outputs(emu: ArmEmulator, clients: Clients) -> None:
    rg = _rg(clients)
    result = clients.deployments.deployments.begin_create_or_update(rg, "deploy-1", deployment_body()).result()
    assert result.properties.provisioning_state == "Succeeded"
    assert result.properties.outputs == {"acct": {"type": "String", "value": "stairflow01"}}
    acct_id = f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/stairflow01"
    assert [r.id for r in result.properties.output_resources] == [acct_id]
    assert result.properties.parameters["sku"] == {"type": "String", "value": "Standard_LRS"}

    # PUT 201, one Running status poll (default duration), the Succeeded poll, the final GET
    assert [(r.method, r.status) for r in emu.requests(r"/deployments/deploy-1")] == [
        ("PUT", 201),
        ("GET", 200),
        ("GET", 200),
        ("GET", 200),
    ]
    assert len(emu.requests(r"/operationStatuses/")) == 2

    ops = list(clients.deployments.deployment_operations.list(rg, "deploy-1"))
    assert [(o.properties.provisioning_state, o.properties.target_resource.id) for o in ops] == [("Succeeded", acct_id)]
    listed = list(clients.deployments.deployments.list_by_resource_group(rg))
    assert [d.name for d in listed] == ["deploy-1"]
    assert clients.deployments.deployments.check_existence(rg, "deploy-1") is True
    assert clients.deployments.deployments.check_existence(rg, "nope") is False


def test_failed_deployment_raises_with_code(emu: ArmEmulator, clients: Clients) -> None:
    rg = _rg(clients)
    emu.fail_deployment("deploy-bad", code="StorageAccountAlreadyTaken", message="The name is taken.")
    poller = clients.deployments.deployments.begin_create_or_update(rg, "deploy-bad", deployment_body())
    with pytest.raises(HttpResponseError) as err:
        poller.result()
    assert "DeploymentFailed" in str(err.value)
    assert "StorageAccountAlreadyTaken" in str(err.value)

    got = clients.deployments.deployments.get(rg, "deploy-bad")
    assert got.properties.provisioning_state == "Failed"
    assert got.properties.error.code == "DeploymentFailed"
    assert got.properties.error.details[0].code == "StorageAccountAlreadyTaken"
    ops = list(clients.deployments.deployment_operations.list(rg, "deploy-bad"))
    assert ops[0].properties.provisioning_state == "Failed"
    assert ops[0].properties.status_message["error"]["code"] == "StorageAccountAlreadyTaken"


def test_what_if_derived_and_configured_changes(emu: ArmEmulator, clients: Clients) -> None:
    rg = _rg(clients)
    body = {
        "properties": {**deployment_body()["properties"], "whatIfSettings": {"resultFormat": "FullResourcePayloads"}}
    }
    derived = clients.deployments.deployments.begin_what_if(rg, "wi", body).result()
    assert derived.status == "Succeeded"
    assert [(c.change_type, c.resource_id.rsplit("/", 1)[-1]) for c in derived.properties.changes] == [
        ("Create", "stairflow01")
    ]
    assert derived.properties.changes[0].after["sku"] == {"name": "Standard_LRS"}

    kv = f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/kv1"
    emu.set_what_if_changes(
        "*",
        [
            {
                "resourceId": kv,
                "changeType": "Modify",
                "before": {"properties": {"enableSoftDelete": False}},
                "after": {"properties": {"enableSoftDelete": True}},
                "delta": [
                    {
                        "path": "properties.enableSoftDelete",
                        "propertyChangeType": "Modify",
                        "before": False,
                        "after": True,
                    }
                ],
            }
        ],
    )
    configured = clients.deployments.deployments.begin_what_if(rg, "wi", body).result()
    change = configured.properties.changes[0]
    assert (change.change_type, change.resource_id) == ("Modify", kv)
    assert change.delta[0].path == "properties.enableSoftDelete"
    assert [r.status for r in emu.requests(r"/operationResults/")] == [202, 200, 202, 200]


def test_validate_ok_and_invalid_template(clients: Clients) -> None:
    rg = _rg(clients)
    ok = clients.deployments.deployments.begin_validate(rg, "val", deployment_body()).result()
    assert ok.properties.provisioning_state == "Succeeded"
    assert ok.properties.validated_resources[0].id.endswith("/storageAccounts/stairflow01")

    broken = {"properties": {"mode": "Incremental", "template": {"$schema": TEMPLATE["$schema"]}}}
    with pytest.raises(HttpResponseError) as err:
        clients.deployments.deployments.begin_validate(rg, "val", broken).result()
    assert err.value.status_code == 400
    assert err.value.error is not None and err.value.error.code == "InvalidTemplate"

    missing_param = {"properties": {"mode": "Incremental", "template": TEMPLATE}}
    with pytest.raises(HttpResponseError, match="InvalidTemplate"):
        clients.deployments.deployments.begin_validate(rg, "val", missing_param).result()
    # validate never creates a deployment
    assert clients.deployments.deployments.check_existence(rg, "val") is False


def test_cancel_running_deployment(emu: ArmEmulator, clients: Clients) -> None:
    rg = _rg(clients)
    emu.set_deployment_duration(50)
    deployments = clients.deployments.deployments
    deployments.begin_create_or_update(rg, "slow", deployment_body(), polling=False)
    assert deployments.get(rg, "slow").properties.provisioning_state == "Running"
    deployments.cancel(rg, "slow")
    assert deployments.get(rg, "slow").properties.provisioning_state == "Canceled"
    with pytest.raises(HttpResponseError) as err:
        deployments.cancel(rg, "slow")
    assert err.value.status_code == 409
    assert [r.status for r in emu.requests(r"/cancel$")] == [204, 409]


def test_deployment_in_missing_resource_group_is_404(clients: Clients) -> None:
    with pytest.raises(ResourceNotFoundError, match="ResourceGroupNotFound"):
        clients.deployments.deployments.begin_create_or_update("rg-missing", "d", deployment_body()).result()


def test_subscription_scope_deployment_creates_resource_group(clients: Clients) -> None:
    template = {
        "$schema": "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"rgName": {"type": "string"}},
        "resources": [
            {
                "type": "Microsoft.Resources/resourceGroups",
                "apiVersion": "2022-09-01",
                "name": "[parameters('rgName')]",
                "location": "northeurope",
                "tags": {"from": "deployment"},
            }
        ],
        "outputs": {"rgId": {"type": "string", "value": "[subscription().id]"}},
    }
    body = {
        "location": "northeurope",
        "properties": {"mode": "Incremental", "template": template, "parameters": {"rgName": {"value": "rg-from-sub"}}},
    }
    deployments = clients.deployments.deployments
    with pytest.raises(HttpResponseError, match="LocationRequired"):
        deployments.begin_create_or_update_at_subscription_scope("sub-d", {"properties": body["properties"]})
    result = deployments.begin_create_or_update_at_subscription_scope("sub-d", body).result()
    assert result.properties.provisioning_state == "Succeeded"
    assert result.properties.outputs["rgId"]["value"] == f"/subscriptions/{SUB}"
    assert deployments.get_at_subscription_scope("sub-d").location == "northeurope"
    rg = clients.resources.resource_groups.get("rg-from-sub")
    assert (rg.location, rg.tags) == ("northeurope", {"from": "deployment"})


def test_tags_at_scope(clients: Clients) -> None:
    rg = _rg(clients)
    scope = f"/subscriptions/{SUB}/resourceGroups/{rg}"
    tags = clients.resources.tags
    tags.begin_create_or_update_at_scope(scope, {"properties": {"tags": {"a": "1"}}}).result()
    tags.begin_update_at_scope(scope, {"operation": "Merge", "properties": {"tags": {"b": "2"}}}).result()
    assert tags.get_at_scope(scope).properties.tags == {"a": "1", "b": "2"}
    assert clients.resources.resource_groups.get(rg).tags == {"a": "1", "b": "2"}


def test_throttled_once_then_succeeds(emu: ArmEmulator, clients: Clients) -> None:
    rg = _rg(clients, "rg-throttle")
    emu.throttle(r"/resourcegroups/rg-throttle$", times=1, retry_after=1)
    assert clients.resources.resource_groups.get(rg).name == rg
    gets = [r for r in emu.requests(r"/resourcegroups/rg-throttle$") if r.method == "GET"]
    assert [r.status for r in gets] == [429, 200]
    assert gets[1].time - gets[0].time >= 0.9  # Retry-After honoured


class _StartOnly(ARMPolling):
    """Initialise from the PUT response but never poll (hand-off, as a deferrable operator does)."""

    def run(self) -> None:
        pass


def test_continuation_token_resumes_in_fresh_client(emu: ArmEmulator, clients: Clients) -> None:
    rg = _rg(clients)
    emu.set_deployment_duration(3)
    first = clients.deployments.deployments.begin_create_or_update(
        rg, "resume", deployment_body(), polling=_StartOnly(0)
    )
    token = first.continuation_token()

    fresh = make_clients(emu, secret_credential(emu))
    resumed = fresh.deployments.deployments.begin_create_or_update(rg, "resume", None, continuation_token=token)
    result = resumed.result()
    assert result.properties.provisioning_state == "Succeeded"
    assert len(emu.requests(r"/operationStatuses/")) == 4  # 3 Running + 1 Succeeded


def test_correlation_id_echoed_and_stored(emu: ArmEmulator) -> None:
    cid = str(uuid.uuid4())
    clients = make_clients(emu, headers={"x-ms-correlation-request-id": cid})
    seen: list[str] = []

    def hook(response: object) -> None:
        seen.append(response.http_response.headers["x-ms-correlation-request-id"])  # type: ignore[attr-defined]

    rg = _rg(clients)
    result = clients.deployments.deployments.begin_create_or_update(
        rg, "corr", deployment_body(), raw_response_hook=hook
    ).result()
    assert result.properties.correlation_id == cid
    arm_calls = [r for r in emu.requests() if r.path.startswith("/subscriptions/")]
    assert arm_calls and all(r.headers["x-ms-correlation-request-id"] == cid for r in arm_calls)
    assert seen and set(seen) == {cid}


def test_identity_recorded_per_call(emu: ArmEmulator, clients: Clients) -> None:
    other = make_clients(emu, secret_credential(emu, client_id="dddddddd-0000-0000-0000-000000000002"))
    _rg(clients, "rg-a")
    other.resources.resource_groups.get("rg-a")
    calls = emu.requests(r"/resourcegroups/rg-a$")
    assert [r.oid for r in calls] == [
        ArmEmulator.principal_oid(client_id=CLIENT),
        ArmEmulator.principal_oid(client_id="dddddddd-0000-0000-0000-000000000002"),
    ]
    assert calls[0].identity is not None
    assert calls[0].identity["appid"] == CLIENT and calls[0].identity["emu_flow"] == "client_secret"
    assert calls[0].identity["aud"] == "https://management.azure.com"
    token_calls = emu.requests(r"/oauth2/v2.0/token$")
    assert len(token_calls) == 2 and all(r.method == "POST" for r in token_calls)
