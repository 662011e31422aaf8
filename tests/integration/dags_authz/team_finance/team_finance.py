"""In the bundle owned by the team finance."""

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("finance_team_books", schedule=None):
    EmptyOperator(task_id="noop")
