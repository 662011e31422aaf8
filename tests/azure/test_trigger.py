"""AzureDeploymentTrigger against the ARM emulator: restart-proof (re-created from ``serialize()`` in a fresh
Python process), every terminal status, timeout, poll errors and on_kill."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_identity_provider.azure.operators._template import default_deployment_name
from airflow_identity_provider.azure.triggers.deployment import AzureDeploymentTrigger
from airflow_identity_provider.version_compat import AirflowException, TaskDeferred
from tests.azure.test_operators import (
    CONN_ID,
    RG,
    RG_SCOPE,
    SUB,
    FakeTaskInstance,
    _first_event,
    deploy_op,
    emu,
    emulator,
    make_context,
    writes,
)

pytestmark = pytest.mark.integration

__all__ = ["emu", "emulator"]  # fixtures, imported for use here

REPO = Path(__file__).resolve().parents[2]
CLASSPATH = "airflow_identity_provider.azure.triggers.deployment.AzureDeploymentTrigger"

# What a triggerer does with a stored trigger: import the class by path, build it from the kwargs, run it.
RUN_TRIGGER = """
import asyncio, importlib, json, sys
classpath, kwargs = json.loads(sys.stdin.read())
module, _, name = classpath.rpartition(".")
trigger = getattr(importlib.import_module(module), name)(**kwargs)
async def main():
    async for event in trigger.run():
        print("EVENT " + json.dumps(event.payload), flush=True)
        return
