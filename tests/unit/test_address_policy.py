"""The address policy of server-side fetches: a pure function of the IP address."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from kimi_free_api.fetch.policy import category, refusal
from kimi_free_api.fetch.resolver import AddressRefused, check, parse_address, policy_vet


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("10.0.0.1", "private"),
        ("10.255.255.255", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fec0::1", "private"),
        ("169.254.0.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.170.2", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.0.8", "reserved"),
        ("198.18.0.1", "reserved"),
        ("2001::1", "reserved"),  # Teredo
        ("::127.0.0.1", "reserved"),  # IPv4-compatible, deprecated
        ("100::1", "reserved"),  # discard-only
        ("192.0.2.1", "documentation"),
        ("198.51.100.1", "documentation"),
        ("203.0.113.1", "documentation"),
        ("2001:db8::1", "documentation"),
        # IPv6 forms of IPv4 addresses are judged by the IPv4 address inside
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("64:ff9b::a9fe:a9fe", "cloud metadata"),  # NAT64 of 169.254.169.254
        ("2002:c0a8:0101::1", "private"),  # 6to4 of 192.168.1.1
        # public unicast
        ("93.184.216.34", None),
        ("8.8.8.8", None),
        ("172.32.0.1", None),
        ("100.128.0.1", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::808:808", None),
    ],
)
def test_category(address: str, expected: str | None) -> None:
    assert category(ip_address(address)) == expected


def test_allowing_loopback_admits_loopback_only() -> None:
    for address in ("127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"):
        assert refusal(ip_address(address), allow_loopback=True) is None
        assert refusal(ip_address(address)) == "loopback"
    for address in ("0.0.0.0", "::", "10.0.0.1", "169.254.169.254", "fd00:ec2::254", "fe80::1"):
        assert refusal(ip_address(address), allow_loopback=True) is not None


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("::1", "::1"),
        ("::ffff:7f00:1", "::ffff:7f00:1"),
        ("example.com", None),
        ("1.2.3.4.5", None),
    ],
)
def test_parse_address_reads_every_spelling_the_kernel_accepts(spelling: str, address: str | None) -> None:
    parsed = parse_address(spelling)
    assert (str(parsed) if parsed is not None else None) == address


def test_check_names_host_address_and_reason() -> None:
    vet = policy_vet(allow_loopback=False)
    with pytest.raises(AddressRefused) as caught:
        check(vet, "metadata.internal", "169.254.169.254")
    assert (caught.value.host, caught.value.address, caught.value.reason) == (
        "metadata.internal",
        "169.254.169.254",
        "cloud metadata",
    )
    assert str(caught.value) == "metadata.internal (169.254.169.254) is a cloud metadata address"
    with pytest.raises(AddressRefused, match="an unspecified address"):
        check(vet, "0.0.0.0", "0.0.0.0")
    with pytest.raises(AddressRefused, match="unparseable"):
        check(vet, "x", "not-an-address")
    check(vet, "example.com", "93.184.216.34")
