"""The client address of a request behind reverse proxies: ``trusted_proxies`` and ``X-Forwarded-For``. Pure.

``X-Forwarded-For`` is a list anyone can start: a client may send ``X-Forwarded-For: 10.0.0.1`` to pass
for an internal host. Each proxy appends the address it was connected from, so the list is read from the
right and only as far as the hops are trusted proxies; the first address a trusted proxy vouches for and
that is not itself a proxy is the client. From a peer that is not a trusted proxy the header is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

__all__ = ["IPNetwork", "TrustedProxyError", "client_ip", "parse_address", "parse_trusted_proxies"]


class TrustedProxyError(ValueError):
    """One entry of ``trusted_proxies`` is not an address or CIDR range we accept (the message says why)."""


def parse_trusted_proxies(text: str) -> tuple[IPNetwork, ...]:
    """``"10.0.0.0/8, 192.168.1.10, fd00::/8"`` -> networks (a single address is a /32 or /128)."""
    networks: list[IPNetwork] = []
    for item in (part.strip() for part in text.replace(" ", ",").split(",")):
        if not item:
            continue
        try:
            network = ipaddress.ip_network(item, strict=True)
        except ValueError as err:
            if "host bits set" in str(err):
                fixed = ipaddress.ip_network(item, strict=False)
                raise TrustedProxyError(f"{item!r} has host bits set; did you mean {fixed}?") from None
            raise TrustedProxyError(
                f"{item!r} is not an IP address or CIDR range; expected e.g. 10.0.0.0/8,192.168.1.10"
            ) from None
        if network.prefixlen == 0:
            raise TrustedProxyError(
                f"{item!r} trusts every address, so any client could forge X-Forwarded-For; list your proxies"
            )
        networks.append(network)
    return tuple(dict.fromkeys(networks))


def parse_address(text: str) -> IPAddress | None:
    """An address as peers and proxies write it: ``1.2.3.4``, ``1.2.3.4:5678`` (Azure Application Gateway
    appends the port), ``2001:db8::1``, ``[2001:db8::1]:443``; IPv4-mapped IPv6 as IPv4. None for the rest
    (``unknown``, obfuscated identifiers, garbage)."""
    value = text.strip().strip('"')
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def client_ip(peer: str, forwarded_for: Iterable[str], trusted: Sequence[IPNetwork]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the right-most hop of
    ``X-Forwarded-For`` (every header, in order) that is not a trusted proxy. A malformed hop ends the walk
    at the last address a trusted proxy vouched for."""
    address = parse_address(peer)
    if address is None:
        return peer  # not an IP (a unix socket, the test client): report it as it is
    if not trusted or not _trusted(address, trusted):
        return str(address)
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        parsed = parse_address(hop)
        if parsed is None:
            break
        address = parsed
        if not _trusted(address, trusted):
            break
    return str(address)
