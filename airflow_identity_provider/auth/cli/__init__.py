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

# `login` (airflow_identity_provider.sso_login, also the `airflow-sso-login` console script): literals here, so
# that every Airflow CLI start does not import it.
LOGIN_ARGS = (
    Arg(  # type: ignore[no-untyped-call]
        ("--api-url",),
        help="Airflow's address, as for airflowctl (default: base_url of the api section of this configuration)",
        default=None,
    ),
    Arg(  # type: ignore[no-untyped-call]
        ("-e", "--env"),
        help="airflowctl environment to store the token for (default production)",
        default="production",
    ),
    Arg(  # type: ignore[no-untyped-call]
        ("--no-browser",),
        help="Print the sign-in address instead of opening a browser",
        action="store_true",
    ),
    Arg(  # type: ignore[no-untyped-call]
        ("--print-token",),
        help="Print the token instead of giving it to airflowctl (no keyring: export AIRFLOW_CLI_TOKEN)",
        action="store_true",
    ),
    Arg(  # type: ignore[no-untyped-call]
        ("--port",),
        help="Loopback port to listen on (default: a random free one)",
        type=int,
        default=0,
    ),
    Arg(  # type: ignore[no-untyped-call]
        ("--timeout",),
        help="Seconds to wait for the sign-in (default 300)",
        type=float,
        default=300.0,
    ),
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
                    name="login",
                    help="Sign in through the identity provider in the browser and give the Airflow token to "
                    "airflowctl (as `airflow-sso-login`)",
                    func=lazy_load_command("airflow_identity_provider.sso_login.airflow_command"),
                    args=LOGIN_ARGS,
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
