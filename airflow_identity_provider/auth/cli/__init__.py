"""``airflow identity-auth-manager ...`` command definitions. Cheap to import: Airflow loads it on every CLI start."""

from __future__ import annotations

from airflow.cli.cli_config import ActionCommand, Arg, CLICommand, GroupCommand, lazy_load_command

_CLI = "airflow_identity_provider.auth.cli"

ARG_CLAIMS = Arg(  # type: ignore[no-untyped-call]
    ("--claims",),
    help='ID-token claims as JSON, e.g. \'{"sub": "alice", "groups": ["airflow-admins"]}\'',
    required=True,
)
ARG_PROVIDER = Arg(  # type: ignore[no-untyped-call]
    ("--provider",),
    help="Only this provider (a name from the providers setting of identity_auth_manager); default: each",
    default=None,
)
ARG_DAG = Arg(  # type: ignore[no-untyped-call]
    ("--dag",),
    help="Also show every permission on this DAG and where it comes from (DAG facts from the metadata DB)",
    default=None,
    metavar="DAG_ID",
)
ARG_FORMAT = Arg(  # type: ignore[no-untyped-call]
    ("--format",),
    help="json (the documented shape), csv (one row per permission and reason) or html (one page); default json",
    choices=("json", "csv", "html"),
    default="json",
)
ARG_OUTPUT = Arg(  # type: ignore[no-untyped-call]
    ("--output",),
    help="Write the report to this file instead of standard output",
    default=None,
    metavar="FILE",
)


def get_identity_cli_commands() -> list[CLICommand]:
    return [
        GroupCommand(
            name="identity-auth-manager",
            help="Check and explain the identity auth manager's sign-in and access configuration",
            subcommands=(
                ActionCommand(
                    name="check-config",
                    help="Validate the identity_auth_manager settings and reach every identity provider's "
                    "discovery document",
                    func=lazy_load_command(f"{_CLI}.commands.check_config"),
                    args=(),
                ),
                ActionCommand(
                    name="role-table",
                    help="Print what each Airflow role may do (resource, entity, methods)",
                    func=lazy_load_command(f"{_CLI}.commands.role_table"),
                    args=(),
                ),
                ActionCommand(
                    name="explain",
                    help="Show what the given ID-token claims would get from each provider (roles, teams, grants) "
                    "and why; with --dag, every permission on that DAG and where it comes from",
                    func=lazy_load_command(f"{_CLI}.explain.explain"),
                    args=(ARG_CLAIMS, ARG_DAG, ARG_PROVIDER),
                ),
                ActionCommand(
                    name="access-report",
                    help="For auditors: what every mapped group and every role may do, globally and per DAG, and why",
                    func=lazy_load_command(f"{_CLI}.access_report.access_report"),
                    args=(ARG_FORMAT, ARG_PROVIDER, ARG_OUTPUT),
                ),
            ),
        )
    ]
