"""Authorization cost per request: our in-memory role table against Airflow's SimpleAuthManager (baseline,
same process) and our one-check list filtering against BaseAuthManager's per-id default.

    .venv/bin/python -m dev.bench.authz
"""

from __future__ import annotations

import os
import timeit

os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", "bench-" + "0" * 64)

from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

from airflow_identity_provider.auth.manager import IdentityAuthManager
from airflow_identity_provider.auth.rules.roles import Role
from airflow_identity_provider.auth.rules.user import IdentityUser

N = 200_000
DAG_IDS = {f"dag_{i}" for i in range(600)}  # the size of the Keycloak slowness report (#61686)


def best(stmt, number: int) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=5)) / number


def main() -> None:
    ours, simple = IdentityAuthManager(), SimpleAuthManager()
    user = IdentityUser(user_id="u", name="U", email="", role=Role.OP)
    simple_user = SimpleAuthManagerUser(username="u", role="op")
    details = DagDetails(id="dag_1")

    ours_check = best(
        lambda: ours.is_authorized_dag(method="PUT", user=user, access_entity=DagAccessEntity.RUN, details=details), N
    )
    simple_check = best(
        lambda: simple.is_authorized_dag(
            method="PUT", user=simple_user, access_entity=DagAccessEntity.RUN, details=details
        ),
        N,
    )
    ours_filter = best(lambda: ours.filter_authorized_dag_ids(dag_ids=DAG_IDS, user=user), 2000)
    default_filter = best(lambda: BaseAuthManager.filter_authorized_dag_ids(ours, dag_ids=DAG_IDS, user=user), 200)

    print(
        f"is_authorized_dag(PUT, RUN)        ours {ours_check * 1e9:8.0f} ns   "
        f"SimpleAuthManager {simple_check * 1e9:8.0f} ns   ratio ours/simple {ours_check / simple_check:.2f}"
    )
    print(
        f"filter_authorized_dag_ids(600 ids) ours {ours_filter * 1e6:8.1f} us   "
        f"per-id default {default_filter * 1e6:8.1f} us   ratio default/ours {default_filter / ours_filter:.0f}x"
    )


if __name__ == "__main__":
    main()
