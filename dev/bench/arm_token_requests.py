"""Token requests a task pays for many ARM calls: one hook (one credential shared by every client) against
the baseline of a new hook per call (what building a client per operation costs), same run, same emulator.

    .venv/bin/python -m dev.bench.arm_token_requests [--calls 60]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import time

from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerHook
from dev.arm_emulator.client import ArmEmulator

TOKEN_PATHS = re.compile(r"/oauth2/v2\.0/token/?$", re.I)
SUB = "8a8a8a8a-1111-2222-3333-444444444444"
CLIENT = "0b0b0b0b-1111-2222-3333-444444444444"


def tokens(emu: ArmEmulator) -> int:
    return sum(1 for r in emu.requests() if TOKEN_PATHS.search(r.path))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=60)
    args = parser.parse_args()
    logging.getLogger("azure").setLevel(logging.WARNING)
    with ArmEmulator() as emu:
        extra = {
            "auth_type": "client_secret",
            "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "subscription_id": SUB,
            **emu.connection_extras(),
        }
        os.environ["AIRFLOW_CONN_ARM_BENCH"] = json.dumps(
            {
                "conn_type": "azure_resource_manager",
                "login": "0b0b0b0b-1111-2222-3333-444444444444",
                "password": "bench-secret",
                "extra": extra,
            }
        )
        hook = AzureResourceManagerHook("arm_bench")
        hook.get_resource_client().resource_groups.create_or_update("rg-bench", {"location": "westeurope"})
        emu.reset()
        hook = AzureResourceManagerHook("arm_bench")
        clients = [hook.get_resource_client(), hook.get_deployments_client(), hook.get_authorization_client()]
        started = time.perf_counter()
        for i in range(args.calls):
            client = clients[i % 3]
            if i % 3 == 0:
                list(client.resource_groups.list())
            elif i % 3 == 1:
                list(client.deployments.list_at_subscription_scope())
            else:
                list(client.role_assignments.list_for_subscription())
        shared = tokens(emu)
        shared_time = time.perf_counter() - started
        hook.close()

        emu.reset()
        started = time.perf_counter()
        for _ in range(args.calls):
            fresh = AzureResourceManagerHook("arm_bench")
            list(fresh.get_resource_client().resource_groups.list())
            fresh.close()
        baseline = tokens(emu)
        baseline_time = time.perf_counter() - started

    print(f"one hook, {args.calls} calls across 3 clients: {shared} token request(s), {shared_time:.2f} s")
    print(f"baseline, a new hook per call ({args.calls} calls): {baseline} token requests, {baseline_time:.2f} s")
    print(f"ratio baseline/shared: tokens {baseline / max(shared, 1):.0f}x, time {baseline_time / shared_time:.1f}x")


if __name__ == "__main__":
    main()
