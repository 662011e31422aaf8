"""JumpCloud as the directory, read with an administrator API key (``x-api-key``).

JumpCloud has no change feed for these, so every round reads the whole (small) picture:

* ``GET /api/systemusers?limit=100&skip=N&fields=...`` (API v1): every user with ``suspended``,
  ``account_locked`` and ``activated`` (false: not activated or deactivated), paged by ``totalCount``;
* ``GET /api/v2/usergroups?limit=100&skip=N``: the user groups, to turn the names tokens carry (``memberOf``)
  into ids;
* ``GET /api/v2/usergroups/{id}/members?limit=100&skip=N`` for each tracked group: its direct members.

Calls per round: ceil(users/100) + ceil(groups/100) + the sum over tracked groups of ceil(members/100).

Tokens name a JumpCloud user by ``sub``; it is matched against the user's id, e-mail and username (case
aside). A user who disappears between two rounds is remembered as deleted for the process's lifetime;
a subject the directory never listed is not refused (it may be another kind of principal), so a user
deleted while no api-server was running is caught by ``revalidate_interval`` and token expiry, not here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from types import MappingProxyType
from typing import Any

import httpx

from airflow_identity_provider.auth.directory import DirectoryForbidden, DirectoryUnavailable
from airflow_identity_provider.auth.rules.directory import ENABLED, Account, DirectoryView

__all__ = ["JumpCloudDirectory"]

PAGE = 100  # the largest page both API versions allow
MAX_PAGES = 10_000
USER_FIELDS = "_id email username suspended account_locked activated"


class JumpCloudDirectory:
    """One JumpCloud organisation. Not thread-safe: the sync thread alone calls :meth:`sync`."""

    source = "jumpcloud"

    def __init__(self, *, api_url: str, api_key: str, http: Callable[[], httpx.Client], id_prefix: str = "") -> None:
        """``http`` makes the HTTP client (again in a forked worker: connections are not shared across a fork)."""
        self.name = "jumpcloud"
        self.id_prefix = id_prefix
        self._url = api_url.rstrip("/")
        self._key = api_key
        self._http_factory = http
        self._http = http()
        self.calls: Counter[str] = Counter()
        self._known: dict[str, str] = {}  # every key or alias seen in this process -> its account key
        self._deleted: dict[str, Account] = {}  # accounts seen before and gone now (tombstones)

    def after_fork(self) -> None:
        self._http = self._http_factory()

    def sync(self, tracked: Collection[str]) -> DirectoryView:
        accounts: dict[str, Account] = {}
        aliases: dict[str, str] = {}
        for user in self._pages_v1("/api/systemusers", {"fields": USER_FIELDS}, "systemusers"):
            uid = user.get("_id") or user.get("id")
            if not isinstance(uid, str) or not uid:
                continue
            accounts[uid] = Account(_state(user))
            for alias in (user.get("email"), user.get("username")):
                if isinstance(alias, str) and alias:
                    aliases[alias.lower()] = uid
        # Who was here before and is gone now was deleted: remember them, with their old names.
        for name, uid in self._known.items():
            if uid not in accounts and name not in aliases:
                self._deleted[uid] = Account("deleted")
                aliases.setdefault(name, uid)
        for uid in accounts:
            self._deleted.pop(uid, None)
        self._known.update({uid: uid for uid in accounts})
        self._known.update(aliases)

        ids_by_name: dict[str, str] = {}
        for group in self._pages_v2("/api/v2/usergroups", "usergroups"):
            if isinstance(group, dict) and isinstance(group.get("name"), str) and isinstance(group.get("id"), str):
                ids_by_name[group["name"]] = group["id"]
        holders: dict[str, frozenset[str]] = {}
        for name in tracked:
            gid = ids_by_name.get(name)
            if gid is None:
                # Tokens carry group names; one JumpCloud does not have (any more) is held by nobody.
                holders[name] = frozenset()
                continue
            members = set()
            for edge in self._pages_v2(f"/api/v2/usergroups/{gid}/members", "members"):
                target = edge.get("to") if isinstance(edge, dict) else None
                if isinstance(target, dict) and target.get("type") == "user" and isinstance(target.get("id"), str):
                    members.add(target["id"])
            holders[name] = frozenset(members)
        return DirectoryView(
            source=self.source,
            accounts=MappingProxyType({**self._deleted, **accounts}),
            aliases=MappingProxyType(aliases),
            holders=MappingProxyType(holders),
            id_prefix=self.id_prefix,
            absent_means_deleted=False,
        )

    # --- HTTP ------------------------------------------------------------------------------------------

    def _pages_v1(self, path: str, params: dict[str, str], family: str) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for page in range(MAX_PAGES):
            body = self._get(path, {**params, "limit": str(PAGE), "skip": str(page * PAGE)}, family)
            items = body.get("results") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise DirectoryUnavailable(self._url + path, "the answer has no 'results' list")
            results.extend(item for item in items if isinstance(item, dict))
            total = body.get("totalCount")
            if not items or (isinstance(total, int) and len(results) >= total) or len(items) < PAGE:
                return results
        raise DirectoryUnavailable(self._url + path, f"more than {MAX_PAGES} pages")

    def _pages_v2(self, path: str, family: str) -> list[Any]:
        results: list[Any] = []
        for page in range(MAX_PAGES):
            items = self._get(path, {"limit": str(PAGE), "skip": str(page * PAGE)}, family)
            if not isinstance(items, list):
                raise DirectoryUnavailable(self._url + path, "the answer is not a list")
            results.extend(items)
            if len(items) < PAGE:
                return results
        raise DirectoryUnavailable(self._url + path, f"more than {MAX_PAGES} pages")

    def _get(self, path: str, params: dict[str, str], family: str) -> Any:
        url = self._url + path
        self.calls[family] += 1
        try:
            response = self._http.get(
                url, params=params, headers={"x-api-key": self._key, "Accept": "application/json"}
            )
        except httpx.HTTPError as err:
            raise DirectoryUnavailable(url, f"{type(err).__name__}: {err}") from None
        if response.status_code in (401, 403):
            raise DirectoryForbidden(
                url,
                f"HTTP {response.status_code}",
                "Check [identity_auth_manager] jumpcloud_api_key (an administrator's API key; a read-only "
                "administrator suffices), or set directory_sync_interval = 0.",
                status=response.status_code,
            )
        if response.status_code != 200:
            retry = response.headers.get("Retry-After")
            detail = f"HTTP {response.status_code}" + (f", Retry-After {retry}" if retry else "")
            raise DirectoryUnavailable(url, detail, status=response.status_code)
        try:
            return response.json()
        except ValueError:
            raise DirectoryUnavailable(url, "the answer is not JSON") from None


def _state(user: dict[str, Any]) -> str:
    if user.get("suspended") is True:
        return "suspended"
    if user.get("account_locked") is True:
        return "locked"
    if user.get("activated") is False:
        return "deactivated"
    return ENABLED
