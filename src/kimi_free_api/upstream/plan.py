"""Reading an account's plan and usage windows from Kimi's subscription calls.

GetSubscription is known from clients that use it as a token probe (evidence row 6); its fields beyond that, and
those of GetSubscriptionStats (seen in capture S7, not transcribed), are not documented. So both are read loosely:
a field is taken under any of the names seen or guessed, in either casing, and whatever is not found stays None,
which the admin console shows as "unknown".
"""

from __future__ import annotations

from typing import Any

from kimi_free_api.core.access.plan import AccountPlan, UsageWindow

SUBSCRIPTION_STATS = "/apiv2/kimi.gateway.order.v1.SubscriptionService/GetSubscriptionStats"

_PLAN_NAMES = ("plan", "planName", "plan_name", "title", "goodsTitle", "goods_title", "level", "membershipLevel")
_STATUS_NAMES = ("status", "subscriptionStatus", "subscription_status")
_EXPIRY_NAMES = ("expireTime", "expire_time", "endTime", "end_time", "expiresAt", "expires_at", "currentPeriodEnd")
_WINDOW_LISTS = ("windows", "usages", "usage", "stats", "quotas", "limits", "items")
_WINDOW_NAMES = ("window", "name", "type", "scope", "period")
_USED_NAMES = ("used", "usage", "consumed", "count", "usedCount", "used_count")
_LIMIT_NAMES = ("limit", "total", "quota", "max", "limitCount", "limit_count")
_RESET_NAMES = ("resetTime", "reset_time", "resetAt", "reset_at", "nextResetTime", "next_reset_time")


def parse_plan(subscription: dict[str, Any], stats: dict[str, Any] | None) -> AccountPlan:
    body = _first_dict(subscription, ("subscription", "membership", "data")) or subscription
    goods = _first_dict(body, ("goods", "product", "plan")) or {}
    return AccountPlan(
        plan=_text(goods, _PLAN_NAMES) or _text(body, _PLAN_NAMES),
        status=_text(body, _STATUS_NAMES),
        expires_at=_text(body, _EXPIRY_NAMES),
        windows=None if stats is None else _windows(stats),
    )


def _windows(stats: dict[str, Any]) -> tuple[UsageWindow, ...] | None:
    body = _first_dict(stats, ("stats", "subscriptionStats", "data")) or stats
    for name in _WINDOW_LISTS:
        items = body.get(name)
        if isinstance(items, list):
            return tuple(
                UsageWindow(
                    name=_text(item, _WINDOW_NAMES) or f"window {n + 1}",
                    used=_number(item, _USED_NAMES),
                    limit=_number(item, _LIMIT_NAMES),
                    resets_at=_text(item, _RESET_NAMES),
                )
                for n, item in enumerate(items)
                if isinstance(item, dict)
            )
    return None


def _first_dict(data: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any] | None:
    for name in names:
        value = data.get(name)
        if isinstance(value, dict):
            return value
    return None


def _text(data: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = data.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _number(data: dict[str, Any], names: tuple[str, ...]) -> float | None:
    for name in names:
        value = data.get(name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):  # protobuf's JSON codec writes 64-bit integers as strings
            try:
                return float(value)
            except ValueError:
                continue
    return None
