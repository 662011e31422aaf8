"""Implementations of ``airflow identity-auth-manager ...``; each prints a short answer or one error line.

Both ``check-config`` and ``explain`` cover every configured provider (``providers = a,b``), build the
provider with the api-server's own factory (:func:`~airflow_identity_provider.auth.idp.make_provider`) and
compute identities with the sign-in's own function, so what they report is what sign-in does.
"""

from __future__ import annotations

import argparse
import json
import sys

from airflow_identity_provider.auth.rules import policy
from airflow_identity_provider.auth.rules.claims import map_role
from airflow_identity_provider.auth.rules.identity import claims_identity, groups_need_graph
from airflow_identity_provider.auth.rules.settings import (
    AuthSettings,
    SettingsError,
    load_all_settings,
    settings_warnings,
)
from airflow_identity_provider.errors import Refusal


def _all_settings_or_exit() -> dict[str, AuthSettings]:
    try:
        return load_all_settings()
    except SettingsError as err:
        sys.exit(f"error: {err}")


def check_config(args: argparse.Namespace) -> None:
    from airflow_identity_provider.auth.idp import make_provider
    from airflow_identity_provider.auth.services.urls import callback_url

    providers = _all_settings_or_exit()
    failures: list[str] = []
    for name, settings in providers.items():
        if len(providers) > 1:
            print(f"provider:      {name} ({settings.display_name})")
        print(f"idp:           {settings.idp}")
        print(f"issuer:        {settings.issuer}")
        print(f"client_id:     {settings.client_id}")
        print(f"redirect URI:  {callback_url(name)}  (register exactly this at the identity provider)")
        print(f"groups claim:  {settings.groups_claim}")
        for group, role in sorted(settings.role_mapping.items()):
            print(f"  {group} -> {role.display_name}")
        default = settings.default_role.display_name if settings.default_role else "(refuse sign-in)"
        print(f"default role:  {default}")
        for warning in settings_warnings(settings):
            print(f"warning:       {warning}")
        try:
            meta = make_provider(settings).metadata()
        except Refusal as err:
            prefix = f"provider {name}: " if len(providers) > 1 else ""
            failures.append(f"error: {prefix}discovery failed: {err}")
            continue
        print(f"discovery:     ok ({meta.authorization_endpoint})")
    if failures:
        sys.exit("\n".join(failures))


def role_table(args: argparse.Namespace) -> None:
    for role, resource, entity, methods in policy.describe():
        print(f"{role:<6} {resource:<14} {entity:<16} {methods}")


def explain(args: argparse.Namespace) -> None:
    providers = _all_settings_or_exit()
    wanted = getattr(args, "provider", None)
    if wanted:
        if wanted not in providers:
            sys.exit(f"error: --provider: no provider is named {wanted!r}; configured: {', '.join(providers)}")
        providers = {wanted: providers[wanted]}
    try:
        claims = json.loads(args.claims)
    except json.JSONDecodeError as err:
        sys.exit(f"error: --claims is not a JSON object: {err}")
    if not isinstance(claims, dict):
        sys.exit(f"error: --claims is not a JSON object: got a {type(claims).__name__}")
    refusals = 0
    for name, settings in providers.items():
        if len(providers) > 1:
            print(f"provider: {name} ({settings.display_name})")
        try:
            identity = claims_identity(claims, settings)
            from_graph = groups_need_graph(claims, settings, identity)
        except Refusal as err:
            if len(providers) == 1:
                sys.exit(f"refused: {err}")
            print(f"refused: {err}")
            refusals += 1
            continue
        role = map_role(identity.groups, settings.role_mapping, settings.default_role)
        matched = [g for g in identity.groups if g in settings.role_mapping]
        print(f"user:    {identity.user_id} ({identity.name})")
        if from_graph:
            print("groups:  (group overage: sign-in looks them up in Microsoft Graph; not shown here)")
        else:
            print(f"groups:  {', '.join(identity.groups) or '(none)'} from the {settings.groups_claim!r} claim")
        print(f"matched: {', '.join(matched) or '(none)'}")
        print(f"role:    {role.display_name if role else 'none: sign-in refused'}")
    if refusals == len(providers):
        sys.exit("refused: by every provider")
