"""``luigi-identity-gateway --config gateway.ini``: serve the gateway with uvicorn.

A console script, not an ``airflow`` subcommand: the hosts that run luigid usually have no Airflow
configuration, and an Airflow subcommand would start by reading (or creating) airflow.cfg and loading every
provider. The settings come from the gateway's own ini file (``settings.load_gateway``), validated by the
same pure parser as ``[identity_auth_manager]``; a bad value stops the start with one line naming the key.

``--check`` validates the file and asks each provider for its discovery document, then exits.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_identity_provider.errors import Refusal

if TYPE_CHECKING:
    from airflow_identity_provider.auth.idp.oidc import OidcProvider

PROG = "luigi-identity-gateway"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, help="the ini file with a [luigi_gateway] section")
    parser.add_argument("--host", help="listen address (overrides the file's host)")
    parser.add_argument("--port", type=int, help="listen port (overrides the file's port)")
    parser.add_argument("--check", action="store_true", help="validate the settings, reach the IdP, and exit")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--audit-log", default="-", help="file for the audit events (JSON lines); - for stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Audit events are JSON lines on the airflow_identity_provider.audit logger: to stderr unless routed.
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from airflow_identity_provider.luigi_gateway.settings import load_gateway  # imports Airflow's modules

    _route_audit(args.audit_log)

    try:
        settings = load_gateway(args.config)
    except Refusal as err:
        print(f"{PROG}: error: {err.message}", file=sys.stderr)
        return 2
    for warning in settings.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)

    from airflow_identity_provider.auth.idp import make_provider

    providers = {name: make_provider(s) for name, s in settings.providers.items()}
    if args.check:
        return _check(providers)

    import uvicorn

    from airflow_identity_provider.luigi_gateway.app import create_app

    app = create_app(settings, providers=providers)
    host, port = args.host or settings.host, args.port or settings.port
    where = f"http://{host}:{port}/ -> luigid at {settings.upstream.description}"
    print(f"{PROG}: serving {settings.public_url} on {where}", file=sys.stderr, flush=True)
    # proxy_headers off: the client address comes from trusted_proxies, as in the auth manager.
    uvicorn.run(app, host=host, port=port, log_level=args.log_level, proxy_headers=False, server_header=False)
    return 0


def _route_audit(target: str) -> None:
    """The audit events as bare JSON lines (one per event), whatever logging Airflow's import set up."""
    from airflow_identity_provider.audit import audit_log

    handler = logging.StreamHandler(sys.stderr) if target == "-" else logging.FileHandler(target, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    audit_log.addHandler(handler)
    audit_log.setLevel(logging.INFO)
    audit_log.propagate = False


def _check(providers: Mapping[str, OidcProvider]) -> int:
    failed = False
    for name, provider in providers.items():
        try:
            provider.metadata()
        except Refusal as err:
            print(f"{PROG}: error: provider {name!r}: {err.message}", file=sys.stderr)
            failed = True
        else:
            print(f"{PROG}: provider {name!r}: ok", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
