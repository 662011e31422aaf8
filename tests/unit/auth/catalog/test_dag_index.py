"""DagIndex with an injected loader: snapshot, generation and refresh-thread semantics (no database)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping

import pytest

from airflow_identity_provider.auth.catalog.dag_index import DagFacts, DagIndex, Entry

LOGGER = "airflow_identity_provider.auth.catalog.dag_index"
FINANCE = DagFacts(
    "finance_daily",
    frozenset({"finance"}),
    "dags-folder",
    {"finance-team": {"DAGs": {"can_read"}, "DAG Runs": {"can_create"}}},
)
PLAIN = DagFacts("plain", frozenset(), "dags-folder", None)


class FakeLoader:
    """Returns whatever ``content`` holds (or raises ``error``); records what the index passed in."""

    def __init__(self, *facts: DagFacts) -> None:
        self.content: dict[str, Entry] = {f.dag_id: ("h1", f) for f in facts}
        self.error: Exception | None = None
        self.calls: list[Mapping[str, Entry]] = []
        self.lock = threading.Lock()

    def __call__(self, previous: Mapping[str, Entry]) -> Mapping[str, Entry]:
        with self.lock:
            self.calls.append(previous)
            if self.error is not None:
                raise self.error
            return dict(self.content)

    def set(self, *facts: DagFacts, token: str = "h2") -> None:
        with self.lock:
            self.content = {f.dag_id: (token, f) for f in facts}


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.005)


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


@pytest.fixture
def index_factory() -> Iterator[Callable[..., DagIndex]]:
    made: list[DagIndex] = []

    def make(loader: FakeLoader, refresh_seconds: float = 3600.0) -> DagIndex:
        index = DagIndex(refresh_seconds=refresh_seconds, load=loader)
        made.append(index)
        return index

    yield make
    for index in made:
        index.stop()


def test_empty_before_start() -> None:
    index = DagIndex(load=FakeLoader(FINANCE))
    assert index.get("finance_daily") is None
    assert dict(index.all()) == {}
    assert index.generation == 0


def test_start_loads_synchronously(index_factory: Callable[..., DagIndex]) -> None:
    index = index_factory(FakeLoader(FINANCE, PLAIN))
    index.start()
    assert index.get("finance_daily") == FINANCE
    assert index.get("plain") == PLAIN
    assert index.get("missing") is None
    assert dict(index.all()) == {"finance_daily": FINANCE, "plain": PLAIN}
    assert index.generation == 1


def test_get_never_raises() -> None:
    index = DagIndex(load=FakeLoader(FINANCE))
    index.refresh()
    assert index.get(["not", "hashable"]) is None  # type: ignore[arg-type]
    assert index.get(None) is None  # type: ignore[arg-type]


def test_all_is_read_only() -> None:
    index = DagIndex(load=FakeLoader(FINANCE))
    index.refresh()
    with pytest.raises(TypeError):
        index.all()["x"] = PLAIN  # type: ignore[index]


def test_dag_facts_hashable_despite_access_control_dict() -> None:
    assert hash(FINANCE) == hash(DagFacts("finance_daily", frozenset({"finance"}), "dags-folder", {"other": set()}))
    assert {FINANCE, PLAIN} == {PLAIN, FINANCE}


def test_generation_only_moves_when_content_changes() -> None:
    loader = FakeLoader(FINANCE)
    index = DagIndex(load=loader)
    assert index.refresh() is True
    assert index.generation == 1
    before = index.all()

    assert index.refresh() is False  # same facts
    loader.set(FINANCE, token="h-other")  # a new hash with equal facts (e.g. a task changed) is no content change
    assert index.refresh() is False
    assert index.generation == 1
    assert index.all() is before  # callers holding the mapping see the same object

    loader.set(FINANCE, PLAIN)
    assert index.refresh() is True
    assert index.generation == 2
    loader.set(PLAIN)
    assert index.refresh() is True
    assert index.generation == 3
    assert index.get("finance_daily") is None
    changed_acl = DagFacts(PLAIN.dag_id, PLAIN.tags, PLAIN.bundle, {"ops": {"DAGs": {"can_read"}}})
    loader.set(changed_acl)
    assert index.refresh() is True
    assert index.generation == 4


def test_loader_gets_previous_entries() -> None:
    loader = FakeLoader(FINANCE)
    index = DagIndex(load=loader)
    index.refresh()
    loader.set(FINANCE, token="h2")
    index.refresh()
    index.refresh()
    assert loader.calls[0] == {}
    assert loader.calls[1] == {"finance_daily": ("h1", FINANCE)}
    assert loader.calls[2] == {"finance_daily": ("h2", FINANCE)}  # tokens are recorded even without a change


def test_failing_loader_keeps_last_content_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    loader = FakeLoader(FINANCE)
    index = DagIndex(load=loader)
    index.refresh()
    loader.error = RuntimeError("database is locked")
    caplog.set_level(logging.INFO, logger=LOGGER)
    for _ in range(3):
        assert index.refresh() is False
    assert index.get("finance_daily") == FINANCE
    assert index.generation == 1
    assert len(warnings(caplog)) == 1

    loader.error = None
    loader.set(PLAIN)
    assert index.refresh() is True
    assert index.get("plain") == PLAIN
    assert any("works again" in r.getMessage() for r in caplog.records)

    loader.error = RuntimeError("second outage")
    index.refresh()
    index.refresh()
    assert len(warnings(caplog)) == 2  # one more for the new outage


def test_start_with_failing_first_load_starts_empty(
    index_factory: Callable[..., DagIndex], caplog: pytest.LogCaptureFixture
) -> None:
    loader = FakeLoader(FINANCE)
    loader.error = RuntimeError("no such table: dag")
    index = index_factory(loader, refresh_seconds=0.01)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    index.start()
    assert dict(index.all()) == {}
    assert index.generation == 0
    wait_until(lambda: len(loader.calls) >= 5)  # the thread keeps trying...
    assert len(warnings(caplog)) == 1  # ...with one warning for the whole outage
    loader.error = None
    wait_until(lambda: index.get("finance_daily") == FINANCE)  # and recovers on its own


def test_start_is_idempotent(index_factory: Callable[..., DagIndex]) -> None:
    loader = FakeLoader(FINANCE)
    index = index_factory(loader)
    before = {t.ident for t in threading.enumerate()}
    index.start()
    index.start()
    index.start()
    assert len(loader.calls) == 1  # one synchronous load, not three
    started = [t for t in threading.enumerate() if t.ident not in before]
    assert [t.name for t in started] == ["airflow-identity-dag-index"]
    assert started[0].daemon


def test_stop_then_start_again(index_factory: Callable[..., DagIndex]) -> None:
    loader = FakeLoader(FINANCE)
    index = index_factory(loader, refresh_seconds=0.01)
    index.start()
    thread = index._thread
    index.stop()
    assert thread is not None and not thread.is_alive()  # (other tests' indexes may still run: not this one)
    assert index.get("finance_daily") == FINANCE  # still readable after stop
    calls = len(loader.calls)
    index.start()
    wait_until(lambda: len(loader.calls) > calls + 1)


def test_thread_picks_up_changes(index_factory: Callable[..., DagIndex]) -> None:
    loader = FakeLoader(FINANCE)
    index = index_factory(loader, refresh_seconds=0.01)
    index.start()
    assert index.generation == 1
    loader.set(FINANCE, PLAIN)
    wait_until(lambda: index.get("plain") == PLAIN)
    assert index.generation == 2


def test_thread_survives_unexpected_errors(index_factory: Callable[..., DagIndex]) -> None:
    loader = FakeLoader(FINANCE)
    index = index_factory(loader, refresh_seconds=0.01)
    index.start()
    loader.error = KeyError("boom")
    wait_until(lambda: len(loader.calls) >= 4)
    loader.error = None
    loader.set(PLAIN)
    wait_until(lambda: index.get("plain") == PLAIN)


def test_start_in_forked_child_starts_its_own_thread(index_factory: Callable[..., DagIndex]) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    loader = FakeLoader(FINANCE)
    index = index_factory(loader, refresh_seconds=0.01)
    index.start()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: the parent's thread is gone; start() must not treat it as running
        ok = False
        try:
            calls = len(loader.calls)
            index.start()
            loader.set(PLAIN)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and index.get("plain") != PLAIN:
                time.sleep(0.005)
            # The fork hook already started the child's thread, so start() finds it running.
            ok = index.get("plain") == PLAIN and len(loader.calls) > calls
        finally:
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
    os.close(write)
    result = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    assert result == b"1"
    assert index.get("plain") is None  # the child's change stayed in the child


def test_forked_worker_refreshes_without_calling_start(index_factory: Callable[..., DagIndex]) -> None:
    """gunicorn builds the app (and starts the index) in the master, then forks workers that never call
    start(): a worker must still refresh, or access a DAG author took away would stay granted there."""
    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    loader = FakeLoader(FINANCE)
    index = index_factory(loader, refresh_seconds=0.01)
    index.start()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        ok = False
        try:
            inherited = index.get("finance_daily") == FINANCE  # the inherited snapshot serves at once
            loader.set(PLAIN)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and index.get("plain") != PLAIN:
                time.sleep(0.005)
            ok = inherited and index.get("plain") == PLAIN and index.get("finance_daily") is None
        finally:
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
    os.close(write)
    result = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    assert result == b"1"
