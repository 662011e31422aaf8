"""``python -m dev.arm_emulator --port 0 [--http-port 0] [--state-dir DIR] [--verbose]``

Prints one line ``ARM_EMULATOR_READY {"url": …, "http_url": …, "ca": …}`` once both listeners accept
connections; SIGTERM/SIGINT (or stdin EOF with ``--exit-on-stdin-eof``) stop it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from . import tls
from .server import READY_PREFIX, make_server
from .state import State


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m dev.arm_emulator", description="Azure Resource Manager + Entra + managed-identity emulator"
    )
    p.add_argument("--port", type=int, default=0, help="HTTPS port on 127.0.0.1 (0 = any free port)")
    p.add_argument("--http-port", type=int, default=0, help="plain-HTTP port on 127.0.0.1 (0 = any free port)")
    p.add_argument("--state-dir", help="where ca.pem/key.pem go (default: a temp dir removed at exit)")
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
    p.add_argument("--verbose", action="store_true", help="log one line per request to stderr")
    p.add_argument("--exit-on-stdin-eof", action="store_true", help="stop when stdin closes (parent died)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    own_dir = args.state_dir is None
    state_dir = Path(tempfile.mkdtemp(prefix="arm-emulator-")) if own_dir else Path(args.state_dir)
    if args.alias_host and not args.alias_host.startswith("127."):
        raise SystemExit("--alias-host must be a 127.0.0.0/8 address")
    files = tls.generate(state_dir, ("127.0.0.1", args.alias_host) if args.alias_host else ("127.0.0.1",))
    state = State(lro_retry_after=args.lro_retry_after)
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

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if args.exit_on_stdin_eof:

        def _watch_stdin() -> None:
            # os.read, not sys.stdin: a thread blocked inside the buffered reader aborts interpreter exit
            fd = sys.stdin.fileno()
            while os.read(fd, 4096):
                pass
            stop.set()

        threading.Thread(target=_watch_stdin, name="stdin-watch", daemon=True).start()

    ready = {"url": servers[0].url, "http_url": servers[1].url, "ca": str(files.ca.resolve())}
    sys.stdout.write(READY_PREFIX + json.dumps(ready) + "\n")
    sys.stdout.flush()

    while not stop.wait(0.1):
        pass
    for s in servers:
        s.shutdown()
        s.server_close()
    if own_dir:
        shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
