"""DirectorySync: the first round before start() returns, publishing, outages (last good view kept, one loud line
and audit event per outage, stale after the grace, recovery), gains, stats. Fake sources: milliseconds."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Collection

import pytest

from airflow_identity_provider.auth.directory import DirectoryForbidden, DirectoryUnavailable
from airflow_identity_provider.auth.directory.sync import DirectorySync, default_grace
from airflow_identity_provider.auth.rules.directory import Account, DirectoryView


class FakeSource:
    def __init__(self, name: str = "graph:t") -> None:
        self.name = name
        self.calls: Counter[str] = Counter()
        self.accounts: dict[str, Account] = {"t:ada": Account()}
        self.holders: dict[str, frozenset[str]] = {"admins": frozenset({"t:ada"})}
        self.error: Exception | None = None
        self.delay = 0.0
        self.rounds = threading.Event()

    def sync(self, tracked: Collection[str]) -> DirectoryView:
        self.calls["sync"] += 1
        self.rounds.set()
        time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return DirectoryView(source="graph", accounts=dict(self.accounts), holders=dict(self.holders), scope="t:")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def make(source: FakeSource, *, interval: float = 60.0, clock: Clock | None = None, **kw: object) -> DirectorySync:
    return DirectorySync(
        {"default": [(source, interval)]},
        tracked=lambda provider: {"admins"},
        clock=clock or Clock(),
        **kw,  # type: ignore[arg-type]
    )


def audit_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "airflow_identity_provider.audit"]


def test_start_waits_for_the_first_round_then_the_view_is_served() -> None:
    source = FakeSource()
    source.delay = 0.2
    sync = make(source)
    started = time.perf_counter()
    try:
        assert sync.start() is True
        assert time.perf_counter() - started >= 0.2
        view = sync.view("default", "t:ada")
        assert view is not None and view.synced_at == 1_000.0 and view.holders["admins"] == {"t:ada"}
        assert sync.view("default", "other:x") is None and sync.view("nope", "t:ada") is None
    finally:
        sync.stop()


def test_the_first_round_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    source = FakeSource()
    source.delay = 1.0
    sync = make(source, first_sync_timeout=0.1)
    try:
        assert sync.start() is False
        assert "did not finish within" in caplog.text
        assert sync.view("default", "t:ada") is None  # nothing yet: tokens are not checked, nobody is refused
    finally:
        sync.stop()


def test_a_refusing_directory_is_reported_from_the_first_round() -> None:
    source = FakeSource()
    source.error = DirectoryForbidden("https://graph", "HTTP 403", "Grant User.Read.All.")
    sync = make(source)
    try:
        assert sync.start() is False
        assert isinstance(sync.first_error, DirectoryForbidden)
    finally:
        sync.stop()


def test_an_outage_keeps_the_last_view_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    clock, source = Clock(), FakeSource()
    sync = make(source, clock=clock)
    sync.sync_now()
    good = sync.view("default", "t:ada")
    source.error = DirectoryUnavailable("https://graph.microsoft.com/v1.0/users/delta", "HTTP 503")
    caplog.set_level(logging.INFO)
    caplog.clear()
    for _ in range(5):
        clock.now += 60
        sync.sync_now()
    assert sync.view("default", "t:ada") is good  # nobody logged out, nobody let back in
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name != "airflow_identity_provider.audit"]
    assert len(errors) == 1 and "Keeping the last good view (1 accounts" in errors[0].getMessage()
    events = audit_events(caplog)
    assert [(e["event"], e["outcome"], e["reason"]) for e in events] == [
        ("directory_sync", "failure", "directory_unavailable")
    ]
    assert events[0]["accounts"] == 1 and "503" in str(events[0]["detail"])
    # Past the grace: reported stale, once.
    caplog.clear()
    clock.now += default_grace(60.0)
    sync.sync_now()
    sync.sync_now()
    assert [e["reason"] for e in audit_events(caplog)] == ["directory_stale"]
    # Back: one recovery event with the outage's length, and the new view.
    caplog.clear()
    source.error = None
    source.accounts["t:ada"] = Account("disabled")
    clock.now += 60
    sync.sync_now()
    events = audit_events(caplog)
    assert [e.get("reason") for e in events] == ["recovered", None]  # and the new view's directory_sync event
    assert int(events[0]["outage_s"]) >= default_grace(60.0)  # type: ignore[arg-type]
    assert sync.view("default", "t:ada").accounts["t:ada"].state == "disabled"  # type: ignore[union-attr]
    stats = sync.stats()[0]
    assert stats["failures"] == 7 and stats["failing_for_s"] is None and stats["accounts"] == 1


def test_gains_are_recorded_between_incremental_views() -> None:
    clock, source = Clock(), FakeSource()
    sync = make(source, clock=clock)
    sync.sync_now()
    first = sync.view("default", "t:ada")
    assert first is not None and first.gained == {}
    source.accounts["t:bob"] = Account()
    source.holders = {"admins": frozenset({"t:ada", "t:bob"})}
    clock.now += 60
    sync.sync_now()
    second = sync.view("default", "t:bob")
    assert second is not None and second.gained == {"t:bob": clock.now}
    assert second.generation > first.generation
    clock.now += 60
    sync.sync_now()
    third = sync.view("default", "t:bob")
    assert third is not None and third.generation == second.generation and third.gained == {"t:bob": clock.now - 60}


def test_the_thread_syncs_every_interval() -> None:
    source = FakeSource()
    sync = DirectorySync({"default": [(source, 0.05)]}, tracked=lambda p: set())
    try:
        sync.start()
        deadline = time.monotonic() + 5
        while source.calls["sync"] < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert source.calls["sync"] >= 4
    finally:
        sync.stop()
    calls = source.calls["sync"]
    time.sleep(0.15)
    assert source.calls["sync"] == calls  # stopped


def test_no_source_no_thread() -> None:
    sync = DirectorySync({}, tracked=lambda p: set())
    assert sync.start() is True and not sync.enabled and sync.view("default", "x") is None
