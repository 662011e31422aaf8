"""``airflow identity-auth-manager access-report [--format json|csv|html] [--provider NAME] [--output FILE]``.

For auditors: every group some setting or DAG names and every role, with what it may do globally and on
each DAG of the index, and why. The report is built by ``auth.rules.access_report.build_report`` (its
docstring documents the JSON shape) over the DAG index read once from the metadata DB; this module only
reads the settings and the DB and writes the result.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from airflow_identity_provider.auth.cli.common import all_settings_or_exit, load_dag_index, selected
from airflow_identity_provider.auth.cli.report_formats import FORMATS, render
from airflow_identity_provider.auth.rules.access_report import build_report


def access_report(args: argparse.Namespace) -> None:
    providers = selected(all_settings_or_exit(), args)
    fmt = getattr(args, "format", None) or "json"
    if fmt not in FORMATS:
        sys.exit(f"error: --format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    index, db_error = load_dag_index()
    warnings = (
        [f"cannot read the DAG index from the metadata DB ({db_error}): no per-DAG access is reported"]
        if db_error
        else []
    )
    report = build_report(
        {name: (settings.display_name, settings.access) for name, settings in providers.items()},
        index.all(),
        generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        warnings=warnings,
    )
    text = render(report, fmt)
    output = getattr(args, "output", None)
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as err:
            sys.exit(f"error: --output: cannot write {output}: {err.strerror or err}")
        principals = sum(len(p["principals"]) for p in report["providers"])
        print(f"wrote {output}: {principals} principals, {len(report['dags'])} DAGs ({fmt})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if warnings:
        sys.exit(f"error: {warnings[0]}")


__all__ = ["access_report"]
