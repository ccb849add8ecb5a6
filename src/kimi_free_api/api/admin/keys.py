"""API keys in the admin API: list, create (the key is shown once), change limits, revoke.

A revoked or changed key takes effect at once on this instance (the key ring forgets what it remembered) and
within seconds on the others (they ask the store again after a few seconds)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from kimi_free_api.api.admin.ports import AdminContext, StoredKeyView
from kimi_free_api.api.admin.replies import limits_field, limits_json, object_body, reply, text_field
from kimi_free_api.api.admin.session import require_admin
from kimi_free_api.core.access.callers import NO_LIMITS
from kimi_free_api.core.errors import NotFound

CONFIGURED = "API_KEYS"


def _key_json(key: StoredKeyView) -> dict[str, object]:
    return {
        "id": key.id,
        "name": key.name,
        "created": round(key.created),
        "source": "store",
        "limits": limits_json(key.limits),
    }


def _configured_json(key_id: str) -> dict[str, object]:
    return {"id": key_id, "name": CONFIGURED, "created": None, "source": "env", "limits": limits_json(NO_LIMITS)}


async def list_keys(request: web.Request) -> web.Response:
    admin = await require_admin(request)
    stored = await asyncio.to_thread(admin.records.list_keys)
    data = [_configured_json(key_id) for key_id in admin.configured_keys] + [_key_json(key) for key in stored]
    return reply({"object": "list", "data": data})


async def create_key(request: web.Request) -> web.Response:
    admin = await require_admin(request, changing=True)
    body = await object_body(request)
    name = text_field(body, "name")
    limits = limits_field(body)
    stored, key = await asyncio.to_thread(admin.records.create_key, name, limits)
    return reply({**_key_json(stored), "key": key}, status=201)


async def _find(admin: AdminContext, key_id: str) -> StoredKeyView:
    for key in await asyncio.to_thread(admin.records.list_keys):
        if key.id == key_id:
            return key
    if key_id in admin.configured_keys:
        raise NotFound("Keys from API_KEYS are changed in the environment.", code="key_not_editable")
    raise NotFound(f"No API key {key_id!r}.", code="key_not_found")


async def update_key(request: web.Request) -> web.Response:
    admin = await require_admin(request, changing=True)
    key = await _find(admin, request.match_info["key_id"])
    limits = limits_field(await object_body(request), key.limits)
    await asyncio.to_thread(admin.records.set_key_limits, key.id, limits)
    admin.keys.forget()
    return reply(_key_json(await _find(admin, key.id)))


async def revoke_key(request: web.Request) -> web.Response:
    admin = await require_admin(request, changing=True)
    key = await _find(admin, request.match_info["key_id"])
    await asyncio.to_thread(admin.records.revoke_key, key.id)
    admin.keys.forget()
    return reply({"id": key.id, "deleted": True})
