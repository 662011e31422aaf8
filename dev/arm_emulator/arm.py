"""ARM front door: authentication, routing and the shared LRO status endpoints."""

from __future__ import annotations

import re
import time

from . import authorization, deployments, lro, resource_groups, template_specs
from .state import State
from .web import ArmFailure, Request, Response, arm_error

_OPERATION_RESULT = re.compile(r"/operationresults/(?P<id>[^/]+)$", re.I)
_KNOWN = (
    _OPERATION_RESULT,
    *deployments.PATTERNS,
    *authorization.PATTERNS,
    *resource_groups.PATTERNS,
    *template_specs.PATTERNS,
)
_ARM_AUDIENCE_PREFIX = "https://management."


def authenticate(req: Request) -> Response | None:
    auth = req.headers.get("authorization", "")
    if not auth.lower().startswith("bearer ") or not auth[7:].strip():
        return arm_error(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
            headers={
                "WWW-Authenticate": 'Bearer authorization_uri="https://login.windows.net/", '
                'error="invalid_token", error_description="The authentication failed because of '
                "missing 'Authorization' header.\""
            },
        )
    claims = req.identity
    if claims is None:  # opaque test tokens (e.g. a static credential) are accepted as is
        return None
    aud = str(claims.get("aud", ""))
    if aud and not aud.lower().startswith(_ARM_AUDIENCE_PREFIX):
        return arm_error(
            401,
            "InvalidAuthenticationTokenAudience",
            f"The access token has been obtained for wrong audience or resource '{aud}'. It should exactly "
            "match with one of the allowed audiences 'https://management.core.windows.net/',"
            "'https://management.azure.com/'.",
        )
    exp = claims.get("exp")
    if isinstance(exp, (int, float)) and exp < time.time():
        return arm_error(401, "ExpiredAuthenticationToken", "The access token expiry UTC time is in the past.")
    return None


def is_known(path: str) -> bool:
    """Whether any ARM route could match (unknown paths get 404 before authentication)."""
    path = path.rstrip("/") or "/"
    return any(p.search(path) for p in _KNOWN)


def route(state: State, req: Request) -> Response:
    path = req.path.rstrip("/") or "/"
    if req.api_version is None:
        return arm_error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    try:
        if req.method == "GET" and (m := _OPERATION_RESULT.search(path)):
            return lro.operation_result(state, m.group("id"))
        for handler in (deployments.route, authorization.route, resource_groups.route, template_specs.route):
            response = handler(state, req, path)
            if response is not None:
                return response
    except ArmFailure as failure:
        return failure.response
    return not_found(req)


def not_found(req: Request) -> Response:
    return arm_error(
        404,
        "NotFound",
        f"The ARM emulator does not implement '{req.method} {req.path}'. "
        "See dev/arm_emulator/README.md for what is emulated.",
    )
