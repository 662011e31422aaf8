"""Every hole of the least-privilege promise, tried through a real operator run.

Each case is a DAG run with ``dag.test()`` in a subprocess with its own AIRFLOW_HOME and SQLite database
(the real task runner: template rendering, rendered-field storage, XCom, task logs), against the ARM
emulator process over HTTPS with the real azure SDK clients. A refused case asserts the refusal text (the
resource, the rule and the setting that would change it) and that the emulator recorded **no** write
request during that run. Positive cases next to them prove the checks do not refuse the legitimate shape.

Microsoft Graph is not involved; ARM is emulated because no local process can be ARM (dev/arm_emulator).
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dev.airflow_server import airflow_env, migrate
from dev.arm_emulator.client import ArmEmulator, RecordedRequest
from tests.support.versions import IMPORT_DAGBAG

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TENANT = "11111111-1111-1111-1111-111111111111"
SUB = "22222222-2222-2222-2222-222222222222"
CLIENT = "33333333-3333-3333-3333-333333333333"
S = f"/subscriptions/{SUB}"
RG, NARROW, OUTSIDE, SHARED = (f"{S}/resourceGroups/{g}" for g in ("rg-etl", "rg-narrow", "rg-prod", "rg-shared"))
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
WRITES = {"PUT", "PATCH", "DELETE"}
SECRET = "Zq9-hunter2-sql-login-7f3a"  # reaches the task only through a Variable, rendered by Jinja
SAS_SIGNATURE = "sAsSiG-9f8e7d6c5b4a"  # the sig= of a blob SAS URL
SHORT_SECRET = "pw1"  # shorter than Airflow's masker minimum: must still never be stored
FIGURES: dict[str, Any] = {}

SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"


def template(*resources: dict[str, Any], parameters: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": parameters or {},
        "resources": list(resources),
        **extra,
    }


def storage(name: str = "stholes01", **extra: Any) -> dict[str, Any]:
    return {
        "type": "Microsoft.Storage/storageAccounts",
        "apiVersion": "2023-05-01",
        "name": name,
        "location": "westeurope",
        "sku": {"name": "Standard_LRS"},
        "kind": "StorageV2",
        **extra,
    }


def nested(inner: dict[str, Any], name: str = "inner", **scope: Any) -> dict[str, Any]:
    return {
        "type": "Microsoft.Resources/deployments",
        "apiVersion": "2022-09-01",
        "name": name,
        **scope,
        "properties": {"mode": "Incremental", "template": inner},
    }


def vm(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "Microsoft.Compute/virtualMachines",
        "apiVersion": "2024-03-01",
        "name": name,
        "location": "westeurope",
        **extra,
    }


def uami(group: str, name: str) -> str:
    return f"{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"


def subnet(group: str, name: str) -> str:
    return f"{group}/providers/Microsoft.Network/virtualNetworks/hub/subnets/{name}"


def spec_version(name: str) -> str:
    return f"{SHARED}/providers/Microsoft.Resources/templateSpecs/{name}/versions/1.0"


def change(rid: str, change_type: str, rtype: str) -> dict[str, Any]:
    return {"resourceId": rid, "changeType": change_type, "after": {"id": rid, "type": rtype}}


# ------------------------------------------------------------------------------------------------ cases


@dataclass(frozen=True)
class Case:
    dag_id: str
    kwargs: dict[str, Any]
    refused: tuple[str, ...] = ()
    """Substrings of the refusal; empty: the run must succeed."""
    operator: str = "deploy"


def deploy(name: str, **kwargs: Any) -> dict[str, Any]:
    return {"resource_group_name": "rg-etl", "deployment_name": name, "poll_interval": 0.2, **kwargs}


OUT_SA = f"{OUTSIDE}/providers/Microsoft.Storage/storageAccounts/stprod01"
IN_SITE = f"{NARROW}/providers/Microsoft.Web/sites/web1"
BENIGN = template(storage("stlinked01"))
MALICIOUS = template(storage("stlinked01"), nested(template(storage("stprod99")), resourceGroup="rg-prod"))
SECURE_TEMPLATE = template(
    storage("stsecure01"),
    parameters={"sqlLogin": {"type": "securestring"}, "pin": {"type": "securestring"}, "note": {"type": "string"}},
)

CASES: tuple[Case, ...] = (
    # 1. what-if Ignore is not "untouched"
    Case(
        "ignore_outside_fence",
        deploy("d-ignore-out", template=template(storage())),
        ("[outside_scope]", "what-if predicts Ignore of", "rg-prod", "allowed_scopes"),
    ),
    Case(
        "ignore_rbac",
        deploy("d-ignore-rbac", template=template(storage())),
        (
            "[rbac_change]",
            "what-if predicts Ignore of Microsoft.Authorization/roleAssignments",
            "allow_rbac_changes=True",
        ),
    ),
    Case(
        "ignore_needs_write",
        deploy("d-ignore-write", resource_group_name="rg-narrow", template=template(storage())),
        ("is not allowed Microsoft.Web/sites/write",),
    ),
    # 2. what-if diagnostics
    Case(
        "diagnostic_limit",
        deploy("d-diag", template=template(nested(template(nested(template(storage("stdeep01"))))))),
        ("[what_if_diagnostic]", "Warning NestedDeploymentShortCircuited", "allow_what_if_diagnostics=True"),
    ),
    Case(
        "diagnostic_allowed",
        deploy(
            "d-diag-ok",
            allow_what_if_diagnostics=True,
            template=template(nested(template(nested(template(storage("stdeep02")))))),
        ),
    ),
    # 3. nested deployments read from the template itself (what-if is told to say nothing)
    Case(
        "nested_literal",
        deploy("d-silent-1", template=template(nested(template(storage()), resourceGroup="rg-prod"))),
        (
            "[nested_outside_scope]",
            "deploys into /subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-prod",
        ),
    ),
    Case(
        "nested_parameter",
        deploy(
            "d-silent-2",
            parameters={"target": "rg-prod"},
            template=template(
                nested(template(storage()), resourceGroup="[parameters('target')]"),
                parameters={"target": {"type": "string"}},
            ),
        ),
        ("[nested_outside_scope]", "rg-prod"),
    ),
    Case(
        "nested_copy_loop",
        deploy(
            "d-silent-3",
            template=template(
                dict(
                    nested(template(storage()), resourceGroup="[concat('rg-', copyIndex())]"),
                    copy={"name": "l", "count": 2},
                )
            ),
        ),
        ("[nested_scope_unresolved]", "cannot be resolved before the deployment runs"),
    ),
    Case(
        "nested_subscription",
        deploy("d-silent-4", template=template(nested(template(storage()), subscriptionId=SUB))),
        ("[nested_outside_scope]",),
    ),
    Case(
        "nested_template_link",
        deploy(
            "d-silent-5",
            template=template(
                {
                    "type": "Microsoft.Resources/deployments",
                    "apiVersion": "2022-09-01",
                    "name": "linked",
                    "properties": {"mode": "Incremental", "templateLink": {"uri": "https://127.0.0.1:9/x.json"}},
                }
            ),
        ),
        ("[nested_template_link]", "allow_nested_template_links=True"),
    ),
    # 4. linked resources across the fence
    Case(
        "linked_identity",
        deploy(
            "d-uami",
            template=template(
                vm(
                    "vm1",
                    identity={"type": "UserAssigned", "userAssignedIdentities": {uami(OUTSIDE, "prod-admin"): {}}},
                )
            ),
        ),
        ("[reference_outside_scope]", "identity.userAssignedIdentities", "prod-admin", "allowed_reference_scopes"),
    ),
    Case(
        "linked_subnet_outside",
        deploy("d-subnet-out", template=template(vm("vm2", properties={"subnet": {"id": subnet(OUTSIDE, "prod")}}))),
        ("[reference_outside_scope]", "properties.subnet.id", "subnets/prod"),
    ),
    Case(
        "linked_subnet_shared",
        deploy("d-subnet-ok", template=template(vm("vm3", properties={"subnet": {"id": subnet(SHARED, "app")}}))),
    ),
    Case(
        "linked_subnet_no_join",
        deploy(
            "d-subnet-nojoin", template=template(vm("vm4", properties={"subnet": {"id": subnet(SHARED, "locked")}}))
        ),
        ("not allowed Microsoft.Network/virtualNetworks/subnets/join/action", "subnets/locked"),
    ),
    Case(
        "deployment_script",
        deploy(
            "d-script",
            template=template(
                {
                    "type": "Microsoft.Resources/deploymentScripts",
                    "apiVersion": "2023-08-01",
                    "name": "run",
                    "kind": "AzureCLI",
                    "location": "westeurope",
                    "properties": {"scriptContent": "az role assignment create ..."},
                }
            ),
        ),
        ("[deployment_script]", "runs arbitrary code", "allow_deployment_scripts=True"),
    ),
    Case(
        "key_vault_reference",
        deploy(
            "d-kv",
            template=template(storage(), parameters={"pw": {"type": "securestring"}}),
            parameters={
                "pw": {
                    "reference": {
                        "keyVault": {"id": f"{OUTSIDE}/providers/Microsoft.KeyVault/vaults/prod-kv"},
                        "secretName": "admin",
                    }
                }
            },
        ),
        ("[reference_outside_scope]", "Key Vault reference", "prod-kv"),
    ),
    Case(
        "list_keys_output",
        deploy(
            "d-keys",
            template=template(
                storage(),
                outputs={"key": {"type": "string", "value": f"[listKeys('{OUT_SA}', '2023-05-01').keys[0].value]"}},
            ),
        ),
        ("[secret_in_output]", "[reference_outside_scope]", "stprod01"),
    ),
    # 5. check-then-use
    # The query (a SAS token) comes from a Variable: it must not reach the rendered field either.
    Case("link_fetched_once", deploy("d-link", template_link="LINK:toctou?sv=2024&sig={{ var.value.sas }}")),
    Case(
        "link_malicious_first",
        deploy("d-link-bad", template_link="LINK:bad-first"),
        ("[nested_outside_scope]", "rg-prod"),
    ),
    # A spec with linked templates is sent by id, so ARM reads it again: it is re-read and compared.
    Case(
        "spec_changed",
        deploy("d-spec", template_spec_id=spec_version("changing"), allow_nested_template_links=True),
        ("changed while the preflight checked it", "templateSpecs/changing/versions/1.0"),
    ),
    Case(
        "spec_outside_fences",
        deploy("d-spec-out", template_spec_id=f"{OUTSIDE}/providers/Microsoft.Resources/templateSpecs/x/versions/1"),
        ("is outside the connection's allowed_scopes and allowed_reference_scopes", "whoever can publish there"),
    ),
    Case(
        "spec_without_version",
        deploy("d-spec-nov", template_spec_id=spec_version("changing").rsplit("/versions", 1)[0]),
        ("is not a template spec version id",),
    ),
    # Without linked templates it is read once and sent inline: a later change cannot reach the deployment.
    Case("spec_inline", deploy("d-spec-ok", template_spec_id=spec_version("inline"))),
    # 6. secure parameters never stored
    Case(
        "secure_parameters",
        deploy(
            "d-secure",
            template=SECURE_TEMPLATE,
            secure_parameters=["note"],
            parameters={
                "sqlLogin": "{{ var.value.sql_login }}",
                "pin": "{{ var.value.pin }}",
                "note": "{{ var.value.note }}",
            },
        ),
    ),
    Case(
        "parameters_as_string",
        deploy("d-str", template=SECURE_TEMPLATE, parameters="{{ var.value.sql_login }}"),
        ("parameters must render to a dict",),
    ),
)


def _link(urls: dict[str, str], value: str) -> str:
    """``LINK:<name>[?query]`` -> the emulator's URL of that linked template."""
    marker, sep, query = value.partition("?")
    return urls[marker] + sep + query if marker in urls else value


