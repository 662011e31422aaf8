"""The CLI reads the DAG index from the metadata DB; here the DB loader is replaced, so no test touches a DB."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from airflow_identity_provider.auth.catalog import dag_index
from airflow_identity_provider.auth.catalog.dag_index import DagFacts, Entry


class FakeDb:
    """What ``load_from_db`` returns: ``facts`` (set by the test), or ``error`` raised as the DB would."""

    def __init__(self) -> None:
        self.facts: list[DagFacts] = []
        self.error: Exception | None = None

    def __call__(self, previous: Mapping[str, Entry]) -> dict[str, Entry]:
        if self.error is not None:
            raise self.error
        return {facts.dag_id: ("h", facts) for facts in self.facts}


@pytest.fixture(autouse=True)
def dag_db(monkeypatch: pytest.MonkeyPatch) -> FakeDb:
    fake = FakeDb()
    monkeypatch.setattr(dag_index, "load_from_db", fake)
    return fake
