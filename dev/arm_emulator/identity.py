"""Entra ID token endpoint, OIDC discovery and the managed-identity endpoints (IMDS, App Service)."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs

from . import tokens
from .web import Request, Response, oauth_error

_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_RESERVED_SCOPES = {"openid", "profile", "offline_access"}

OIDC_PATH = re.compile(r"^/(?P<tenant>[^/]+)(?P<v2>/v2\.0)?/\.well-known/openid-configuration$", re.I)
TOKEN_PATH = re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token$", re.I)
APP_SERVICE_PATH = re.compile(r"^/msi/token/?$", re.I)
IMDS_PATH = re.compile(r"^/metadata/identity/oauth2/token/?$", re.I)


def route(req: Request) -> Response | None:
    """Answer identity requests; ``None`` if the path is not an identity endpoint."""
    if req.method == "GET" and (m := OIDC_PATH.match(req.path)):
        return openid_configuration(req, m.group("tenant"), bool(m.group("v2")))
    if m := TOKEN_PATH.match(req.path):
        if req.method != "POST":
            return oauth_error(405, "invalid_request", "AADSTS900561: The endpoint only accepts POST requests.")
        return token(req, m.group("tenant"))
    if APP_SERVICE_PATH.match(req.path):
        return app_service_token(req)
    if IMDS_PATH.match(req.path):
        return imds_token(req)
    return None


def openid_configuration(req: Request, tenant: str, v2: bool) -> Response:
    base = f"{req.base_url}/{tenant}"
    suffix = "/v2.0" if v2 else ""
    oauth = f"{base}/oauth2/v2.0" if v2 else f"{base}/oauth2"
    return Response(
        200,
        {
            "token_endpoint": f"{oauth}/token",
            "authorization_endpoint": f"{oauth}/authorize",
            "device_authorization_endpoint": f"{oauth}/devicecode",
            "end_session_endpoint": f"{oauth}/logout",
            "jwks_uri": f"{req.base_url}/{tenant}/discovery{suffix}/keys",
            "issuer": f"{base}{suffix}",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "arm-emulator.local",
        },
    )


def token(req: Request, tenant: str) -> Response:
    form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items() if v}
    grant_type = form.get("grant_type")
    if grant_type != "client_credentials":
        return oauth_error(
            400,
            "unsupported_grant_type",
            f"AADSTS70003: The app requested an unsupported grant type '{grant_type}'.",
            [70003],
        )
    client_id = form.get("client_id")
    if not client_id:
        return oauth_error(400, "invalid_request", "AADSTS900144: The request body must contain 'client_id'.", [900144])
    scopes = [s for s in form.get("scope", "").split() if s.lower() not in _RESERVED_SCOPES]
    if len(scopes) != 1 or not scopes[0].endswith("/.default"):
        return oauth_error(
            400,
            "invalid_scope",
            f"AADSTS1002012: The provided value for scope {form.get('scope')!r} is not valid. "
            "Client credential flows must have a scope value with /.default suffixed to the resource "
            "identifier (application ID URI).",
            [1002012],
        )
    secret = form.get("client_secret")
    assertion = form.get("client_assertion")
    if secret is None and assertion is None:
        return oauth_error(
            401,
            "invalid_client",
            "AADSTS7000218: The request body must contain the following parameter: "
            "'client_assertion' or 'client_secret'.",
            [7000218],
        )
    if assertion is not None and form.get("client_assertion_type") != _ASSERTION_TYPE:
        return oauth_error(400, "invalid_request", "AADSTS50027: Invalid client_assertion_type.", [50027])
    if secret == "wrong":
        return oauth_error(
            401,
            "invalid_client",
            f"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request "
            f"is the client secret value, not the client secret ID, for a secret added to app '{client_id}'.",
            [7000215],
        )
    tenant_id = tokens.DEFAULT_TENANT_ID if tenant.lower() in {"common", "organizations"} else tenant
    access_token, _ = tokens.issue(
        audience=tokens.audience_from_scope(scopes[0]),
        tenant_id=tenant_id,
        oid=tokens.principal_oid(client_id=client_id),
        appid=client_id,
        flow="client_secret" if secret is not None else "client_assertion",
    )
    return Response(
        200,
        {
            "token_type": "Bearer",
            "expires_in": tokens.TOKEN_LIFETIME,
            "ext_expires_in": tokens.TOKEN_LIFETIME,
            "access_token": access_token,
        },
    )


def _mi_selector(req: Request, res_id_names: tuple[str, ...]) -> tuple[str | None, str | None, str | None] | str:
    client_id = req.param("client_id")
    object_id = req.param("object_id") or req.param("principal_id")
    resource_id = next((v for n in res_id_names if (v := req.param(n))), None)
    if sum(1 for v in (client_id, object_id, resource_id) if v) > 1:
        return "Only one of client_id, object_id or the resource id may be given."
    return client_id, object_id, resource_id


def _mi_token(
    platform: str, resource: str, selector: tuple[str | None, str | None, str | None]
) -> tuple[str, dict[str, object]]:
    client_id, object_id, resource_id = selector
    identity = tokens.managed_identity_claims(
        platform, client_id=client_id, object_id=object_id, resource_id=resource_id
    )
    access_token, claims = tokens.issue(
        audience=tokens.audience_from_scope(resource),
        tenant_id=tokens.DEFAULT_TENANT_ID,
        oid=str(identity["oid"]),
        appid=str(identity["appid"]),
        flow=platform,
        extra={"xms_mirid": identity["xms_mirid"]},
    )
    return access_token, claims


def app_service_token(req: Request) -> Response:
    """App Service / Functions: ``GET /msi/token?api-version=2019-08-01&resource=…``."""

    def fail(status: int, message: str) -> Response:
        return Response(
            status,
            {"statusCode": status, "message": message, "correlationId": req.headers.get("x-ms-client-request-id", "")},
        )

    if req.method != "GET":
        return fail(405, "Only GET is supported.")
    if not req.headers.get("x-identity-header"):
        return fail(401, "The X-IDENTITY-HEADER header is missing.")
    if req.api_version != "2019-08-01":
        return fail(400, f"Unsupported api-version {req.api_version!r}; use 2019-08-01.")
    resource = req.param("resource")
    if not resource:
        return fail(400, "The 'resource' query parameter is required.")
    selector = _mi_selector(req, ("mi_res_id", "msi_res_id"))
    if isinstance(selector, str):
        return fail(400, selector)
    access_token, claims = _mi_token("app_service", resource, selector)
    return Response(
        200,
        {
            "access_token": access_token,
            "expires_on": str(claims["exp"]),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": claims["appid"],
        },
    )


def imds_token(req: Request) -> Response:
    """Azure VM IMDS: ``GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=…``."""
    if req.method != "GET":
        return oauth_error(405, "invalid_request", "Only GET is supported.")
    if req.headers.get("metadata", "").lower() != "true":
        return oauth_error(400, "invalid_request", "Required metadata header not specified")
    resource = req.param("resource")
    if not resource:
        return oauth_error(400, "invalid_request", "Required query variable 'resource' is missing")
    selector = _mi_selector(req, ("msi_res_id", "mi_res_id"))
    if isinstance(selector, str):
        return oauth_error(400, "invalid_request", selector)
    access_token, claims = _mi_token("imds", resource, selector)
    now = int(time.time())
    return Response(
        200,
        {
            "access_token": access_token,
            "client_id": claims["appid"],
            "expires_in": str(tokens.TOKEN_LIFETIME),
            "expires_on": str(claims["exp"]),
            "ext_expires_in": str(tokens.TOKEN_LIFETIME),
            "not_before": str(now),
            "resource": resource,
            "token_type": "Bearer",
        },
    )
