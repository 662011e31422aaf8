"""Sign-in under load and faults: browsers through two api-server replicas and the real local IdP.

    .venv/bin/python -m dev.bench.soak --only signin --reduced   # 40 sign-ins @ 10 (CI's size)
    .venv/bin/python -m dev.bench.soak --only signin             # the issue's size (300 @ 20)

Two ``airflow api-server`` replicas share one PostgreSQL database, the secrets and the public ``base_url``; that
address is a load balancer's, which this process plays: every sign-in starts on one replica (``/api/v2/auth/login``,
``/auth/login``) and its callback and ``/ui/auth/me`` go to the other, alternately. The IdP is the real npm
oidc-provider with ``IDP_STATE_FILE``, so a restart keeps its keys, sessions and codes, as a real IdP's does.
While the sign-ins run, a controller thread rotates the IdP's signing key (after ~27 % started) and restarts the
IdP (after ~60 %). A browser whose request to the IdP finds it down does what a user does: reload that page after
a short pause, within the sign-in's 10 s. Our server, needing the IdP while it is down, must answer with its 503
page naming the IdP; nothing may answer 500. ``signin_verdicts`` judges each answer and states the promises.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from dev.airflow_server import ApiServer, free_port, oidc_settings
from dev.bench.soak.postgres import Postgres
from dev.bench.soak.report import Expectation, Section, first_line
from dev.bench.soak.signin_verdicts import (
    LIMIT_SECONDS,
    RESTART_FAULT,
    ROTATE_FAULT,
    Fault,
    SignIn,
    Verdict,
    during_outage,
    fault_points,
    figures,
    final,
    judge_me,
    judge_redirect,
    verdicts,
)
from dev.bench.soak.sizes import Size
from dev.bench.soak.stack import replicas
from dev.idp.local_idp import LocalIdp, login_through_idp, start_local_idp

TITLE = "Sign-in: 2 replicas, real IdP restarted and key rotated mid-run"
DATABASE = "signin"
# The built-in users of dev/idp and the role mapping the integration tests use (tests/support/deployment.py).
USERS = ("alice", "bob", "dave", "erin")
ROLE_MAPPING = {"airflow-admins": "Admin", "airflow-ops": "Op", "airflow-users": "User", "airflow-viewers": "Viewer"}
REQUEST_TIMEOUT = 10.0
# Past the 10 s promise a sign-in is still let run this long, so the table shows how slow it was, then given up.
GIVE_UP_SECONDS = 30.0
RELOAD_PAUSE = 0.25
# What a browser shows as "cannot connect" or "connection reset": the user reloads. Not timeouts: that is slowness.
RELOADABLE = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class GaveUp(Exception):
    """The sign-in ran past its own limit or the part's bound."""


@dataclass
class Browser(httpx.BaseTransport):
    """One browser's network: the load balancer in front of the replicas, and the user's reloads of IdP pages.

    Requests to the public address go to ``backend`` (the replica the balancer picked; the Host header stays the
    public one); every status a replica answers with is kept. Requests to the IdP that fail to connect (or are
    cut) are sent again after a pause until ``reload_until``. Nothing outlives ``give_up_at``.
    """

    public: str
    idp_origin: str
    backend: str
    reload_until: float
    give_up_at: float
    statuses: list[int] = field(default_factory=list)  # from our replicas
    idp_statuses: list[int] = field(default_factory=list)
    retries: int = 0
    inner: httpx.BaseTransport = field(default_factory=httpx.HTTPTransport)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        origin = f"{request.url.scheme}://{request.url.netloc.decode()}"
        if origin == self.public:
            target = urlsplit(self.backend)
            # A copy: the client keeps the original, so the browser sees (and resolves against) the public address.
            forwarded = httpx.Request(
                request.method,
                request.url.copy_with(host=target.hostname, port=target.port),
                headers=request.headers,
                stream=request.stream,
                extensions=dict(request.extensions),
            )
            response = self._send(forwarded)
            self.statuses.append(response.status_code)
            return response
        while True:
            try:
                response = self._send(request)
            except RELOADABLE:
                if origin != self.idp_origin or time.monotonic() + RELOAD_PAUSE >= self.reload_until:
                    raise
                self.retries += 1
                time.sleep(RELOAD_PAUSE)
                continue
            self.idp_statuses.append(response.status_code)
            return response

    def _send(self, request: httpx.Request) -> httpx.Response:
        left = self.give_up_at - time.monotonic()
        if left <= 0:
            raise GaveUp(f"gave up at {request.url.path}: past {GIVE_UP_SECONDS:.0f} s or the part's bound")
        request.extensions["timeout"] = httpx.Timeout(min(REQUEST_TIMEOUT, left)).as_dict()
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def _location(response: httpx.Response) -> str:
    return urljoin(str(response.url), str(response.headers.get("location", "")))


