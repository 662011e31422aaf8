"""Routes of the Graph emulator: the Entra token endpoint (+ OIDC discovery for msal) and Graph v1.0."""

from __future__ import annotations

import datetime
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from dev.emulator_kit.web import EmulatorApp, Request, Response

from . import control, delta, listing, tokens
from .directory import KINDS, ODATA_TYPES, Directory, NotFound
from .queries import Pages, QueryError

DEFAULT_TENANT_ID = "11111111-1111-1111-1111-111111111111"
DEFAULT_ROLES = ("User.Read.All", "GroupMember.Read.All", "Application.Read.All")
# Application permissions that allow each collection (any one of them).
REQUIRED_ROLES = {
    "users": {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"},
    "groups": {"GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All",
               "Directory.ReadWrite.All"},
    "servicePrincipals": {"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All",
                          "Directory.ReadWrite.All"},
}  # fmt: skip
_KIND = "(users|groups|servicePrincipals)"
OIDC_PATH = re.compile(r"^/(?P<tenant>[^/]+)(?P<v2>/v2\.0)?/\.well-known/openid-configuration$", re.I)
TOKEN_PATH = re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token$", re.I)
DELTA_PATH = re.compile(rf"^/v1\.0/{_KIND}/(?:delta|microsoft\.graph\.delta(?:\(\))?)/?$", re.I)
OBJECT_PATH = re.compile(rf"^/v1\.0/{_KIND}/(?P<id>[^/]+)/?$", re.I)
MEMBER_OF_PATH = re.compile(r"^/v1\.0/users/(?P<id>[^/]+)/memberOf/?$", re.I)
MEMBERS_PATH = re.compile(r"^/v1\.0/groups/(?P<id>[^/]+)/members/?$", re.I)
SP_LIST_PATH = re.compile(r"^/v1\.0/servicePrincipals/?$", re.I)
ASSIGNED_TO_PATH = re.compile(r"^/v1\.0/servicePrincipals/(?P<id>[^/]+)/appRoleAssignedTo/?$", re.I)
# Query options the emulator reads (also without the "$", as Graph allows).
_OPTIONS = ("$select", "$filter", "$top", "$skiptoken", "$deltatoken", *delta.UNSUPPORTED_OPTIONS)
_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class App:
    secret: str | None  # None: any secret (or a client assertion naming the app) is accepted
    roles: list[str]


@dataclass
class Settings:
    page_size: int = 100
    members_page_size: int = 100
    token_lifetime: int = 3599
    filter_limit: int = delta.GROUP_FILTER_LIMIT  # ids per groups/delta $filter (lower it to see a refusal)


@dataclass
class GraphState:
    directory: Directory = field(default_factory=Directory)
    tokens: delta.DeltaTokens = field(default_factory=delta.DeltaTokens)
    pages: Pages = field(default_factory=Pages)
    settings: Settings = field(default_factory=Settings)
    apps: dict[str, App] = field(default_factory=dict)


def kind_of(segment: str) -> str:
    for kind in KINDS:
        if kind.lower() == segment.lower():
            return kind
    raise ValueError(segment)


def graph_error(status: int, code: str, message: str, req: Request | None = None) -> Response:
    request_id = str(uuid.uuid4())
    inner = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": (req.headers.get("client-request-id") if req else None) or request_id,
    }
    return Response(status, {"error": {"code": code, "message": message, "innerError": inner}})


