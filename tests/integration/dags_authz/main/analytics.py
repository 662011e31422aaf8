"""Matched by the grant on the glob analytics_*; analytics_daily also by the grant on the tag analytics."""

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("analytics_daily", schedule=None, tags=["analytics"]):
    EmptyOperator(task_id="noop")

with DAG("analytics_hourly", schedule=None, tags=["hourly"]):
    EmptyOperator(task_id="noop")
