"""Who may do what, and why, in words: for ``explain``, ``access-report`` and the "My access" page. Pure.

Every answer is computed with the functions the auth manager decides with (``AccessPolicy.dag_access``,
``permissions_of``), then each permission is paired with the reasons it is held: ``role Op (group
airflow-ops)``, ``dag_grants[0]: Op for analytics-operators on dags analytics_*``, ``access_control of
finance_daily entry 'finance-team'``. So a report cannot claim something the manager would refuse.

The access report (``build_report``) is a JSON-ready dict of this shape (``report_version`` 1; keys are
only ever added, never renamed, within a version):

.. code-block:: text

    {
      "report_version": 1,
      "generated_at": "2025-01-31T12:00:00+00:00",      # as the caller passed it ("" if none)
      "warnings": ["cannot read the DAG index: ..."],    # what the report may be missing ([] if nothing)
      "dags": {                                          # every DAG of the DAG index
        "<dag_id>": {
          "tags": ["<tag>", ...],                        # sorted
          "bundle": "<bundle name or ''>",
          "access_control": ["<entry key>", ...],        # the entries that compiled, sorted
          "problems": ["access_control['x']: ...", ...]  # entries refused (they grant nothing)
        }
      },
      "providers": [                                     # in configured order
        {
          "name": "default", "display_name": "...",
          "honour_dag_access_control": true,
          "default_roles": ["Viewer"],                   # [] when default_role is empty
          "principals": [                                # groups (sorted), then roles (table order), then default
            {
              "kind": "group" | "role" | "default",
              "name": "<group>" | "<role>" | "*",        # "*": a user none of whose groups maps to a role
              "named_by": ["role_mapping", "dag_grants", "team_mapping", "access_control"],  # groups only
              "roles": ["Op"],                           # roles a member holds through this principal alone
              "teams": ["analytics"],
              "global": [{"permission": "variable:GET", "sources": ["role Op (role_mapping: airflow-ops)"]}],
              "dags": {"<dag_id>": [{"permission": "dag.run:POST", "sources": ["dag_grants[0]: ..."]}]}
            }
          ]
        }
      ]
    }

A permission is one ``<resource>:<METHOD>`` (see ``permissions``), sorted. ``global`` permissions hold on
every DAG when they are ``dag``/``dag.*`` ones; ``dags`` holds what grants and ``access_control`` add on
particular DAGs, and lists only DAGs where they add something (every DAG of the index is looked at).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from airflow_identity_provider.auth.rules.access import AccessPolicy, DagAccess, Principal
from airflow_identity_provider.auth.rules.access_control import AccessControl, compile_access_control
from airflow_identity_provider.auth.rules.permissions import METHODS, Permission, is_dag_level

REPORT_VERSION = 1

# Permission -> the reasons it is held, in the order found (each reason once).
Holdings = dict[Permission, list[str]]


class DagFactsLike(Protocol):
    """What the DAG index knows of a DAG (``auth.catalog.dag_index.DagFacts`` fits)."""

    @property
    def tags(self) -> frozenset[str]: ...
    @property
    def bundle(self) -> str: ...
    @property
    def access_control(self) -> Mapping[str, Any] | None: ...


def permission_text(permission: Permission) -> str:
    return f"{permission[0]}:{permission[1]}"


def _sort_key(permission: Permission) -> tuple[str, int]:
    return permission[0], METHODS.index(permission[1]) if permission[1] in METHODS else len(METHODS)


def add(holdings: Holdings, permissions: Iterable[Permission], source: str) -> Holdings:
    for permission in permissions:
        reasons = holdings.setdefault(permission, [])
        if source not in reasons:
            reasons.append(source)
    return holdings


def merge(*parts: Holdings) -> Holdings:
    merged: Holdings = {}
    for part in parts:
        for permission, reasons in part.items():
            for reason in reasons:
                add(merged, (permission,), reason)
    return merged


# --- why someone holds their roles ------------------------------------------------------------------------


def role_reasons(policy: AccessPolicy, groups: Iterable[str], roles: Iterable[str]) -> dict[str, str]:
    """Role -> what gives it: ``group airflow-ops`` (several: ``group a, group b``) or ``default_role``.

    A role held from a token minted before the settings changed may have neither: ``not in the settings now``.
    """
    held = tuple(groups)
    reasons: dict[str, str] = {}
    for role in roles:
        givers = [group for group in held if role in policy.role_mapping.get(group, ())]
        if givers:
            reasons[role] = ", ".join(f"group {group}" for group in givers)
        else:
            reasons[role] = "default_role" if role in policy.default_roles else "not in the settings now"
    return reasons


def role_holdings(policy: AccessPolicy, reasons: Mapping[str, str], *, dag_level_only: bool = False) -> Holdings:
    """What each role holds, with the source ``role <name> (<reason>)`` (just ``role <name>`` if no reason)."""
    holdings: Holdings = {}
    for role, reason in reasons.items():
        canonical = policy.canonical_role(role)
        if canonical is None:
            continue  # a role removed from the settings since sign-in holds nothing
        held = [p for p in policy.roles[canonical] if is_dag_level(p[0])] if dag_level_only else policy.roles[canonical]
        add(holdings, held, f"role {canonical} ({reason})" if reason else f"role {canonical}")
    return holdings


def named_by(policy: AccessPolicy, group: str, access_control_names: Iterable[str] = ()) -> list[str]:
    """The settings that name ``group`` (what makes sign-in keep it), in a fixed order."""
    found = ["role_mapping"] if group in policy.role_mapping else []
    found += ["dag_grants"] if any(group in grant.groups for grant in policy.grants) else []
    found += ["team_mapping"] if group in policy.team_mapping else []
    found += ["access_control"] if group in set(access_control_names) else []
    return found


# --- why someone holds a permission on one DAG --------------------------------------------------------------


def dag_sources(policy: AccessPolicy, dag_id: str, access: DagAccess, access_control: AccessControl) -> Holdings:
    """The permissions of ``access`` (as ``AccessPolicy.dag_access`` found them), each with its grant or entry."""
    holdings: Holdings = {}
    for index in access.grants:
        add(holdings, policy.grants[index].permissions, policy.grants[index].describe(index))
    for key in access.access_control:
        add(holdings, access_control.get(key, frozenset()), f"access_control of {dag_id} entry {key!r}")
    return holdings


def dag_holdings(
    policy: AccessPolicy, principal: Principal, dag_id: str, facts: DagFactsLike | None, access_control: AccessControl
) -> Holdings:
    """What grants and access_control give ``principal`` on ``dag_id`` (``facts`` None: a DAG the index lacks)."""
    access = policy.dag_access(
        principal,
        dag_id,
        tags=facts.tags if facts else frozenset(),
        bundle=facts.bundle if facts else "",
        access_control=access_control if facts else None,
    )
    return dag_sources(policy, dag_id, access, access_control)


def grouped_lines(holdings: Holdings) -> list[tuple[str, list[str]]]:
    """``[("dag.run:GET,POST", [reasons]), ...]``: methods of one resource merged when their reasons agree."""
    by_key: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for key, method in sorted(holdings, key=_sort_key):
        by_key.setdefault((key, tuple(holdings[(key, method)])), []).append(method)
    return [(f"{key}:{','.join(methods)}", list(reasons)) for (key, reasons), methods in by_key.items()]


def _entries(holdings: Holdings) -> list[dict[str, Any]]:
    return [{"permission": permission_text(p), "sources": list(holdings[p])} for p in sorted(holdings, key=_sort_key)]


# --- the access report ------------------------------------------------------------------------------------


def compile_dags(dags: Mapping[str, DagFactsLike]) -> dict[str, tuple[AccessControl, list[str]]]:
    """Each DAG's compiled access_control and the entries refused, as the authorizer compiles them."""
    return {dag_id: compile_access_control(facts.access_control) for dag_id, facts in dags.items()}


