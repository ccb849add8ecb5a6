"""Naming a credential without revealing it."""

from __future__ import annotations

import hashlib


def credential_id(token: str) -> str:
    """A stable, non-secret name for a token: the same token always maps to the same account."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]