def _walk(browser: httpx.Client, net: Browser, user: str, finish: ApiServer, authorize: str) -> Verdict:
    """One sign-in, answer by answer; ``net.backend`` is the starting replica until the IdP sends the browser back."""
    public, next_url = net.public, f"{net.public}/"

    def judge(step: str, response: httpx.Response, expected: str, *, exact: bool = False) -> Verdict:
        status, body = response.status_code, response.text
        return judge_redirect(
            step, status, _location(response), body, expected=expected, idp_origin=net.idp_origin, exact=exact
        )

    core = browser.get(f"{public}/api/v2/auth/login", params={"next": next_url})
    if (verdict := judge("/api/v2/auth/login", core, f"{public}/auth/login")).outcome:
        return verdict
    ours = browser.get(_location(core))
    if (verdict := judge("/auth/login", ours, f"{authorize}?")).outcome:
        return verdict
    back = login_through_idp(browser, _location(ours), user)
    callback = _location(back)
    if not callback.startswith(f"{public}/auth/callback?"):
        return Verdict("other", f"the IdP sent the browser to {callback[:120]}")
    net.backend = finish.url  # the balancer put the callback on the other replica
    done = browser.get(callback)
    if (verdict := judge("/auth/callback", done, next_url, exact=True)).outcome:
        return verdict
    me = browser.get(f"{public}/ui/auth/me")
    return judge_me(me.status_code, me.text, user)


def _start_idp(public: str, state_file: Path, port: int = 0) -> LocalIdp:
    return start_local_idp(
        redirect_uris=[f"{public}/auth/callback"],
        post_logout_uris=[f"{public}/auth/logged-out"],
        port=port,
        extra_env={"IDP_STATE_FILE": str(state_file)},  # a restart keeps keys, sessions and codes
    )


@dataclass
class Controller:
    """Counts the sign-ins that started and, from its own thread, causes the two faults at their points."""

    idp: LocalIdp  # the running one: the restart replaces it
    public: str
    state_file: Path
    zero: float = 0.0  # when the load began; fault times are seconds since then
    started: int = 0
    over: bool = False
    faults: dict[str, Fault] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def one_started(self) -> None:
        with self.changed:
            self.started += 1
            self.changed.notify_all()

    def stop(self) -> None:
        with self.changed:
            self.over = True
            self.changed.notify_all()

    def run(self, rotate_after: int, restart_after: int) -> None:
        self._cause(ROTATE_FAULT, rotate_after, self._rotate)
        self._cause(RESTART_FAULT, restart_after, self._restart)

    def outcome(self) -> list[Fault]:
        names = (ROTATE_FAULT, RESTART_FAULT)
        return [self.faults.get(name) or Fault(name, error="still under way when the load ended") for name in names]

    def _cause(self, name: str, after: int, act: Callable[[], str]) -> None:
        with self.changed:
            self.changed.wait_for(lambda: self.started >= after or self.over)
            started = self.started
        if started < after:
            self.faults[name] = Fault(name, error=f"the load ended before {after} sign-ins started")
            return
        began = time.monotonic() - self.zero
        try:
            note = act()
        except Exception as exc:
            self.faults[name] = Fault(name, started, began, error=f"{type(exc).__name__}: {exc}"[:200])
            return
        self.faults[name] = Fault(name, started, began, time.monotonic() - self.zero, note)

    def _rotate(self) -> str:
        return f"new signing key {self.idp.rotate_keys()}"

    def _restart(self) -> str:
        before = _signing_keys(self.idp)
        stopping = time.monotonic()
        self.idp.stop()
        self.idp = _start_idp(self.public, self.state_file, port=self.idp.port)
        down = time.monotonic() - stopping
        after = _signing_keys(self.idp)
        if after != before:  # a real IdP's restart keeps its keys; losing them would be a different fault
            raise RuntimeError(f"the IdP came back with keys {', '.join(after)}, not {', '.join(before)}")
        return f"down {down:.1f} s, keys {', '.join(after)} kept"


def _signing_keys(idp: LocalIdp) -> list[str]:
    return sorted(str(key["kid"]) for key in httpx.get(idp.jwks_uri, timeout=5).json()["keys"])


