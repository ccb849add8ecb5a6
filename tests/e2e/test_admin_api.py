"""The JSON admin API on a real socket: login and its refusals, accounts joining the running pool, API keys with
limits used through the `openai` package, and the request log."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import openai
import pytest
from yarl import URL

from kimi_free_api.emulator import Emulator
from kimi_free_api.emulator.answers import expected_answer
from kimi_free_api.emulator.faults import Fault
from tests.e2e.admin_client import ADMIN_KEY, AdminSession, admin_session
from tests.e2e.support import Gateway, GatewayFactory, eventually, openai_client


async def _console(gateway_factory: GatewayFactory, **overrides: Any) -> Gateway:
    return await gateway_factory(admin_key=ADMIN_KEY, **overrides)


async def _ask(gateway: Gateway, key: str, text: str = "hi", model: str = "kimi", stream: bool = False) -> str:
    async with openai_client(gateway, key) as client:
        messages: Any = [{"role": "user", "content": text}]
        if not stream:
            reply = await client.chat.completions.create(model=model, messages=messages)
            return reply.choices[0].message.content or ""
        chunks = await client.chat.completions.create(model=model, messages=messages, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])


async def _with_account_and_key(admin: AdminSession, emulator: Emulator, **limits: Any) -> tuple[str, str]:
    alice = emulator.create_account("alice")
    await admin.ok("POST", "/accounts", {"token": alice.refresh_token, "label": "alice"})
    created = await admin.ok("POST", "/keys", {"name": "team", **limits})
    return created["key"], created["id"]


async def test_the_login_sets_a_strict_http_only_cookie_and_the_page_is_served(gateway_factory: GatewayFactory) -> None:
    gateway = await _console(gateway_factory)
    async with aiohttp.ClientSession(base_url=gateway.url) as http:
        async with http.get("/admin") as page:
            assert page.status == 200
            assert "default-src 'none'" in page.headers["Content-Security-Policy"]
            html = await page.text()
        assert '<script src="/admin/static/admin.js"' in html
        # Nothing is loaded from elsewhere: no absolute URL in the page or its files.
        assert "://" not in html
        for name in ("admin.js", "admin.css"):
            async with http.get(f"/admin/static/{name}") as static:
                assert static.status == 200
                assert "://" not in await static.text()
        async with http.get("/admin/static/admin.html.bak") as unknown:
            assert unknown.status == 404
        async with http.post("/admin/api/login", json={"key": ADMIN_KEY}) as login:
            assert login.status == 200
            cookie = login.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert ADMIN_KEY not in cookie


async def test_refusals_without_a_session_with_a_wrong_key_and_without_the_csrf_token(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    gateway = await _console(gateway_factory)
    async with aiohttp.ClientSession(base_url=gateway.url) as http:
        async with http.get("/admin/api/accounts") as anonymous:
            assert anonymous.status == 401
            assert (await anonymous.json())["error"]["code"] == "admin_login_required"
        async with http.post("/admin/api/login", json={"key": "not-the-admin-key"}) as wrong:
            assert wrong.status == 401 and "Set-Cookie" not in wrong.headers
            assert (await wrong.json())["error"]["code"] == "invalid_admin_key"
        async with http.get("/admin/api/keys", headers={"Authorization": "Bearer wrong-key-0123456789"}) as bad:
            assert bad.status == 401
        forged = {"kfa_admin": "9999999999.nonce.0000"}
        async with http.get("/admin/api/keys", cookies=forged) as forged_cookie:
            assert forged_cookie.status == 401
    async with admin_session(gateway.url) as admin:
        status, body = await admin.call("POST", "/keys", {"name": "sneaky"}, csrf=False)
        assert status == 403 and body["error"]["code"] == "csrf_token_invalid"
        admin.csrf = "0" * 32
        status, _ = await admin.call("DELETE", "/accounts/whatever")
        assert status == 403
        status, listed = await admin.call("GET", "/keys")  # reading needs no CSRF token
        assert status == 200 and listed["data"] == []
    # Scripts authenticate with the key itself; no cookie, so no CSRF token either.
    async with (
        aiohttp.ClientSession(base_url=gateway.url) as http,
        http.post("/admin/api/keys", json={"name": "ci"}, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as made,
    ):
        assert made.status == 201


async def test_a_logged_out_session_is_refused(gateway_factory: GatewayFactory) -> None:
    gateway = await _console(gateway_factory)
    async with admin_session(gateway.url) as admin:
        cookie = admin.http.cookie_jar.filter_cookies(URL(gateway.url + "/admin"))["kfa_admin"].value
        await admin.ok("POST", "/logout")
    async with (
        aiohttp.ClientSession(base_url=gateway.url) as http,
        http.get("/admin/api/keys", cookies={"kfa_admin": cookie}) as replayed,
    ):
        assert replayed.status == 401


async def test_the_admin_api_is_off_without_an_admin_key(gateway_factory: GatewayFactory) -> None:
    gateway = await gateway_factory()
    async with (
        aiohttp.ClientSession(base_url=gateway.url) as http,
        http.post("/admin/api/login", json={"key": ""}) as login,
    ):
        assert login.status == 404
        assert (await login.json())["error"]["code"] == "admin_disabled"


async def test_an_account_pasted_as_a_local_storage_dump_answers_at_once(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    gateway = await _console(gateway_factory)
    bob = emulator.create_account("bob")
    # As `JSON.stringify(localStorage)` gives it: every value a string, the tokens JSON-encoded inside.
    dump = json.dumps({"refresh_token": json.dumps(bob.refresh_token), "theme": "dark", "lang": "en"})
    async with admin_session(gateway.url) as admin:
        added = await admin.ok("POST", "/accounts", {"token": dump, "label": "bob", "proxy": ""})
        assert added["live"] is True and added["label"] == "bob" and added["source"] == "store"
        assert bob.refresh_token not in json.dumps(added) and "…" in added["token"]
        key = (await admin.ok("POST", "/keys", {"name": "k"}))["key"]
        assert await _ask(gateway, key, "q1") == expected_answer("q1", emulator.config)
        assert [chat.owner for chat in emulator.state.chats.values()] in ([], [bob.user_id])

        await admin.ok("PATCH", f"/accounts/{added['id']}", {"disabled": True})
        with pytest.raises(openai.APIStatusError) as refused:
            await _ask(gateway, key, "q2")
        assert refused.value.status_code == 503  # no account left to answer
        listed = (await admin.ok("GET", "/accounts"))["data"]
        assert [(a["label"], a["health"]) for a in listed] == [("bob", "disabled")]

        await admin.ok(
            "PATCH", f"/accounts/{added['id']}", {"disabled": False, "proxy": "socks5://u:secret@127.0.0.1:9"}
        )
        shown = (await admin.ok("GET", "/accounts"))["data"][0]
        assert shown["proxy"] == "socks5://u:***@127.0.0.1:9" and shown["health"] == "healthy"
        # Nothing listens there: the account's calls fail cleanly, through its proxy and nowhere else.
        with pytest.raises(openai.APIStatusError) as unreachable:
            await _ask(gateway, key, "q3")
        assert unreachable.value.status_code == 502 and "ProxyConnectionError" in unreachable.value.message
        assert (await admin.ok("GET", "/accounts"))["data"][0]["health"] == "cooling"  # three failures in a row
        # Fixing the route ends the rest those failures earned: the next answer does not wait it out.
        fixed = await admin.ok("PATCH", f"/accounts/{added['id']}", {"proxy": ""})
        assert fixed["health"] == "healthy" and fixed["proxy"] is None
        started = time.monotonic()
        assert await _ask(gateway, key, "q3") == expected_answer("q3", emulator.config)
        assert time.monotonic() - started < 5

        status, bad = await admin.call("POST", "/accounts", {"token": "{not json"})
        assert status == 400 and bad["error"]["param"] == "token"
        status, bad = await admin.call("POST", "/accounts", {"token": bob.refresh_token, "proxy": "ftp://x"})
        assert status == 400 and bad["error"]["param"] == "proxy"

        await admin.ok("DELETE", f"/accounts/{added['id']}")
        assert (await admin.ok("GET", "/accounts"))["data"] == []


async def test_the_plan_and_usage_windows_or_unknown(gateway_factory: GatewayFactory, emulator: Emulator) -> None:
    gateway = await _console(gateway_factory)
    async with admin_session(gateway.url) as admin:
        key, _ = await _with_account_and_key(admin, emulator)
        await _ask(gateway, key)
        account_id = (await admin.ok("GET", "/accounts"))["data"][0]["id"]
        plan = await admin.ok("GET", f"/accounts/{account_id}/plan")
        assert plan["plan"] == "LEVEL_FREE" and plan["status"] == "SUBSCRIPTION_STATUS_ACTIVE"
        assert [w["name"] for w in plan["windows"]] == ["FIVE_HOURS", "WEEKLY"]
        assert plan["windows"][0]["used"] == 1.0 and plan["windows"][0]["limit"] == 50.0
        assert plan["windows"][0]["resets_at"].endswith("Z")

        emulator.configure(usage_stats=False)
        carol = emulator.create_account("carol")
        added = await admin.ok("POST", "/accounts", {"token": carol.refresh_token})
        plan = await admin.ok("GET", f"/accounts/{added['id']}/plan")
        assert plan["plan"] == "LEVEL_FREE" and plan["windows"] is None and plan["expires_at"] is None


async def test_keys_are_shown_once_and_a_revoked_key_is_refused_at_once(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    gateway = await _console(gateway_factory, api_keys="configured-key-0123456789")
    async with admin_session(gateway.url) as admin:
        key, key_id = await _with_account_and_key(admin, emulator)
        assert key.startswith("kfa-")
        listed = (await admin.ok("GET", "/keys"))["data"]
        assert [(k["name"], k["source"]) for k in listed] == [("API_KEYS", "env"), ("team", "store")]
        assert key not in json.dumps(listed)
        assert await _ask(gateway, key) == expected_answer("hi", emulator.config)
        await admin.ok("DELETE", f"/keys/{key_id}")
        with pytest.raises(openai.AuthenticationError):
            await _ask(gateway, key)
        status, _ = await admin.call("DELETE", f"/keys/{listed[0]['id']}")
        assert status == 404  # keys from API_KEYS are changed in the environment


async def test_requests_per_minute_are_limited_with_retry_after(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    gateway = await _console(gateway_factory)
    async with admin_session(gateway.url) as admin:
        key, key_id = await _with_account_and_key(admin, emulator, rpm=2)
        await _ask(gateway, key)
        await _ask(gateway, key)
        with pytest.raises(openai.RateLimitError) as limited:
            await _ask(gateway, key)
        response = limited.value.response
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        assert response.json()["error"]["code"] == "key_rate_limit_exceeded"
        # Raising the limit takes effect at once.
        await admin.ok("PATCH", f"/keys/{key_id}", {"rpm": 10})
        await _ask(gateway, key)


async def test_concurrent_streams_and_allowed_models_are_limited(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    gateway = await _console(gateway_factory, max_in_flight_per_account=4)
    emulator.configure(event_delay_ms=40, enforce_single_stream=False)
    async with admin_session(gateway.url) as admin:
        key, _ = await _with_account_and_key(admin, emulator, concurrent=1, models=["kimi", "kimi-k2"])
        with pytest.raises(openai.PermissionDeniedError) as refused:
            await _ask(gateway, key, model="kimi-search")
        assert refused.value.body["code"] == "model_not_allowed"  # type: ignore[index]
        first = asyncio.create_task(_ask(gateway, key, "long", stream=True))
        await eventually(lambda: sum(emulator.state.active_streams.values()) == 1)
        with pytest.raises(openai.RateLimitError) as busy:
            await _ask(gateway, key, stream=True)
        assert busy.value.response.json()["error"]["code"] == "key_concurrency_limit_exceeded"
        assert "Retry-After" in busy.value.response.headers
        assert await first == expected_answer("long", emulator.config)
        assert await _ask(gateway, key, stream=True) == expected_answer("hi", emulator.config)


async def test_the_request_log_records_each_request_without_its_prompt(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    gateway = await _console(gateway_factory)
    async with admin_session(gateway.url) as admin:
        key, _ = await _with_account_and_key(admin, emulator, models=["kimi"])
        await _ask(gateway, key, "secret question")
        await _ask(gateway, key, "streamed", stream=True)
        with pytest.raises(openai.PermissionDeniedError):
            await _ask(gateway, key, model="kimi-search")
        log = (await admin.ok("GET", "/log"))["data"]
        assert [(e["status"], e["model"], e["key_name"]) for e in log] == [
            (403, "kimi-search", "team"),
            (200, "kimi", "team"),
            (200, "kimi", "team"),
        ]
        whole = log[2]
        assert whole["account_label"] == "alice" and whole["path"] == "/v1/chat/completions"
        assert whole["prompt_tokens"] > 0 and whole["completion_tokens"] > 0
        assert 0 < whole["first_content_ms"] <= whole["duration_ms"]
        assert "secret question" not in json.dumps(log) and whole["prompt"] is None
        assert [e["status"] for e in (await admin.ok("GET", "/log?status=4xx"))["data"]] == [403]
        assert len((await admin.ok("GET", "/log?account=alice&model=kimi&key=team"))["data"]) == 2
        assert (await admin.ok("GET", "/log?key=nobody"))["data"] == []
        status, bad = await admin.call("GET", "/log?status=teapot")
        assert status == 400 and bad["error"]["param"] == "status"


async def test_a_stream_broken_off_after_its_headers_is_logged_as_the_failure_it_ended_with(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    gateway = await _console(gateway_factory)
    async with admin_session(gateway.url) as admin:
        key, _ = await _with_account_and_key(admin, emulator)
        emulator.add_fault(Fault(kind="stream_error", after_events=2))
        with pytest.raises(openai.APIError):
            await _ask(gateway, key, "broken", stream=True)
        await _ask(gateway, key, "whole", stream=True)
        log = (await admin.ok("GET", "/log"))["data"]
        assert [e["status"] for e in log] == [200, 502]  # the HTTP status was 200; the stream ended in a 502
        assert log[1]["first_content_ms"] is not None
        assert [e["status"] for e in (await admin.ok("GET", "/log?status=5xx"))["data"]] == [502]


async def test_the_log_keeps_prompts_only_when_asked_and_only_as_many_entries_as_set(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    gateway = await _console(gateway_factory, request_log_prompts=True, request_log_max_entries=2)
    async with admin_session(gateway.url) as admin:
        key, _ = await _with_account_and_key(admin, emulator)
        for n in range(3):
            await _ask(gateway, key, f"question {n}")
        log = (await admin.ok("GET", "/log"))["data"]
        assert len(log) == 2 and "question 2" in log[0]["prompt"]


async def test_the_log_is_off_when_no_entries_are_kept(gateway_factory: GatewayFactory, emulator: Emulator) -> None:
    gateway = await _console(gateway_factory, request_log_max_entries=0)
    async with admin_session(gateway.url) as admin:
        key, _ = await _with_account_and_key(admin, emulator)
        await _ask(gateway, key)
        assert await admin.ok("GET", "/log") == {"object": "list", "enabled": False, "data": []}
