"""Small HTML pages for outcomes the user must read: refusals, an unreachable IdP, signed out.

Every dynamic value is escaped; the pages carry no script, so they work under a strict CSP.
"""

from __future__ import annotations

from html import escape

from fastapi.responses import HTMLResponse

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
