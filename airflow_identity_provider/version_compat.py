"""Everything that differs between the Airflow minors this package supports (3.1, 3.2, 3.3), in one place.

A leaf: imports only Airflow and the standard library, and nothing heavy at import time (no FastAPI, no
``base_auth_manager``), so DAG files, the CLI and the auth manager can all use it. Each shim names the
release that made it unnecessary: "remove when the floor is 3.x" means once ``pyproject.toml`` requires
``apache-airflow>=3.x``. Where a version lacks a feature, the feature degrades and ``warn_missing`` logs one
line per process saying what is lost; nothing here raises ImportError.

Tested on 3.1.8, 3.2.2 and 3.3.2 (``constraints/3.*.txt``).
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlparse

from airflow import __version__ as AIRFLOW_VERSION_STRING
from airflow.api_fastapi.common.types import MenuItem

if TYPE_CHECKING:
    from starlette.requests import Request

log = logging.getLogger(__name__)


def _release(version: str) -> tuple[int, int, int]:
    """ "3.1.8" -> (3, 1, 8); "3.2.0rc1" or "3.3.0.dev0" -> (3, 2, 0), (3, 3, 0)."""
    numbers = [int(n) for n in re.findall(r"\d+", version.split("+")[0])[:3]]
    major, minor, micro = (*numbers, 0, 0, 0)[:3]
    return major, minor, micro


AIRFLOW_VERSION: tuple[int, int, int] = _release(AIRFLOW_VERSION_STRING)
AIRFLOW_V_3_2_PLUS = AIRFLOW_VERSION >= (3, 2, 0)
AIRFLOW_V_3_3_PLUS = AIRFLOW_VERSION >= (3, 3, 0)


# --- auth manager ----------------------------------------------------------------------------------------

# Raised from refresh_user() to end a browser session: Airflow's JWTRefreshMiddleware catches it and clears
# the cookie. Added in 3.1.7. Before that there is no way to end a session from refresh_user(): 3.1.5/3.1.6
# call refresh_user() but would turn any exception into a 500 on every request, 3.1.1-3.1.4 never call it.
# So without it, revalidate_interval is ignored (sessions last [api_auth] jwt_expiration_time).
try:
    from airflow.api_fastapi.auth.managers.exceptions import AuthManagerRefreshTokenExpiredException

    CAN_END_SESSION_ON_REFRESH = True
except ImportError:  # remove when the floor is 3.1.7

    class AuthManagerRefreshTokenExpiredException(Exception):  # type: ignore[no-redef]
        """Stand-in so the name exists; never raised where Airflow cannot handle it."""

    CAN_END_SESSION_ON_REFRESH = False


def token_revoker(manager: object) -> Callable[[str], None] | None:
    """``manager.revoke_token`` (verifies the token, then writes its jti to ``revoked_token``), or None.

    Remove when the floor is 3.2: BaseAuthManager.revoke_token and the revoked_token table came with 3.2
    (apache/airflow#61339); 3.1 cannot revoke an Airflow JWT, so a signed-out token stays valid until it
    expires.
    """
    revoke: Callable[[str], None] | None = getattr(manager, "revoke_token", None)
    return revoke


def is_token_revoked(jti: str) -> bool:
    """Whether Airflow's revoked_token table holds ``jti``; always False before 3.2 (remove when the floor
    is 3.2, with token_revoker)."""
    try:
        from airflow.models.revoked_token import RevokedToken
    except ImportError:  # remove when the floor is 3.2
        return False
    return bool(RevokedToken.is_revoked(jti))


def claim_once(jti: str, expires_at: float) -> bool | None:
    """Record ``jti`` (at most 32 characters) as used, atomically across replicas: True when this call
    recorded it, False when it was recorded before, None where this Airflow has no ``revoked_token`` table.

    For one-time values that are not Airflow JWTs (the terminal sign-in's codes): the table's primary key makes
    the insert a compare-and-set, and Airflow's own clean-up deletes the row after ``expires_at``. Remove the
    None case when the floor is 3.2."""
    try:
        from airflow.models.revoked_token import RevokedToken
    except ImportError:  # remove when the floor is 3.2
        return None
    from datetime import datetime, timezone

    from airflow.utils.session import create_session
    from sqlalchemy.exc import IntegrityError

    try:
        with create_session() as session:
            session.add(RevokedToken(jti=jti, exp=datetime.fromtimestamp(expires_at, tz=timezone.utc)))
    except IntegrityError:
        return False
    return True


def trusted_user_marker(base_auth_manager: type) -> object | None:
    """The core's ``USER_INJECTED_BY_TRUSTED_MIDDLEWARE``, or None where this Airflow has no way for an auth
    manager to authenticate API requests itself.

    3.3 added both halves: ``BaseAuthManager.get_fastapi_middlewares`` (the api-server registers what it
    returns) and the marker, without which ``get_user`` ignores ``request.state.user``. Without them, IdP access
    tokens are exchanged at ``POST /auth/token`` only. ``base_auth_manager`` is Airflow's class (passed in so
    this leaf does not import it); the security module is imported only here, from the api-server. Remove
    when the floor is 3.3.
    """
    if not hasattr(base_auth_manager, "get_fastapi_middlewares"):
        return None
    try:
        from airflow.api_fastapi.core_api.security import USER_INJECTED_BY_TRUSTED_MIDDLEWARE
    except ImportError:  # remove when the floor is 3.3
        return None
    marker: object = USER_INJECTED_BY_TRUSTED_MIDDLEWARE
    return marker


def menu_item(name: str) -> MenuItem | None:
    """``MenuItem[name]``, or None where this Airflow has no such menu entry, so a policy table can name
    entries newer than the floor. ``JOBS`` came with 3.2, ``DEADLINES`` with 3.3: nothing is lost on older
    versions (the page does not exist there), so nothing is logged. Remove the lookups of a name when the
    floor is the version that added it (JOBS: 3.2, DEADLINES: 3.3)."""
    try:
        return MenuItem[name]
    except KeyError:
        return None


def is_safe_url(target_url: str, request: Request | None = None) -> bool:
    """``airflow.api_fastapi.core_api.security.is_safe_url`` as Airflow 3.3 has it: the sign-in ``next``
    check against open redirects.

    3.1's lets ``///evil.example/``, ``/\\evil.example/``, ``\\\\evil.example/`` and ``/%2F/evil.example/``
    through (browsers read them as another host); 3.2's refuses those but not a backslash after the scheme.
    Before 3.3 this is a copy of 3.3's, so the check is the same on every supported version. Remove when
    the floor is 3.3 and import Airflow's.
    """
    if AIRFLOW_V_3_3_PLUS:
        from airflow.api_fastapi.core_api.security import is_safe_url as airflow_is_safe_url

        return bool(airflow_is_safe_url(target_url, request=request))
    from airflow.configuration import conf as core_conf

    bases: list[str] = []
    if request is not None:
        bases.append(str(request.base_url))
    if base_url := core_conf.get("api", "base_url", fallback=None):
        bases.append(base_url)
    if not bases:
        return True  # as Airflow: nothing to compare with (the auth manager refuses an empty base_url at start)
    # WHATWG (browsers) reads "///" as "//" and "\\" as "/", also right after a scheme; urllib does not.
    target_url = unquote(target_url).strip().replace("\\", "/")
    if target_url.startswith("//"):
        return False
    for base in bases:
        parsed_base = urlparse(base)
        parsed_target = urlparse(urljoin(base, target_url))
        norm_base = posixpath.normpath(parsed_base.path or "/")
        norm_target = posixpath.normpath(parsed_target.path or "/")
        if norm_base != "/":
            under = norm_base if norm_base.endswith("/") else norm_base + "/"
            if norm_target != norm_base and not norm_target.startswith(under):
                continue
        if parsed_target.scheme in {"http", "https"} and parsed_target.netloc == parsed_base.netloc:
            return True
    return False


# --- features a version lacks: one log line each ------------------------------------------------------

_MISSING: dict[str, str] = {
    "end_session_on_refresh": (
        "Airflow {version} cannot end a browser session from the auth manager (needs 3.1.7+): "
        "revalidate_interval is ignored and sessions last [api_auth] jwt_expiration_time"
    ),
    "revoke_token": (
        "Airflow {version} cannot revoke tokens (needs 3.2+): a signed-out Airflow token stays valid until "
        "it expires ([api_auth] jwt_expiration_time)"
    ),
    "per_dag_lists": (
        "on Airflow {version}, three core routes check DAG access without a DAG id and do not filter by it "
        "(GET /ui/backfills, PUT /api/v2/parseDagFile/<token>, GET /api/v2/eventLogs/<id>): someone whose "
        "access comes only from dag_grants or access_control sees more there than their DAGs (fixed in 3.2)"
    ),
    "teams": "Airflow {version} has no teams (needs 3.2+ with [core] multi_team): team_mapping is ignored",
    "audit_request_context": (
        "Airflow {version} lets no auth manager add middleware to its API (needs 3.3+): authorization audit "
        "events of /api/v2 and /ui carry no client_ip, user_agent or request_id (those of /auth do)"
    ),
    "idp_bearer": (
        "Airflow {version} lets no auth manager authenticate /api/v2 requests itself (needs 3.3+): IdP access "
        "tokens are not accepted as 'Authorization: Bearer' there; exchange them at POST /auth/token first"
    ),
    "single_use_cli_code": (
        "Airflow {version} has no revoked_token table (needs 3.2+): a terminal sign-in's code can be redeemed "
        "more than once within its 60 s, still only with the PKCE verifier of the terminal that started it"
    ),
}
_warned: set[str] = set()


def warn_missing(feature: str) -> None:
    """Log, once per process, that this Airflow lacks ``feature`` (a key of ``_MISSING``) and what it costs."""
    if feature in _warned:
        return
    _warned.add(feature)
    log.warning("airflow-identity-provider: " + _MISSING[feature].format(version=AIRFLOW_VERSION_STRING))


# --- task SDK (operators, hooks, triggers) ------------------------------------------------------------

# The task SDK's own conf (airflow.sdk.configuration) came with 3.2; 3.1 tasks read airflow.configuration.
try:
    from airflow.sdk import conf  # type: ignore[attr-defined]
except ImportError:  # remove when the floor is 3.2
    from airflow.configuration import conf  # type: ignore[assignment,no-redef]

# In 3.1 these live in airflow.exceptions only (airflow.sdk.exceptions re-exports AirflowException from
# there, and the 3.1 task runner catches airflow.exceptions.TaskDeferred).
try:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred  # type: ignore[attr-defined]
except ImportError:  # remove when the floor is 3.2
    from airflow.exceptions import (  # type: ignore[assignment,no-redef,attr-defined]
        AirflowException,
        AirflowFailException,
        TaskDeferred,
    )


def _amask_secret_fallback() -> Callable[..., Awaitable[None]]:
    from airflow.sdk.log import mask_secret

    async def amask_secret(secret: Any, name: str | None = None) -> None:
        # Before 3.3 the sync mask_secret is the only one and is safe in the event loop: the mask is added
        # in this process at once; telling the supervisor goes through greenback (3.2) or fails quietly
        # inside mask_secret (3.1, where the triggerer logs in-process anyway).
        mask_secret(secret, name)

    return amask_secret


async def amask_secret(secret: Any, name: str | None = None) -> None:
    """``airflow.sdk.log.amask_secret``: mask ``secret`` from an async context (triggers, async hooks).

    Remove when the floor is 3.3 (which added amask_secret to avoid a deadlock of send() under asend()) and
    import it from airflow.sdk.log directly. Imported lazily, like the sync mask_secret at its call sites.
    """
    real: Callable[..., Awaitable[None]]
    try:
        from airflow.sdk.log import amask_secret as real  # type: ignore[attr-defined,no-redef]
    except ImportError:  # remove when the floor is 3.3
        real = _amask_secret_fallback()
    await real(secret, name)


__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "CAN_END_SESSION_ON_REFRESH",
    "AirflowException",
    "AirflowFailException",
    "AuthManagerRefreshTokenExpiredException",
    "TaskDeferred",
    "amask_secret",
    "conf",
    "is_safe_url",
    "is_token_revoked",
    "menu_item",
    "token_revoker",
    "trusted_user_marker",
    "warn_missing",
]
