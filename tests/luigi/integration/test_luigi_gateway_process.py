"""The console script as operators run it: ``luigi-identity-gateway --config gateway.ini`` (uvicorn), in front
of a real luigid, with a worker of the real local IdP running the pipeline and the audit log in a file."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dev.airflow_server import free_port
from dev.idp.local_idp import API_AUDIENCE, start_local_idp
from dev.luigi_stack import (
    WORKER_CLIENTS,
    gateway_command,
    gateway_config,
    run_worker,
    start_gateway,
    start_luigid,
    worker_config,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    workdir = tmp_path_factory.mktemp("gateway_process")
    port = free_port()
    idp = start_local_idp(redirect_uris=[f"http://127.0.0.1:{port}/auth/callback"], service_clients=WORKER_CLIENTS)
    luigid = start_luigid(workdir)
    config = gateway_config(idp, upstream=luigid.url, port=port)
    audit_log = workdir / "audit.jsonl"
    try:
        gateway = start_gateway(workdir, config, port=port, extra_args=["--audit-log", str(audit_log)])
        try:
            yield {"idp": idp, "luigid": luigid, "gateway": gateway, "workdir": workdir, "audit": audit_log}
        finally:
            gateway.stop()
    finally:
        luigid.stop()
        idp.stop()


def test_a_worker_runs_the_pipeline_through_the_console_script(stack: dict[str, object], tmp_path: Path) -> None:
    idp, gateway, audit_log = stack["idp"], stack["gateway"], stack["audit"]
    config = worker_config(
        token_endpoint=idp.token_endpoint,
        client_id="svc-luigi",  # type: ignore[attr-defined]
        client_secret=WORKER_CLIENTS["svc-luigi"]["secret"],
        resource=API_AUDIENCE,
    )
    url = gateway.url + "/"  # type: ignore[attr-defined]
    result = run_worker(
        tmp_path,
        config,
        ["--module", "dev.luigi_pipeline", "Report", "--out-dir", str(tmp_path), "--scheduler-url", url],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in Path(str(audit_log)).read_text().splitlines()]  # bare JSON lines
    done = [e for e in events if e["event"] == "luigi_call" and e.get("status") == "DONE"]
    assert {e["task_family"] for e in done} == {"Extract", "Transform", "Report"}
    assert {e["user_id"] for e in done} == {"svc-luigi"}
    assert httpx.get(f"{url}api/task_list").status_code == 401


def test_check_reaches_the_idp(stack: dict[str, object]) -> None:
    workdir = Path(str(stack["workdir"]))
    result = subprocess.run(
        [*gateway_command(), "--config", str(workdir / "gateway.ini"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and "provider 'default': ok" in result.stderr, result.stderr[-2000:]
