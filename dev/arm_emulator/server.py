"""HTTP(S) listeners: parse, record, dispatch (control plane / identity / ARM), answer."""

from __future__ import annotations

import socket
import ssl
import sys
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import arm, control, identity, linked, tokens
from .state import State
from .web import Request, Response, arm_error

READY_PREFIX = "ARM_EMULATOR_READY "
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        state: State,
        *,
        ssl_context: ssl.SSLContext | None = None,
        verbose: bool = False,
    ) -> None:
        self.state = state
        self.ssl_context = ssl_context
        self.scheme = "https" if ssl_context else "http"
        self.verbose = verbose
        super().__init__(address, Handler)
        with state.lock:
            state.own_ports.add(int(self.server_address[1]))

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        if self.ssl_context is not None:  # handshake later, in the connection's own thread
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ssl.SSLError, ConnectionError, TimeoutError, socket.timeout)):
            if self.verbose:
                print(f"arm-emulator: {self.scheme} connection error: {exc!r}", file=sys.stderr, flush=True)
            return
        super().handle_error(request, client_address)


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
    return tokens.decode_unverified(auth[7:].strip())


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
    throttle = state.take_throttle(req.path)
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


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EmulatorServer
    timeout = 120  # idle keep-alive connections

    def version_string(self) -> str:
        return "ArmEmulator/1.0"

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"arm-emulator {self.server.scheme}: {format % args}\n")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        state = self.server.state
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Request(
            method=self.command.upper(),
            path=unquote(parts.path) or "/",
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=headers,
            body=self._read_body(),
            scheme=self.server.scheme,
            host=headers.get("host") or self.server.url.split("://", 1)[1],
            identity=_bearer_claims(headers),
            correlation_id=headers.get("x-ms-correlation-request-id") or str(uuid.uuid4()),
        )
        with state.lock:
            if req.path.lower().startswith(control.PREFIX):
                resp = control.handle(state, req)
            else:
                record = _record(req)
                state.requests.append(record)
                try:
                    resp = dispatch(state, req)
                except Exception as exc:  # a bug in the emulator: 500 envelope, traceback on stderr only
                    traceback.print_exc(file=sys.stderr)
                    resp = arm_error(500, "InternalServerError", f"ARM emulator error: {type(exc).__name__}")
                record["status"] = resp.status
        self._send(req, resp)

    def _send(self, req: Request, resp: Response) -> None:
        payload, content_type = resp.encoded()
        self.send_response(resp.status)
        headers = dict(resp.headers)
        headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
        if content_type and "Content-Type" not in headers:
            headers["Content-Type"] = content_type
        for key, value in headers.items():
            self.send_header(key, value)
        if resp.status in (204, 304) or resp.status < 200:
            self.end_headers()
            return
        if req.method == "HEAD":
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


for _method in _METHODS:
    setattr(Handler, f"do_{_method}", Handler._handle)


def make_server(
    port: int, state: State, *, ssl_context: ssl.SSLContext | None, verbose: bool, host: str = "127.0.0.1"
) -> EmulatorServer:
    return EmulatorServer((host, port), state, ssl_context=ssl_context, verbose=verbose)
