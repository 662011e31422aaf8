"""The ARM operators end to end: real azure SDK clients over HTTPS against the ARM emulator process.

Operators run through ``execute(context)`` with a minimal context (a task instance that records its XCom
pushes), which is all they use. Every refusal is asserted to happen before any write reaches ARM: the
emulator's request log holds no PUT, PATCH or DELETE (and, for fence refusals, no request about the
target at all).

Measured figures (ARM calls per run, worker-slot time deferrable vs blocking) are printed with ``-s``
and collected in ``FIGURES`` for the release note.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_identity_provider.azure.operators import (
    AzureResourceGroupCreateOrUpdateOperator,
    AzureResourceGroupDeleteOperator,
    AzureTagsUpdateOperator,
    AzureTemplateDeploymentOperator,
    AzureTemplateValidateOperator,
    AzureTemplateWhatIfOperator,
)
from airflow_identity_provider.azure.operators._template import (
    default_deployment_name,
    load_parameters,
    outputs_for_xcom,
    template_properties,
)
from airflow_identity_provider.azure.preflight import PreflightRefused
from airflow_identity_provider.azure.triggers.deployment import AzureDeploymentTrigger
from airflow_identity_provider.version_compat import AirflowException, TaskDeferred
from tests.azure.test_arm_emulator import CLIENT, SUB, TENANT, arm_extras, emulator, set_conn

pytestmark = pytest.mark.integration

__all__ = ["emulator"]  # the module-scoped emulator fixture, imported for use here

CONN_ID = "azure_resource_manager_default"
RG = "rg-etl"
RG_SCOPE = f"/subscriptions/{SUB}/resourceGroups/{RG}"
OTHER_RG = "rg-outside"
WRITE_METHODS = {"PUT", "PATCH", "DELETE"}
TOKEN_PATHS = re.compile(r"(/oauth2/v2\.0/token|/\.well-known/openid-configuration)$", re.I)
FIGURES: dict[str, Any] = {}

TEMPLATE: dict[str, Any] = {
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {
        "name": {"type": "string"},
        "adminPassword": {"type": "securestring", "defaultValue": ""},
    },
    "resources": [
        {
            "type": "Microsoft.Storage/storageAccounts",
            "apiVersion": "2023-05-01",
            "name": "[parameters('name')]",
            "location": "[resourceGroup().location]",
            "sku": {"name": "Standard_LRS"},
            "kind": "StorageV2",
        }
    ],
    "outputs": {
        "accountName": {"type": "string", "value": "[parameters('name')]"},
        "groupId": {"type": "string", "value": "[resourceGroup().id]"},
        "connectionString": {"type": "securestring", "value": "DefaultEndpointsProtocol=https;AccountKey=x"},
    },
}
STORAGE_ID = f"{RG_SCOPE}/providers/Microsoft.Storage/storageAccounts/stetl01"
OUTSIDE_ID = f"/subscriptions/{SUB}/resourceGroups/rg-etl2/providers/Microsoft.Storage/storageAccounts/x"


# -- harness -------------------------------------------------------------------------------------


@dataclass
class FakeTaskInstance:
    """What the operators use of a task instance: identity and xcom_push (recorded, JSON-checked)."""

    dag_id: str = "arm_dag"
    task_id: str = "deploy"
    run_id: str = "manual__2026-01-01T00:00:00+00:00"
    try_number: int = 1
    map_index: int = -1
    xcom: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        json.dumps(value)  # XCom values must be JSON: fail here, not in the API server
        self.xcom[key] = value


def make_context(ti: FakeTaskInstance) -> dict[str, Any]:
    return {"ti": ti, "task_instance": ti, "run_id": ti.run_id, "dag_run": None}


@pytest.fixture
def emu(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A reset emulator, the default connection pointing at it, fenced to rg-etl, and rg-etl existing."""
    emulator.reset()
    connect(monkeypatch, emulator)
    create_group(emulator, RG)
    yield emulator
    emulator.reset()


def connect(monkeypatch: pytest.MonkeyPatch, emu: Any, **extra: Any) -> None:
    extras = arm_extras(emu, auth_type="client_secret", tenant_id=TENANT, allowed_scopes=[RG_SCOPE])
    extras.update(extra)
    set_conn(monkeypatch, CONN_ID, login=CLIENT, password="sp-secret-value", **extras)


def _setup_client(emu: Any, client_class: Any) -> Any:
    """An SDK client for test setup (not under test): its own credential, straight at the emulator."""
    from azure.identity import ClientSecretCredential

    cred = ClientSecretCredential(
        TENANT, CLIENT, "x", authority=emu.url, disable_instance_discovery=True, connection_verify=emu.ca_path
    )
    return client_class(
        cred,
        SUB,
        base_url=emu.url,
        credential_scopes=["https://management.azure.com/.default"],
        connection_verify=emu.ca_path,
        polling_interval=0,
    )


