"""Stopping the api-server at start with one line when a setting is wrong, even with several workers."""

from __future__ import annotations

import logging
import time
from typing import Any, NoReturn

log = logging.getLogger("airflow_identity_provider.auth.manager")


class ConfigurationFailure(SystemExit):
    """Stops the api-server at start with one line naming the setting, instead of a trace at first login."""


# How long a failing worker waits for the supervisor's own SIGTERM before exiting anyway.
SUPERVISOR_STOP_GRACE = 15.0
# uvicorn.config.STARTUP_FAILURE: the supervisor stops, instead of restarting, a worker that exits with it.
UVICORN_STARTUP_FAILURE = 3


def _stop_api_server_supervisor() -> bool:
    """With [api] workers > 1, uvicorn's supervisor restarts a worker that exits; a bad setting would then
    loop instead of stopping the api-server. Stop the supervisor too, but only when it really is the
    api-server that spawned this worker. True when this is such a worker and the supervisor was told.

    The worker must not die before the supervisor acted on the signal. The supervisor handles signals only
    between two rounds of health checks (uvicorn ``Multiprocess.run``), and its check of a live worker is a
    ping over a pipe whose other end it holds itself: a worker that exits between ``is_alive()`` and its
    answer is waited for the whole ``timeout_worker_healthcheck`` (Airflow's ``worker_timeout``, 120 s)
    and then restarted. So the worker stays up, answering pings, until the supervisor's ``terminate``
    SIGTERM (or SIGINT) arrives, it was told to stop before it got here, the supervisor is gone, or
    ``SUPERVISOR_STOP_GRACE`` passed."""
    import multiprocessing
    import os
    import signal

    if multiprocessing.parent_process() is None:
        return False
    supervisor = os.getppid()
    try:
        import psutil

        cmdline = " ".join(psutil.Process(supervisor).cmdline())
    except Exception:
        return False
    if "api_server" not in cmdline and "api-server" not in cmdline:
        return False
    stop_signals: list[int] = []
    previous: dict[int, Any] = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda signum, _frame: stop_signals.append(signum))
    except ValueError:  # not the main thread: cannot wait for the signal, exit at once as before
        pass
    try:
        os.kill(supervisor, signal.SIGTERM)
        if previous:
            deadline = time.monotonic() + SUPERVISOR_STOP_GRACE
            while not stop_signals and time.monotonic() < deadline and os.getppid() == supervisor:
                if any(_told_to_stop(handler) for handler in previous.values()):
                    break
                time.sleep(0.05)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return True


def _told_to_stop(handler: Any) -> bool:
    """Whether the signal handler we replaced, uvicorn's ``Server.handle_exit``, already caught a stop:
    the supervisor's SIGTERM can come while this worker still loads the app, before it reached here."""
    return getattr(getattr(handler, "__self__", None), "should_exit", False) is True


def fail_at_start(message: str) -> NoReturn:
    log.error("airflow-identity-provider: %s", message)
    if _stop_api_server_supervisor():
        # A uvicorn worker: the line above is the message. Exit as a startup failure, which the
        # supervisor never restarts, should it see this exit before it acted on the SIGTERM.
        raise ConfigurationFailure(UVICORN_STARTUP_FAILURE)
    raise ConfigurationFailure(f"airflow-identity-provider: {message}")


__all__ = ["ConfigurationFailure", "fail_at_start"]
