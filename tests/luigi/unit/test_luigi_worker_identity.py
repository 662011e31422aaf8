"""A worker id belongs to the principal that used it first, while the binding lives (pure rule + store)."""

from __future__ import annotations

from airflow_identity_provider.luigi_gateway.worker_identity import Binding, WorkerBindings, decide, principal_key

W = "Worker(salt=123456789, workers=1, host=h, username=u, pid=1)"
A, B = principal_key("default", "svc-a"), principal_key("default", "svc-b")


def test_first_use_binds_and_another_principal_is_refused() -> None:
    assert decide(W, A, None, now=0, ttl=60).binding == Binding(A, 0)
    refused = decide(W, B, Binding(A, 0), now=10, ttl=60)
    assert not refused.allowed and refused.reason == "worker_not_owned" and refused.binding is None
    assert decide(W, A, Binding(A, 0), now=10, ttl=60).allowed


def test_an_expired_binding_can_be_taken_over() -> None:
    assert decide(W, B, Binding(A, 0), now=60, ttl=60).allowed


def test_a_call_must_name_a_sane_worker() -> None:
    for worker in (None, "", 3, "x" * 513):
        assert not decide(worker, A, None, now=0, ttl=60).allowed


def test_the_store_keeps_bindings_and_refreshes_them() -> None:
    now = [0.0]
    store = WorkerBindings(ttl=60, clock=lambda: now[0])
    assert store.check(W, A).allowed
    now[0] = 50
    assert store.check(W, A).allowed  # refreshed at 50
    now[0] = 100
    assert not store.check(W, B).allowed  # 50 s after the last use: still A's
    assert store.owner(W) == A and len(store) == 1


def test_no_principal_can_push_out_another_s_binding() -> None:
    now = [0.0]
    store = WorkerBindings(ttl=60, clock=lambda: now[0], max_per_principal=3, max_entries=10)
    assert store.check(W, A).allowed
    for i in range(3):
        assert store.check(f"w{i}", B).allowed
    flood = store.check("w-more", B)
    assert not flood.allowed and flood.reason == "too_many_workers"
    assert store.owner(W) == A
    now[0] = 61  # B's first ids expired: room again
    assert store.check("w-more", B).allowed


def test_the_store_is_bounded() -> None:
    store = WorkerBindings(ttl=60, clock=lambda: 0.0, max_entries=5)
    for i in range(20):
        store.check(f"w{i}", principal_key("p", str(i)))
    assert len(store) == 5 and store.owner("w19") is not None and store.owner("w0") is None
