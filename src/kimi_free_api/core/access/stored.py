"""A server account as the store keeps it, as the admin surface and the pool read it (state/sqlite.py has the
record)."""

from __future__ import annotations

from typing import Protocol


class StoredAccountView(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def token(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def added(self) -> float: ...
    @property
    def disabled(self) -> bool: ...
    @property
    def proxy(self) -> str: ...
