"""Transport-free request/response types and the base every directory emulator app builds on.

An app answers parsed requests under one lock. The base adds what both directory emulators need:
injected faults (503/429/500, hanging or dropped connections) for a time window or a number of
requests, per-path request statistics, and the shared control endpoints under ``/_control/``.
"""

from __future__ import annotations

import collections
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CONTROL_PREFIX = "/_control/"
FAULT_MODES = ("503", "429", "500", "hang", "drop")


@dataclass
class Request:
    method: str
    path: str  # percent-decoded, without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case keys
    body: bytes
    scheme: str
    host: str
    remote: str = ""  # peer "ip:port"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def param(self, *names: str) -> str | None:
        """First value of the first query parameter present (names compared case-insensitively)."""
        wanted = [n.lower() for n in names]
        for name in wanted:
            for key, values in self.query.items():
                if key.lower() == name and values:
                    return values[0]
        return None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Response:
    status: int
    body: Any = None  # dict/list -> JSON, bytes -> as is, None -> empty
    headers: dict[str, str] = field(default_factory=dict)
    # "hang": hold the connection open without answering until ``until``; "drop": close it at once.
    action: str | None = None
    until: float = 0.0

    def encoded(self) -> tuple[bytes, str | None]:
        if self.body is None:
            return b"", None
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        return json.dumps(self.body).encode(), "application/json; charset=utf-8"


