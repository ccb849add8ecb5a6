"""The admin console in a real browser: Playwright drives Debian's `chromium` against a gateway on a real socket.

One walk through what an operator does (log in, add an account, create a key, use it with the `openai` package,
find the request in the log, revoke the key, see the next request refused), the refusals a browser meets, and
logging out everywhere from one browser ending another's session.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import openai
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from kimi_free_api.emulator import Emulator
from kimi_free_api.emulator.answers import expected_answer
from tests.e2e.admin_client import ADMIN_KEY
from tests.e2e.support import Gateway, GatewayFactory, openai_client

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    async with async_playwright() as playwright:
        # Debian's build, never a downloaded one; --no-sandbox because CI runs as root.
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


async def _open_console(browser: Browser, gateway: Gateway) -> Page:
    page = await browser.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # confirm() before revoking
    await page.goto(gateway.url + "/admin")
    return page


async def _log_in(page: Page, key: str = ADMIN_KEY) -> None:
    await page.fill("#login-key", key)
    await page.click("#login-button")


async def _ask(gateway: Gateway, key: str, text: str) -> str:
    async with openai_client(gateway, key) as client:
        reply = await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": text}])
        return reply.choices[0].message.content or ""


async def test_an_operator_adds_an_account_creates_a_key_sees_its_request_and_revokes_it(
    browser: Browser, gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    gateway = await gateway_factory(admin_key=ADMIN_KEY)
    alice = emulator.create_account("alice")
    page = await _open_console(browser, gateway)
    await expect(page.locator("#login")).to_be_visible()
    await _log_in(page)
    await expect(page.locator("#console")).to_be_visible()
    # The session cookie is HttpOnly: the page's own script cannot read it.
    assert "kfa_admin" not in await page.evaluate("document.cookie")

    await page.fill("#account-token", alice.refresh_token)
    await page.fill("#account-label", "alice")
    await page.click("#account-add")
    row = page.locator("#accounts tbody tr", has_text="alice")
    await expect(row).to_contain_text("healthy")
    await expect(row.locator("td.plan")).to_contain_text("LEVEL_FREE")
    assert alice.refresh_token not in await page.content()

    await page.click("nav .tab[data-tab=keys]")
    await page.fill("#key-name", "team")
    await page.fill("#key-rpm", "30")
    await page.click("#key-create")
    await expect(page.locator("#new-key-box")).to_be_visible()
    key = await page.locator("#new-key").inner_text()
    assert key.startswith("kfa-")
    await expect(page.locator("#keys tbody tr", has_text="team")).to_contain_text("30/min")

    question = "from the browser test"
    assert await _ask(gateway, key, question) == expected_answer(question, emulator.config)

    await page.click("nav .tab[data-tab=log]")
    entry = page.locator("#log tbody tr", has_text="team")
    await expect(entry).to_contain_text("POST /v1/chat/completions")
    await expect(entry).to_contain_text("alice")
    await expect(entry).to_contain_text("200")
    assert question not in await page.content()  # prompts are not logged by default

    await page.click("nav .tab[data-tab=keys]")
    await page.locator("#keys tbody tr", has_text="team").locator("button.revoke").click()
    await expect(page.locator("#keys tbody tr", has_text="team")).to_have_count(0)
    with pytest.raises(openai.AuthenticationError):
        await _ask(gateway, key, "after revoking")


async def test_the_browser_is_refused_without_a_session_with_a_wrong_key_and_without_the_csrf_token(
    browser: Browser, gateway_factory: GatewayFactory
) -> None:
    gateway = await gateway_factory(admin_key=ADMIN_KEY)
    page = await _open_console(browser, gateway)
    anonymous = await page.evaluate("fetch('/admin/api/keys').then((r) => r.status)")
    assert anonymous == 401

    await _log_in(page, "not-the-admin-key")
    await expect(page.locator("#login-error")).to_have_text("Wrong admin key.")
    await expect(page.locator("#console")).to_be_hidden()

    await _log_in(page)
    await expect(page.locator("#console")).to_be_visible()
    without_csrf = await page.evaluate(
        """fetch('/admin/api/keys', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                     body: JSON.stringify({name: 'forged'})}).then((r) => r.status)"""
    )
    assert without_csrf == 403
    await expect(page.locator("#keys tbody tr", has_text="forged")).to_have_count(0)

    await page.click("#logout")
    await expect(page.locator("#login")).to_be_visible()
    assert await page.evaluate("fetch('/admin/api/keys').then((r) => r.status)") == 401


async def test_logging_out_everywhere_ends_the_other_browsers_session_and_a_later_login_works(
    browser: Browser, gateway_factory: GatewayFactory
) -> None:
    gateway = await gateway_factory(admin_key=ADMIN_KEY)
    # Each page is its own browser context: two cookie jars, two sessions.
    laptop, phone = await _open_console(browser, gateway), await _open_console(browser, gateway)
    for page in (laptop, phone):
        await _log_in(page)
        await expect(page.locator("#console")).to_be_visible()

    await laptop.click("#logout-everywhere")
    await expect(laptop.locator("#login")).to_be_visible()
    await expect(laptop.locator("#logout-everywhere")).to_be_hidden()
    assert await phone.evaluate("fetch('/admin/api/keys').then((r) => r.status)") == 401

    await phone.reload()
    await expect(phone.locator("#login")).to_be_visible()
    await _log_in(phone)
    await expect(phone.locator("#console")).to_be_visible()
    assert await phone.evaluate("fetch('/admin/api/keys').then((r) => r.status)") == 200
