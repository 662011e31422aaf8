"""Load and faults, measured: sign-in, the API and ARM deployments keep their promises under pressure.

    .venv/bin/python -m dev.bench.soak             # the full size (by hand, ~5 min on 2 cores)
    .venv/bin/python -m dev.bench.soak --reduced   # the size dev/test runs after the tests (~1 min)
    .venv/bin/python -m dev.bench.soak --only api  # one part (signin, api, arm; comma-separated)

Everything runs on loopback and is stopped at the end: a throw-away PostgreSQL (Debian's package) holds the
api-servers' metadata, as in production; the real local IdP (npm oidc-provider) signs people in; the ARM emulator
stands in for Azure. Each part is bounded in count (``sizes.py``) and in time. The parts run one after another,
so one part's processes do not slow another's figures. It prints one table (figures, then PASS/FAIL per promise)
and exits 1 when a promise was not kept.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

# Everything of one run lives under ROOT (removed when every promise was kept). This process imports Airflow (the
# ARM operators run here, API tokens are signed here): its configuration goes there too, never to ~/airflow or to
# the caller's AIRFLOW_HOME.
os.environ["AIRFLOW_HOME"] = str(Path(tempfile.mkdtemp(prefix="soak-")) / "client")

from airflow import __version__ as airflow_version

from dev.bench.soak import api, arm, signin
from dev.bench.soak.postgres import running_postgres
from dev.bench.soak.report import Section, render
from dev.bench.soak.sizes import FULL, REDUCED, Size

ROOT = Path(os.environ["AIRFLOW_HOME"]).parent
PARTS = ("signin", "api", "arm")
DATABASES = (signin.DATABASE, *api.DATABASES.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--reduced", action="store_true", help="the bounded size CI runs (default: full)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {', '.join(PARTS)}")
    args = parser.parse_args(argv)
    chosen = [part.strip() for part in args.only.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}: choose from {', '.join(PARTS)}")
    size = REDUCED if args.reduced else FULL
    logging.basicConfig(level=logging.WARNING)
    # Importing Airflow set up its logging at INFO: the SDK's request lines and the tasks' audit events would bury
    # the table. Warnings (an ARM rate limit running out, say) still show.
    for name in ("", "azure", "airflow_identity_provider", "airflow"):
        logging.getLogger(name).setLevel(logging.WARNING)

    # A CI job cancelled (SIGTERM) unwinds like Ctrl-C: every part stops its processes on the way out.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    started = time.monotonic()
    passed = False
    try:
        sections = run_parts(chosen, size)
        passed = all(section.passed for section in sections)
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        header = (
            f"soak, {size.name} size: Airflow {airflow_version}, {os.cpu_count()} cores, "
            f"{time.monotonic() - started:.0f} s, load average at the end {load}"
        )
        print(render(sections, header=header), flush=True)
    finally:
        if passed:
            shutil.rmtree(ROOT, ignore_errors=True)
        else:
            print(f"logs of the api-servers, the IdP and the ARM tasks are kept in {ROOT}", flush=True)
    return 0 if passed else 1


def run_parts(chosen: list[str], size: Size) -> list[Section]:
    """The chosen parts one after another, so one part's processes do not slow another's figures."""
    sections: list[Section] = []
    if {"signin", "api"} & set(chosen):
        with running_postgres(DATABASES) as postgres:
            if "signin" in chosen:
                sections.append(signin.run(size, postgres, ROOT / "signin"))
            if "api" in chosen:
                sections.append(api.run(size, postgres, ROOT / "api"))
    if "arm" in chosen:
        sections.append(arm.run(size))
    return sections


if __name__ == "__main__":
    sys.exit(main())
