"""In the bundle owned by the team analytics."""

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("analytics_team_load", schedule=None):
    EmptyOperator(task_id="noop")
