"""A generic OpenID Connect relying party: discovery, signing keys, authorize URL, code exchange, ID token.

Discovery and keys are cached per process (only an optimisation: nothing here is needed by another
replica). Keys follow Microsoft's rollover advice, which suits every provider: a time-to-live, a throttled
refetch when a token names an unknown ``kid``, and the last-known-good set kept while the IdP is down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
from joserfc import jwt
from joserfc.errors import InvalidPayloadError, JoseError
from joserfc.jwk import Key, KeySet

from airflow_identity_provider.auth.idp.errors import IdpError, IdpUnavailable
from airflow_identity_provider.auth.rules.claims import Identity, extract_groups
from airflow_identity_provider.auth.rules.id_token import (
    Expected,
    TokenRejected,
    check_algorithm,
    check_claims,
    parse_header,
)
from airflow_identity_provider.auth.rules.identity import claims_identity
from airflow_identity_provider.auth.rules.machine import check_access_token_claims
from airflow_identity_provider.auth.rules.settings import AuthSettings
from airflow_identity_provider.auth.rules.state import LoginState

__all__ = ["IdpError", "IdpUnavailable", "OidcProvider", "ProviderMetadata"]

log = logging.getLogger(__name__)

UNKNOWN_KID_REFETCH_SECONDS = 60.0
# After a failed fetch: keep using the cached copy this long before trying again, and with nothing cached
# answer "unavailable" at once for a few seconds, so an outage does not queue every request behind timeouts.
RETRY_AFTER_FAILURE_SECONDS = 60.0
FAILURE_MEMORY_SECONDS = 5.0


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    token_endpoint_auth_methods: tuple[str, ...]

    @classmethod
    def from_document(
        cls, doc: dict[str, Any], *, expected_issuer: str, url: str, issuer_ok: Callable[[str], bool] | None = None
    ) -> ProviderMetadata:
        # OIDC Discovery 4.3: the document must name the issuer we asked for, or it is someone else's.
        issuer = doc.get("issuer")
        if not isinstance(issuer, str) or not (issuer_ok(issuer) if issuer_ok else issuer == expected_issuer):
            raise TokenRejected(
                "discovery_issuer_mismatch",
                f"The discovery document at {url} names issuer {doc.get('issuer')!r}, not the configured "
                f"{expected_issuer!r}. Copy the issuer from that document into [identity_auth_manager] issuer.",
            )
        missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not doc.get(k)]
        if missing:
            raise IdpUnavailable(url, f"the discovery document lacks {', '.join(missing)}")
        return cls(
            issuer=doc["issuer"],
            authorization_endpoint=doc["authorization_endpoint"],
            token_endpoint=doc["token_endpoint"],
            jwks_uri=doc["jwks_uri"],
            userinfo_endpoint=doc.get("userinfo_endpoint"),
            end_session_endpoint=doc.get("end_session_endpoint"),
            token_endpoint_auth_methods=tuple(
                doc.get("token_endpoint_auth_methods_supported") or ("client_secret_basic",)
            ),
        )


class OidcProvider:
    """One configured OpenID provider. Thread-safe: FastAPI runs sync routes in a thread pool."""

    def __init__(
        self,
        settings: AuthSettings,
        *,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._http = http or httpx.Client(timeout=settings.http_timeout, follow_redirects=False)
        self._clock = clock
        self._lock = threading.Lock()
        self._metadata: ProviderMetadata | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0
        self._last_unknown_kid_refetch = float("-inf")
        self._failures: dict[str, tuple[float, IdpUnavailable]] = {}

    @property
    def login_origin(self) -> str:
        """scheme://host[:port] of the issuer; tokens of this provider carry issuers that start with it."""
        parts = urlsplit(self.settings.issuer)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def discovery_url(self) -> str:
        return self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"

    # --- discovery -----------------------------------------------------------------------------------

    def metadata(self) -> ProviderMetadata:
        with self._lock:
            return self._metadata_locked()

    def _metadata_locked(self) -> ProviderMetadata:
        # Callers hold self._lock (threading.Lock is not re-entrant).
        if self._metadata is not None and not self._expired(self._metadata_at):
            return self._metadata
        try:
            doc = self._get_json(self.discovery_url)
        except IdpUnavailable:
            if self._metadata is not None:
                log.warning("Discovery refresh failed; keeping the cached document of %s", self.discovery_url)
                self._metadata_at = self._retry_soon()
                return self._metadata
            raise
        self._metadata = ProviderMetadata.from_document(
            doc, expected_issuer=self.settings.issuer, url=self.discovery_url, issuer_ok=self.discovery_issuer_ok
        )
        self._metadata_at = self._clock()
        return self._metadata

    # --- browser flow --------------------------------------------------------------------------------

    def authorization_url(self, *, redirect_uri: str, login: LoginState) -> str:
        params = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.settings.scopes),
            "state": login.state,
            "nonce": login.nonce,
            "code_challenge": login.code_challenge,
            "code_challenge_method": "S256",
        }
        endpoint = self.metadata().authorization_endpoint
        separator = "&" if "?" in endpoint else "?"
        return f"{endpoint}{separator}{urlencode(params)}"

    def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> dict[str, Any]:
        meta = self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        auth: tuple[str, str] | None = None
        if self.settings.client_secret and "client_secret_basic" in meta.token_endpoint_auth_methods:
            # RFC 6749 2.3.1: both are form-encoded before Basic encoding (matters for ':' or '%' in secrets).
            auth = (quote_plus(self.settings.client_id), quote_plus(self.settings.client_secret))
        else:
            form["client_id"] = self.settings.client_id
            if self.settings.client_secret:
                form["client_secret"] = self.settings.client_secret
        response = self._request("POST", meta.token_endpoint, data=form, auth=auth)
        if response.status_code >= 500:
            raise IdpUnavailable(meta.token_endpoint, f"HTTP {response.status_code}")
        body = _json_body(response, meta.token_endpoint)
        if response.status_code >= 400 or "error" in body:
            error = str(body.get("error", f"HTTP {response.status_code}"))
            raise IdpError(error, str(body.get("error_description", "")))
        if not isinstance(body.get("id_token"), str):
            raise TokenRejected(
                "missing_id_token",
                "The token endpoint returned no ID token; make sure 'openid' is in [identity_auth_manager] scopes.",
            )
        return body

    def validate_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        _, claims = self._verified(id_token)
        check_claims(
            claims,
            Expected(
                issuer=self.token_issuer(claims),
                client_id=self.settings.client_id,
                nonce=nonce,
                leeway=self.settings.leeway,
            ),
            now=self._clock(),
        )
        return claims

    def validate_access_token(self, token: str) -> dict[str, Any]:
        """An access token for the Airflow API (machine access): signature, issuer, audience, times."""
        header, claims = self._verified(token)
        check_access_token_claims(
            claims,
            header=header,
            issuers=self.access_token_issuers(claims),
            audiences=self.settings.api_audiences,
            # Entra ID tokens never name a client (azp / appid), which machine_identity requires of Entra.
            sign_in_client_id=None if self.settings.idp == "entra" else self.settings.client_id,
            clients=self.settings.api_client_ids,
            now=self._clock(),
            leeway=self.settings.leeway,
        )
        return claims

    def _verified(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The signature-verified JWS header and claims (parse_header's copy only picks the key)."""
        header = parse_header(token)
        alg = check_algorithm(header, self.settings.id_token_signing_algs)
        key = self._signing_key(header.get("kid"), alg)
        try:
            decoded = jwt.decode(token, key, algorithms=[alg])
        except InvalidPayloadError:
            raise TokenRejected("malformed_token", "The token's payload is not a JSON object.") from None
        except JoseError as err:
            raise TokenRejected(
                "bad_signature", f"The token's signature does not verify with the provider's key ({err.error})."
            ) from None
        except ValueError as err:
            raise TokenRejected("malformed_token", f"The token could not be decoded: {err}") from None
        return dict(decoded.header), dict(decoded.claims)

    def sign_in(self, *, code: str, redirect_uri: str, login: LoginState) -> tuple[Identity, str]:
        """Code -> tokens -> validated ID token -> who the user is (groups included), and the ID token."""
        tokens = self.exchange_code(code=code, redirect_uri=redirect_uri, code_verifier=login.code_verifier)
        id_token: str = tokens["id_token"]
        claims = self.validate_id_token(id_token, nonce=login.nonce)
        return self.identity(claims, access_token=tokens.get("access_token")), id_token

    # --- what differs between providers (overridden by EntraProvider) --------------------------------

    def discovery_issuer_ok(self, issuer: str) -> bool:
        return issuer == self.settings.issuer

    def response_issuer_ok(self, issuer: str) -> bool:
        """RFC 9207 ``iss`` authorization-response parameter."""
        return issuer == self.metadata().issuer

    def token_issuer(self, claims: dict[str, Any]) -> str:
        return self.settings.issuer

    def access_token_issuers(self, claims: dict[str, Any]) -> set[str]:
        return {self.settings.issuer}

    def identity(self, claims: dict[str, Any], *, access_token: object) -> Identity:
        identity = claims_identity(claims, self.settings)
        if self.settings.groups_claim in claims or not isinstance(access_token, str):
            return identity
        # Some providers (Okta, JumpCloud when so configured) put groups only in userinfo.
        info = self.userinfo(access_token, subject=identity.user_id)
        if info is None:
            return identity
        return replace(identity, groups=extract_groups(info, self.settings.groups_claim))

    def userinfo(self, access_token: str, *, subject: str) -> dict[str, Any] | None:
        endpoint = self.metadata().userinfo_endpoint
        if not endpoint:
            return None
        response = self._request("GET", endpoint, headers={"Authorization": f"Bearer {access_token}"})
        if response.status_code != 200:
            raise IdpUnavailable(endpoint, f"HTTP {response.status_code}")
        info = _json_body(response, endpoint)
        # OIDC Core 5.3.2: userinfo about someone else must not be mixed into this sign-in.
        if info.get("sub") != subject:
            raise TokenRejected(
                "userinfo_sub_mismatch",
                f"The userinfo endpoint describes subject {info.get('sub')!r}, not the signed-in {subject!r}.",
            )
        return info

    # --- signing keys --------------------------------------------------------------------------------

    def _signing_key(self, kid: object, alg: str) -> Key:
        if kid is not None and not isinstance(kid, str):
            raise TokenRejected("malformed_token", "The ID token header's kid is not a string.")
        with self._lock:
            keys = self._current_keys()
            key = _select_key(keys, kid, alg)
            now = self._clock()
            if key is None and kid is not None and now - self._last_unknown_kid_refetch >= UNKNOWN_KID_REFETCH_SECONDS:
                # A kid we have not seen: the provider may have rotated keys since we cached them.
                self._last_unknown_kid_refetch = now
                keys = self._fetch_keys(keep_on_failure=True)
                key = _select_key(keys, kid, alg)
        if key is None:
            if kid is None:
                raise TokenRejected(
                    "kid_absent_ambiguous",
                    f"The ID token names no key (kid) and the provider publishes {len(keys.keys)} keys for {alg}.",
                )
            raise TokenRejected(
                "unknown_kid", f"The ID token is signed with key {kid!r}, which the provider does not publish."
            )
        return key

    def _current_keys(self) -> KeySet:
        if self._keys is None or self._expired(self._keys_at):
            return self._fetch_keys(keep_on_failure=self._keys is not None)
        return self._keys

    def _fetch_keys(self, *, keep_on_failure: bool) -> KeySet:
        url = self._metadata_locked().jwks_uri
        try:
            doc = self._get_json(url)
            keys = KeySet.import_key_set(doc)  # type: ignore[arg-type]
        except (IdpUnavailable, ValueError, JoseError) as err:
            if keep_on_failure and self._keys is not None:
                log.warning("Could not refresh signing keys from %s (%s); keeping the last good set", url, err)
                self._keys_at = self._retry_soon()
                return self._keys
            if isinstance(err, IdpUnavailable):
                raise
            raise IdpUnavailable(url, f"the key set is not a valid JWKS ({err})") from None
        self._keys = keys
        self._keys_at = self._clock()
        return keys

    # --- HTTP ----------------------------------------------------------------------------------------

    def _retry_soon(self) -> float:
        """A fetch time that makes the cached copy expire RETRY_AFTER_FAILURE_SECONDS from now."""
        return self._clock() - self.settings.jwks_cache_ttl + RETRY_AFTER_FAILURE_SECONDS

    def _expired(self, fetched_at: float) -> bool:
        return self._clock() - fetched_at >= self.settings.jwks_cache_ttl

    def _get_json(self, url: str) -> dict[str, Any]:
        if url in self._failures:
            failed_at, failure = self._failures[url]
            if self._clock() - failed_at < FAILURE_MEMORY_SECONDS:
                raise failure
        try:
            response = self._request("GET", url)
            if response.status_code != 200:
                raise IdpUnavailable(url, f"HTTP {response.status_code}")
            body = _json_body(response, url)
        except IdpUnavailable as err:
            self._failures[url] = (self._clock(), err)
            raise
        self._failures.pop(url, None)
        return body

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.HTTPError as err:
            raise IdpUnavailable(url, f"{type(err).__name__}: {err}") from None


def _json_body(response: httpx.Response, url: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise IdpUnavailable(url, f"HTTP {response.status_code} with a body that is not JSON") from None
    if not isinstance(body, dict):
        raise IdpUnavailable(url, "the response is not a JSON object")
    return body


def _select_key(keys: KeySet, kid: str | None, alg: str) -> Key | None:
    kty = "OKP" if alg == "EdDSA" else {"R": "RSA", "P": "RSA", "E": "EC"}[alg[0]]
    candidates = [
        k for k in keys.keys if k.key_type == kty and k.get("use", "sig") == "sig" and k.get("alg", alg) == alg
    ]
    if kid is not None:
        return next((k for k in candidates if k.kid == kid), None)
    # No kid: acceptable only when exactly one key could have signed (conformance: kid-absent-single-jwks).
    return candidates[0] if len(candidates) == 1 else None
