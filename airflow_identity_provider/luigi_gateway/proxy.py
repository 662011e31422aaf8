"""The call to luigid, after the gateway allowed it: an API call is rebuilt from the arguments the gateway
checked (one ``data`` form field, POST), a page is fetched as asked. Nothing of the caller's credentials
(Authorization, cookies) reaches luigid. luigid unreachable -> ``UpstreamDown`` (the app answers 502).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

import httpx
from starlette.responses import Response

from airflow_identity_provider.luigi_gateway.responses import SECURITY_HEADERS
from airflow_identity_provider.luigi_gateway.settings import Upstream

# Request headers luigid may use (content negotiation and caching of the visualiser's files).
_FORWARDED_REQUEST = ("accept", "accept-language", "if-none-match", "if-modified-since", "user-agent")
# Response headers worth passing back; hop-by-hop headers and Set-Cookie stay behind.
_FORWARDED_RESPONSE = ("content-type", "cache-control", "etag", "last-modified", "location", "expires")


class UpstreamDown(Exception):
    """luigid did not answer (refused, reset, timed out)."""

    def __init__(self, upstream: str, detail: str) -> None:
        super().__init__(f"{upstream}: {detail}")
        self.upstream = upstream
        self.detail = detail


class LuigidClient:
    def __init__(self, upstream: Upstream, *, timeout: float, transport: httpx.AsyncBaseTransport | None = None):
        if transport is None and upstream.unix_socket is not None:
            transport = httpx.AsyncHTTPTransport(uds=upstream.unix_socket)
        self._upstream = upstream
        self._client = httpx.AsyncClient(
            base_url=upstream.base_url,
            transport=transport,
            timeout=timeout,
            follow_redirects=False,
            # luigid compresses when asked; on loopback that only costs time, and the body is passed on as is.
            headers={"accept-encoding": "identity"},
        )

    async def call(self, method: str, data: str, *, request_id: str) -> httpx.Response:
        """``POST /api/<method>`` with the one ``data`` field (luigid reads form and query alike)."""
        return await self._send(
            "POST",
            f"/api/{method}",
            data={"data": data},
            headers={"x-request-id": request_id},
        )

    async def page(
        self, http_method: str, path: str, query: bytes, headers: Mapping[str, str], *, request_id: str
    ) -> httpx.Response:
        kept = {name: headers[name] for name in _FORWARDED_REQUEST if name in headers}
        # Re-quoted: the path arrives percent-decoded, and a decoded "?" or "#" is no valid URL path for httpx.
        url = httpx.URL(path=quote(path, safe="/"), query=query)
        return await self._send(http_method, url, headers={**kept, "x-request-id": request_id})

    async def _send(self, method: str, url: httpx.URL | str, **kwargs: object) -> httpx.Response:
        try:
            return await self._client.request(method, url, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError as err:
            raise UpstreamDown(self._upstream.description, f"{type(err).__name__}: {err}") from None

    async def close(self) -> None:
        await self._client.aclose()


def relay(upstream: httpx.Response) -> Response:
    """luigid's answer as the gateway's, with only the headers that describe the body."""
    headers = {name: upstream.headers[name] for name in _FORWARDED_RESPONSE if name in upstream.headers}
    return Response(upstream.content, status_code=upstream.status_code, headers={**headers, **SECURITY_HEADERS})
