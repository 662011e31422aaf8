"""Start/stop the emulator process and drive its control plane from tests.

with ArmEmulator() as emu:
    client = DeploymentsMgmtClient(cred, SUB, base_url=emu.url, connection_verify=emu.ca_path, ...)
    emu.throttle(r"/resourcegroups/rg1$")
    ...
    assert [r.method for r in emu.requests()] == [...]
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import queue
import re
import signal
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from . import tokens
from .server import READY_PREFIX

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RecordedRequest:
    method: str
    path: str  # percent-decoded, no query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case keys
    host: str  # Host header as sent ("127.0.0.1:port", "localhost:port", …)
    scheme: str  # "https" | "http" (which listener)
    body: str
    identity: dict[str, Any] | None  # decoded (unverified) claims of the bearer token
    status: int = 0  # status the emulator answered with
    time: float = 0.0  # epoch seconds when received
    internal: bool = False  # the emulator's own ("ARM's") fetch of a linked template, not a client request

    @property
    def api_version(self) -> str | None:
        values = self.query.get("api-version")
        return values[0] if values else None

    @property
    def oid(self) -> str | None:
        return None if self.identity is None else self.identity.get("oid")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class ArmEmulatorError(RuntimeError):
    pass


class ArmEmulator:
    """Context manager owning one emulator process (started in ``__enter__``/``start``)."""

    url: str
    http_url: str
    ca_path: str

    def __init__(
        self,
        *,
        port: int = 0,
        http_port: int = 0,
        state_dir: str | os.PathLike[str] | None = None,
        verbose: bool = False,
        lro_retry_after: int = 0,
        startup_timeout: float = 30.0,
        python: str = sys.executable,
    ) -> None:
        self._argv = [
            python, "-m", "dev.arm_emulator",
            "--port", str(port), "--http-port", str(http_port),
            "--lro-retry-after", str(lro_retry_after), "--exit-on-stdin-eof",
        ]  # fmt: skip
        if state_dir is not None:
            self._argv += ["--state-dir", os.fspath(state_dir)]
        if verbose:
            self._argv.append("--verbose")
        self._verbose = verbose
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=200)
        self._ssl: ssl.SSLContext | None = None

    # -- process lifecycle -----------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self) -> ArmEmulator:
        if self._proc is not None:
            raise ArmEmulatorError("already started")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        proc = subprocess.Popen(
            self._argv,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._proc = proc
        lines: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None and proc.stderr is not None
        threading.Thread(target=self._pump, args=(proc.stdout, lines), daemon=True).start()
        threading.Thread(target=self._pump, args=(proc.stderr, None), daemon=True).start()
        try:
            ready = self._wait_ready(lines)
        except BaseException:
            self.stop()
            raise
        self.url, self.http_url, self.ca_path = ready["url"], ready["http_url"], ready["ca"]
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
                    raise ArmEmulatorError(self._failure("exited before it was ready"))
                if line.startswith(READY_PREFIX):
                    ready: dict[str, str] = json.loads(line[len(READY_PREFIX) :])
                    return ready
        except queue.Empty:
            raise ArmEmulatorError(self._failure(f"not ready within {self._startup_timeout:.0f}s")) from None

    def _failure(self, what: str) -> str:
        assert self._proc is not None
        with contextlib.suppress(subprocess.TimeoutExpired):  # let the stderr pump catch the traceback
            self._proc.wait(timeout=1)
        tail = "\n".join(self._stderr_tail) or "(no stderr)"
        return f"ARM emulator ({' '.join(self._argv)}) {what}; rc={self._proc.poll()}\nstderr:\n{tail}"

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

    def __enter__(self) -> ArmEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def stderr(self) -> str:
        """The last lines the emulator wrote to stderr."""
        return "\n".join(self._stderr_tail)

    # -- control plane ---------------------------------------------------------------------

    def _call(self, method: str, name: str, body: dict[str, Any] | None = None) -> Any:
        if self._proc is None or self._ssl is None:
            raise ArmEmulatorError("the emulator is not running")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}/_emulator/{name}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, context=self._ssl, timeout=30) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            raise ArmEmulatorError(f"{method} /_emulator/{name}: {err.code} {err.read().decode()}") from err

    def _post(self, name: str, body: dict[str, Any]) -> Any:
        return self._call("POST", name, body)["result"]

    def requests(self, path_regex: str | None = None) -> list[RecordedRequest]:
        """Every non-control request received so far, in order (optionally filtered by path regex)."""
        raw = self._call("GET", "requests")["requests"]
        out = [RecordedRequest(**r) for r in raw]
        if path_regex is not None:
            pattern = re.compile(path_regex, re.I)
            out = [r for r in out if pattern.search(r.path)]
        return out

    def reset(self) -> None:
        """Forget resources, deployments, recordings, fault injections and settings."""
        self._post("reset", {})

    def throttle(self, path_regex: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``times`` requests whose path matches (re.search, case-insensitive) with 429."""
        self._post("throttle", {"path_regex": path_regex, "times": times, "retry_after": retry_after})

    def fail_request(
        self,
        path_regex: str,
        *,
        status: int = 403,
        code: str = "AuthorizationFailed",
        message: str = "The client does not have authorization to perform this action.",
        method: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching authenticated ARM requests with an ARM error (no Retry-After)."""
        self._post(
            "fail-request",
            {"path_regex": path_regex, "status": status, "code": code, "message": message,
             "method": method, "times": times},
        )  # fmt: skip

    def fail_deployment(
        self,
        name: str,
        code: str = "ResourceDeploymentFailure",
        message: str = "The resource operation completed with terminal provisioning state 'Failed'.",
    ) -> None:
        """Deployments with this name (any scope) end ``Failed``; ``code``/``message`` appear in
        ``error.details`` and in the failed deployment operation."""
        self._post("fail-deployment", {"name": name, "code": code, "message": message})

    def set_deployment_duration(self, polls: int) -> None:
        """Observations (status polls or GETs) a new deployment stays Running before finishing."""
        self._post("deployment-duration", {"polls": polls})

    def set_permissions(self, scope: str, entries: list[dict[str, Any]]) -> None:
        """Permissions returned at ``scope`` and below (``"/"`` or ``"*"``: everywhere)."""
        self._post("permissions", {"scope": scope, "entries": entries})

    def set_role_assignments(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Replace all role assignments. Entries: ARM shape, or flat
        ``{"scope", "principalId", "roleName"|"roleDefinitionId", "principalType"?, "name"?}``.
        Returns the normalised ARM objects."""
        result: list[dict[str, Any]] = self._post("role-assignments", {"entries": entries})
        return result

    def set_deny_assignments(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Replace all deny assignments (ARM shape, or flat ``{"scope", "actions", "principals"?, …}``)."""
        result: list[dict[str, Any]] = self._post("deny-assignments", {"entries": entries})
        return result

    def add_role_definition(self, definition: dict[str, Any]) -> dict[str, Any]:
        """Add a custom role: ``{"roleName", "actions"|"permissions", "name"? (GUID), …}``."""
        result: dict[str, Any] = self._post("role-definitions", {"definition": definition})
        return result

    def set_what_if_changes(self, name_or_star: str, changes: list[dict[str, Any]]) -> None:
        """What-if result ``properties.changes`` for that deployment name (or ``"*"`` for all)."""
        self._post("what-if-changes", {"name": name_or_star, "changes": changes})

    def set_what_if_result(
        self,
        name_or_star: str,
        *,
        changes: list[dict[str, Any]] | None = None,
        potential_changes: list[dict[str, Any]] | None = None,
        diagnostics: list[dict[str, Any]] | None = None,
    ) -> None:
        """Replace those parts of the final what-if body ``{"status": "Succeeded", "properties":
        {"changes", "potentialChanges", "diagnostics"}}`` for that deployment name (or ``"*"``), verbatim.
        Parts not given (``None``) keep their earlier setting, or are computed as usual."""
        self._post(
            "what-if-result",
            {"name": name_or_star, "changes": changes, "potentialChanges": potential_changes,
             "diagnostics": diagnostics},
        )  # fmt: skip

    def set_what_if_limits(self, max_nesting_depth: int | None) -> None:
        """Nested deployments deeper than this are not expanded by what-if: their resources come back
        as ``Ignore`` changes plus one ``NestedDeploymentShortCircuited`` warning each (None: no limit)."""
        self._post("what-if-limits", {"max_nesting_depth": max_nesting_depth})

    def set_linked_template(self, name: str, versions: list[dict[str, Any]]) -> str:
        """Serve ``GET /linked-templates/{name}.json``: ``versions[0]`` on the first fetch, then
        ``versions[1]``, …, the last one repeating. Returns the HTTPS URL (``{url}/linked-templates/…``)."""
        path: str = self._post("linked-template", {"name": name, "versions": versions})
        return self.url + path

    def linked_template_url(self, name: str, *, http: bool = False) -> str:
        """The URL of a linked template on the HTTPS (or plain-HTTP) listener."""
        base = self.http_url if http else self.url
        stem = name[:-5] if name.lower().endswith(".json") else name
        return f"{base}/linked-templates/{stem.lower()}.json"

    def set_template_spec_versions(self, version_id: str, contents: list[dict[str, Any]]) -> str:
        """Successive reads of that template-spec version (GETs, and deployments resolving
        ``templateLink.id``) return ``contents[0]``, ``contents[1]``, … as ``mainTemplate``, the last one
        repeating. The version (and its template spec) is created if absent. Returns the version id."""
        result: str = self._post("template-spec-versions", {"version_id": version_id, "contents": contents})
        return result

    def set_async_base(self, base_url: str | None) -> None:
        """Base URL of Azure-AsyncOperation/Location headers (None: the request's own scheme://host)."""
        self._post("async-base", {"base_url": base_url})

    def set_ratelimit_remaining(self, n: int) -> None:
        self._post("ratelimit-remaining", {"n": n})

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def principal_oid(
        *, client_id: str | None = None, object_id: str | None = None, resource_id: str | None = None
    ) -> str:
        """The ``oid`` the emulator puts in tokens for that identity (see ``tokens.py``)."""
        return tokens.principal_oid(client_id=client_id, object_id=object_id, resource_id=resource_id)
