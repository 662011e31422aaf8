"""The API under load: authorized /api/v2 requests mixing roles, ours against SimpleAuthManager in the same run.

    nice -n 10 .venv/bin/python -m dev.bench.soak --only api --reduced   # 1,000 per server @ 10 (CI's size)
    nice -n 10 .venv/bin/python -m dev.bench.soak --only api             # the issue's size (10,000 per server @ 20)

Two api-servers run side by side on the soak's PostgreSQL, each on its own database: one with our auth manager,
one with Airflow's SimpleAuthManager. Every request of a seeded plan (``api_table.plan``: each role x each call
of ``api_table.CALLS``, weighted, shuffled) goes to both at the same time: ``api_concurrency`` client threads per
server (keep-alive connections), each server a closed loop of its own, both loaded until both are done, so a burst of
machine noise hits both alike. Each answer is checked against the role table; the both-allow p50 ratio is
the cost of our authorization measured against Airflow's own simplest one.

Tokens are minted the way each api-server mints its own (its ``jwt_secret``, read into this process for the
minting only, and its manager's own claims), so no IdP and no sign-in is involved: what is measured is the
authorization of a signed-in user's requests. Our manager needs an issuer to start; it is never contacted.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import httpx

from dev.airflow_server import AUTH_MANAGER, ApiServer
from dev.bench.soak.api_table import (
    CALLS,
    MANAGERS,
    ROLES,
    Job,
    Manager,
    Outcome,
    body_is_answer,
    figures,
    job_at,
    p50_ratio_limit,
    plan,
    verdicts,
)
from dev.bench.soak.postgres import Postgres
from dev.bench.soak.report import Expectation, Section, first_line
from dev.bench.soak.sizes import Size
from dev.bench.soak.stack import SIMPLE_AUTH_MANAGER, replicas

# The (empty) databases the part's PostgreSQL must hold, one per api-server; the soak's __main__ creates them.
DATABASES: dict[Manager, str] = {"ours": "api_ours", "simple": "api_simple"}
TITLE = "API: authorized requests mixing roles, ours vs SimpleAuthManager"
REQUEST_TIMEOUT = 30.0
TOKEN_SECONDS = 3600
SIGNING_KEYS = ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API_AUTH__JWT_ISSUER")
# GET /config answers 403 to everyone unless exposed; with it exposed, the role decides.
SHARED = {"AIRFLOW__API__EXPOSE_CONFIG": "True"}
SETTINGS: dict[Manager, dict[str, str]] = {
    "ours": {
        **SHARED,
        "AIRFLOW__CORE__AUTH_MANAGER": AUTH_MANAGER,
        "AIRFLOW__IDENTITY_AUTH_MANAGER__IDP": "oidc",
        # Discovery only happens at sign-in, and minted tokens need none: port 9 (discard) is never asked.
        "AIRFLOW__IDENTITY_AUTH_MANAGER__ISSUER": "http://127.0.0.1:9/",
        "AIRFLOW__IDENTITY_AUTH_MANAGER__CLIENT_ID": "soak",
        "AIRFLOW__IDENTITY_AUTH_MANAGER__CLIENT_SECRET": "soak-secret",
        "AIRFLOW__IDENTITY_AUTH_MANAGER__ROLE_MAPPING": json.dumps({f"airflow-{r.lower()}": r for r in ROLES}),
    },
    "simple": {**SHARED, "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER},
}


def run(size: Size, postgres: Postgres, root: Path) -> Section:
    """The API part at ``size``; ``postgres`` must already hold the (empty) databases of ``DATABASES``.

    ``size.seconds`` bounds the load itself (from the first measured request): what is not answered by then
    is counted as unanswered. Start-up is bounded by ``stack``'s own timeouts. Servers are stopped on return.
    """
    section = Section(TITLE)
    jobs = plan(size.api_requests)
    try:
        with _servers(root, postgres) as servers:
            tokens = mint_tokens(servers)
            _warm_up(servers, tokens)
            started = time.monotonic()
            outcomes, fillers = _load(servers, tokens, jobs, size.api_concurrency, started + size.seconds)
            load_seconds = time.monotonic() - started
    except RuntimeError as exc:  # an api-server that does not start, or a failed migration
        observed = f"{first_line(exc)[:160]} (logs in {root})"
        section.expectations.append(Expectation("both api-servers started", False, observed))
        return section
    section.figures = figures(outcomes, len(jobs), size.api_concurrency, load_seconds, fillers)
    section.expectations = verdicts(
        outcomes, len(jobs), bound_seconds=size.seconds, ratio_limit=p50_ratio_limit(size), fillers=fillers
    )
    return section


def _start(manager: Manager, root: Path, postgres: Postgres) -> tuple[ExitStack, ApiServer]:
    own = ExitStack()
    try:
        (server,) = own.enter_context(
            replicas(root / manager, postgres, DATABASES[manager], count=1, settings=SETTINGS[manager])
        )
    except BaseException:
        own.close()
        raise
    return own, server


@contextmanager
def _servers(root: Path, postgres: Postgres) -> Iterator[dict[Manager, ApiServer]]:
    """Both api-servers, migrated and started side by side (half the wall time on 2 cores); both stopped on exit."""
    with ExitStack() as running:
        failures: list[BaseException] = []
        servers: dict[Manager, ApiServer] = {}
        with ThreadPoolExecutor(max_workers=len(MANAGERS), thread_name_prefix="soak-api-start") as pool:
            futures: dict[Manager, Future[tuple[ExitStack, ApiServer]]] = {
                manager: pool.submit(_start, manager, root, postgres) for manager in MANAGERS
            }
            for manager, future in futures.items():
                interrupted: BaseException | None = None
                while not future.done():
                    try:
                        wait([future])
                    except BaseException as exc:  # Ctrl-C: still wait, so a server that does come up is stopped
                        interrupted = interrupted or exc
                if interrupted is not None:
                    failures.append(interrupted)
                error = future.exception()
                if error is not None:
                    failures.append(error)
                    continue
                own, server = future.result()
                running.push(own)
                servers[manager] = server
        if failures:
            raise failures[0]
        yield servers


@contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def mint_tokens(servers: Mapping[Manager, ApiServer]) -> dict[tuple[Manager, str], str]:
    """A token per (manager, role), signed as that api-server signs its own, from its manager's claim shape."""
    # Noise for this process only: dev secrets are 43 bytes, and FastAPI's test client is imported, not used.
    warnings.filterwarnings("ignore", message="The HMAC key is")
    warnings.filterwarnings("ignore", message="Using `httpx` with")
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    from airflow_identity_provider.auth.manager import IdentityAuthManager
    from airflow_identity_provider.auth.rules.user import IdentityUser

    now = int(time.time())
    tokens: dict[tuple[Manager, str], str] = {}
    with _environ({key: servers["ours"].env[key] for key in SIGNING_KEYS}):
        ours = IdentityAuthManager._get_token_signer(expiration_time_in_seconds=TOKEN_SECONDS)
        for role in ROLES:
            # idp "default": the one provider configured without a name (SETTINGS["ours"]).
            user = IdentityUser(f"soak-{role.lower()}", f"Soak {role}", "", roles=(role,), auth_time=now, idp="default")
            tokens["ours", role] = ours.generate(user.to_claims())
    with _environ({key: servers["simple"].env[key] for key in SIGNING_KEYS}):
        simple = SimpleAuthManager._get_token_signer(expiration_time_in_seconds=TOKEN_SECONDS)
        manager = SimpleAuthManager()  # type: ignore[no-untyped-call]
        for role in ROLES:
            simple_user = SimpleAuthManagerUser(username=f"soak-{role.lower()}", role=role.lower())
            tokens["simple", role] = simple.generate(manager.serialize_user(simple_user))
    return tokens