asyncio.run(main())
"""


def deferred(emu: Any, ti: FakeTaskInstance, **kwargs: Any) -> AzureDeploymentTrigger:
    with pytest.raises(TaskDeferred) as raised:
        deploy_op(deferrable=True, **kwargs).execute(make_context(ti))
    trigger = raised.value.trigger
    assert isinstance(trigger, AzureDeploymentTrigger)
    return trigger


def run_in_fresh_process(serialized: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    result = subprocess.run(
        [sys.executable, "-c", RUN_TRIGGER],
        input=json.dumps(serialized),
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=False,
    )
    events = [line[len("EVENT ") :] for line in result.stdout.splitlines() if line.startswith("EVENT ")]
    assert result.returncode == 0 and len(events) == 1, result.stderr[-3000:]
    payload: dict[str, Any] = json.loads(events[0])
    return payload


def test_serialize_round_trips() -> None:
    trigger = AzureDeploymentTrigger(
        conn_id="c",
        deployment_name="d",
        subscription_id=SUB,
        resource_group_name=RG,
        scope=RG_SCOPE,
        poll_interval=3,
        timeout_at=1_900_000_000.5,
        correlation_id="cid",
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == CLASSPATH
    module, _, name = classpath.rpartition(".")
    assert getattr(importlib.import_module(module), name) is AzureDeploymentTrigger
    assert json.loads(json.dumps(kwargs)) == kwargs  # identifiers only: nothing a triggerer could not store
    assert AzureDeploymentTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_deferred_deploy_resumes_from_a_trigger_rebuilt_in_a_fresh_process(emu: Any) -> None:
    emu.set_deployment_duration(3)
    ti = FakeTaskInstance()
    trigger = deferred(emu, ti)
    classpath, kwargs = trigger.serialize()
    assert kwargs["scope"] == RG_SCOPE and kwargs["conn_id"] == CONN_ID
    assert kwargs["deployment_name"] == default_deployment_name(ti.dag_id, ti.task_id, ti.run_id)
    puts = len(writes(emu))
    event = run_in_fresh_process((classpath, kwargs))
    assert event["status"] == "success" and event["provisioning_state"] == "Succeeded"
    assert event["deployment_name"] == kwargs["deployment_name"] and event["error"] is None
    assert len(writes(emu)) == puts  # the trigger only reads
    # The trigger's polls carried the task try's correlation id, like every other request of the task.
    polls = [r for r in emu.requests() if r.method == "GET" and r.path.endswith(kwargs["deployment_name"])]
    assert {r.headers["x-ms-correlation-request-id"] for r in polls} == {kwargs["correlation_id"]}
    assert event["correlation_id"] == kwargs["correlation_id"]
    # A fresh operator instance (as after a worker restart) finishes the task from the event.
    outputs = deploy_op(deferrable=True).execute_complete(make_context(ti), event)
    assert outputs == {"accountName": "stetl01", "groupId": RG_SCOPE, "connectionString": "***"}
    assert ti.xcom["deployment"]["provisioning_state"] == "Succeeded"


def test_failed_deployment_event_and_resume(emu: Any) -> None:
    ti = FakeTaskInstance()
    emu.fail_deployment(default_deployment_name(ti.dag_id, ti.task_id, ti.run_id), code="QuotaExceeded")
    event = asyncio.run(_first_event(deferred(emu, ti)))
    assert event["status"] == "failed" and event["error"]["code"] == "DeploymentFailed"
    with pytest.raises(AirflowException) as err:
        deploy_op(deferrable=True).execute_complete(make_context(ti), event)
    assert "(QuotaExceeded)" in str(err.value) and "Failed deployment operations:" in str(err.value)


def test_timeout_leaves_the_deployment_running(emu: Any) -> None:
    emu.set_deployment_duration(10_000)
    trigger = deferred(emu, FakeTaskInstance(), timeout=0.01)
    event = asyncio.run(_first_event(trigger))
    assert event["status"] == "timeout" and event["provisioning_state"] == "Running"
    assert not [r for r in emu.requests() if r.path.lower().endswith("/cancel")]
    with pytest.raises(AirflowException, match="re-attaches"):
        deploy_op(deferrable=True).execute_complete(make_context(FakeTaskInstance()), event)


def test_poll_error_is_an_event_with_arms_message(emu: Any) -> None:
    trigger = AzureDeploymentTrigger(conn_id=CONN_ID, deployment_name="nope", scope=RG_SCOPE, poll_interval=0.05)
    event = asyncio.run(_first_event(trigger))
    assert event["status"] == "error" and event["error"]["code"] == "DeploymentNotFound"
    assert "Deployment 'nope' could not be found." in event["error"]["message"]


def test_status_reads_throttled_past_azure_cores_retries_are_waited_out(emu: Any) -> None:
    """As on a worker: the deployment keeps running whatever the triggerer's poller does, so eight 429s in a row
    (past azure-core's three retries) are waited out, and the event reports the deployment's real end."""
    emu.set_deployment_duration(3)
    trigger = deferred(emu, FakeTaskInstance())
    emu.throttle(r"/providers/microsoft\.resources/deployments/[^/]+$", times=8, retry_after=1, method="GET")
    event = asyncio.run(_first_event(trigger))
    assert event["status"] == "success", event
    gets = [r.status for r in emu.requests() if r.method == "GET" and r.path.lower().endswith(trigger.deployment_name)]
    assert gets.count(429) == 8


def test_status_reads_throttled_without_end_are_an_error_saying_the_deployment_keeps_running(
    emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the cap on throttled reads in a row (2 here, instead of 30, to keep the test short) the event is an
    error whose message says the deployment keeps running and how a retry finds it; the one PUT stands."""
    from airflow_identity_provider.azure.deployments import state
    from airflow_identity_provider.azure.triggers import deployment as trigger_module

    monkeypatch.setattr(state, "MAX_THROTTLED_POLLS", 2)
    monkeypatch.setattr(trigger_module, "MAX_THROTTLED_POLLS", 2)
    emu.set_deployment_duration(10_000)
    ti = FakeTaskInstance()
    trigger = deferred(emu, ti)
    emu.throttle(r"/providers/microsoft\.resources/deployments/[^/]+$", times=1000, retry_after=0, method="GET")
    event = asyncio.run(_first_event(trigger))
    assert event["status"] == "error", event
    message = event["error"]["message"]
    assert "(2 waited out in a row)" in message and "keeps running in Azure" in message and "re-attaches" in message
    with pytest.raises(AirflowException, match="keeps running in Azure"):
        deploy_op(deferrable=True).execute_complete(make_context(ti), event)
    puts = [r for r in writes(emu) if r.method == "PUT" and r.path.lower().endswith(trigger.deployment_name)]
    assert [r.status for r in puts] == [201]


def test_a_timeout_while_status_reads_are_throttled_is_a_timeout_event(emu: Any) -> None:
    """Throttling never stretches the timeout in the triggerer either: ARM throttles every read, and once
    ``timeout_at`` passes the event is a timeout (no deployment read: no state), which the task reports as one."""
    emu.set_deployment_duration(10_000)
    ti = FakeTaskInstance()
    trigger = deferred(emu, ti, timeout=2)
    emu.throttle(r"/providers/microsoft\.resources/deployments/[^/]+$", times=1000, retry_after=1, method="GET")
    began = time.monotonic()
    event = asyncio.run(_first_event(trigger))
    assert event["status"] == "timeout" and event["provisioning_state"] is None and event["deployment_id"] is None
    assert time.monotonic() - began < 10
    with pytest.raises(AirflowException, match="the operator's timeout") as err:
        deploy_op(deferrable=True).execute_complete(make_context(ti), event)
    assert "(ARM throttled its status reads)" in str(err.value) and "re-attaches" in str(err.value)
    puts = [r for r in writes(emu) if r.method == "PUT" and r.path.lower().endswith(trigger.deployment_name)]
    assert [r.status for r in puts] == [201]


def test_scope_from_connection_subscription_and_group(emu: Any) -> None:
    emu.set_deployment_duration(1)
    trigger = deferred(emu, FakeTaskInstance())
    _, kwargs = trigger.serialize()
    rebuilt = AzureDeploymentTrigger(
        conn_id=CONN_ID, deployment_name=kwargs["deployment_name"], resource_group_name=RG, poll_interval=0.05
    )
    event = asyncio.run(_first_event(rebuilt))
    assert event["status"] == "success" and event["scope"] == RG_SCOPE


def test_on_kill_cancels_and_the_next_poll_reports_canceled(emu: Any) -> None:
    emu.set_deployment_duration(10_000)
    trigger = deferred(emu, FakeTaskInstance())
    asyncio.run(trigger.on_kill())
    (cancel,) = [r for r in emu.requests() if r.path.lower().endswith("/cancel")]
    assert cancel.method == "POST" and cancel.status == 204
    event = asyncio.run(_first_event(trigger))
    assert event["status"] == "canceled" and event["provisioning_state"] == "Canceled"
    asyncio.run(trigger.on_kill())  # already canceled: logged, not raised


def test_hook_is_closed_before_the_event_is_yielded(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Consumers stop after the first event without closing the generator (dag.test, the triggerer): the
    aiohttp session and the credential must already be closed by then (apache/airflow#55724)."""
    hooks: list[Any] = []
    make_hook = AzureDeploymentTrigger._hook

    def recording_hook(self: AzureDeploymentTrigger) -> Any:
        hook = make_hook(self)
        hooks.append(hook)
        return hook

    monkeypatch.setattr(AzureDeploymentTrigger, "_hook", recording_hook)
    trigger = deferred(emu, FakeTaskInstance())

    async def first_event_without_closing() -> Any:
        generator = trigger.run()
        event = await generator.__anext__()
        (hook,) = hooks
        assert hook._clients == {} and hook._credential is None
        return event

    assert asyncio.run(first_event_without_closing()).payload["status"] == "success"
