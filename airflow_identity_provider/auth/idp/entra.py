"""Microsoft Entra ID: tenant and issuer rules, v2 tokens, app roles vs group GUIDs, group overage.

The pure checks (``check_entra_claims``, ``entra_identity``, ``group_overage``) are separate from the
``EntraProvider`` adapter so the catalogue of Entra-shaped bad tokens is tested without a network.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from airflow_identity_provider.auth.claims import ClaimError, Identity, extract_groups
from airflow_identity_provider.auth.idp.id_token import TokenRejected
from airflow_identity_provider.auth.idp.oidc import IdpUnavailable, OidcProvider

MULTI_TENANT = frozenset({"common", "organizations"})
TENANT_PLACEHOLDER = "{tenantid}"
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_guid(value: object) -> bool:
    return isinstance(value, str) and bool(_GUID.match(value))


def issuer_template(login_base: str) -> str:
    """``https://login.microsoftonline.com/{tenantid}/v2.0`` for the cloud's login host."""
    return f"{login_base}/{TENANT_PLACEHOLDER}/v2.0"


def check_entra_claims(
    claims: Mapping[str, Any], *, login_base: str, tenant: str, allowed_tenants: Collection[str]
) -> str:
    """Entra rules on top of OIDC's; returns the issuer this token must carry (checked exactly later)."""
    if claims.get("ver") == "1.0" or str(claims.get("iss", "")).startswith("https://sts.windows.net/"):
        raise TokenRejected(
            "entra_v1_token",
            "The token is an Entra v1.0 token (issuer sts.windows.net) but sign-in uses the v2.0 endpoint. "
            "Sign-in must go through https://login.microsoftonline.com/<tenant>/v2.0; check the issuer setting.",
        )
    tid = claims.get("tid")
    if not is_guid(tid):
        raise TokenRejected("entra_missing_tid", "The token has no 'tid' (tenant id) GUID claim.")
    assert isinstance(tid, str)
    expected_issuer = issuer_template(login_base).replace(TENANT_PLACEHOLDER, tid)
    if claims.get("iss") != expected_issuer:
        raise TokenRejected(
            "entra_tid_iss_mismatch",
            f"The token's issuer {claims.get('iss')!r} does not belong to its tenant {tid} "
            f"(expected {expected_issuer!r}).",
        )
    if tenant.lower() in MULTI_TENANT:
        if tid not in allowed_tenants:
            raise TokenRejected(
                "entra_tenant_not_allowed",
                f"Users of tenant {tid} may not sign in. To admit them, add {tid} to "
                "[identity_auth_manager] allowed_tenants.",
            )
    elif is_guid(tenant) and tid != tenant.lower():
        raise TokenRejected(
            "entra_wrong_tenant",
            f"The token was issued by tenant {tid}, not by the configured tenant_id {tenant}.",
        )
    return expected_issuer


def group_overage(claims: Mapping[str, Any], groups_claim: str) -> bool:
    """True when Entra left the groups out (more than 200, or ``hasgroups`` in implicit flows)."""
    if groups_claim != "groups":
        return False
    claim_names = claims.get("_claim_names")
    sourced = isinstance(claim_names, Mapping) and "groups" in claim_names
    return sourced or claims.get("hasgroups") is True


def overage_message(oid: str) -> str:
    return (
        f"User {oid} is in more groups than Entra puts in a token (group overage), so their groups are unknown. "
        "Fix one of: (1) map Entra app roles instead (set groups_claim = roles and assign app roles to the "
        "groups), or (2) emit only groups assigned to the application (groupMembershipClaims = "
        "ApplicationGroup). Or set [identity_auth_manager] resolve_group_overage = True to look the groups "
        "up in Microsoft Graph."
    )


def entra_identity(claims: Mapping[str, Any], *, groups_claim: str) -> Identity:
    """The stable id is (tid, oid): ``sub`` is per application and names and emails change."""
    oid, tid = claims.get("oid"), claims.get("tid")
    if not is_guid(oid):
        raise ClaimError(
            "entra_missing_oid",
            "The ID token has no 'oid' claim; request the 'profile' scope so Entra includes it.",
        )
    assert isinstance(oid, str) and isinstance(tid, str)
    email = next((v for k in ("email", "upn", "preferred_username") if isinstance(v := claims.get(k), str) and v), "")
    name = next((v for k in ("name", "preferred_username", "upn") if isinstance(v := claims.get(k), str) and v), oid)
    return Identity(user_id=f"{tid}:{oid}", name=name, email=email, groups=extract_groups(claims, groups_claim))


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
        return not prefix and suffix == "v2.0" and (is_guid(tenant) or issuer == self.settings.issuer)

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
        if not is_guid(tid):
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
        identity = entra_identity(claims, groups_claim=self.settings.groups_claim)
        if not group_overage(claims, self.settings.groups_claim):
            return identity
        if not self.settings.resolve_group_overage:
            raise ClaimError("entra_group_overage", overage_message(identity.user_id))
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
