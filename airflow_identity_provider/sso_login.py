"""``airflow-sso-login --api-url URL``: sign in at a terminal through the normal single sign-on in the browser,
and hand the Airflow token to ``airflowctl`` (``airflow identity-auth-manager login`` runs the same).

As ``az login`` does (RFC 8252, OAuth for native apps): listen on ``http://127.0.0.1:<random port>/callback``,
keep a PKCE verifier, open the browser at ``<api>/auth/cli-login?port=..&state=..&code_challenge=..``; after
the sign-in Airflow redirects the browser to the listener with a one-time code, which only this process can
redeem (``POST <api>/auth/token/cli-exchange`` with the verifier). The token lives
``[api_auth] jwt_cli_expiration_time``.

airflowctl then stores it as it stores any token (``airflowctl auth login --api-url URL --env ENV``, run with
the token in its environment, never on a command line where ``ps`` shows it): the token in the system
keyring, the URL in ``$AIRFLOW_HOME/<env>.json``. ``--print-token`` prints the token instead, for machines
without a keyring (``export AIRFLOW_CLI_TOKEN=...``).

A leaf that imports neither the package nor Airflow: on a laptop with only airflowctl there is no airflow.cfg,
and importing Airflow would create one.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import webbrowser
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

PROG = "airflow-sso-login"
DEFAULT_TIMEOUT = 300
DEFAULT_ENV = "production"  # airflowctl's default environment name
_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} - Airflow</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem}}</style></head>
<body><h1>{title}</h1><p>{message}</p></body></html>"""


class LoginFailed(Exception):
    """The terminal sign-in did not end with a token; the message says why and what to do."""


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


def exchange(api_url: str, code: str, verifier: str) -> str:
    try:
        response = httpx.post(
            f"{api_url}/auth/token/cli-exchange", data={"code": code, "code_verifier": verifier}, timeout=30
        )
    except httpx.HTTPError as err:
        raise LoginFailed(f"Cannot reach {api_url}: {err}") from None
    try:
        body: Any = response.json()
    except ValueError:
        body = {}
    if response.status_code == 201 and isinstance(body, dict) and isinstance(body.get("access_token"), str):
        return str(body["access_token"])
    detail = body.get("detail") if isinstance(body, dict) else None
    raise LoginFailed(
        f"Airflow refused the sign-in code (HTTP {response.status_code}): {detail or response.text[:300]}"
    )


# The listener's answer to one request: HTTP status, page title and text, and whether the sign-in is over.
Answer = tuple[int, str, str, bool]


def _listener(port: int, answer: Callable[[dict[str, str]], Answer], over: threading.Event) -> ThreadingHTTPServer:
    class Callback(BaseHTTPRequestHandler):
        timeout = 10  # a browser's idle speculative connection must not hold a thread forever

        def do_GET(self) -> None:  # http.server calls it by this name
            parts = urlsplit(self.path)
            if parts.path != "/callback":
                self.send_error(404)
                return
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            status, title, message, final = answer(query)
            body = _PAGE.format(title=html.escape(title), message=html.escape(message)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            if final:  # only now: the process may exit as soon as the main thread wakes up
                over.set()

        def log_message(self, format: str, *args: Any) -> None:  # the terminal shows our lines only
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Callback)
    server.daemon_threads = True
    return server


def sign_in(
    api_url: str,
    *,
    open_browser: bool = True,
    port: int = 0,
    timeout: float = DEFAULT_TIMEOUT,
    say: Callable[[str], None],
) -> str:
    """The browser round trip; returns the Airflow token or raises :class:`LoginFailed`."""
    verifier, state = secrets.token_urlsafe(64), secrets.token_urlsafe(32)
    outcome: dict[str, str] = {}
    done, lock = threading.Event(), threading.Lock()

    def answer(query: dict[str, str]) -> Answer:
        # Any page the browser visits may send it here: only the answer carrying our state counts.
        if not secrets.compare_digest(query.get("state", ""), state):
            return 400, "Not this sign-in", "This answer does not belong to the sign-in the terminal started.", False
        with lock:
            if outcome:
                return 200, "Already done", "The terminal already has its answer; you can close this tab.", False
            try:
                if query.get("error"):
                    raise LoginFailed(
                        f"Airflow did not sign you in: {query.get('error_description') or query['error']}"
                    )
                if not query.get("code"):
                    raise LoginFailed("Airflow's answer carries no code.")
                outcome["token"] = exchange(api_url, query["code"], verifier)
            except LoginFailed as err:
                outcome["error"] = str(err)
                return 400, "Sign-in failed", f"{err} See the terminal.", True
        return 200, "Signed in to Airflow", "You can close this tab and return to the terminal.", True

    try:
        server = _listener(port, answer, done)
    except OSError as err:
        raise LoginFailed(f"Cannot listen on 127.0.0.1:{port}: {err}") from None
    threading.Thread(target=server.serve_forever, name="sso-login-callback", daemon=True).start()
    try:
        query = {
            "port": server.server_address[1],
            "state": state,
            "code_challenge": _s256(verifier),
            "code_challenge_method": "S256",
        }
        url = f"{api_url}/auth/cli-login?{urlencode(query)}"
        if open_browser and webbrowser.open(url):
            say(f"Signing in through your browser. If no browser opened, open this address on this machine:\n  {url}")
        else:
            say(f"Open this address in a browser on this machine (it returns to 127.0.0.1):\n  {url}")
        say(f"Waiting up to {timeout:g} s for the sign-in (Ctrl-C to stop)...")
        if not done.wait(timeout):
            raise LoginFailed(
                f"No sign-in came back within {timeout:g} s. If the browser shows an Airflow error page, it says why."
            )
    finally:
        server.shutdown()
        server.server_close()
    if "error" in outcome:
        raise LoginFailed(outcome["error"])
    return outcome["token"]


