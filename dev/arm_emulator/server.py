"""HTTP(S) listeners: parse, record, dispatch (control plane / identity / ARM), answer.

The listener and the HTTP plumbing are the emulators' shared ones (``dev/emulator_kit/server.py``); what is ARM's
is here: one state behind every listener (HTTPS, plain HTTP, the alias host), the request log, the stop that
answers nothing more once it has begun (``--persist``), and ARM's response headers.
"""

from __future__ import annotations

import ssl
import sys
import time
import traceback
import uuid
from dataclasses import replace
from typing import Any, ClassVar

from dev.emulator_kit.jwt import decode_unverified
from dev.emulator_kit.server import BaseHandler, Listener

from . import arm, control, identity, linked
from .state import State
from .web import Request, Response, arm_error

READY_PREFIX = "ARM_EMULATOR_READY "


class EmulatorServer(Listener):
    def __init__(
        self,
        address: tuple[str, int],
        state: State,
        *,
        ssl_context: ssl.SSLContext | None = None,
        verbose: bool = False,
    ) -> None:
        self.state = state
        super().__init__(
            address, Handler, ssl_context=ssl_context, verbose=verbose, product="ArmEmulator", log_name="arm-emulator"
        )
        with state.lock:
            state.own_ports.add(int(self.server_address[1]))


def _record(req: Request) -> dict[str, Any]:
    return {
        "method": req.method,
        "path": req.path,
        "query": req.query,
        "headers": dict(req.headers),
        "host": req.host,
        "scheme": req.scheme,
        "body": req.body.decode("utf-8", "replace"),
        "identity": req.identity,
        "status": 0,
        "time": time.time(),
        "internal": False,
    }


def _bearer_claims(headers: dict[str, str]) -> dict[str, Any] | None:
    auth = headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        return None
    return decode_unverified(auth[7:].strip())


def _arm_headers(state: State, req: Request, throttled: bool = False) -> dict[str, str]:
    remaining = "0" if throttled else str(state.ratelimit_remaining)
    kind = {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}.get(req.method, "writes")
    headers = {
        "x-ms-correlation-request-id": req.correlation_id,
        "x-ms-routing-request-id": f"WESTEUROPE:{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}:{uuid.uuid4()}",
        f"x-ms-ratelimit-remaining-subscription-{kind}": remaining,
        f"x-ms-ratelimit-remaining-subscription-global-{kind}": remaining,
    }
    if throttled:
        headers["x-ms-ratelimit-remaining-subscription-reads"] = "0"
    return headers


def dispatch(state: State, req: Request) -> Response:
    """Everything but the control plane. Call with ``state.lock`` held."""
    throttle = state.take_throttle(req.path, req.method)
    if throttle is not None:
        resp = arm_error(
            429,
            "TooManyRequests",
            "The request is being throttled as the limit has been reached for operation type - "
            f"{'Read' if req.method in ('GET', 'HEAD') else 'Write'}. For more information, see "
            "https://aka.ms/armthrottling.",
        )
        resp.headers.update(_arm_headers(state, req, throttled=True))
        resp.headers["Retry-After"] = str(throttle.retry_after)
        return resp
    blob_resp = linked.route(state, req)  # storage-like: no ARM auth, no ARM headers
    if blob_resp is not None:
        return blob_resp
    id_resp = identity.route(req)
    if id_resp is not None:
        id_resp.headers.setdefault("Cache-Control", "no-store")
        return id_resp
    arm_resp = arm.authenticate(req) if arm.is_known(req.path) else arm.not_found(req)
    if arm_resp is None and (injected := state.take_injected_error(req.method, req.path)) is not None:
        arm_resp = arm_error(injected.status, injected.code, injected.message)
    if arm_resp is None:
        arm_resp = arm.route(state, req)
    arm_resp.headers.update(_arm_headers(state, req))
    return arm_resp


class Handler(BaseHandler):
    server: EmulatorServer
    methods: ClassVar[tuple[str, ...]] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

    def _handle(self) -> None:
        state = self.server.state
        fields = self.request_fields()
        headers = fields["headers"]
        req = Request(
            **fields,
            identity=_bearer_claims(headers),
            correlation_id=headers.get("x-ms-correlation-request-id") or str(uuid.uuid4()),
        )
        with state.lock:
            if not state.accepting:  # stopping: close without an answer, so the client knows nothing happened
                self.close_connection = True
                return
            state.in_flight += 1
            if req.path.lower().startswith(control.PREFIX):
                resp = control.handle(state, req)
            else:
                record = _record(req)
                state.requests.append(record)
                if state.take_drop(req.method, req.path) is not None:  # no answer at all (status 0 in the log)
                    state.in_flight -= 1
                    self.close_connection = True
                    return
                try:
                    resp = dispatch(state, req)
                except Exception as exc:  # a bug in the emulator: 500 envelope, traceback on stderr only
                    traceback.print_exc(file=sys.stderr)
                    resp = arm_error(500, "InternalServerError", f"ARM emulator error: {type(exc).__name__}")
                record["status"] = resp.status
        try:
            # A copy: a handler's response object is never changed here (an own x-ms-request-id wins)
            self.send(req.method, replace(resp, headers={"x-ms-request-id": str(uuid.uuid4()), **resp.headers}))
        finally:
            with state.lock:
                state.in_flight -= 1


def make_server(
    port: int, state: State, *, ssl_context: ssl.SSLContext | None, verbose: bool, host: str = "127.0.0.1"
) -> EmulatorServer:
    return EmulatorServer((host, port), state, ssl_context=ssl_context, verbose=verbose)
