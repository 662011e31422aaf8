"""The auth wing's audit fields: who a user is, what sign-in decided and from which claim values, and the
rate-limited authorization denial. The writer itself is the shared leaf :mod:`airflow_identity_provider.audit`
(re-exported here so existing callers keep ``from airflow_identity_provider.auth.rules import audit``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from airflow_identity_provider.audit import (
    AUDIT_LOGGER,
    REDACTED,
    RateLimiter,
    RequestContext,
    audit_log,
    bind_request,
    current_request,
    emit,
    redact,
    register_secret,
    request_id_from,
    request_scope,
    reset_request,
)
from airflow_identity_provider.entra_ids import is_guid

if TYPE_CHECKING:
    from airflow_identity_provider.auth.rules.access import AccessPolicy
    from airflow_identity_provider.auth.rules.settings import AuthSettings
    from airflow_identity_provider.auth.rules.user import IdentityUser

__all__ = [
    "AUDIT_LOGGER",
    "DENIALS",
    "REDACTED",
    "RateLimiter",
    "RequestContext",
    "assignment_fields",
    "audit_log",
    "bind_request",
    "current_request",
    "denied",
    "emit",
    "held_fields",
    "idp_unavailable",
    "redact",
    "register_secret",
    "request_id_from",
    "request_scope",
    "reset_request",
    "resource_key",
    "tenant_of",
    "user_fields",
]

# One denial per (user, resource, method, DAG, team) and minute: Airflow's UI asks the same question for
# every button it may draw, and a SIEM needs "who was refused what", not each repetition.
DENIALS = RateLimiter(window=60.0, max_keys=10_000)


def tenant_of(user_id: str) -> str | None:
    """The Entra tenant of an id ``[provider/]<tid>:<oid>`` (users and machine principals alike), else None."""
    tid, sep, oid = user_id.rpartition("/")[2].partition(":")
    return tid.lower() if sep and is_guid(tid) and is_guid(oid) else None


def idp_unavailable(event: str, *, url: str, detail: str) -> str:
    """The IdP did not answer ``event``'s request: an outage for an operator (ERROR), not a refused person."""
    return emit(event, outcome="failure", reason="idp_unavailable", level=logging.ERROR, url=url, detail=detail)


def user_fields(user: IdentityUser) -> dict[str, Any]:
    return {"user_id": user.user_id, "user_name": user.name, "idp": user.idp, "tenant": tenant_of(user.user_id)}


class Held(Protocol):
    """What sign-in gave someone: an ``Assignment`` or the ``IdentityUser`` built from it."""

    @property
    def roles(self) -> tuple[str, ...]: ...
    @property
    def groups(self) -> tuple[str, ...]: ...
    @property
    def teams(self) -> tuple[str, ...]: ...


def assignment_fields(policy: AccessPolicy, held: Held, *, groups_claim: str) -> dict[str, Any]:
    """What sign-in decided and from which claim values: each role with the ``groups_claim`` values that
    map to it (or ``default_role``), the values some setting names, teams and the DAG grants that apply."""
    sources: dict[str, list[str]] = {}
    for role in held.roles:
        givers = [group for group in held.groups if role in policy.role_mapping.get(group, ())]
        sources[role] = givers or (["default_role"] if role in policy.default_roles else [])
    grants = policy.grants_of(frozenset(held.groups))
    return {
        "roles": list(held.roles),
        "role_sources": sources,
        "groups": list(held.groups),
        "groups_claim": groups_claim,
        "teams": list(held.teams),
        "dag_grants": [policy.grants[i].describe(i) for i in grants],
    }


def held_fields(settings: AuthSettings, held: Held) -> dict[str, Any]:
    """:func:`assignment_fields` with the provider's own policy and groups claim."""
    return assignment_fields(settings.access, held, groups_claim=settings.groups_claim)


def resource_key(family: str, member: object) -> str:
    """``dag`` / ``dag.run`` / ``view.plugins``: the vocabulary of ``roles`` (``auth.rules.permissions``)."""
    name = getattr(member, "name", member)
    return family if name is None else f"{family}.{str(name).lower()}"


def denied(
    user: IdentityUser,
    resource: str,
    method: object,
    *,
    dag_id: str | None = None,
    team: str | None = None,
    now: float | None = None,
) -> str | None:
    """Report that ``user`` was refused ``method`` on ``resource``, unless the same denial was reported in
    this minute already. Cheap when held back (one dict lookup): it runs on the authorization path."""
    verb = str(getattr(method, "value", method))
    held_back = DENIALS.admit((user.idp, user.user_id, resource, verb, dag_id, team), now=now)
    if held_back is None:
        return None
    return emit(
        "authorization",
        outcome="failure",
        reason="not_permitted",
        **user_fields(user),
        roles=list(user.roles),
        resource=resource,
        method=verb,
        dag_id=dag_id,
        team=team,
        repeated=held_back or None,
    )
