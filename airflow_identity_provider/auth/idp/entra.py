"""The Microsoft Entra ID adapter: issuer rules of a (multi-)tenant app on top of the generic relying party,
and the group-overage lookup in Microsoft Graph through msal.

The pure checks live in ``auth.rules.entra``.
"""

from __future__ import annotations

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
        try:
            token = self._graph_app(tid).acquire_token_for_client(scopes=[f"{graph}/.default"])
        except Exception as err:  # msal raises ValueError / requests errors for an unreachable authority
            raise IdpUnavailable(f"{self.login_base}/{tid}", f"no Microsoft Graph token: {err}") from None
        if "access_token" not in token:
            raise IdpUnavailable(
                f"{self.login_base}/{tid}",
                f"no Microsoft Graph token for group overage: {token.get('error')} {token.get('error_description')}",
            )
        url = f"{graph}/v1.0/users/{oid}/getMemberObjects"
        response = self._request(
            "POST",
            url,
            json={"securityEnabledOnly": True},
            headers={"Authorization": f"Bearer {token['access_token']}"},
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

    def _graph_app(self, tid: str) -> Any:
        # One msal app per tenant, kept so its token cache spares a token request per sign-in.
        import msal

        with self._lock:
            apps: dict[str, Any] = self.__dict__.setdefault("_graph_apps", {})
            if tid not in apps:
                apps[tid] = msal.ConfidentialClientApplication(
                    self.settings.client_id,
                    client_credential=self.settings.client_secret,
                    authority=f"{self.login_base}/{tid}",
                    instance_discovery=False,
                    timeout=self.settings.http_timeout,
                )
            return apps[tid]