def build_report(
    policies: Mapping[str, tuple[str, AccessPolicy]],
    dags: Mapping[str, DagFactsLike],
    *,
    generated_at: str = "",
    warnings: Iterable[str] = (),
) -> dict[str, Any]:
    """The report of the module docstring; ``policies`` maps provider name -> (display name, policy)."""
    compiled = compile_dags(dags)
    return {
        "report_version": REPORT_VERSION,
        "generated_at": generated_at,
        "warnings": list(warnings),
        "dags": {
            dag_id: {
                "tags": sorted(dags[dag_id].tags),
                "bundle": dags[dag_id].bundle,
                "access_control": sorted(access_control),
                "problems": problems,
            }
            for dag_id, (access_control, problems) in sorted(compiled.items())
        },
        "providers": [
            _provider_report(name, display_name, policy, dags, compiled)
            for name, (display_name, policy) in policies.items()
        ],
    }


def _provider_report(
    name: str,
    display_name: str,
    policy: AccessPolicy,
    dags: Mapping[str, DagFactsLike],
    compiled: Mapping[str, tuple[AccessControl, list[str]]],
) -> dict[str, Any]:
    role_names = {role.lower() for role in policy.roles}
    entry_names = {key for access_control, _ in compiled.values() for key in access_control}
    # An access_control key that is a role name is reported under that role, not as a group too.
    groups = sorted(policy.named_groups | {key for key in entry_names if key.lower() not in role_names})
    principals: list[dict[str, Any]] = []
    for group in groups:
        roles = policy.roles_for((group,), use_default=False)
        principal = Principal(roles, frozenset({group}), frozenset(policy.teams_for((group,))))
        reasons = {role: f"role_mapping: {group}" for role in roles}
        principals.append(
            _principal("group", group, policy, principal, reasons, dags, compiled, named_by(policy, group, entry_names))
        )
    for role in policy.roles:
        principals.append(_principal("role", role, policy, Principal((role,)), {role: ""}, dags, compiled))
    if policy.default_roles:
        reasons = dict.fromkeys(policy.default_roles, "default_role")
        principals.append(_principal("default", "*", policy, Principal(policy.default_roles), reasons, dags, compiled))
    return {
        "name": name,
        "display_name": display_name,
        "honour_dag_access_control": policy.honour_dag_access_control,
        "default_roles": list(policy.default_roles),
        "principals": principals,
    }


