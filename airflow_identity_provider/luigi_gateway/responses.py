"""The gateway's own answers: JSON for scripts and workers, a short page for people. Each names the reason
(a stable code) and says what to do; a 401 never asks for Basic (browsers would open a password dialog)."""

from __future__ import annotations

import html
from urllib.parse import urlencode

from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} - Luigi</title>
<style>body{{font-family:system-ui,sans-serif;max-width:44rem;margin:4rem auto;padding:0 1rem}}
code{{background:#f3f3f3;padding:0 .2rem}}</style></head>
<body><h1>{title}</h1><p>{message}</p>{extra}</body></html>"""

_TITLES = {
    400: "Bad request",
    401: "Sign in needed",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    413: "Too large",
    502: "Luigi scheduler unreachable",
    503: "Identity provider unreachable",
}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "SAMEORIGIN",
}


def refusal(status: int, reason: str, message: str, *, html_page: bool, **extra: str | None) -> Response:
    body = {"reason": reason, "detail": message, **{k: v for k, v in extra.items() if v is not None}}
    headers = dict(SECURITY_HEADERS)
    if status == 401:
        headers["WWW-Authenticate"] = f'Bearer realm="luigi", error="invalid_token", error_description="{reason}"'
    if status == 503:
        headers["Retry-After"] = "30"
    if html_page:
        return page(_TITLES.get(status, "Refused"), message, status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


def page(
    title: str, message: str, *, status_code: int = 200, extra: str = "", headers: dict[str, str] | None = None
) -> HTMLResponse:
    """``extra`` is trusted HTML (built here); title and message are escaped."""
    text = _PAGE.format(title=html.escape(title), message=html.escape(message), extra=extra)
    return HTMLResponse(text, status_code=status_code, headers=headers or dict(SECURITY_HEADERS))


def to_sign_in(public_url: str, next_path: str) -> Response:
    """To the sign-in, from ``public_url`` (the gateway may sit under a path of an outer proxy)."""
    location = public_url + "auth/login?" + urlencode({"next": next_path})
    return RedirectResponse(location, status_code=302, headers=SECURITY_HEADERS)


def sign_out_page(public_url: str) -> HTMLResponse:
    """The confirmation a GET of /auth/logout shows: signing out is a POST from this page, so a link or an image
    on another site cannot end a person's session."""
    form = (
        f'<form method="post" action="{html.escape(public_url)}auth/logout">'
        '<button type="submit">Sign out</button></form>'
    )
    explanation = "Sign out of the Luigi visualiser (and of the identity provider, where it allows)."
    return page("Sign out", explanation, extra=form)


def signed_out_page(public_url: str) -> HTMLResponse:
    link = f'<p><a href="{html.escape(public_url)}">Sign in again</a></p>'
    return page("Signed out", "You are signed out of the Luigi visualiser.", extra=link)