def create_group(emu: Any, name: str) -> None:
    """Create a group straight through the SDK (setup, not under test), then forget the recording."""
    from azure.mgmt.resource.resources import ResourceManagementClient

    client = _setup_client(emu, ResourceManagementClient)
    client.resource_groups.create_or_update(name, {"location": "westeurope"})
    client.close()


def deploy_storage(emu: Any, resource_group: str, account: str) -> None:
    """Deploy TEMPLATE (one storage account) straight through the SDK: setup, not under test."""
    from azure.mgmt.resource.deployments import DeploymentsMgmtClient

    client = _setup_client(emu, DeploymentsMgmtClient)
    body = {"properties": {"mode": "Incremental", "template": TEMPLATE, "parameters": {"name": {"value": account}}}}
    client.deployments.begin_create_or_update(resource_group, f"setup-{account}", body).result()
    client.close()


def arm_calls(emu: Any, since: int = 0) -> list[Any]:
    """ARM requests (not the Entra token/discovery ones) received after the first ``since`` requests."""
    return [r for r in emu.requests()[since:] if not TOKEN_PATHS.search(r.path)]


def writes(emu: Any, since: int = 0) -> list[Any]:
    return [r for r in emu.requests()[since:] if r.method in WRITE_METHODS]


def mark(emu: Any) -> int:
    return len(emu.requests())


def deploy_op(**kwargs: Any) -> AzureTemplateDeploymentOperator:
    args: dict[str, Any] = {
        "task_id": "deploy",
        "resource_group_name": RG,
        "template": TEMPLATE,
        "parameters": {"name": "stetl01", "adminPassword": "s3cr3t-admin-pw"},
        "poll_interval": 0.05,
        "deferrable": False,
    }
    args.update(kwargs)
    return AzureTemplateDeploymentOperator(**args)


def record(name: str, value: Any) -> None:
    FIGURES[name] = value
    print(f"\nFIGURE {name}: {value}")


def assert_refused_before_write(emu: Any, since: int, err: BaseException, *needles: str) -> None:
    assert not writes(emu, since), [(r.method, r.path) for r in writes(emu, since)]
    for needle in needles:
        assert needle in str(err), str(err)


# -- pure helpers ------------------------------------------------------------------------------------


def test_default_name_is_stable_across_tries_and_valid() -> None:
    a = default_deployment_name("dag", "group.deploy storage", "manual__2026-01-01T00:00:00+00:00")
    assert a == default_deployment_name("dag", "group.deploy storage", "manual__2026-01-01T00:00:00+00:00")
    assert a != default_deployment_name("dag", "group.deploy storage", "manual__2026-01-02T00:00:00+00:00")
    assert re.fullmatch(r"[-\w.()]{1,64}", a) and a.startswith("group.deploy-storage-")
    assert len(default_deployment_name("d", "t" * 300, "r")) == 64


def test_template_sources_and_parameters(tmp_path: Any) -> None:
    (tmp_path / "t.json").write_text(json.dumps(TEMPLATE))
    (tmp_path / "p.json").write_text(json.dumps({"$schema": "x", "parameters": {"name": {"value": "a"}, "n": 1}}))
    assert template_properties(
        template=None, template_file="t.json", template_link=None, template_spec_id=None, base_dir=tmp_path
    ) == {"template": TEMPLATE}
    assert template_properties(
        template=None, template_file=None, template_link="https://x/t.json", template_spec_id=None
    ) == {"templateLink": {"uri": "https://x/t.json"}}
    spec = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Resources/templateSpecs/t/versions/1"
    assert template_properties(template=None, template_file=None, template_link=None, template_spec_id=spec) == {
        "templateLink": {"id": spec}
    }
    params = load_parameters({"name": "b", "kv": {"reference": {"secretName": "s"}}}, "p.json", tmp_path)
    assert params == {"name": {"value": "b"}, "n": {"value": 1}, "kv": {"reference": {"secretName": "s"}}}
    with pytest.raises(ValueError, match="exactly one"):
        template_properties(template=TEMPLATE, template_file="t.json", template_link=None, template_spec_id=None)
    with pytest.raises(ValueError, match="not valid JSON"):
        (tmp_path / "bad.json").write_text("{")
        template_properties(
            template=None, template_file="bad.json", template_link=None, template_spec_id=None, base_dir=tmp_path
        )


