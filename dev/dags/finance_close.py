"""Demo: a DAG whose own file grants access, with ``access_control`` in Airflow's format.

``access_control={"finance-team": {"DAGs": {"can_read"}}}``: members of the directory group ``finance-team``
may see this DAG, its runs, task logs and code, and nothing else. fiona is in that group only: no global
role, read-only on this DAG. Its tasks compute locally: no connection, no network.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

with DAG(
    dag_id="finance_close",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["finance", "demo"],
    default_args={"retries": 0},
    access_control={"finance-team": {"DAGs": {"can_read"}}},
    doc_md=__doc__,
):

    @task
    def ledger_totals() -> dict[str, int]:
        return {"debits": 12_500, "credits": 12_500}

    @task
    def check_balanced(totals: dict[str, int]) -> None:
        if totals["debits"] != totals["credits"]:
            raise ValueError(f"the books do not balance: {totals}")

    check_balanced(ledger_totals())
