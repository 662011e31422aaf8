"""The ``dag_grants`` setting: a role's DAG-level rights for some groups on some DAGs only.

``[{"groups": ["analytics-operators"], "dags": ["analytics_*"], "tags": ["analytics"], "bundles": [],
"role": "Op"}]``: members of any listed group hold the ``dag`` and ``dag.*`` permissions of ``Op`` on every
DAG whose id matches one of the globs, or that carries one of the tags, or lives in one of the bundles.
Nothing outside ``dag``/``dag.*`` (nor ``dag.audit_log``) comes from a grant: global rights (variables,
pools, admin pages) only come from ``role_mapping``, so a grant can never make someone an administrator.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Final

from airflow_identity_provider.auth.rules.permissions import Permission, is_dag_level

_GRANT_KEYS: Final = frozenset({"groups", "dags", "tags", "bundles", "role"})


class GrantError(ValueError):
    """A grant is malformed; the message says which one (by position) and what to change."""


@dataclass(frozen=True)
class DagGrant:
    groups: frozenset[str]
    dags: tuple[str, ...]
    tags: frozenset[str]
    bundles: frozenset[str]
    role: str
    permissions: frozenset[Permission]

    def matches(self, dag_id: str, tags: frozenset[str], bundle: str) -> bool:
        # Case-sensitive globs: DAG ids are case-sensitive in Airflow, "Finance_*" must not match "finance_x".
        return (
            any(fnmatchcase(dag_id, pattern) for pattern in self.dags)
            or not self.tags.isdisjoint(tags)
            or (bool(bundle) and bundle in self.bundles)
        )

    def describe(self, index: int) -> str:
        targets = [f"dags {', '.join(self.dags)}"] if self.dags else []
        targets += [f"tags {', '.join(sorted(self.tags))}"] if self.tags else []
        targets += [f"bundles {', '.join(sorted(self.bundles))}"] if self.bundles else []
        return f"dag_grants[{index}]: {self.role} for {', '.join(sorted(self.groups))} on {'; '.join(targets)}"


def parse_dag_grants(text: str, roles: Mapping[str, frozenset[Permission]]) -> tuple[DagGrant, ...]:
    try:
        raw = json.loads(text) if text.strip() else []
    except json.JSONDecodeError as err:
        raise GrantError(
            f"is not valid JSON ({err.msg} at character {err.pos}); expected a list such as "
            '[{"groups": ["analytics-operators"], "dags": ["analytics_*"], "role": "Op"}]'
        ) from None
    if not isinstance(raw, list):
        raise GrantError(f"expected a JSON list of grants, got a {type(raw).__name__}")
    by_lower = {name.lower(): name for name in roles}
    return tuple(_grant(index, item, roles, by_lower) for index, item in enumerate(raw))


def _grant(
    index: int, item: object, roles: Mapping[str, frozenset[Permission]], by_lower: Mapping[str, str]
) -> DagGrant:
    where = f"grant {index}"
    if not isinstance(item, dict):
        raise GrantError(f"{where}: expected an object with groups, dags, tags, bundles, role")
    unknown = sorted(set(item) - _GRANT_KEYS)
    if unknown:
        raise GrantError(f"{where}: unknown key {unknown[0]!r}; a grant has {', '.join(sorted(_GRANT_KEYS))}")
    groups, dags, tags, bundles = (_strings(where, item, key) for key in ("groups", "dags", "tags", "bundles"))
    if not groups:
        raise GrantError(f"{where}: groups is empty; list the directory groups the grant is for")
    if not (dags or tags or bundles):
        raise GrantError(f"{where}: names no DAGs; give dags (globs), tags or bundles")
    role_name = item.get("role")
    canonical = by_lower.get(role_name.strip().lower()) if isinstance(role_name, str) else None
    if canonical is None:
        raise GrantError(f"{where}: role {role_name!r} is not a role; known: {', '.join(roles)}")
    # Not dag.audit_log: Airflow's event log also lists entries of no DAG (variable, connection and config
    # changes, with who made them), which only a global role may read.
    permissions = frozenset(p for p in roles[canonical] if is_dag_level(p[0]) and p[0] != "dag.audit_log")
    if not permissions:
        raise GrantError(f"{where}: role {canonical!r} holds no dag or dag.* permission, so the grant gives nothing")
    return DagGrant(frozenset(groups), tuple(dags), frozenset(tags), frozenset(bundles), canonical, permissions)


def _strings(where: str, item: Mapping[str, object], key: str) -> list[str]:
    value = item.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise GrantError(f"{where}: {key} must be a list of non-empty strings, got {value!r}")
    return value


__all__ = ["DagGrant", "GrantError", "parse_dag_grants"]
