"""Who may do what, all settings together: role mapping, custom roles, DAG grants, teams. Pure.

``AccessPolicy`` is built once per identity provider when the api-server starts. It answers from the
little a signed-in user carries (role names, the groups some setting names, teams) and, for DAG-level
questions, from the DAG's tags, bundle and compiled ``access_control``: never any I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from airflow_identity_provider.auth.rules.access_control import AccessControl
from airflow_identity_provider.auth.rules.custom_roles import RoleTable, builtin_role_table, role_lookup
from airflow_identity_provider.auth.rules.dag_grants import DagGrant
from airflow_identity_provider.auth.rules.permissions import Permission


class TeamMappingError(ValueError):
    """``team_mapping`` is malformed."""


@dataclass(frozen=True)
class Principal:
    """What a request's user carries into a decision (from the Airflow JWT)."""

    roles: tuple[str, ...]
    groups: frozenset[str] = frozenset()
    teams: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Assignment:
    """What sign-in (or a machine token) gives someone: their roles, the groups worth keeping, teams."""

    roles: tuple[str, ...]
    groups: tuple[str, ...]
    teams: tuple[str, ...]


@dataclass(frozen=True)
class DagAccess:
    """Everything one principal may do on one DAG beyond their global roles, and why (for explain)."""

    permissions: frozenset[Permission]
    grants: tuple[int, ...] = ()
    access_control: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class AccessPolicy:
    role_mapping: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    default_roles: tuple[str, ...] = ()
    roles: RoleTable = field(default_factory=builtin_role_table)
    grants: tuple[DagGrant, ...] = ()
    team_mapping: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    honour_dag_access_control: bool = True

    # Per-policy memo tables: few distinct role sets and group sets exist, each asked thousands of times.
    # Bounded by clearing (not LRU): a cleared table only costs a recomputation.
    _lookup: dict[str, str] = field(init=False, repr=False, default_factory=dict)
    _permissions: dict[tuple[str, ...], frozenset[Permission]] = field(init=False, repr=False, default_factory=dict)
    _grant_indexes: dict[frozenset[str], tuple[int, ...]] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._lookup.update(role_lookup(self.roles))

    # --- at sign-in ------------------------------------------------------------------------------------

    def roles_for(self, groups: Iterable[str], *, use_default: bool = True) -> tuple[str, ...]:
        """Every role any group maps to (the union, as FAB does), in table order; else the default."""
        held = {role for group in groups for role in self.role_mapping.get(group, ())}
        if not held and use_default:
            held = set(self.default_roles)
        return tuple(name for name in self.roles if name in held)

    def teams_for(self, groups: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted({team for group in groups for team in self.team_mapping.get(group, ())}))

    @property
    def named_groups(self) -> frozenset[str]:
        """Groups some setting names; the only ones worth carrying in the cookie (4 KB, 200 GUIDs)."""
        grant_groups = {group for grant in self.grants for group in grant.groups}
        return frozenset(self.role_mapping) | frozenset(self.team_mapping) | grant_groups

    def assign(
        self, groups: Iterable[str], *, access_control_names: frozenset[str] = frozenset(), use_default: bool = True
    ) -> Assignment | None:
        """Roles, kept groups and teams for someone with ``groups``; ``None`` when nothing gives them access.

        ``access_control_names`` are the groups and roles some DAG's access_control names today: a user
        whose only access is such an entry (or a grant) may sign in, with no global role.
        """
        held = tuple(dict.fromkeys(groups))
        roles = self.roles_for(held, use_default=use_default)
        # A key that is a role name means the role, never a directory group of that name (see below).
        access_control_names = frozenset(n for n in access_control_names if self.canonical_role(n) is None)
        named = self.named_groups | access_control_names
        kept = tuple(group for group in held if group in named)
        on_some_dag = bool(self.grants_of(frozenset(kept))) or (
            self.honour_dag_access_control and not access_control_names.isdisjoint(kept)
        )
        if not roles and not on_some_dag:
            return None
        return Assignment(roles=roles, groups=kept, teams=self.teams_for(held))

    # --- on the request path (cached, pure) ------------------------------------------------------------

    def canonical_role(self, name: str) -> str | None:
        return self._lookup.get(name.lower())

    def permissions_of(self, roles: tuple[str, ...]) -> frozenset[Permission]:
        """The union of what ``roles`` hold; a role removed from the settings since sign-in holds nothing."""
        found = self._permissions.get(roles)
        if found is None:
            held: set[Permission] = set()
            for name in roles:
                canonical = self.canonical_role(name)
                if canonical is not None:
                    held |= self.roles[canonical]
            found = frozenset(held)
            _remember(self._permissions, roles, found)
        return found

    def grants_of(self, groups: frozenset[str]) -> tuple[int, ...]:
        """Positions in ``grants`` of the grants any of ``groups`` is listed in."""
        found = self._grant_indexes.get(groups)
        if found is None:
            found = tuple(i for i, grant in enumerate(self.grants) if not grant.groups.isdisjoint(groups))
            _remember(self._grant_indexes, groups, found)
        return found

    def dag_access(
        self,
        principal: Principal,
        dag_id: str,
        *,
        tags: frozenset[str] = frozenset(),
        bundle: str = "",
        access_control: AccessControl | None = None,
    ) -> DagAccess:
        """What grants and the DAG's access_control give ``principal`` on ``dag_id`` (global roles aside)."""
        held: set[Permission] = set()
        matched: list[int] = []
        for index in self.grants_of(principal.groups):
            grant = self.grants[index]
            if grant.matches(dag_id, tags, bundle):
                held |= grant.permissions
                matched.append(index)
        entries: list[str] = []
        if self.honour_dag_access_control and access_control:
            for key, permissions in access_control.items():
                if self.access_control_key_matches(principal, key):
                    held |= permissions
                    entries.append(key)
        return DagAccess(frozenset(held), tuple(matched), tuple(entries))

    def access_control_key_matches(self, principal: Principal, key: str) -> bool:
        """An access_control key names a role (as in FAB) or, if it is no role's name, a directory group.

        Role names win: with generic OIDC users may create a group called "Op", which must not pass for the
        Op role. Only roles the settings define today count, so a custom role removed since sign-in (still
        in the token) no longer matches an entry left for it.
        """
        role = self.canonical_role(key)
        if role is not None:
            return any(self.canonical_role(name) == role for name in principal.roles)
        return key in principal.groups

    def any_dag_access(self, principal: Principal, permission: Permission) -> bool:
        """Whether some grant gives ``permission`` on some DAG: the answer for lists, which name no DAG."""
        return any(permission in self.grants[i].permissions for i in self.grants_of(principal.groups))


def _remember(table: dict, key: object, value: object) -> None:  # type: ignore[type-arg]
    if len(table) > 10_000:
        table.clear()
    table[key] = value


def parse_team_mapping(text: str) -> dict[str, tuple[str, ...]]:
    try:
        raw = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as err:
        raise TeamMappingError(
            f"is not valid JSON ({err.msg} at character {err.pos}); expected an object such as "
            '{"grp-analytics": "analytics", "grp-finance": ["finance"]}'
        ) from None
    if not isinstance(raw, dict):
        raise TeamMappingError(f"expected a JSON object of group -> team name(s), got a {type(raw).__name__}")
    mapping: dict[str, tuple[str, ...]] = {}
    for group, teams in raw.items():
        names = [teams] if isinstance(teams, str) else teams
        if not isinstance(names, list) or not names or not all(isinstance(t, str) and t.strip() for t in names):
            raise TeamMappingError(f"the team(s) for {group!r} must be a team name or a list of them, got {teams!r}")
        mapping[group] = tuple(t.strip() for t in names)
    return mapping


__all__ = ["AccessPolicy", "Assignment", "DagAccess", "Principal", "TeamMappingError", "parse_team_mapping"]
