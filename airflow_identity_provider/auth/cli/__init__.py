"""``airflow identity-auth-manager ...`` command definitions. Cheap to import: Airflow loads it on every CLI start."""

from __future__ import annotations

from airflow.cli.cli_config import ActionCommand, Arg, CLICommand, GroupCommand, lazy_load_command

_COMMANDS = "airflow_identity_provider.auth.cli.commands"

ARG_CLAIMS = Arg(  # type: ignore[no-untyped-call]
    ("--claims",),
    help='ID-token claims as JSON, e.g. \'{"sub": "alice", "groups": ["airflow-admins"]}\'',
    required=True,
)
ARG_PROVIDER = Arg(  # type: ignore[no-untyped-call]
    ("--provider",),
    help="Explain for this provider only (a name from [identity_auth_manager] providers); default: each",
    default=None,
)


def get_identity_cli_commands() -> list[CLICommand]:
    return [
        GroupCommand(
            name="identity-auth-manager",
            help="Check and explain the identity auth manager's sign-in configuration",
            subcommands=(
                ActionCommand(
                    name="check-config",
                    help="Validate [identity_auth_manager] and reach every identity provider's discovery document",
                    func=lazy_load_command(f"{_COMMANDS}.check_config"),
                    args=(),
                ),
                ActionCommand(
                    name="role-table",
                    help="Print what each Airflow role may do (resource, entity, methods)",
                    func=lazy_load_command(f"{_COMMANDS}.role_table"),
                    args=(),
                ),
                ActionCommand(
                    name="explain",
                    help="Show which Airflow role the given ID-token claims would get from each provider, and why",
                    func=lazy_load_command(f"{_COMMANDS}.explain"),
                    args=(ARG_CLAIMS, ARG_PROVIDER),
                ),
            ),
        )
    ]
