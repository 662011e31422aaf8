"""The API part's answers and verdicts, without processes: which status each (manager, role, call) must get.

The table is written from each manager's documented rules, not from asking either of them:

* ours, FAB's built-in roles (``airflow_identity_provider/auth/rules/policy.py``, ``docs/auth-manager.md``):
  DAGs and pools are read by Viewer and up; triggering a DAG needs User; connections, variables and
  configuration need Op, as do the Plugins and Providers views and pool and variable writes; the audit log
  is Admin's alone.
* Airflow's SimpleAuthManager (``simple_auth_manager.py``, ``_is_authorized``): admin may do anything; a
  resource with ``allow_get_role=VIEWER`` (DAGs and everything under them, the audit log included, pools,
  configuration) and every view is read by viewer and up; DAG writes need user; connections and variables
  have no read role, so reading them needs op, as does every write outside DAGs.

So the two agree on DAGs, pools, connections, variables and the writes, and differ where FAB is stricter
(configuration, the Plugins and Providers views, the audit log): both kinds are in the mix, and on ours each
role may do something the role below it may not, so a role answering like its neighbour is a wrong answer.
Most calls where they differ are ones whose 200 costs about what their 403 does, so neither server gets
more work from the mix than the other. The audit log is the exception (its 200 costs several times its 403,
and only SimpleAuthManager's server answers it with a 200 below Admin): it runs at a third of the others'
weight and is left out of the p50 ratio, so the extra work it gives SimpleAuthManager's server flatters
neither side.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from dev.bench.soak.report import Expectation, percentile, spread_ms
from dev.bench.soak.sizes import Size

Manager = Literal["ours", "simple"]
MANAGERS: Final[tuple[Manager, ...]] = ("ours", "simple")
# Lowest first: a role may do whatever a role before it may.
ROLES: Final[tuple[str, ...]] = ("Viewer", "User", "Op", "Admin")
# [api_auth] / Airflow defaults the servers run with, which the 200 bodies are checked against.
CONFIG_SECTION, CONFIG_OPTION, CONFIG_VALUE = "core", "load_examples", "False"
# No DAG is ever deployed: triggering this one is authorized first, then answered 404; it starts no run (Airflow
# only writes its audit-log row, as for every write).
MISSING_DAG: Final = "soak_missing_dag"
# Our same-run p50 may be this much slower than SimpleAuthManager's on requests both allow (see verdicts).
# Measured on 2 busy cores: 1.04 to 1.15. The full size is the measurement: 1.25 catches authorization that
# costs a quarter of a request more. The reduced size (CI) has a tenth of the samples, so its p50 wobbles
# more, and its job there is to catch a gross regression (an IdP or directory call per request), not to measure.
P50_RATIO_LIMIT: Final = 1.25
P50_RATIO_LIMIT_REDUCED: Final = 1.5
SEED: Final = 20260


def p50_ratio_limit(size: Size) -> float:
    """The both-allow p50 ratio a run of ``size`` must stay within (see ``P50_RATIO_LIMIT``)."""
    return P50_RATIO_LIMIT_REDUCED if size.name == "reduced" else P50_RATIO_LIMIT


@dataclass(frozen=True)
class Call:
    """One kind of request, the lowest role each manager lets make it, and the status it gets when allowed."""

    name: str
    method: Literal["GET", "POST"]
    path: str
    lowest: Mapping[Manager, str]
    granted: int = 200
    weight: int = 3  # times per role in each round of the plan
    in_ratio: bool = True  # whether its latency counts for the both-allow p50 ratio

    def allowed(self, manager: Manager, role: str) -> bool:
        return ROLES.index(role) >= ROLES.index(self.lowest[manager])

    def expected(self, manager: Manager, role: str) -> int:
        return self.granted if self.allowed(manager, role) else 403

    def body(self, unique: str) -> dict[str, Any] | None:
        """What a write sends: a name of its own, so no write collides with another (a 409 is no answer)."""
        if self.name == "create_variable":
            return {"key": unique, "value": "soak"}
        if self.name == "create_pool":
            return {"name": unique, "slots": 1}
        if self.name == "trigger_dag":
            return {"logical_date": None}
        return None


def _both(role: str) -> Mapping[Manager, str]:
    return {"ours": role, "simple": role}


CALLS: Final[tuple[Call, ...]] = (
    Call("list_dags", "GET", "/api/v2/dags?limit=5", _both("Viewer")),
    # limit=1: each pool listed costs its slot counts (several queries); default_pool is the first.
    Call("list_pools", "GET", "/api/v2/pools?limit=1", _both("Viewer")),
    Call("list_connections", "GET", "/api/v2/connections?limit=5", _both("Op")),
    Call("list_variables", "GET", "/api/v2/variables?limit=5", _both("Op")),
    Call(
        "get_config",
        "GET",
        f"/api/v2/config/section/{CONFIG_SECTION}/option/{CONFIG_OPTION}",
        {"ours": "Op", "simple": "Viewer"},
    ),
    Call("list_providers", "GET", "/api/v2/providers?limit=5", {"ours": "Op", "simple": "Viewer"}),
    Call("list_plugins", "GET", "/api/v2/plugins?limit=5", {"ours": "Op", "simple": "Viewer"}),
    Call("create_variable", "POST", "/api/v2/variables", _both("Op"), granted=201),
    Call("create_pool", "POST", "/api/v2/pools", _both("Op"), granted=201),
    # User's own right: the route checks POST on DAG runs before it looks the DAG up.
    Call("trigger_dag", "POST", f"/api/v2/dags/{MISSING_DAG}/dagRuns", _both("User"), granted=404),
    # Admin's own right on ours (see the module docstring for its weight and the ratio).
    Call(
        "list_event_logs",
        "GET",
        "/api/v2/eventLogs?limit=1",
        {"ours": "Admin", "simple": "Viewer"},
        weight=1,
        in_ratio=False,
    ),
)
CALLS_BY_NAME: Final = {call.name: call for call in CALLS}


@dataclass(frozen=True)
class Job:
    """The ``index``-th request of the plan; both managers get the same one, so their answers pair up."""

    index: int
    role: str
    call: Call

    @property
    def unique(self) -> str:
        return f"soak_{self.index:06d}"


def plan_round() -> list[tuple[str, Call]]:
    """One round of the plan: every (role, call) pair, each call ``weight`` times."""
    return [(role, call) for role in ROLES for call in CALLS for _ in range(call.weight)]


def plan(count: int, seed: int = SEED) -> list[Job]:
    """``count`` requests, whole rounds of ``plan_round`` as far as the count allows, in a seeded (repeatable) order."""
    pairs = plan_round()
    chosen = [pairs[i % len(pairs)] for i in range(count)]
    random.Random(seed).shuffle(chosen)
    return [Job(index, role, call) for index, (role, call) in enumerate(chosen)]


def job_at(jobs: Sequence[Job], index: int) -> Job:
    """The plan's ``index``-th job; past its end, the plan again under new indices (new names for the writes).

    Those are the filler a server that finished first keeps getting until the other is done too, so neither
    server's last requests run on a machine the other has stopped loading.
    """
    if index < len(jobs):
        return jobs[index]
    again = jobs[index % len(jobs)]
    return Job(index, again.role, again.call)


def body_is_answer(call: Call, unique: str, body: object) -> bool:
    """Whether the body of an allowed call's answer is what was asked (its collection, the option, the thing
    just created, the missing DAG's 404)."""
    if not isinstance(body, dict):
        return False
    collections = {
        "list_dags": "dags",
        "list_pools": "pools",
        "list_connections": "connections",
        "list_variables": "variables",
        "list_providers": "providers",
        "list_plugins": "plugins",
        "list_event_logs": "event_logs",
    }
    if call.name in collections:
        items = body.get(collections[call.name])
        if not isinstance(items, list) or not isinstance(body.get("total_entries"), int):
            return False
        # default_pool always exists and has the lowest id: a pools page without it is someone else's answer.
        return call.name != "list_pools" or any(isinstance(p, dict) and p.get("name") == "default_pool" for p in items)
    if call.name == "get_config":
        sections = body.get("sections")
        if not isinstance(sections, list) or len(sections) != 1 or not isinstance(sections[0], dict):
            return False
        section = sections[0]
        return section.get("name") == CONFIG_SECTION and section.get("options") == [
            {"key": CONFIG_OPTION, "value": CONFIG_VALUE}
        ]
    if call.name == "create_variable":
        return body.get("key") == unique and body.get("value") == "soak"
    if call.name == "create_pool":
        return body.get("name") == unique and body.get("slots") == 1
    if call.name == "trigger_dag":
        # The route's own 404 names the DAG; a 404 of an unknown path says only "Not Found".
        detail = body.get("detail")
        return isinstance(detail, str) and MISSING_DAG in detail and "not found" in detail.lower()
    return False


