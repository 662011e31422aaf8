"""Every authorization answer the auth manager gives, from the user's token and in-memory tables only.

The user's roles (global permissions), their kept groups (DAG grants, access_control) and teams come
from the Airflow JWT; a DAG's tags, bundle and access_control come from the DAG index, which a
background thread refreshes from the metadata DB. Nothing here does I/O: a per-DAG answer is a few
dict lookups, memoised until the index changes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagAccessEntity
from airflow.api_fastapi.common.types import MenuItem

from airflow_identity_provider.auth.rules.access import AccessPolicy, DagAccess, Principal
from airflow_identity_provider.auth.rules.access_control import AccessControl, compile_access_control
from airflow_identity_provider.auth.rules.permissions import (
    ANY_CUSTOM_VIEW,
    Permission,
    custom_view_key,
    dag_key,
    is_dag_level,
    menu_key,
    view_key,
)
from airflow_identity_provider.auth.rules.policy import MENU_PERMISSION, enum_member, normalize_method
from airflow_identity_provider.auth.rules.user import IdentityUser

log = logging.getLogger(__name__)
_NOTHING = DagAccess(frozenset())
_MEMO_LIMIT = 50_000


class DagFactsLike(Protocol):
    @property
    def dag_id(self) -> str: ...
    @property
    def tags(self) -> frozenset[str]: ...
    @property
    def bundle(self) -> str: ...
    @property
    def access_control(self) -> Mapping[str, Any] | None: ...


class DagFactsSource(Protocol):
    @property
    def generation(self) -> int: ...

    def get(self, dag_id: str) -> DagFactsLike | None: ...

    def all(self) -> Mapping[str, DagFactsLike]: ...


class _Memo:
    """Answers derived from one generation of the DAG index. A request takes the memo of the generation it
    saw first and writes only there, so a refresh racing a request can never leave an answer computed from
    old facts in the new generation's memo (requests run on several threads)."""

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.access_control: dict[str, AccessControl] = {}
        self.dag_access: dict[tuple[str, Principal, str], DagAccess] = {}
        self.any_dag: dict[tuple[str, Principal, Permission], bool] = {}
        self.names: frozenset[str] | None = None


def _remember(table: dict[Any, Any], key: object, value: object) -> None:
    if len(table) > _MEMO_LIMIT:
        table.clear()
    table[key] = value


