"""The process side of every emulator (``python -m dev.arm_emulator``, ``dev.graph_emulator``,
``dev.jumpcloud_emulator``).

Common options (``common_arguments``), the READY line (``announce``: exactly one ``<PREFIX>{"url": …, "ca": …}``
line once the listeners accept connections) and the stop (``watch_for_stop`` before the READY line, then
``wait_for``: SIGTERM/SIGINT, or stdin EOF with ``--exit-on-stdin-eof``, i.e. when the parent died; exit code
0). ``main_for``/``run`` are the whole program of a directory emulator: a self-signed certificate (its own CA),
one ``EmulatorServer`` on 127.0.0.1.
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
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType

from . import tls
from .server import EmulatorServer
from .web import EmulatorApp


def common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=0, help="HTTPS port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--state-dir", help="where ca.pem/key.pem go (default: a temp dir removed at exit)")
    parser.add_argument("--verbose", action="store_true", help="log one line per request to stderr")
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help="stop when stdin closes (parent died)")


def announce(ready_prefix: str, ready: Mapping[str, str]) -> None:
    sys.stdout.write(ready_prefix + json.dumps(dict(ready)) + "\n")
    sys.stdout.flush()


def watch_for_stop(*, exit_on_stdin_eof: bool) -> threading.Event:
    """An event set by SIGTERM or SIGINT (or, with ``exit_on_stdin_eof``, when stdin closes). Installed before the
    READY line: a client may stop the process as soon as it reads it, and the stop must still be clean."""
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if exit_on_stdin_eof:

        def _watch_stdin() -> None:
            # os.read, not sys.stdin: a thread blocked inside the buffered reader aborts interpreter exit
            fd = sys.stdin.fileno()
            while os.read(fd, 4096):
                pass
            stop.set()

        threading.Thread(target=_watch_stdin, name="stdin-watch", daemon=True).start()
    return stop


def wait_for(stop: threading.Event) -> None:
    while not stop.wait(0.1):  # short waits: the main thread must get back to Python to run signal handlers
        pass


def run(args: argparse.Namespace, app: EmulatorApp, ready_prefix: str, extra_ready: dict[str, str]) -> int:
    own_dir = args.state_dir is None
    state_dir = Path(tempfile.mkdtemp(prefix=f"{app.name.lower()}-")) if own_dir else Path(args.state_dir)
    files = tls.generate(state_dir, common_name=f"{app.name} (test only)")
    server = EmulatorServer(("127.0.0.1", args.port), app, ssl_context=tls.server_context(files), verbose=args.verbose)
    threading.Thread(target=server.serve_forever, args=(0.1,), name="https-listener", daemon=True).start()
    stop = watch_for_stop(exit_on_stdin_eof=args.exit_on_stdin_eof)
    announce(ready_prefix, {"url": server.url, "ca": str(files.ca.resolve()), **extra_ready})
    wait_for(stop)
    app.faults_cleared.set()  # release parked "hang" connections
    server.shutdown()
    server.server_close()
    if own_dir:
        shutil.rmtree(state_dir, ignore_errors=True)
    return 0


def main_for(
    prog: str,
    description: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    build: Callable[[argparse.Namespace], tuple[EmulatorApp, dict[str, str]]],
    ready_prefix: str,
    argv: list[str] | None = None,
) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    common_arguments(parser)
    add_arguments(parser)
    args = parser.parse_args(argv)
    app, extra_ready = build(args)
    return run(args, app, ready_prefix, extra_ready)
