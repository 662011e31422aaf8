"""The soak's API part without processes (dev/bench/soak/api_table.py): its role table, plan and verdicts."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from dev.bench.soak.api_table import (
    CALLS,
    CALLS_BY_NAME,
    MANAGERS,
    MISSING_DAG,
    P50_RATIO_LIMIT,
    P50_RATIO_LIMIT_REDUCED,
    ROLES,
    Job,
    Manager,
    Outcome,
    body_is_answer,
    both_allow,
    figures,
    in_ratio,
    job_at,
    p50_ratio_limit,
    plan,
    plan_round,
    verdicts,
)
from dev.bench.soak.report import Expectation
from dev.bench.soak.sizes import FULL, REDUCED

# What each call must get, per role in ROLES order (Viewer, User, Op, Admin): ours, then SimpleAuthManager's.
EXPECTED: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "list_dags": ((200, 200, 200, 200), (200, 200, 200, 200)),
    "list_pools": ((200, 200, 200, 200), (200, 200, 200, 200)),
    "list_connections": ((403, 403, 200, 200), (403, 403, 200, 200)),
    "list_variables": ((403, 403, 200, 200), (403, 403, 200, 200)),
    "get_config": ((403, 403, 200, 200), (200, 200, 200, 200)),
    "list_providers": ((403, 403, 200, 200), (200, 200, 200, 200)),
    "list_plugins": ((403, 403, 200, 200), (200, 200, 200, 200)),
    "create_variable": ((403, 403, 201, 201), (403, 403, 201, 201)),
    "create_pool": ((403, 403, 201, 201), (403, 403, 201, 201)),
    # The route authorizes first, then finds no such DAG: 404 is the allowed answer.
    "trigger_dag": ((403, 404, 404, 404), (403, 404, 404, 404)),
    "list_event_logs": ((403, 403, 403, 200), (200, 200, 200, 200)),
}

GOOD_BODIES: dict[str, object] = {
    "list_dags": {"dags": [], "total_entries": 0},
    "list_pools": {"pools": [{"name": "default_pool", "slots": 128}], "total_entries": 3},
    "list_connections": {"connections": [], "total_entries": 0},
    "list_variables": {"variables": [{"key": "soak_000001", "value": "soak"}], "total_entries": 1},
    "get_config": {"sections": [{"name": "core", "options": [{"key": "load_examples", "value": "False"}]}]},
    "list_providers": {"providers": [{"package_name": "apache-airflow-providers-standard"}], "total_entries": 1},
    "list_plugins": {"plugins": [], "total_entries": 0},
    "create_variable": {"key": "soak_000007", "value": "soak", "description": None},
    "create_pool": {"name": "soak_000007", "slots": 1, "occupied_slots": 0},
    "trigger_dag": {"detail": f"Dag with dag_id: '{MISSING_DAG}' not found"},
    "list_event_logs": {"event_logs": [{"event_log_id": 1, "event": "post_pool"}], "total_entries": 1},
}


def test_every_call_has_its_expected_answer_per_role_and_manager() -> None:
    assert set(EXPECTED) == set(CALLS_BY_NAME)
    for name, (ours, simple) in EXPECTED.items():
        call = CALLS_BY_NAME[name]
        assert tuple(call.expected("ours", role) for role in ROLES) == ours, name
        assert tuple(call.expected("simple", role) for role in ROLES) == simple, name


def test_the_mix_tells_the_managers_and_on_ours_every_role_apart() -> None:
    """Otherwise User answering like Viewer (or Op like Admin) would pass: the table must tell them apart."""
    differ = {name for name, (ours, simple) in EXPECTED.items() if ours != simple}
    assert differ == {"get_config", "list_providers", "list_plugins", "list_event_logs"}
    assert any(call.method == "POST" for call in CALLS)
    for lower, higher in itertools.pairwise(ROLES):
        only_higher = [c.name for c in CALLS if c.allowed("ours", higher) and not c.allowed("ours", lower)]
        assert only_higher, (lower, higher)
    assert [c.name for c in CALLS if c.lowest["ours"] == "User"] == ["trigger_dag"]
    assert [c.name for c in CALLS if c.lowest["ours"] == "Admin"] == ["list_event_logs"]


def test_ours_table_is_the_package_policy() -> None:
    """The table was written from the docs; the package's FAB matrix must say the same."""
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagAccessEntity

    from airflow_identity_provider.auth.rules.policy import is_allowed, is_view_allowed
    from airflow_identity_provider.auth.rules.roles import Role

    asks: dict[str, Callable[[Role], bool]] = {
        "list_dags": lambda r: is_allowed(r, "dag", "GET"),
        "list_pools": lambda r: is_allowed(r, "pool", "GET"),
        "list_connections": lambda r: is_allowed(r, "connection", "GET"),
        "list_variables": lambda r: is_allowed(r, "variable", "GET"),
        "get_config": lambda r: is_allowed(r, "configuration", "GET"),
        "list_providers": lambda r: is_view_allowed(r, AccessView.PROVIDERS),
        "list_plugins": lambda r: is_view_allowed(r, AccessView.PLUGINS),
        "create_variable": lambda r: is_allowed(r, "variable", "POST"),
        "create_pool": lambda r: is_allowed(r, "pool", "POST"),
        "trigger_dag": lambda r: is_allowed(r, "dag", "POST", DagAccessEntity.RUN),
        "list_event_logs": lambda r: is_allowed(r, "dag", "GET", DagAccessEntity.AUDIT_LOG),
    }
    assert set(asks) == set(CALLS_BY_NAME)
    for name, ask in asks.items():
        for role in ROLES:
            assert CALLS_BY_NAME[name].allowed("ours", role) == ask(Role.parse(role)), (name, role)


