"""GET /admin/api/log: the latest API requests, filtered by key, model, account or status."""

from __future__ import annotations

import re

from aiohttp import web

from kimi_free_api.api.admin.replies import reply
from kimi_free_api.api.admin.session import require_admin
from kimi_free_api.api.fields import fail
from kimi_free_api.api.metering import REQUEST_LOG
from kimi_free_api.core.access.requestlog import LogQuery

_STATUS = re.compile(r"[1-5](?:xx|\d\d)")
_MAX_ROWS = 1000


async def request_log(request: web.Request) -> web.Response:
    await require_admin(request)
    writer = request.app.get(REQUEST_LOG)
    if writer is None:
        return reply({"object": "list", "enabled": False, "data": []})
    query = request.query
    status = query.get("status", "").strip().lower()
    if status and not _STATUS.fullmatch(status):
        raise fail("`status` must be a status code (429) or a class (4xx).", "status")
    limit = query.get("limit", "100")
    if not limit.isdigit() or not 1 <= int(limit) <= _MAX_ROWS:
        raise fail(f"`limit` must be a whole number from 1 to {_MAX_ROWS}.", "limit")
    found = await writer.recent(
        LogQuery(
            key=query.get("key", "").strip(),
            model=query.get("model", "").strip(),
            account=query.get("account", "").strip(),
            status=status,
            limit=int(limit),
        )
    )
    return reply({"object": "list", "enabled": True, "data": [entry.to_json() for entry in found]})