@dataclass(frozen=True)
class Outcome:
    """What one request got: ``status`` None when no answer came (transport error, timeout, the part's bound)."""

    manager: Manager
    job: Job
    status: int | None
    seconds: float
    body_ok: bool = True  # only meaningful for the status an allowed call gets (``Call.granted``)
    error: str = ""

    @property
    def expected(self) -> int:
        return self.job.call.expected(self.manager, self.job.role)

    @property
    def answered(self) -> bool:
        return self.status is not None

    @property
    def wrong(self) -> bool:
        """An answer that is not the table's: another status, or an allowed call's whose body is not the answer."""
        if self.status is None:
            return False
        return self.status != self.expected or (self.status == self.job.call.granted and not self.body_ok)

    def describe(self) -> str:
        got = "no answer" if self.status is None else str(self.status)
        if self.status is not None and self.status == self.expected and not self.body_ok:
            got += " with a body that is not the answer"
        why = f": {self.error}" if self.error else ""
        return f"{self.job.role} {self.job.call.name} -> {got}, expected {self.expected}{why}"


def both_allow(job: Job) -> bool:
    return all(job.call.allowed(manager, job.role) for manager in MANAGERS)


def in_ratio(job: Job) -> bool:
    """Whether a request's latency counts for the p50 ratio: the same work asked of both, both allowing it."""
    return job.call.in_ratio and both_allow(job)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def both_allow_p50(outcomes: Sequence[Outcome]) -> dict[Manager, float | None]:
    """Per manager, the median latency of answered requests that count for the ratio (``in_ratio``)."""
    out: dict[Manager, float | None] = {}
    for manager in MANAGERS:
        samples = [o.seconds for o in outcomes if o.manager == manager and o.answered and in_ratio(o.job)]
        out[manager] = percentile(samples, 0.5) if samples else None
    return out


