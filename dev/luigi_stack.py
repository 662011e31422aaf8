"""Start a real ``luigid`` and the identity gateway in front of it, on loopback, and run luigi workers.

Used by ``tests/luigi``, ``dev/bench/luigi_gateway.py`` and the demo (``dev/demo_luigi.py``). Each process
runs in its own process group with its log in the work directory, and is stopped by its group.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from dev.airflow_server import REPO_ROOT, AirflowProcess, free_port
from dev.idp.local_idp import API_AUDIENCE, GROUPS_SCOPES, LocalIdp

# Groups and app roles of the local IdP (dev/idp) -> roles of the gateway.
LUIGI_ROLE_MAPPING = {
    "airflow-admins": "Admin",
    "airflow-ops": "Op",
    "airflow-users": "User",
    "airflow-viewers": "Viewer",
    "Luigi.Worker": "Worker",
}
# Client-credentials clients of the local IdP that run luigi workers (two, to show one cannot act as the other).
WORKER_CLIENTS: dict[str, dict[str, Any]] = {
    "svc-luigi": {"secret": "luigi-secret", "roles": ["Luigi.Worker"]},
    "svc-luigi-2": {"secret": "luigi-secret-2", "roles": ["Luigi.Worker"]},
}


@dataclass
class Process(AirflowProcess):
    """A process of the stack, stopped by its group like Airflow's, and the URL it answers at."""

    url: str

    def log_tail(self, chars: int = 6000) -> str:
        return super().log_tail(chars)


def _spawn(name: str, args: Sequence[str], workdir: Path, env: Mapping[str, str], url: str) -> Process:
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            list(args), cwd=REPO_ROOT, env=dict(env), stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Process(name, process, log_path, url)


def _wait(started: Process, probe: str, timeout: float) -> Process:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if started.process.poll() is not None:
            raise RuntimeError(f"{started.name} exited with {started.process.returncode}:\n{started.log_tail()}")
        try:
            httpx.get(probe, timeout=2)
            return started
        except httpx.HTTPError:
            time.sleep(0.2)
    started.stop()
    raise RuntimeError(f"{started.name} did not answer at {probe} within {timeout} s:\n{started.log_tail()}")


def luigi_env(workdir: Path, config: str) -> dict[str, str]:
    """The environment of a luigi process whose luigi.cfg is ``config`` (written to ``workdir``)."""
    path = workdir / f"luigi-{secrets.token_hex(4)}.cfg"
    path.write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUIGI_", "AIRFLOW__"))}
    env.update({"LUIGI_CONFIG_PATH": str(path), "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"})
    return env


def start_luigid(workdir: Path, *, port: int = 0, timeout: float = 30) -> Process:
    port = port or free_port()
    config = f"[scheduler]\nstate_path = {workdir / 'luigi-state.pickle'}\nrecord_task_history = False\n"
    luigid = str(Path(sys.executable).with_name("luigid"))
    started = _spawn(
        "luigid",
        [luigid, "--address", "127.0.0.1", "--port", str(port)],
        workdir,
        luigi_env(workdir, config),
        f"http://127.0.0.1:{port}",
    )
    return _wait(started, f"{started.url}/api/ping", timeout)


def gateway_values(idp: LocalIdp, *, upstream: str, port: int, **extra: str) -> dict[str, str]:
    """The ``[luigi_gateway]`` keys for the local IdP (the same keys as ``[identity_auth_manager]``), in front of
    ``upstream`` on loopback ``port``; ``extra`` adds or overrides keys."""
    return {
        "upstream": upstream,
        "public_url": f"http://127.0.0.1:{port}/",
        "host": "127.0.0.1",
        "port": str(port),
        "session_secret": secrets.token_urlsafe(48),
        "idp": "oidc",
        "issuer": idp.issuer,
        "client_id": idp.client_id,
        "client_secret": idp.client_secret,
        "scopes": " ".join(GROUPS_SCOPES),
        "role_mapping": json.dumps(LUIGI_ROLE_MAPPING),
        "api_audiences": API_AUDIENCE,
        **extra,
    }


def gateway_config(idp: LocalIdp, *, upstream: str, port: int, **extra: str) -> str:
    """:func:`gateway_values` as the ini file ``luigi-identity-gateway --config`` reads."""
    values = gateway_values(idp, upstream=upstream, port=port, **extra)
    return "[luigi_gateway]\n" + "".join(f"{key} = {value}\n" for key, value in values.items())


def gateway_command() -> list[str]:
    """The console script pyproject installs (``python -m`` of its module before a reinstall made it)."""
    script = Path(sys.executable).with_name("luigi-identity-gateway")
    return [str(script)] if script.exists() else [sys.executable, "-m", "airflow_identity_provider.luigi_gateway.cli"]


def start_gateway(
    workdir: Path, config: str, *, port: int, timeout: float = 90, extra_args: Sequence[str] = ()
) -> Process:
    path = workdir / "gateway.ini"
    path.write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUIGI_GATEWAY")}
    env["PYTHONUNBUFFERED"] = "1"
    args = [*gateway_command(), "--config", str(path), *extra_args]
    started = _spawn("gateway", args, workdir, env, f"http://127.0.0.1:{port}")
    return _wait(started, f"{started.url}/_gateway/health", timeout)


def worker_config(*, token_endpoint: str, client_id: str, client_secret: str, resource: str) -> str:
    """luigi.cfg of a worker whose helper gets client-credentials tokens; retries kept short for tests."""
    return (
        "[core]\nrpc-retry-attempts = 1\nrpc-retry-wait = 1\n"
        "[worker]\nkeep_alive = false\nwait_interval = 0.2\nping_interval = 1\n"
        f"[identity_gateway]\ntoken_endpoint = {token_endpoint}\nclient_id = {client_id}\n"
        f"client_secret = {client_secret}\nresource = {resource}\n"
    )


def run_worker(
    workdir: Path, config: str, args: Sequence[str], *, helper: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``luigi`` (or the helper's ``python -m ...worker``) with ``args``, e.g. --module, task, --scheduler-url."""
    command = (
        [sys.executable, "-m", "airflow_identity_provider.luigi_gateway.worker", *args]
        if helper
        else [str(Path(sys.executable).with_name("luigi")), *args]
    )
    return subprocess.run(
        command,
        cwd=workdir,
        env=luigi_env(workdir, config),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
