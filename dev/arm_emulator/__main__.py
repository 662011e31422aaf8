"""``python -m dev.arm_emulator --port 0 [--http-port 0] [--state-dir DIR [--persist]] [--verbose]``

Prints one line ``ARM_EMULATOR_READY {"url": …, "http_url": …, "ca": …}`` once both listeners accept
connections; SIGTERM/SIGINT (or stdin EOF with ``--exit-on-stdin-eof``) stop it. With ``--persist`` a stop
first lets the answers being sent go out, answers nothing more, and saves the state to the state dir; the
next start with the same state dir (and ports) carries on from there, with the same certificate.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from dev.emulator_kit import tls
from dev.emulator_kit.main import announce, common_arguments, wait_for, watch_for_stop

from .server import READY_PREFIX, make_server
from .state import State


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m dev.arm_emulator", description="Azure Resource Manager + Entra + managed-identity emulator"
    )
    common_arguments(p)  # --port (HTTPS), --state-dir, --verbose, --exit-on-stdin-eof
    p.add_argument("--http-port", type=int, default=0, help="plain-HTTP port on 127.0.0.1 (0 = any free port)")
    p.add_argument(
        "--lro-retry-after",
        type=int,
        default=0,
        help="Retry-After seconds on LRO responses (0 = clients fall back to their polling_interval)",
    )
    p.add_argument(
        "--alias-host",
        default="127.0.0.2",
        help="also serve HTTPS on this loopback address, same port, same state (a 'foreign' host for "
        "host-pinning tests; best effort; '' disables)",
    )
    p.add_argument(
        "--persist",
        action="store_true",
        help="with --state-dir: save the state there at stop and load it at start (a restart ARM's clients "
        "survive: same certificate, same resources and deployments, same request log)",
    )
    return p.parse_args(argv)


STATE_FILE = "state.pickle"


def _drain(state: State, timeout: float = 5.0) -> None:
    """Refuse new requests, then wait (bounded) until every answer already decided has been sent."""
    with state.lock:
        state.accepting = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with state.lock:
            if state.in_flight == 0:
                return
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    own_dir = args.state_dir is None
    state_dir = Path(tempfile.mkdtemp(prefix="arm-emulator-")) if own_dir else Path(args.state_dir)
    if args.alias_host and not args.alias_host.startswith("127."):
        raise SystemExit("--alias-host must be a 127.0.0.0/8 address")
    if args.persist and own_dir:
        raise SystemExit("--persist needs --state-dir")
    ips = ("127.0.0.1", args.alias_host) if args.alias_host else ("127.0.0.1",)
    files = tls.existing(state_dir) if args.persist else None
    files = files or tls.generate(state_dir, ips, common_name="ARM emulator (test only)")
    state = State(lro_retry_after=args.lro_retry_after)
    saved = state_dir / STATE_FILE
    if args.persist and saved.exists():
        state.load(saved)
    context = tls.server_context(files)
    servers = [
        make_server(args.port, state, ssl_context=context, verbose=args.verbose),
        make_server(args.http_port, state, ssl_context=None, verbose=args.verbose),
    ]
    if args.alias_host:
        try:
            port = servers[0].server_address[1]
            servers.append(make_server(port, state, ssl_context=context, verbose=args.verbose, host=args.alias_host))
        except OSError as exc:
            print(f"arm-emulator: not serving {args.alias_host}: {exc}", file=sys.stderr, flush=True)
    threads = [
        threading.Thread(target=s.serve_forever, args=(0.1,), name=f"{s.scheme}-listener", daemon=True) for s in servers
    ]
    for t in threads:
        t.start()

    stop = watch_for_stop(exit_on_stdin_eof=args.exit_on_stdin_eof)
    announce(READY_PREFIX, {"url": servers[0].url, "http_url": servers[1].url, "ca": str(files.ca.resolve())})
    wait_for(stop)
    if args.persist:
        _drain(state)
        state.save(saved)
    for s in servers:
        s.shutdown()
        s.server_close()
    if own_dir:
        shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