def status_counts(outcomes: Sequence[Outcome], manager: Manager) -> Counter[int | None]:
    return Counter(o.status for o in outcomes if o.manager == manager)


def verdicts(
    outcomes: Sequence[Outcome],
    planned: int,
    *,
    bound_seconds: float,
    ratio_limit: float,
    fillers: Sequence[Outcome] = (),
    shown: int = 3,
) -> list[Expectation]:
    """The issue's promises for the API part, from what every request got (``planned`` per manager).

    ``fillers`` (``job_at``) are answers too: a 500 or a wrong answer there breaks the same promise. They are
    not planned, so they count for neither the bound nor the latencies (and one cut short by the bound is no
    failure: nobody waited for it).
    """
    expectations: list[Expectation] = []
    for manager in MANAGERS:
        errors = sum(o.manager == manager and o.status == 500 for o in outcomes)
        extra = sum(o.manager == manager and o.status == 500 for o in fillers)
        observed = f"{errors + extra}" + (f" (of which {extra} filler)" if extra else "")
        expectations.append(Expectation(f"0 responses with status 500 ({manager})", errors + extra == 0, observed))
    for manager in MANAGERS:
        wrong = [o.describe() for o in outcomes if o.manager == manager and o.wrong]
        wrong += [f"filler {o.describe()}" for o in fillers if o.manager == manager and o.wrong]
        answered = sum(o.manager == manager and o.answered for o in outcomes)
        filler = sum(o.manager == manager and o.answered for o in fillers)
        observed = f"{len(wrong)} of {answered}" + (f" + {filler} filler" if filler else "")
        if wrong:
            observed += "; first: " + "; ".join(wrong[:shown])
        expectations.append(Expectation(f"0 wrong answers vs the role table ({manager})", not wrong, observed))
    answered_by = {m: sum(o.manager == m and o.answered for o in outcomes) for m in MANAGERS}
    missing = [o for o in outcomes if not o.answered]
    observed = " + ".join(f"{answered_by[m]}" for m in MANAGERS) + f" of {planned} each"
    if missing:
        observed += "; first: " + "; ".join(f"{o.manager} {o.describe()}" for o in missing[:shown])
    expectations.append(
        Expectation(
            f"every request answered within {bound_seconds:.0f} s",
            all(answered_by[m] == planned for m in MANAGERS) and not missing,
            observed,
        )
    )
    # A same-run ratio, not a figure in ms: both servers share the cores, PostgreSQL, the client and every
    # burst of noise, and walk the same plan at the same time and concurrency, so the machine's speed cancels
    # out. Ours does a little more per request (the audit context, the role set from the JWT), and a p50 of
    # closed-loop latency wobbles ~10 % from run to run; the limit (``p50_ratio_limit``) is that plus headroom.
    # What it is there to catch is an IdP or directory call per request, which the docs promise never happens.
    p50 = both_allow_p50(outcomes)
    ours, simple = p50["ours"], p50["simple"]
    promise = f"both-allow p50: ours <= {ratio_limit} x simple (same run)"
    if ours is None or simple is None or simple <= 0:
        expectations.append(Expectation(promise, False, "no samples"))
    else:
        ratio = ours / simple
        expectations.append(Expectation(promise, ratio <= ratio_limit, f"{ratio:.2f} ({_ms(ours)} vs {_ms(simple)})"))
    return expectations