def _principal(
    kind: str,
    name: str,
    policy: AccessPolicy,
    principal: Principal,
    reasons: Mapping[str, str],
    dags: Mapping[str, DagFactsLike],
    compiled: Mapping[str, tuple[AccessControl, list[str]]],
    named: list[str] | None = None,
) -> dict[str, Any]:
    per_dag: dict[str, list[dict[str, Any]]] = {}
    for dag_id in sorted(dags):
        holdings = dag_holdings(policy, principal, dag_id, dags[dag_id], compiled[dag_id][0])
        if holdings:
            per_dag[dag_id] = _entries(holdings)
    entry: dict[str, Any] = {"kind": kind, "name": name}
    if named is not None:
        entry["named_by"] = named
    entry.update(
        roles=list(principal.roles),
        teams=sorted(principal.teams),
        **{"global": _entries(role_holdings(policy, reasons))},
        dags=per_dag,
    )
    return entry


def report_rows(report: Mapping[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(provider, principal kind, principal, dag_id or "*", permission, source): one row per reason."""
    rows: list[tuple[str, str, str, str, str, str]] = []
    for provider in report["providers"]:
        for principal in provider["principals"]:
            head = (provider["name"], principal["kind"], principal["name"])
            for held in principal["global"]:
                rows.extend((*head, "*", held["permission"], source) for source in held["sources"])
            for dag_id, entries in principal["dags"].items():
                for held in entries:
                    rows.extend((*head, dag_id, held["permission"], source) for source in held["sources"])
    return rows


__all__ = [
    "REPORT_VERSION",
    "DagFactsLike",
    "Holdings",
    "add",
    "build_report",
    "compile_dags",
    "dag_holdings",
    "dag_sources",
    "grouped_lines",
    "merge",
    "named_by",
    "permission_text",
    "report_rows",
    "role_holdings",
    "role_reasons",
]
