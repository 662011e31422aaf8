"""What a request presents, and whether a cookie-borne change comes from the gateway's own pages (pure)."""

from __future__ import annotations

import base64

import pytest

from airflow_identity_provider.luigi_gateway.credentials import (
    Malformed,
    Presented,
    is_navigation,
    presented,
    same_origin,
)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_bearer_and_the_basic_password_are_access_tokens() -> None:
    assert presented("Bearer abc.def.ghi") == Presented("bearer", "abc.def.ghi")
    assert presented("bearer  abc ") == Presented("bearer", "abc")
    assert presented(basic("worker", "abc.def.ghi")) == Presented("basic", "abc.def.ghi", "worker")
    assert presented(None) is None and presented("  ") is None


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Bearer", "malformed_authorization"),
        ("Basic !!!", "malformed_authorization"),
        (basic("worker", ""), "basic_without_token"),
        ("Basic " + base64.b64encode(b"no-colon").decode(), "basic_without_token"),
        ("Negotiate abc", "unsupported_authorization"),
    ],
)
def test_malformed_authorization(header: str, reason: str) -> None:
    found = presented(header)
    assert isinstance(found, Malformed) and found.reason == reason


def test_navigation() -> None:
    assert is_navigation("GET", "*/*", "navigate")
    assert not is_navigation("GET", "text/html", "cors")
    assert is_navigation("GET", "text/html,application/xhtml+xml", None)
    assert not is_navigation("GET", "application/json", None)
    assert not is_navigation("POST", "text/html", "navigate")


ORIGIN = "https://luigi.example.com"


@pytest.mark.parametrize(
    ("site", "requested_with", "origin", "ok"),
    [
        ("same-origin", None, None, True),  # Chromium's $.ajax GET
        ("cross-site", "XMLHttpRequest", None, False),
        ("same-site", None, None, False),
        ("none", None, None, False),  # typed in the address bar: not the visualiser's buttons
        (None, "XMLHttpRequest", None, True),  # an older browser without Sec-Fetch-*
        (None, None, None, False),
        (None, None, ORIGIN, True),
        ("same-origin", None, "https://evil.example", False),
        (None, "XMLHttpRequest", "null", False),
    ],
)
def test_same_origin(site: str | None, requested_with: str | None, origin: str | None, ok: bool) -> None:
    assert same_origin(site, requested_with, origin, ORIGIN) is ok
