"""One table of Azure clouds, read by Entra sign-in and by the Resource Manager hook alike.

Keeping the login host, the Microsoft Graph host, the ARM endpoint and the ARM token scope in one row
means a sovereign cloud is right everywhere at once: the classic bug (apache/airflow#65319, Ansible
#40225) is changing ``base_url`` but not the token scope or the authority, which ends in "token
obtained for the wrong audience" or ``SubscriptionNotFound``.

Pure and SDK-free: the auth manager imports this at api-server start.

Choices, checked against the installed SDKs:

* China login host is ``login.partner.microsoftonline.cn``. azure-identity's
  ``AzureAuthorityHosts.AZURE_CHINA`` still says ``login.chinacloudapi.cn``, but MSAL names that host
  ``DEPRECATED_AZURE_CHINA`` (msal/authority.py), and the China v2.0 issuer inside tokens is
  ``https://login.partner.microsoftonline.cn/{tid}/v2.0``, so sign-in issuer checks need this host.
  Both hosts are in MSAL's well-known list, so neither triggers instance discovery.
* ARM token scopes are the ones azure-mgmt-core uses for ``cloud_setting``
  (``azure.mgmt.core.tools.get_arm_endpoints``). For US Gov that is
  ``https://management.core.usgovcloudapi.net/.default``; ARM also accepts the
  ``management.usgovcloudapi.net`` audience, but following the SDK keeps one truth.
* US Gov Graph is the L4 host ``graph.microsoft.us`` (DoD tenants use ``dod-graph.microsoft.us``:
  build that with :func:`custom_cloud`).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlsplit

from airflow_identity_provider.errors import Refusal

__all__ = ["CLOUDS", "CUSTOM", "Cloud", "CloudConfigError", "custom_cloud", "get_cloud"]

CUSTOM = "custom"


class CloudConfigError(Refusal, ValueError):
    """A custom cloud endpoint is unusable; ``field`` names the argument of :func:`custom_cloud`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__("cloud_config", message)
        self.field = field


@dataclass(frozen=True)
class Cloud:
    """Endpoints of one Azure cloud.

    ``login_host`` and ``graph_host`` are bare hosts (``host[:port]``), the form azure-identity's
    ``authority`` and MSAL accept; ``arm_endpoint`` is a full https URL with a trailing slash, the form
    the ARM clients' ``base_url`` takes.
    """

    name: str
    login_host: str
    graph_host: str | None
    arm_endpoint: str
    arm_scope: str

    @property
    def authority(self) -> str:
        """The Entra authority as an https URL (what ``authority=`` on a credential gets)."""
        return f"https://{self.login_host}"

    @property
    def graph_endpoint(self) -> str | None:
        return f"https://{self.graph_host}" if self.graph_host else None

    @property
    def arm_host(self) -> str:
        """``host[:port]`` of the ARM endpoint, lower-cased: the only host a hook may send tokens to."""
        return urlsplit(self.arm_endpoint).netloc.lower()


PUBLIC = Cloud(
    name="public",
    login_host="login.microsoftonline.com",
    graph_host="graph.microsoft.com",
    arm_endpoint="https://management.azure.com/",
    arm_scope="https://management.azure.com/.default",
)
USGOV = Cloud(
    name="usgov",
    login_host="login.microsoftonline.us",
    graph_host="graph.microsoft.us",
    arm_endpoint="https://management.usgovcloudapi.net/",
    arm_scope="https://management.core.usgovcloudapi.net/.default",
)
CHINA = Cloud(
    name="china",
    login_host="login.partner.microsoftonline.cn",
    graph_host="microsoftgraph.chinacloudapi.cn",
    arm_endpoint="https://management.chinacloudapi.cn/",
    arm_scope="https://management.chinacloudapi.cn/.default",
)

CLOUDS: MappingProxyType[str, Cloud] = MappingProxyType({c.name: c for c in (PUBLIC, USGOV, CHINA)})


def get_cloud(name: str) -> Cloud:
    """Look a named cloud up (case-insensitive); an unknown name raises ValueError listing the choices."""
    cloud = CLOUDS.get(name.strip().lower())
    if cloud is None:
        choices = ", ".join(CLOUDS)
        raise ValueError(
            f"unknown Azure cloud {name!r}; expected one of {choices} "
            f"(or {CUSTOM!r} with an explicit authority and ARM endpoint)"
        )
    return cloud


def custom_cloud(
    authority: str,
    arm_endpoint: str,
    credential_scope: str | None = None,
    *,
    graph_host: str | None = None,
) -> Cloud:
    """A private or test cloud (Azure Stack Hub, an emulator).

    Every URL must be https: azure-identity refuses an http authority anyway and azure-core refuses to
    send a bearer token over http, so catching it here gives a message that names the setting.

    :param authority: Entra authority, ``https://host[:port]`` or a bare ``host[:port]`` (the form of
        ``AzureAuthorityHosts``); no path.
    :param arm_endpoint: ``https://host[:port]/``.
    :param credential_scope: ARM token scope; defaults to ``<arm_endpoint>/.default``.
    :param graph_host: Microsoft Graph ``host[:port]`` if the cloud has one.
    """
    login_host = _bare_host("authority", authority, allow_bare=True)
    arm_host = _bare_host("arm_endpoint", arm_endpoint, allow_bare=False)
    endpoint = f"https://{arm_host}/"
    scope = credential_scope.strip() if credential_scope else f"https://{arm_host}/.default"
    _check_scope(scope)
    return Cloud(
        name=CUSTOM,
        login_host=login_host,
        graph_host=_bare_host("graph_host", graph_host, allow_bare=True) if graph_host else None,
        arm_endpoint=endpoint,
        arm_scope=scope,
    )


def _bare_host(what: str, url: str, *, allow_bare: bool) -> str:
    """Validate an https URL with no path and return its lower-cased ``host[:port]``."""
    text = url.strip()
    if allow_bare and "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if parts.scheme.lower() != "https":
        raise CloudConfigError(what, f"{what} must be an https:// URL, got {url!r}")
    if not parts.hostname or parts.username or parts.password:
        raise CloudConfigError(what, f"{what} must be https://host[:port], got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise CloudConfigError(what, f"{what} must be https://host[:port] with no path or query, got {url!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise CloudConfigError(what, f"{what} has an invalid port: {url!r}") from None
    return parts.netloc.lower()


def _check_scope(scope: str) -> None:
    # A scope is either an https resource URI or an app id URI/GUID, always ending in /.default for
    # the client-credentials and managed-identity flows the hook uses.
    if not scope.endswith("/.default"):
        raise CloudConfigError("credential_scope", f"credential_scope must end with '/.default', got {scope!r}")
    if "://" in scope and not scope.lower().startswith("https://"):
        raise CloudConfigError("credential_scope", f"credential_scope must be an https:// resource, got {scope!r}")
