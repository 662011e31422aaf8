"""The two ways an identity provider fails a request: unreachable (or unusable), or an OAuth error answer.

Both are :class:`~airflow_identity_provider.errors.Refusal` s, so handlers read ``reason`` and ``message``;
``str()`` stays the short technical form (``url: detail``, ``error: description``) that logs and the CLI print.
"""

from __future__ import annotations

from airflow_identity_provider.errors import Refusal

__all__ = ["IdpError", "IdpUnavailable"]


class IdpUnavailable(Refusal):
    """The identity provider could not be reached or answered with something unusable."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__("idp_unavailable", f"Airflow could not reach the identity provider at {url} ({detail}).")
        self.url = url
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.url}: {self.detail}"


class IdpError(Refusal):
    """The identity provider answered with an OAuth error (for example invalid_grant) to the code exchange."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(
            f"token_endpoint_{error}",
            f"The identity provider refused the sign-in code: {error} {description}. "
            "Codes can be used once and expire within minutes; start again.",
        )
        self.error = error
        self.description = description

    def __str__(self) -> str:
        return f"{self.error}: {self.description}"
