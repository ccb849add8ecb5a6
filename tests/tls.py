"""The emulator on HTTPS: a throwaway certificate authority (trustme) signs its certificate for 127.0.0.1, and a
client trusts that authority only when it is told to (with `trusting`, or the gateway with KIMI_CA_FILE)."""

from __future__ import annotations

import ssl

import pytest
import trustme

HTTPS = "https"  # the indirect parameter that puts an `emulator` fixture on TLS


def serving(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def emulator_tls(request: pytest.FixtureRequest) -> ssl.SSLContext | None:
    """What an `emulator` fixture listens with: TLS signed by `tls_ca` when parametrized indirectly with HTTPS,
    plain HTTP otherwise."""
    if getattr(request, "param", None) != HTTPS:
        return None
    ca: trustme.CA = request.getfixturevalue("tls_ca")
    return serving(ca)
