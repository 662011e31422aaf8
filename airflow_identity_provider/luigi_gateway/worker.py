"""The worker side: make luigi's ``RemoteScheduler`` send a fresh ``Authorization: Bearer`` on every call.

Unmodified workers can put an access token in the scheduler URL (``https://worker:<token>@gateway/``) and the
gateway accepts it as the Basic password, but tokens live an hour. This helper asks a token source before
every call instead (each source caches and renews on its own):

- ``TokenFile``: a file another process keeps fresh, e.g. a Kubernetes projected service-account token or
  the file azure-workload-identity mounts; read again whenever it changes;
- ``AzureToken``: an azure-identity credential (``DefaultAzureCredential``: managed identity, workload
  identity, a service principal from the environment) for ``scope``;
- ``ClientCredentials``: OAuth 2.0 client credentials at any IdP's token endpoint.

Use it with ``luigi.build(tasks, worker_scheduler_factory=IdentitySchedulerFactory())``, or run the command
line as ``python -m airflow_identity_provider.luigi_gateway.worker --module my_tasks MyTask``. Which source
comes from the ``[identity_gateway]`` section of luigi's configuration (see ``source_from_config``).

A leaf: imports luigi and the standard library only (azure-identity when asked for), never Airflow, so it
runs in any luigi worker's environment.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

from luigi import configuration, interface, rpc

log = logging.getLogger("luigi-interface")
CONFIG_SECTION = "identity_gateway"
RENEW_BEFORE_SECONDS = 300.0  # ask for a new token this long before the old one expires


class TokenSource(Protocol):
    def token(self) -> str: ...


class TokenUnavailable(RuntimeError):
    """No token could be had; the message says from where and why."""


class TokenFile:
    """A token file renewed by someone else (kubelet, azure-workload-identity): read when it changed."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._seen: tuple[float, int] | None = None
        self._token = ""

    def token(self) -> str:
        with self._lock:
            try:
                stat = self.path.stat()
                if self._seen != (stat.st_mtime, stat.st_size):
                    self._token = self.path.read_text(encoding="utf-8").strip()
                    self._seen = (stat.st_mtime, stat.st_size)
            except OSError as err:
                raise TokenUnavailable(f"cannot read the token file {self.path}: {err.strerror}") from None
            if not self._token:
                raise TokenUnavailable(f"the token file {self.path} is empty")
            return self._token


class _Cached:
    """A token and when to renew it; subclasses fetch."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._renew_at = 0.0

    def token(self) -> str:
        with self._lock:
            if not self._token or self._clock() >= self._renew_at:
                self._token, expires_at = self._fetch()
                self._renew_at = max(self._clock() + 1, expires_at - RENEW_BEFORE_SECONDS)
            return self._token

    def _fetch(self) -> tuple[str, float]:
        raise NotImplementedError


class AzureToken(_Cached):
    """An azure-identity credential's token for ``scope`` (``api://<gateway app>/.default``)."""

    def __init__(self, scope: str, credential: Any = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock)
        self.scope = scope
        self._credential = credential

    def _fetch(self) -> tuple[str, float]:
        if self._credential is None:
            from azure.identity import DefaultAzureCredential

            self._credential = DefaultAzureCredential()
        try:
            access = self._credential.get_token(self.scope)
        except Exception as err:  # azure-identity raises ClientAuthenticationError and friends
            raise TokenUnavailable(f"azure-identity gave no token for {self.scope}: {err}") from None
        return str(access.token), float(access.expires_on)


