"""``python -m dev.graph_emulator --port 0 [--tenant T] [--app CLIENT_ID=SECRET …] [--state-dir DIR] [--verbose]``

Prints one line ``GRAPH_EMULATOR_READY {"url": …, "ca": …, "tenant_id": …, "authority": …}`` once it is
listening; SIGTERM/SIGINT (or stdin EOF with ``--exit-on-stdin-eof``) stop it.
"""

from __future__ import annotations

import argparse
import sys

from dev.emulator_kit.main import main_for

from .app import DEFAULT_TENANT_ID, GraphApp

READY_PREFIX = "GRAPH_EMULATOR_READY "


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", default=DEFAULT_TENANT_ID, help="the only tenant id the token endpoint serves")
    parser.add_argument(
        "--app",
        action="append",
        default=[],
        metavar="CLIENT_ID=SECRET",
        help="register an app registration (repeatable); with none, any client id and secret get tokens",
    )


def _build(args: argparse.Namespace) -> tuple[GraphApp, dict[str, str]]:
    apps = dict(item.split("=", 1) for item in args.app)
    app = GraphApp(tenant_id=args.tenant, apps=apps)
    return app, {"tenant_id": args.tenant}


def main(argv: list[str] | None = None) -> int:
    return main_for(
        "python -m dev.graph_emulator", "Microsoft Graph + Entra token endpoint emulator", _arguments, _build,
        READY_PREFIX, argv,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
