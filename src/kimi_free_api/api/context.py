"""Typed keys for what the composition root puts into the aiohttp application."""

from __future__ import annotations

from aiohttp import web

from kimi_free_api.core.ports import KimiUpstream
from kimi_free_api.core.service import ChatService

SERVICE = web.AppKey("service", ChatService)
UPSTREAM = web.AppKey("upstream", KimiUpstream)


def service_of(request: web.Request) -> ChatService:
    return request.app[SERVICE]
