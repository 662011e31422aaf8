"""Public URLs of the auth app, always from ``[api] base_url`` (never from the Host header)."""

from __future__ import annotations

from airflow.configuration import conf

from airflow_identity_provider.auth.rules.settings import DEFAULT_NAME


def base_url() -> str:
    return (conf.get("api", "base_url", fallback="") or "").rstrip("/") + "/"


def callback_url(name: str = DEFAULT_NAME) -> str:
    # From [api] base_url, never from the Host header: the IdP would otherwise send codes wherever an
    # attacker-chosen Host points.
    return base_url() + ("auth/callback" if name == DEFAULT_NAME else f"auth/callback/{name}")


def logged_out_url() -> str:
    return base_url() + "auth/logged-out"
