"""No tag, no access_control, an id no grant matches: only global roles reach it."""

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("plain_other", schedule=None):
    EmptyOperator(task_id="noop")
