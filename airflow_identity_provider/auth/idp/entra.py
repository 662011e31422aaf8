"""The Microsoft Entra ID adapter: issuer rules of a (multi-)tenant app on top of the generic relying party,
and the group-overage lookup in Microsoft Graph through msal.

The pure checks live in ``auth.rules.entra``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from typing import Any

from airflow_identity_provider.auth.idp.errors import IdpUnavailable
from airflow_identity_provider.auth.idp.oidc import OidcProvider
from airflow_identity_provider.auth.rules.claims import ClaimError, Identity, extract_groups
from airflow_identity_provider.auth.rules.entra import (
    MULTI_TENANT,
    TENANT_PLACEHOLDER,
    check_entra_claims,
    is_canonical_guid,
    issuer_template,
)
from airflow_identity_provider.auth.rules.id_token import TokenRejected
from airflow_identity_provider.auth.rules.identity import claims_identity, groups_need_graph

# Microsoft Graph's application id: "<it>/.default" asks for Graph's app permissions in any cloud.
GRAPH_SCOPE = "00000003-0000-0000-c000-000000000000/.default"


class EntraProvider(OidcProvider):
    @property
    def login_base(self) -> str:
        return self.login_origin

    @property
    def multi_tenant(self) -> bool:
        return self.settings.tenant_id.lower() in MULTI_TENANT

    def discovery_issuer_ok(self, issuer: str) -> bool:
        if self.multi_tenant:
            return issuer == issuer_template(self.login_base)
        # A tenant given as a domain (contoso.onmicrosoft.com) is answered with the tenant's GUID issuer.
        prefix, _, rest = issuer.partition(self.login_base + "/")
        tenant, _, suffix = rest.partition("/")
        return not prefix and suffix == "v2.0" and (is_canonical_guid(tenant) or issuer == self.settings.issuer)

    def response_issuer_ok(self, issuer: str) -> bool:
        if self.multi_tenant:
            template = issuer_template(self.login_base)
            return any(issuer == template.replace(TENANT_PLACEHOLDER, t) for t in self.settings.allowed_tenants)
        return issuer == self.metadata().issuer

    def token_issuer(self, claims: dict[str, Any]) -> str:
        expected = check_entra_claims(
            claims,
            login_base=self.login_base,
            tenant=self.settings.tenant_id,
            allowed_tenants=self.settings.allowed_tenants,
        )
        # Single tenant given as a domain: the tenant is the one discovery named, whatever the token says.
        if not self.multi_tenant and expected != self.metadata().issuer:
            raise TokenRejected(
                "entra_wrong_tenant",
                f"The token was issued by tenant {claims.get('tid')}, not by the configured tenant "
                f"{self.settings.tenant_id} ({self.metadata().issuer}).",
            )
        return expected

    def access_token_issuers(self, claims: dict[str, Any]) -> set[str]:
        """Access tokens for the Airflow API may be v1 or v2, as the API's app registration decides."""
        tid = claims.get("tid")
        if not is_canonical_guid(tid):
            raise TokenRejected("entra_missing_tid", "The access token has no 'tid' (tenant id) GUID claim.")
        assert isinstance(tid, str)
        v2 = issuer_template(self.login_base).replace(TENANT_PLACEHOLDER, tid)
        allowed = tid in self.settings.allowed_tenants if self.multi_tenant else v2 == self.metadata().issuer
        if not allowed:
            raise TokenRejected(
                "entra_tenant_not_allowed", f"Principals of tenant {tid} may not get Airflow API tokens."
            )
        return {v2, f"https://sts.windows.net/{tid}/"}

    def identity(self, claims: dict[str, Any], *, access_token: object) -> Identity:
        identity = claims_identity(claims, self.settings)
        if not groups_need_graph(claims, self.settings, identity):
            return identity
        tid, oid = identity.user_id.split(":", 1)
        return replace(identity, groups=self.member_groups(tid=tid, oid=oid))

    def member_groups(self, *, tid: str, oid: str) -> tuple[str, ...]:
        """The user's transitive security groups from Microsoft Graph, with an app-only token from msal."""
        graph = self.settings.graph_url
        url = f"{graph}/v1.0/users/{oid}/getMemberObjects"
        response = self._request(
            "POST",
            url,
            json={"securityEnabledOnly": True},
            headers={"Authorization": f"Bearer {self.graph_token(tid)}"},
        )
        if response.status_code in (401, 403):
            raise ClaimError(
                "entra_graph_forbidden",
                f"Microsoft Graph refused to list the groups of {oid} (HTTP {response.status_code}). Grant the "
                "app registration the GroupMember.Read.All (or User.Read.All) application permission with admin "
                "consent, or turn resolve_group_overage off and map app roles instead.",
            )
        if response.status_code != 200:
            raise IdpUnavailable(url, f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise IdpUnavailable(url, "the answer is not JSON") from None
        if not isinstance(body, dict):
            raise IdpUnavailable(url, "the answer is not a JSON object")
        return extract_groups(body, "value")

    @property
    def graph_authority_host(self) -> str:
        """Where app-only Graph tokens come from: the issuer's login host, or ``AZURE_AUTHORITY_HOST`` when set
        (the variable azure-identity reads for private and sovereign clouds; the emulator tests point it there)."""
        host = os.environ.get("AZURE_AUTHORITY_HOST", "").strip().rstrip("/")
        if not host:
            return self.login_base
        return host if "://" in host else f"https://{host}"

    def graph_token(self, tid: str) -> str:
        """An app-only Microsoft Graph access token of this app registration in tenant ``tid`` (msal caches it
        until shortly before it expires). Microsoft Graph's application id as the resource: the same in every
        cloud, whatever ``graph_url`` says (a proxy or the emulator)."""
        authority = f"{self.graph_authority_host}/{tid}"
        try:
            token = self._graph_app(tid).acquire_token_for_client(scopes=[GRAPH_SCOPE])
        except Exception as err:  # msal raises ValueError / requests errors for an unreachable authority
            raise IdpUnavailable(authority, f"no Microsoft Graph token: {err}") from None
        if "access_token" not in token:
            raise IdpUnavailable(
                authority, f"no Microsoft Graph token: {token.get('error')} {token.get('error_description')}"
            )
        return str(token["access_token"])

    def _graph_app(self, tid: str) -> Any:
        # One msal app per tenant and process, kept so its token cache spares a token request per call; a forked
        # worker makes its own (msal's HTTP session must not be shared across a fork).
        # No verify= and no http_client: msal's own requests session then trusts a private CA (a TLS-inspecting
        # proxy, a test emulator) the standard way, through REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE. A verify= would
        # not help anyway: requests lets those variables override a session's verify
        # (https://github.com/psf/requests/issues/3829). httpx, for the Graph calls themselves, reads SSL_CERT_FILE.
        import msal

        with self._graph_lock:
            apps: dict[tuple[str, int], Any] = self.__dict__.setdefault("_graph_apps", {})
            key = (tid, os.getpid())
            if key not in apps:
                for stale in [k for k in apps if k[1] != key[1]]:  # inherited from the parent process
                    del apps[stale]
                apps[key] = msal.ConfidentialClientApplication(
                    self.settings.client_id,
                    client_credential=self.settings.client_secret,
                    authority=f"{self.graph_authority_host}/{tid}",
                    instance_discovery=False,
                    timeout=self.settings.http_timeout,
                )
            return apps[key]

    @property
    def _graph_lock(self) -> threading.Lock:
        # Not self._lock: the sync thread asks for tokens while a sign-in may hold that one for discovery.
        lock: threading.Lock = self.__dict__.setdefault("_graph_lock_", threading.Lock())
        return lock
