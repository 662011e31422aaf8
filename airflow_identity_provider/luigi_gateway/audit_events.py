"""The gateway's audit events, in the package's format (``airflow_identity_provider.audit``), ``service`` luigi.

``luigi_call``
    success (luigid answered 2xx/3xx) or failure: a state-changing scheduler call was forwarded. ``method,
    task_id, worker, status`` (the status a worker reports), ``via`` (session, bearer, basic), ``upstream_status``,
    ``user_id, user_name, idp, tenant, roles``. ``get_work`` is recorded only when it hands out a task.
``authorization``
    failure: a call was refused. ``reason`` (``unauthenticated``, ``not_permitted``, ``unknown_method``,
    ``worker_not_owned``, ``cross_site``, ``idp_unavailable``...), ``method`` (or the page), ``http_status``,
    ``role_needed`` and the user fields when known. Identical denials are reported once a minute
    (``repeated`` counts the ones held back), so a misconfigured worker retrying does not flood the SIEM.
``login`` / ``token`` / ``logout``
    The auth wing's own events (sign-in, an access token validated), emitted by the services it shares.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_identity_provider.audit import RateLimiter, emit
from airflow_identity_provider.auth.rules.audit import user_fields

if TYPE_CHECKING:
    from airflow_identity_provider.luigi_gateway.identity import Caller

SERVICE = "luigi"
DENIALS = RateLimiter(window=60.0, max_keys=10_000)


def call_forwarded(caller: Caller, method: str, fields: Mapping[str, Any], upstream_status: int) -> str:
    return emit(
        "luigi_call",
        outcome="success" if upstream_status < 400 else "failure",
        reason=None if upstream_status < 400 else "upstream_error",
        service=SERVICE,
        method=method,
        via=caller.via,
        upstream_status=upstream_status,
        **fields,
        **user_fields(caller.user),
        roles=list(caller.user.roles),
    )


def call_denied(
    caller: Caller | None,
    label: str,
    *,
    reason: str,
    http_status: int,
    detail: str,
    role_needed: str | None = None,
    worker: str | None = None,
    client: str = "",
) -> str | None:
    """Report a refusal, unless the same one (caller, method, reason) was reported this minute."""
    who = caller.principal if caller is not None else client
    held_back = DENIALS.admit((who, label, reason))
    if held_back is None:
        return None
    known = {**user_fields(caller.user), "roles": list(caller.user.roles), "via": caller.via} if caller else {}
    return emit(
        "authorization",
        outcome="failure",
        reason=reason,
        service=SERVICE,
        method=label,
        http_status=http_status,
        role_needed=role_needed,
        worker=worker,
        detail=detail,
        repeated=held_back or None,
        **known,
    )
