"""The ARM part's plan and verdicts, without processes: which deployments are made to fail or throttled, how each
task ended, and the issue's promises checked against the emulator's request log (:class:`Call`).

The throttling is planned per deployment, not as one shared random share: azure-core gives one request three
retries after a 429 (``retry_status``), and a deployment PUT or the task's first GET throttled past them fails the
task by design (nothing was started: Airflow's retry of the task is the remedy). A shared rule could throttle one
such request four times in a row by chance; a rule per deployment, at most 2 in a row on those requests, cannot.
Status reads after the PUT are the exception the operator makes (it waits a 429 out, however many), so one
deployment's status reads are throttled past azure-core's retries on purpose.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from dev.bench.soak.report import Expectation, spread_ms

# The deployment resource itself (a PUT starts it, a GET reads its status); not .../whatIf, .../operations.
DEPLOYMENT_PATH: Final = re.compile(r"/providers/microsoft\.resources/deployments/([^/]+)$", re.I)
TOKEN_PATH: Final = re.compile(r"/oauth2/v2\.0/token/?$", re.I)
RESTART_SHARE: Final = 0.5  # the emulator restarts once this share of the deployments' PUTs were processed
MAX_TOKENS: Final = 2  # a credential per hook, its token cached: one, or two if it is refreshed
# Two clocks are compared (the emulator's receipt of a 429 and of the retry): allow this much jitter.
CLOCK_SLACK: Final = 0.01
SHOWN: Final = 3
AZURE_CORE_STATUS_RETRIES: Final = 3  # azure-core's RetryPolicy retry_status default: 429s it waits out itself
# A request refused while the emulator restarts is resent by azure-core's RetryPolicy (retry_connect 3, backoff
# 0.8 s doubling from the second retry): at +0, +1.6 and +4.8 s after the first refusal. A restart longer than
# that fails the task with ServiceRequestError: an outage, not the front-end restart this part injects.
CONNECT_RETRY_WINDOW: Final = 0.8 * (2 + 4)

Outcome = Literal["succeeded", "failed_arm", "other"]


@dataclass(frozen=True)
class Plan:
    """What the emulator is told before (and, for status reads, during) the run, per deployment index."""

    names: tuple[str, ...]
    failing: frozenset[int]
    put_429: Mapping[int, int]  # index -> how many 429s its PUT gets before ARM processes it
    read_429: Mapping[int, int]  # index -> how many of its first status reads (after the PUT) get 429, in a row
    restart_after: int  # processed PUTs before the restart


def plan(deployments: int, failing: int) -> Plan:
    """``deployments`` names, ``failing`` of them spread evenly; a third of the PUTs throttled (one, or two in a
    row), half of the deployments' status reads once, deployment 1's four times in a row (past azure-core)."""
    if not 0 <= failing <= deployments:
        raise ValueError("failing must be between 0 and deployments")
    names = tuple(f"soak-{i:02d}" for i in range(deployments))
    told = frozenset((k * deployments) // failing for k in range(failing)) if failing else frozenset()
    put_429 = {i: 2 if i % 6 == 4 else 1 for i in range(deployments) if i % 3 == 1}
    read_429 = {i: 4 if i == 1 else 1 for i in range(deployments) if i % 2 == 1}
    restart_after = max(1, math.ceil(RESTART_SHARE * deployments))
    return Plan(names, told, put_429, read_429, restart_after)


def failure_words(index: int) -> tuple[str, str]:
    """The code and message the emulator fails deployment ``index`` with: ARM's own words, one set per task."""
    account = f"stsoak{index:02d}"
    return "StorageAccountAlreadyTaken", f"The storage account named {account} is already taken."


@dataclass(frozen=True)
class Call:
    """One request in the emulator's log: what the verdicts need of it."""

    method: str
    path: str
    status: int  # 0: recorded, never answered
    time: float  # epoch seconds, when the emulator received it
    client_id: str | None  # the token request's form client_id, or the bearer token's appid