def setup_emulator(emu: ArmEmulator) -> dict[str, str]:
    """State every case needs; returns the linked-template URLs by case marker."""
    from azure.identity import ClientSecretCredential
    from azure.mgmt.resource.resources import ResourceManagementClient

    cred = ClientSecretCredential(
        TENANT, CLIENT, "x", authority=emu.url, disable_instance_discovery=True, connection_verify=emu.ca_path
    )
    client = ResourceManagementClient(
        cred,
        SUB,
        base_url=emu.url,
        credential_scopes=["https://management.azure.com/.default"],
        connection_verify=emu.ca_path,
    )
    for group in ("rg-etl", "rg-narrow", "rg-prod", "rg-shared"):
        client.resource_groups.create_or_update(group, {"location": "westeurope"})
    client.close()
    emu.set_what_if_result("d-ignore-out", changes=[change(OUT_SA, "Ignore", "Microsoft.Storage/storageAccounts")])
    emu.set_what_if_result(
        "d-ignore-rbac",
        changes=[
            change(
                f"{RG}/providers/Microsoft.Authorization/roleAssignments/ra1",
                "Ignore",
                "Microsoft.Authorization/roleAssignments",
            )
        ],
    )
    emu.set_what_if_result("d-ignore-write", changes=[change(IN_SITE, "Ignore", "Microsoft.Web/sites")])
    emu.set_permissions(NARROW, [{"actions": ["Microsoft.Resources/*", "Microsoft.Storage/*"], "notActions": []}])
    emu.set_what_if_limits(1)
    for name in ("d-silent-1", "d-silent-2", "d-silent-3", "d-silent-4", "d-silent-5"):
        emu.set_what_if_result(name, changes=[], diagnostics=[])
    emu.set_permissions(subnet(SHARED, "locked"), [{"actions": ["Microsoft.Network/virtualNetworks/subnets/read"]}])
    urls = {
        "LINK:toctou": emu.set_linked_template("toctou", [BENIGN, MALICIOUS]),
        "LINK:bad-first": emu.set_linked_template("bad-first", [MALICIOUS, BENIGN]),
    }
    from azure.core.rest import HttpRequest

    client = ResourceManagementClient(
        cred, SUB, base_url=emu.url, credential_scopes=["https://management.azure.com/.default"],
        connection_verify=emu.ca_path,
    )  # fmt: skip
    spec = f"{SHARED}/providers/Microsoft.Resources/templateSpecs/changing"
    for url, body in (
        (spec, {"location": "westeurope", "properties": {}}),
        (spec_version("changing"), {"location": "westeurope", "properties": {
            "mainTemplate": BENIGN, "linkedTemplates": [{"path": "inner.json", "template": template()}]}}),
    ):  # fmt: skip
        response = client.send_request(HttpRequest("PUT", url, params={"api-version": "2022-02-01"}, json=body))
        assert response.status_code in (200, 201), response.text()
    client.close()
    # Reads in order: the operator's, ARM's own for what-if, the operator's re-read before the PUT.
    emu.set_template_spec_versions(spec_version("changing"), [BENIGN, BENIGN, MALICIOUS])
    emu.set_template_spec_versions(spec_version("inline"), [BENIGN, MALICIOUS])
    return urls


