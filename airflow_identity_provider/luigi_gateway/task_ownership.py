"""Which tasks a principal may report on: the ones it registered or luigid handed to its workers. Pure.

luigid's ``add_task`` changes a task's status for any worker that names it (DONE, FAILED, DISABLED, RUNNING:
``mark_as_done`` under another name), and the task-progress calls take any task id. The gateway remembers,
per principal, the task ids it registered (``add_task`` PENDING) and the ones ``get_work`` answered it with
(``task_id``, or a batch's ``batch_task_ids``), and lets a ``Worker``-level caller report only on those.

luigi's worker also registers a task that is already complete (or disabled, or broken) with that status in
its scheduling call, never PENDING first (``luigi/worker.py`` ``Worker._add``). Such a call describes the
task (a non-empty ``family``) and is allowed when no other principal holds the task: it registers it.

Claims live ``ttl`` seconds past their last use and are bounded like the worker bindings; a principal's
oldest claims go first when it exceeds its share, so no identity can push others' claims out by itself.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

PENDING = "PENDING"
MAX_TASK_ID = 4_096  # luigi truncates long parameter parts; a task id is a few hundred characters at most
# Calls of a task process that name the task they report on (luigi/worker.py TaskStatusReporter).
REPORTING_METHODS = frozenset(
    {
        "set_task_status_message",
        "set_task_progress_percentage",
        "decrease_running_task_resources",
        "report_task_statistics",
    }
)


@dataclass(frozen=True)
class TaskVerdict:
    allowed: bool
    reason: str = ""
    message: str = ""
    claim: str | None = None  # the task id to record for the caller when the call goes through


def _not_owned(task_id: object) -> TaskVerdict:
    named = repr(task_id) if len(repr(task_id)) <= 300 else repr(task_id)[:300] + "..."
    return TaskVerdict(
        False,
        "task_not_owned",
        f"Task {named} was neither registered by this identity nor handed to one of its workers, so it may "
        "not report on it. People change a task's state with the Op role (mark_as_done, the visualiser's buttons).",
    )


def decide_add_task(arguments: Mapping[str, Any], *, mine: bool, held_by_others: bool, restricted: bool) -> TaskVerdict:
    """``mine``: the caller holds the task; ``held_by_others``: another principal does; ``restricted``: the
    caller is Worker-level (Op and Admin are people, whose changes luigid's buttons allow anyway)."""
    task_id = arguments.get("task_id")
    valid = isinstance(task_id, str) and 0 < len(task_id) <= MAX_TASK_ID
    claim = task_id if valid and isinstance(task_id, str) else None  # an odd id is forwarded, never remembered
    status = arguments.get("status")
    registers = status is None or status == PENDING
    describes = isinstance(arguments.get("family"), str) and bool(arguments.get("family"))
    if not restricted or registers or (valid and (mine or (describes and not held_by_others))):
        return TaskVerdict(True, claim=claim)
    return _not_owned(task_id)


def decide_report(task_id: object, *, mine: bool, restricted: bool) -> TaskVerdict:
    """A task process's progress call: only on a task the caller holds (Worker level)."""
    if not restricted or mine:
        return TaskVerdict(True)
    return _not_owned(task_id)


def handed_out(body: bytes) -> list[str]:
    """The task ids of a ``get_work`` answer (``{"response": {"task_id"..., "batch_task_ids"...}}``)."""
    try:
        answer: Any = json.loads(body)
    except ValueError:
        return []
    response = answer.get("response") if isinstance(answer, dict) else None
    if not isinstance(response, dict):
        return []
    ids = [response.get("task_id"), *(response.get("batch_task_ids") or [])]
    return [i for i in ids if isinstance(i, str) and i and len(i) <= MAX_TASK_ID]


class TaskClaims:
    """(principal, task id) -> last use, bounded: ``max_per_principal`` per principal (its least recently
    used go first), ``max_entries`` in all. Used from the event loop only, like ``WorkerBindings``."""

    def __init__(
        self,
        *,
        ttl: float,
        clock: Callable[[], float],
        max_entries: int = 500_000,
        max_per_principal: int = 100_000,
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._max = max_entries
        self._max_per_principal = max_per_principal
        self._claims: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._per_principal: dict[str, OrderedDict[str, None]] = {}
        self._holders: dict[str, set[str]] = {}

    def holds(self, principal: str, task_id: str) -> bool:
        seen = self._claims.get((principal, task_id))
        return seen is not None and self._clock() - seen < self._ttl

    def held_by_others(self, principal: str, task_id: str) -> bool:
        holders = self._holders.get(task_id, ())
        return any(other != principal and self.holds(other, task_id) for other in holders)

    def claim(self, principal: str, task_id: str) -> None:
        key = (principal, task_id)
        if key in self._claims:
            self._drop(key)
        self._claims[key] = self._clock()
        self._per_principal.setdefault(principal, OrderedDict())[task_id] = None
        self._holders.setdefault(task_id, set()).add(principal)
        own = self._per_principal[principal]
        while len(own) > self._max_per_principal:
            self._drop((principal, next(iter(own))))
        while len(self._claims) > self._max:
            self._drop(next(iter(self._claims)))

    def _drop(self, key: tuple[str, str]) -> None:
        principal, task_id = key
        del self._claims[key]
        own = self._per_principal[principal]
        del own[task_id]
        if not own:
            del self._per_principal[principal]
        holders = self._holders[task_id]
        holders.discard(principal)
        if not holders:
            del self._holders[task_id]

    def __len__(self) -> int:
        return len(self._claims)
