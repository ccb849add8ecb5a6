"""KIMI_CA_FILE adds to the system's trust (never replaces it, never turns verification off), and a certificate
that failed is named as such to the client, with the setting that fixes it."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import trustme

from kimi_free_api.upstream.proxies import trusted, unreachable_reason


def test_kimi_ca_file_is_trusted_besides_the_systems_cas(tmp_path: Path, tls_ca: trustme.CA) -> None:
    assert trusted("") is True, "aiohttp's own verified default"
    path = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    context = trusted(str(path))
    assert isinstance(context, ssl.SSLContext)
    system = ssl.create_default_context().cert_store_stats()["x509_ca"]
    assert context.cert_store_stats()["x509_ca"] == system + 1
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)


def test_a_failed_certificate_is_named_other_failures_by_their_class() -> None:
    # How aiohttp reports the handshake python-socks did for a SOCKS route.
    failed = aiohttp.ClientOSError(1, "certificate verify failed")
    failed.__cause__ = ssl.SSLCertVerificationError(1, "certificate verify failed: unable to get local issuer")
    assert unreachable_reason(failed) == (
        "Kimi's TLS certificate could not be verified (KIMI_CA_FILE adds trusted CAs)"
    )
    assert unreachable_reason(failed, "the object storage").startswith("the object storage's TLS certificate")
    refused = aiohttp.ClientOSError(111, "Connect call failed ('127.0.0.1', 9) with secret://in-the-text")
    assert unreachable_reason(refused) == "ClientOSError"
