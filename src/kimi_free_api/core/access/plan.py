"""An account's plan and usage windows, as far as Kimi's subscription calls tell them; None where they do not."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class UsageWindow:
    name: str
    used: float | None = None
    limit: float | None = None
    resets_at: str | None = None


@dataclass(frozen=True, slots=True)
class AccountPlan:
    plan: str | None = None
    status: str | None = None
    expires_at: str | None = None
    # None: Kimi published no usage figures for this account (or the call failed); () would be "none apply".
    windows: tuple[UsageWindow, ...] | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "plan": self.plan,
            "status": self.status,
            "expires_at": self.expires_at,
            "windows": None
            if self.windows is None
            else [{"name": w.name, "used": w.used, "limit": w.limit, "resets_at": w.resets_at} for w in self.windows],
        }
