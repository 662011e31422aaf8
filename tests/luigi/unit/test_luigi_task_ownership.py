"""A Worker-level identity reports only on tasks it registered or was handed (pure rule + store)."""

from __future__ import annotations

import json

import pytest

from airflow_identity_provider.luigi_gateway.task_ownership import (
    TaskClaims,
    decide_add_task,
    decide_report,
    handed_out,
)

A, B = "default/svc-a", "default/svc-b"
T = "Extract_out_dir_abc_0123456789"


@pytest.mark.parametrize("status", ["DONE", "FAILED", "DISABLED", "RUNNING"])
def test_a_status_on_a_task_not_held_is_refused_and_names_the_task(status: str) -> None:
    verdict = decide_add_task(
        {"task_id": T, "status": status, "worker": "w"}, mine=False, held_by_others=False, restricted=True
    )
    assert not verdict.allowed and verdict.reason == "task_not_owned" and verdict.claim is None
    assert T in verdict.message and "mark_as_done" in verdict.message


def test_registering_pending_or_without_status_claims_the_task() -> None:
    for arguments in ({"task_id": T, "status": "PENDING"}, {"task_id": T}):
        verdict = decide_add_task(arguments, mine=False, held_by_others=True, restricted=True)
        assert verdict.allowed and verdict.claim == T


def test_a_held_task_may_be_reported_on() -> None:
    verdict = decide_add_task({"task_id": T, "status": "DONE"}, mine=True, held_by_others=True, restricted=True)
    assert verdict.allowed and verdict.claim == T


def test_a_complete_task_is_registered_done_unless_another_identity_holds_it() -> None:
    scheduling = {"task_id": T, "status": "DONE", "family": "Extract", "params": {}, "deps": None}
    assert decide_add_task(scheduling, mine=False, held_by_others=False, restricted=True).claim == T
    refused = decide_add_task(scheduling, mine=False, held_by_others=True, restricted=True)
    assert not refused.allowed and refused.reason == "task_not_owned"
    empty_family = {**scheduling, "family": ""}  # luigi's client sends family="" when it does not describe it
    assert not decide_add_task(empty_family, mine=False, held_by_others=False, restricted=True).allowed


def test_an_odd_task_id_is_never_remembered_and_gets_no_status_from_a_worker() -> None:
    for task_id in (None, "", 3, ["x"], "x" * 5000):
        arguments = {"task_id": task_id, "status": "DONE", "family": "Extract"}
        assert not decide_add_task(arguments, mine=False, held_by_others=False, restricted=True).allowed
        assert not decide_report(task_id, mine=False, restricted=True).allowed
        pending = decide_add_task({"task_id": task_id}, mine=False, held_by_others=False, restricted=True)
        assert pending.allowed and pending.claim is None


def test_people_are_not_restricted() -> None:
    assert decide_add_task({"task_id": T, "status": "DONE"}, mine=False, held_by_others=True, restricted=False).allowed
    assert decide_report(T, mine=False, restricted=False).allowed


def test_progress_calls_need_a_held_task() -> None:
    refused = decide_report(T, mine=False, restricted=True)
    assert not refused.allowed and refused.reason == "task_not_owned"
    assert decide_report(T, mine=True, restricted=True).allowed


def test_handed_out_reads_get_work_answers() -> None:
    single = json.dumps({"response": {"task_id": T, "running_tasks": []}}).encode()
    batch = json.dumps({"response": {"task_id": None, "batch_id": "b", "batch_task_ids": ["x", "y"]}}).encode()
    assert handed_out(single) == [T]
    assert handed_out(batch) == ["x", "y"]
    for body in (b"not json", b"[]", b'{"response": null}', json.dumps({"response": {"task_id": None}}).encode()):
        assert handed_out(body) == []


def test_claims_are_per_principal_and_expire() -> None:
    now = [0.0]
    claims = TaskClaims(ttl=60, clock=lambda: now[0])
    claims.claim(A, T)
    assert claims.holds(A, T) and not claims.holds(B, T)
    assert claims.held_by_others(B, T) and not claims.held_by_others(A, T)
    claims.claim(B, T)  # a task both identities registered is held by both
    assert claims.holds(B, T) and claims.held_by_others(A, T)
    now[0] = 60
    assert not claims.holds(A, T) and not claims.held_by_others(B, T)


def test_claims_are_bounded_and_a_principal_evicts_only_its_own() -> None:
    claims = TaskClaims(ttl=60, clock=lambda: 0.0, max_per_principal=3, max_entries=10)
    claims.claim(A, T)
    for i in range(10):
        claims.claim(B, f"t{i}")
    assert claims.holds(A, T) and len(claims) == 4
    assert claims.holds(B, "t9") and not claims.holds(B, "t0")
    for i in range(20):
        claims.claim(f"p{i}", "x")
    assert len(claims) == 10 and not claims.holds(A, T)