def figures(
    outcomes: Sequence[Outcome],
    planned: int,
    concurrency: int,
    load_seconds: float,
    fillers: Sequence[Outcome] = (),
) -> list[tuple[str, str]]:
    """What the section prints above its verdicts: the planned requests' figures (``fillers`` only counted)."""
    rows = [
        (
            "requests per server, concurrency",
            f"{planned} each ({len(CALLS)} calls x {len(ROLES)} roles, seed {SEED}), "
            f"{concurrency} in flight per server, both at once",
        )
    ]
    for manager in MANAGERS:
        counts = status_counts(outcomes, manager)
        other = sum(n for status, n in counts.items() if status not in (200, 201, 404, 403))
        rows.append(
            (
                f"{manager}: 200 / 201 / 404 / 403 / other",
                f"{counts[200]} / {counts[201]} / {counts[404]} / {counts[403]} / {other}",
            )
        )
    for manager in MANAGERS:
        seconds = [o.seconds for o in outcomes if o.manager == manager and o.answered]
        rows.append((f"{manager}: p50 / p95 / max", spread_ms(seconds)))
    p50 = both_allow_p50(outcomes)
    ours, simple = p50["ours"], p50["simple"]
    both = sum(o.manager == "ours" and in_ratio(o.job) for o in outcomes)
    ratio = f" = {ours / simple:.2f}" if ours is not None and simple else ""
    shown = " / ".join(_ms(v) if v is not None else "n/a" for v in (ours, simple))
    rows.append(("both-allow p50 ours / simple", f"{shown}{ratio} ({both} requests each)"))
    answered = sum(o.answered for o in outcomes)
    rate = answered / load_seconds if load_seconds > 0 else 0.0
    timed = f"{load_seconds:.0f} s, {rate:.0f} measured answers/s"
    rows.append(("load time, throughput", f"{timed} (both servers; +{len(fillers)} filler, checked, not timed)"))
    return rows