def token_claims(token: str) -> dict[str, Any]:
    """The token's claims, unverified: only for telling the user who they are and until when."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def find_airflowctl() -> str | None:
    # This interpreter's environment first (pip install airflow-identity-provider apache-airflow-ctl), then PATH.
    return shutil.which("airflowctl", path=str(Path(sys.executable).parent)) or shutil.which("airflowctl")


def hand_to_airflowctl(api_url: str, env_name: str, token: str, *, say: Callable[[str], None]) -> bool:
    ctl = find_airflowctl()
    if ctl is None:
        say(
            "error: airflowctl is not installed here (pip install apache-airflow-ctl). Or use the token directly:\n"
            f'  export AIRFLOW_CLI_TOKEN="$({PROG} --api-url {api_url} --print-token)"'
        )
        return False
    # The token goes in the environment (readable by this user only), not on airflowctl's command line.
    env = {**os.environ, "AIRFLOW_CLI_TOKEN": token}
    try:
        proc = subprocess.run(
            [ctl, "auth", "login", "--api-url", api_url, "--env", env_name],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        say(f"error: could not run {ctl}: {err}")
        return False
    if proc.returncode == 0:
        return True
    output = " ".join((proc.stdout + proc.stderr).split())
    if "keyring" in output.lower():
        say(
            "error: airflowctl could not store the token: this machine has no keyring (a server without a desktop "
            "session, a container). It saved the API URL; give it the token for this shell instead:\n"
            f'  export AIRFLOW_CLI_TOKEN="$({PROG} --api-url {api_url} --print-token)"'
        )
    else:
        say(f"error: `airflowctl auth login` failed (exit {proc.returncode}): {output[:1000]}")
    return False


def run(args: argparse.Namespace) -> int:
    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    api_url = str(args.api_url or "").rstrip("/")
    if urlsplit(api_url).scheme not in ("http", "https") or not urlsplit(api_url).netloc:
        say(f"error: --api-url must be Airflow's address, e.g. https://airflow.example.com (got {args.api_url!r})")
        return 2
    if urlsplit(api_url).scheme == "http" and urlsplit(api_url).hostname not in ("127.0.0.1", "localhost", "::1"):
        # The one-time code, its PKCE verifier and then the token would cross the network in clear text.
        say(f"error: --api-url {api_url} is plain http to another host; use https:// (http only on loopback)")
        return 2
    try:
        token = sign_in(api_url, open_browser=not args.no_browser, port=args.port, timeout=args.timeout, say=say)
    except LoginFailed as err:
        say(f"error: {err}")
        return 1
    except KeyboardInterrupt:
        say("Stopped.")
        return 130
    if args.print_token:
        print(token, flush=True)
        return 0
    # airflowctl lets AIRFLOW_CLI_ENVIRONMENT override --env: say where the token really went.
    env_name = os.environ.get("AIRFLOW_CLI_ENVIRONMENT") or args.env
    if not hand_to_airflowctl(api_url, args.env, token, say=say):
        return 1
    claims = token_claims(token)
    until = time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(float(claims.get("exp", 0)))) if "exp" in claims else "?"
    who = claims.get("name") or claims.get("sub") or "?"
    roles = ", ".join(claims.get("roles") or []) or "no role"
    # airflowctl 0.1.5 reads other environments than "production" only through AIRFLOW_CLI_ENVIRONMENT: its
    # commands accept --env but do not use it (only `auth login` does).
    try_it = ("" if env_name == DEFAULT_ENV else f"AIRFLOW_CLI_ENVIRONMENT={env_name} ") + "airflowctl dags list"
    print(
        f"Signed in to {api_url} as {who} ({roles}), until {until}. airflowctl stored the token for its "
        f"environment {env_name!r}: try `{try_it}`."
    )
    if os.environ.get("AIRFLOW_CLI_TOKEN"):
        say("warning: AIRFLOW_CLI_TOKEN is set in this shell and airflowctl prefers it: `unset AIRFLOW_CLI_TOKEN`.")
    return 0


def add_arguments(parser: argparse.ArgumentParser, *, api_url_required: bool) -> None:
    parser.add_argument("--api-url", required=api_url_required, help="Airflow's address, as for airflowctl")
    parser.add_argument("-e", "--env", default=DEFAULT_ENV, help="airflowctl environment to store the token for")
    parser.add_argument("--no-browser", action="store_true", help="print the sign-in address instead of opening it")
    parser.add_argument("--print-token", action="store_true", help="print the token instead of giving it to airflowctl")
    parser.add_argument("--port", type=int, default=0, help="loopback port to listen on (default: a random free one)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait for the sign-in")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Sign in to Airflow at a terminal through single sign-on in the browser, and give the "
        "Airflow token to airflowctl.",
    )
    add_arguments(parser, api_url_required=True)
    return run(parser.parse_args(argv))


def airflow_command(args: argparse.Namespace) -> None:
    """``airflow identity-auth-manager login``: ``--api-url`` defaults to this Airflow's ``[api] base_url``."""
    if not args.api_url:
        from airflow.configuration import conf

        args.api_url = conf.get("api", "base_url", fallback="")
    sys.exit(run(args))


if __name__ == "__main__":
    sys.exit(main())