@dataclass(frozen=True)
class Task:
    """One task (one operator, one thread, one connection) as it ended."""

    index: int
    client_id: str
    expected_failure: tuple[str, str] | None  # (code, message) the emulator was told to fail it with
    error: str | None = None  # "Type: text" of what execute() raised; None when it returned
    finished: bool = True  # False: still running at the part's bound
    seconds: float | None = None


@dataclass(frozen=True)
class Restart:
    """The emulator's restart as the monitor caused it (epoch seconds; ``began`` None: it never happened)."""

    began: float | None = None
    ended: float | None = None
    error: str = ""


@dataclass(frozen=True)
class Observed:
    """Everything the ARM part saw: the plan, each task, the request log and the restart."""

    plan: Plan
    tasks: Sequence[Task]
    calls: Sequence[Call]
    restart: Restart
    retry_after: int
    zero: float  # epoch seconds when the tasks were let go
    wall: float = 0.0  # seconds from then until the last task ended (or the bound)
    notes: list[str] = field(default_factory=list)


def outcome(task: Task) -> Outcome:
    """``succeeded`` (execute returned), ``failed_arm`` (it raised, and the text carries the code and the message
    the emulator was told to fail this task's deployment with), or ``other`` (anything else: another exception,
    a failure for a task not told to fail, still running at the bound)."""
    if not task.finished:
        return "other"
    if task.error is None:
        return "succeeded"
    if task.expected_failure is not None and all(word in task.error for word in task.expected_failure):
        return "failed_arm"
    return "other"


def deployment_name(call: Call) -> str | None:
    match = DEPLOYMENT_PATH.search(call.path)
    return match.group(1).lower() if match else None


def processed_puts(calls: Iterable[Call]) -> Counter[str]:
    """Per deployment name (lower case): the PUTs of the deployment resource that ARM processed, in log order.

    Processed means answered 2xx (201 created, 200 replaced), and also any PUT that ARM answered at all (a 409
    ``DeploymentActive``, say) once one was answered 2xx: the client asked ARM to start the deployment again,
    which on a finished deployment would have started it a second time. A PUT answered 429 was refused before
    anything happened, and one recorded with status 0 (connection closed unanswered) or refused while the
    emulator was down (never recorded) was not processed. A count of 2 or more is a double PUT.
    """
    counts: Counter[str] = Counter()
    for call in calls:
        name = deployment_name(call) if call.method == "PUT" else None
        if name is None or call.status in (0, 429):
            continue
        if 200 <= call.status < 300 or counts[name]:
            counts[name] += 1
    return counts


def token_requests(calls: Iterable[Call], client_ids: Sequence[str]) -> list[int]:
    """Token-endpoint requests per task, in the order of ``client_ids`` (one client id per task's connection)."""
    counts = Counter(c.client_id.lower() for c in calls if TOKEN_PATH.search(c.path) and c.client_id)
    return [counts[client_id.lower()] for client_id in client_ids]


def read_statuses(calls: Iterable[Call], name: str) -> str:
    """Deployment ``name``'s answered GETs in log order, one letter each: ``T`` 429, ``.`` 200, ``x`` anything else
    (the 404 before its PUT). One recorded unanswered (status 0) is left out: azure-core resent it within the
    same read."""
    letters = {429: "T", 200: "."}
    return "".join(
        letters.get(c.status, "x")
        for c in calls
        if c.method == "GET" and c.status != 0 and deployment_name(c) == name.lower()
    )


def retry_gaps(calls: Sequence[Call]) -> list[float]:
    """For every 429 followed by another request of the same client, method and path: seconds until that one."""
    pending: dict[tuple[str | None, str, str], float] = {}
    gaps: list[float] = []
    for c in sorted(calls, key=lambda call: call.time):
        key = (c.client_id, c.method, c.path.lower())
        if key in pending:
            gaps.append(c.time - pending.pop(key))
        if c.status == 429:
            pending[key] = c.time
    return gaps


