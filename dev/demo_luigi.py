"""The Luigi part of ``dev/demo``: luigid behind the identity gateway, a pipeline run by an authenticated worker.

Starts its own local IdP (same users and password as the Airflow demo's), a ``luigid`` on loopback, and
``luigi-identity-gateway`` in front of it; then a luigi worker with the machine identity ``svc-luigi``
(client credentials, app role ``Luigi.Worker``) runs Extract -> Transform -> Report and a task that fails.
Sign in at the printed URL as bob (Viewer: sees it all, cannot mark the failed task done) or dave (Op: can).

``DEMO_LUIGI=0`` skips it; so does a venv without luigi (``pip install -e '.[luigi]' -c constraints.txt``).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dev.airflow_server import preferred_port
from dev.idp.local_idp import API_AUDIENCE, LocalIdp, start_local_idp


@dataclass
class _IdpProcess:
    """The local IdP, shaped like the demo's other components (name, process, stop, log_tail)."""

    idp: LocalIdp
    name: str = "luigi IdP"

    @property
    def process(self) -> subprocess.Popen[str]:
        return self.idp.process

    def stop(self) -> None:
        self.idp.stop()

    def log_tail(self, chars: int = 4000) -> str:
        return self.idp.stderr_text()[-chars:]


def start_luigi_demo(root: Path, *, gateway_port: int = 8083, idp_port: int = 9001) -> list[Any]:
    """Start everything and print where to look; returns the components for the demo to watch and stop."""
    if os.environ.get("DEMO_LUIGI", "1") == "0":
        return []
    try:
        import luigi  # noqa: F401
    except ImportError:
        print("== luigi is not installed: skipping the Luigi gateway (pip install -e '.[luigi]' -c constraints.txt)")
        return []
    from dev.luigi_stack import WORKER_CLIENTS, gateway_config, run_worker, start_gateway, start_luigid, worker_config

    workdir = root / "luigi"
    workdir.mkdir(parents=True, exist_ok=True)
    port = preferred_port(gateway_port)
    url = f"http://127.0.0.1:{port}"
    print("== starting luigid behind the identity gateway (its own local IdP)")
    started: list[Any] = []
    idp = start_local_idp(
        redirect_uris=[f"{url}/auth/callback"],
        post_logout_uris=[f"{url}/auth/logged-out"],
        port=preferred_port(idp_port),
        service_clients=WORKER_CLIENTS,
    )
    started.append(_IdpProcess(idp))
    started.append(start_luigid(workdir))
    config = gateway_config(idp, upstream=started[1].url, port=port)
    started.append(start_gateway(workdir, config, port=port, extra_args=["--audit-log", str(workdir / "audit.jsonl")]))
    secret = WORKER_CLIENTS["svc-luigi"]["secret"]
    worker = worker_config(
        token_endpoint=idp.token_endpoint, client_id="svc-luigi", client_secret=secret, resource=API_AUDIENCE
    )
    for task, expected in (("Report", 0), ("AlwaysFails", 1)):
        ran = run_worker(
            workdir,
            worker,
            ["--module", "dev.luigi_pipeline", task, "--out-dir", str(workdir / "out"), "--scheduler-url", url + "/"],
        )
        if ran.returncode != expected:
            print(f"warning: the luigi worker running {task} exited {ran.returncode}:\n{ran.stderr[-2000:]}")
    print(f"\nLuigi:     {url}/   (the visualiser behind the gateway; sign in at {idp.issuer})")
    print("           bob: Viewer (sees the pipeline, cannot mark AlwaysFails done), dave: Op (can), alice: Admin")
    print(f"           worker svc-luigi/{secret} (client credentials, role Luigi.Worker) ran the pipeline")
    print(f"           audit events: {workdir / 'audit.jsonl'}\n")
    return started
