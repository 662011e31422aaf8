"""Whose worker a call speaks for: the ``worker`` field of a call must belong to the caller's principal. Pure.

luigi workers name themselves (``Worker(salt=<9 random digits>, workers=1, host=..., username=..., pid=...)``,
or ``[worker] id``) and luigid believes any name. The gateway binds a worker id to the principal that first
used it and refuses that id to every other principal while the binding lives: an unmodified worker keeps
working, and no identity can act as another's worker (take its work, report its tasks done, disable it).

A worker id is learnt from ``worker_list`` only after its worker spoke, i.e. after the binding exists, so
the first use is its owner's. A binding lives ``ttl`` seconds past its last use, longer than luigid keeps an
idle worker (``[scheduler] worker_disconnect_delay``, 60 s by default, then pruning).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_WORKER_ID = 512  # longer than any id luigi generates; bounds what one binding costs


@dataclass(frozen=True)
class Binding:
    principal: str  # "<idp>/<user_id>", as principal_key builds it
    last_seen: float


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str = ""
    message: str = ""
    binding: Binding | None = None  # what to store when allowed


def principal_key(idp: str, user_id: str) -> str:
    return f"{idp}/{user_id}"


def decide(worker: object, principal: str, current: Binding | None, *, now: float, ttl: float) -> Verdict:
    """May ``principal`` speak as ``worker``, given the binding of that worker id (None: unknown)?"""
    if not isinstance(worker, str) or not worker:
        return Verdict(False, "worker_missing", "The call names no worker; luigi workers always send their id.")
    if len(worker) > MAX_WORKER_ID:
        return Verdict(False, "worker_id_too_long", f"A worker id has at most {MAX_WORKER_ID} characters.")
    if current is not None and current.principal != principal and now - current.last_seen < ttl:
        return Verdict(
            False,
            "worker_not_owned",
            f"Worker {worker!r} belongs to another identity; a worker may only act under its own identity. "
            "Give each machine identity its own workers (luigi names them with a random salt).",
        )
    return Verdict(True, binding=Binding(principal, now))


class WorkerBindings:
    """The bindings of one gateway process, bounded: at most ``max_per_principal`` live worker ids per
    principal (so no identity can push others' bindings out), ``max_entries`` in all (the least recently used
    go first). Used from the event loop only: a check and its store run without an ``await`` between them.
    """

    def __init__(
        self,
        *,
        ttl: float,
        clock: Callable[[], float],
        max_entries: int = 100_000,
        max_per_principal: int = 1_000,
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._max = max_entries
        self._max_per_principal = max_per_principal
        self._bindings: OrderedDict[str, Binding] = OrderedDict()
        self._counts: Counter[str] = Counter()

    def check(self, worker: object, principal: str) -> Verdict:
        current = self._bindings.get(worker) if isinstance(worker, str) else None
        now = self._clock()
        verdict = decide(worker, principal, current, now=now, ttl=self._ttl)
        if verdict.binding is None or not isinstance(worker, str):
            return verdict
        if (current is None or current.principal != principal) and not self._room_for(principal, now):
            return Verdict(
                False,
                "too_many_workers",
                f"This identity already runs {self._max_per_principal} workers the gateway knows of; "
                "reuse worker ids or wait for idle ones to expire.",
            )
        self._store(worker, verdict.binding)
        return verdict

    def _room_for(self, principal: str, now: float) -> bool:
        if self._counts[principal] < self._max_per_principal:
            return True
        for worker, binding in list(self._bindings.items()):  # rare: drop what expired, then look again
            if now - binding.last_seen >= self._ttl:
                self._drop(worker)
        return self._counts[principal] < self._max_per_principal

    def _store(self, worker: str, binding: Binding) -> None:
        if worker in self._bindings:
            self._drop(worker)
        self._bindings[worker] = binding
        self._counts[binding.principal] += 1
        while len(self._bindings) > self._max:
            self._drop(next(iter(self._bindings)))

    def _drop(self, worker: str) -> None:
        binding = self._bindings.pop(worker)
        self._counts[binding.principal] -= 1
        if self._counts[binding.principal] <= 0:
            del self._counts[binding.principal]

    def owner(self, worker: str) -> str | None:
        binding = self._bindings.get(worker)
        return binding.principal if binding is not None else None

    def __len__(self) -> int:
        return len(self._bindings)
