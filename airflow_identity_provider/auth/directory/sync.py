"""The background thread that keeps each api-server process's directory views current, and what it does in an
outage.

``DirectorySync.start`` runs the first round of every source in the thread and waits for it, at most
``first_sync_timeout`` seconds: the auth manager's ``init`` calls it, so the process takes no sign-in and no
request before its first view (or before that bound). Then each source syncs every ``interval`` seconds.

An outage (the directory unreachable, throttling, a refused token) keeps the last good view: nobody is logged
out by it, and nobody the directory removed is let back in by it; what changed in the directory meanwhile
takes effect at the first good round after it. Per outage: one ERROR line and one ``directory_sync`` failure
audit event when it starts, one more of each when it has lasted ``grace`` (the view is then called stale),
and one ``directory_sync`` success event with the outage's length when the directory answers again.

Reads (:meth:`DirectorySync.view`) take no lock: views are immutable and published by replacing a dictionary.
Thread and fork care are those of ``auth.catalog.dag_index``: a forked worker restarts its own thread.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from airflow_identity_provider.auth.rules import audit
from airflow_identity_provider.auth.rules.directory import DirectoryView
from airflow_identity_provider.errors import Refusal

log = logging.getLogger(__name__)

# How long a gain of membership is remembered (to send older browser sessions through the IdP once).
GAIN_MEMORY_SECONDS = 86_400.0


class Source(Protocol):
    """A directory client (``GraphDirectory`` for one tenant, ``JumpCloudDirectory``)."""

    name: str
    calls: Counter[str]

    def sync(self, tracked: Collection[str]) -> DirectoryView: ...


@dataclass
class _Status:
    provider: str
    source: Source
    interval: float
    due: float = 0.0
    rounds: int = 0
    failures: int = 0
    failing_since: float | None = None
    stale_reported: bool = False
    last_error: str = ""
    last_duration: float = 0.0
    view: DirectoryView | None = None


def _audit(status: _Status, outcome: str, **fields: Any) -> None:
    """A ``directory_sync`` event (``fields`` may carry ``reason`` and ``level``): every one names the provider
    and the directory it syncs from."""
    audit.emit("directory_sync", outcome=outcome, idp=status.provider, source=status.source.name, **fields)


class DirectorySync:
    def __init__(
        self,
        sources: Mapping[str, Sequence[tuple[Source, float]]],
        *,
        tracked: Callable[[str], Collection[str]],
        grace: Callable[[float], float] | None = None,
        first_sync_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``sources``: provider name -> (source, interval in seconds) pairs; ``tracked(provider)``: the group and
        app-role values some setting (or a DAG's access_control) names, asked before every round."""
        self._statuses = [_Status(p, s, i) for p, pairs in sources.items() for s, i in pairs]
        self._tracked = tracked
        self._grace = grace or default_grace
        self._first_sync_timeout = first_sync_timeout
        self._clock = clock
        self._views: dict[str, tuple[DirectoryView, ...]] = {}
        self._generation = 0
        self._hooks_registered = False
        self.first_error: Refusal | None = None  # what stopped the first round of some source, if anything
        self._init_thread_state()

    def _init_thread_state(self) -> None:
        self._pid = os.getpid()
        self._lifecycle_lock = threading.Lock()
        self._stop = threading.Event()
        self._first_done = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._statuses)

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> bool:
        """Start the thread and wait for the first round (bounded). True when every source has a view."""
        if not self._statuses:
            return True
        if self._pid != os.getpid():
            self._init_thread_state()
        with self._lifecycle_lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop = threading.Event()
                self._thread = self._spawn()
                if not self._hooks_registered:
                    self._hooks_registered = True
                    atexit.register(self.stop)
                    os.register_at_fork(after_in_child=self._restart_in_child)
        finished = self._first_done.wait(self._first_sync_timeout)
        if not finished:
            log.error(
                "airflow-identity-provider: the first directory sync did not finish within %.0f s; the api-server "
                "starts without a directory view and applies one as soon as the sync completes",
                self._first_sync_timeout,
            )
        return finished and all(status.view is not None for status in self._statuses)

    def _spawn(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(self._stop,), name="airflow-identity-directory", daemon=True)
        thread.start()
        return thread

    def _restart_in_child(self) -> None:
        """A forked worker keeps the inherited views (seconds old) and runs its own thread."""
        was_running = self._thread is not None
        self._init_thread_state()
        self._first_done.set()
        for status in self._statuses:
            after_fork = getattr(status.source, "after_fork", None)
            if after_fork is not None:
                after_fork()
        if was_running:
            self._thread = self._spawn()

    def stop(self) -> None:
        with self._lifecycle_lock:
            self._stop.set()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10.0)

    def _run(self, stop: threading.Event) -> None:
        try:
            for status in self._statuses:
                self._round(status, first=True)
        finally:
            self._first_done.set()
        while not stop.is_set():
            now = self._clock()
            wait = min(status.due for status in self._statuses) - now
            if wait > 0 and stop.wait(min(wait, 5.0)):
                return
            for status in self._statuses:
                if status.due <= self._clock() and not stop.is_set():
                    try:
                        self._round(status)
                    except BaseException:  # _round catches Exception; nothing may end the thread
                        log.exception("airflow-identity-provider: directory sync thread: unexpected error")

    # --- one round -------------------------------------------------------------------------------------

    def sync_now(self) -> None:
        """Run one round of every source in the calling thread (tests, ``check-config``)."""
        for status in self._statuses:
            self._round(status)

    def _round(self, status: _Status, *, first: bool = False) -> None:
        started = self._clock()
        status.due = started + status.interval
        try:
            view = status.source.sync(frozenset(self._tracked(status.provider)))
        except Exception as err:
            self._failed(status, err, started, first=first)
            return
        finished = self._clock()
        status.last_duration = finished - started
        status.rounds += 1
        previous = status.view
        view = replace(
            view,
            # The data was read after ``started``: a sign-in after that is at least as new as the view.
            synced_at=started,
            gained=_gains(previous, view, finished),
            generation=previous.generation if previous is not None and _same(previous, view) else self._bump(),
        )
        status.view = view
        self._publish()
        self._recovered(status, finished)
        if previous is None or view.generation != previous.generation:
            _audit(
                status,
                "success",
                users=len(view.accounts),
                disabled=sum(1 for a in view.accounts.values() if a.state != "enabled"),
                changed=_changed(previous, view),
                duration_ms=int(status.last_duration * 1000),
                first=first or None,
            )

    def _bump(self) -> int:
        self._generation += 1
        return self._generation

    def _publish(self) -> None:
        views: dict[str, list[DirectoryView]] = {}
        for status in self._statuses:
            if status.view is not None:
                views.setdefault(status.provider, []).append(status.view)
        self._views = {provider: tuple(found) for provider, found in views.items()}

    def _failed(self, status: _Status, err: Exception, started: float, *, first: bool) -> None:
        status.failures += 1
        status.last_error = str(err)
        reason = err.reason if isinstance(err, Refusal) else "directory_unavailable"
        detail = err.message if isinstance(err, Refusal) else f"{type(err).__name__}: {err}"
        if first and isinstance(err, Refusal) and self.first_error is None:
            self.first_error = err
        if not isinstance(err, Refusal):  # a bug or an unexpected answer: the trace helps
            log.debug("directory sync of %s failed", status.source.name, exc_info=True)
        if status.failing_since is None:
            status.failing_since = started
            kept = status.view
            log.error(
                "airflow-identity-provider: directory sync of %s (provider %s) failed: %s. %s",
                status.source.name,
                status.provider,
                detail,
                f"Keeping the last good view ({len(kept.accounts)} accounts, synced at {_iso(kept.synced_at)}) until "
                "it answers again: nobody is logged out by this"
                if kept is not None
                else "No view yet: tokens are not checked against the directory until a sync succeeds",
            )
            _audit(
                status,
                "failure",
                reason=reason,
                level=logging.ERROR,
                detail=detail,
                view_synced_at=_iso(kept.synced_at) if kept is not None else None,
                accounts=len(kept.accounts) if kept is not None else None,
            )
        elif not status.stale_reported and started - status.failing_since >= self._grace(status.interval):
            status.stale_reported = True
            log.error(
                "airflow-identity-provider: the directory view of %s (provider %s) is stale: no good sync for %.0f s "
                "(last error: %s). Tokens are still checked against the last good view",
                status.source.name,
                status.provider,
                started - status.failing_since,
                detail,
            )
            _audit(
                status,
                "failure",
                reason="directory_stale",
                level=logging.ERROR,
                detail=detail,
                outage_s=int(started - status.failing_since),
            )

    def _recovered(self, status: _Status, now: float) -> None:
        if status.failing_since is None:
            return
        outage = now - status.failing_since
        status.failing_since, status.stale_reported = None, False
        log.warning(
            "airflow-identity-provider: directory sync of %s (provider %s) works again after %.0f s",
            status.source.name,
            status.provider,
            outage,
        )
        _audit(status, "success", reason="recovered", outage_s=int(outage))

    # --- the request path ------------------------------------------------------------------------------

    def view(self, provider: str, user_id: str) -> DirectoryView | None:
        """The view covering ``user_id`` of ``provider``, or None (sync off, other tenant, no view yet)."""
        for view in self._views.get(provider, ()):
            if view.key_of(user_id) is not None:
                return view
        return None

    def views(self, provider: str) -> tuple[DirectoryView, ...]:
        return self._views.get(provider, ())

    def stats(self) -> list[dict[str, Any]]:
        """Per source: rounds, failures, HTTP calls by family, the last round's duration, the view's age."""
        now = self._clock()
        return [
            {
                "provider": s.provider,
                "source": s.source.name,
                "interval": s.interval,
                "rounds": s.rounds,
                "failures": s.failures,
                "calls": dict(s.source.calls),
                "last_duration_ms": int(s.last_duration * 1000),
                "view_age_s": None if s.view is None else round(now - s.view.synced_at, 1),
                "failing_for_s": None if s.failing_since is None else round(now - s.failing_since, 1),
                "accounts": None if s.view is None else len(s.view.accounts),
            }
            for s in self._statuses
        ]


def default_grace(interval: float) -> float:
    """When an outage is reported as a stale view: ten missed rounds, at least 15 minutes."""
    return max(900.0, 10 * interval)


def _same(a: DirectoryView, b: DirectoryView) -> bool:
    # Sources hand back the very same account table when nothing changed: compare by identity first.
    return (
        (a.accounts is b.accounts or a.accounts == b.accounts)
        and a.holders == b.holders
        and (a.aliases is b.aliases or a.aliases == b.aliases)
    )


def _changed(previous: DirectoryView | None, view: DirectoryView) -> int | None:
    if previous is None:
        return None
    keys = previous.accounts.keys() | view.accounts.keys()
    return sum(1 for k in keys if previous.accounts.get(k) != view.accounts.get(k))


def _gains(previous: DirectoryView | None, view: DirectoryView, now: float) -> Mapping[str, float]:
    """Accounts that hold a tracked value now but did not in the previous view (values tracked in both)."""
    if previous is None:
        return {}
    gained = {k: t for k, t in previous.gained.items() if now - t < GAIN_MEMORY_SECONDS}
    for value, keys in view.holders.items():
        before = previous.holders.get(value)
        if before is not None:
            for key in keys - before:
                gained[key] = now
    return gained


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
