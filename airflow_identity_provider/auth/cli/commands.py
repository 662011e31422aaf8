"""``airflow identity-auth-manager check-config`` and ``role-table``; each prints a short answer or one error line.

``check-config`` covers every configured provider (``providers = a,b``) and builds each with the api-server's
own factory (:func:`~airflow_identity_provider.auth.idp.make_provider`), so what it reports is what the
api-server does. ``explain`` and ``access-report`` live in their own modules.
"""

from __future__ import annotations

import argparse
import sys

from airflow_identity_provider.auth.cli.common import all_settings_or_exit
from airflow_identity_provider.auth.rules import policy
from airflow_identity_provider.auth.rules.settings import settings_warnings
from airflow_identity_provider.errors import Refusal


def check_config(args: argparse.Namespace) -> None:
    from airflow_identity_provider.auth.idp import make_provider
    from airflow_identity_provider.auth.services.urls import callback_url

    providers = all_settings_or_exit()
    failures: list[str] = []
    for name, settings in providers.items():
        if len(providers) > 1:
            print(f"provider:      {name} ({settings.display_name})")
        print(f"idp:           {settings.idp}")
        print(f"issuer:        {settings.issuer}")
        print(f"client_id:     {settings.client_id}")
        print(f"redirect URI:  {callback_url(name)}  (register exactly this at the identity provider)")
        print(f"groups claim:  {settings.groups_claim}")
        for group, roles in sorted(settings.role_mapping.items()):
            print(f"  {group} -> {', '.join(roles)}")
        default = settings.default_role or "(refuse sign-in)"
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
