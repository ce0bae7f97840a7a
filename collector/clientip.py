"""Which address is the client: the socket peer, or X-Forwarded-For behind a trusted proxy.

Rule (DECISIONS.md): when the peer is a configured trusted proxy, walk
X-Forwarded-For from the right and take the first address that is not itself a
trusted proxy (the left-most untrusted hop a proxy we trust vouches for).
Example with trusted 10.0.0.0/8 and `X-Forwarded-For: 1.1.1.1, 203.0.113.9, 10.0.0.5`
from peer 10.0.0.2: 10.0.0.5 is trusted, so the client is 203.0.113.9 (1.1.1.1 is
whatever the client claimed and cannot be believed). A malformed entry stops the
walk at the last good hop.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(value: str) -> Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.9:1234"
        value = value.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        return addr.ipv4_mapped
    return addr


def _trusted(addr: Address, trusted: Sequence[Network]) -> bool:
    return any(addr.version == net.version and addr in net for net in trusted)


def client_ip(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client's address as a normalised string (never logged, never stored)."""
    peer_addr = parse_ip(peer)
    if peer_addr is None:
        return peer
    if not forwarded_for or not trusted or not _trusted(peer_addr, trusted):
        return str(peer_addr)
    client = peer_addr
    for hop in reversed(forwarded_for.split(",")):
        addr = parse_ip(hop)
        if addr is None:
            break
        client = addr
        if not _trusted(addr, trusted):
            break
    return str(client)