class ControlError(Exception):
    """Raised by control handlers: answered as 4xx ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Fault:
    mode: str
    pattern: re.Pattern[str]
    deadline: float | None  # time.monotonic() after which the fault is over
    remaining: int | None  # requests left to fail
    retry_after: int

    def active(self, now: float) -> bool:
        if self.deadline is not None and now >= self.deadline:
            return False
        return self.remaining is None or self.remaining > 0


ControlHandler = Callable[[Request, list[str]], Any]


class EmulatorApp:
    """Base class: subclasses set ``name``/``default_fault_path`` and implement ``serve``,
    ``fault_response`` and ``reset_state``; they may add control routes with ``self.routes``."""

    name = "emulator"
    default_fault_path = r"^/"

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.fault: Fault | None = None
        self.faults_cleared = threading.Event()  # wakes connections parked by a "hang" fault
        self.requests: collections.deque[dict[str, Any]] = collections.deque(maxlen=20000)
        self.stats_since = time.time()
        # (method, regex on the path after /_control/) -> handler(req, groups)
        self.routes: list[tuple[str, re.Pattern[str], ControlHandler]] = []
        self.route("POST", r"reset", lambda req, g: self._reset())
        self.route("POST", r"fail", self._fail)
        self.route("DELETE", r"fail", lambda req, g: self._clear_fault())
        self.route("GET", r"stats", lambda req, g: self.stats())
        self.route("POST", r"stats/reset", lambda req, g: self._reset_stats())
        self.route("GET", r"requests", lambda req, g: list(self.requests))
        self.route("GET", r"health", lambda req, g: {"ok": True})

    # -- to implement ----------------------------------------------------------------------

    def serve(self, req: Request) -> tuple[Response, str, dict[str, Any]]:
        """Answer an API request: (response, route template for the stats, extra fields to record)."""
        raise NotImplementedError

    def fault_response(self, status: int, retry_after: int) -> Response:
        raise NotImplementedError

    def reset_state(self) -> None:
        raise NotImplementedError

    def before_request(self) -> None:
        """Called with the lock held before every request (e.g. to expire time-bound memberships)."""

    # -- dispatch --------------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: ControlHandler) -> None:
        self.routes.append((method, re.compile(f"^{pattern}$"), handler))

    def handle(self, req: Request) -> Response:
        with self.lock:
            self.before_request()
            if req.path.startswith(CONTROL_PREFIX):
                return self._control(req)
            record: dict[str, Any] = {
                "time": time.time(),
                "method": req.method,
                "path": req.path,
                "query": req.query,
                "remote": req.remote,
                "user_agent": req.headers.get("user-agent", ""),
                "client_request_id": req.headers.get("client-request-id", ""),
            }
            resp = self._take_fault(req.path)
            route = ""
            if resp is None:
                resp, route, extra = self.serve(req)
                record.update(extra)
            record["route"] = route or req.path
            record["status"] = resp.status if resp.action is None else resp.action
            self.requests.append(record)
            return resp

    def _control(self, req: Request) -> Response:
        rest = req.path[len(CONTROL_PREFIX) :].strip("/")
        known = False
        for method, pattern, handler in self.routes:
            match = pattern.match(rest)
            if match is None:
                continue
            known = True
            if method != req.method:
                continue
            try:
                result = handler(req, list(match.groups()))
            except ControlError as exc:
                return Response(exc.status, {"error": {"code": "BadControlRequest", "message": str(exc)}})
            except (KeyError, ValueError, TypeError, re.error) as exc:
                return Response(
                    400, {"error": {"code": "BadControlRequest", "message": f"{type(exc).__name__}: {exc}"}}
                )
            return Response(200, {"ok": True, "result": result})
        status = 405 if known else 404
        return Response(
            status, {"error": {"code": "UnknownControlEndpoint", "message": f"{req.method} {req.path} is not served"}}
        )

    # -- faults ----------------------------------------------------------------------------

    def _fail(self, req: Request, groups: list[str]) -> dict[str, Any]:
        body = body_object(req)
        mode = str(body["mode"])
        if mode == "off":
            self._clear_fault()
            return {"mode": "off"}
        if mode not in FAULT_MODES:
            raise ControlError(400, f"mode must be one of {FAULT_MODES} or 'off', not {mode!r}")
        seconds, times = body.get("seconds"), body.get("times")
        self.faults_cleared.clear()
        self.fault = Fault(
            mode=mode,
            pattern=re.compile(str(body.get("path_regex") or self.default_fault_path), re.I),
            deadline=None if seconds is None else time.monotonic() + float(seconds),
            remaining=None if times is None else int(times),
            retry_after=int(body.get("retry_after", 1)),
        )
        return {"mode": mode, "seconds": seconds, "times": times}

    def _clear_fault(self) -> None:
        self.fault = None
        self.faults_cleared.set()

    def _take_fault(self, path: str) -> Response | None:
        fault, now = self.fault, time.monotonic()
        if fault is None or not fault.pattern.search(path):
            return None
        if not fault.active(now):
            self.fault = None
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
        if fault.mode == "drop":
            return Response(0, action="drop")
        if fault.mode == "hang":
            # Parked until the window ends (or the fault is cleared); a count-only hang lasts 60 s.
            return Response(0, action="hang", until=fault.deadline if fault.deadline is not None else now + 60)
        resp = self.fault_response(int(fault.mode), fault.retry_after)
        if fault.mode in ("503", "429"):
            resp.headers["Retry-After"] = str(fault.retry_after)
        return resp

    # -- stats -----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        paths: collections.Counter[str] = collections.Counter()
        routes: collections.Counter[str] = collections.Counter()
        statuses: collections.Counter[str] = collections.Counter()
        for record in self.requests:
            paths[record["path"]] += 1
            routes[record["route"]] += 1
            statuses[str(record["status"])] += 1
        return {
            "since": self.stats_since,
            "total": len(self.requests),
            "paths": dict(paths),
            "routes": dict(routes),
            "statuses": dict(statuses),
        }

    def _reset_stats(self) -> None:
        self.requests.clear()
        self.stats_since = time.time()

    def _reset(self) -> None:
        self._clear_fault()
        self._reset_stats()
        self.reset_state()


def body_object(req: Request) -> dict[str, Any]:
    body = req.json() if req.body else {}
    if not isinstance(body, dict):
        raise ControlError(400, "the body must be a JSON object")
    return body