def _sign_in(
    index: int, servers: list[ApiServer], controller: Controller, deadline: float
) -> tuple[SignIn, Browser | None]:
    now = time.monotonic()
    if now >= deadline:
        return SignIn(index, "other", "not started: past the part's bound"), None
    controller.one_started()
    start, finish = servers[index % 2], servers[1 - index % 2]  # alternately A -> B and B -> A
    user = USERS[(index // 2) % len(USERS)]  # every user starts on both replicas
    idp = controller.idp
    net = Browser(
        public=controller.public,
        idp_origin=idp.base_url,
        backend=start.url,
        reload_until=now + LIMIT_SECONDS,
        give_up_at=min(now + GIVE_UP_SECONDS, deadline),
    )
    try:
        with httpx.Client(transport=net, timeout=REQUEST_TIMEOUT) as browser:
            verdict = _walk(browser, net, user, finish, idp.authorization_endpoint)
    except Exception as exc:  # a timeout, a refused connection, the IdP's own error page: all "other"
        verdict = Verdict(None, f"{type(exc).__name__}: {exc}"[:200])
    ended = time.monotonic()
    outcome, detail = final(verdict, [*net.statuses, *net.idp_statuses])
    zero = controller.zero
    return SignIn(index, outcome, detail, now - zero, ended - zero, net.retries), net


def _load(size: Size, servers: list[ApiServer], controller: Controller) -> tuple[list[SignIn], Counter[int], float]:
    """Every sign-in from ``sign_in_concurrency`` threads, the faults from another; bounded by ``size.seconds``."""
    controller.zero = time.monotonic()
    deadline = controller.zero + size.seconds
    faults = threading.Thread(
        target=controller.run, args=fault_points(size.sign_ins), name="soak-signin-faults", daemon=True
    )
    faults.start()
    results: list[SignIn] = []
    statuses: Counter[int] = Counter()
    pool = ThreadPoolExecutor(max_workers=size.sign_in_concurrency, thread_name_prefix="soak-signin")
    try:
        futures: list[Future[tuple[SignIn, Browser | None]]] = [
            pool.submit(_sign_in, index, servers, controller, deadline) for index in range(size.sign_ins)
        ]
        # Every request is bounded by the deadline already: this wait is only a backstop.
        wait(futures, timeout=size.seconds + REQUEST_TIMEOUT + 5)
        for index, future in enumerate(futures):
            if not future.done():
                future.cancel()
                results.append(SignIn(index, "other", "not finished by the part's bound"))
            elif (exc := future.exception()) is not None:
                results.append(SignIn(index, "other", f"lost: {type(exc).__name__}: {exc}"[:200]))
            else:
                sign_in, net = future.result()
                results.append(sign_in)
                statuses.update(net.statuses if net else [])
    finally:
        # On Ctrl-C or SIGTERM too: queued sign-ins never start; running ones end by their own give_up_at.
        pool.shutdown(wait=True, cancel_futures=True)
        controller.stop()
        faults.join(timeout=60)
    return results, statuses, time.monotonic() - controller.zero


def run(size: Size, postgres: Postgres, root: Path) -> Section:
    """The sign-in part at ``size``; ``postgres`` must already hold the (empty) database "signin".

    ``size.seconds`` bounds the load itself (from the first sign-in): what has not ended by then counts as
    "other". Start-up is bounded by the IdP's and ``stack``'s own timeouts. Everything is stopped on return.
    """
    section = Section(TITLE)
    root.mkdir(parents=True, exist_ok=True)
    public_port = free_port()  # the load balancer's address: nothing listens there, this process routes
    public = f"http://127.0.0.1:{public_port}"
    with ExitStack() as running:
        try:
            controller = Controller(_start_idp(public, root / "idp-state.json"), public, root / "idp-state.json")
            running.callback(lambda: controller.idp.stop())  # whichever IdP runs by then
            settings = oidc_settings(controller.idp, ROLE_MAPPING)
            servers = running.enter_context(
                replicas(root, postgres, DATABASE, count=2, settings=settings, public_port=public_port)
            )
        except RuntimeError as exc:  # the IdP or an api-server that does not start, a failed migration
            section.expectations.append(Expectation("the IdP and both api-servers started", False, first_line(exc)))
            return section
        results, statuses, load_seconds = _load(size, servers, controller)
        faults = controller.outcome()
        results = during_outage(results, faults)
    section.figures = figures(results, size.sign_ins, size.sign_in_concurrency, statuses, faults, load_seconds)
    section.expectations = verdicts(results, size.sign_ins, statuses, faults)
    return section
