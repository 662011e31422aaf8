"""Template sources that ARM would fetch itself, made check-then-use safe.

ARM fetches a ``templateLink.uri`` once for what-if and again for the deployment, so the content checked is
not necessarily the content deployed. The operator therefore fetches the linked template once, logs its
SHA-256 and sends it inline to both calls. A template spec (``templateLink.id``) is read through ARM: its
version id is pinned (a spec id without ``/versions/<v>`` is refused), its content scanned, and the version
is read again just before the deployment; a change in between refuses the deployment.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk.exceptions import AirflowException

if TYPE_CHECKING:
    from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerHook

__all__ = [
    "TEMPLATE_SPECS_API_VERSION",
    "PinnedSpec",
    "fetch_linked_template",
    "read_template_spec",
    "template_sha256",
]

TEMPLATE_SPECS_API_VERSION = "2022-02-01"
MAX_TEMPLATE_BYTES = 4 * 1024 * 1024  # ARM's own limit for a template
_SPEC_VERSION_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/[^/]+/providers/Microsoft\.Resources/templateSpecs/[^/]+"
    r"/versions/[^/]+",
    re.IGNORECASE,
)


def template_sha256(content: Any) -> str:
    """Hash of the canonical JSON: the same template gives the same hash whatever its key order."""
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def fetch_linked_template(uri: str, *, verify: str | bool = True, timeout: float = 30.0) -> dict[str, Any]:
    """GET the linked template once (https only: a template fetched in clear could be swapped on the way).

    The URI's query (often a SAS token) is masked in logs before anything can print it.
    """
    import httpx
    from airflow.sdk.log import mask_secret

    parts = urlsplit(uri)
    if parts.query:
        mask_secret(parts.query)
    if parts.scheme != "https" or not parts.netloc:
        raise AirflowException(
            f"template_link must be an https URL (got scheme {parts.scheme!r}): the operator fetches it itself "
            "and sends it inline, so that what-if and the deployment see the same content"
        )
    shown = f"{parts.scheme}://{parts.netloc}{parts.path}"
    try:
        with httpx.Client(verify=verify, timeout=timeout, follow_redirects=False) as client:
            response = client.get(uri)
    except httpx.HTTPError as err:
        raise AirflowException(f"cannot fetch template_link {shown}: {err}") from None
    if response.status_code != 200:
        raise AirflowException(f"template_link {shown} answered HTTP {response.status_code}; expected 200")
    if len(response.content) > MAX_TEMPLATE_BYTES:
        raise AirflowException(f"template_link {shown} is larger than ARM's {MAX_TEMPLATE_BYTES} byte limit")
    try:
        content = json.loads(response.content.decode("utf-8-sig"))
    except ValueError as err:
        raise AirflowException(f"template_link {shown} is not a JSON template: {err}") from None
    if not isinstance(content, dict):
        raise AirflowException(f"template_link {shown} must hold a JSON object (an ARM template)")
    return content


@dataclass(frozen=True)
class PinnedSpec:
    """One read of a template spec version: what was checked, to compare with the read before the PUT."""

    version_id: str
    main_template: dict[str, Any]
    sha256: str
    has_linked_templates: bool


def read_template_spec(hook: AzureResourceManagerHook, version_id: str) -> PinnedSpec:
    """GET a template spec version through the hook's ARM pipeline (host pin, token, correlation id)."""
    from azure.core.exceptions import HttpResponseError
    from azure.core.rest import HttpRequest
    from azure.mgmt.core.exceptions import ARMErrorFormat

    from airflow_identity_provider.azure.hooks.errors import raise_arm_error
    from airflow_identity_provider.azure.rules.scopes import ScopeError, parse_scope

    match = _SPEC_VERSION_ID.fullmatch(version_id)
    try:
        parse_scope(version_id)  # no '?', '#', '%', '..' or blanks that would make the URL another resource
    except ScopeError:
        match = None
    if match is None:
        raise AirflowException(
            f"template_spec_id {version_id!r} is not a template spec version id: give "
            "/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Resources/templateSpecs/<name>"
            "/versions/<version>, so that the version checked is the version deployed"
        )
    client = hook.get_resource_client(subscription_id=match.group("sub"))
    request = HttpRequest("GET", version_id, params={"api-version": TEMPLATE_SPECS_API_VERSION})
    try:
        # The client's own send_request resolves the relative URL against the cloud's ARM endpoint.
        response = client.send_request(request)
        if response.status_code != 200:
            raise HttpResponseError(response=response, error_format=ARMErrorFormat)
        body = response.json()
    except HttpResponseError as err:
        raise_arm_error(f"read template spec version {version_id}", err)
    props = body.get("properties") if isinstance(body, Mapping) else None
    main = props.get("mainTemplate") if isinstance(props, Mapping) else None
    if not isinstance(main, dict):
        raise AirflowException(f"template spec version {version_id} has no mainTemplate")
    linked = props.get("linkedTemplates") if isinstance(props, Mapping) else None
    return PinnedSpec(
        version_id=version_id,
        main_template=main,
        sha256=template_sha256({"main": main, "linked": linked or []}),
        has_linked_templates=bool(linked),
    )
