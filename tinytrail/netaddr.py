"""One canonical form for the addresses and ranges of a website's `excluded_ips`.

An IPv4 client can reach a dual-stack server as an IPv4-mapped IPv6 address
(`::ffff:203.0.113.7`), and people copy that form from their logs. The collector compares
clients in the IPv4 form, so a mapped entry is turned into IPv4 when saved (the API) and
again when loaded (the collector, for rows saved before this rule): `::ffff:203.0.113.7`
→ `203.0.113.7`, `::ffff:10.0.0.0/104` → `10.0.0.0/8` (the last 32 bits of the 128 are
the IPv4 address, so an IPv6 prefix of 96 + n is an IPv4 prefix of n). A range wider than
the mapped block (`::ffff:0:0/95`) stays IPv6 and matches IPv6 clients only. The API
refuses a /0 (`::/0`, `0.0.0.0/0`, and `::ffff:a.b.c.d/96`, which unmaps to 0.0.0.0/0) and
keeps one entry per range (api/validation.py).
"""

from __future__ import annotations

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def unmap_address(addr: Address) -> Address:
    """The IPv4 address of an IPv4-mapped IPv6 address; any other address unchanged."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def unmap_network(net: Network) -> Network:
    """An IPv6 range inside ::ffff:0:0/96 as the IPv4 range it maps; others unchanged."""
    if isinstance(net, ipaddress.IPv6Network) and net.subnet_of(_MAPPED):
        v4 = unmap_address(net.network_address)
        return ipaddress.IPv4Network(f"{v4}/{net.prefixlen - 96}")
    return net


def parse_entry(text: str) -> Network:
    """An `excluded_ips` entry (address or CIDR, host bits ignored) in canonical form.

    Raises ValueError for anything else, IPv6 zone ids (`fe80::1%eth0`) included: they
    name a local interface, never a client."""
    raw = text.strip()
    if "%" in raw:
        raise ValueError(raw)
    return unmap_network(ipaddress.ip_network(raw, strict=False))


def canonical_text(text: str) -> str:
    """How the API saves an entry: an address as an address, a range as a range (host bits
    cleared), IPv4-mapped ones as IPv4. Raises ValueError like `parse_entry`."""
    if "/" in text:
        return str(parse_entry(text))
    raw = text.strip()
    if "%" in raw:
        raise ValueError(raw)
    return str(unmap_address(ipaddress.ip_address(raw)))
