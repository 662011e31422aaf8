"""Each ARM preflight decision of an operator is one audit event ("who did what in Azure, as whom"): task,
connection, principal, scope, verdict and reasons, and never credential material. Real operators, real SDK
clients, the ARM emulator process (as in test_operators)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_identity_provider.audit import AUDIT_LOGGER
from airflow_identity_provider.azure.operators import (
    AzureResourceGroupCreateOrUpdateOperator,
    AzureTemplateDeploymentOperator,
)
from airflow_identity_provider.azure.preflight import PreflightRefused
from tests.azure.test_arm_emulator import CLIENT, SUB, TENANT, emulator
from tests.azure.test_operators import RG, RG_SCOPE, TEMPLATE, FakeTaskInstance, emu, make_context, mark, writes
from tests.support.audit import audit_events

pytestmark = pytest.mark.integration

__all__ = ["emu", "emulator"]  # the fixtures, imported for use here

SP_SECRET = "sp-secret-value"  # the connection password test_operators.connect sets
ADMIN_PASSWORD = "s3cr3t-admin-pw"  # a securestring parameter value


def deploy(**kwargs: Any) -> AzureTemplateDeploymentOperator:
    return AzureTemplateDeploymentOperator(
        task_id="deploy",
        resource_group_name=RG,
        template=TEMPLATE,
        parameters={"name": "stetl01", "adminPassword": ADMIN_PASSWORD},
        poll_interval=0.05,
        deferrable=False,
        **kwargs,
    )


def assert_no_credentials(caplog: pytest.LogCaptureFixture, emu: Any) -> None:
    audit_text = "\n".join(r.getMessage() for r in caplog.records if r.name == AUDIT_LOGGER)
    tokens = {r.headers["authorization"].partition(" ")[2] for r in emu.requests() if "authorization" in r.headers}
    assert tokens, "the emulator recorded no bearer token to look for"
    for secret in (SP_SECRET, ADMIN_PASSWORD, *tokens, *(t.rsplit(".", 1)[-1] for t in tokens)):
        assert secret not in audit_text


def test_refused_preflight_is_one_event_with_scope_verdict_and_reasons(emu: Any, caplog) -> None:
    emu.set_permissions(RG_SCOPE, [{"actions": ["Microsoft.Resources/deployments/*"], "notActions": []}])
    ti = FakeTaskInstance()
    start = mark(emu)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PreflightRefused):
        deploy().execute(make_context(ti))
    assert not writes(emu, start)
    (refused,) = audit_events(caplog, "arm_preflight")  # the passing offline fence check decided nothing yet
    assert (
        refused.items()
        >= {
            "outcome": "failure",
            "reason": "preflight_refused",
            "verdict": "refused",
            "dag_id": ti.dag_id,
            "task_id": "deploy",
            "run_id": ti.run_id,
            "try_number": 1,
            "conn_id": "azure_resource_manager_default",
            "auth_type": "client_secret",
            "client_id": CLIENT,
            "tenant": TENANT,
            "principal_id": emu.principal_oid(client_id=CLIENT),
            "scope": RG_SCOPE,
            "operation": "deployment_write",
            "check": "full",
            "least_privilege": "enforce",
        }.items()
    )
    assert any("not allowed Microsoft.Storage/storageAccounts/write" in r for r in refused["reasons"])
    assert "Microsoft.Storage/storageAccounts/write" in refused["required_actions"]
    # The id ARM's activity log records for the task's requests: the SIEM joins the two on it.
    sent = {
        r.headers.get("x-ms-correlation-request-id") for r in emu.requests()[start:] if not r.path.endswith("token")
    }
    assert refused["correlation_id"] in sent
    assert_no_credentials(caplog, emu)


def test_fence_refusal_is_an_event_before_any_request(emu: Any, caplog) -> None:
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    op = AzureResourceGroupCreateOrUpdateOperator(task_id="rg", resource_group_name="rg-etl2", location="westeurope")
    with pytest.raises(PreflightRefused):
        op.execute(make_context(FakeTaskInstance(task_id="rg")))
    (refused,) = audit_events(caplog, "arm_preflight")
    assert (
        refused.items()
        >= {
            "verdict": "refused",
            "reason": "outside_scope",
            "check": "fence",
            "task_id": "rg",
            "client_id": CLIENT,
            "scope": f"/subscriptions/{SUB}/resourceGroups/rg-etl2",
            "operation": "resource_group_write",
        }.items()
    )
    assert "principal_id" not in refused  # offline: no token was needed to refuse
    assert "allowed_scopes" in refused["reasons"][0]


def test_allowed_preflight_is_one_event_before_the_write(emu: Any, caplog) -> None:
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    op = AzureResourceGroupCreateOrUpdateOperator(
        task_id="rg", resource_group_name=RG, location="westeurope", tags={"team": "etl"}
    )
    op.execute(make_context(FakeTaskInstance(task_id="rg")))
    (allowed,) = audit_events(caplog, "arm_preflight")
    assert (
        allowed.items()
        >= {
            "outcome": "success",
            "verdict": "allowed",
            "check": "full",
            "scope": RG_SCOPE,
            "operation": "resource_group_write",
            "principal_id": emu.principal_oid(client_id=CLIENT),
        }.items()
    )
    assert "reason" not in allowed and "reasons" not in allowed
    assert_no_credentials(caplog, emu)
