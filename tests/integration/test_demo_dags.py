"""The demo DAGs: they parse without network, and ``dag.test()`` runs them against the ARM emulator with a
connection shaped like the one ``dev/demo`` sets (client secret, custom cloud, fence = rg-demo).

``dag.test()`` runs in a subprocess with its own AIRFLOW_HOME and SQLite database, as a deployment would;
deferrable tasks are resumed by dag.test's in-line triggerer.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dev.airflow_server import airflow_env, migrate
from dev.arm_emulator.client import ArmEmulator
from tests.support.versions import IMPORT_DAGBAG, dagbag_class

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dev" / "dags"
DEMO_DAGS = ("arm_deploy_demo", "arm_fence_refused_demo")
# Valid GUIDs: the connection refuses non-GUID client and subscription ids.
TENANT = "11111111-1111-1111-1111-111111111111"
SUBSCRIPTION = "22222222-2222-2222-2222-222222222222"
CLIENT = "33333333-3333-3333-3333-333333333333"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"

RUN_DAGS = IMPORT_DAGBAG + """
import json, sys

bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
for dag_id in sys.argv[2:]:
    run = bag.get_dag(dag_id).test()
    tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    print("RESULT " + json.dumps({"dag_id": dag_id, "state": str(run.state), "tasks": tasks}), flush=True)
"""


def demo_connection(emu: ArmEmulator) -> dict[str, Any]:
    """What dev/demo puts in AIRFLOW_CONN_AZURE_RESOURCE_MANAGER_DEFAULT (with GUID ids)."""
    return {
        "conn_type": "azure_resource_manager",
        "login": CLIENT,
        "password": "demo-secret",
        "extra": {
            "auth_type": "client_secret",
            "tenant_id": TENANT,
            "subscription_id": SUBSCRIPTION,
            **emu.connection_extras(),
            "polling_interval": 1,
            "allowed_scopes": [f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-demo"],
        },
    }


def test_demo_dags_parse_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    DagBag = dagbag_class()

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a DAG file opened a network connection at import time: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    for dag_id in DEMO_DAGS:  # bag.dags, not get_dag(): that one also asks the metadata database
        dag = bag.dags.get(dag_id)
        assert dag is not None, sorted(bag.dags)
        assert type(dag.timetable).__name__ == "NullTimetable"  # schedule=None: only triggered by hand
    deploy = bag.dags["arm_deploy_demo"]
    assert [t.task_id for t in deploy.topological_sort()] == [
        "create_resource_group",
        "what_if",
        "deploy_storage",
        "tag_storage_account",
    ]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], str, list[Any]]]:
    home = tmp_path_factory.mktemp("airflow_home")
    with ArmEmulator() as emu:
        env = airflow_env(
            home,
            port=0,
            extra={
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
                "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
                "AIRFLOW_CONN_AZURE_RESOURCE_MANAGER_DEFAULT": json.dumps(demo_connection(emu)),
            },
        )
        migrate(env)
        proc = subprocess.run(
            [sys.executable, "-c", RUN_DAGS, str(DAGS), *DEMO_DAGS],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        output = proc.stdout + proc.stderr
        parsed = [json.loads(line[len("RESULT ") :]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        assert proc.returncode == 0 and len(parsed) == len(DEMO_DAGS), output[-6000:]
        yield {r["dag_id"]: r for r in parsed}, output, emu.requests()


def test_deploy_demo_succeeds(results: tuple[dict[str, Any], str, list[Any]]) -> None:
    runs, output, requests = results
    run = runs["arm_deploy_demo"]
    assert run["state"] == "success", output[-6000:]
    assert set(run["tasks"].values()) == {"success"}
    writes = [(r.method, r.path.lower()) for r in requests if r.method in ("PUT", "PATCH", "DELETE")]
    rg = f"/subscriptions/{SUBSCRIPTION}/resourcegroups/rg-demo"
    assert writes[0] == ("PUT", rg)
    assert writes[1][0] == "PUT" and writes[1][1].startswith(f"{rg}/providers/microsoft.resources/deployments/")
    assert writes[2] == (
        "PATCH",
        f"{rg}/providers/microsoft.storage/storageaccounts/stairflowdemo/providers/microsoft.resources/tags/default",
    )
    assert len(writes) == 3
    assert "Unclosed client session" not in output


def test_fence_demo_is_refused_readably(results: tuple[dict[str, Any], str, list[Any]]) -> None:
    runs, output, requests = results
    run = runs["arm_fence_refused_demo"]
    assert run["state"] == "failed" and run["tasks"] == {"deploy_outside_fence": "failed"}
    assert "PreflightRefused: ARM preflight refused 'deployment_write'" in output
    assert "resourceGroups/rg-outside is outside connection 'azure_resource_manager_default'" in output
    assert "allowed_scopes" in output
    assert not [r for r in requests if "rg-outside" in r.path.lower()]  # ARM never heard of it
