"""The admin surface's routes: the page, its files, and the JSON admin API."""

from __future__ import annotations

from aiohttp import web

from kimi_free_api.api.admin import accounts, keys, log, page, session

API = "/admin/api"


def add_admin_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/admin", page.console)
    router.add_get("/admin/", page.console)
    router.add_get("/admin/static/{name}", page.static_file)
    router.add_post(f"{API}/login", session.login)
    router.add_get(f"{API}/session", session.session)
    router.add_post(f"{API}/logout", session.logout)
    # The read-only list of the first admin API, kept for scripts that use it.
    router.add_get("/admin/accounts", accounts.list_accounts)
    router.add_get(f"{API}/accounts", accounts.list_accounts)
    router.add_post(f"{API}/accounts", accounts.add_account)
    router.add_patch(API + "/accounts/{account_id}", accounts.update_account)
    router.add_delete(API + "/accounts/{account_id}", accounts.remove_account)
    router.add_get(API + "/accounts/{account_id}/plan", accounts.account_plan)
    router.add_get(f"{API}/keys", keys.list_keys)
    router.add_post(f"{API}/keys", keys.create_key)
    router.add_patch(API + "/keys/{key_id}", keys.update_key)
    router.add_delete(API + "/keys/{key_id}", keys.revoke_key)
    router.add_get(f"{API}/log", log.request_log)
