"""Who a request counts against: its API key's name, else its address (IPv6 by /64).

The address is the peer's, unless the peer is in TRUSTED_PROXIES: then the first address
from the right of X-Forwarded-For that is not a trusted proxy (anyone else's header is
ignored). An IPv6 client counts by its /64, which is what one subscriber is given: counting
by address would hand every client 2^64 buckets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from quart import Quart, current_app, g, request

from ielts_service.config import Settings

EXTENSION = "ielts_service.trusted_proxies"
IPV6_PREFIX = 64

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse(entry: str) -> Address | None:
    """An address from "ip", "ipv4:port" or "[ipv6]:port"; None when malformed."""
    entry = entry.strip()
    if entry.startswith("[") and "]" in entry:
        entry = entry[1 : entry.index("]")]
    elif entry.count(":") == 1:
        entry = entry.partition(":")[0]
    try:
        address = ipaddress.ip_address(entry)
    except ValueError:
        return None
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return mapped or address


def _trusted(address: Address | None, proxies: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in proxies)


def _counted(address: Address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


def client_address(
    peer: Sequence[object] | None, forwarded: Sequence[str], proxies: Sequence[Network]
) -> str:
    """The client's address as counted (IPv6: its /64): the peer's, unless the peer is a
    trusted proxy; then walk X-Forwarded-For from the right past trusted proxies (a
    malformed entry stops the walk at the last good address)."""
    host = str(peer[0]) if peer and peer[0] else ""
    address = _parse(host)
    if address is None:
        # Not an IP (a test client, a unix socket): a name, kept out of key syntax.
        return "".join(c for c in host if c not in "{}") or "unknown"
    if not _trusted(address, proxies):
        return _counted(address)
    for entry in reversed([e for header in forwarded for e in header.split(",")]):
        hop = _parse(entry)
        if hop is None:
            break
        address = hop
        if not _trusted(hop, proxies):
            break
    return _counted(address)


async def client_key() -> str:
    """Whom a request counts against: `key:<name>` when it sent a valid API key, else its
    address (IPv6: its /64). Every limit and quota of a client uses this one string."""
    if (key := g.get("api_key")) is not None:
        return f"key:{key.name}"
    return client_address(request.scope.get("client"), request.headers.getlist("X-Forwarded-For"),
                          current_app.extensions[EXTENSION])


def init_clients(app: Quart, settings: Settings) -> None:
    """Parse TRUSTED_PROXIES once."""
    app.extensions[EXTENSION] = tuple(
        ipaddress.ip_network(n, strict=False) for n in settings.trusted_proxies)