def restart_position(calls: Iterable[Call], restart: Restart) -> tuple[int, int]:
    """Processed deployment PUTs received before the restart began, and after it ended."""
    if restart.began is None or restart.ended is None:
        return 0, 0
    began, ended = restart.began, restart.ended
    times = [c.time for c in calls if c.method == "PUT" and 200 <= c.status < 300 and deployment_name(c)]
    return sum(t < began for t in times), sum(t > ended for t in times)


def _first(tasks: Iterable[Task]) -> str:
    """The first few tasks that did not end as planned: what each was expected to do, and what it did."""
    shown = [f"#{t.index} expected {_expected(t)}, {outcome(t)}: {_what(t)[:160]}" for t in tasks][:SHOWN]
    return "; first: " + "; ".join(shown) if shown else ""


def _what(task: Task) -> str:
    if not task.finished:
        return "still running"
    return task.error or "returned"


def _expected(task: Task) -> Outcome:
    return "failed_arm" if task.expected_failure is not None else "succeeded"


def _outcomes(observed: Observed) -> Expectation:
    tasks, planned = observed.tasks, len(observed.plan.names)
    counts = Counter(outcome(t) for t in tasks)
    wrong = [t for t in tasks if outcome(t) != _expected(t)]
    text = f"{counts['succeeded']} succeeded, {counts['failed_arm']} failed in ARM's words, {counts['other']} other"
    if len(tasks) != planned:
        text += f"; {len(tasks)} of {planned} accounted for"
    text += _first(wrong)
    promise = "each task: succeeded, or failed in ARM's words as told"
    return Expectation(promise, not wrong and len(tasks) == planned, text)


def _double_puts(observed: Observed) -> Expectation:
    counts = processed_puts(observed.calls)
    doubles = sorted(name for name, n in counts.items() if n > 1)
    once = sum(counts[name.lower()] == 1 for name in observed.plan.names)
    attempts = sum(1 for c in observed.calls if c.method == "PUT" and deployment_name(c))
    text = f"{len(doubles)} double; {once} of {len(observed.plan.names)} deployments PUT once, {attempts} PUT attempts"
    if doubles:
        text += "; " + ", ".join(f"{name} x{counts[name]}" for name in doubles[:SHOWN])
    return Expectation("0 double PUTs (a deployment PUT processed twice)", not doubles, text)


def _throttling(observed: Observed) -> Expectation:
    served = [c for c in observed.calls if c.status == 429]
    gaps = retry_gaps(observed.calls)
    early = [g for g in gaps if g < observed.retry_after - CLOCK_SLACK]
    text = f"{len(served)} x 429; " + (
        f"{len(gaps)} retried, the soonest after {min(gaps):.2f} s" if gaps else "none retried"
    )
    if early:
        text += f"; {len(early)} retried before Retry-After {observed.retry_after} s"
    promise = f"429s with Retry-After {observed.retry_after} s served, and waited out"
    return Expectation(promise, bool(served) and bool(gaps) and not early, text)


def _read_throttles(observed: Observed) -> Expectation:
    """Every deployment planned to get status-read 429s got them (a throttle installed too late would never be
    served, and the PUTs' 429s alone would keep the throttling promise), and each one given more in a row than
    azure-core retries got them in a row, then a 200: the operator waited them out instead of failing the task."""
    planned = observed.plan.read_429
    missing, broken = [], []
    for index, wanted in sorted(planned.items()):
        reads = read_statuses(observed.calls, observed.plan.names[index])
        if reads.count("T") < wanted:
            missing.append(f"#{index} {reads.count('T')} of {wanted}")
        elif wanted > AZURE_CORE_STATUS_RETRIES and "T" * wanted + "." not in reads:
            broken.append(f"#{index} read {reads[:40] or 'never'}")
    longest = max(planned.values(), default=0)
    promise = f"status-read 429s served as planned, {longest} in a row then a 200"
    if missing or broken:
        text = "; ".join(["missing: " + ", ".join(missing[:SHOWN])] * bool(missing) + broken[:SHOWN])
        text += " (T 429, . 200, x other)" if broken else ""
    else:
        text = f"{sum(planned.values())} on {len(planned)} deployments, each as planned"
    return Expectation(promise, bool(planned) and not missing and not broken, text)