# ------------------------------------------------------------------------------------------------ runner

RUNNER = IMPORT_DAGBAG + """
import json, os, ssl, sys, urllib.request

def recorded():
    with urllib.request.urlopen(os.environ["EMU_HTTP"] + "/_emulator/requests", timeout=30) as resp:
        return len(json.loads(resp.read())["requests"])

bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
for dag_id in sys.argv[2:]:
    print(f"BEGIN {dag_id} {recorded()}", flush=True)
    run = bag.get_dag(dag_id).test()
    state = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    print(f"END {dag_id} {recorded()} " + json.dumps({"state": str(run.state), "tasks": state}), flush=True)
"""


@dataclass
class CaseResult:
    state: str
    output: str
    requests: list[RecordedRequest]
    rendered: dict[str, Any]
    xcom: dict[str, Any]

    @property
    def writes(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests if r.method in WRITES]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, CaseResult], Path]]:
    home = tmp_path_factory.mktemp("holes_home")
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(Path(__file__).with_name("fence_holes_dags.py"), dags / "fence_holes_dags.py")
    with ArmEmulator() as emu:
        urls = setup_emulator(emu)
        cases = [
            {
                "dag_id": c.dag_id,
                "operator": c.operator,
                "kwargs": {k: _link(urls, v) if isinstance(v, str) else v for k, v in c.kwargs.items()},
            }
            for c in CASES
        ]
        (home / "cases.json").write_text(json.dumps(cases))
        connection = {
            "conn_type": "azure_resource_manager",
            "login": CLIENT,
            "password": "holes-sp-secret",
            "extra": {
                "auth_type": "client_secret",
                "tenant_id": TENANT,
                "subscription_id": SUB,
                "cloud": "custom",
                "authority": emu.url,
                "resource_manager_url": emu.url,
                "credential_scope": "https://management.azure.com/.default",
                "disable_instance_discovery": True,
                "connection_verify": emu.ca_path,
                "polling_interval": 0.2,
                "allowed_scopes": [RG, NARROW],
                "allowed_reference_scopes": [SHARED],
            },
        }
        env = airflow_env(
            home,
            port=0,
            extra={
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
                "AIRFLOW_CONN_AZURE_RESOURCE_MANAGER_DEFAULT": json.dumps(connection),
                "AIRFLOW_VAR_SQL_LOGIN": SECRET,
                "AIRFLOW_VAR_PIN": SHORT_SECRET,
                "AIRFLOW_VAR_NOTE": "note-value-told-secret",
                "AIRFLOW_VAR_SAS": SAS_SIGNATURE,
                "FENCE_HOLES_CASES": str(home / "cases.json"),
                "EMU_HTTP": emu.http_url,
            },
        )
        migrate(env)
        proc = subprocess.run(
            [sys.executable, "-c", RUNNER, str(dags), *(c.dag_id for c in CASES)],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        output = proc.stdout + proc.stderr
        (home / "run-output.txt").write_text(output)
        assert proc.returncode == 0, output[-8000:]
        recorded = emu.requests()
    db = sqlite3.connect(home / "airflow.db")
    rendered = {
        d: json.loads(f) for d, f in db.execute("select dag_id, rendered_fields from rendered_task_instance_fields")
    }
    xcoms: dict[str, dict[str, Any]] = {}
    for dag_id, key, value in db.execute("select dag_id, key, value from xcom"):
        xcoms.setdefault(dag_id, {})[key] = json.loads(value) if isinstance(value, (str, bytes)) else value
    db.close()
    out: dict[str, CaseResult] = {}
    for m in re.finditer(r"^BEGIN (\S+) (\d+)$(.*?)^END \1 (\d+) (\{[^\n]*\})$", proc.stdout, re.M | re.S):
        dag_id, first, text, last, summary = m.group(1), int(m.group(2)), m.group(3), int(m.group(4)), m.group(5)
        out[dag_id] = CaseResult(
            json.loads(summary)["state"], text, recorded[first:last], rendered.get(dag_id, {}), xcoms.get(dag_id, {})
        )
    # Task logs may go to stderr or files as well as stdout: keep the whole output for the secret checks.
    assert set(out) == {c.dag_id for c in CASES}, output[-8000:]
    yield out, home
    print("\nFIGURES " + json.dumps(FIGURES, indent=1))


@pytest.mark.parametrize("case", [c for c in CASES if c.refused], ids=lambda c: c.dag_id)
def test_hole_is_refused_before_any_write(case: Case, results: tuple[dict[str, CaseResult], Path]) -> None:
    result = results[0][case.dag_id]
    assert result.state == "failed", result.output[-6000:]
    for text in case.refused:
        assert text in result.output, (text, result.output[-6000:])
    assert result.writes == [], result.writes
    assert "Traceback" not in result.output.split("PreflightRefused")[0][-2000:] or "PreflightRefused" in result.output


@pytest.mark.parametrize("case", [c for c in CASES if not c.refused], ids=lambda c: c.dag_id)
def test_legitimate_shape_still_deploys(case: Case, results: tuple[dict[str, CaseResult], Path]) -> None:
    result = results[0][case.dag_id]
    assert result.state == "success", result.output[-6000:]
    puts = [w for w in result.writes if w[0] == "PUT" and "/deployments/" in w[1].lower()]
    assert len(puts) == 1, result.writes


def test_refusals_reach_the_access_report(results: tuple[dict[str, CaseResult], Path]) -> None:
    report = results[0]["diagnostic_limit"].xcom["access_report"]
    assert report["ok"] is False
    assert [d["code"] for d in report["what_if_diagnostics"]] == ["NestedDeploymentShortCircuited"]
    assert "what_if_diagnostic" in [v["rule"] for v in report["violations"]]
    shared = results[0]["linked_subnet_shared"].xcom["access_report"]
    assert shared["linked_access"][0]["action"] == "Microsoft.Network/virtualNetworks/subnets/join/action"


def test_linked_template_is_fetched_once_and_sent_inline(results: tuple[dict[str, CaseResult], Path]) -> None:
    result = results[0]["link_fetched_once"]
    fetches = [r for r in result.requests if r.path.lower().endswith("/linked-templates/toctou.json")]
    assert len(fetches) == 1 and not any(r.internal for r in fetches)  # ours; ARM never fetched it
    sent = [r.json() for r in result.requests if r.method in ("PUT", "POST") and "/deployments/d-link" in r.path]
    assert len(sent) == 2  # what-if and the deployment
    assert all(body["properties"]["template"] == BENIGN and "templateLink" not in body["properties"] for body in sent)
    assert "template_link fetched once and sent inline; sha256" in result.output
    assert fetches[0].query.get("sig") == [SAS_SIGNATURE]  # the real URL was fetched
    assert result.rendered["template_link"].endswith("/linked-templates/toctou.json?***")
    FIGURES["linked template fetches per deployment (ours / ARM's)"] = (len(fetches), 0)


def test_template_spec_is_read_once_and_sent_inline(results: tuple[dict[str, CaseResult], Path]) -> None:
    result = results[0]["spec_inline"]
    reads = [r for r in result.requests if r.method == "GET" and "/templatespecs/" in r.path.lower()]
    assert len(reads) == 1 and not any(r.internal for r in reads)
    sent = [r.json() for r in result.requests if r.method in ("PUT", "POST") and "/deployments/d-spec-ok" in r.path]
    assert len(sent) == 2 and all(body["properties"]["template"] == BENIGN for body in sent)  # never MALICIOUS
    FIGURES["extra ARM reads per template-spec deployment (inline / with linked templates)"] = (
        len(reads),
        len(
            [
                r
                for r in results[0]["spec_changed"].requests
                if r.method == "GET" and "/templatespecs/" in r.path.lower()
            ]
        ),
    )


def test_inline_deployment_costs_no_extra_reads(results: tuple[dict[str, CaseResult], Path]) -> None:
    """The content checks are offline: an inline deployment sends what it sent before the checks existed."""
    result = results[0]["diagnostic_allowed"]
    calls = [
        (r.method, re.sub(r"/[0-9a-f-]{20,}", "/<id>", r.path.lower()))
        for r in result.requests
        if "/oauth2/" not in r.path
    ]
    FIGURES["ARM requests, inline deployment (blocking)"] = len(calls)
    shared = results[0]["linked_subnet_shared"]
    permission_reads = [
        r for r in shared.requests if r.path.lower().endswith("/providers/microsoft.authorization/permissions")
    ]
    FIGURES["permission reads with one linked subnet in allowed_reference_scopes"] = len(permission_reads)
    assert len(permission_reads) == 2  # the target, and the subnet where the join right is needed


def test_secure_parameters_are_never_stored_or_logged(results: tuple[dict[str, CaseResult], Path]) -> None:
    by_dag, home = results
    result = by_dag["secure_parameters"]
    assert result.state == "success", result.output[-6000:]
    shown = result.rendered["parameters"]
    assert shown["sqlLogin"] == "***" and shown["pin"] == "***" and shown["note"] == "***"
    (put,) = [r.json() for r in result.requests if r.method == "PUT" and "/deployments/d-secure" in r.path]
    assert put["properties"]["parameters"]["sqlLogin"] == {"value": SECRET}  # ARM still gets the real value
    assert put["properties"]["parameters"]["pin"] == {"value": SHORT_SECRET}
    stored = (home / "airflow.db").read_bytes()
    logs = b"".join(p.read_bytes() for p in (home / "logs").rglob("*") if p.is_file())
    for secret in (SECRET, "note-value-told-secret", SAS_SIGNATURE):
        assert secret.encode() not in stored and secret.encode() not in logs
        assert secret not in "".join(r.output for r in by_dag.values())
    assert f'"{SHORT_SECRET}"'.encode() not in stored