def _headers(token: str) -> dict[str, str]:
    # JSON, not the config endpoint's text form; one Accept for every call keeps the requests alike.
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def _warm_up(servers: Mapping[Manager, ApiServer], tokens: Mapping[tuple[Manager, str], str]) -> None:
    """Every read once as Admin on each server: connections, the providers list, code paths loaded once."""
    for manager, server in servers.items():
        with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as client:
            for call in CALLS:
                if call.method == "GET":
                    # A server that does not answer here fails the measured requests, which say how.
                    with suppress(httpx.HTTPError):
                        client.get(call.path, headers=_headers(tokens[manager, "Admin"]))


def _send(client: httpx.Client, token: str, manager: Manager, job: Job, timeout: float) -> Outcome:
    call = job.call
    started = time.perf_counter()
    try:
        response = client.request(
            call.method, call.path, headers=_headers(token), json=call.body(job.unique), timeout=timeout
        )
    except httpx.HTTPError as exc:
        return Outcome(manager, job, None, time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}"[:200])
    seconds = time.perf_counter() - started  # the whole answer read: what a client waits for
    status = response.status_code
    body_ok = True
    if status == call.granted:  # a 403 has nothing to check; an allowed call's answer has (a 404 too)
        try:
            body_ok = body_is_answer(call, job.unique, response.json())
        except ValueError:
            body_ok = False
    error = "" if status == call.expected(manager, job.role) and body_ok else response.text[:160]
    return Outcome(manager, job, status, seconds, body_ok, error)


