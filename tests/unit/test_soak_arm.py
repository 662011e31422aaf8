"""The soak's ARM part without processes (dev/bench/soak/arm_verdicts.py): its plan, outcomes and verdicts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from dev.bench.soak.arm_verdicts import (
    MAX_TOKENS,
    Call,
    Observed,
    Plan,
    Restart,
    Task,
    failure_words,
    figures,
    outcome,
    plan,
    processed_puts,
    read_statuses,
    restart_position,
    retry_gaps,
    token_requests,
    verdicts,
)
from dev.bench.soak.report import Expectation

RG = "/subscriptions/s/resourceGroups/rg-soak"
TOKEN = "/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token"
ZERO = 1000.0


def dep(name: str) -> str:
    return f"{RG}/providers/Microsoft.Resources/deployments/{name}"


def client(i: int) -> str:
    return f"client-{i}"


def task(i: int, small: Plan, *, error: str | None = None, finished: bool = True, seconds: float = 2.0) -> Task:
    expected = failure_words(i) if i in small.failing else None
    return Task(i, client(i), expected, error, finished, seconds)


def arm_error(i: int) -> str:
    code, message = failure_words(i)
    return (
        f"AirflowException: Deployment soak-{i:02d} at {RG} ended Failed (correlation id c).\n"
        f"  (DeploymentFailed) At least one resource deployment operation failed.\n  ({code}) {message}"
    )


def good_run(small: Plan) -> tuple[list[Task], list[Call], Restart]:
    """Tasks as planned, and a log where each task: one token, a GET 404, a PUT (429 once for task 1), reads."""
    tasks = [task(i, small, error=arm_error(i) if i in small.failing else None) for i in range(len(small.names))]
    calls: list[Call] = []
    for i, name in enumerate(small.names):
        t = ZERO + i * 0.1
        calls += [Call("POST", TOKEN, 200, t, client(i)), Call("GET", dep(name), 404, t + 0.01, client(i))]
        if i == 1:
            calls.append(Call("PUT", dep(name), 429, t + 0.02, client(i)))
            t += 1.0
        put_at = t + 0.03 + (5.0 if i >= 2 else 0.0)  # tasks 0 and 1 before the restart, the rest after it
        calls.append(Call("PUT", dep(name), 201, put_at, client(i)))
        throttled = small.read_429.get(i, 0)  # the planned status-read 429s, each waited out for Retry-After
        calls += [Call("GET", dep(name), 429, put_at + 0.3 + n, client(i)) for n in range(throttled)]
        calls.append(Call("GET", dep(name), 200, put_at + 0.3 + throttled, client(i)))
    return tasks, calls, Restart(ZERO + 2.5, ZERO + 4.0)


def observed(small: Plan, tasks: Sequence[Task], calls: Sequence[Call], restart: Restart) -> Observed:
    return Observed(small, tasks, calls, restart, retry_after=1, zero=ZERO, wall=8.0)


def by_promise(expectations: list[Expectation], start: str) -> Expectation:
    (found,) = [e for e in expectations if e.promise.startswith(start)]
    return found


SMALL = plan(4, 1)


# -- the plan ------------------------------------------------------------------------------------------


def test_the_plan_spreads_the_failures_and_keeps_single_requests_within_azure_cores_retries() -> None:
    full = plan(30, 5)
    assert full.failing == frozenset({0, 6, 12, 18, 24}) and len(full.names) == len(set(full.names)) == 30
    assert plan(6, 1).failing == frozenset({0}) and plan(3, 0).failing == frozenset()
    # a PUT throttled 4 times in a row would fail its task by design: at most 2 per deployment
    assert full.put_429 and max(full.put_429.values()) <= 2
    # status reads are waited out by the operator: one deployment is throttled past azure-core's 3 retries
    assert max(full.read_429.values()) == 4 and sum(n > 3 for n in full.read_429.values()) == 1
    assert full.restart_after == 15 and plan(6, 1).restart_after == 3 and plan(1, 0).restart_after == 1
    with pytest.raises(ValueError):
        plan(2, 3)


def test_failure_words_are_arms_code_and_a_message_per_task() -> None:
    code, message = failure_words(7)
    assert code == "StorageAccountAlreadyTaken" and "stsoak07" in message and failure_words(8)[1] != message


# -- outcomes ------------------------------------------------------------------------------------------


def test_outcome_tells_arms_own_failure_from_anything_else() -> None:
    assert outcome(task(1, SMALL)) == "succeeded"
    assert outcome(task(0, SMALL, error=arm_error(0))) == "failed_arm"
    code, message = failure_words(0)
    assert outcome(task(0, SMALL, error=f"AirflowException: ({code}) something else")) == "other"  # message missing
    assert outcome(task(0, SMALL, error=f"AirflowException: {message}")) == "other"  # code missing
    assert outcome(task(0, SMALL, error=arm_error(3))) == "other"  # another task's words
    assert outcome(task(1, SMALL, error=arm_error(1))) == "other"  # not told to fail
    assert outcome(task(0, SMALL, error="ServiceRequestError: connection refused")) == "other"
    assert outcome(task(1, SMALL, finished=False)) == "other"  # still running at the bound


# -- the request log -----------------------------------------------------------------------------------


def test_processed_puts_count_2xx_puts_and_any_answered_put_after_one() -> None:
    calls = [
        Call("PUT", dep("Soak-00"), 429, 1, "a"),  # throttled: refused before anything happened
        Call("PUT", dep("soak-00"), 0, 2, "a"),  # recorded, connection closed unanswered
        Call("PUT", dep("soak-00"), 201, 3, "a"),
        Call("PUT", dep("soak-00"), 409, 4, "a"),  # DeploymentActive: a second start was asked for all the same
        Call("GET", dep("soak-00"), 200, 5, "a"),
        Call("POST", dep("soak-00") + "/whatIf", 202, 6, "a"),
        Call("PUT", dep("soak-01"), 201, 7, "b"),
        Call("PUT", dep("soak-01"), 200, 8, "b"),  # replaced: ARM started it a second time
        Call("PUT", RG, 201, 9, "setup"),  # the resource group
    ]
    assert processed_puts(calls) == {"soak-00": 2, "soak-01": 2}
    assert processed_puts([Call("PUT", dep("soak-02"), 409, 1, "c")]) == {}  # no 2xx PUT yet: nothing started
    late = [Call("PUT", dep("soak-03"), 201, 1, "d"), Call("PUT", dep("soak-03"), 429, 2, "d")]
    late.append(Call("PUT", dep("soak-03"), 0, 3, "d"))
    assert processed_puts(late) == {"soak-03": 1}  # after the 2xx PUT: refused (429) or never answered (0)


def test_read_statuses_spell_a_deployments_answered_status_reads_in_order() -> None:
    calls = [
        Call("GET", dep("soak-01"), 404, 1, "a"),  # before its PUT
        Call("PUT", dep("soak-01"), 201, 2, "a"),
        Call("GET", dep("Soak-01"), 429, 3, "a"),
        Call("GET", dep("soak-01"), 0, 4, "a"),  # recorded, never answered: resent within the same read
        Call("GET", dep("soak-01"), 429, 5, "a"),
        Call("GET", dep("soak-01") + "/operations", 200, 6, "a"),  # not the deployment resource
        Call("GET", dep("soak-02"), 200, 7, "b"),
        Call("GET", dep("soak-01"), 200, 8, "a"),
    ]
    assert read_statuses(calls, "soak-01") == "xTT." and read_statuses(calls, "soak-09") == ""


def test_token_requests_are_attributed_by_client_id() -> None:
    calls = [
        Call("POST", TOKEN, 200, 1, "Client-0"),
        Call("POST", TOKEN + "/", 200, 2, "client-0"),
        Call("POST", TOKEN, 200, 3, "setup"),
        Call("GET", dep("soak-01"), 200, 4, "client-1"),  # an ARM request carries appid too: not a token request
    ]
    assert token_requests(calls, ["client-0", "client-1"]) == [2, 0]


def test_retry_gaps_follow_the_same_client_method_and_path() -> None:
    calls = [
        Call("PUT", dep("a"), 429, 10.0, "x"),
        Call("GET", dep("a"), 200, 10.2, "x"),  # another method: not the retry
        Call("PUT", dep("a"), 201, 10.5, "y"),  # another client: not the retry
        Call("PUT", dep("a"), 201, 11.1, "x"),
        Call("GET", dep("b"), 429, 12.0, "x"),  # never retried: no gap
    ]
    assert retry_gaps(list(reversed(calls))) == [pytest.approx(1.1)]


def test_restart_position_counts_processed_puts_either_side() -> None:
    calls = [Call("PUT", dep(f"d{i}"), 201, float(t), "x") for i, t in enumerate((1, 2, 6, 7, 8))]
    calls += [Call("PUT", dep("d9"), 429, 9.0, "x")]
    assert restart_position(calls, Restart(3.0, 5.0)) == (2, 3)
    assert restart_position(calls, Restart(None, None, "did not start")) == (0, 0)


# -- verdicts ------------------------------------------------------------------------------------------


def test_a_good_run_keeps_every_promise() -> None:
    tasks, calls, restart = good_run(SMALL)
    expectations = verdicts(observed(SMALL, tasks, calls, restart))
    assert [e.met for e in expectations] == [True] * 6, expectations
    assert by_promise(expectations, "each task").observed == "3 succeeded, 1 failed in ARM's words, 0 other"
    assert by_promise(expectations, "emulator restarted").observed.startswith("2 PUTs processed before, 2 after")
    assert by_promise(expectations, "at most").observed.startswith("1 / 1 / 1")


def test_a_failure_where_none_was_told_and_a_hang_fail_the_outcome_promise() -> None:
    tasks, calls, restart = good_run(SMALL)
    tasks[2] = task(2, SMALL, error="PreflightRefused: outside the fence")
    tasks[3] = task(3, SMALL, finished=False)
    result = by_promise(verdicts(observed(SMALL, tasks, calls, restart)), "each task")
    assert not result.met
    assert "1 succeeded, 1 failed in ARM's words, 2 other" in result.observed
    assert "#2 expected succeeded, other: PreflightRefused" in result.observed and "still running" in result.observed


def test_a_told_failure_that_succeeded_or_a_missing_task_fails_the_outcome_promise() -> None:
    tasks, calls, restart = good_run(SMALL)
    succeeded = [task(0, SMALL), *tasks[1:]]
    assert not by_promise(verdicts(observed(SMALL, succeeded, calls, restart)), "each task").met
    short = by_promise(verdicts(observed(SMALL, tasks[:3], calls, restart)), "each task")
    assert not short.met and "3 of 4 accounted for" in short.observed


def test_a_second_processed_put_is_a_double_put() -> None:
    tasks, calls, restart = good_run(SMALL)
    result = by_promise(verdicts(observed(SMALL, tasks, calls, restart)), "0 double")
    assert result.met and result.observed.startswith("0 double; 4 of 4 deployments PUT once, 5 PUT attempts")
    calls.append(Call("PUT", dep("soak-02"), 200, ZERO + 9, client(2)))
    calls.append(Call("PUT", dep("soak-03"), 409, ZERO + 9, client(3)))  # a re-PUT refused as DeploymentActive
    result = by_promise(verdicts(observed(SMALL, tasks, calls, restart)), "0 double")
    assert not result.met and result.observed.startswith("2 double;") and "soak-02 x2, soak-03 x2" in result.observed


def test_no_429_or_a_retry_before_retry_after_fails_the_throttling_promise() -> None:
    tasks, calls, restart = good_run(SMALL)
    unthrottled = [c for c in calls if c.status != 429]
    result = by_promise(verdicts(observed(SMALL, tasks, unthrottled, restart)), "429s")
    assert not result.met and result.observed == "0 x 429; none retried"
    hasty = [
        Call("GET", dep("soak-03"), 429, ZERO + 7.0, client(3)),
        Call("GET", dep("soak-03"), 200, ZERO + 7.5, client(3)),
    ]
    result = by_promise(verdicts(observed(SMALL, tasks, calls + hasty, restart)), "429s")
    assert not result.met and "1 retried before Retry-After 1 s" in result.observed


def test_planned_status_read_429s_not_served_or_not_in_a_row_fail_their_promise() -> None:
    tasks, calls, restart = good_run(SMALL)
    result = by_promise(verdicts(observed(SMALL, tasks, calls, restart)), "status-read 429s")
    assert result.promise == "status-read 429s served as planned, 4 in a row then a 200"
    assert result.met and result.observed == "5 on 2 deployments, each as planned"
    # A throttle installed after the deployment's last read is never served: the PUTs' 429s alone would keep the
    # throttling promise, this one does not.
    too_late = [c for c in calls if not (c.status == 429 and c.method == "GET" and c.path == dep("soak-03"))]
    result = by_promise(verdicts(observed(SMALL, tasks, too_late, restart)), "status-read 429s")
    assert not result.met and result.observed == "missing: #3 0 of 1"
    assert by_promise(verdicts(observed(SMALL, tasks, too_late, restart)), "429s with").met
    # Four 429s, but never four in a row: azure-core waited each pair out itself, the operator's wait was untested.
    apart = [c for c in calls if not (c.status == 429 and c.path == dep("soak-01") and c.method == "GET")]
    apart += [
        Call("GET", dep("soak-01"), status, ZERO + 20 + n, client(1))
        for n, status in enumerate([429, 429, 200, 429, 429, 200])
    ]
    result = by_promise(verdicts(observed(SMALL, tasks, apart, restart)), "status-read 429s")
    assert not result.met and result.observed.startswith("#1 read x.TT.TT. (T 429")
    # Four in a row, and the task never read its deployment again: not waited out.
    unanswered = [c for c in calls if not (c.status == 200 and c.path == dep("soak-01") and c.method == "GET")]
    result = by_promise(verdicts(observed(SMALL, tasks, unanswered, restart)), "status-read 429s")
    assert not result.met and result.observed.startswith("#1 read xTTTT (T 429")
    # A read recorded unanswered (the emulator going down mid-read), between two 429s, is no break in the run.
    dropped = [*calls, Call("GET", dep("soak-01"), 0, ZERO + 2.0, client(1))]
    assert by_promise(verdicts(observed(SMALL, tasks, sorted(dropped, key=lambda c: c.time), restart)), "status-").met


def test_a_restart_that_failed_or_came_after_the_last_put_fails_the_restart_promise() -> None:
    tasks, calls, _ = good_run(SMALL)
    for restart, text in [
        (Restart(), "it did not happen"),
        (Restart(ZERO + 2.5, None, "ArmEmulatorError: not ready within 30s"), "ArmEmulatorError: not ready within 30s"),
        (Restart(ZERO + 50, ZERO + 52), "4 PUTs processed before, 0 after; down 2.0 s (azure-core resends for 4.8 s)"),
        (Restart(ZERO - 5, ZERO - 4), "0 PUTs processed before, 4 after; down 1.0 s (azure-core resends for 4.8 s)"),
        # longer than azure-core resends a refused request: an outage, not the restart this part means
        (
            Restart(ZERO + 0.1, ZERO + 5.0),
            "1 PUTs processed before, 2 after; down 4.9 s (azure-core resends for 4.8 s)",
        ),
    ]:
        result = by_promise(verdicts(observed(SMALL, tasks, calls, restart)), "emulator restarted")
        assert not result.met and result.observed == text


def test_more_than_two_token_requests_for_a_task_fail_the_token_promise() -> None:
    tasks, calls, restart = good_run(SMALL)
    calls += [Call("POST", TOKEN, 200, ZERO + 8 + n, client(2)) for n in range(MAX_TOKENS)]
    result = by_promise(verdicts(observed(SMALL, tasks, calls, restart)), "at most")
    assert not result.met and result.observed == "1 / 1 / 3 (min / median / max); over: #2 3"


def test_figures_print_the_issues_numbers() -> None:
    tasks, calls, restart = good_run(SMALL)
    tasks = [replace(t, seconds=float(t.index + 1)) for t in tasks]
    rows = dict(figures(replace(observed(SMALL, tasks, calls, restart), notes=["monitor: 1 control call failed"])))
    assert rows["deployments started / made to fail"] == "4 / 1"
    assert rows["429 answers served"] == "6 (Retry-After 1 s): 1 on PUTs, 5 on status reads"
    assert rows["restart"] == "after 2 of 4 PUTs, at 2.5 s, down 1.5 s"
    assert rows["task duration p50 / p95 / max"] == "2000 / 4000 / 4000 ms"
    assert rows["token requests per task"] == "1 / 1 / 1 (min / median / max)"
    assert rows["succeeded / failed in ARM's words / other"] == "3 / 1 / 0"
    assert rows["note"] == "monitor: 1 control call failed"
    assert dict(figures(observed(SMALL, tasks, calls, Restart())))["restart"] == "not done"
