"""Start/stop one emulator process from tests or the demo and call its control plane (every emulator's client:
``ArmEmulator``, ``GraphEmulator``, ``JumpCloudEmulator``).

The process runs from the repo root with ``--exit-on-stdin-eof`` (so it dies with its parent), the READY line
gives the URL and the CA bundle, a failed start raises with the command line, the exit code and the last stderr
lines.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import queue
import signal
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypedDict, TypeVar, Unpack
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parents[2]
_E = TypeVar("_E", bound="EmulatorProcess")


class EmulatorError(RuntimeError):
    pass


class ProcessOptions(TypedDict, total=False):
    """What every emulator client takes besides its own options (``**options: Unpack[ProcessOptions]``)."""

    port: int  # HTTPS port on 127.0.0.1, 0 = any free one
    state_dir: str | os.PathLike[str] | None  # where ca.pem/key.pem go (default: a temp dir removed at exit)
    verbose: bool  # one line per request on stderr, echoed to ours
    startup_timeout: float  # seconds until the READY line (default 30)
    python: str  # the interpreter (default: this one)


class EmulatorProcess:
    """Context manager owning one emulator process (started in ``__enter__``/``start``)."""

    module = ""  # "dev.graph_emulator"
    ready_prefix = ""  # "GRAPH_EMULATOR_READY "
    label = "emulator"
    control_prefix = ""  # "/_control/": where control_call sends its requests

    url: str
    ca_path: str
    ready: dict[str, str]

    def __init__(self, args: list[str], **options: Unpack[ProcessOptions]) -> None:
        """``args``: the emulator's own command-line options, after the common ones."""
        python, port = options.get("python", sys.executable), options.get("port", 0)
        self._argv = [python, "-m", self.module, "--port", str(port), "--exit-on-stdin-eof", *args]
        state_dir = options.get("state_dir")
        if state_dir is not None:
            self._argv += ["--state-dir", os.fspath(state_dir)]
        self._verbose = options.get("verbose", False)
        if self._verbose:
            self._argv.append("--verbose")
        self._startup_timeout = options.get("startup_timeout", 30.0)
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=200)
        self._ssl: ssl.SSLContext | None = None

    # -- process lifecycle -----------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self: _E) -> _E:
        if self._proc is not None:
            raise EmulatorError("already started")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        proc = subprocess.Popen(
            self._argv, cwd=REPO_ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._proc = proc
        lines: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None and proc.stderr is not None
        threading.Thread(target=self._pump, args=(proc.stdout, lines), daemon=True).start()
        threading.Thread(target=self._pump, args=(proc.stderr, None), daemon=True).start()
        try:
            self.ready = self._wait_ready(lines)
        except BaseException:
            self.stop()
            raise
        self.url, self.ca_path = self.ready["url"], self.ready["ca"]
        self._ssl = ssl.create_default_context(cafile=self.ca_path)
        return self

    def _pump(self, stream: IO[bytes], lines: queue.Queue[str | None] | None) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if lines is not None:
                lines.put(line)
            else:
                self._stderr_tail.append(line)
                if self._verbose:
                    print(line, file=sys.stderr, flush=True)
        if lines is not None:
            lines.put(None)

    def _wait_ready(self, lines: queue.Queue[str | None]) -> dict[str, str]:
        try:
            while True:
                line = lines.get(timeout=self._startup_timeout)
                if line is None:
                    raise EmulatorError(self._failure("exited before it was ready"))
                if line.startswith(self.ready_prefix):
                    ready: dict[str, str] = json.loads(line[len(self.ready_prefix) :])
                    return ready
        except queue.Empty:
            raise EmulatorError(self._failure(f"not ready within {self._startup_timeout:.0f}s")) from None

    def _failure(self, what: str) -> str:
        assert self._proc is not None
        with contextlib.suppress(subprocess.TimeoutExpired):  # let the stderr pump catch the traceback
            self._proc.wait(timeout=1)
        tail = "\n".join(self._stderr_tail) or "(no stderr)"
        return f"{self.label} ({' '.join(self._argv)}) {what}; rc={self._proc.poll()}\nstderr:\n{tail}"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self: _E) -> _E:
        # ``with start_…_emulator() as emu`` enters an already started emulator
        return self if self._proc is not None else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def ca_env(self) -> dict[str, str]:
        """The environment that makes a process trust this emulator the standard way, as production trusts a
        private CA: ``REQUESTS_CA_BUNDLE`` for requests (msal) and ``SSL_CERT_FILE`` for httpx. (Passing
        ``verify=`` to msal instead would not do: requests lets ``REQUESTS_CA_BUNDLE`` override a session's
        ``verify``, https://github.com/psf/requests/issues/3829.)"""
        return {"REQUESTS_CA_BUNDLE": self.ca_path, "SSL_CERT_FILE": self.ca_path}

    @property
    def stderr(self) -> str:
        """The last lines the emulator wrote to stderr."""
        return "\n".join(self._stderr_tail)

    # -- control plane ---------------------------------------------------------------------

    def control_call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """``method {url}{control_prefix}{path}`` with a JSON body; returns the decoded answer."""
        if self._proc is None or self._ssl is None:
            raise EmulatorError(f"the {self.label} is not running")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{self.control_prefix}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, context=self._ssl, timeout=30) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            raise EmulatorError(f"{method} {self.control_prefix}{path}: {err.code} {err.read().decode()}") from err

    @staticmethod
    def q(segment: str) -> str:
        """One path segment, percent-encoded."""
        return quote(segment, safe="")


class DirectoryEmulator(EmulatorProcess):
    """A process of ``emulator_kit.main``: the control plane of ``web.EmulatorApp`` under ``/_control/``
    (objects, faults, stats), answering ``{"ok": true, "result": …}``."""

    control_prefix = "/_control/"

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """``method {url}/_control/{path}`` with a JSON body; returns its ``result``."""
        return self.control_call(method, path, body).get("result")

    def reset(self) -> None:
        """Forget every object, recording, fault and setting (the process keeps running)."""
        self.control("POST", "reset", {})

    def fail(
        self,
        mode: str,
        *,
        seconds: float | None = None,
        times: int | None = None,
        retry_after: int = 1,
        path_regex: str | None = None,
    ) -> None:
        """Make API requests fail: ``"503"``/``"429"``/``"500"`` (with ``Retry-After`` on 503/429), ``"hang"``
        (no answer until the window ends) or ``"drop"`` (connection closed). For ``seconds``, for the
        next ``times`` requests, or (neither) until ``clear_failures``. ``path_regex`` narrows it (default:
        the API, not the token endpoint)."""
        body: dict[str, Any] = {"mode": mode, "seconds": seconds, "times": times, "retry_after": retry_after}
        if path_regex is not None:
            body["path_regex"] = path_regex
        self.control("POST", "fail", body)

    def clear_failures(self) -> None:
        self.control("DELETE", "fail")

    def stats(self) -> dict[str, Any]:
        """``{"since", "total", "paths": {path: n}, "routes": {template: n}, "statuses": {status: n}}``."""
        result: dict[str, Any] = self.control("GET", "stats")
        return result

    def reset_stats(self) -> None:
        self.control("POST", "stats/reset", {})

    def requests(self) -> list[dict[str, Any]]:
        """Every API request so far: time, method, path, query, route, status, remote, user_agent, …"""
        result: list[dict[str, Any]] = self.control("GET", "requests")
        return result