def test_secure_outputs_never_reach_xcom() -> None:
    masked: list[Any] = []
    outputs = {
        "plain": {"type": "String", "value": "v"},
        "secret": {"type": "SecureString", "value": "p@ss"},
        "obj": {"type": "secureObject", "value": {"k": "v"}},
        "omitted": {"type": "SecureString"},  # what ARM really returns
    }
    assert outputs_for_xcom(outputs, masked.append) == {
        "plain": "v",
        "secret": "***",
        "obj": "***",
        "omitted": "***",
    }
    assert masked == ["p@ss", {"k": "v"}]


def test_argument_validation() -> None:
    with pytest.raises(ValueError, match="exactly one of resource_group_name and scope"):
        deploy_op(scope=f"/subscriptions/{SUB}")
    with pytest.raises(ValueError, match="exactly one of template"):
        deploy_op(template_link="https://example.invalid/t.json")
    with pytest.raises(ValueError, match="mode must be one of"):
        deploy_op(mode="Everything")
    with pytest.raises(ValueError, match="least_privilege"):
        deploy_op(least_privilege="maybe")
    with pytest.raises(ValueError, match="operation must be one of"):
        AzureTagsUpdateOperator(task_id="t", scope=RG_SCOPE, tags={}, operation="Upsert")
    assert "template" in AzureTemplateDeploymentOperator.template_fields
    assert "tags" in AzureTemplateDeploymentOperator.template_fields


# -- resource groups ------------------------------------------------------------------------------------


def test_resource_group_create_then_noop(emu: Any) -> None:
    ti = FakeTaskInstance(task_id="rg")
    op = AzureResourceGroupCreateOrUpdateOperator(
        task_id="rg", resource_group_name=RG, location="westeurope", tags={"team": "data"}
    )
    start = mark(emu)
    result = op.execute(make_context(ti))
    assert result["tags"] == {"team": "data"} and result["id"].endswith(f"/resourceGroups/{RG}")
    assert [(r.method, r.path.split("/")[-1]) for r in writes(emu, start)] == [("PUT", RG.lower())]
    assert ti.xcom["access_report"]["operation"] == "resource_group_write"
    record("arm_calls.resource_group_create", len(arm_calls(emu, start)))

    start = mark(emu)
    assert op.execute(make_context(ti))["tags"] == {"team": "data"}
    assert not writes(emu, start)  # already as requested: no PUT, no permission reads
    record("arm_calls.resource_group_create_noop", len(arm_calls(emu, start)))


def test_resource_group_create_outside_fence_is_refused_offline(emu: Any) -> None:
    op = AzureResourceGroupCreateOrUpdateOperator(task_id="rg", resource_group_name="rg-etl2", location="westeurope")
    start = mark(emu)
    with pytest.raises(PreflightRefused) as err:
        op.execute(make_context(FakeTaskInstance()))
    assert_refused_before_write(emu, start, err.value, "outside", "allowed_scopes")
    assert not [r for r in emu.requests()[start:] if "rg-etl2" in r.path.lower()]


