"""Which address is the client: the socket peer, or X-Forwarded-For behind a trusted proxy.

Rule (docs/RULES.md): when the peer is a configured trusted proxy, walk
X-Forwarded-For from the right and take the first address that is not itself a
trusted proxy (the left-most untrusted hop a proxy we trust vouches for).
Example with trusted 10.0.0.0/8 and `X-Forwarded-For: 1.1.1.1, 203.0.113.9, 10.0.0.5`
from peer 10.0.0.2: 10.0.0.5 is trusted, so the client is 203.0.113.9 (1.1.1.1 is
whatever the client claimed and cannot be believed). A malformed entry stops the
walk at the last good hop.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from functools import lru_cache

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


@lru_cache(maxsize=16)
def _v4_ranges(trusted: tuple[Network, ...]) -> tuple[tuple[int, int], ...]:
    """The IPv4 trusted networks as (network, mask) integers, for the fast path."""
    return tuple((int(n.network_address), int(n.netmask)) for n in trusted if n.version == 4)


def _fast_v4(value: str, trusted: tuple[Network, ...]) -> tuple[str, bool] | None:
    """(canonical address, trusted?) for a plain dotted IPv4 string, else None.

    The common case (an IPv4 peer or hop) without building `ipaddress` objects, which
    cost several microseconds each; anything else (IPv6, ports, brackets, blanks) goes
    through `parse_ip`, so results are identical: only a string that `inet_ntop` gives
    back unchanged (the canonical dotted quad) takes this path.
    """
    try:
        packed = socket.inet_pton(socket.AF_INET, value)
    except OSError:
        return None
    canonical = socket.inet_ntop(socket.AF_INET, packed)
    if canonical != value:  # e.g. leading zeros: let `parse_ip` decide, as before
        return None
    n = int.from_bytes(packed, "big")
    return canonical, any(n & mask == net for net, mask in _v4_ranges(trusted))


def client_ip(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client's address as a normalised string (never logged, never stored)."""
    if isinstance(trusted, tuple) and (fast := _fast_v4(peer, trusted)) is not None:
        addr_str, peer_trusted = fast
        if not forwarded_for or not peer_trusted:
            return addr_str
        hops = forwarded_for.split(",")
        if len(hops) == 1 and (hop := _fast_v4(hops[0].strip(), trusted)) is not None:
            # One hop (a single proxy in front of us): it is the client whether or not it
            # is itself trusted, exactly as the general walk below decides.
            return hop[0]
    peer_addr = parse_ip(peer)
    if peer_addr is None:
        return peer
    if not forwarded_for or not trusted or not _trusted(peer_addr, trusted):
        return str(peer_addr)
    client = peer_addr
    for hop_text in reversed(forwarded_for.split(",")):
        addr = parse_ip(hop_text)
        if addr is None:
            break
        client = addr
        if not _trusted(addr, trusted):
            break
    return str(client)
