"""Entra app roles for the Graph directory: who holds each app-role value (``groups_claim = roles``, and the
``roles`` of machine tokens), from the resource service principals' ``appRoleAssignedTo``.

The resources are the sign-in app (``client_id``) and the ``api_audiences`` (an appId GUID, or an identifier URI
matched against ``servicePrincipalNames``). Their ``appRoles`` (id -> value) are re-read every
``RESOURCE_REFRESH_ROUNDS`` rounds; their assignments every round (Graph has no delta for them). Entra gives an app
role assigned to a group to the group's direct user members only (no nesting), which is what ``holders`` counts.
Permission: Application.Read.All.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from airflow_identity_provider.auth.directory import DirectoryUnavailable
from airflow_identity_provider.entra_ids import is_guid

__all__ = ["RESOURCE_REFRESH_ROUNDS", "AppRoles"]

log = logging.getLogger(__name__)

RESOURCE_REFRESH_ROUNDS = 60
# (url, family, take) -> None: GET a collection and its nextLink pages (GraphDirectory._follow without delta).
Follow = Callable[[str, str, Callable[[list[Any]], None]], None]


@dataclass
class _Resource:
    selector: str  # appId GUID or identifier URI, as configured
    object_id: str = ""  # "" when the tenant has no such service principal (its app roles are not tracked)
    role_ids: dict[str, set[str]] = field(default_factory=dict)  # app-role value -> role ids


class AppRoles:
    def __init__(self, graph_url: str, resources: Iterable[str], follow: Follow) -> None:
        self._graph = graph_url
        self._resources = [_Resource(r) for r in dict.fromkeys(resources) if r]
        self._follow = follow
        self._assignments: list[tuple[str, str, str]] = []  # (app role id, principal type, principal id)
        self._rounds_since_resolve: int | None = None

    def __bool__(self) -> bool:
        return bool(self._resources)

    def sync(self) -> None:
        if self._rounds_since_resolve is None or self._rounds_since_resolve >= RESOURCE_REFRESH_ROUNDS:
            for resource in self._resources:
                self._resolve(resource)
            self._rounds_since_resolve = 0
        self._rounds_since_resolve += 1
        assignments: list[tuple[str, str, str]] = []

        def take(items: list[Any]) -> None:
            for item in items:
                if isinstance(item, dict) and all(isinstance(item.get(k), str) for k in ("appRoleId", "principalId")):
                    assignments.append(
                        (item["appRoleId"].lower(), str(item.get("principalType", "")), item["principalId"].lower())
                    )

        for resource in self._resources:
            if resource.object_id:
                url = (
                    f"{self._graph}/v1.0/servicePrincipals/{resource.object_id}/appRoleAssignedTo"
                    "?$select=appRoleId,principalId,principalType&$top=999"
                )
                self._follow(url, "appRoleAssignedTo", take)
        self._assignments = assignments

    def _resolve(self, resource: _Resource) -> None:
        selector = resource.selector
        literal = selector.replace("'", "''")  # an OData string literal doubles its quotes
        condition = f"appId eq '{literal}'" if is_guid(selector) else f"servicePrincipalNames/any(n:n eq '{literal}')"
        url = f"{self._graph}/v1.0/servicePrincipals?$filter={quote(condition)}&$select=id,appId,appRoles"
        found: list[Any] = []
        try:
            self._follow(url, "servicePrincipals", found.extend)
        except DirectoryUnavailable as err:
            if err.status not in (400, 404):
                raise
            # A Graph that cannot answer this query (a national cloud or proxy without it): this resource's app
            # roles are not tracked, and are left as tokens carry them.
            log.warning("airflow-identity-provider: cannot read the app roles of %s from Graph: %s", selector, err)
        first = next((sp for sp in found if isinstance(sp, dict) and isinstance(sp.get("id"), str)), None)
        resource.object_id = first["id"].lower() if first else ""
        resource.role_ids = {}
        for role in (first or {}).get("appRoles") or ():
            if isinstance(role, dict) and isinstance(role.get("value"), str) and isinstance(role.get("id"), str):
                resource.role_ids.setdefault(role["value"], set()).add(role["id"].lower())

    def _role_ids(self, value: str) -> set[str]:
        return {rid for resource in self._resources for rid in resource.role_ids.get(value, ())}

    def assigned_groups(self, tracked: Collection[str]) -> set[str]:
        """Groups assigned some tracked app role: their members must be read."""
        role_ids = {rid for value in tracked for rid in self._role_ids(value)}
        return {pid for role, ptype, pid in self._assignments if ptype == "Group" and role in role_ids}

    def holders(self, value: str, *, scope: str, group_users: Callable[[str], set[str]]) -> set[str] | None:
        """Account keys that hold app role ``value`` now; None when no resource defines it (not tracked)."""
        role_ids = self._role_ids(value)
        if not role_ids:
            return None
        keys: set[str] = set()
        for role, ptype, pid in self._assignments:
            if role in role_ids:
                keys |= group_users(pid) if ptype == "Group" else {scope + pid}
        return keys
