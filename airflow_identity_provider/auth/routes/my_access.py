"""``GET /auth/my-access`` ("My access" in the UI menu): what the signed-in user holds and why.

The user comes from the Airflow JWT (``Authorization: Bearer`` or the ``_token`` cookie), validated by the
auth manager's own ``get_user_from_token`` (signature, expiry, revocation, a configured provider): the
core's ``get_user`` dependency belongs to the core API app, not to this mounted sub-app. The answers come
from the same authorizer that decides every request, over the in-memory DAG index. Not signed in, an
expired or forged token: a 401 page with a sign-in link, never a 500. ``?format=json`` gives the same as JSON.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from html import escape
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import urlencode

from airflow.api_fastapi.app import AUTH_MANAGER_FASTAPI_APP_PREFIX
from airflow.configuration import conf
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jwt import InvalidTokenError
from starlette.concurrency import run_in_threadpool

from airflow_identity_provider.auth.routes.common import auth_context
from airflow_identity_provider.auth.routes.pages import page
from airflow_identity_provider.auth.rules.access_report import (
    dag_sources,
    grouped_lines,
    named_by,
    role_holdings,
    role_reasons,
)
from airflow_identity_provider.auth.rules.permissions import format_permissions
from airflow_identity_provider.auth.rules.user import IdentityUser
from airflow_identity_provider.auth.services.revocation import request_tokens
from airflow_identity_provider.auth.services.urls import base_url

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

    from airflow_identity_provider.auth.services.authorizer import Authorizer
    from airflow_identity_provider.auth.services.context import AuthContext

log = logging.getLogger(__name__)
router = APIRouter()
MAX_DAGS_SHOWN = 200
PATH = "/my-access"


class MyAccessContext(Protocol):
    """What this page needs of the auth manager beyond ``AuthContext``."""

    @property
    def authorizer(self) -> Authorizer: ...

    async def get_user_from_token(self, token: str) -> BaseUser: ...

    def get_authorized_dag_ids(self, *, user: IdentityUser, method: Any = "GET") -> set[str]: ...


@router.get(PATH, response_model=None)
async def my_access(request: Request, format: str = "html") -> Response:
    ctx = auth_context(request)
    tokens = request_tokens(request)
    user: BaseUser | None = None
    for token in tokens:
        try:
            user = await cast(MyAccessContext, ctx).get_user_from_token(token)
            break
        except InvalidTokenError:  # expired, forged, revoked, or from another auth manager: try the next one
            continue
        except Exception:
            log.warning("My access: cannot check the session token", exc_info=True)
            return page(
                "Cannot check your session",
                "Airflow could not check your session just now (is the metadata database reachable?).",
                status_code=503,
                links={"Try again": f"{AUTH_MANAGER_FASTAPI_APP_PREFIX}{PATH}"},
            )
    if not isinstance(user, IdentityUser):
        return _not_signed_in(expired=bool(tokens))
    visible: set[str] | None = None
    if conf.getboolean("core", "multi_team", fallback=False):
        # Grants match DAGs regardless of their team; the core's own list (one query: this is a page, not
        # an authorization check) keeps another team's DAG ids off the page.
        try:
            visible = await run_in_threadpool(cast(MyAccessContext, ctx).get_authorized_dag_ids, user=user)
        except Exception:
            log.warning("My access: cannot list the DAGs you can see", exc_info=True)
            visible = set()
    summary = access_summary(ctx, cast(MyAccessContext, ctx).authorizer, user, visible=visible)
    if format == "json":
        return JSONResponse(summary, headers={"Cache-Control": "no-store"})
    return HTMLResponse(render_page(summary), headers={"Cache-Control": "no-store"})


def _not_signed_in(*, expired: bool) -> HTMLResponse:
    query = urlencode({"next": f"{base_url()}auth{PATH}"})
    return page(
        "Sign in to see your access",
        "Your session has ended or is not valid here; sign in again to see what you may do in Airflow."
        if expired
        else "You are not signed in to Airflow; sign in to see what you may do.",
        status_code=401,
        links={"Sign in": f"{AUTH_MANAGER_FASTAPI_APP_PREFIX}/login?{query}"},
    )


def access_summary(
    ctx: AuthContext, authorizer: Authorizer, user: IdentityUser, *, visible: set[str] | None = None
) -> dict[str, Any]:
    """The page's content as a JSON-ready dict (also ``?format=json``); DAGs only among ``visible`` if given."""
    provider = ctx.providers[user.idp]  # get_user_from_token refused tokens of any other provider
    policy = provider.settings.access
    names = authorizer.access_control_names()
    reasons = role_reasons(policy, user.groups, user.roles)
    dags = [dag_id for dag_id in authorizer.dags.all() if visible is None or dag_id in visible]
    on_dags: list[dict[str, Any]] = []
    for dag_id in sorted(dags):
        access = authorizer.dag_access(user, dag_id)
        if access.permissions:
            holdings = dag_sources(policy, dag_id, access, authorizer.access_control(dag_id))
            lines = grouped_lines(holdings)
            on_dags.append({"dag_id": dag_id, "permissions": [{"permission": t, "sources": w} for t, w in lines]})
    by_role = role_holdings(policy, reasons, dag_level_only=True)
    every_dag = by_role.get(("dag", "GET"), [])
    return {
        "user": {
            "id": user.user_id,
            "name": user.name,
            "email": user.email,
            "provider": user.idp,
            "provider_display_name": provider.settings.display_name,
            "signed_in_at": user.auth_time,
        },
        "groups": [{"name": group, "named_by": named_by(policy, group, names)} for group in user.groups],
        "roles": [{"name": role, "from": reason} for role, reason in reasons.items()],
        "teams": list(user.teams),
        "permissions": format_permissions(authorizer.permissions(user)),
        "grants": [policy.grants[i].describe(i) for i in policy.grants_of(frozenset(user.groups))],
        "dags": {
            "total": len(dags),
            "every_dag_through": every_dag,  # the roles that let the user see every DAG ([] if none does)
            "count": len(on_dags),  # DAGs where dag_grants or access_control give something
            "shown": on_dags[:MAX_DAGS_SHOWN],
        },
    }


