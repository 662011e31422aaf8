"""Demo: a DAG someone may operate only through a DAG grant.

``dev/demo`` sets ``dag_grants`` to give the group ``analytics-operators`` the DAG rights of Op on every DAG
whose id matches ``analytics_*``. grace is in that group only: she holds no global role, sees this DAG and
no other, and may trigger, clear and pause it. Its tasks compute locally: no connection, no network.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

with DAG(
    dag_id="analytics_daily",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["analytics", "demo"],
    default_args={"retries": 0},
    doc_md=__doc__,
):

    @task
    def extract() -> list[int]:
        return [3, 1, 4, 1, 5, 9, 2, 6]

    @task
    def summarize(values: list[int]) -> dict[str, float]:
        return {"count": len(values), "total": sum(values), "mean": sum(values) / len(values)}

    summarize(extract())
