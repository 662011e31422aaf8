"""In-memory catalogues of Airflow metadata that authorization reads without I/O (refreshed in the background)."""
