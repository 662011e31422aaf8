"""Microsoft Graph as the directory of one Entra tenant, read with the app registration's own app-only token.

Per sync round (``GraphDirectory.sync``):

* ``GET /v1.0/users/delta?$select=id,accountEnabled`` and ``/v1.0/servicePrincipals/delta?$select=id,accountEnabled``:
  the first round pages through every account (``@odata.nextLink``) and keeps the ``@odata.deltaLink``; later
  rounds send that link and get only what changed (``@removed`` for deleted objects). Managed identities are
  service principals. Permissions: User.Read.All, Application.Read.All.
* ``GET /v1.0/groups/delta?$select=members&$filter=id eq '...' or ...`` for the tracked groups (group object ids
  that a setting names, groups assigned a tracked app role, and groups nested in those), at most
  ``GROUP_BATCH`` ids per query, each batch with its own delta link; ``members@delta`` adds and (``@removed``)
  removes direct members. Permission: GroupMember.Read.All.
* With tracked values that are not group ids (app-role values, ``groups_claim = roles``): the resource service
  principals' app-role assignments (``auth.directory.app_roles``). Permission: Application.Read.All.

A delta link that Graph no longer knows (HTTP 410, ``syncStateNotFound``) starts that stream over with a full
read; until it completes, the previous state is kept. Links are only followed on the configured Graph host:
the bearer token is never sent elsewhere.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from airflow_identity_provider.auth.directory import DirectoryForbidden, DirectoryUnavailable
from airflow_identity_provider.auth.directory.app_roles import AppRoles
from airflow_identity_provider.auth.rules.directory import ENABLED, SERVICE_PRINCIPAL, USER, Account, DirectoryView
from airflow_identity_provider.entra_ids import is_guid

log = logging.getLogger(__name__)

__all__ = ["GRAPH_PERMISSIONS", "GraphDirectory"]

# Application permissions (admin consent) each family of calls needs: named in the refusal message.
GRAPH_PERMISSIONS = {
    "users": "User.Read.All",
    "servicePrincipals": "Application.Read.All",
    "groups": "GroupMember.Read.All",
    "appRoleAssignedTo": "Application.Read.All",
}
GROUP_BATCH = 50  # the most ids Graph takes in one groups/delta $filter (documented limit; about 3 KB of URL)
MAX_GROUPS = 2000  # tracked plus nested: a bound against a runaway nesting
MAX_PAGES = 100_000  # per stream and round: a bound against a server that never ends a page chain
_MEMBER_KINDS = {"#microsoft.graph.user": USER, "#microsoft.graph.serviceprincipal": SERVICE_PRINCIPAL}
_GROUP = "#microsoft.graph.group"
_RESYNC_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})


class _Resync(Exception):
    """The delta link expired: read the stream from the start."""


class _Unsupported(DirectoryUnavailable):
    """Graph refused a query option (``Request_UnsupportedQuery``)."""


@dataclass
class _Batch:
    ids: frozenset[str] | None  # None: every group of the tenant (no $filter)
    link: str | None = None

    def covers(self, gid: str) -> bool:
        return self.ids is None or gid in self.ids


class GraphDirectory:
    """One tenant. Not thread-safe: the sync thread alone calls :meth:`sync`."""

    source = "graph"

    def __init__(
        self,
        *,
        tenant_id: str,
        graph_url: str,
        token: Callable[[], str],
        http: Callable[[], httpx.Client],
        resources: Iterable[str] = (),
        id_prefix: str = "",
    ) -> None:
        """``token`` returns an app-only Graph access token (msal caches it); ``http`` makes the HTTP client
        (again in a forked worker: connections are not shared across a fork)."""
        self.tenant_id = tenant_id.lower()
        self.scope = f"{self.tenant_id}:"
        self.id_prefix = id_prefix
        self.name = f"graph:{self.tenant_id}"
        self._graph = graph_url.rstrip("/")
        self._origin = _origin(self._graph)
        self._token = token
        self._http_factory = http
        self._http = http()
        self.calls: Counter[str] = Counter()  # HTTP requests by family (users, groups, ...)
        self._accounts: dict[str, dict[str, Account]] = {USER: {}, SERVICE_PRINCIPAL: {}}
        self._links: dict[str, str | None] = {USER: None, SERVICE_PRINCIPAL: None}
        self._members: dict[str, set[str]] = {}  # group id -> keys of direct user / service-principal members
        self._children: dict[str, set[str]] = {}  # group id -> ids of groups nested in it
        self._batches: list[_Batch] = []
        self._unfiltered = False  # Graph refused $filter on groups/delta: one stream over all groups
        self._app_roles = AppRoles(self._graph, resources, self._follow_collection)
        self._rounds = 0
        self._merged: Mapping[str, Account] = MappingProxyType({})
        self._accounts_changed = True

    def after_fork(self) -> None:
        self._http = self._http_factory()

    # --- the round -------------------------------------------------------------------------------------

    def sync(self, tracked: Collection[str]) -> DirectoryView:
        """Read what changed since the last round and return the whole view (raises DirectoryUnavailable)."""
        for kind in (USER, SERVICE_PRINCIPAL):
            self._sync_accounts(kind)
        roles_tracked = any(not is_guid(value) for value in tracked)
        if roles_tracked and self._app_roles:
            self._app_roles.sync()
        self._sync_groups(self._wanted_groups(tracked, roles_tracked))
        self._rounds += 1
        if self._accounts_changed:
            self._merged = MappingProxyType({**self._accounts[USER], **self._accounts[SERVICE_PRINCIPAL]})
            self._accounts_changed = False
        return DirectoryView(
            source=self.source,
            accounts=self._merged,
            holders=MappingProxyType(self._holders(tracked)),
            scope=self.scope,
            id_prefix=self.id_prefix,
        )

    # --- accounts --------------------------------------------------------------------------------------

    def _sync_accounts(self, kind: str) -> None:
        family = "users" if kind == USER else "servicePrincipals"
        start = f"{self._graph}/v1.0/{family}/delta?$select=id,accountEnabled"
        try:
            self._read_accounts(kind, family, self._links[kind] or start)
        except _Resync:
            self._links[kind] = None
            self._read_accounts(kind, family, start)

    def _read_accounts(self, kind: str, family: str, url: str) -> None:
        full = self._links[kind] is None
        # Both read into a table of their own, which replaces the one in use only once every page came: a delta
        # that failed on a later page is read again from the same link, and must then still count as a change
        # (edited in place, the replay would find nothing to change and the view would never be republished).
        table = {} if full else dict(self._accounts[kind])
        changed = full

        def take(items: list[Any]) -> None:
            nonlocal changed
            for item in items:
                oid = item.get("id") if isinstance(item, dict) else None
                if not isinstance(oid, str) or not oid:
                    continue
                key = self.scope + oid.lower()
                if "@removed" in item:
                    changed |= table.pop(key, None) is not None
                    continue
                enabled = item.get("accountEnabled")
                previous = table.get(key)
                state = ENABLED if enabled is not False else "disabled"
                if enabled is None and previous is not None:
                    state = previous.state  # a delta without the property: unchanged
                if previous is None or previous.state != state:
                    table[key] = Account(state, kind)
                    changed = True

        self._links[kind] = self._follow(url, family, take)
        self._accounts[kind] = table
        self._accounts_changed |= changed

    # --- groups ----------------------------------------------------------------------------------------

    def _wanted_groups(self, tracked: Collection[str], roles_tracked: bool) -> set[str]:
        wanted = {value.lower() for value in tracked if is_guid(value)}
        if roles_tracked:
            wanted |= self._app_roles.assigned_groups(tracked)
        return wanted

    def _sync_groups(self, wanted: set[str]) -> None:
        """Read every batch once; groups found nested in them get batches of their own, read in the next pass.

        Graph documents ``$filter=id eq '…' or …`` on groups/delta for up to 50 ids
        (https://learn.microsoft.com/graph/api/group-delta). Should it refuse the filter anyway (400
        ``Request_UnsupportedQuery``: a national cloud or a proxy without it), one unfiltered stream over all groups
        replaces the batches: more data on the first read, then one call per round."""
        if not wanted:
            return
        if self._unfiltered:
            if not self._batches:
                self._batches = [_Batch(None)]
            self._sync_batch(self._batches[0])
            return
        try:
            self._sync_filtered(wanted)
        except _Unsupported:
            log.warning("airflow-identity-provider: Graph refused $filter on groups/delta; reading all groups instead")
            self._unfiltered, self._batches = True, [_Batch(None)]
            self._sync_batch(self._batches[0])

    def _sync_filtered(self, wanted: set[str]) -> None:
        self._batches = [batch for batch in self._batches if batch.ids and batch.ids & self._closure(wanted)]
        read: set[int] = set()
        for _pass in range(32):
            covered = {gid for batch in self._batches for gid in batch.ids or ()}
            missing = sorted(self._closure(wanted) - covered)
            if len(covered) + len(missing) > MAX_GROUPS:
                raise DirectoryUnavailable(self._graph, f"more than {MAX_GROUPS} tracked and nested groups")
            for start in range(0, len(missing), GROUP_BATCH):
                self._batches.append(_Batch(frozenset(missing[start : start + GROUP_BATCH])))
            pending = [batch for batch in self._batches if id(batch) not in read]
            if not pending:
                return
            for batch in pending:
                self._sync_batch(batch)
                read.add(id(batch))
        raise DirectoryUnavailable(self._graph, "groups nested more than 32 levels deep")

    def _closure(self, roots: set[str]) -> set[str]:
        seen, stack = set(), list(roots)
        while stack:
            gid = stack.pop()
            if gid not in seen:
                seen.add(gid)
                stack.extend(self._children.get(gid, ()))
        return seen

    def _sync_batch(self, batch: _Batch) -> None:
        start = f"{self._graph}/v1.0/groups/delta?$select=members"
        if batch.ids is not None:
            start += "&$filter=" + quote(" or ".join(f"id eq '{gid}'" for gid in sorted(batch.ids)))
        try:
            self._read_batch(batch, batch.link or start)
        except _Resync:
            batch.link = None
            self._read_batch(batch, start)

    def _read_batch(self, batch: _Batch, url: str) -> None:
        full = batch.link is None
        members = {gid: set[str]() for gid in batch.ids or ()} if full else self._members
        children = {gid: set[str]() for gid in batch.ids or ()} if full else self._children

        def take(items: list[Any]) -> None:
            for item in items:
                gid = item.get("id") if isinstance(item, dict) else None
                if not isinstance(gid, str) or not batch.covers(gid.lower()):
                    continue
                gid = gid.lower()
                direct, nested = members.setdefault(gid, set()), children.setdefault(gid, set())
                if "@removed" in item:  # the group itself was deleted: nobody holds it
                    direct.clear()
                    nested.clear()
                    continue
                for member in item.get("members@delta") or ():
                    if not isinstance(member, dict) or not isinstance(member.get("id"), str):
                        continue
                    kind = str(member.get("@odata.type", "#microsoft.graph.user")).lower()
                    if kind == _GROUP:
                        target, value = nested, member["id"].lower()
                    elif kind in _MEMBER_KINDS:
                        target, value = direct, self.scope + member["id"].lower()
                    else:
                        continue  # devices, contacts: never Airflow principals
                    if "@removed" in member:
                        target.discard(value)
                    else:
                        target.add(value)

        batch.link = self._follow(url, "groups", take)
        if full and batch.ids is None:
            self._members, self._children = members, children
        elif full:
            self._members.update(members)
            self._children.update(children)

    def _transitive(self, gid: str) -> set[str]:
        keys: set[str] = set()
        for group in self._closure({gid}):
            keys |= self._members.get(group, set())
        return keys

    # --- holders ---------------------------------------------------------------------------------------

    def _holders(self, tracked: Collection[str]) -> dict[str, frozenset[str]]:
        """Who holds each tracked value now; values Graph cannot tell about (an app role no resource defines,
        a name that is no group id) are left out, and so left as tokens carry them."""
        holders: dict[str, frozenset[str]] = {}
        for value in tracked:
            keys = self._app_roles.holders(value, scope=self.scope, group_users=self._direct_users)
            if is_guid(value):
                keys = (keys or set()) | self._transitive(value.lower())
            if keys is not None:
                holders[value] = frozenset(keys)
        return holders

    def _direct_users(self, gid: str) -> set[str]:
        return {k for k in self._members.get(gid, ()) if self._is_user(k)}

    def _is_user(self, key: str) -> bool:
        return key in self._accounts[USER] or key not in self._accounts[SERVICE_PRINCIPAL]

    # --- HTTP ------------------------------------------------------------------------------------------

    def _follow(self, url: str, family: str, take: Callable[[list[Any]], None], *, delta: bool = True) -> str | None:
        """GET ``url`` and its ``@odata.nextLink`` pages; returns the ``@odata.deltaLink`` (delta streams)."""
        for _page in range(MAX_PAGES):
            body = self._get(url, family)
            value = body.get("value")
            if not isinstance(value, list):
                raise DirectoryUnavailable(url, "the answer has no 'value' list")
            take(value)
            next_link, delta_link = body.get("@odata.nextLink"), body.get("@odata.deltaLink")
            if isinstance(next_link, str):
                url = self._same_host(next_link)
            elif not delta:
                return None
            elif isinstance(delta_link, str):
                return self._same_host(delta_link)
            else:
                raise DirectoryUnavailable(url, "a delta page with neither @odata.nextLink nor @odata.deltaLink")
        raise DirectoryUnavailable(url, f"more than {MAX_PAGES} pages")

    def _follow_collection(self, url: str, family: str, take: Callable[[list[Any]], None]) -> None:
        self._follow(url, family, take, delta=False)

    def _get(self, url: str, family: str) -> dict[str, Any]:
        try:
            token = self._token()
        except Exception as err:  # msal: ValueError / requests errors for an unreachable or refusing authority
            raise DirectoryUnavailable(f"token for {self._graph}", str(err) or type(err).__name__) from None
        self.calls[family] += 1
        try:
            response = self._http.get(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
        except httpx.HTTPError as err:
            raise DirectoryUnavailable(url, f"{type(err).__name__}: {err}") from None
        body = _json(response)
        code = str((body.get("error") or {}).get("code", "")) if isinstance(body.get("error"), dict) else ""
        if response.status_code == 410 or code.lower() in _RESYNC_CODES:
            raise _Resync
        if response.status_code == 400 and code == "Request_UnsupportedQuery":
            raise _Unsupported(_path(url), f"HTTP 400 {code}", status=400)
        if response.status_code in (401, 403):
            permission = GRAPH_PERMISSIONS.get(family, "Directory.Read.All")
            raise DirectoryForbidden(
                _path(url),
                f"HTTP {response.status_code} {code}".strip(),
                f"Grant the app registration the Microsoft Graph application permission {permission} (with "
                "admin consent; the sync needs User.Read.All, GroupMember.Read.All and Application.Read.All), or "
                "set [identity_auth_manager] directory_sync_interval = 0.",
                status=response.status_code,
            )
        if response.status_code != 200:
            retry = response.headers.get("Retry-After")
            raise DirectoryUnavailable(
                _path(url),
                f"HTTP {response.status_code} {code}".strip() + (f", Retry-After {retry}" if retry else ""),
                status=response.status_code,
            )
        return body

    def _same_host(self, link: str) -> str:
        if _origin(link) != self._origin:
            raise DirectoryUnavailable(self._graph, f"a paging link to another host ({_origin(link)})")
        return link


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _path(url: str) -> str:
    """The URL without its query: delta and skip tokens are bearer-like state and stay out of logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        if response.status_code == 200:
            raise DirectoryUnavailable(str(response.request.url.copy_with(query=None)), "the answer is not JSON")
        return {}
    return body
