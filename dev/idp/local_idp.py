"""Start, stop and drive the local OpenID Provider (``dev/idp/provider.mjs``, npm ``oidc-provider``).

For tests and the demo only: the provider binds to 127.0.0.1, keeps everything in memory, and signs
with throw-away keys.

    idp = start_local_idp(redirect_uris=["http://127.0.0.1:8080/auth/callback"])
    try:
        with httpx.Client() as browser:            # a real network client, not a Starlette TestClient
            back = login_through_idp(browser, authorize_url, "alice")
            # back.headers["location"] == "<redirect_uri>?code=...&state=...&iss=..."
    finally:
        idp.stop()

Foreground (demo)::

    python -m dev.idp.local_idp --port 9000 --redirect-uri http://127.0.0.1:8080/auth/callback
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import httpx

IDP_DIR = Path(__file__).resolve().parent
PROVIDER_SCRIPT = IDP_DIR / "provider.mjs"
OIDC_PROVIDER_VERSION = "9.13.3"

DEFAULT_CLIENT_ID = "airflow"
DEFAULT_CLIENT_SECRET = "airflow-secret"
DEFAULT_PASSWORD = "test"
#: Scopes the relying party must request so that ``groups`` is in the ID token.
GROUPS_SCOPES = ("openid", "profile", "email", "groups")
#: Client-credentials client (Entra service-principal look-alike).
SERVICE_CLIENT_ID = "svc-etl"
SERVICE_CLIENT_SECRET = "svc-secret"
API_AUDIENCE = "api://airflow"
#: Built-in users and their ``groups`` claim (mirror of provider.mjs).
BUILTIN_USERS: dict[str, list[str]] = {
    "alice": ["airflow-admins", "data-eng"],
    "bob": ["airflow-viewers"],
    "carol": ["marketing"],
    "dave": ["airflow-ops"],
    "erin": ["airflow-users"],
}

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class LocalIdpError(RuntimeError):
    """The local IdP could not be installed, started or driven."""


class IdpLoginError(LocalIdpError):
    """The IdP refused the sign-in (unknown user, wrong password) or showed an unexpected page."""


_running: weakref.WeakSet[LocalIdp] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    for idp in list(_running):
        idp.stop()


@dataclass(eq=False)
class LocalIdp:
    """A running provider. Stop it with :meth:`stop` (or use it as a context manager)."""

    issuer: str
    port: int
    client_id: str
    client_secret: str
    process: subprocess.Popen[str]
    _stderr: IO[bytes] | None = field(default=None, repr=False)  # unlinked temp file
    _final_stderr: str = field(default="", repr=False)

    @property
    def base_url(self) -> str:
        """Scheme, host and port (the admin endpoints live here, outside the issuer's path)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.issuer}/auth"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/token"

    @property
    def userinfo_endpoint(self) -> str:
        return f"{self.issuer}/me"

    @property
    def end_session_endpoint(self) -> str:
        return f"{self.issuer}/session/end"

    def running(self) -> bool:
        return self.process.poll() is None

    def stderr_text(self) -> str:
        """Everything the provider wrote to stderr so far (warnings, server errors)."""
        if self._stderr is None or self._stderr.closed:
            return self._final_stderr
        # pread: node shares the file offset, so do not seek
        fd, chunks, offset = self._stderr.fileno(), [], 0
        while chunk := os.pread(fd, 1 << 16, offset):
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")

    # -- dev-only admin endpoints (need test_endpoints=True) ----------------------------------
    def rotate_keys(self, *, drop_old: bool = False) -> str:
        """Sign with a new RS256 key from now on; returns its kid. Old keys stay published unless drop_old."""
        params = {"drop_old": "1"} if drop_old else {}
        resp = httpx.post(f"{self.base_url}/_test/rotate-keys", params=params, timeout=10)
        resp.raise_for_status()
        return str(resp.json()["kid"])

    def put_user(self, user_id: str, claims: Mapping[str, Any]) -> None:
        """Add or replace a user (claims without ``sub``)."""
        resp = httpx.put(f"{self.base_url}/_test/users/{user_id}", json=dict(claims), timeout=10)
        resp.raise_for_status()

    def delete_user(self, user_id: str) -> None:
        """Remove a user: it can no longer sign in, and its refresh tokens stop working."""
        resp = httpx.delete(f"{self.base_url}/_test/users/{user_id}", timeout=10)
        if resp.status_code != 404:
            resp.raise_for_status()

    # -- lifecycle --------------------------------------------------------------------------
    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the provider, SIGKILL it if it does not exit within ``timeout``. Idempotent."""
        _running.discard(self)
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                self.process.wait(timeout=timeout)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if self._stderr is not None and not self._stderr.closed:
            self._final_stderr = self.stderr_text()
            self._stderr.close()

    def __enter__(self) -> LocalIdp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------------
# Installation
def _require_node() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise LocalIdpError(
            f"the local IdP needs Node.js (>= 20) and npm on PATH: node={node or 'missing'}, npm={npm or 'missing'}"
        )
    return node, npm


def _installed_version() -> str | None:
    pkg = IDP_DIR / "node_modules" / "oidc-provider" / "package.json"
    try:
        return str(json.loads(pkg.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        return None


def ensure_node_modules() -> None:
    """Run ``npm ci`` in dev/idp when node_modules is missing or holds another oidc-provider version."""
    _, npm = _require_node()
    if _installed_version() == OIDC_PROVIDER_VERSION:
        return
    lock_path = Path(tempfile.gettempdir()) / f"airflow-identity-provider-npm-ci-{os.getuid()}.lock"
    with open(lock_path, "w") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - non-POSIX
            pass
        if _installed_version() == OIDC_PROVIDER_VERSION:  # another process installed it meanwhile
            return
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=IDP_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    if proc.returncode != 0 or _installed_version() != OIDC_PROVIDER_VERSION:
        raise LocalIdpError(
            f"`npm ci` in {IDP_DIR} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}".rstrip()
        )


# ------------------------------------------------------------------------------------------------
# Start
def _pump_stdout(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    try:
        for line in stream:
            lines.put(line.rstrip("\n"))
    except (OSError, ValueError):
        pass
    finally:
        lines.put(None)


def start_local_idp(
    *,
    redirect_uris: Sequence[str],
    post_logout_uris: Sequence[str] = (),
    port: int = 0,
    extra_users: Mapping[str, Mapping[str, Any]] | None = None,
    test_endpoints: bool = True,
    startup_timeout: float = 20,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    client_auth_method: str = "client_secret_basic",
    strict_client_auth: bool = False,
    issuer_path: str = "",
    groups_without_scope: bool = False,
    service_clients: Mapping[str, Mapping[str, Any]] | None = None,
    ttl: Mapping[str, int] | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> LocalIdp:
    """Start ``provider.mjs`` and wait for its ``OP_READY <issuer>`` line.

    ``extra_users``: id -> claims, added to (or replacing) the built-in users; claim names other than
    the standard profile/email ones and ``groups`` (e.g. JumpCloud's ``memberOf``) are always released.
    ``service_clients``: client_id -> {"secret": ..., "roles": [...], "claims": {...}?} besides ``svc-etl``.
    ``ttl``: oidc-provider lifetimes in seconds, e.g. ``{"IdToken": 5, "RefreshToken": 30}``.
    ``client_auth_method`` is what gets registered; unless ``strict_client_auth`` the token endpoint
    accepts client_secret_basic and client_secret_post alike.
    """
    if not redirect_uris:
        raise ValueError("redirect_uris must not be empty")
    node, _ = _require_node()
    ensure_node_modules()

    env = dict(os.environ)
    env.update(
        {
            "OP_PORT": str(port),
            "OP_ISSUER_PATH": issuer_path,
            "RP_REDIRECT_URIS": ",".join(redirect_uris),
            "RP_POST_LOGOUT_URIS": ",".join(post_logout_uris),
            "CLIENT_ID": client_id,
            "CLIENT_SECRET": client_secret,
            "CLIENT_AUTH_METHOD": client_auth_method,
            "IDP_STRICT_CLIENT_AUTH": "1" if strict_client_auth else "0",
            "IDP_TEST_ENDPOINTS": "1" if test_endpoints else "0",
            "IDP_GROUPS_WITHOUT_SCOPE": "1" if groups_without_scope else "0",
            "IDP_USERS_JSON": json.dumps(dict(extra_users or {})),
            "IDP_SERVICE_CLIENTS_JSON": json.dumps(dict(service_clients or {})),
            "IDP_TTL_JSON": json.dumps(dict(ttl or {})),
            "IDP_EXIT_ON_STDIN_EOF": "1",
            "NO_COLOR": "1",
        }
    )
    if extra_env:
        env.update(extra_env)

    stderr = tempfile.TemporaryFile(prefix="local-idp-", suffix=".stderr")  # noqa: SIM115 - closed in stop()
    process = subprocess.Popen(
        [node, str(PROVIDER_SCRIPT)],
        cwd=IDP_DIR,
        env=env,
        stdin=subprocess.PIPE,  # never written; if this Python process dies, EOF makes node exit
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        bufsize=1,
        start_new_session=True,  # Ctrl-C in a terminal reaches only Python, which stops it cleanly
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump_stdout, args=(process.stdout, lines), daemon=True).start()

    idp = LocalIdp(issuer="", port=0, client_id=client_id, client_secret=client_secret, process=process, _stderr=stderr)
    deadline = time.monotonic() + startup_timeout
    seen: list[str] = []
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            break
        if line is None:  # stdout closed: the process is exiting
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=min(2.0, max(remaining, 0.1)))
            break
        if line.startswith("OP_READY "):
            issuer = line.split(" ", 1)[1].strip()
            idp.issuer = issuer
            idp.port = urlsplit(issuer).port or 80
            _running.add(idp)
            return idp
        seen.append(line)
    died = process.poll() is not None
    err = idp.stderr_text()
    idp.stop(timeout=2)
    what = f"exited with code {process.returncode}" if died else f"was not ready after {startup_timeout:g}s"
    stdout_text = "\n".join(seen)
    raise LocalIdpError(f"local IdP {what}.\nstdout:\n{stdout_text}\nstderr:\n{err}".rstrip())


# ------------------------------------------------------------------------------------------------
# Headless sign-in
@dataclass
class _Form:
    action: str = ""
    method: str = "get"
    fields: dict[str, str] = field(default_factory=dict)


class _PageParser(HTMLParser):
    """First <form> of a page (inputs and named buttons) and the text of the #error element."""

    def __init__(self) -> None:
        super().__init__()
        self.form: _Form | None = None
        self._in_form = False
        self._done = False
        self._in_error = False
        self.error = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if a.get("id") == "error":
            self._in_error = True
        if tag == "form" and self.form is None:
            self.form = _Form(action=a.get("action", ""), method=a.get("method", "get").lower())
            self._in_form = True
        elif self._in_form and not self._done and tag in ("input", "button") and a.get("name"):
            assert self.form is not None
            if tag == "button" or a.get("type", "text").lower() not in ("checkbox", "radio", "submit"):
                self.form.fields.setdefault(a["name"], a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in_form:
            self._in_form = False
            self._done = True
        self._in_error = False

    def handle_data(self, data: str) -> None:
        if self._in_error:
            self.error += data


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _drive(client: httpx.Client, start_url: str, fill: Mapping[str, str], *, allow_final_page: bool) -> httpx.Response:
    idp_origin = _origin(start_url)
    resp = client.get(start_url, follow_redirects=False)
    submitted: set[str] = set()
    for _ in range(25):
        if resp.status_code in _REDIRECT_STATUSES:
            location = urljoin(str(resp.url), resp.headers.get("location", ""))
            if _origin(location) != idp_origin:
                return resp
            resp = client.get(location, follow_redirects=False)
            continue
        parser = _PageParser()
        if "html" in resp.headers.get("content-type", ""):
            parser.feed(resp.text)
        form = parser.form
        if resp.status_code != 200 or form is None:
            if resp.status_code == 200 and allow_final_page:
                return resp
            detail = parser.error.strip() or resp.text[:1000]
            raise IdpLoginError(f"IdP answered {resp.status_code} at {resp.url}: {detail}")
        action = urljoin(str(resp.url), form.action or str(resp.url))
        if parser.error.strip() or action in submitted:
            raise IdpLoginError(f"IdP refused the sign-in at {resp.url}: {parser.error.strip() or 'form repeated'}")
        submitted.add(action)
        data = dict(form.fields)
        for key, value in fill.items():
            if key in data:
                data[key] = value
        if form.method == "post":
            resp = client.post(action, data=data, follow_redirects=False)
        else:
            resp = client.get(action, params=data, follow_redirects=False)
    raise IdpLoginError(f"too many steps driving the IdP from {start_url}")


def login_through_idp(
    client: httpx.Client, authorize_url: str, username: str, password: str = DEFAULT_PASSWORD
) -> httpx.Response:
    """Drive the IdP's login (and consent) pages headlessly, starting at ``authorize_url``.

    Follows redirects only while they stay on the IdP's origin, and returns the response that redirects
    back to the relying party (302/303, ``Location: <redirect_uri>?code=..&state=..&iss=..``, or
    ``?error=..``) without following it. ``client`` must be a real network client (not a Starlette
    TestClient); it keeps the IdP's cookies, so a second call can reuse the IdP session (SSO).
    Raises :class:`IdpLoginError` when the IdP refuses the sign-in or shows an unexpected page.
    """
    return _drive(client, authorize_url, {"login": username, "password": password}, allow_final_page=False)


def logout_through_idp(client: httpx.Client, end_session_url: str) -> httpx.Response:
    """Confirm an RP-initiated logout at the IdP (``end_session_endpoint?id_token_hint=..&...``).

    Returns the redirect to the ``post_logout_redirect_uri`` (not followed), or the IdP's own
    "Signed out" page when no redirect URI was given.
    """
    return _drive(client, end_session_url, {}, allow_final_page=True)


# ------------------------------------------------------------------------------------------------
# Foreground runner for the demo
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dev.idp.local_idp", description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=9000, help="0 picks a free port (default 9000)")
    ap.add_argument("--redirect-uri", action="append", required=True, help="repeatable")
    ap.add_argument("--post-logout-uri", action="append", default=[], help="repeatable")
    ap.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    ap.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    ap.add_argument("--issuer-path", default="")
    ap.add_argument("--users-json", help="JSON object id -> claims (inline, or @file)")
    ap.add_argument("--groups-without-scope", action="store_true", help="release groups without the scope")
    ap.add_argument("--no-test-endpoints", action="store_true", help="disable /_test/*")
    args = ap.parse_args(argv)

    users: dict[str, Any] | None = None
    if args.users_json:
        raw = args.users_json
        if raw.startswith("@"):
            raw = Path(raw[1:]).read_text(encoding="utf-8")
        users = json.loads(raw)

    idp = start_local_idp(
        redirect_uris=args.redirect_uri,
        post_logout_uris=args.post_logout_uri,
        port=args.port,
        extra_users=users,
        test_endpoints=not args.no_test_endpoints,
        client_id=args.client_id,
        client_secret=args.client_secret,
        issuer_path=args.issuer_path,
        groups_without_scope=args.groups_without_scope,
    )
    print(f"Local IdP ready: {idp.issuer}", flush=True)
    print(f"  discovery : {idp.discovery_url}")
    print(f"  client    : {idp.client_id} / {idp.client_secret} (client_secret_basic or _post)")
    print(f"  scopes    : {' '.join(GROUPS_SCOPES)}  (groups is in the ID token only with the groups scope)")
    print(f"  users     : password '{DEFAULT_PASSWORD}'")
    for user, groups in BUILTIN_USERS.items():
        print(f"    {user:<6} {', '.join(groups)}")
    print(f"  service   : {SERVICE_CLIENT_ID} / {SERVICE_CLIENT_SECRET} (client_credentials, aud {API_AUDIENCE})")
    print("Ctrl-C stops it.", flush=True)

    def _interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signum)

    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while idp.running():
            time.sleep(0.5)
        sys.stderr.write(idp.stderr_text())
        print(f"local IdP exited with code {idp.process.returncode}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        idp.stop()


if __name__ == "__main__":
    sys.exit(main())
