"""In-memory state of one emulator process (guarded by a single lock)."""

from __future__ import annotations

import os
import pickle
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

DEFAULT_RATELIMIT_REMAINING = 11999
DEFAULT_PERMISSIONS: list[dict[str, Any]] = [
    {
        "actions": ["*"],
        "notActions": ["Microsoft.Authorization/*/Write", "Microsoft.Authorization/*/Delete"],
        "dataActions": [],
        "notDataActions": [],
    }
]


@dataclass
class Throttle:
    pattern: re.Pattern[str]
    remaining: int
    retry_after: int
    # Each matching request is throttled with this probability (1: all of them, until ``remaining`` runs out),
    # drawn from a seeded generator: the same request order gets the same answers.
    share: float = 1.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    method: str | None = None  # only requests of this method (None: any)


@dataclass
class InjectedError:
    pattern: re.Pattern[str]
    method: str | None
    remaining: int
    status: int
    code: str
    message: str


@dataclass
class Drop:
    """The next ``remaining`` matching requests get no answer: the connection is closed unanswered."""

    pattern: re.Pattern[str]
    method: str | None
    remaining: int


_Fault = TypeVar("_Fault", InjectedError, Drop)


def _take(rules: list[_Fault], method: str, path: str) -> _Fault | None:
    """The first rule with uses left that matches the request (any method when it names none), one use spent."""
    for rule in rules:
        if rule.remaining > 0 and (rule.method is None or rule.method == method) and rule.pattern.search(path):
            rule.remaining -= 1
            return rule
    return None


@dataclass
class ResourceGroup:
    subscription: str
    name: str
    location: str
    tags: dict[str, str]
    managed_by: str | None = None

    @property
    def id(self) -> str:
        return f"/subscriptions/{self.subscription}/resourceGroups/{self.name}"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": self.location,
            "tags": dict(self.tags),
            "properties": {"provisioningState": "Succeeded"},
        }
        if self.managed_by:
            body["managedBy"] = self.managed_by
        return body


TERMINAL_STATES = frozenset({"Succeeded", "Failed", "Canceled"})


@dataclass
class Deployment:
    scope: str  # as sent ("" for tenant scope), no trailing slash
    name: str
    request: dict[str, Any]
    correlation_id: str
    polls_needed: int
    template_hash: str
    parameters: dict[str, Any]  # echoed shape {"p": {"type": "String", "value": ...}}
    resources: list[dict[str, Any]]  # derived: {"id","type","name","apiVersion","location",...}
    outputs_on_success: dict[str, Any]
    state: str = "Accepted"
    polls_seen: int = 0
    started: float = field(default_factory=time.time)
    finished: float | None = None
    error: dict[str, Any] | None = None
    failure: tuple[str, str] | None = None  # (code, message) of the failing resource
    operations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.scope}/providers/Microsoft.Resources/deployments/{self.name}"

    @property
    def active(self) -> bool:
        return self.state not in TERMINAL_STATES


@dataclass
class LocationOperation:
    """A ``Location``-polled LRO (RG/deployment delete, what-if)."""

    id: str
    pending_polls: int
    final_status: int
    final_body: Any
    url: str = ""


@dataclass
class LinkedTemplate:
    """``GET /linked-templates/{name}.json``: ``versions[fetches]``, the last one repeating."""

    versions: list[Any]
    fetches: int = 0


@dataclass
class TemplateSpec:
    id: str
    name: str
    location: str
    properties: dict[str, Any]  # description, displayName, metadata
    tags: dict[str, str]
    created: float
    modified: float
    created_by: str | None = None


@dataclass
class TemplateSpecVersion:
    id: str
    name: str
    spec_id: str
    location: str
    properties: dict[str, Any]  # mainTemplate, linkedTemplates, description, metadata, uiFormDefinition
    tags: dict[str, str]
    created: float
    modified: float
    created_by: str | None = None
    sequence: list[dict[str, Any]] = field(default_factory=list)  # set_template_spec_versions
    reads: int = 0


# Belongs to the running process, not to what ARM knows: never saved across a restart.
_PROCESS_ONLY = frozenset({"lock", "own_ports", "lro_retry_after", "accepting", "in_flight"})


class State:
    def __init__(self, *, lro_retry_after: int = 0) -> None:
        self.lock = threading.RLock()
        self.lro_retry_after = lro_retry_after
        self.own_ports: set[int] = set()  # every listener's port (linked-template URIs that are "ours")
        # A stopping emulator answers nothing more (``accepting``) once the requests it is answering are sent
        # (``in_flight``), so what it saves is exactly what its clients were told.
        self.accepting = True
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.throttles: list[Throttle] = []
        self.injected_errors: list[InjectedError] = []
        self.drops: list[Drop] = []
        self.failing_deployments: dict[str, tuple[str, str]] = {}
        self.deployment_polls = 1
        self.permissions: dict[str, list[dict[str, Any]]] = {}
        self.role_assignments: list[dict[str, Any]] | None = None  # None -> caller is Contributor
        self.deny_assignments: list[dict[str, Any]] = []
        self.custom_role_definitions: dict[str, dict[str, Any]] = {}
        # deployment name (lower) or "*" -> {"changes"|"potentialChanges"|"diagnostics": [...]}
        self.what_if_results: dict[str, dict[str, list[Any]]] = {}
        self.what_if_max_depth: int | None = None
        self.linked_templates: dict[str, LinkedTemplate] = {}  # name (lower, no ".json")
        self.template_specs: dict[str, TemplateSpec] = {}  # id (lower)
        self.template_spec_versions: dict[str, TemplateSpecVersion] = {}  # id (lower)
        self.async_base: str | None = None
        self.ratelimit_remaining = DEFAULT_RATELIMIT_REMAINING
        self.resource_groups: dict[tuple[str, str], ResourceGroup] = {}
        self.deployments: dict[tuple[str, str], Deployment] = {}
        self.deployment_operations: dict[str, Deployment] = {}  # Azure-AsyncOperation ids
        self.location_operations: dict[str, LocationOperation] = {}
        self.scope_tags: dict[str, dict[str, str]] = {}

    # -- restart (--persist) ---------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Everything ``reset`` clears (resources, deployments, recordings, faults, settings) to ``path``."""
        with self.lock:
            data = pickle.dumps({k: v for k, v in vars(self).items() if k not in _PROCESS_ONLY})
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def load(self, path: Path) -> None:
        # Our own file: written by this emulator at its previous stop, in the state dir it was given.
        data = pickle.loads(path.read_bytes())
        with self.lock:
            self.__dict__.update(data)

    # -- fault injection -------------------------------------------------------------------

    def take_throttle(self, path: str, method: str | None = None) -> Throttle | None:
        for rule in self.throttles:
            if rule.method is not None and method is not None and rule.method != method.upper():
                continue
            if rule.remaining > 0 and rule.pattern.search(path):
                if rule.share < 1.0 and rule.rng.random() >= rule.share:
                    continue
                rule.remaining -= 1
                return rule
        return None

    def take_drop(self, method: str, path: str) -> Drop | None:
        return _take(self.drops, method, path)

    def take_injected_error(self, method: str, path: str) -> InjectedError | None:
        return _take(self.injected_errors, method, path)

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def new_id() -> str:
        return str(uuid.uuid4())

    def get_rg(self, subscription: str, name: str) -> ResourceGroup | None:
        return self.resource_groups.get((subscription.lower(), name.lower()))
