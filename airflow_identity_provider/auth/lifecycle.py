"""The api-server's start: one line and a stop when a setting is wrong (even with several workers), and one
warning for each configured feature this Airflow version lacks."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from airflow_identity_provider import version_compat
from airflow_identity_provider.auth.rules.settings import settings_warnings

if TYPE_CHECKING:
    from airflow_identity_provider.auth.idp.oidc import OidcProvider

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


def warn_about_this_airflow(
    providers: Mapping[str, OidcProvider], *, teams: Collection[str], can_revoke: bool
) -> None:
    """Settings that work but may surprise, and configured features this Airflow lacks: one line each."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
    from airflow.configuration import conf

    settings = [provider.settings for provider in providers.values()]
    for each in settings:
        for warning in settings_warnings(each):
            log.warning("airflow-identity-provider: %s", warning)
    if teams and not conf.getboolean("core", "multi_team", fallback=False):
        if version_compat.AIRFLOW_V_3_2_PLUS:
            log.warning("airflow-identity-provider: team_mapping is set but [core] multi_team is off; ignored")
        else:
            version_compat.warn_missing("teams")
    if not version_compat.AIRFLOW_V_3_2_PLUS and any(each.access.grants for each in settings):
        version_compat.warn_missing("per_dag_lists")
    if not version_compat.CAN_END_SESSION_ON_REFRESH and any(each.revalidate_interval for each in settings):
        version_compat.warn_missing("end_session_on_refresh")
    if not can_revoke:
        version_compat.warn_missing("revoke_token")
    # Airflow 3.3 added get_fastapi_middlewares; before it neither the direct Bearer nor the request context runs.
    if not hasattr(BaseAuthManager, "get_fastapi_middlewares"):
        if any(each.api_audiences for each in settings):
            version_compat.warn_missing("idp_bearer")
        version_compat.warn_missing("audit_request_context")


__all__ = ["ConfigurationFailure", "fail_at_start", "warn_about_this_airflow"]
