"""Shared fixtures: the emulator and the gateway on real loopback sockets, and the real `openai` client."""

from __future__ import annotations

import os

import pytest
import trustme

# Tests talk to 127.0.0.1 only: never let a proxy setting of the machine route a request elsewhere.
for _var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_var, None)
os.environ["NO_PROXY"] = "*"


@pytest.fixture
def tls_ca() -> trustme.CA:
    """The authority of an emulator on HTTPS (tests/tls.py); trusted by no client unless told."""
    return trustme.CA()