# --- the page ------------------------------------------------------------------------------------------

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>My access - Airflow</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:4rem auto;padding:0 1rem;color:#222}}
h1{{font-size:1.4rem}} h2{{font-size:1.1rem;margin-top:2rem}} .detail{{color:#555}} a{{color:#017cee}}
table{{border-collapse:collapse;width:100%}} th,td{{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;
vertical-align:top;font-size:.9rem}} th{{background:#f5f5f5}} code{{font-size:.85rem}}</style></head>
<body><h1>My access</h1>{body}</body></html>
"""


def _items(values: list[str], empty: str) -> str:
    if not values:
        return f'<p class="detail">{escape(empty)}</p>'
    return "<ul>" + "".join(f"<li>{escape(v)}</li>" for v in values) + "</ul>"


def render_page(summary: Mapping[str, Any]) -> str:
    """Every value escaped (group names and DAG ids come from directories and DAG files); no script."""
    who = summary["user"]
    signed_in = (
        datetime.fromtimestamp(who["signed_in_at"], tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        if who["signed_in_at"]
        else "-"
    )
    rows = (
        ("User id", who["id"]),
        ("Name", who["name"]),
        ("E-mail", who["email"] or "-"),
        ("Signed in through", f"{who['provider_display_name']} ({who['provider']})"),
        ("Signed in at", signed_in),
    )
    parts = ["<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)]
    parts[0] += "</table>"
    groups = [f"{g['name']} (named by {', '.join(g['named_by']) or 'no setting now'})" for g in summary["groups"]]
    parts += ["<h2>Your groups that a setting names</h2>", _items(groups, "None.")]
    roles = [f"{r['name']} (from {r['from']})" for r in summary["roles"]]
    parts += ["<h2>Roles</h2>", _items(roles, "None: your access comes from DAG grants and access_control only.")]
    parts += ["<h2>Teams</h2>", _items(list(summary["teams"]), "None.")]
    parts += ["<h2>What your roles allow, everywhere</h2>", _items(list(summary["permissions"]), "Nothing.")]
    parts += ["<h2>DAG grants that apply to you</h2>", _items(list(summary["grants"]), "None.")]
    parts.append(_dags_html(summary["dags"]))
    links = {"Back to Airflow": base_url(), "Sign out": f"{AUTH_MANAGER_FASTAPI_APP_PREFIX}/logout"}
    parts += [f'<p><a href="{escape(href)}">{escape(text)}</a></p>' for text, href in links.items()]
    return _TEMPLATE.format(body="".join(parts))


def _dags_html(dags: Mapping[str, Any]) -> str:
    parts = ["<h2>DAGs</h2>"]
    if dags["every_dag_through"]:
        through = "; ".join(dags["every_dag_through"])
        parts.append(f"<p>You see every DAG ({dags['total']}) through {escape(through)}.</p>")
    parts.append(
        f'<p class="detail">DAG grants and access_control give you something on {dags["count"]} of '
        f"{dags['total']} DAGs"
        + (f" (the first {MAX_DAGS_SHOWN} are listed)" if dags["count"] > MAX_DAGS_SHOWN else "")
        + ":</p>"
    )
    rows = [
        f"<tr><td><code>{escape(d['dag_id'])}</code></td><td><code>{escape(p['permission'])}</code></td>"
        f"<td>{escape('; '.join(p['sources']))}</td></tr>"
        for d in dags["shown"]
        for p in d["permissions"]
    ]
    if rows:
        parts.append("<table><tr><th>DAG</th><th>Permissions</th><th>Why</th></tr>" + "".join(rows) + "</table>")
    return "".join(parts)


__all__ = ["MyAccessContext", "access_summary", "render_page", "router"]