def _load(
    servers: Mapping[Manager, ApiServer],
    tokens: Mapping[tuple[Manager, str], str],
    jobs: list[Job],
    concurrency: int,
    deadline: float,
) -> tuple[list[Outcome], list[Outcome]]:
    """Every job to each server from ``concurrency`` threads per server; the outcomes, then the fillers'.

    Each server is its own closed loop (a shared queue would hand the slower server more threads, and its
    latency would feed on itself). A server done first keeps getting filler (``job_at``) until both are done:
    its answers are checked like any other, its latencies are not measured (the other server is winding down).
    """
    count = len(jobs)
    outcomes: dict[Manager, list[Outcome | None]] = {m: [None] * count for m in MANAGERS}
    cursors = {m: itertools.count() for m in MANAGERS}
    left_to_measure = dict.fromkeys(MANAGERS, count)
    fillers: list[Outcome] = []
    lock, measured = threading.Lock(), threading.Event()

    def worker(manager: Manager) -> None:
        # One keep-alive client per thread, as a pool of API clients would hold.
        with httpx.Client(base_url=servers[manager].url, timeout=REQUEST_TIMEOUT) as client:
            while True:
                with lock:
                    index = next(cursors[manager])
                left = deadline - time.monotonic()
                job = job_at(jobs, index)
                if index >= count:
                    if measured.is_set() or left <= 0:
                        return
                    filler = _send(client, tokens[manager, job.role], manager, job, min(REQUEST_TIMEOUT, left))
                    with lock:
                        fillers.append(filler)
                    continue
                if left <= 0:
                    outcome = Outcome(manager, job, None, 0.0, error="not sent: past the part's bound")
                else:
                    outcome = _send(client, tokens[manager, job.role], manager, job, min(REQUEST_TIMEOUT, left))
                outcomes[manager][index] = outcome
                with lock:
                    left_to_measure[manager] -= 1
                    if not any(left_to_measure.values()):
                        measured.set()

    threads = [
        threading.Thread(target=worker, args=(manager,), name=f"soak-api-{manager}-{n}", daemon=True)
        for n in range(concurrency)
        for manager in MANAGERS
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # None only where a worker died on an unexpected error: that request counts as unanswered.
    lost = "lost: its client thread failed"
    return [
        outcome or Outcome(manager, job, None, 0.0, error=lost)
        for manager in MANAGERS
        for outcome, job in zip(outcomes[manager], jobs, strict=True)
    ], fillers
