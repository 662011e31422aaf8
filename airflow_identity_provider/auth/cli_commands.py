"""Implementations of ``airflow identity-auth-manager ...``; each prints a short answer or one error line."""

from __future__ import annotations

import argparse
import json
import sys

from airflow_identity_provider.auth import policy
from airflow_identity_provider.auth.claims import ClaimError, identity_from_claims, map_role
from airflow_identity_provider.auth.settings import AuthSettings, SettingsError, load_settings, settings_warnings


def _settings_or_exit() -> AuthSettings:
    try:
        return load_settings()
    except SettingsError as err:
        sys.exit(f"error: {err}")


def check_config(args: argparse.Namespace) -> None:
    from airflow_identity_provider.auth.idp.id_token import TokenRejected
    from airflow_identity_provider.auth.idp.oidc import IdpUnavailable, OidcProvider
    from airflow_identity_provider.auth.routes import callback_url

    settings = _settings_or_exit()
    print(f"idp:           {settings.idp}")
    print(f"issuer:        {settings.issuer}")
    print(f"client_id:     {settings.client_id}")
    print(f"redirect URI:  {callback_url()}  (register exactly this at the identity provider)")
    print(f"groups claim:  {settings.groups_claim}")
    for group, role in sorted(settings.role_mapping.items()):
        print(f"  {group} -> {role.display_name}")
    default = settings.default_role.display_name if settings.default_role else "(refuse sign-in)"
    print(f"default role:  {default}")
    for warning in settings_warnings(settings):
        print(f"warning:       {warning}")
    try:
        meta = OidcProvider(settings).metadata()
    except (IdpUnavailable, TokenRejected) as err:
        sys.exit(f"error: discovery failed: {err}")
    print(f"discovery:     ok ({meta.authorization_endpoint})")


def role_table(args: argparse.Namespace) -> None:
    for role, resource, entity, methods in policy.describe():
        print(f"{role:<6} {resource:<14} {entity:<16} {methods}")


def explain(args: argparse.Namespace) -> None:
    settings = _settings_or_exit()
    try:
        claims = json.loads(args.claims)
        identity = identity_from_claims(claims, groups_claim=settings.groups_claim)
    except (json.JSONDecodeError, AttributeError) as err:
        sys.exit(f"error: --claims is not a JSON object: {err}")
    except ClaimError as err:
        sys.exit(f"refused: {err}")
    role = map_role(identity.groups, settings.role_mapping, settings.default_role)
    matched = [g for g in identity.groups if g in settings.role_mapping]
    print(f"user:    {identity.user_id} ({identity.name})")
    print(f"groups:  {', '.join(identity.groups) or '(none)'} from the {settings.groups_claim!r} claim")
    print(f"matched: {', '.join(matched) or '(none)'}")
    print(f"role:    {role.display_name if role else 'none: sign-in refused'}")
