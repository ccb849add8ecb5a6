"""Logging out of the admin console holds on every instance: two gateways sharing one store (the SQLite file, or
a real redis-server), a cookie used on both, refused on both (and after a restart) once logged out, and logging
out everywhere ending every session started before it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from tests.e2e.admin_client import ADMIN_KEY, AdminSession, admin_session
from tests.e2e.support import Gateway, GatewayFactory


@pytest.fixture(params=["sqlite", "redis"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Settings of instances behind one load balancer: one data directory, and Redis in the second run."""
    settings: dict[str, Any] = {"admin_key": ADMIN_KEY, "data_dir": str(tmp_path / "shared-data")}
    if request.param == "redis":
        settings["redis_url"] = request.getfixturevalue("redis_url")
    return settings


def _cookie(admin: AdminSession, gateway: Gateway) -> str:
    return admin.http.cookie_jar.filter_cookies(URL(gateway.url + "/admin"))["kfa_admin"].value


async def _keys_with(gateway: Gateway, cookie: str) -> tuple[int, Any]:
    """A read with the cookie alone, as whoever copied it would send it."""
    async with (
        aiohttp.ClientSession(base_url=gateway.url) as http,
        http.get("/admin/api/keys", cookies={"kfa_admin": cookie}) as response,
    ):
        return response.status, await response.json()


async def _assert_refused(gateway: Gateway, cookie: str) -> None:
    status, body = await _keys_with(gateway, cookie)
    assert status == 401, body
    assert body["error"]["type"] == "authentication_error"
    assert body["error"]["code"] == "admin_login_required"
    assert body["error"]["message"].startswith("Log in at /admin")


async def test_a_session_logged_out_on_one_instance_is_refused_on_every_instance_and_after_a_restart(
    gateway_factory: GatewayFactory, shared: dict[str, Any]
) -> None:
    one, other = await gateway_factory(**shared), await gateway_factory(**shared)
    async with admin_session(one.url) as admin:
        cookie = _cookie(admin, one)
        assert (await _keys_with(other, cookie))[0] == 200
        await admin.ok("POST", "/logout")
    for gateway in (one, other):
        await _assert_refused(gateway, cookie)
    await one.stop()
    restarted = await gateway_factory(**shared)
    await _assert_refused(restarted, cookie)


async def test_logging_out_everywhere_ends_every_session_and_a_later_one_works(
    gateway_factory: GatewayFactory, shared: dict[str, Any]
) -> None:
    one, other = await gateway_factory(**shared), await gateway_factory(**shared)
    async with admin_session(one.url) as laptop, admin_session(other.url) as phone:
        cookies = [_cookie(laptop, one), _cookie(phone, other)]
        status, body = await laptop.call("POST", "/logout?everywhere=perhaps")
        assert status == 400 and body["error"]["param"] == "everywhere"
        assert await laptop.ok("POST", "/logout?everywhere=true") == {"logged_out": True}
        status, _ = await phone.call("GET", "/keys")
        assert status == 401
    for gateway in (one, other):
        for cookie in cookies:
            await _assert_refused(gateway, cookie)
    async with admin_session(other.url) as later:
        cookie = _cookie(later, other)
        assert (await later.ok("POST", "/keys", {"name": "after"}))["name"] == "after"
    for gateway in (one, other):
        assert (await _keys_with(gateway, cookie))[0] == 200


async def test_the_admin_key_logs_out_everywhere_without_a_session(
    gateway_factory: GatewayFactory, shared: dict[str, Any]
) -> None:
    one, other = await gateway_factory(**shared), await gateway_factory(**shared)
    async with admin_session(one.url) as stolen:
        cookie = _cookie(stolen, one)
    bearer = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with (
        aiohttp.ClientSession(base_url=other.url) as http,
        http.post("/admin/api/logout", params={"everywhere": "true"}, headers=bearer) as response,
    ):
        assert response.status == 200
    await _assert_refused(one, cookie)
    async with aiohttp.ClientSession(base_url=one.url) as http, http.get("/admin/api/keys", headers=bearer) as keys:
        assert keys.status == 200
