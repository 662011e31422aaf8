"""The DAG facts per-DAG authorization needs (tags, bundle, ``access_control``), held in memory.

Authorization checks run on every API request and must do no I/O, so they read a snapshot that a daemon thread
refreshes from the Airflow metadata database. A refresh costs one query over all DAGs (id, bundle, tags, hash of
the latest serialized DAG); only DAGs whose hash moved cost a second, chunked query that reads their serialized
JSON for ``access_control``.

Imports of Airflow models happen inside the loader: this module is imported by the auth manager, which Airflow
loads from every CLI command, and must stay cheap.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import Unpack

    from sqlalchemy.orm import Session
    from sqlalchemy.sql import Select

    AnySelect = Select[Unpack[tuple[Any, ...]]]  # SQLAlchemy 2.1 types Select by its columns

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DagFacts:
    dag_id: str
    tags: frozenset[str]
    bundle: str  # DagModel.bundle_name, "" if none
    # The DAG's access_control as the dag-processor serialized it, deserialized (sets come back as sets):
    # principal -> {resource name: actions} or principal -> actions. None when the DAG has none ({} is kept:
    # Airflow tells "no access_control" from "empty access_control"). Shared between threads: do not mutate.
    # Left out of the hash (dicts are unhashable) so DagFacts can still key caches.
    access_control: Mapping[str, Any] | None = field(default=None, hash=False)


# What a loader keeps per DAG: (version token, facts). The token is the latest serialized dag_hash ("" when the
# DAG has no serialized row yet); the loader compares tokens to know which DAGs' serialized JSON to re-read.
Entry = tuple[str, DagFacts]
# A loader gets the previous entries and returns the new ones; it raises on any error (the index keeps the
# previous snapshot then). Injectable so unit tests need no database.
Loader = Callable[[Mapping[str, Entry]], Mapping[str, Entry]]

_EMPTY: Mapping[str, DagFacts] = MappingProxyType({})
# Serialized rows read per query: well under SQLite's bound-parameter limit (999 on old builds).
_CHUNK = 500


@dataclass(frozen=True)
class _Snapshot:
    # Published as one object so that a reader never sees the facts of one refresh with another's generation.
    entries: Mapping[str, Entry]
    facts: Mapping[str, DagFacts]
    generation: int


class DagIndex:
    """DAG id -> DagFacts, refreshed every ``refresh_seconds`` by a daemon thread; reads never touch the DB."""

    def __init__(self, *, refresh_seconds: float = 5.0, load: Loader | None = None) -> None:
        self._refresh_seconds = refresh_seconds
        self._load: Loader = load or load_from_db
        self._snapshot = _Snapshot(entries={}, facts=_EMPTY, generation=0)
        self._failing = False  # one warning per outage, not one per refresh
        self._hooks_registered = False
        self._init_thread_state()

    def _init_thread_state(self) -> None:
        # Also run in a forked child: the parent's thread does not exist there and its locks may be held forever.
        self._pid = os.getpid()
        self._lifecycle_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Load once synchronously (on error: one warning, stay as is), then refresh in a daemon thread.

        Idempotent; called again in a forked child (gunicorn/uvicorn workers), it starts that child's own thread.
        """
        if self._pid != os.getpid():
            self._init_thread_state()
        with self._lifecycle_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop = threading.Event()
            self.refresh()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name="airflow-identity-dag-index", daemon=True
            )
            self._thread.start()
            if not self._hooks_registered:
                self._hooks_registered = True
                # Before Airflow's own exit handler disposes of the ORM (registered earlier, so it runs later):
                # a refresh caught mid-query by interpreter exit would otherwise print a SQLAlchemy trace.
                atexit.register(self.stop)
                # gunicorn (Airflow 3.2+ [api] server_type) builds the app, and so starts us, in the master and
                # forks the workers: without this a worker would keep the master's facts forever.
                os.register_at_fork(after_in_child=self._restart_in_child)

    def _restart_in_child(self) -> None:
        """In a forked worker: keep the inherited snapshot (a few seconds old) and start this worker's thread."""
        was_running = self._thread is not None
        self._init_thread_state()
        if was_running:
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name="airflow-identity-dag-index", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the refresh thread (the last snapshot stays readable)."""
        with self._lifecycle_lock:
            self._stop.set()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(self._refresh_seconds, 1.0) + 5.0)

    def get(self, dag_id: str) -> DagFacts | None:
        try:
            return self._snapshot.facts.get(dag_id)
        except TypeError:  # an unhashable id from a caller: unknown, not an error on the request path
            return None

    @property
    def generation(self) -> int:
        """Incremented whenever the content changes: callers key their caches by it."""
        return self._snapshot.generation

    def all(self) -> Mapping[str, DagFacts]:
        return self._snapshot.facts

    def refresh(self) -> bool:
        """Reload now; True when the content changed. Never raises: a failure keeps the previous snapshot."""
        with self._refresh_lock:
            previous = self._snapshot
            try:
                entries = dict(self._load(previous.entries))
            except Exception:
                if not self._failing:
                    self._failing = True
                    log.warning("DAG index refresh failed; keeping the previous DAG facts", exc_info=True)
                return False
            if self._failing:
                self._failing = False
                log.info("DAG index refresh works again")
            facts = {dag_id: entry[1] for dag_id, entry in entries.items()}
            changed = facts != previous.facts
            # Unchanged content keeps its generation (and its facts objects); new tokens are still recorded.
            self._snapshot = _Snapshot(
                entries=entries,
                facts=MappingProxyType(facts) if changed else previous.facts,
                generation=previous.generation + 1 if changed else previous.generation,
            )
            return changed

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self._refresh_seconds):
            try:
                self.refresh()
            except BaseException:  # refresh() catches Exception; anything else must not end the thread either
                log.exception("DAG index refresh thread: unexpected error")


def load_from_db(previous: Mapping[str, Entry]) -> dict[str, Entry]:
    """The loader the index uses outside tests: one summary query, plus reads of changed serialized DAGs."""
    from airflow.utils.session import create_session

    # Not the scoped (thread-local) session: start() loads in the caller's thread, whose own scoped session and
    # transaction must not be committed or closed under it.
    with create_session(scoped=False) as session:
        tags: dict[str, set[str]] = {}
        bundles: dict[str, str] = {}
        latest: dict[str, tuple[Any, str]] = {}  # dag_id -> (serialized_dag.id, dag_hash)
        for dag_id, bundle, tag, serialized_id, dag_hash in session.execute(_summary_select()):
            bundles[dag_id] = bundle or ""
            dag_tags = tags.setdefault(dag_id, set())
            if tag is not None:
                dag_tags.add(tag)
            if serialized_id is not None:
                latest[dag_id] = (serialized_id, dag_hash or "")
        changed = [sid for dag_id, (sid, dag_hash) in latest.items() if _token(previous, dag_id) != dag_hash]
        read = dict(_read_access_control(session, changed))

    result: dict[str, Entry] = {}
    for dag_id, bundle in bundles.items():
        old = previous.get(dag_id)
        if dag_id in read:
            token, access_control = read[dag_id]
        elif dag_id in latest and old is not None:
            # Unchanged hash, or the row changed between the two queries (then the old token makes the next
            # refresh read it again).
            token, access_control = old[0], old[1].access_control
        else:
            token, access_control = "", None  # not serialized yet (or vanished): nothing to grant from
        result[dag_id] = (token, DagFacts(dag_id, frozenset(tags[dag_id]), bundle, access_control))
    return result


def _token(previous: Mapping[str, Entry], dag_id: str) -> str | None:
    entry = previous.get(dag_id)
    return entry[0] if entry is not None else None


def _summary_select() -> AnySelect:
    """(dag_id, bundle_name, tag or None, latest serialized_dag.id, its dag_hash): one row per DAG and tag.

    Stale DAGs (DagModel.is_stale, in 3.1 and 3.3: their file is gone) are kept: their runs and task instances
    are still listed, and the same grants should keep covering them.
    """
    from airflow.models.dag import DagModel, DagTag
    from sqlalchemy import select

    latest = _latest_serialized_select().subquery()
    return (
        select(DagModel.dag_id, DagModel.bundle_name, DagTag.name, latest.c.id, latest.c.dag_hash)
        .outerjoin(DagTag, DagTag.dag_id == DagModel.dag_id)
        .outerjoin(latest, latest.c.dag_id == DagModel.dag_id)
    )


def _latest_serialized_select() -> AnySelect:
    """(id, dag_id, dag_hash) of each DAG's latest serialized row: the one of its highest DagVersion.version_number.

    That is how Airflow 3.3 picks it (SerializedDagModel._latest_by_version_select); 3.1 orders by created_at,
    which agrees except on equal timestamps. version_number exists in both, and (dag_id, version_number) and
    serialized_dag.dag_version_id are unique, so this gives at most one row per DAG in both.
    """
    from airflow.models.dag_version import DagVersion
    from airflow.models.serialized_dag import SerializedDagModel
    from sqlalchemy import func, select

    newest = (
        select(DagVersion.dag_id, func.max(DagVersion.version_number).label("version_number"))
        .join(SerializedDagModel, SerializedDagModel.dag_version_id == DagVersion.id)
        .group_by(DagVersion.dag_id)
        .subquery()
    )
    return (
        select(SerializedDagModel.id, SerializedDagModel.dag_id, SerializedDagModel.dag_hash)
        .join(DagVersion, SerializedDagModel.dag_version_id == DagVersion.id)
        .join(
            newest,
            (DagVersion.dag_id == newest.c.dag_id) & (DagVersion.version_number == newest.c.version_number),
        )
    )


def _read_access_control(session: Session, serialized_ids: Sequence[Any]) -> Iterator[tuple[str, tuple[str, Any]]]:
    """dag_id -> (dag_hash read, access_control) for these serialized rows, in chunks."""
    from airflow.models.serialized_dag import SerializedDagModel
    from sqlalchemy import select

    for start in range(0, len(serialized_ids), _CHUNK):
        chunk = serialized_ids[start : start + _CHUNK]
        for row in session.scalars(select(SerializedDagModel).where(SerializedDagModel.id.in_(chunk))):
            # The hash read with the data, not the summary's: if the row changed in between, this pair is
            # consistent and the next refresh compares against it.
            yield row.dag_id, (row.dag_hash, _access_control(row))


def _access_control(row: Any) -> Any:
    # SerializedDagModel.data decompresses data_compressed when set ([core] compress_serialized_dags) and caches.
    try:
        from airflow.serialization.serialized_objects import BaseSerialization

        encoded = (row.data or {}).get("dag", {}).get("access_control")
        return BaseSerialization.deserialize(encoded)  # {"__type": "set", ...} back to sets, as Airflow does
    except Exception:
        # One broken row must not block the others; no access_control only ever grants less.
        log.warning("Cannot read access_control of serialized DAG %r", getattr(row, "dag_id", "?"), exc_info=True)
        return None
