"""What a request presents, read from its headers: a Bearer token, an access token as the Basic password, or
nothing; whether it is a browser navigation; whether a cookie-authenticated change comes from our own pages.
Pure: headers in, facts out.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Presented:
    """An access token from the Authorization header; ``scheme`` is ``bearer`` or ``basic``."""

    scheme: str
    token: str
    username: str = ""  # Basic only: free text (the worker's name for itself), never trusted


@dataclass(frozen=True)
class Malformed:
    reason: str
    message: str


def presented(authorization: str | None) -> Presented | Malformed | None:
    """None when there is no Authorization header at all (then a session cookie may speak)."""
    if authorization is None or not authorization.strip():
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        if not value:
            return Malformed("malformed_authorization", "The Authorization header says Bearer but carries no token.")
        return Presented("bearer", value)
    if scheme.lower() == "basic":
        return _basic(value)
    return Malformed(
        "unsupported_authorization",
        f"Authorization scheme {scheme!r} is not accepted; send 'Bearer <access token>' or the access token as "
        "the Basic password of the scheduler URL.",
    )


def _basic(value: str) -> Presented | Malformed:
    """Unmodified luigi workers can only send Basic (the user:password of ``[core] scheduler_url``): the
    password is the access token; the user name is not checked (the token says who the caller is)."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return Malformed("malformed_authorization", "The Basic credentials are not base64 of user:password.")
    username, sep, password = decoded.partition(":")
    if not sep or not password:
        return Malformed(
            "basic_without_token",
            "The Basic password must be an access token for the gateway (scheduler_url = "
            "https://worker:<access token>@host/); it is empty.",
        )
    return Presented("basic", password, username)


def is_navigation(method: str, accept: str | None, fetch_mode: str | None) -> bool:
    """A person's browser opening a page (sent to sign in), not a script calling the API (answered 401)."""
    if method not in ("GET", "HEAD"):
        return False
    if fetch_mode is not None:
        return fetch_mode == "navigate"
    return "text/html" in (accept or "")


def same_origin(fetch_site: str | None, requested_with: str | None, origin: str | None, public_origin: str) -> bool:
    """Whether a call riding on the session cookie comes from the gateway's own pages.

    The visualiser changes state with GET requests (``$.ajax`` on ``/api/mark_as_done?data=...``), and a
    SameSite=Lax cookie still rides on a top-level GET from another site: a link on any page could mark a
    task done as whoever clicks it. Browsers send ``Sec-Fetch-Site``; a page of another site cannot set
    ``X-Requested-With`` (jQuery's mark of its same-origin calls) without a CORS preflight, which the
    gateway never grants; an ``Origin`` must be ours.
    """
    if origin is not None and origin.rstrip("/") != public_origin:  # "null" (sandboxed frames) included
        return False
    if fetch_site is not None:
        return fetch_site == "same-origin"
    return requested_with == "XMLHttpRequest" or (origin is not None and origin.rstrip("/") == public_origin)


def from_our_pages(headers: Mapping[str, str], public_url: str) -> bool:
    """``same_origin`` for a request's headers (lower-case names, as Starlette's) and the gateway's ``public_url``."""
    parts = urlsplit(public_url)
    return same_origin(
        headers.get("sec-fetch-site"),
        headers.get("x-requested-with"),
        headers.get("origin"),
        f"{parts.scheme}://{parts.netloc}",
    )
