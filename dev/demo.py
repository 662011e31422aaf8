"""The demo behind ``dev/demo``: a local IdP, the ARM, Graph and JumpCloud emulators and a real Airflow.

The provider is ``idp = jumpcloud`` over the local IdP, synced with the JumpCloud emulator
(``dev/emulator_kit/directory_demo.py``): ``dev/directory suspend bob`` takes bob's access away live.
Everything binds to 127.0.0.1 and lives under ``.demo/``; Ctrl-C stops every process it started.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from dev.airflow_server import (
    REPO_ROOT,
    AirflowProcess,
    airflow_bin,
    airflow_env,
    migrate,
    oidc_settings,
    preferred_port,
    start_api_server,
    start_component,
)
from dev.demo_luigi import start_luigi_demo
from dev.emulator_kit.directory_cli import STATE as DIRECTORY_STATE
from dev.emulator_kit.directory_demo import start_directory_emulators
from dev.idp.local_idp import (
    API_AUDIENCE,
    BUILTIN_USERS,
    DEFAULT_PASSWORD,
    SERVICE_CLIENT_ID,
    SERVICE_CLIENT_SECRET,
    start_local_idp,
)

DEMO_CLIENT = "33333333-3333-3333-3333-333333333333"
ROLE_MAPPING = {
    "airflow-admins": "Admin",
    "airflow-ops": "Op",
    "airflow-users": "User",
    "airflow-viewers": "Viewer",
    "Airflow.Op": "Op",  # app role of the IdP's svc-etl client: machine access through POST /auth/token
}
# Fine-grained access without a global role: grace through a DAG grant, fiona through a DAG's access_control.
DAG_GRANTS = [{"groups": ["analytics-operators"], "dags": ["analytics_*"], "role": "Op"}]
DEMO_USERS: dict[str, dict[str, Any]] = {
    user_id: {
        "name": name,
        "preferred_username": user_id,
        "email": f"{user_id}@example.test",
        "email_verified": True,
        "groups": groups,
    }
    for user_id, name, groups in (
        ("grace", "Grace Analytics", ["analytics-operators"]),
        ("fiona", "Fiona Finance", ["finance-team"]),
    )
}
ACCESS_WITHOUT_ROLE = {
    "grace": "no role; Op on analytics_* (dag_grants)",
    "fiona": "no role; read finance_close (its access_control)",
}


def _start_arm_emulator(home: Path) -> tuple[Any, dict[str, str]]:
    """Start the ARM emulator and return it with the connection env for DAGs, or (None, {}) if absent."""
    try:
        from dev.arm_emulator.client import ArmEmulator
    except ImportError:
        return None, {}
    emulator = ArmEmulator()
    emulator.__enter__()
    subscription = "22222222-2222-2222-2222-222222222222"
    extra = {
        "auth_type": "client_secret",
        "tenant_id": "11111111-1111-1111-1111-111111111111",
        "subscription_id": subscription,
        **emulator.connection_extras(),
        "polling_interval": 1,
        "allowed_scopes": [f"/subscriptions/{subscription}/resourceGroups/rg-demo"],
    }
    conn = {"conn_type": "azure_resource_manager", "login": DEMO_CLIENT, "password": "demo-secret", "extra": extra}
    return emulator, {"AIRFLOW_CONN_AZURE_RESOURCE_MANAGER_DEFAULT": json.dumps(conn)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8080, help="Airflow port (a free one if taken)")
    parser.add_argument("--idp-port", type=int, default=9000, help="IdP port (a free one if taken)")
    parser.add_argument("--api-server-only", action="store_true", help="skip scheduler, dag-processor, triggerer")
    args = parser.parse_args()

    home = REPO_ROOT / ".demo" / "airflow_home"
    port, idp_port = preferred_port(args.port), preferred_port(args.idp_port)
    base = f"http://127.0.0.1:{port}"
    started: list[AirflowProcess] = []

    print("== starting the local OpenID provider (npm oidc-provider)")
    idp = start_local_idp(
        redirect_uris=[f"{base}/auth/callback"],
        post_logout_uris=[f"{base}/auth/logged-out"],
        port=idp_port,
        extra_users=DEMO_USERS,
    )
    emulator, conn_env = _start_arm_emulator(home)
    if emulator is not None:
        print(f"== ARM emulator at {emulator.url}")
    print("== starting the directory emulators (Microsoft Graph, JumpCloud) with the demo users")
    directory = start_directory_emulators({**BUILTIN_USERS, **{u: c["groups"] for u, c in DEMO_USERS.items()}})
    directory.save(DIRECTORY_STATE)

    def stop(*_: object) -> None:
        print("\n== stopping")
        for component in reversed(started):
            component.stop()
        if emulator is not None:
            emulator.__exit__(None, None, None)
        directory.stop()
        DIRECTORY_STATE.unlink(missing_ok=True)
        idp.stop()
        sys.exit(0)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        env = airflow_env(
            home,
            port=port,
            extra={
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dev" / "dags"),
                **oidc_settings(idp, ROLE_MAPPING),
                "AIRFLOW__IDENTITY_AUTH_MANAGER__DAG_GRANTS": json.dumps(DAG_GRANTS),
                **directory.airflow_settings(home.parent / "directory-ca.pem"),  # idp = jumpcloud, synced
                **conn_env,
            },
        )
        print(f"== migrating the metadata database in {home}")
        migrate(env)
        # Before the api-server starts, so that its DAG index already holds finance_close's access_control
        # (fiona can sign in at once) and the DAGs are listed without waiting for the dag-processor.
        print("== serializing the demo DAGs")
        reserialize(env)
        print("== starting airflow api-server")
        server = start_api_server(home, env, port=port)
        started.append(server.component)
        if not args.api_server_only:
            for name in ("scheduler", "dag-processor", "triggerer"):
                started.append(start_component(name, [name], env, home))
        started.extend(start_luigi_demo(REPO_ROOT / ".demo"))  # luigid behind the identity gateway (dev/demo_luigi.py)
    except Exception as err:
        print(f"error: {err}", file=sys.stderr)
        stop()

    print(f"\nAirflow:   {base}/   (sign in through the local IdP at {idp.issuer})")
    print(f"Password:  {DEFAULT_PASSWORD} for every user")
    users = {**BUILTIN_USERS, **{user: claims["groups"] for user, claims in DEMO_USERS.items()}}
    for user, groups in users.items():
        role = max((ROLE_MAPPING[g] for g in groups if g in ROLE_MAPPING), default="none (refused)", key=_rank)
        access = ACCESS_WITHOUT_ROLE.get(user, role) if role == "none (refused)" else role
        print(f"  {user:<6} groups {', '.join(groups):<30} -> {access}")
    print(
        f"Machine:   client credentials {SERVICE_CLIENT_ID}/{SERVICE_CLIENT_SECRET} at {idp.token_endpoint} "
        f"(resource {API_AUDIENCE}), then POST {base}/auth/token with the access token as Bearer"
    )
    print("DAGs:      analytics_daily (grace may run it), finance_close (fiona may read it)")
    if emulator is not None:
        print("           arm_deploy_demo (deploys into rg-demo), arm_fence_refused_demo (refused by the fence)")
    print("Directory: (take access away while the demo runs)\n  " + "\n  ".join(directory.hints()))
    print(f"Logs:      {home / 'logs'}\nCtrl-C stops everything.")
    while True:
        time.sleep(1)
        for component in started:
            if component.process.poll() is not None:
                print(f"error: {component.name} exited; its log:\n{component.log_tail()}", file=sys.stderr)
                stop()


def reserialize(env: dict[str, str]) -> None:
    result = subprocess.run(
        [airflow_bin(), "dags", "reserialize"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow dags reserialize failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def _rank(role: str) -> int:
    return ["none (refused)", "Viewer", "User", "Op", "Admin"].index(role)


if __name__ == "__main__":
    main()
