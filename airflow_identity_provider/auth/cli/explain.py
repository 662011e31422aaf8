"""``airflow identity-auth-manager explain --claims JSON [--dag DAG_ID] [--provider NAME]``.

What given ID-token claims would get at sign-in, from each provider, and why: the user, the groups some
setting names, the roles (and the group that gave each), teams and the DAG grants that apply; with
``--dag``, every permission on that DAG and where it comes from. Identities are computed with the
sign-in's own function, roles with the sign-in's ``AccessPolicy.assign`` and DAG answers with
``AccessPolicy.dag_access`` over the DAG index read from the metadata DB, so what it says is what
sign-in and the api-server do.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_identity_provider.auth.cli.common import all_settings_or_exit, load_dag_index, section_of, selected
from airflow_identity_provider.auth.rules.access import AccessPolicy, Principal
from airflow_identity_provider.auth.rules.access_control import AccessControl
from airflow_identity_provider.auth.rules.access_report import (
    compile_dags,
    dag_holdings,
    grouped_lines,
    merge,
    named_by,
    role_holdings,
    role_reasons,
)
from airflow_identity_provider.auth.rules.claims import Identity
from airflow_identity_provider.auth.rules.identity import claims_identity, groups_need_graph
from airflow_identity_provider.auth.rules.settings import AuthSettings
from airflow_identity_provider.auth.services.results import user_id_for
from airflow_identity_provider.errors import Refusal

if TYPE_CHECKING:
    from airflow_identity_provider.auth.catalog.dag_index import DagFacts

MAX_DAGS_SHOWN = 10


def explain(args: argparse.Namespace) -> None:
    all_providers = all_settings_or_exit()
    providers = selected(all_providers, args)
    claims = _claims(args.claims)
    dag_id: str | None = getattr(args, "dag", None)
    index, db_error = load_dag_index()
    if db_error:
        print(
            f"note:    cannot read the DAG index from the metadata DB ({db_error}); DAG tags, bundles and "
            "access_control are left out (run this where the api-server's [database] sql_alchemy_conn works)"
        )
    dags = index.all()
    compiled = {name: access_control for name, (access_control, _) in compile_dags(dags).items()}
    ac_names = frozenset(key for access_control in compiled.values() for key in access_control)
    refusals = 0
    for name, settings in providers.items():
        if len(providers) > 1:
            print(f"provider: {name} ({settings.display_name})")
        refused = _explain_one(all_providers, name, claims, ac_names, dags, compiled, dag_id, db_error)
        if refused:
            if len(providers) == 1:
                sys.exit(f"refused: {refused}")
            print(f"refused: {refused}")
            refusals += 1
    if refusals == len(providers):
        sys.exit("refused: by every provider")


def _claims(text: str) -> dict[str, Any]:
    try:
        claims = json.loads(text)
    except json.JSONDecodeError as err:
        sys.exit(f"error: --claims is not a JSON object: {err}")
    if not isinstance(claims, dict):
        sys.exit(f"error: --claims is not a JSON object: got a {type(claims).__name__}")
    return claims


def _explain_one(
    all_providers: Mapping[str, AuthSettings],
    name: str,
    claims: Mapping[str, Any],
    ac_names: frozenset[str],
    dags: Mapping[str, DagFacts],
    compiled: Mapping[str, AccessControl],
    dag_id: str | None,
    db_error: str | None,
) -> str | None:
    """Print what provider ``name`` gives; returns why sign-in is refused, or None."""
    settings = all_providers[name]
    try:
        identity = claims_identity(claims, settings)
        from_graph = groups_need_graph(claims, settings, identity)
    except Refusal as err:
        return str(err)
    policy = settings.access
    assignment = policy.assign(identity.groups, access_control_names=ac_names)
    print(f"user:    {user_id_for(all_providers, name, identity)} ({identity.name})")
    if from_graph:
        print("groups:  (group overage: sign-in looks them up in Microsoft Graph; not shown here)")
    else:
        print(f"groups:  {', '.join(identity.groups) or '(none)'} from the {settings.groups_claim!r} claim")
    matched = [f"{group} ({', '.join(by)})" for group in identity.groups if (by := named_by(policy, group, ac_names))]
    print(f"matched: {', '.join(matched) or '(none)'}")
    if assignment is None:
        print("role:    none: sign-in refused")
        return _why_refused(name, settings, identity, from_graph)
    reasons = role_reasons(policy, assignment.groups, assignment.roles)
    roles = "; ".join(f"{role} ({reason})" for role, reason in reasons.items())
    print(f"role:    {roles or 'none (access through dag_grants or access_control only)'}")
    teams = [f"{team} ({_givers(policy.team_mapping, identity.groups, team)})" for team in assignment.teams]
    print(f"teams:   {', '.join(teams) or '(none)'}")
    for index in policy.grants_of(frozenset(assignment.groups)):
        print(f"grant:   {policy.grants[index].describe(index)}")
    principal = Principal(assignment.roles, frozenset(assignment.groups), frozenset(assignment.teams))
    if not db_error:
        print(f"dags:    {_visible(policy, principal, reasons, dags, compiled)}")
    if dag_id is not None:
        _explain_dag(policy, principal, reasons, dag_id, dags.get(dag_id), compiled.get(dag_id, {}), db_error)
    return None


def _givers(mapping: Mapping[str, tuple[str, ...]], groups: tuple[str, ...], value: str) -> str:
    return ", ".join(f"group {group}" for group in groups if value in mapping.get(group, ()))


def _why_refused(name: str, settings: AuthSettings, identity: Identity, from_graph: bool) -> str:
    section = section_of(name)
    if from_graph:
        return (
            "none of the groups in the claims gives access, and the rest are looked up in Microsoft Graph at "
            "sign-in; pass them in --claims to see what they give"
        )
    if not identity.groups:
        return (
            f"the token carries no groups in the {settings.groups_claim!r} claim and default_role is empty. "
            f"Check [{section}] groups_claim and the group claim the identity provider sends, or set [{section}] "
            "default_role"
        )
    example = json.dumps({identity.groups[0]: "Viewer"})
    return (
        f"no setting names any of the groups ({', '.join(identity.groups)}) and default_role is empty. Map one "
        f"in [{section}] role_mapping (e.g. {example}), list it in [{section}] dag_grants, name it in a DAG's "
        f"access_control, or set [{section}] default_role"
    )


def _visible(
    policy: AccessPolicy,
    principal: Principal,
    reasons: Mapping[str, str],
    dags: Mapping[str, DagFacts],
    compiled: Mapping[str, AccessControl],
) -> str:
    """Which DAGs the user sees (holds dag:GET on): all of them through a role, or those a grant/entry opens."""
    roles = role_holdings(policy, reasons, dag_level_only=True)
    if ("dag", "GET") in roles:
        return f"every DAG ({len(dags)} in the index): dag:GET from {'; '.join(roles[('dag', 'GET')])}"
    seen = [
        dag_id
        for dag_id in sorted(dags)
        if ("dag", "GET") in dag_holdings(policy, principal, dag_id, dags[dag_id], compiled.get(dag_id, {}))
    ]
    shown = ", ".join(seen[:MAX_DAGS_SHOWN]) + (
        f" and {len(seen) - MAX_DAGS_SHOWN} more" if len(seen) > MAX_DAGS_SHOWN else ""
    )
    return f"{len(seen)} of {len(dags)} DAGs through dag_grants and access_control" + (f": {shown}" if seen else "")


def _explain_dag(
    policy: AccessPolicy,
    principal: Principal,
    reasons: Mapping[str, str],
    dag_id: str,
    facts: DagFacts | None,
    access_control: AccessControl,
    db_error: str | None,
) -> None:
    if facts is None:
        cause = (
            "the DAG index could not be read"
            if db_error
            else "the metadata DB has no DAG with this id. Check the spelling; if the DAG file is new, the "
            "dag-processor has not parsed it yet (`airflow dags list` shows it once it has; is a dag-processor "
            "running?)"
        )
        print(f"dag:     {dag_id}: not in the DAG index: {cause}")
        print("         below: what applies by dag_id alone (roles, dag_grants globs), without tags, bundle or")
        print("         access_control")
    else:
        about = [f"bundle {facts.bundle or '(none)'}", f"tags {', '.join(sorted(facts.tags)) or '(none)'}"]
        about.append(f"access_control entries {', '.join(sorted(access_control)) or '(none)'}")
        print(f"dag:     {dag_id} ({'; '.join(about)})")
    holdings = merge(
        role_holdings(policy, reasons, dag_level_only=True),
        dag_holdings(policy, principal, dag_id, facts, access_control),
    )
    lines = grouped_lines(holdings)
    width = max((len(text) for text, _ in lines), default=0)
    for text, why in lines:
        print(f"  {text:<{width}}  {'; '.join(why)}")
    if not lines:
        print("  (nothing: this user may not see or change this DAG)")


__all__ = ["explain"]
