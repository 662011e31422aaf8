"""Small HTML pages for outcomes the user must read: refusals, an unreachable IdP, no role, signed out.

Every dynamic value is escaped; the pages carry no script, so they work under a strict CSP.
"""

from __future__ import annotations

from html import escape

from airflow.api_fastapi.app import AUTH_MANAGER_FASTAPI_APP_PREFIX
from fastapi.responses import HTMLResponse

from airflow_identity_provider.auth.idp.errors import IdpUnavailable
from airflow_identity_provider.auth.rules import audit
from airflow_identity_provider.auth.services.login import NoRole
from airflow_identity_provider.auth.services.results import Refused
from airflow_identity_provider.auth.services.urls import base_url

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - Airflow</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}}
h1{{font-size:1.4rem}} .detail{{color:#555}} a{{color:#017cee}}</style></head>
<body><h1>{title}</h1><p>{message}</p>{detail}{links}</body></html>
"""


def page(
    title: str,
    message: str,
    *,
    status_code: int,
    detail: str = "",
    links: dict[str, str] | None = None,
) -> HTMLResponse:
    detail_html = f'<p class="detail">{escape(detail)}</p>' if detail else ""
    context = audit.current_request()
    if status_code >= 400 and context is not None:
        # The same id as the audit event of this refusal: what an administrator searches the SIEM for.
        detail_html += f'<p class="detail">Request id: {escape(context.request_id)}</p>'
    links_html = "".join(f'<p><a href="{escape(href)}">{escape(text)}</a></p>' for text, href in (links or {}).items())
    html = _TEMPLATE.format(title=escape(title), message=escape(message), detail=detail_html, links=links_html)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def chooser_page(choices: dict[str, str]) -> HTMLResponse:
    """Several identity providers: one link per provider (label -> sign-in URL)."""
    return page(
        "Sign in to Airflow",
        "Choose how to sign in:",
        status_code=200,
        links=choices,
    )


# --- the outcomes of sign-in and sign-out, each with its audit event ------------------------------------

MAX_GROUPS_SHOWN = 10
MAX_GROUPS_AUDITED = 50


def _start_again() -> dict[str, str]:
    return {"Start signing in again": base_url()}


def signed_out_page() -> HTMLResponse:
    return page("Signed out", "You are signed out of Airflow.", status_code=200, links={"Sign in again": base_url()})


def refused_page(refused: Refused) -> HTMLResponse:
    if refused.unavailable is not None:
        return idp_unavailable_page(refused.unavailable)
    audit.emit("login", outcome="failure", reason=refused.reason, detail=refused.message)
    return page(
        "Sign-in refused",
        refused.message,
        status_code=refused.status_code,
        detail=f"Reason: {refused.reason}",
        links=_start_again(),
    )


def idp_unavailable_page(err: IdpUnavailable) -> HTMLResponse:
    audit.idp_unavailable("login", url=err.url, detail=err.detail)
    return page(
        "Identity provider unavailable",
        err.message,
        detail="Try again in a minute. If it persists, check [identity_auth_manager] issuer and the network "
        "path from the api-server to the identity provider.",
        status_code=503,
        links=_start_again(),
    )


def no_role_page(no_role: NoRole) -> HTMLResponse:
    identity, groups_claim = no_role.identity, no_role.groups_claim
    shown = ", ".join(identity.groups[:MAX_GROUPS_SHOWN]) or "none"
    if len(identity.groups) > MAX_GROUPS_SHOWN:
        shown += f" and {len(identity.groups) - MAX_GROUPS_SHOWN} more"
    audit.emit(
        "login",
        outcome="failure",
        reason="no_mapped_role",
        user_id=identity.user_id,
        user_name=identity.name,
        idp=no_role.idp or None,
        tenant=audit.tenant_of(identity.user_id),
        groups_claim=groups_claim,
        groups=list(identity.groups[:MAX_GROUPS_AUDITED]),  # the claim values that matched nothing
        groups_total=len(identity.groups),
    )
    return page(
        "No Airflow role for your account",
        f"You signed in as {identity.name}, but none of your groups ({shown}, from the "
        f"'{groups_claim}' claim) is mapped to an Airflow role or granted access to a DAG.",
        detail="Ask an Airflow administrator to add one of your groups to [identity_auth_manager] "
        "role_mapping or dag_grants (or a DAG's access_control), or to set default_role.",
        status_code=403,
        # Not "start again": the IdP session would sign the same person in again.
        links={"Sign in as someone else": f"{AUTH_MANAGER_FASTAPI_APP_PREFIX}/logout"},
    )


def unsafe_next_page(target: str) -> HTMLResponse:
    audit.emit("login", outcome="failure", reason="unsafe_next", next=target)
    return page(
        "Unsafe return address",
        "The address to return to after sign-in is not part of this Airflow.",
        status_code=400,
        detail="Reason: unsafe_next",
        links=_start_again(),
    )