class ClientCredentials(_Cached):
    """RFC 6749 4.4 at ``token_endpoint`` (client_secret_basic); ``resource`` for IdPs that want RFC 8707."""

    def __init__(
        self,
        token_endpoint: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str = "",
        resource: str = "",
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(clock)
        self.token_endpoint = token_endpoint
        self._auth = (client_id, client_secret)
        self._form = {k: v for k, v in {"scope": scope, "resource": resource}.items() if v}
        self._timeout = timeout

    def _fetch(self) -> tuple[str, float]:
        import base64

        form = urlencode({"grant_type": "client_credentials", **self._form}).encode()
        basic = base64.b64encode(f"{self._auth[0]}:{self._auth[1]}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310 (the configured token endpoint, https in production)
            self.token_endpoint, data=form, headers={"Authorization": f"Basic {basic}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                body = json.loads(response.read())
        except urllib.error.HTTPError as err:
            raise TokenUnavailable(f"{self.token_endpoint} refused the client credentials: HTTP {err.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise TokenUnavailable(f"cannot get a token from {self.token_endpoint}: {err}") from None
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise TokenUnavailable(f"{self.token_endpoint} answered without an access_token")
        return body["access_token"], self._clock() + float(body.get("expires_in") or 300)


class BearerFetcher(rpc._FetcherInterface):  # type: ignore[misc]
    """luigi's URLLibFetcher, with a fresh Bearer on each call and the gateway's refusal reason in the log."""

    raises = (urllib.error.URLError, socket.timeout, TokenUnavailable)

    def __init__(self, source: TokenSource) -> None:
        self._source = source

    def fetch(self, full_url: str, body: dict[str, str], timeout: float) -> str:
        request = urllib.request.Request(  # noqa: S310 (luigi's scheduler URL)
            full_url,
            data=urlencode(body).encode() if body else None,
            headers={"Authorization": f"Bearer {self._source.token()}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return str(response.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            log.warning("The luigi gateway refused %s: HTTP %s %s", urlsplit(full_url).path, err.code, _reason(err))
            raise

    def close(self) -> None:
        pass


def _reason(err: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(err.read() or b"{}")
    except ValueError:
        return ""
    return f"{body.get('reason', '')}: {body.get('detail', '')}" if isinstance(body, dict) else ""


class BearerRemoteScheduler(rpc.RemoteScheduler):  # type: ignore[misc]
    def __init__(self, url: str, source: TokenSource, connect_timeout: float | None = None) -> None:
        # A user:password in the URL would be sent as Basic next to the Bearer: drop it.
        parts = urlsplit(url)
        url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        super().__init__(url, connect_timeout)  # type: ignore[no-untyped-call]
        self._fetcher: Any = BearerFetcher(source)


class IdentitySchedulerFactory(interface._WorkerSchedulerFactory):  # type: ignore[misc]
    """``luigi.build(..., worker_scheduler_factory=IdentitySchedulerFactory())``; ``source`` defaults to
    ``source_from_config()``."""

    def __init__(self, source: TokenSource | None = None) -> None:
        self._source = source

    def create_remote_scheduler(self, url: str) -> BearerRemoteScheduler:
        return BearerRemoteScheduler(url, self._source or source_from_config())


def source_from_config(get: Callable[[str], str] | None = None) -> TokenSource:
    """From luigi's configuration, section ``[identity_gateway]`` (or ``LUIGI_GATEWAY_<KEY>`` variables):

    ``token_file``; or ``azure_scope``; or ``token_endpoint`` + ``client_id`` + ``client_secret`` (+ ``scope``,
    ``resource``). The first one set wins, in that order.
    """
    read = get or _config_value
    if read("token_file"):
        return TokenFile(read("token_file"))
    if read("azure_scope"):
        return AzureToken(read("azure_scope"))
    if read("token_endpoint"):
        missing = [key for key in ("client_id", "client_secret") if not read(key)]
        if missing:
            raise TokenUnavailable(f"[{CONFIG_SECTION}] token_endpoint is set but {', '.join(missing)} is not")
        return ClientCredentials(
            read("token_endpoint"),
            read("client_id"),
            read("client_secret"),
            scope=read("scope"),
            resource=read("resource"),
        )
    raise TokenUnavailable(
        f"no token source: set token_file, azure_scope or token_endpoint in [{CONFIG_SECTION}] of luigi.cfg "
        "(or LUIGI_GATEWAY_TOKEN_FILE ... in the environment)"
    )


def _config_value(key: str) -> str:
    from_env = os.environ.get(f"LUIGI_GATEWAY_{key.upper()}")
    if from_env:
        return from_env
    return str(configuration.get_config().get(CONFIG_SECTION, key, "") or "")  # type: ignore[no-untyped-call]


def main(argv: Sequence[str] | None = None) -> int:
    """``luigi``'s command line, with the identity helper's scheduler."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    result = interface.run(arguments, worker_scheduler_factory=IdentitySchedulerFactory())  # type: ignore[no-untyped-call]
    return 0 if result else 1


if __name__ == "__main__":
    sys.exit(main())
