"""Accounts in the admin API: list with live health, add (a token or a pasted localStorage dump), label, disable,
set a proxy, remove, and each account's plan and usage windows. Changes reach the running pool at once."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from kimi_free_api.api.admin.ports import AdminContext, LiveAccount
from kimi_free_api.api.admin.replies import object_body, reply, text_field
from kimi_free_api.api.admin.session import require_admin
from kimi_free_api.api.fields import fail, optional
from kimi_free_api.core.access.pasted import token_from_paste
from kimi_free_api.core.access.stored import StoredAccountView
from kimi_free_api.core.credentials import credential_id
from kimi_free_api.core.errors import GatewayError, NotFound
from kimi_free_api.redact import mask_proxy, mask_token, redact

# Schemes a proxy URL may have (the routing itself reads `Account.proxy`).
_PROXY_SCHEMES = ("http://", "https://", "socks4://", "socks5://", "socks5h://")
# Kimi's subscription answer changes rarely; the console asks again after this.
_PLAN_TTL_S = 60.0


class _Conflict(GatewayError):
    status = 409
    type = "invalid_request_error"
    code = "account_not_editable"


def _entry(live: LiveAccount | None, stored: StoredAccountView | None, now: float) -> dict[str, object]:
    if live is not None:
        entry = live.describe(now)
        entry["disabled"] = False
    else:
        assert stored is not None
        entry = {
            "id": stored.id,
            "kind": "server",
            "label": stored.label,
            "proxy": mask_proxy(stored.proxy),
            "token": mask_token(stored.token),
            # Not disabled yet not in this instance's pool: added elsewhere, it joins at the next look at the store.
            "health": "disabled" if stored.disabled else "joining",
            "in_flight": 0,
            "disabled": stored.disabled,
        }
    entry["source"] = "store" if stored is not None else "env" if entry["kind"] == "server" else "client"
    entry["added"] = round(stored.added) if stored is not None else None
    return entry


async def _stored(admin: AdminContext) -> dict[str, StoredAccountView]:
    return {stored.id: stored for stored in await asyncio.to_thread(admin.records.list_accounts)}


async def list_accounts(request: web.Request) -> web.Response:
    admin = await require_admin(request)
    stored = await _stored(admin)
    now = asyncio.get_running_loop().time()
    live = {account.id: account for account in admin.pool.accounts()}
    entries = [_entry(account, stored.get(account.id), now) for account in live.values()]
    entries += [_entry(None, record, now) for account_id, record in stored.items() if account_id not in live]
    return reply({"object": "list", "data": entries})


def _proxy(body: dict[str, object], default: str) -> str:
    proxy = text_field(body, "proxy", default, max_length=500)
    if proxy and not proxy.startswith(_PROXY_SCHEMES):
        raise fail(
            f"`proxy` must be a URL starting with one of {', '.join(_PROXY_SCHEMES)} (empty: KIMI_PROXY).", "proxy"
        )
    return proxy


def _join(admin: AdminContext, token: str, label: str, proxy: str) -> LiveAccount:
    account = admin.pool.add_server_account(token)
    account.label = label
    admin.pool.reroute(account.id, proxy)
    return account


async def add_account(request: web.Request) -> web.Response:
    admin = await require_admin(request, changing=True)
    body = await object_body(request)
    pasted = optional(body, "token", str, "a string: a Kimi token or the localStorage dump")
    token = token_from_paste(pasted or "")
    label = text_field(body, "label")
    proxy = _proxy(body, "")
    account_id = credential_id(token)
    existing = admin.pool.get(account_id)
    if existing is not None and account_id not in await _stored(admin):
        raise _Conflict("This account is configured in KIMI_TOKENS (or used as a client token) already.")
    await asyncio.to_thread(admin.records.add_account, account_id, token, label, proxy)
    account = _join(admin, token, label, proxy)
    try:
        live: bool | None = await admin.plans.check_token(token)
    except GatewayError:
        live = None  # Kimi unreachable now: the account is kept, the prober looks again
    entry = _entry(account, await _record(admin, account_id), asyncio.get_running_loop().time())
    return reply({**entry, "live": live}, status=201)


async def _record(admin: AdminContext, account_id: str) -> StoredAccountView | None:
    return (await _stored(admin)).get(account_id)


async def update_account(request: web.Request) -> web.Response:
    admin = await require_admin(request, changing=True)
    account_id = request.match_info["account_id"]
    body = await object_body(request)
    stored = await _record(admin, account_id)
    if stored is None:
        if admin.pool.get(account_id) is not None:
            raise _Conflict("This account comes from KIMI_TOKENS or a client: change it there.")
        raise NotFound(f"No account {account_id!r}.", code="account_not_found")
    label = text_field(body, "label", stored.label)
    proxy = _proxy(body, stored.proxy)
    disabled = optional(body, "disabled", bool, "true or false")
    disabled = stored.disabled if disabled is None else disabled
    await asyncio.to_thread(admin.records.update_account, account_id, label=label, disabled=disabled, proxy=proxy)
    if disabled:
        admin.pool.remove_server_account(account_id)  # answers already running on it finish
        live = None
    else:
        live = _join(admin, stored.token, label, proxy)
    admin.plan_cache.pop(account_id, None)
    return reply(_entry(live, await _record(admin, account_id), asyncio.get_running_loop().time()))


async def remove_account(request: web.Request) -> web.Response:
    admin = await require_admin(request, changing=True)
    account_id = request.match_info["account_id"]
    if not await asyncio.to_thread(admin.records.remove_account, account_id):
        if admin.pool.get(account_id) is not None:
            raise _Conflict("This account comes from KIMI_TOKENS or a client: remove it there.")
        raise NotFound(f"No account {account_id!r}.", code="account_not_found")
    admin.pool.remove_server_account(account_id)
    admin.plan_cache.pop(account_id, None)
    return reply({"id": account_id, "deleted": True})


async def account_plan(request: web.Request) -> web.Response:
    """The plan and usage windows Kimi publishes for the account; null fields are what it does not publish."""
    admin = await require_admin(request)
    account_id = request.match_info["account_id"]
    now = time.monotonic()
    cached = admin.plan_cache.get(account_id)
    if cached is not None and now - cached[0] < _PLAN_TTL_S:
        return reply(cached[1])
    live = admin.pool.get(account_id)
    stored = None if live is not None else await _record(admin, account_id)
    token = live.token if live is not None else stored.token if stored is not None else ""
    if not token:
        raise NotFound(f"No account {account_id!r}.", code="account_not_found")
    try:
        answer: dict[str, object] = {"id": account_id, **(await admin.plans.plan(token)).to_json(), "error": None}
    except GatewayError as exc:
        answer = {"id": account_id, "plan": None, "status": None, "expires_at": None, "windows": None}
        answer["error"] = redact(exc.message)
    admin.plan_cache[account_id] = (now, answer)
    return reply(answer)
