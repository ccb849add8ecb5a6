"""Which IP addresses a server-side fetch of a client's URL may connect to: public unicast ones only.

Anything that reaches the gateway's own machine, its network or its cloud provider is refused: loopback, private
(RFC 1918, IPv6 unique-local), link-local, carrier-grade NAT, multicast, unspecified and reserved ranges, and the
cloud metadata endpoints. IPv6 forms that carry an IPv4 address (IPv4-mapped, NAT64, 6to4) are judged by the IPv4
address inside. Python's own `is_global`/`is_private` changed between patch releases, so the ranges are listed
here explicitly.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

IPAddress = IPv4Address | IPv6Address

LOOPBACK = "loopback"
# Checked first: metadata addresses sit inside link-local / unique-local ranges but deserve their own name.
_METADATA = frozenset(
    {
        ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack …
        ip_address("169.254.170.2"),  # AWS ECS task metadata
        ip_address("100.100.100.200"),  # Alibaba Cloud
        ip_address("fd00:ec2::254"),  # AWS over IPv6
    }
)
_V4_RANGES: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), category)
    for net, category in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("127.0.0.0/8", LOOPBACK),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "reserved"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "reserved"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),  # includes the broadcast address
    )
)
# Only 2000::/3 is global unicast; inside it these are not reachable public hosts.
_V6_GLOBAL = IPv6Network("2000::/3")
_V6_RANGES: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), category)
    for net, category in (
        ("::/128", "unspecified"),
        ("::1/128", LOOPBACK),
        ("fc00::/7", "private"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "private"),
        ("ff00::/8", "multicast"),
        ("2001::/23", "reserved"),  # IETF protocol assignments, Teredo
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
    )
)
_NAT64 = IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = IPv6Network("2002::/16")


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, when it is an IPv4-mapped, NAT64 or 6to4 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def category(address: IPAddress) -> str | None:
    """Why an address is not a public one ("loopback", "private", "cloud metadata" …), or None when it is."""
    if address in _METADATA:
        return "cloud metadata"
    if isinstance(address, IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            return category(inner)
        for network6, name in _V6_RANGES:
            if address in network6:
                return name
        return None if address in _V6_GLOBAL else "reserved"
    for network, name in _V4_RANGES:
        if address in network:
            return name
    return None


def refusal(address: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """The reason a fetch must not connect to `address`, or None when it may.

    `allow_loopback` (local testing only) admits 127.0.0.0/8 and ::1, nothing else: not 0.0.0.0, which also
    reaches the local machine on Linux but is never a legitimate target.
    """
    reason = category(address)
    if reason == LOOPBACK and allow_loopback:
        return None
    return reason
