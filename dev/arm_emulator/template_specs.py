"""``Microsoft.Resources/templateSpecs`` and their ``versions`` (api-version ``2022-02-01``).

PUT/GET/DELETE ``/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Resources/templateSpecs/{name}``
and ``…/templateSpecs/{name}/versions[/{version}]``. A version PUT needs its template spec (404
``ParentResourceNotFound``); unknown ones get 404 ``ResourceNotFound``. Bodies carry a strong ``etag``
(also the ``ETag`` header) derived from the content, and ``systemData``.

``set_template_spec_versions(version_id, contents)`` makes successive reads of that version (GETs and
deployments resolving ``templateLink.id``) return ``contents[0]``, ``contents[1]``, … as its
``mainTemplate``, the last one repeating: someone changes the version between two reads.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import re
import time
from typing import Any

from . import resource_groups
from .state import State, TemplateSpec, TemplateSpecVersion
from .web import ArmFailure, Request, Response, arm_error

_SPEC = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.resources/templatespecs"
    r"/(?P<name>[^/]+)(?:/(?P<versions>versions)(?:/(?P<version>[^/]+))?)?$",
    re.I,
)
PATTERNS = (_SPEC,)
SPEC_TYPE = "Microsoft.Resources/templateSpecs"
VERSION_TYPE = "Microsoft.Resources/templateSpecs/versions"


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _etag(*parts: Any) -> str:
    return '"' + hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32] + '"'


def _system_data(created: float, modified: float, by: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {"createdAt": _iso(created), "lastModifiedAt": _iso(modified)}
    if by:
        data.update(createdBy=by, createdByType="Application", lastModifiedBy=by, lastModifiedByType="Application")
    return data


def _not_found(what: str, rg: str) -> ArmFailure:
    return ArmFailure(
        404,
        "ResourceNotFound",
        f"The Resource '{what}' under resource group '{rg}' was not found. For more details please go to "
        "https://aka.ms/ARMResourceNotFoundFix",
    )


def _body(req: Request) -> dict[str, Any]:
    try:
        body = req.json()
    except ValueError as exc:
        raise ArmFailure(400, "InvalidRequestContent", f"The request content was invalid: {exc}") from exc
    if not isinstance(body, dict):
        raise ArmFailure(400, "InvalidRequestContent", "The request content must be a JSON object.")
    return body


def spec_json(state: State, spec: TemplateSpec) -> dict[str, Any]:
    prefix = spec.id.lower() + "/versions/"
    versions = {
        v.name: {
            "timeCreated": _iso(v.created),
            "timeModified": _iso(v.modified),
            **({"description": v.properties["description"]} if v.properties.get("description") else {}),
        }
        for k, v in state.template_spec_versions.items()
        if k.startswith(prefix)
    }
    return {
        "id": spec.id,
        "name": spec.name,
        "type": SPEC_TYPE,
        "location": spec.location,
        "tags": dict(spec.tags),
        "etag": _etag(spec.location, spec.properties, spec.tags),
        "properties": {**spec.properties, "versions": versions},
        "systemData": _system_data(spec.created, spec.modified, spec.created_by),
    }


def version_json(v: TemplateSpecVersion) -> dict[str, Any]:
    return {
        "id": v.id,
        "name": v.name,
        "type": VERSION_TYPE,
        "location": v.location,
        "tags": dict(v.tags),
        "etag": _etag(v.location, v.properties, v.tags),
        "properties": copy.deepcopy(v.properties),
        "systemData": _system_data(v.created, v.modified, v.created_by),
    }


def read(v: TemplateSpecVersion) -> None:
    """One read: advance a configured sequence (the version changes under the reader)."""
    if v.sequence:
        main = v.sequence[min(v.reads, len(v.sequence) - 1)]
        if main != v.properties.get("mainTemplate"):
            v.properties["mainTemplate"] = copy.deepcopy(main)
            v.modified = time.time()
    v.reads += 1


def resolve(state: State, version_id: str) -> dict[str, Any] | None:
    """The current ``mainTemplate`` of a stored version (one read), or ``None`` if not stored."""
    v = state.template_spec_versions.get(version_id.rstrip("/").lower())
    if v is None:
        return None
    read(v)
    main = v.properties.get("mainTemplate")
    return copy.deepcopy(main) if isinstance(main, dict) else None


def set_sequence(state: State, version_id: str, contents: list[Any]) -> str:
    """Control plane: successive reads return successive mainTemplates (created if absent)."""
    if not contents or not all(isinstance(c, dict) for c in contents):
        raise ValueError("contents must be a non-empty list of template objects")
    m = _SPEC.match(version_id.rstrip("/"))
    if m is None or not m.group("version"):
        raise ValueError(f"not a template spec version id: {version_id!r}")
    v = state.template_spec_versions.get(version_id.rstrip("/").lower())
    if v is None:
        group = state.get_rg(m.group("sub"), m.group("rg"))
        location = group.location if group else "westeurope"
        spec = _ensure_spec(state, m, location)
        now = time.time()
        v = TemplateSpecVersion(
            f"{spec.id}/versions/{m.group('version')}", m.group("version"), spec.id, location,
            {"mainTemplate": copy.deepcopy(contents[0])}, {}, now, now,
        )  # fmt: skip
        state.template_spec_versions[v.id.lower()] = v
    v.sequence = [copy.deepcopy(c) for c in contents]
    v.reads = 0
    return v.id


def _spec_id(m: re.Match[str]) -> str:
    return f"/subscriptions/{m.group('sub')}/resourceGroups/{m.group('rg')}/providers/{SPEC_TYPE}/{m.group('name')}"


def _ensure_spec(state: State, m: re.Match[str], location: str) -> TemplateSpec:
    spec_id = _spec_id(m)
    spec = state.template_specs.get(spec_id.lower())
    if spec is None:
        now = time.time()
        spec = TemplateSpec(spec_id, m.group("name"), location, {}, {}, now, now)
        state.template_specs[spec_id.lower()] = spec
    return spec


def route(state: State, req: Request, path: str) -> Response | None:
    m = _SPEC.match(path)
    if m is None:
        return None
    resource_groups.require(state, m.group("sub"), m.group("rg"))
    if m.group("version"):
        return _version(state, req, m)
    if m.group("versions"):
        if req.method != "GET":
            return None
        spec = _require_spec(state, m)
        prefix = spec.id.lower() + "/versions/"
        items = [version_json(v) for k, v in state.template_spec_versions.items() if k.startswith(prefix)]
        return Response(200, {"value": items, "nextLink": None})
    return _spec(state, req, m)


def _require_spec(state: State, m: re.Match[str]) -> TemplateSpec:
    spec = state.template_specs.get(_spec_id(m).lower())
    if spec is None:
        raise _not_found(f"{SPEC_TYPE}/{m.group('name')}", m.group("rg"))
    return spec


def _spec(state: State, req: Request, m: re.Match[str]) -> Response:
    spec_id = _spec_id(m)
    spec = state.template_specs.get(spec_id.lower())
    if req.method == "GET":
        body = spec_json(state, _require_spec(state, m))
        return Response(200, body, {"ETag": body["etag"]})
    if req.method == "DELETE":
        if spec is None:
            return Response(204)
        prefix = spec_id.lower() + "/versions/"
        for k in [k for k in state.template_spec_versions if k.startswith(prefix)]:
            del state.template_spec_versions[k]
        del state.template_specs[spec_id.lower()]
        return Response(200)
    if req.method != "PUT":
        return arm_error(405, "MethodNotAllowed", f"The method '{req.method}' is not allowed on a template spec.")
    body = _body(req)
    location = body.get("location") or (spec.location if spec else None)
    if not isinstance(location, str) or not location:
        return arm_error(400, "LocationRequired", "The location property is required for this definition.")
    raw_props = body.get("properties")
    given: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
    props = {k: v for k, v in given.items() if k in ("description", "displayName", "metadata")}
    now = time.time()
    created = spec is None
    if spec is None:
        spec = TemplateSpec(spec_id, m.group("name"), location, props, {}, now, now, _caller(req))
        state.template_specs[spec_id.lower()] = spec
    spec.location, spec.properties, spec.modified = location, props, now
    spec.tags = dict(body.get("tags") or {})
    out = spec_json(state, spec)
    return Response(201 if created else 200, out, {"ETag": out["etag"]})


def _version(state: State, req: Request, m: re.Match[str]) -> Response:
    spec_id = _spec_id(m)
    version_id = f"{spec_id}/versions/{m.group('version')}"
    v = state.template_spec_versions.get(version_id.lower())
    what = f"{VERSION_TYPE}/{m.group('name')}/{m.group('version')}"
    if req.method == "GET":
        if v is None:
            raise _not_found(what, m.group("rg"))
        read(v)
        out = version_json(v)
        return Response(200, out, {"ETag": out["etag"]})
    if req.method == "DELETE":
        if v is None:
            return Response(204)
        del state.template_spec_versions[version_id.lower()]
        return Response(200)
    if req.method != "PUT":
        return arm_error(405, "MethodNotAllowed", f"The method '{req.method}' is not allowed on a version.")
    spec = state.template_specs.get(spec_id.lower())
    if spec is None:
        return arm_error(
            404,
            "ParentResourceNotFound",
            f"Can not perform requested operation on nested resource. Parent resource '{m.group('name')}' not found.",
        )
    body = _body(req)
    props = body.get("properties")
    if not isinstance(props, dict) or not isinstance(props.get("mainTemplate"), dict):
        return arm_error(
            400, "InvalidRequestContent", "The request content was invalid: 'properties.mainTemplate' is required."
        )
    now = time.time()
    created = v is None
    if v is None:
        v = TemplateSpecVersion(
            version_id, m.group("version"), spec.id, str(body.get("location") or spec.location),
            {}, {}, now, now, _caller(req),
        )  # fmt: skip
        state.template_spec_versions[version_id.lower()] = v
    v.properties = copy.deepcopy(props)
    v.tags = dict(body.get("tags") or {})
    v.location = str(body.get("location") or v.location)
    v.modified, v.sequence, v.reads = now, [], 0
    out = version_json(v)
    return Response(201 if created else 200, out, {"ETag": out["etag"]})


def _caller(req: Request) -> str | None:
    oid = (req.identity or {}).get("oid")
    return str(oid) if oid else None