def test_resource_group_in_another_subscription(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    other_sub = "9b9b9b9b-5555-6666-7777-888888888888"
    other_scope = f"/subscriptions/{other_sub}/resourceGroups/{RG}"
    connect(monkeypatch, emu, allowed_scopes=[RG_SCOPE, other_scope])
    ti = FakeTaskInstance(task_id="rg")
    op = AzureResourceGroupCreateOrUpdateOperator(
        task_id="rg", resource_group_name=RG, location="westeurope", subscription_id=other_sub.upper()
    )
    start = mark(emu)
    assert op.execute(make_context(ti))["id"] == other_scope
    (put,) = writes(emu, start)
    assert put.path.lower() == other_scope.lower()
    assert ti.xcom["access_report"]["target_scope"] == other_scope
    assert len([r for r in emu.requests()[start:] if TOKEN_PATHS.search(r.path) and "token" in r.path]) == 1


def test_resource_group_location_change_is_refused(emu: Any) -> None:
    op = AzureResourceGroupCreateOrUpdateOperator(task_id="rg", resource_group_name=RG, location="eastus")
    start = mark(emu)
    with pytest.raises(AirflowException, match="cannot move"):
        op.execute(make_context(FakeTaskInstance()))
    assert not writes(emu, start)


def test_resource_group_delete(emu: Any) -> None:
    # Under the default 'enforce': the group holds a storage account, so its delete right is checked too.
    deploy_storage(emu, RG, "stetl01")
    op = AzureResourceGroupDeleteOperator(task_id="rm", resource_group_name=RG)
    assert op.least_privilege == "enforce"
    ti = FakeTaskInstance(task_id="rm")
    start = mark(emu)
    assert op.execute(make_context(ti)) == {"id": RG_SCOPE, "deleted": True, "completed": True}
    assert [r.method for r in writes(emu, start)] == ["DELETE"]
    listing = [i for i, r in enumerate(emu.requests()[start:]) if r.path.lower().endswith(f"/{RG}/resources")]
    delete = next(i for i, r in enumerate(emu.requests()[start:]) if r.method == "DELETE")
    assert len(listing) == 1 and listing[0] < delete  # the contents were listed before the write
    report = ti.xcom["access_report"]
    assert report["operation"] == "resource_group_delete" and report["verdict"]["ok"]
    assert "Microsoft.Storage/storageAccounts/delete" in report["required_actions"]
    assert "Microsoft.Storage/storageAccounts/delete" in report["verdict"]["allowed"]
    record("arm_calls.resource_group_delete", len(arm_calls(emu, start)))
    start = mark(emu)
    assert op.execute(make_context(FakeTaskInstance()))["deleted"] is False  # a retry after success
    assert not writes(emu, start)


def test_resource_group_delete_refuses_when_contents_cannot_be_checked(emu: Any) -> None:
    emu.fail_request(rf"/resourcegroups/{RG}/resources$", status=403, message="no read on the group's resources")
    op = AzureResourceGroupDeleteOperator(task_id="rm", resource_group_name=RG)
    start = mark(emu)
    with pytest.raises(AirflowException) as err:
        op.execute(make_context(FakeTaskInstance()))
    assert_refused_before_write(emu, start, err.value, "cannot list the resources", "least_privilege='warn'")
    assert "no read on the group's resources" in str(err.value)  # ARM's own words, verbatim


def test_resource_group_delete_refuses_without_delete_right_on_its_contents(emu: Any) -> None:
    deploy_storage(emu, RG, "stetl01")
    emu.set_permissions(RG_SCOPE, [{"actions": ["*"], "notActions": ["Microsoft.Storage/storageAccounts/delete"]}])
    op = AzureResourceGroupDeleteOperator(task_id="rm", resource_group_name=RG)
    start = mark(emu)
    with pytest.raises(PreflightRefused) as err:
        op.execute(make_context(FakeTaskInstance()))
    assert_refused_before_write(emu, start, err.value, "Microsoft.Storage/storageAccounts/delete")


# -- tags -----------------------------------------------------------------------------------------------


def test_tags_merge_replace_delete(emu: Any) -> None:
    ti = FakeTaskInstance(task_id="tag")
    start = mark(emu)
    merged = AzureTagsUpdateOperator(task_id="tag", scope=STORAGE_ID, tags={"a": "1", "b": "2"}).execute(
        make_context(ti)
    )
    assert merged == {"a": "1", "b": "2"}
    assert [r.method for r in writes(emu, start)] == ["PATCH"]
    assert ti.xcom["access_report"]["operation"] == "tags_write"
    record("arm_calls.tags_update", len(arm_calls(emu, start)))
    ctx = make_context(ti)
    assert AzureTagsUpdateOperator(task_id="t", scope=STORAGE_ID, tags={"c": "3"}).execute(ctx) == {
        "a": "1",
        "b": "2",
        "c": "3",
    }
    assert AzureTagsUpdateOperator(task_id="t", scope=STORAGE_ID, tags={"a": "1"}, operation="Delete").execute(ctx) == {
        "b": "2",
        "c": "3",
    }
    assert AzureTagsUpdateOperator(task_id="t", scope=STORAGE_ID, tags={"z": "9"}, operation="Replace").execute(
        ctx
    ) == {"z": "9"}


def test_tags_outside_fence_are_refused(emu: Any) -> None:
    start = mark(emu)
    with pytest.raises(PreflightRefused) as err:
        AzureTagsUpdateOperator(task_id="t", scope=f"/subscriptions/{SUB}", tags={"a": "1"}).execute(
            make_context(FakeTaskInstance())
        )
    assert_refused_before_write(emu, start, err.value, "outside")


# -- validate and what-if -------------------------------------------------------------------------------


def test_validate(emu: Any) -> None:
    op = AzureTemplateValidateOperator(
        task_id="validate", resource_group_name=RG, template=TEMPLATE, parameters={"name": "stetl01"}
    )
    start = mark(emu)
    result = op.execute(make_context(FakeTaskInstance(task_id="validate")))
    assert result["validated_resources"] == [STORAGE_ID]
    assert not writes(emu, start)
    record("arm_calls.validate", len(arm_calls(emu, start)))


def test_validate_surfaces_arm_error_verbatim(emu: Any) -> None:
    op = AzureTemplateValidateOperator(task_id="validate", resource_group_name=RG, template=TEMPLATE, parameters={})
    with pytest.raises(AirflowException) as err:
        op.execute(make_context(FakeTaskInstance()))
    assert "InvalidTemplate" in str(err.value)
    assert "The value for the template parameter(s) 'name' is not provided." in str(err.value)


def test_what_if_summary(emu: Any) -> None:
    ti = FakeTaskInstance(task_id="what_if")
    op = AzureTemplateWhatIfOperator(
        task_id="what_if", resource_group_name=RG, template=TEMPLATE, parameters={"name": "stetl01"}
    )
    start = mark(emu)
    summary = op.execute(make_context(ti))
    assert summary["counts"] == {"Create": 1}
    assert summary["changes"] == [
        {"resource_id": STORAGE_ID, "change_type": "Create", "resource_type": "Microsoft.Storage/storageAccounts"}
    ]
    assert ti.xcom["access_report"]["operation"] == "deployment_what_if"
    assert not writes(emu, start)
    record("arm_calls.what_if", len(arm_calls(emu, start)))


def test_what_if_gate_fails_on_delete(emu: Any) -> None:
    emu.set_what_if_changes("*", [{"resourceId": STORAGE_ID, "changeType": "Delete"}])
    kwargs: dict[str, Any] = {"task_id": "w", "resource_group_name": RG, "template": TEMPLATE}
    kwargs["parameters"] = {"name": "stetl01"}
    assert AzureTemplateWhatIfOperator(**kwargs).execute(make_context(FakeTaskInstance()))["counts"] == {"Delete": 1}
    with pytest.raises(AirflowException, match=r"\[delete\].*allow_delete_changes"):
        AzureTemplateWhatIfOperator(fail_on_delete=True, **kwargs).execute(make_context(FakeTaskInstance()))


# -- deploy: happy paths ---------------------------------------------------------------------------------


def test_deploy_blocking(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    masked: list[Any] = []
    monkeypatch.setattr("airflow.sdk.log.mask_secret", lambda value, name=None: masked.append(value))
    emu.set_deployment_duration(3)
    ti = FakeTaskInstance()
    op = deploy_op()
    start = mark(emu)
    outputs = op.execute(make_context(ti))
    assert outputs == {"accountName": "stetl01", "groupId": RG_SCOPE, "connectionString": "***"}
    info = ti.xcom["deployment"]
    name = default_deployment_name(ti.dag_id, ti.task_id, ti.run_id)
    assert info["provisioning_state"] == "Succeeded" and info["name"] == name
    assert info["id"] == f"{RG_SCOPE}/providers/Microsoft.Resources/deployments/{name}"
    assert info["correlation_id"] and info["duration"].startswith("PT")
    report = ti.xcom["access_report"]
    assert report["operation"] == "deployment_write"
    assert "Microsoft.Storage/storageAccounts/write" in report["required_actions"]
    assert "Microsoft.Resources/deployments/cancel/action" in report["required_actions"]
    (put,) = writes(emu, start)
    assert put.method == "PUT" and put.path.endswith(f"/deployments/{name}")
    body = put.json()
    assert body["tags"]["airflow_dag_id"] == "arm_dag" and body["properties"]["mode"] == "Incremental"
    # One correlation id for the whole task try, what-if and permission reads included.
    ids = {r.headers.get("x-ms-correlation-request-id") for r in arm_calls(emu, start)}
    assert ids == {info["correlation_id"]}
    assert "s3cr3t-admin-pw" not in json.dumps(ti.xcom)
    assert "s3cr3t-admin-pw" in masked  # the securestring parameter, before anything could log it
    calls = arm_calls(emu, start)
    record("arm_calls.deploy_blocking_3_polls", len(calls))
    record(
        "arm_calls.deploy_blocking_3_polls.breakdown",
        dict(sorted(_kinds(calls).items())),
    )


def _kinds(calls: list[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in calls:
        path = r.path.lower()
        kind = (
            "permissions"
            if path.endswith("/permissions")
            else "deny assignments"
            if "denyassignments" in path
            else "role assignments"
            if "roleassignments" in path
            else "what-if"
            if "whatif" in path or "operationresults" in path
            else f"{r.method} deployment"
        )
        out[kind] = out.get(kind, 0) + 1
    return out


def test_deploy_at_subscription_scope_needs_a_fence_there(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sub_template = dict(TEMPLATE, resources=[], outputs={"sub": {"type": "string", "value": "[subscription().id]"}})
    kwargs: dict[str, Any] = {"scope": f"/subscriptions/{SUB}", "location": "westeurope", "parameters": {"name": "x"}}
    op = deploy_op(resource_group_name=None, template=sub_template, **kwargs)
    start = mark(emu)
    with pytest.raises(PreflightRefused):
        op.execute(make_context(FakeTaskInstance()))
    assert not writes(emu, start)
    connect(monkeypatch, emu, allowed_scopes=[f"/subscriptions/{SUB}"])
    assert op.execute(make_context(FakeTaskInstance())) == {"sub": f"/subscriptions/{SUB}"}


def test_retry_reattaches_instead_of_deploying_twice(emu: Any) -> None:
    emu.set_deployment_duration(4)
    first = FakeTaskInstance(try_number=1)
    with pytest.raises(TaskDeferred):
        deploy_op(deferrable=True).execute(make_context(first))
    assert len([r for r in writes(emu) if "/deployments/" in r.path]) == 1
    # The worker died; the retry (try 2, same run) finds the running deployment by name and run tag.
    start = mark(emu)
    retry = FakeTaskInstance(try_number=2)
    outputs = deploy_op().execute(make_context(retry))
    assert outputs["accountName"] == "stetl01"
    assert not writes(emu, start)
    assert not [r for r in emu.requests()[start:] if "whatif" in r.path.lower()]
    # Cleared again after success: same content, same run -> its outputs, no second PUT.
    start = mark(emu)
    assert deploy_op().execute(make_context(FakeTaskInstance(try_number=3))) == outputs
    assert not writes(emu, start)
    # Another run with the same explicit name while one is active is refused readably, not 409.
    emu.set_deployment_duration(50)
    with pytest.raises(TaskDeferred):
        deploy_op(deferrable=True, deployment_name="shared").execute(make_context(FakeTaskInstance()))
    other_run = FakeTaskInstance(run_id="manual__other")
    with pytest.raises(AirflowException, match="was not started by an earlier try of this task instance"):
        deploy_op(deployment_name="shared").execute(make_context(other_run))


def test_first_try_never_reattaches_to_a_deployment_wearing_its_tags(emu: Any) -> None:
    """The run tag is a hash anyone can compute: a deployment someone else started with it (and this task's
    content hash) must not be awaited, and its outputs not pushed, on a first try that never checked it."""
    emu.set_deployment_duration(50)
    with pytest.raises(TaskDeferred):
        deploy_op(deferrable=True).execute(make_context(FakeTaskInstance(try_number=2)))  # "someone" starts it
    start = mark(emu)
    with pytest.raises(AirflowException, match="was not started by an earlier try of this task instance"):
        deploy_op().execute(make_context(FakeTaskInstance(try_number=1)))
    assert not writes(emu, start)


def test_on_kill_cancels_the_running_deployment(emu: Any) -> None:
    emu.set_deployment_duration(10_000)
    op = deploy_op(poll_interval=0.2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            op.execute(make_context(FakeTaskInstance()))
        except BaseException as err:
            errors.append(err)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 30
    while not [r for r in writes(emu) if "/deployments/" in r.path] and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # in the polling loop now
    op.on_kill()
    worker.join(30)
    assert not worker.is_alive()
    (cancel,) = [r for r in emu.requests() if r.path.lower().endswith("/cancel")]
    assert cancel.method == "POST" and cancel.status == 204
    assert errors and "ended Canceled" in str(errors[0])


# -- deploy: refusals before any write --------------------------------------------------------------------


def test_deploy_outside_fence_is_refused_before_any_request_about_it(emu: Any) -> None:
    start = mark(emu)
    with pytest.raises(PreflightRefused) as err:
        deploy_op(resource_group_name=OTHER_RG).execute(make_context(FakeTaskInstance()))
    assert_refused_before_write(emu, start, err.value, f"resourceGroups/{OTHER_RG} is outside", "allowed_scopes")
    assert not [r for r in emu.requests()[start:] if OTHER_RG in r.path.lower()]


def test_deploy_complete_mode_is_refused_offline(emu: Any) -> None:
    start = mark(emu)
    with pytest.raises(PreflightRefused) as err:
        deploy_op(mode="Complete").execute(make_context(FakeTaskInstance()))
    assert_refused_before_write(emu, start, err.value, "allow_complete_mode=True")
    assert not arm_calls(emu, start)


def test_deploy_missing_permission_is_refused(emu: Any) -> None:
    emu.set_permissions(RG_SCOPE, [{"actions": ["Microsoft.Resources/deployments/*"], "notActions": []}])
    start = mark(emu)
    with pytest.raises(PreflightRefused) as err:
        deploy_op().execute(make_context(FakeTaskInstance()))
    assert_refused_before_write(emu, start, err.value, "not allowed Microsoft.Storage/storageAccounts/write")


def test_deploy_denied_action_is_refused(emu: Any) -> None:
    emu.set_deny_assignments([{"scope": RG_SCOPE, "actions": ["Microsoft.Storage/storageAccounts/write"]}])
    start = mark(emu)
    with pytest.raises(PreflightRefused) as err:
        deploy_op().execute(make_context(FakeTaskInstance()))
    assert_refused_before_write(emu, start, err.value, "denied to this identity by deny assignment")


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"resourceId": STORAGE_ID, "changeType": "Delete"}, "allow_delete_changes=True"),
        (
            {
                "resourceId": f"{RG_SCOPE}/providers/Microsoft.Authorization/roleAssignments/1111",
                "changeType": "Create",
            },
            "allow_rbac_changes=True",
        ),
        ({"resourceId": OUTSIDE_ID, "changeType": "Create"}, "outside the connection's allowed_scopes"),
    ],
    ids=["delete", "rbac", "outside-fence"],
)
def test_deploy_what_if_violations_are_refused(emu: Any, change: dict[str, Any], needle: str) -> None:
    emu.set_what_if_changes("*", [change])
    start = mark(emu)
    with pytest.raises(PreflightRefused) as err:
        deploy_op().execute(make_context(FakeTaskInstance()))
    assert_refused_before_write(emu, start, err.value, needle)


def test_deploy_overprivileged_identity_fails_when_asked(emu: Any) -> None:
    # The emulator's default: the caller holds Contributor on the whole subscription.
    start = mark(emu)
    with pytest.raises(PreflightRefused) as err:
        deploy_op(overprivilege="fail").execute(make_context(FakeTaskInstance()))
    assert_refused_before_write(emu, start, err.value, "Contributor")


# -- deploy: ARM's own failures ------------------------------------------------------------------------


def test_authorization_failed_on_the_put_is_surfaced_verbatim(emu: Any) -> None:
    message = (
        f"The client '{CLIENT}' with object id '0000' does not have authorization to perform action "
        f"'Microsoft.Resources/deployments/write' over scope '{RG_SCOPE}'."
    )
    emu.fail_request(r"/providers/microsoft\.resources/deployments/[^/]+$", method="PUT", message=message)
    with pytest.raises(AirflowException) as err:
        deploy_op().execute(make_context(FakeTaskInstance()))
    assert "AuthorizationFailed" in str(err.value) and message in str(err.value) and "HTTP 403" in str(err.value)


def test_failed_deployment_surfaces_the_operation_errors(emu: Any) -> None:
    ti = FakeTaskInstance()
    name = default_deployment_name(ti.dag_id, ti.task_id, ti.run_id)
    emu.fail_deployment(name, code="StorageAccountAlreadyTaken", message="The storage account named stetl01 is taken.")
    with pytest.raises(AirflowException) as err:
        deploy_op().execute(make_context(ti))
    text = str(err.value)
    assert f"Deployment {name} at {RG_SCOPE} ended Failed" in text
    assert "(DeploymentFailed) At least one resource deployment operation failed." in text
    assert "(StorageAccountAlreadyTaken) The storage account named stetl01 is taken." in text
    assert "Failed deployment operations:" in text and "Microsoft.Storage/storageAccounts 'stetl01'" in text
    assert ti.xcom["deployment"]["provisioning_state"] == "Failed"


def test_throttled_requests_are_retried(emu: Any) -> None:
    emu.throttle(r"/providers/microsoft\.resources/deployments/[^/]+$", times=2, retry_after=1)
    start = mark(emu)
    assert deploy_op().execute(make_context(FakeTaskInstance()))["accountName"] == "stetl01"
    statuses = [r.status for r in emu.requests()[start:] if re.search(r"/deployments/[^/]+$", r.path)]
    assert statuses[:2] == [429, 429] and 200 in statuses
    assert len([r for r in writes(emu, start) if r.status in (200, 201)]) == 1


def test_status_reads_throttled_past_azure_cores_retries_are_waited_out_not_failed(emu: Any) -> None:
    """azure-core gives up after three 429s in a row (retry_status); a deployment keeps running in Azure whatever
    its poller does, so failing the task then would orphan it and a retry would find it running. Once the PUT is
    in, eight throttled status reads in a row (two of azure-core's rounds) are waited out; one PUT in all."""
    emu.set_deployment_duration(40)
    start = mark(emu)
    put_seen = threading.Event()

    def throttle_once_running() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not put_seen.is_set():
            if any(r.method == "PUT" for r in writes(emu, start)):
                emu.throttle(
                    r"/providers/microsoft\.resources/deployments/[^/]+$", times=8, retry_after=1, method="GET"
                )
                put_seen.set()
            time.sleep(0.01)

    watcher = threading.Thread(target=throttle_once_running, daemon=True)
    watcher.start()
    try:
        assert deploy_op().execute(make_context(FakeTaskInstance()))["accountName"] == "stetl01"
    finally:
        put_seen.set()
        watcher.join(5)
        emu.set_deployment_duration(1)
    gets = [r.status for r in emu.requests()[start:] if r.method == "GET" and re.search(r"/deployments/[^/]+$", r.path)]
    assert gets.count(429) == 8 and gets[-1] == 200
    assert len([r for r in writes(emu, start) if r.status in (200, 201)]) == 1


def test_a_timeout_while_status_reads_are_throttled_is_the_timeout_not_the_429(emu: Any) -> None:
    """Throttling never stretches the operator's timeout, and the task then says what a timeout says: the
    deployment keeps running and a retry re-attaches. One PUT."""
    emu.set_deployment_duration(10_000)
    start = mark(emu)

    def throttle_once_running() -> None:
        _wait_for_put(emu, start)
        emu.throttle(r"/providers/microsoft\.resources/deployments/[^/]+$", times=1000, retry_after=1, method="GET")

    watcher = threading.Thread(target=throttle_once_running, daemon=True)
    watcher.start()
    began = time.monotonic()
    try:
        with pytest.raises(AirflowException, match="the operator's timeout") as err:
            deploy_op(timeout=3).execute(make_context(FakeTaskInstance()))
    finally:
        watcher.join(10)
        emu.set_deployment_duration(1)  # and the fixture's reset clears the throttle
    assert "(ARM throttled its status reads)" in str(err.value) and "re-attaches" in str(err.value)
    assert "(429)" not in str(err.value) and time.monotonic() - began < 15
    assert len([r for r in writes(emu, start) if r.status in (200, 201)]) == 1


def _wait_for_put(emu: Any, start: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(r.method == "PUT" for r in writes(emu, start)):
        time.sleep(0.01)


def test_a_what_if_or_validate_whose_answer_was_lost_is_sent_again(emu: Any) -> None:
    """What-if and validate are POSTs that change nothing in Azure. azure-core resends no POST whose answer it
    lost (a dropped connection, an ARM front end restarting: dev/bench/soak found it), so both ask again."""
    emu.drop_request(r"/whatIf$", method="POST")
    start = mark(emu)
    assert deploy_op().execute(make_context(FakeTaskInstance()))["accountName"] == "stetl01"
    assert [r.status for r in emu.requests()[start:] if r.path.lower().endswith("/whatif")] == [0, 202]
    assert len([r for r in writes(emu, start) if r.status in (200, 201)]) == 1  # and one deployment

    emu.drop_request(r"/validate$", method="POST")
    op = AzureTemplateValidateOperator(
        task_id="validate", resource_group_name=RG, template=TEMPLATE, parameters={"name": "stetl01"}
    )
    start = mark(emu)
    assert op.execute(make_context(FakeTaskInstance(task_id="validate")))["validated_resources"] == [STORAGE_ID]
    assert [r.status for r in emu.requests()[start:] if r.path.lower().endswith("/validate")] == [0, 200]
    assert not writes(emu, start)


# -- deferrable ------------------------------------------------------------------------------------------


def test_deferrable_deploy_and_worker_time(emu: Any) -> None:
    """Worker-slot time for one deployment that stays Running for N polls, deferrable vs blocking."""
    polls, interval = 5, 1.0
    emu.set_deployment_duration(polls)
    ti = FakeTaskInstance(task_id="deploy_blocking")
    t0 = time.monotonic()
    deploy_op(task_id="deploy_blocking", poll_interval=interval).execute(make_context(ti))
    blocking = time.monotonic() - t0

    emu.set_deployment_duration(polls)
    ti = FakeTaskInstance(task_id="deploy_deferred")
    op = deploy_op(task_id="deploy_deferred", poll_interval=interval, deferrable=True)
    start = mark(emu)
    t0 = time.monotonic()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(make_context(ti))
    before_defer = time.monotonic() - t0
    trigger = deferred.value.trigger
    assert isinstance(trigger, AzureDeploymentTrigger) and deferred.value.method_name == "execute_complete"
    event = asyncio.run(_first_event(trigger))
    assert event["status"] == "success"
    t0 = time.monotonic()
    outputs = op.execute_complete(make_context(ti), event)
    after_resume = time.monotonic() - t0
    assert outputs["connectionString"] == "***" and ti.xcom["deployment"]["provisioning_state"] == "Succeeded"
    record(
        f"worker_seconds.{polls}_polls_at_{interval:g}s",
        {
            "blocking_execute": round(blocking, 2),
            "deferrable_execute_until_deferred": round(before_defer, 2),
            "deferrable_execute_complete": round(after_resume, 2),
            "deferrable_total": round(before_defer + after_resume, 2),
        },
    )
    record("arm_calls.deploy_deferrable_5_polls_incl_trigger", len(arm_calls(emu, start)))


async def _first_event(trigger: AzureDeploymentTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        payload: dict[str, Any] = event.payload
        return payload
    raise AssertionError("the trigger ended without an event")
