"""The sign-in part's classification and verdicts, without processes: what each answer means, what was promised.

A sign-in is a browser's walk through ``/api/v2/auth/login`` -> ``/auth/login`` -> the IdP -> ``/auth/callback``
-> ``/ui/auth/me``. Each answer of our replicas is judged on its own (:func:`judge_redirect`, :func:`judge_me`):
the walk goes on, or it ends as a success, as the 503 page naming the IdP (the IdP was down when our server needed
it), or as "other" (anything else: a 500, a refusal, a wrong user, an unexpected redirect, a timeout).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Final, Literal

from dev.bench.soak.report import Expectation, spread_ms

Outcome = Literal["success", "idp_503", "other"]
REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
# The title of our page for an unreachable IdP (airflow_identity_provider/auth/routes/pages.py).
UNAVAILABLE_TITLE: Final = "Identity provider unavailable"
LIMIT_SECONDS: Final = 10.0
# The "mid-run": after this share of the sign-ins started.
ROTATE_SHARE: Final = 0.27
RESTART_SHARE: Final = 0.60
SHOWN: Final = 3
ROTATE_FAULT: Final = "key rotated"
RESTART_FAULT: Final = "IdP restarted"


@dataclass(frozen=True)
class Verdict:
    """What one answer means: ``outcome`` None while the sign-in goes on."""

    outcome: Outcome | None = None
    detail: str = ""


GO_ON: Final = Verdict()


@dataclass(frozen=True)
class SignIn:
    """One sign-in as it ended; times in seconds since the load began (None: never started)."""

    index: int
    outcome: Outcome
    detail: str = ""
    started: float | None = None
    ended: float | None = None
    retries: int = 0  # IdP pages the browser loaded again after a failed connection

    @property
    def seconds(self) -> float | None:
        return None if self.started is None or self.ended is None else self.ended - self.started


@dataclass(frozen=True)
class Fault:
    """A fault the controller caused: when (after how many sign-ins had started) and whether it worked."""

    name: str
    after_started: int = 0
    began: float | None = None  # None: it never happened
    done: float | None = None
    note: str = ""
    error: str = ""


def fault_points(sign_ins: int) -> tuple[int, int]:
    """After how many started sign-ins the key is rotated and the IdP restarted."""
    return max(1, math.ceil(ROTATE_SHARE * sign_ins)), max(1, math.ceil(RESTART_SHARE * sign_ins))


def names_idp(body: str, idp_origin: str) -> bool:
    """Our 503 page for an unreachable IdP, naming the address it could not reach (escaped, as the page has it)."""
    return UNAVAILABLE_TITLE in body and escape(idp_origin) in body


def judge_redirect(
    step: str, status: int, location: str, body: str, *, expected: str, idp_origin: str, exact: bool = False
) -> Verdict:
    """An answer that should redirect to ``expected`` (a prefix, or the whole URL when ``exact``)."""
    if status in REDIRECTS and (location == expected if exact else location.startswith(expected)):
        return GO_ON
    if status == 503 and names_idp(body, idp_origin):
        return Verdict("idp_503", step)
    if status in REDIRECTS:
        return Verdict("other", f"{step}: {status} to {location or '(no Location)'}, not {expected}")
    return Verdict("other", f"{step}: HTTP {status} {_gist(body)}")


def judge_me(status: int, body: str, user: str) -> Verdict:
    """``/ui/auth/me`` after the callback: 200 naming the user who signed in at the IdP."""
    if status != 200:
        return Verdict("other", f"/ui/auth/me: HTTP {status} {_gist(body)}")
    try:
        me = json.loads(body)
    except ValueError:
        return Verdict("other", f"/ui/auth/me: not JSON {_gist(body)}")
    signed_in = me.get("id") if isinstance(me, dict) else None
    if signed_in != user:
        return Verdict("other", f"/ui/auth/me: signed in as {signed_in!r}, not {user!r}")
    return Verdict("success")


def final(verdict: Verdict, statuses: Iterable[int]) -> tuple[Outcome, str]:
    """How the sign-in ended: a 500 anywhere in the walk (ours or the IdP's) makes it "other", as does a walk
    that stopped without an outcome (an exception: ``detail`` says which)."""
    if 500 in statuses and verdict.outcome != "other":
        return "other", f"a 500 during the sign-in (then {verdict.outcome or verdict.detail or 'unfinished'})"
    if verdict.outcome is None:
        return "other", verdict.detail or "unfinished"
    return verdict.outcome, verdict.detail


def during_outage(results: Sequence[SignIn], faults: Sequence[Fault]) -> list[SignIn]:
    """A 503 page naming the IdP is the promised answer only while the IdP is really down: for a sign-in that ran
    during its restart (from when the restart began until ``LIMIT_SECONDS`` after the IdP was back, the longest a
    sign-in that started in the outage may take). Any other 503 is a broken sign-in, so it becomes "other"."""
    restart = next((f for f in faults if f.name == RESTART_FAULT), None)
    window = None if restart is None or restart.began is None else (restart.began, (restart.done or restart.began))
    judged = []
    for result in results:
        if result.outcome == "idp_503":
            overlaps = (
                window is not None
                and result.started is not None
                and result.ended is not None
                and result.ended >= window[0]
                and result.started <= window[1] + LIMIT_SECONDS
            )
            if not overlaps:
                detail = f"503 naming the IdP at {result.detail} while the IdP was up"
                result = SignIn(result.index, "other", detail, result.started, result.ended, result.retries)
        judged.append(result)
    return judged


def _gist(body: str, chars: int = 120) -> str:
    return " ".join(body.split())[:chars]


def _counts(results: Sequence[SignIn]) -> Counter[str]:
    return Counter(r.outcome for r in results)


def _durations(results: Sequence[SignIn]) -> list[float]:
    return [s for r in results if (s := r.seconds) is not None]


def _mid_run(fault: Fault, results: Sequence[SignIn], planned: int) -> Expectation:
    promise = f"{fault.name} mid-run (sign-ins done before and after)"
    if fault.began is None or fault.done is None or fault.error:
        return Expectation(promise, False, fault.error or "it did not happen")
    before = sum(r.ended is not None and r.ended <= fault.began for r in results)
    after = sum(r.started is not None and r.started >= fault.done and r.outcome == "success" for r in results)
    observed = f"after {fault.after_started} of {planned} started: {before} ended before, {after} succeeded after"
    return Expectation(promise, before > 0 and after > 0, observed)


def verdicts(
    results: Sequence[SignIn], planned: int, statuses: Mapping[int, int], faults: Sequence[Fault]
) -> list[Expectation]:
    """The issue's promises, from every sign-in, every status our replicas answered with and the faults."""
    errors = statuses.get(500, 0)
    expectations = [Expectation("0 responses with status 500 (our replicas)", errors == 0, str(errors))]
    counts = _counts(results)
    others = [r for r in results if r.outcome == "other"]
    observed = f"{counts['success']} success, {counts['idp_503']} x 503 naming the IdP, {len(others)} other"
    if len(results) != planned:
        observed += f"; {len(results)} of {planned} accounted for"
    if others:
        observed += "; first: " + "; ".join(f"#{r.index} {r.detail}" for r in others[:SHOWN])
    expectations.append(
        Expectation("every sign-in: success or 503 naming the IdP", not others and len(results) == planned, observed)
    )
    durations = _durations(results)
    slow = [s for s in durations if s > LIMIT_SECONDS]
    top = f"max {max(durations):.1f} s" if durations else "none timed"
    expectations.append(
        Expectation(
            f"no sign-in over {LIMIT_SECONDS:.0f} s",
            bool(durations) and not slow,
            f"{len(slow)} over, {top}" if slow else top,
        )
    )
    expectations.extend(_mid_run(fault, results, planned) for fault in faults)
    return expectations


def figures(
    results: Sequence[SignIn],
    planned: int,
    concurrency: int,
    statuses: Mapping[int, int],
    faults: Sequence[Fault],
    load_seconds: float,
) -> list[tuple[str, str]]:
    """What the section prints above its verdicts."""
    rows = [("sign-ins, concurrency", f"{planned} @ {concurrency}, started on one replica, finished on the other")]
    for fault in faults:
        if fault.began is None:
            rows.append((fault.name, fault.error or "not done"))
            continue
        when = f"after {fault.after_started} started, at {fault.began:.1f} s"
        rows.append((fault.name, "; ".join(part for part in (when, fault.note, fault.error) if part)))
    rows.append(("p50 / p95 / max", spread_ms(_durations(results))))
    counts = _counts(results)
    outcome_row = f"{counts['success']} / {counts['idp_503']} / {counts['other']}"
    rows.append(("success / 503 naming IdP / other", outcome_row))
    at_steps = Counter(r.detail for r in results if r.outcome == "idp_503")
    if at_steps:
        rows.append(("503 pages at", ", ".join(f"{step} {n}" for step, n in sorted(at_steps.items()))))
    retried = [r for r in results if r.retries]
    retries = sum(r.retries for r in retried)
    rows.append(("IdP pages reloaded (refused or cut)", f"{retries} in {len(retried)} sign-ins"))
    shown = ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items())) or "none"
    rows.append(("statuses from our replicas", shown))
    rows.append(("load time", f"{load_seconds:.1f} s"))
    return rows
