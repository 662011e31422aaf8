"""What the identity gateway adds to each luigi scheduler call, against luigid direct, in one run.

    .venv/bin/python -m dev.bench.luigi_gateway [--requests 300] [--warmup 30]

One real ``luigid`` (loopback) and the gateway in front of it, started by its console script
(``luigi-identity-gateway``, uvicorn) with the real local IdP. A machine identity (``svc-luigi``, app role
``Luigi.Worker``) gets one client-credentials token; then the calls a luigi worker makes are sent as luigi's
``RemoteScheduler`` sends them (``POST /api/<method>`` with ``data=<json>``) on one keep-alive connection each,
to luigid and through the gateway (``Authorization: Bearer``), the order swapped every round so machine noise
hits both alike, after a warm-up (the gateway validates the token once, then remembers it):

    ping          the worker's heartbeat (worker id bound to the principal on the first call)
    add_task      a task reported PENDING (state-changing: authorized, worker checked, audited)
    task_list     what the visualiser reads

Prints per call the median and p95 of both, the added median in milliseconds and the ratio
gateway / direct, then the ratio over all calls.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from dev.airflow_server import free_port
from dev.idp.local_idp import API_AUDIENCE, start_local_idp
from dev.luigi_stack import WORKER_CLIENTS, gateway_config, start_gateway, start_luigid

WORKER = "Worker(salt=000000001, workers=1, host=bench, username=bench, pid=1)"
CALLS: dict[str, dict[str, Any]] = {
    "ping": {"worker": WORKER},
    "add_task": {
        "task_id": "Bench_x_0123456789",
        "status": "PENDING",
        "worker": WORKER,
        "family": "Bench",
        "params": {},
        "runnable": True,
    },
    "task_list": {"status": "PENDING", "upstream_status": ""},
}


def _timed(client: httpx.Client, method: str, arguments: dict[str, Any]) -> float:
    body = {"data": json.dumps(arguments)}
    start = time.perf_counter()
    response = client.post(f"/api/{method}", data=body)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise SystemExit(f"{method}: HTTP {response.status_code} {response.text[:300]}")
    return elapsed


def _p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300, help="measured requests per call and target")
    parser.add_argument("--warmup", type=int, default=30, help="unmeasured requests per call and target first")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench_luigi_gateway_"))
    port = free_port()
    idp = start_local_idp(redirect_uris=[f"http://127.0.0.1:{port}/auth/callback"], service_clients=WORKER_CLIENTS)
    luigid = start_luigid(workdir)
    gateway = None
    try:
        config = gateway_config(idp, upstream=luigid.url, port=port)
        # Audit events to a file: the measured path writes them as in production, not to this terminal.
        gateway = start_gateway(workdir, config, port=port, extra_args=["--audit-log", str(workdir / "audit.jsonl")])
        token = httpx.post(
            idp.token_endpoint,
            data={"grant_type": "client_credentials", "resource": API_AUDIENCE},
            auth=("svc-luigi", WORKER_CLIENTS["svc-luigi"]["secret"]),
        ).json()["access_token"]
        direct = httpx.Client(base_url=luigid.url, timeout=30)
        through = httpx.Client(base_url=gateway.url, timeout=30, headers={"Authorization": f"Bearer {token}"})
        times: dict[tuple[str, str], list[float]] = {(m, t): [] for m in CALLS for t in ("direct", "gateway")}
        with direct, through:
            for method, arguments in CALLS.items():
                for _ in range(args.warmup):
                    _timed(direct, method, arguments)
                    _timed(through, method, arguments)
            for round_ in range(args.requests):
                for method, arguments in CALLS.items():
                    order = [("direct", direct), ("gateway", through)]
                    for target, client in order if round_ % 2 == 0 else reversed(order):
                        times[(method, target)].append(_timed(client, method, arguments))
        print(f"luigi gateway vs luigid direct: {args.requests} calls each, medians and p95 in ms")
        print(f"{'call':<11}{'direct':>9}{'p95':>8}{'gateway':>10}{'p95':>8}{'added':>9}{'ratio':>8}")
        for method in CALLS:
            d, g = times[(method, "direct")], times[(method, "gateway")]
            dm, gm = statistics.median(d) * 1000, statistics.median(g) * 1000
            print(
                f"{method:<11}{dm:>9.2f}{_p95(d) * 1000:>8.2f}{gm:>10.2f}{_p95(g) * 1000:>8.2f}"
                f"{gm - dm:>9.2f}{gm / dm:>7.2f}x"
            )
        all_direct = statistics.median([t for (m, k), v in times.items() if k == "direct" for t in v])
        all_gateway = statistics.median([t for (m, k), v in times.items() if k == "gateway" for t in v])
        print(
            f"all calls: direct {all_direct * 1000:.2f} ms, gateway {all_gateway * 1000:.2f} ms, "
            f"added {(all_gateway - all_direct) * 1000:.2f} ms per call, ratio {all_gateway / all_direct:.2f}x"
        )
    finally:
        if gateway is not None:
            gateway.stop()
        luigid.stop()
        idp.stop()


if __name__ == "__main__":
    main()
