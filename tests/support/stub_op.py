"""A stub OpenID provider on loopback for tokens no real IdP would issue (the bad-input catalogue).

It serves discovery and JWKS, and answers the token endpoint with whatever ID token the test minted.
Positive flows use the real npm ``oidc-provider`` (dev/idp); this stub exists only because a certified
provider will not sign an expired, mis-addressed or nonce-less token on request.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

Key = RSAKey | ECKey | OctKey


class StubOp:
    def __init__(self, *, tls_dir: Path | None = None) -> None:
        self.rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig", "alg": "RS256"})
        self.published: list[Key] = [self.rsa]
        self.token_response: dict[str, Any] | Callable[[dict[str, list[str]]], tuple[int, dict[str, Any]]] = {}
        self.discovery_issuer: str | None = None
        self.userinfo: dict[str, Any] = {}
        self.requests: list[str] = []
        self.graph_groups: dict[str, list[str]] = {}  # oid -> groups served by the Graph stand-in
        self.graph_status = 200
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        scheme = "http"
        self.ca_path: Path | None = None
        if tls_dir is not None:
            # Microsoft Graph and msal need https: reuse the emulators' self-signed TLS material.
            from dev.emulator_kit.tls import generate, server_context

            files = generate(tls_dir)
            self.ca_path = files.ca
            self._server.socket = server_context(files).wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.issuer = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> StubOp:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- minting ---------------------------------------------------------------------------------------

    def claims(self, *, nonce: str, client_id: str = "airflow", **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "alice",
            "aud": client_id,
            "iat": now,
            "exp": now + 600,
            "nonce": nonce,
            "name": "Alice",
            "email": "alice@example.test",
            "groups": ["airflow-admins"],
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict[str, Any], *, key: Key | None = None, header: dict[str, Any] | None = None) -> str:
        key = key or self.rsa
        hdr = header or {"alg": "RS256", "kid": key.kid}
        return jwt.encode(hdr, claims, key, algorithms=[hdr["alg"]])

    def respond_with_id_token(self, id_token: str) -> None:
        self.token_response = {"access_token": "opaque", "token_type": "Bearer", "id_token": id_token}

    def jwks(self) -> dict[str, Any]:
        return KeySet([k for k in self.published if not isinstance(k, OctKey)]).as_dict(private=False)

    # --- HTTP ------------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                stub.requests.append(f"GET {path}")
                if path.endswith("/.well-known/openid-configuration"):
                    # Served under any prefix: Entra-shaped issuers carry the tenant in the path.
                    prefix = path.removesuffix("/.well-known/openid-configuration")
                    self._send(
                        200,
                        {
                            "issuer": stub.discovery_issuer or stub.issuer + prefix,
                            "authorization_endpoint": f"{stub.issuer}/authorize",
                            "tenant_region_scope": "EU",
                            "token_endpoint": f"{stub.issuer}{prefix.removesuffix('/v2.0')}/token",
                            "jwks_uri": f"{stub.issuer}/jwks",
                            "userinfo_endpoint": f"{stub.issuer}/userinfo",
                            "end_session_endpoint": f"{stub.issuer}/logout",
                            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                            "code_challenge_methods_supported": ["S256"],
                        },
                    )
                elif path == "/jwks":
                    self._send(200, stub.jwks())
                elif path == "/userinfo":
                    self._send(200, stub.userinfo)
                else:
                    self._send(404, {"error": "not_found"})

            def do_POST(self) -> None:
                path = urlsplit(self.path).path
                stub.requests.append(f"POST {path}")
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                if path.endswith("/getMemberObjects"):
                    # Microsoft Graph stand-in: no local process can be Graph, so it is stubbed here.
                    oid = path.split("/")[-2]
                    self._send(stub.graph_status, {"value": stub.graph_groups.get(oid, [])})
                elif path.endswith("/token") and form.get("grant_type") == ["client_credentials"]:
                    self._send(200, {"access_token": "graph-app-token", "token_type": "Bearer", "expires_in": 3600})
                elif not path.endswith("/token"):
                    self._send(404, {"error": "not_found"})
                elif callable(stub.token_response):
                    self._send(*stub.token_response(form))
                else:
                    self._send(200, stub.token_response)

        return Handler