def _restart(observed: Observed) -> Expectation:
    restart = observed.restart
    promise = "emulator restarted mid-run (PUTs before and after), within the client's resends"
    if restart.began is None or restart.ended is None or restart.error:
        return Expectation(promise, False, restart.error or "it did not happen")
    before, after = restart_position(observed.calls, restart)
    down = restart.ended - restart.began
    text = f"{before} PUTs processed before, {after} after; down {down:.1f} s"
    text += f" (azure-core resends for {CONNECT_RETRY_WINDOW:.1f} s)"
    return Expectation(promise, before >= 1 and after >= 1 and down < CONNECT_RETRY_WINDOW, text)


def _tokens(observed: Observed) -> Expectation:
    counts = token_requests(observed.calls, [t.client_id for t in observed.tasks])
    over = [(t.index, n) for t, n in zip(observed.tasks, counts, strict=True) if n > MAX_TOKENS]
    text = _token_spread(counts)
    if over:
        text += "; over: " + ", ".join(f"#{i} {n}" for i, n in over[:SHOWN])
    return Expectation(f"at most {MAX_TOKENS} token requests per task", bool(counts) and not over, text)


def _token_spread(counts: Sequence[int]) -> str:
    if not counts:
        return "n/a"
    return f"{min(counts)} / {statistics.median(counts):g} / {max(counts)} (min / median / max)"


def verdicts(observed: Observed) -> list[Expectation]:
    """The issue's promises: outcomes, no double PUT, the faults happened, token requests per task."""
    return [
        _outcomes(observed),
        _double_puts(observed),
        _throttling(observed),
        _read_throttles(observed),
        _restart(observed),
        _tokens(observed),
    ]


def figures(observed: Observed) -> list[tuple[str, str]]:
    """What the section prints above its verdicts."""
    tasks, calls, restart = observed.tasks, observed.calls, observed.restart
    rows = [("deployments started / made to fail", f"{len(observed.plan.names)} / {len(observed.plan.failing)}")]
    served = [c for c in calls if c.status == 429]
    by_kind: dict[str, int] = defaultdict(int)
    for c in served:
        by_kind["PUT" if c.method == "PUT" else "status read" if deployment_name(c) else c.method] += 1
    kinds = ", ".join(f"{n} on {kind}s" for kind, n in sorted(by_kind.items()))
    rows.append(
        (
            "429 answers served",
            f"{len(served)} (Retry-After {observed.retry_after} s)" + (f": {kinds}" if kinds else ""),
        )
    )
    if restart.began is None or restart.ended is None:
        rows.append(("restart", restart.error or "not done"))
    else:
        before, _ = restart_position(calls, restart)
        at, down = restart.began - observed.zero, restart.ended - restart.began
        rows.append(("restart", f"after {before} of {len(observed.plan.names)} PUTs, at {at:.1f} s, down {down:.1f} s"))
    rows.append(("task duration p50 / p95 / max", spread_ms([s for t in tasks if (s := t.seconds) is not None])))
    rows.append(("token requests per task", _token_spread(token_requests(calls, [t.client_id for t in tasks]))))
    counts = Counter(outcome(t) for t in tasks)
    rows.append(
        (
            "succeeded / failed in ARM's words / other",
            f"{counts['succeeded']} / {counts['failed_arm']} / {counts['other']}",
        )
    )
    statuses = Counter(c.status for c in calls)
    rows.append(("ARM emulator answers", ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))))
    rows.append(("load time", f"{observed.wall:.1f} s"))
    rows.extend(("note", note) for note in observed.notes)
    return rows
