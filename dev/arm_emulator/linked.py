"""Linked templates that change between fetches, and how ARM resolves ``templateLink``.

``GET /linked-templates/{name}.json`` (both listeners, no authentication, query string ignored, like
a storage blob behind a SAS URL) returns ``versions[0]`` on the first fetch, ``versions[1]`` on the
second, …, the last one repeating; 404 ``BlobNotFound`` for unknown names. These GETs are recorded.

A deployment / what-if / validate whose ``templateLink.uri`` points at that route *of this
emulator* (a loopback host and one of its listener ports) is resolved by "ARM" fetching through the
same sequence: one fetch per request (and per nested deployment that links to it), recorded as a
``GET`` of that path with ``internal: true`` and the header ``x-ms-arm-emulator-fetch: templateLink``.
An unknown name there fails the request with 400 ``InvalidContentLink``. ``templateLink.id`` goes to
``template_specs.resolve``. Any other link is not fetched (``None``: accepted as is).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import template_specs
from .expansion import LinkResolver
from .state import LinkedTemplate, State
from .templates import TemplateError
from .web import Request, Response

PATH = re.compile(r"^/linked-templates/(?P<name>[^/]+?)(?:\.json)?$", re.I)
INTERNAL_HEADER = "x-ms-arm-emulator-fetch"
_LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|localhost)$", re.I)


def key(name: str) -> str:
    name = name.strip("/")
    return (name[: -len(".json")] if name.lower().endswith(".json") else name).lower()


def set_versions(state: State, name: str, versions: list[Any]) -> str:
    if not versions:
        raise ValueError("versions must not be empty")
    state.linked_templates[key(name)] = LinkedTemplate(list(versions))
    return f"/linked-templates/{key(name)}.json"


def _next(state: State, name: str, *, advance: bool = True) -> Any | None:
    entry = state.linked_templates.get(key(name))
    if entry is None:
        return None
    content = entry.versions[min(entry.fetches, len(entry.versions) - 1)]
    if advance:
        entry.fetches += 1
    return copy.deepcopy(content)


def _etag(content: Any) -> str:
    return '"0x' + hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16].upper() + '"'


def route(state: State, req: Request) -> Response | None:
    """The blob-like route (``None`` for any other path)."""
    m = PATH.match(req.path)
    if m is None:
        return None
    if req.method not in ("GET", "HEAD"):
        return Response(405, {"error": {"code": "UnsupportedHttpVerb", "message": f"{req.method} is not allowed."}})
    content = _next(state, m.group("name"), advance=req.method == "GET")  # HEAD: no fetch
    if content is None:
        return Response(404, {"error": {"code": "BlobNotFound", "message": "The specified blob does not exist."}}, {})
    return Response(200, content, {"ETag": _etag(content), "x-ms-blob-type": "BlockBlob"})


def _ours(state: State, uri: str) -> str | None:
    """The linked-template name if ``uri`` is this emulator's route, else ``None``."""
    try:
        parts = urlsplit(uri)
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not _LOOPBACK.match(parts.hostname or ""):
        return None
    if state.own_ports and port not in state.own_ports:
        return None
    m = PATH.match(unquote(parts.path))
    return m.group("name") if m else None


def _record_fetch(state: State, uri: str, status: int) -> None:
    parts = urlsplit(uri)
    state.requests.append(
        {
            "method": "GET",
            "path": unquote(parts.path),
            "query": parse_qs(parts.query, keep_blank_values=True),
            "headers": {INTERNAL_HEADER: "templateLink", "user-agent": "AzureResourceManager (arm-emulator)"},
            "host": parts.netloc,
            "scheme": parts.scheme.lower(),
            "body": "",
            "identity": None,
            "status": status,
            "time": time.time(),
            "internal": True,
        }
    )


def fetch_link(state: State, link: dict[str, Any]) -> dict[str, Any] | None:
    """ARM's own fetch of ``templateLink`` (see the module docstring)."""
    spec_id = link.get("id")
    if isinstance(spec_id, str) and spec_id:
        return template_specs.resolve(state, spec_id)
    uri = link.get("uri")
    if not isinstance(uri, str) or (name := _ours(state, uri)) is None:
        return None
    content = _next(state, name)
    _record_fetch(state, uri, 200 if content is not None else 404)
    if content is None:
        raise TemplateError(
            "InvalidContentLink",
            f"Unable to download deployment content from '{uri}'. The tracking Id is "
            "'00000000-0000-0000-0000-000000000000'. Please see https://aka.ms/arm-deploy for usage details.",
        )
    if not isinstance(content, dict):
        raise TemplateError("InvalidContentLink", f"The content downloaded from '{uri}' is not a JSON object.")
    template: dict[str, Any] = content
    return template


def resolver(state: State) -> LinkResolver:
    def resolve(link: dict[str, Any]) -> dict[str, Any] | None:
        return fetch_link(state, link)

    return resolve