def oauth_error(status: int, error: str, description: str, code: int) -> Response:
    return Response(
        status,
        {"error": error, "error_description": f"AADSTS{code}: {description}", "error_codes": [code],
         "timestamp": "", "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())},
    )  # fmt: skip


class GraphApp(EmulatorApp):
    name = "GraphEmulator"
    default_fault_path = r"^/v1\.0/"

    def __init__(self, tenant_id: str = DEFAULT_TENANT_ID, apps: dict[str, str] | None = None) -> None:
        super().__init__()
        self.tenant_id = tenant_id
        self.initial_apps = dict(apps or {})
        self.state = GraphState()
        self.reset_state()
        control.register(self)

    def reset_state(self) -> None:
        self.state = GraphState()
        for client_id, secret in self.initial_apps.items():
            self.state.apps[client_id] = App(secret, list(DEFAULT_ROLES))

    def before_request(self) -> None:
        self.state.directory.expire()

    def fault_response(self, status: int, retry_after: int) -> Response:
        code, message = {
            429: ("TooManyRequests", "Too many requests."),
            503: ("serviceNotAvailable", "The service is temporarily unavailable. Please try again later."),
        }.get(status, ("generalException", "An unexpected error occurred."))
        return graph_error(status, code, message)

    # -- API -------------------------------------------------------------------------------

    def serve(self, req: Request) -> tuple[Response, str, dict[str, Any]]:
        if req.method == "GET" and (m := OIDC_PATH.match(req.path)):
            return (
                self._openid_configuration(req, m.group("tenant"), bool(m.group("v2"))),
                "/{tenant}/v2.0/.well-known/openid-configuration",
                {},
            )
        if m := TOKEN_PATH.match(req.path):
            token_resp, client_id = self._token(req, m.group("tenant"))
            return token_resp, "/{tenant}/oauth2/v2.0/token", {"client_id": client_id}
        if not req.path.lower().startswith("/v1.0/"):
            return graph_error(404, "NotFound", f"{req.path} is not served by the Graph emulator", req), "", {}
        claims, problem = self._authenticate(req)
        resp = problem
        extra = {"appid": claims.get("appid") if claims else None}
        route = self._route_template(req.path)
        if resp is None:
            try:
                resp = self._graph(req, claims or {})
            except NotFound as exc:
                resp = graph_error(
                    404,
                    "Request_ResourceNotFound",
                    f"Resource '{exc.args[0]}' does not exist or one of its queried reference-property objects "
                    "are not present.",
                    req,
                )
            except QueryError as exc:
                resp = graph_error(exc.status, exc.code, exc.message, req)
        resp.headers.setdefault("request-id", str(uuid.uuid4()))
        resp.headers["client-request-id"] = req.headers.get("client-request-id") or resp.headers["request-id"]
        return resp, route, extra

    @staticmethod
    def _resolve(path: str) -> tuple[str, str, str]:
        """(collection the permission check uses, action, object id) of a Graph path."""
        if m := DELTA_PATH.match(path):
            return kind_of(m.group(1)), "delta", ""
        if m := MEMBER_OF_PATH.match(path):
            return "groups", "memberOf", m.group("id")
        if m := MEMBERS_PATH.match(path):
            return "groups", "members", m.group("id")
        if SP_LIST_PATH.match(path):
            return "servicePrincipals", "list", ""
        if m := ASSIGNED_TO_PATH.match(path):
            return "servicePrincipals", "appRoleAssignedTo", m.group("id")
        if m := OBJECT_PATH.match(path):
            return kind_of(m.group(1)), "object", m.group("id")
        return "", "", ""

    @classmethod
    def _route_template(cls, path: str) -> str:
        kind, action, _ = cls._resolve(path)
        templates = {"delta": f"/v1.0/{kind}/delta", "memberOf": "/v1.0/users/{id}/memberOf",
                     "members": "/v1.0/groups/{id}/members", "object": f"/v1.0/{kind}/{{id}}",
                     "list": "/v1.0/servicePrincipals",
                     "appRoleAssignedTo": "/v1.0/servicePrincipals/{id}/appRoleAssignedTo"}  # fmt: skip
        return templates.get(action, path)

    def _authenticate(self, req: Request) -> tuple[dict[str, Any] | None, Response | None]:
        auth = req.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not token:
            resp = graph_error(401, "InvalidAuthenticationToken", "Access token is empty.", req)
        else:
            claims, problem = tokens.verify(token)
            if claims is not None:
                return claims, None
            resp = graph_error(401, "InvalidAuthenticationToken", problem, req)
        resp.headers["WWW-Authenticate"] = (
            f'Bearer realm="", authorization_uri="https://login.microsoftonline.com/{self.tenant_id}'
            f'/oauth2/authorize", client_id="{tokens.GRAPH_APP_ID}"'
        )
        return None, resp

    def _graph(self, req: Request, claims: dict[str, Any]) -> Response:
        if req.method != "GET":
            return graph_error(405, "Request_BadRequest", "The emulator serves GET requests only.", req)
        kind, action, object_id = self._resolve(req.path)
        if not action:
            return graph_error(400, "BadRequest", f"Resource not found for the segment '{req.path}'.", req)
        if not REQUIRED_ROLES[kind] & set(claims.get("roles") or []):
            return graph_error(
                403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.", req
            )
        directory = self.state.directory
        context = f"{req.base_url}/v1.0/$metadata#directoryObjects"
        if action == "delta":
            return self._delta(req, kind)
        params = {name: req.param(name, name.lstrip("$")) for name in _OPTIONS}
        if action == "list":
            return Response(200, listing.service_principals(directory, self.state.pages, params, req.base_url))
        if action == "appRoleAssignedTo":
            body = listing.app_role_assigned_to(directory, self.state.pages, object_id, params, req.base_url)
            return Response(200, body)
        if action == "memberOf":
            directory.get("users", object_id)
            groups = [{"@odata.type": "#microsoft.graph.group", "id": g.id, "displayName": g.props.get("displayName")}
                      for g in directory.groups_of(object_id)]  # fmt: skip
            return Response(200, {"@odata.context": context, "value": groups})
        if action == "members":
            directory.get("groups", object_id)
            members = [{"@odata.type": ODATA_TYPES[k], "id": i} for i, k in directory.present_members(object_id)]
            return Response(200, {"@odata.context": context, "value": members})
        entry = directory.live(kind, object_id)
        if entry is None:
            raise NotFound(object_id)
        try:
            select = delta.parse_select(kind, req.param("$select", "select"))
        except ValueError as exc:
            return graph_error(400, "BadRequest", str(exc), req)
        body = {"@odata.context": f"{req.base_url}/v1.0/$metadata#{kind}/$entity", "id": entry.id}
        body.update({k: entry.props[k] for k in select if k in entry.props})
        return Response(200, body)

    def _delta(self, req: Request, kind: str) -> Response:
        prefer = req.headers.get("prefer", "").lower()
        settings = self.state.settings
        page_size = settings.page_size
        if m := re.search(r"odata\.maxpagesize=(\d+)", prefer):
            page_size = min(int(m.group(1)), 999)
        params = {name: req.param(name, name.lstrip("$")) for name in _OPTIONS}
        minimal = "return=minimal" in prefer
        body = delta.start_or_continue(
            self.state.directory, self.state.tokens, kind, params, minimal=minimal, page_size=page_size,
            members_page_size=settings.members_page_size, base_url=req.base_url, filter_limit=settings.filter_limit,
        )  # fmt: skip
        resp = Response(200, body)
        if minimal:
            resp.headers["Preference-Applied"] = "return=minimal"
        return resp

    # -- Entra -----------------------------------------------------------------------------

    def _openid_configuration(self, req: Request, tenant: str, v2: bool) -> Response:
        if tenant.lower() != self.tenant_id.lower():
            return oauth_error(400, "invalid_tenant", f"Tenant '{tenant}' not found.", 90002)
        base = f"{req.base_url}/{self.tenant_id}"
        oauth = f"{base}/oauth2/v2.0" if v2 else f"{base}/oauth2"
        return Response(
            200,
            {"token_endpoint": f"{base}/oauth2/v2.0/token", "authorization_endpoint": f"{oauth}/authorize",
             "issuer": f"{base}/v2.0" if v2 else f"https://sts.windows.net/{self.tenant_id}/",
             "jwks_uri": f"{base}/discovery/v2.0/keys", "token_endpoint_auth_methods_supported":
             ["client_secret_post", "private_key_jwt", "client_secret_basic"], "response_types_supported": ["code"],
             "subject_types_supported": ["pairwise"], "id_token_signing_alg_values_supported": ["RS256"],
             "tenant_region_scope": "EU", "cloud_instance_name": "graph-emulator.local"},
            {"Cache-Control": "no-store"},
        )  # fmt: skip

    def _token(self, req: Request, tenant: str) -> tuple[Response, str | None]:
        if req.method != "POST":
            return oauth_error(405, "invalid_request", "The endpoint only accepts POST requests.", 900561), None
        if tenant.lower() != self.tenant_id.lower():
            return oauth_error(400, "invalid_request", f"Tenant '{tenant}' not found.", 90002), None
        form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items() if v}
        if form.get("grant_type") != "client_credentials":
            return oauth_error(
                400, "unsupported_grant_type", "The app requested an unsupported grant type.", 70003
            ), None
        client_id = form.get("client_id")
        if not client_id:
            return oauth_error(400, "invalid_request", "The request body must contain 'client_id'.", 900144), None
        problem = self._check_client(client_id, form)
        if problem is not None:
            return problem, client_id
        scopes = form.get("scope", "").split()
        resource = scopes[0][: -len("/.default")] if len(scopes) == 1 and scopes[0].endswith("/.default") else None
        if resource is None:
            return oauth_error(400, "invalid_scope", f"The provided value for scope {form.get('scope')!r} is not "
                               "valid. Client credential flows must have a scope value with /.default suffixed.",
                               1002012), client_id  # fmt: skip
        if resource.rstrip("/").lower() not in (tokens.GRAPH_RESOURCE, tokens.GRAPH_APP_ID):
            return oauth_error(400, "invalid_resource", f"The resource principal named {resource} was not found "
                               f"in the tenant named {self.tenant_id}.", 500011), client_id  # fmt: skip
        app = self.state.apps.get(client_id)
        roles = app.roles if app is not None else list(DEFAULT_ROLES)
        lifetime = self.state.settings.token_lifetime
        token, _ = tokens.issue(tenant_id=self.tenant_id, client_id=client_id, roles=roles, lifetime=lifetime)
        body = {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}
        return Response(200, body, {"Cache-Control": "no-store"}), client_id

    def _check_client(self, client_id: str, form: dict[str, str]) -> Response | None:
        app = self.state.apps.get(client_id)
        if app is None and self.state.apps:
            return oauth_error(400, "unauthorized_client", f"Application with identifier '{client_id}' was not "
                               f"found in the directory '{self.tenant_id}'.", 700016)  # fmt: skip
        assertion = form.get("client_assertion")
        if assertion is not None:
            if form.get("client_assertion_type") != _ASSERTION_TYPE or tokens.assertion_subject(assertion) != client_id:
                return oauth_error(401, "invalid_client", "The client assertion is not valid.", 700027)
            return None
        secret = form.get("client_secret")
        if not secret:
            return oauth_error(401, "invalid_client", "The request body must contain 'client_secret' or "
                               "'client_assertion'.", 7000218)  # fmt: skip
        if app is not None and app.secret is not None and secret != app.secret:
            return oauth_error(401, "invalid_client", "Invalid client secret provided.", 7000215)
        return None
