"""The HTTP(S) listeners of every emulator (ARM, Graph, JumpCloud).

``Listener`` is a threading server that does each TLS handshake in the connection's own thread (one slow
client blocks nobody) and keeps quiet about clients that hang up; ``BaseHandler`` speaks keep-alive HTTP/1.1,
reads bodies (chunked or not) and writes answers. ``EmulatorServer``/``Handler`` put an ``EmulatorApp`` behind
them (the directory emulators: parse, hand to the app, answer, or hang/drop for a fault); the ARM emulator has
its own handler on the same listener (``dev/arm_emulator/server.py``).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

from .web import EmulatorApp, Request, Response


class Listener(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHandler],
        *,
        ssl_context: ssl.SSLContext | None,
        verbose: bool = False,
        product: str,
        log_name: str,
    ) -> None:
        """``product`` names the Server header (``<product>/1.0``), ``log_name`` the stderr lines; no
        ``ssl_context``: plain HTTP."""
        self.ssl_context = ssl_context
        self.scheme = "https" if ssl_context else "http"
        self.verbose = verbose
        self.product = product
        self.log_name = log_name
        super().__init__(address, handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        if self.ssl_context is not None:  # the handshake happens later, in the connection's own thread
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ssl.SSLError, ConnectionError, TimeoutError, socket.timeout)):
            if self.verbose:
                print(f"{self.log_name}: {self.scheme} connection error: {exc!r}", file=sys.stderr, flush=True)
            return
        super().handle_error(request, client_address)


class BaseHandler(BaseHTTPRequestHandler):
    """Subclasses implement ``_handle`` (every method in ``methods`` goes there)."""

    protocol_version = "HTTP/1.1"  # keep-alive, as real clients (requests, httpx, azure-core) expect
    server: Listener
    timeout = 120  # idle keep-alive connections
    methods: ClassVar[tuple[str, ...]] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for method in cls.methods:
            setattr(cls, f"do_{method}", cls._handle)

    def _handle(self) -> None:
        raise NotImplementedError

    def version_string(self) -> str:
        return f"{self.server.product}/1.0"

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"{self.server.log_name} {self.server.scheme}: {format % args}\n")

    def read_body(self) -> bytes:
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

    def request_fields(self) -> dict[str, Any]:
        """The ``web.Request`` fields of this request (the body is read here)."""
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        host, port = self.client_address[:2]
        return {
            "method": self.command.upper(),
            "path": unquote(parts.path) or "/",
            "query": parse_qs(parts.query, keep_blank_values=True),
            "headers": headers,
            "body": self.read_body(),
            "scheme": self.server.scheme,
            "host": headers.get("host") or self.server.url.split("://", 1)[1],
            "remote": f"{host}:{port}",
        }

    def send(self, method: str, resp: Response) -> None:
        """Write ``resp`` (no body for 1xx/204/304, nor for HEAD, which gets Content-Length 0)."""
        payload, content_type = resp.encoded()
        self.send_response(resp.status)
        headers = dict(resp.headers)
        if content_type and "Content-Type" not in headers:
            headers["Content-Type"] = content_type
        for key, value in headers.items():
            self.send_header(key, value)
        if resp.status in (204, 304) or resp.status < 200:
            self.end_headers()
            return
        self.send_header("Content-Length", "0" if method == "HEAD" else str(len(payload)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(payload)


class EmulatorServer(Listener):
    def __init__(
        self, address: tuple[str, int], app: EmulatorApp, *, ssl_context: ssl.SSLContext, verbose: bool = False
    ) -> None:
        self.app = app
        super().__init__(
            address, Handler, ssl_context=ssl_context, verbose=verbose, product=app.name, log_name=app.name
        )


class Handler(BaseHandler):
    server: EmulatorServer

    def _handle(self) -> None:
        req = Request(**self.request_fields())
        try:
            resp = self.server.app.handle(req)
        except Exception:  # an emulator bug: a plain 500, the traceback on stderr only
            import traceback

            traceback.print_exc(file=sys.stderr)
            resp = Response(500, {"error": {"code": "EmulatorError", "message": "emulator bug, see its stderr"}})
        if resp.action is not None:
            self._misbehave(resp)
            return
        self.send(req.method, resp)

    def _misbehave(self, resp: Response) -> None:
        """A "hang" fault holds the connection without a byte of answer; then (or for "drop") it closes."""
        if resp.action == "hang":
            cleared = self.server.app.faults_cleared
            while time.monotonic() < resp.until and not cleared.wait(0.05):
                pass
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.request.shutdown(socket.SHUT_RDWR)
