"""Linked templates that change between fetches, and template specs (PUT/GET, changing versions,
deployments resolving ``templateLink.id``), driven by the real SDK and plain HTTP."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from dev.arm_emulator.client import ArmEmulator
from tests.emulator.support import SUB, Clients

pytestmark = pytest.mark.integration

SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-a"
SPEC = f"{RG}/providers/Microsoft.Resources/templateSpecs/storage"
VERSION = f"{SPEC}/versions/1.0"
SPEC_API = "2022-02-01"


def _storage_template(*names: str, **extra: Any) -> dict[str, Any]:
    return {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "resources": [
            {
                "type": "Microsoft.Storage/storageAccounts",
                "apiVersion": "2023-05-01",
                "name": n,
                "location": "westeurope",
            }
            for n in names
        ],
        **extra,
    }


def _setup(clients: Clients) -> None:
    clients.resources.resource_groups.create_or_update("rg-a", {"location": "westeurope"})


def _link_body(link: dict[str, Any]) -> dict[str, Any]:
    return {"properties": {"mode": "Incremental", "templateLink": link}}


def _what_if_names(clients: Clients, body: dict[str, Any]) -> list[str]:
    result = clients.deployments.deployments.begin_what_if("rg-a", "wi", body).result()
    return [c.resource_id.rsplit("/", 1)[-1] for c in result.properties.changes]


def _deploy_names(clients: Clients, name: str, body: dict[str, Any]) -> list[str]:
    result = clients.deployments.deployments.begin_create_or_update("rg-a", name, body).result()
    return [r.id.rsplit("/", 1)[-1] for r in result.properties.output_resources]


def test_linked_template_sequence_over_plain_http(emu: ArmEmulator) -> None:
    v1, v2 = _storage_template("stv1"), _storage_template("stv2")
    url = emu.set_linked_template("main", [v1, v2])
    assert url == f"{emu.url}/linked-templates/main.json" == emu.linked_template_url("main.json")

    first = requests.get(url + "?sv=2022-11-02&sig=abc", verify=emu.ca_path, timeout=10)  # no auth, SAS ignored
    second = requests.get(emu.linked_template_url("main", http=True), timeout=10)
    third = requests.get(url, verify=emu.ca_path, timeout=10)
    assert [r.json() for r in (first, second, third)] == [v1, v2, v2]
    assert first.headers["ETag"] != second.headers["ETag"] == third.headers["ETag"]
    missing = requests.get(f"{emu.url}/linked-templates/nope.json", verify=emu.ca_path, timeout=10)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "BlobNotFound")

    fetches = emu.requests(r"^/linked-templates/main\.json$")
    assert [(r.method, r.status, r.scheme, r.internal) for r in fetches] == [
        ("GET", 200, "https", False),
        ("GET", 200, "http", False),
        ("GET", 200, "https", False),
    ]
    assert fetches[0].query == {"sv": ["2022-11-02"], "sig": ["abc"]}


def test_template_changes_between_what_if_and_deployment(emu: ArmEmulator, clients: Clients) -> None:
    _setup(clients)
    url = emu.set_linked_template("main", [_storage_template("stv1"), _storage_template("stv2")])
    body = _link_body({"uri": url + "?sig=secret"})
    assert _what_if_names(clients, body) == ["stv1"]
    assert _deploy_names(clients, "linked", body) == ["stv2"]
    assert _what_if_names(clients, _link_body({"uri": emu.linked_template_url("main", http=True)})) == ["stv2"]

    fetches = emu.requests(r"^/linked-templates/")
    assert [(r.method, r.status, r.internal) for r in fetches] == [("GET", 200, True)] * 3
    assert fetches[0].headers["x-ms-arm-emulator-fetch"] == "templateLink"
    assert fetches[0].query == {"sig": ["secret"]}
    got = clients.deployments.deployments.get("rg-a", "linked")
    assert got.properties.template_link.uri == url + "?sig=secret"  # echoed as sent

    # each request is one fetch: the whatIf request, not its polls
    whatif = [r.path.lower() for r in emu.requests() if r.path.endswith("/whatIf") or r.path.startswith("/linked")]
    assert whatif[:2] == [
        f"{RG}/providers/Microsoft.Resources/deployments/wi/whatIf".lower(),
        "/linked-templates/main.json",
    ]


def test_nested_linked_template_and_failures(emu: ArmEmulator, clients: Clients) -> None:
    _setup(clients)
    inner = emu.set_linked_template(
        "inner", [_storage_template("[parameters('n')]", parameters={"n": {"type": "string"}})]
    )
    outer = _storage_template("stouter")
    outer["resources"].append(
        {
            "type": "Microsoft.Resources/deployments",
            "apiVersion": "2022-09-01",
            "name": "child",
            "properties": {
                "mode": "Incremental",
                "templateLink": {"uri": inner},
                "parameters": {"n": {"value": "stin"}},
            },
        }
    )
    body = {"properties": {"mode": "Incremental", "template": outer}}
    assert _what_if_names(clients, body) == ["stouter", "stin"]
    assert len(emu.requests(r"^/linked-templates/inner")) == 1

    with pytest.raises(HttpResponseError) as err:
        clients.deployments.deployments.begin_validate(
            "rg-a", "v", _link_body({"uri": emu.linked_template_url("unknown")})
        ).result()
    assert err.value.status_code == 400 and err.value.error.code == "InvalidContentLink"
    assert emu.requests(r"^/linked-templates/unknown")[0].status == 404

    foreign = _link_body({"uri": "https://example.invalid/t.json"})
    assert _what_if_names(clients, foreign) == []  # accepted without fetching, as before
    assert len(emu.requests(r"^/linked-templates/")) == 2


def _arm(clients: Clients, method: str, path: str, body: Any = None) -> Any:
    request = HttpRequest(method, f"{path}?api-version={SPEC_API}", json=body)
    return clients.deployments.send_request(request)


def _put_spec(clients: Clients, main: dict[str, Any]) -> Any:
    spec = _arm(clients, "PUT", SPEC, {"location": "westeurope", "properties": {"description": "Storage"}})
    assert spec.status_code == 201
    return _arm(
        clients,
        "PUT",
        VERSION,
        {"location": "westeurope", "properties": {"mainTemplate": main, "linkedTemplates": [], "description": "v1"}},
    )


def test_template_spec_put_get(clients: Clients) -> None:
    _setup(clients)
    orphan = _arm(clients, "PUT", f"{RG}/providers/Microsoft.Resources/templateSpecs/x/versions/1", {"properties": {}})
    assert (orphan.status_code, orphan.json()["error"]["code"]) == (404, "ParentResourceNotFound")

    created = _put_spec(clients, _storage_template("stspec"))
    assert created.status_code == 201
    got = _arm(clients, "GET", VERSION)
    body = got.json()
    assert got.status_code == 200
    assert (body["id"], body["name"], body["type"]) == (VERSION, "1.0", "Microsoft.Resources/templateSpecs/versions")
    assert body["location"] == "westeurope" and body["properties"]["description"] == "v1"
    assert body["properties"]["mainTemplate"] == _storage_template("stspec")
    assert body["systemData"]["lastModifiedAt"].endswith("Z")
    assert body["etag"] == got.headers["ETag"] and not body["etag"].startswith("W/")

    spec = _arm(clients, "GET", SPEC).json()
    assert spec["type"] == "Microsoft.Resources/templateSpecs" and list(spec["properties"]["versions"]) == ["1.0"]
    assert [v["name"] for v in _arm(clients, "GET", f"{SPEC}/versions").json()["value"]] == ["1.0"]

    missing = _arm(clients, "GET", f"{SPEC}/versions/9.9")
    error = missing.json()["error"]
    assert missing.status_code == 404 and error["code"] == "ResourceNotFound"
    assert set(error) >= {"code", "message", "details"} and "9.9" in error["message"]
    assert _arm(clients, "GET", f"{RG}/providers/Microsoft.Resources/templateSpecs/nope").status_code == 404


def test_template_spec_version_changes_between_reads(emu: ArmEmulator, clients: Clients) -> None:
    _setup(clients)
    _put_spec(clients, _storage_template("st0"))
    assert emu.set_template_spec_versions(VERSION, [_storage_template("st1"), _storage_template("st2")]) == VERSION
    reads = [_arm(clients, "GET", VERSION) for _ in range(3)]
    mains = [r.json()["properties"]["mainTemplate"]["resources"][0]["name"] for r in reads]
    assert mains == ["st1", "st2", "st2"]
    etags = [r.headers["ETag"] for r in reads]
    assert etags[0] != etags[1] == etags[2]
    modified = [r.json()["systemData"]["lastModifiedAt"] for r in reads]
    assert modified[0] < modified[1] == modified[2]


def test_deployment_resolves_template_spec(emu: ArmEmulator, clients: Clients) -> None:
    _setup(clients)
    _put_spec(clients, _storage_template("stcurrent"))
    body = _link_body({"id": VERSION})
    assert _deploy_names(clients, "from-spec", body) == ["stcurrent"]

    emu.set_template_spec_versions(VERSION, [_storage_template("stchecked"), _storage_template("stswapped")])
    assert _what_if_names(clients, body) == ["stchecked"]  # one read
    assert _deploy_names(clients, "from-spec-2", body) == ["stswapped"]  # the version changed in between
    assert _arm(clients, "GET", VERSION).json()["properties"]["mainTemplate"]["resources"][0]["name"] == "stswapped"

    lowered = _link_body({"id": VERSION.lower()})
    assert _what_if_names(clients, lowered) == ["stswapped"]
    unknown = _link_body({"id": f"{SPEC}/versions/unknown"})
    assert _what_if_names(clients, unknown) == []  # not stored: accepted without resolving, as before


def test_set_template_spec_versions_creates_the_version(emu: ArmEmulator, clients: Clients) -> None:
    _setup(clients)
    emu.set_template_spec_versions(VERSION, [_storage_template("stonly")])
    assert _what_if_names(clients, _link_body({"id": VERSION})) == ["stonly"]
    assert _arm(clients, "GET", SPEC).json()["location"] == "westeurope"
