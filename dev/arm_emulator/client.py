"""Start/stop the emulator process and drive its control plane from tests.

with ArmEmulator() as emu:
    client = DeploymentsMgmtClient(cred, SUB, base_url=emu.url, connection_verify=emu.ca_path, ...)
    emu.throttle(r"/resourcegroups/rg1$")
    ...
    assert [r.method for r in emu.requests()] == [...]
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any, Unpack
from urllib.parse import urlsplit

from dev.emulator_kit.process import REPO_ROOT, EmulatorError, EmulatorProcess, ProcessOptions

from . import tokens
from .server import READY_PREFIX

#: The token audience ARM's clients ask for; the emulator issues tokens for it as real Entra ID does.
ARM_SCOPE = "https://management.azure.com/.default"

__all__ = ["REPO_ROOT", "ArmEmulator", "ArmEmulatorError", "RecordedRequest"]


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


# Start failures, a refused control call, a restart without persist=True: the emulators' common error.
ArmEmulatorError = EmulatorError


class ArmEmulator(EmulatorProcess):
    """Context manager owning one emulator process (started in ``__enter__``/``start``)."""

    module = "dev.arm_emulator"
    ready_prefix = READY_PREFIX
    label = "ARM emulator"
    control_prefix = "/_emulator/"

    http_url: str

    def __init__(
        self,
        *,
        http_port: int = 0,
        lro_retry_after: int = 0,
        persist: bool = False,
        **options: Unpack[ProcessOptions],
    ) -> None:
        if persist and options.get("state_dir") is None:
            raise ValueError("persist=True needs a state_dir (the state and the certificate are kept there)")
        args = ["--http-port", str(http_port), "--lro-retry-after", str(lro_retry_after)]
        if persist:
            args.append("--persist")
        super().__init__(args, **options)
        self._persist = persist

    def start(self) -> ArmEmulator:
        super().start()
        self.http_url = self.ready["http_url"]
        return self

    def restart(self, downtime: float = 0.0) -> None:
        """Stop the process and start a new one on the same ports after ``downtime`` seconds.

        Needs ``persist=True``: the new process has the old one's certificate and state (resources,
        deployments in flight, the request log, fault settings), as ARM keeps its state across a front end's
        restart. Requests sent meanwhile are refused (connection errors), never half answered.
        """
        if self.pid is None or not self._persist:
            raise ArmEmulatorError("restart() needs a running emulator started with persist=True")
        ports = {"--port": urlsplit(self.url).port, "--http-port": urlsplit(self.http_url).port}
        for flag, port in ports.items():
            self._argv[self._argv.index(flag) + 1] = str(port)
        self.stop()
        time.sleep(downtime)
        self.start()

    # -- control plane ---------------------------------------------------------------------

    def connection_extras(self) -> dict[str, Any]:
        """What an ``azure_resource_manager`` connection needs to reach this emulator as a custom cloud: its URL as
        both authority and Resource Manager, ARM's own audience, its CA, and no instance discovery (there is no
        Microsoft metadata to discover on loopback). Callers add auth_type, tenant, subscription and fence."""
        return {
            "cloud": "custom",
            "authority": self.url,
            "resource_manager_url": self.url,
            "credential_scope": ARM_SCOPE,
            "disable_instance_discovery": True,
            "connection_verify": str(self.ca_path),
        }

    def _call(self, method: str, name: str, body: dict[str, Any] | None = None) -> Any:
        return self.control_call(method, name, body)

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

    def throttle(
        self,
        path_regex: str,
        times: int = 1,
        retry_after: int = 1,
        *,
        share: float = 1.0,
        seed: int = 0,
        method: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests whose path matches (re.search, case-insensitive), and whose method is
        ``method`` if given, with 429; with ``share`` < 1 each matching request only with that probability (seeded:
        the same order, the same answers)."""
        body = {"path_regex": path_regex, "times": times, "retry_after": retry_after, "share": share, "seed": seed}
        self._post("throttle", {**body, "method": method} if method else body)

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

    def drop_request(self, path_regex: str, *, method: str | None = None, times: int = 1) -> None:
        """Close the connection of the next ``times`` matching requests without an answer (recorded with
        status 0, not processed): to the client the request was sent and its answer lost."""
        self._post("drop-request", {"path_regex": path_regex, "method": method, "times": times})

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
