"""Shared fixtures for the ARM hook tests. Nothing here may reach a real Azure host."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

# Environment variables that would let azure-identity (or DefaultAzureCredential) pick an identity or an
# authority on its own; every test starts without them so only the connection decides.
_AMBIENT = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
)


@pytest.fixture(autouse=True)
def _no_ambient_azure(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("AZURE_", "AIRFLOW_CONN_")) or name in _AMBIENT:
            monkeypatch.delenv(name, raising=False)
    # Belt and braces: if anything still falls back to the environment's authority, it is loopback.
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://127.0.0.1:9")
    # DefaultAzureCredential would otherwise try developer tools (az, azd, pwsh) and IMDS at 169.254.169.254.
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9")
    yield


_real_getaddrinfo = socket.getaddrinfo


def _loopback_only_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    """Refuse to resolve anything but loopback: a test that would reach Azure fails loudly instead."""
    name = host.decode() if isinstance(host, bytes) else str(host or "")
    if name != "localhost":
        try:
            if not ipaddress.ip_address(name).is_loopback:
                raise OSError(f"test tried to reach {name!r}; tests/azure must stay on loopback")
        except ValueError:
            raise OSError(f"test tried to resolve {name!r}; tests/azure must stay on loopback") from None
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _loopback_only_getaddrinfo)