class _NoDags:  # the soak's DAG index: an empty deployment
    generation = 1

    def get(self, dag_id: str) -> None:
        return None

    def all(self) -> dict[str, Any]:
        return {}


def _answers(manager: Any, user: Any) -> dict[str, bool]:
    """Each call of the plan as the manager's own ``is_authorized_*`` question (the two managers share the API)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagAccessEntity, DagDetails

    return {
        "list_dags": manager.is_authorized_dag(method="GET", details=DagDetails(id=None), user=user),
        "list_pools": manager.is_authorized_pool(method="GET", user=user),
        "list_connections": manager.is_authorized_connection(method="GET", user=user),
        "list_variables": manager.is_authorized_variable(method="GET", user=user),
        "get_config": manager.is_authorized_configuration(method="GET", user=user),
        "list_providers": manager.is_authorized_view(access_view=AccessView.PROVIDERS, user=user),
        "list_plugins": manager.is_authorized_view(access_view=AccessView.PLUGINS, user=user),
        "create_variable": manager.is_authorized_variable(method="POST", user=user),
        "create_pool": manager.is_authorized_pool(method="POST", user=user),
        "trigger_dag": manager.is_authorized_dag(
            method="POST", access_entity=DagAccessEntity.RUN, details=DagDetails(id=MISSING_DAG), user=user
        ),
        "list_event_logs": manager.is_authorized_dag(
            method="GET", access_entity=DagAccessEntity.AUDIT_LOG, details=DagDetails(id=None), user=user
        ),
    }


def test_ours_table_is_our_managers_answer() -> None:
    """Asked as the routes ask (the DAG id in the path included), on an empty deployment, by role mapping only."""

    from airflow_identity_provider.auth.manager import IdentityAuthManager
    from airflow_identity_provider.auth.rules.access import AccessPolicy
    from airflow_identity_provider.auth.rules.user import IdentityUser
    from airflow_identity_provider.auth.services.authorizer import Authorizer

    manager = IdentityAuthManager()  # type: ignore[no-untyped-call]
    # What init() would build from the soak's settings (role mapping only), without its DB-reading threads.
    manager.__dict__["authorizer"] = Authorizer({"default": AccessPolicy()}, _NoDags())
    for role in ROLES:
        user = IdentityUser("u", "U", "", roles=(role,), idp="default")
        answers = _answers(manager, user)
        assert set(answers) == set(CALLS_BY_NAME)
        for name, allowed in answers.items():
            assert CALLS_BY_NAME[name].allowed("ours", role) == allowed, (name, role)


@pytest.mark.filterwarnings("ignore:Using `httpx` with")  # FastAPI's test client, imported by Airflow, not used
def test_simple_table_is_simple_auth_managers_answer() -> None:
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    manager = SimpleAuthManager()  # type: ignore[no-untyped-call]
    for role in ROLES:
        user = SimpleAuthManagerUser(username="u", role=role.lower())
        answers = _answers(manager, user)
        assert set(answers) == set(CALLS_BY_NAME)
        for name, allowed in answers.items():
            assert CALLS_BY_NAME[name].allowed("simple", role) == allowed, (name, role)


def test_plan_is_balanced_by_weight_repeatable_and_seeded() -> None:
    jobs = plan(len(plan_round()) * 10)
    assert Counter((j.role, j.call.name) for j in jobs) == {(r, c.name): 10 * c.weight for r in ROLES for c in CALLS}
    assert CALLS_BY_NAME["list_event_logs"].weight < CALLS_BY_NAME["list_dags"].weight
    assert jobs == plan(len(jobs))
    assert [j.call for j in jobs] != [j.call for j in plan(len(jobs), seed=1)]
    assert [j.index for j in jobs] == list(range(len(jobs)))
    assert len({j.unique for j in jobs}) == len(jobs)
    assert len(plan(7)) == 7


def test_filler_past_the_plan_repeats_it_under_new_names() -> None:
    jobs = plan(36)
    assert job_at(jobs, 5) is jobs[5]
    again = job_at(jobs, 36 + 5)
    assert (again.role, again.call) == (jobs[5].role, jobs[5].call)
    assert again.unique != jobs[5].unique


def test_writes_send_their_unique_name() -> None:
    assert CALLS_BY_NAME["create_variable"].body("soak_1") == {"key": "soak_1", "value": "soak"}
    assert CALLS_BY_NAME["create_pool"].body("soak_1") == {"name": "soak_1", "slots": 1}
    assert CALLS_BY_NAME["trigger_dag"].body("soak_1") == {"logical_date": None}
    assert CALLS_BY_NAME["list_dags"].body("soak_1") is None


@pytest.mark.parametrize("name", sorted(GOOD_BODIES))
def test_a_right_body_is_the_answer(name: str) -> None:
    assert body_is_answer(CALLS_BY_NAME[name], "soak_000007", GOOD_BODIES[name])


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("list_dags", {"dags": [], "total_entries": "0"}),
        ("list_dags", {"pools": [], "total_entries": 0}),  # another endpoint's answer
        ("list_pools", {"pools": [{"name": "other"}], "total_entries": 1}),
        ("list_connections", [{"connection_id": "x"}]),
        ("get_config", {"sections": [{"name": "core", "options": [{"key": "load_examples", "value": "True"}]}]}),
        ("get_config", {"sections": []}),
        ("create_variable", {"key": "soak_000008", "value": "soak"}),
        ("create_pool", {"name": "soak_000007", "slots": 128}),
        ("list_plugins", None),
        ("trigger_dag", {"detail": "Not Found"}),  # a path the server does not know, not the missing DAG
        ("trigger_dag", {"detail": [{"type": "missing", "loc": ["body", "logical_date"]}]}),
        ("list_event_logs", {"event_logs": [], "total_entries": None}),
    ],
)
def test_a_body_that_is_not_what_was_asked_is_caught(name: str, body: object) -> None:
    assert not body_is_answer(CALLS_BY_NAME[name], "soak_000007", body)


def _job(name: str, role: str, index: int = 0) -> Job:
    return Job(index, role, CALLS_BY_NAME[name])


def _right(manager: Manager, job: Job, seconds: float = 0.1) -> Outcome:
    return Outcome(manager, job, job.call.expected(manager, job.role), seconds)


PLANNED = len(plan_round())  # one whole round: every (role, call) pair by its weight


def _run(ours_seconds: float = 0.1, simple_seconds: float = 0.1) -> list[Outcome]:
    jobs = plan(PLANNED)
    seconds: dict[Manager, float] = {"ours": ours_seconds, "simple": simple_seconds}
    return [_right(m, j, seconds[m]) for m in MANAGERS for j in jobs]


def _fillers(count: int = 10) -> list[Outcome]:
    """What the first server done (here ours) got while the other finished: the plan again, new indices."""
    jobs = plan(PLANNED)
    return [_right("ours", job_at(jobs, PLANNED + n)) for n in range(count)]


def _verdicts(
    outcomes: list[Outcome],
    planned: int = PLANNED,
    limit: float = P50_RATIO_LIMIT,
    fillers: list[Outcome] | None = None,
) -> list[Expectation]:
    return verdicts(outcomes, planned, bound_seconds=120, ratio_limit=limit, fillers=fillers or [])


def _met(outcomes: list[Outcome], planned: int = PLANNED, **kw: Any) -> dict[str, bool]:
    return {e.promise: e.met for e in _verdicts(outcomes, planned, **kw)}


def _promise(limit: float = P50_RATIO_LIMIT) -> str:
    return f"both-allow p50: ours <= {limit} x simple (same run)"


def test_a_right_run_meets_every_promise() -> None:
    met = _met(_run(), fillers=_fillers())
    assert len(met) == 6
    assert all(met.values()), met


def test_outcome_wrong_status_wrong_body_and_no_answer() -> None:
    refused = _job("get_config", "Viewer")
    assert not Outcome("ours", refused, 403, 0.1).wrong
    assert Outcome("ours", refused, 200, 0.1).wrong  # simple's answer from ours is a wrong answer
    assert not Outcome("simple", refused, 200, 0.1).wrong
    assert Outcome("simple", refused, 200, 0.1, body_ok=False).wrong
    assert "not the answer" in Outcome("simple", refused, 200, 0.1, body_ok=False).describe()
    lost = Outcome("ours", refused, None, 0.0, error="ConnectTimeout")
    assert not lost.wrong and not lost.answered
    assert lost.describe() == "Viewer get_config -> no answer, expected 403: ConnectTimeout"
    trigger = _job("trigger_dag", "User")  # the missing DAG's 404 is User's answer, its body checked too
    assert not Outcome("ours", trigger, 404, 0.1).wrong
    assert Outcome("ours", trigger, 404, 0.1, body_ok=False).wrong  # e.g. a 404 for a path that does not exist
    assert Outcome("ours", trigger, 403, 0.1).wrong  # User losing its rights
    assert Outcome("ours", _job("trigger_dag", "Viewer"), 404, 0.1).wrong  # Viewer gaining them
    assert Outcome("ours", _job("list_event_logs", "Op"), 200, 0.1).wrong  # Op gaining Admin's


def test_a_500_fails_its_server_only_and_is_a_wrong_answer() -> None:
    outcomes = _run()
    broken = next(i for i, o in enumerate(outcomes) if o.manager == "simple")
    outcomes[broken] = Outcome("simple", outcomes[broken].job, 500, 0.1, error="Internal Server Error")
    met = _met(outcomes)
    assert met["0 responses with status 500 (simple)"] is False
    assert met["0 responses with status 500 (ours)"] is True
    assert met["0 wrong answers vs the role table (simple)"] is False
    assert met["0 wrong answers vs the role table (ours)"] is True


def test_a_500_or_a_wrong_answer_in_the_filler_counts_too() -> None:
    fillers = _fillers()
    fillers[0] = Outcome("ours", fillers[0].job, 500, 0.1, error="Internal Server Error")
    observed = {e.promise: e for e in _verdicts(_run(), fillers=fillers)}
    assert not observed["0 responses with status 500 (ours)"].met
    assert observed["0 responses with status 500 (ours)"].observed == "1 (of which 1 filler)"
    wrong = observed["0 wrong answers vs the role table (ours)"]
    assert not wrong.met
    assert wrong.observed.startswith(f"1 of {PLANNED} + 10 filler; first: filler ")
    assert observed["0 responses with status 500 (simple)"].met
    assert observed["every request answered within 120 s"].met  # fillers are not planned requests


def test_filler_is_not_timed() -> None:
    slow = [Outcome(o.manager, o.job, o.status, 9.0) for o in _fillers()]
    assert _met(_run(), fillers=slow)[_promise()] is True
    rows = dict(figures(_run(), PLANNED, 10, 2.0, fillers=slow))
    assert rows["ours: p50 / p95 / max"] == "100 / 100 / 100 ms"
    assert "+10 filler" in rows["load time, throughput"]


def test_wrong_answers_are_listed_first_few_and_counted() -> None:
    outcomes = _run()
    wrong = [i for i, o in enumerate(outcomes) if o.manager == "ours" and o.expected == 403][:5]
    for i in wrong:
        outcomes[i] = Outcome("ours", outcomes[i].job, 200, 0.1)
    expectation = next(e for e in _verdicts(outcomes) if e.promise.endswith("(ours)") and "wrong" in e.promise)
    assert not expectation.met
    assert expectation.observed.startswith(f"5 of {PLANNED}; first: ")
    assert expectation.observed.count("-> 200, expected 403") == 3


def test_unanswered_requests_fail_the_bound() -> None:
    outcomes = _run()
    outcomes[-1] = Outcome("simple", outcomes[-1].job, None, 0.0, error="not sent: past the part's bound")
    met = _met(outcomes)
    assert met["every request answered within 120 s"] is False
    assert met["0 wrong answers vs the role table (simple)"] is True  # no answer is not a wrong answer
    assert _met(_run()[:-1])["every request answered within 120 s"] is False  # one missing from the list


@pytest.mark.parametrize(("ours", "passes"), [(0.100, True), (0.124, True), (0.126, False), (0.300, False)])
def test_both_allow_p50_ratio(ours: float, passes: bool) -> None:
    assert _met(_run(ours_seconds=ours, simple_seconds=0.100))[_promise()] is passes


@pytest.mark.parametrize(("ours", "passes"), [(0.140, True), (0.149, True), (0.151, False)])
def test_the_reduced_size_ratio_limit_is_looser(ours: float, passes: bool) -> None:
    limit = p50_ratio_limit(REDUCED)
    assert (P50_RATIO_LIMIT, limit) == (p50_ratio_limit(FULL), P50_RATIO_LIMIT_REDUCED) == (1.25, 1.5)
    assert _met(_run(ours_seconds=ours, simple_seconds=0.100), limit=limit)[_promise(limit)] is passes


def test_only_requests_both_allow_count_for_the_ratio() -> None:
    """Ours refusing get_config fast (or slow) says nothing about the cost of authorizing the same work."""
    outcomes = [
        o if both_allow(o.job) or o.manager == "simple" else Outcome(o.manager, o.job, o.status, 9.0) for o in _run()
    ]
    assert _met(outcomes)[_promise()] is True
    assert not both_allow(_job("get_config", "Viewer"))
    assert both_allow(_job("get_config", "Op"))
    assert _met([], planned=0)[_promise()] is False  # no samples is no pass


def test_the_audit_log_is_left_out_of_the_ratio() -> None:
    """Both allow it to Admin, but its 200s load SimpleAuthManager's server more (see api_table)."""
    admin_logs = _job("list_event_logs", "Admin")
    assert both_allow(admin_logs) and not in_ratio(admin_logs)
    assert in_ratio(_job("trigger_dag", "User"))
    outcomes = [Outcome(o.manager, o.job, o.status, 9.0) if o.job.call.name == "list_event_logs" else o for o in _run()]
    assert _met(outcomes)[_promise()] is True


def test_figures_count_statuses_per_server() -> None:
    rows = dict(figures(_run(), PLANNED, 10, 2.0, fillers=_fillers(4)))
    assert PLANNED == 124
    assert rows["ours: 200 / 201 / 404 / 403 / other"] == "55 / 12 / 9 / 48 / 0"
    assert rows["simple: 200 / 201 / 404 / 403 / other"] == "76 / 12 / 9 / 27 / 0"
    assert rows["both-allow p50 ours / simple"] == "100 ms / 100 ms = 1.00 (75 requests each)"
    assert rows["load time, throughput"].startswith("2 s, 124 measured answers/s")
    assert "+4 filler" in rows["load time, throughput"]
