"""Readable by the directory group finance-team through the DAG's own access_control (FAB's dict form)."""

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(
    "finance_close",
    schedule=None,
    tags=["finance"],
    access_control={"finance-team": {"DAGs": {"can_read"}}},
):
    EmptyOperator(task_id="noop")
