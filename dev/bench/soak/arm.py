"""ARM deployments under load and faults: N template deployments at once against the ARM emulator.

    .venv/bin/python -m dev.bench.soak --only arm --reduced   # 6 deployments, 1 made to fail (CI's size)
    .venv/bin/python -m dev.bench.soak --only arm             # the issue's size (30, 5 made to fail)

Each task is ``AzureTemplateDeploymentOperator.execute()`` in its own thread, with its own operator and its own
connection (its own client id, so the emulator's token requests can be told apart per task), as N worker
processes would run them: non-deferrable, polling every ``POLL_INTERVAL`` s. All are let go at once. The
emulator (``persist=True``) fails the deployments the plan names with ARM's own error, throttles with 429 and
``Retry-After`` (``arm_verdicts.plan``: a PUT's throttles are set up front, a deployment's status-read throttles
by its task right after ARM accepted the PUT, before the first status read), and a monitor thread restarts it once,
when half of the PUTs were processed; ARM's clients survive the restart (same ports, CA and state).
``arm_verdicts`` states the promises and judges what was observed: each task's outcome and the request log.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from dev.arm_emulator.client import ARM_SCOPE, ArmEmulator, RecordedRequest
from dev.bench.soak.arm_verdicts import (
    TOKEN_PATH,
    Call,
    Observed,
    Plan,
    Restart,
    Task,
    failure_words,
    figures,
    plan,
    processed_puts,
    verdicts,
)
from dev.bench.soak.report import Expectation, Section, first_line
from dev.bench.soak.sizes import Size

TITLE = "ARM: deployments at once, throttled (429 + Retry-After), emulator restarted mid-run"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SUB = "8a8a8a8a-1111-2222-3333-444444444444"
RG = "rg-soak"
RG_SCOPE = f"/subscriptions/{SUB}/resourceGroups/{RG}"
SETUP_CLIENT = "5e7a5e7a-0000-4000-8000-000000000000"  # creates the group: not a task, not counted
POLL_INTERVAL = 0.25  # the operator's status polls
RUNNING_POLLS = 8  # status reads a deployment stays Running (throttled ones not counted): the tasks overlap
RETRY_AFTER = 1
# The emulator is down for its stop, DOWNTIME and its start: 0.8-1.4 s in all in this part (the most with a
# second soak beside it), 1.2-1.5 s alone on 2 cores at load 5, the start being most of it. A request refused
# meanwhile is resent by azure-core for 4.8 s after its first refusal (arm_verdicts.CONNECT_RETRY_WINDOW), so the
# restart stays under a third of that window, room for a machine three times as slow; past the window the task
# would fail with ServiceRequestError, at both sizes alike (the restart does not grow with the number of tasks).
# The hook takes no retry settings from the connection: the window is azure-core's default, as in production.
DOWNTIME = 0.4
MONITOR_PAUSE = 0.2
INSTALL_BOUND = 30.0  # seconds a task keeps trying to set its status-read throttle (the emulator restarting)
TEMPLATE: dict[str, Any] = {
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {"name": {"type": "string"}},
    "resources": [
        {
            "type": "Microsoft.Storage/storageAccounts",
            "apiVersion": "2023-05-01",
            "name": "[parameters('name')]",
            "location": "[resourceGroup().location]",
            "sku": {"name": "Standard_LRS"},
            "kind": "StorageV2",
        }
    ],
    "outputs": {"accountName": {"type": "string", "value": "[parameters('name')]"}},
}


def client_id(index: int) -> str:
    return f"50a50000-0000-4000-8000-{index:012x}"


def conn_id(index: int) -> str:
    return f"soak_arm_{index:02d}"


def _deployment_path(name: str) -> str:
    return rf"/providers/microsoft\.resources/deployments/{name}$"


def _extras(emu: ArmEmulator) -> dict[str, Any]:
    """The emulator as a custom cloud (authority and ARM), fenced to the one group the tasks deploy to."""
    return {
        "auth_type": "client_secret",
        "tenant_id": TENANT,
        "subscription_id": SUB,
        **emu.connection_extras(),
        "polling_interval": 0.2,  # the SDK's own LRO polling (what-if)
        "allowed_scopes": [RG_SCOPE],
    }


@contextmanager
def _connections(emu: ArmEmulator, count: int) -> Iterator[None]:
    """One ``AIRFLOW_CONN_*`` per task, removed again on the way out."""
    names = [f"AIRFLOW_CONN_{conn_id(i).upper()}" for i in range(count)]
    for i, name in enumerate(names):
        fields = {"conn_type": "azure_resource_manager", "login": client_id(i), "password": f"secret-{i}"}
        os.environ[name] = json.dumps({**fields, "extra": _extras(emu)})
    try:
        yield
    finally:
        for name in names:
            os.environ.pop(name, None)


def _prepare(emu: ArmEmulator, deployments: Plan) -> None:
    """The group, each task's Contributor role on it (least privilege: no subscription-wide role to warn about),
    the deployments made to fail, the PUT throttles, and how long deployments run."""
    from azure.identity import ClientSecretCredential
    from azure.mgmt.resource.resources import ResourceManagementClient

    credential = ClientSecretCredential(
        TENANT, SETUP_CLIENT, "x", authority=emu.url, disable_instance_discovery=True, connection_verify=emu.ca_path
    )
    client = ResourceManagementClient(
        credential, SUB, base_url=emu.url, credential_scopes=[ARM_SCOPE], connection_verify=emu.ca_path
    )
    try:
        client.resource_groups.create_or_update(RG, {"location": "westeurope"})
    finally:
        client.close()
        credential.close()
    oid = ArmEmulator.principal_oid
    emu.set_role_assignments(
        [
            {"scope": RG_SCOPE, "principalId": oid(client_id=client_id(i)), "roleName": "Contributor"}
            for i in range(len(deployments.names))
        ]
    )
    for i in sorted(deployments.failing):
        emu.fail_deployment(deployments.names[i], *failure_words(i))
    for i, times in sorted(deployments.put_429.items()):
        emu.throttle(_deployment_path(deployments.names[i]), times=times, retry_after=RETRY_AFTER, method="PUT")
    emu.set_deployment_duration(RUNNING_POLLS)


@functools.cache
def _operator_class() -> type[Any]:
    """The operator under test, told to call ``after_put(name)`` once ARM accepted the deployment's PUT and before
    its first status read: the moment a status-read throttle has to be in place (set earlier, it would hit the
    read before the PUT, which fails the task past azure-core's retries by design). Nothing else changes."""
    from airflow_identity_provider.azure.operators import AzureTemplateDeploymentOperator

    class SoakDeploymentOperator(AzureTemplateDeploymentOperator):
        def __init__(self, *, after_put: Callable[[str], None], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.after_put = after_put

        def _start(self, session: Any, body: Any) -> None:
            super()._start(session, body)
            self.after_put(session.name)

    return SoakDeploymentOperator


@dataclass
class _TaskInstance:
    """What the operator uses of a task instance: its identity and ``xcom_push``."""

    task_id: str
    dag_id: str = "soak_arm"
    run_id: str = "manual__2026-01-01T00:00:00+00:00"
    try_number: int = 1
    map_index: int = -1
    xcom: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def _task(index: int, deployments: Plan, go: threading.Event, timeout: float, monitor: _Monitor) -> None:
    """One task: its operator's execute() once ``go`` is set; the outcome lands in ``monitor.results[index]``."""
    name = deployments.names[index]
    expected = failure_words(index) if index in deployments.failing else None
    read_429 = deployments.read_429.get(index, 0)
    operator = _operator_class()(
        task_id=f"deploy_{index:02d}",
        azure_resource_manager_conn_id=conn_id(index),
        resource_group_name=RG,
        deployment_name=name,
        template=TEMPLATE,
        parameters={"name": f"stsoak{index:02d}"},
        poll_interval=POLL_INTERVAL,
        timeout=timeout,  # the task's own bound: it gives up waiting rather than outlive the part
        deferrable=False,
        after_put=lambda accepted: monitor.throttle_reads(accepted, read_429) if read_429 else None,
    )
    ti = _TaskInstance(task_id=operator.task_id)
    context: Any = {"ti": ti, "task_instance": ti, "run_id": ti.run_id, "dag_run": None}
    go.wait()
    started = time.monotonic()
    error: str | None = None
    try:
        operator.execute(context)
    except Exception as exc:  # the verdicts tell ARM's failure from anything else by the text
        error = f"{type(exc).__name__}: {exc}"
    monitor.results[index] = Task(index, client_id(index), expected, error, seconds=time.monotonic() - started)


@dataclass
class _Monitor:
    """The emulator's control while the tasks run: it restarts the emulator once ``restart_after`` PUTs were
    processed (``run``, its own thread, watching the request log), and sets a deployment's status-read throttle
    when its task asks (``throttle_reads``, in the task's thread). ``lock`` keeps the two apart: a throttle is
    never sent to an emulator going down, and waits for the restart instead."""

    emu: ArmEmulator
    deployments: Plan
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    restart: Restart = field(default_factory=Restart)
    results: dict[int, Task] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def throttle_reads(self, name: str, times: int) -> None:
        """The next ``times`` status reads of deployment ``name`` answered 429; retried while the emulator is
        down, for ``INSTALL_BOUND`` s (a throttle never set shows in the verdicts as missing)."""
        deadline = time.monotonic() + INSTALL_BOUND
        while True:
            try:
                with self.lock:
                    self.emu.throttle(_deployment_path(name), times=times, retry_after=RETRY_AFTER, method="GET")
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    self.errors.append(f"throttle {name}: {first_line(exc)}")
                    return
                time.sleep(0.05)

    def run(self) -> None:
        while not self.stop.wait(MONITOR_PAUSE):
            try:
                processed = processed_puts(_calls(self.emu.requests()))
            except Exception as exc:  # a control call that failed: note it and look again
                self.errors.append(f"request log: {first_line(exc)}")
                continue
            if sum(processed.values()) >= self.deployments.restart_after:
                self._restart()
                return

    def _restart(self) -> None:
        with self.lock:
            began = time.time()
            try:
                self.emu.restart(downtime=DOWNTIME)
            except Exception as exc:
                self.restart = Restart(began, None, first_line(exc))
                return
            self.restart = Restart(began, time.time())


def _client_of(request: RecordedRequest) -> str | None:
    """Who sent it: a token request's form ``client_id``, else the bearer token's ``appid``."""
    if TOKEN_PATH.search(request.path):
        values = parse_qs(request.body).get("client_id")
        return values[0] if values else None
    return None if request.identity is None else request.identity.get("appid")


def _calls(requests: list[RecordedRequest]) -> list[Call]:
    return [Call(r.method, r.path, r.status, r.time, _client_of(r)) for r in requests if not r.internal]


def _load(emu: ArmEmulator, deployments: Plan, size: Size) -> Observed:
    """Every task at once, the monitor beside them; bounded by ``size.seconds`` from the moment they are let go."""
    count = len(deployments.names)
    go, monitor = threading.Event(), _Monitor(emu, deployments)
    threads = [
        threading.Thread(
            target=_task, args=(i, deployments, go, size.seconds, monitor), name=f"soak-arm-{i:02d}", daemon=True
        )
        for i in range(count)
    ]
    watcher = threading.Thread(target=monitor.run, name="soak-arm-monitor", daemon=True)
    for thread in threads:
        thread.start()
    zero, start = time.time(), time.monotonic()
    deadline = start + size.seconds
    go.set()
    watcher.start()
    try:
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        wall = time.monotonic() - start
    finally:
        monitor.stop.set()
        watcher.join(DOWNTIME + 40)  # a restart under way: its start has a 30 s bound of its own
    tasks = [
        monitor.results.get(i)
        or Task(i, client_id(i), failure_words(i) if i in deployments.failing else None, finished=False)
        for i in range(count)
    ]
    notes = (
        [f"monitor: {len(monitor.errors)} control call(s) failed, first: {monitor.errors[0]}"] if monitor.errors else []
    )
    if watcher.is_alive():
        notes.append("monitor still running at the end (a restart under way)")
    try:
        calls = _calls(emu.requests())
    except Exception as exc:  # an emulator that did not come back from its restart: judge without its log
        calls = []
        notes.append(f"request log unreadable: {first_line(exc)}")
    return Observed(deployments, tasks, calls, monitor.restart, RETRY_AFTER, zero, wall, notes)


def run(size: Size) -> Section:
    """The ARM part at ``size``: ``size.deployments`` at once, ``size.failing_deployments`` made to fail.

    ``size.seconds`` bounds the load (from the moment the tasks are let go): a task still running then counts
    as "other". The emulator is stopped on return, whatever happened. The tasks' logs (their stdout) go to a file
    in the emulator's state folder, which is removed when every promise was kept and named in the table if not.
    """
    section = Section(TITLE)
    deployments = plan(size.deployments, size.failing_deployments)
    folder = Path(tempfile.mkdtemp(prefix="soak-arm-"))
    emu = ArmEmulator(state_dir=folder, persist=True)
    try:
        try:
            emu.start()
            _prepare(emu, deployments)
        except Exception as exc:  # the emulator that does not start, a setup request refused
            text = first_line(exc)
            section.expectations.append(Expectation("the ARM emulator started and took the setup", False, text))
            emu.stop()
            shutil.rmtree(folder, ignore_errors=True)
            return section
        # The operators log to stdout (Airflow's structlog): a few dozen lines per task, kept out of the table.
        with _connections(emu, size.deployments), open(folder / "tasks.log", "w") as log, redirect_stdout(log):
            observed = _load(emu, deployments, size)
    finally:
        emu.stop()
    section.figures = figures(observed)
    section.expectations = verdicts(observed)
    if section.passed:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        section.figures.append(("kept for a look", f"{folder} (tasks.log; state.pickle holds the request log)"))
    return section