class Authorizer:
    def __init__(self, policies: Mapping[str, AccessPolicy], dags: DagFactsSource) -> None:
        self.policies = policies
        self.dags = dags
        self._memo = _Memo(-1)

    # --- building blocks -------------------------------------------------------------------------------

    def policy(self, user: IdentityUser) -> AccessPolicy | None:
        return self.policies.get(user.idp)

    def permissions(self, user: IdentityUser) -> frozenset[Permission]:
        policy = self.policy(user)
        return policy.permissions_of(user.roles) if policy else frozenset()

    def _current(self) -> _Memo:
        """The memo of the index's current generation: a tag, bundle or access_control change starts a new one."""
        memo = self._memo
        generation = self.dags.generation
        if memo.generation != generation:
            memo = self._memo = _Memo(generation)
        return memo

    def access_control(self, dag_id: str, memo: _Memo | None = None) -> AccessControl:
        memo = memo or self._current()
        compiled = memo.access_control.get(dag_id)
        if compiled is None:
            facts = self.dags.get(dag_id)
            compiled, problems = compile_access_control(facts.access_control if facts else None)
            for problem in problems:  # once per DAG and index generation, i.e. once per change of the DAG
                log.warning("airflow-identity-provider: DAG %s: %s; that entry grants nothing", dag_id, problem)
            _remember(memo.access_control, dag_id, compiled)
        return compiled

    def access_control_names(self) -> frozenset[str]:
        """Every group or role name some DAG's access_control names (sign-in keeps those groups)."""
        memo = self._current()
        if memo.names is None:
            memo.names = frozenset(name for dag_id in self.dags.all() for name in self.access_control(dag_id, memo))
        return memo.names

    def dag_access(self, user: IdentityUser, dag_id: str) -> DagAccess:
        """What grants and access_control give ``user`` on ``dag_id``, on top of their global roles."""
        policy = self.policy(user)
        if policy is None:
            return _NOTHING
        memo = self._current()
        principal = user.principal
        memo_key = (user.idp, principal, dag_id)
        found = memo.dag_access.get(memo_key)
        if found is None:
            facts = self.dags.get(dag_id)
            found = policy.dag_access(
                principal,
                dag_id,
                tags=facts.tags if facts else frozenset(),
                bundle=facts.bundle if facts else "",
                access_control=self.access_control(dag_id, memo) if facts else None,
            )
            _remember(memo.dag_access, memo_key, found)
        return found

    def _on_some_dag(self, user: IdentityUser, permission: Permission) -> bool:
        """Whether some grant or access_control entry gives ``permission`` on at least one DAG."""
        policy = self.policy(user)
        if policy is None or not (user.groups or user.roles):
            return False
        memo = self._current()
        principal = user.principal
        memo_key = (user.idp, principal, permission)
        found = memo.any_dag.get(memo_key)
        if found is None:
            found = policy.any_dag_access(principal, permission)
            if not found and policy.honour_dag_access_control:
                found = any(
                    permission in held
                    for dag_id in self.dags.all()
                    for name, held in self.access_control(dag_id, memo).items()
                    if policy.access_control_key_matches(principal, name)
                )
            _remember(memo.any_dag, memo_key, found)
        return found

    def in_team(self, user: IdentityUser, team_name: str | None, method: object = "GET") -> bool:
        """Team-owned resources are for the team's members, and for whoever holds ``team:<method>`` (Admin)."""
        if team_name is None or team_name in user.teams:
            return True
        verb = normalize_method(method)
        return verb is not None and ("team", verb) in self.permissions(user)

    # --- the questions Airflow asks ----------------------------------------------------------------------

    def allows(self, user: IdentityUser, resource: str, method: object, *, team_name: str | None = None) -> bool:
        verb = normalize_method(method)
        if verb is None or not self.in_team(user, team_name, verb):
            return False
        return (resource, verb) in self.permissions(user)

    def allows_dag(
        self,
        user: IdentityUser,
        method: object,
        *,
        access_entity: object = None,
        dag_id: str | None = None,
        team_name: str | None = None,
    ) -> bool:
        verb = normalize_method(method)
        if verb is None or not self.in_team(user, team_name, verb):
            return False
        entity = None
        if access_entity is not None:
            entity = enum_member(DagAccessEntity, access_entity)
            if entity is None:
                return False  # an entity newer than this code: deny until someone decides
        permission = (dag_key(entity), verb)
        if permission in self.permissions(user):
            return True
        if entity is DagAccessEntity.AUDIT_LOG:
            # The audit log lists rows of no DAG too (variable, connection and config changes): global only.
            return False
        if dag_id is None:  # lists and "any DAG" questions: FAB's answer is "yes if at least one DAG"
            return self._on_some_dag(user, permission)
        return permission in self.dag_access(user, dag_id).permissions

    def filter_dags(
        self, user: IdentityUser, dag_ids: Iterable[str], method: object, *, team_name: str | None = None
    ) -> set[str]:
        verb = normalize_method(method)
        if verb is None or not self.in_team(user, team_name, verb):
            return set()
        permission = ("dag", verb)
        if permission in self.permissions(user):
            return set(dag_ids)
        if self.policy(user) is None or not (user.groups or user.roles):
            return set()
        return {dag_id for dag_id in dag_ids if permission in self.dag_access(user, dag_id).permissions}

    def filter_named(
        self, user: IdentityUser, resource: str, names: Iterable[str], method: object, *, team_name: str | None
    ) -> set[str]:
        return set(names) if self.allows(user, resource, method, team_name=team_name) else set()

    def allows_view(self, user: IdentityUser, access_view: object) -> bool:
        view = enum_member(AccessView, access_view)
        return view is not None and (view_key(view), "GET") in self.permissions(user)

    def allows_custom_view(self, user: IdentityUser, method: object, resource_name: str) -> bool:
        verb = normalize_method(method)
        held = self.permissions(user)
        return verb is not None and ((custom_view_key(resource_name), verb) in held or (ANY_CUSTOM_VIEW, verb) in held)

    def menu_items(self, user: IdentityUser, menu_items: Iterable[object]) -> list[MenuItem]:
        held = self.permissions(user)
        allowed: list[MenuItem] = []
        for raw in menu_items:
            item = enum_member(MenuItem, raw)
            if item is None or item not in MENU_PERMISSION:
                continue
            target = MENU_PERMISSION[item]
            if (menu_key(item), "MENU") in held or (is_dag_level(target[0]) and self._on_some_dag(user, target)):
                allowed.append(item)
        return allowed

    def is_hitl_assignee(self, user: IdentityUser, assigned_users: Iterable[str]) -> bool:
        """DAG authors assign by id or by e-mail/UPN. Only verified e-mail-shaped names of the user count
        (claims.py, entra.py), compared case-insensitively and only with assignees that look like e-mails, so
        no chosen name can equal someone else's id."""
        assigned = set(assigned_users)
        if user.user_id in assigned:
            return True
        names = {alias.lower() for alias in user.aliases if "@" in alias}
        return not names.isdisjoint(a.lower() for a in assigned if "@" in a)


__all__ = ["Authorizer", "DagFactsLike", "DagFactsSource"]
