"""`kimi-free-api serve` runs the gateway; `kimi-free-api emulator` runs the fake Kimi upstream."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from typing import Annotated

import typer
from aiohttp import web

from kimi_free_api.app import create_app
from kimi_free_api.config import Settings, SettingsError
from kimi_free_api.pool.accounts import account_id
from kimi_free_api.redact import configure_logging, mask_token
from kimi_free_api.state.sqlite import KEY_PREFIX, SqliteStore

cli = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
log = logging.getLogger("kimi_free_api")


def _settings(**overrides: object) -> Settings:
    try:
        return Settings.from_env().with_overrides(**overrides)
    except SettingsError as exc:
        raise typer.BadParameter(str(exc)) from exc


async def _serve(settings: Settings, with_emulator: bool) -> None:
    emulator = None
    if with_emulator:
        from kimi_free_api.emulator import Emulator, EmulatorConfig

        emulator = Emulator(EmulatorConfig(open_accounts=True, event_delay_ms=30))
        await emulator.start("127.0.0.1", 0)
        settings = settings.with_overrides(kimi_base_url=emulator.base_url)
        log.info("demo mode: answering from the built-in emulator at %s; any bearer token works", emulator.base_url)
    runner = web.AppRunner(create_app(settings), handler_cancellation=True, access_log=None)
    await runner.setup()
    # Everything allocated so far lives for the whole process: keep it out of every future collection, and
    # collect young objects less often, so hundreds of open streams do not pay for repeated full scans.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    log.info("kimi-free-api listening on http://%s:%d", settings.host, settings.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # A graceful stop lets in-flight cleanups (cancel + delete upstream chats) finish before exiting.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
        log.info("stopping: finishing upstream cleanups")
    finally:
        await runner.cleanup()
        if emulator is not None:
            await emulator.stop()


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [env HOST, default 0.0.0.0]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [env PORT, default 8000]")] = None,
    kimi_base_url: Annotated[str | None, typer.Option(help="Kimi web origin [env KIMI_BASE_URL]")] = None,
    emulator: Annotated[bool, typer.Option("--emulator", help="Answer from a built-in fake Kimi (demo)")] = False,
) -> None:
    """Run the OpenAI-compatible gateway."""
    settings = _settings(host=host, port=port, kimi_base_url=kimi_base_url)
    configure_logging(settings.log_level, settings.log_json)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(settings, emulator))


@cli.command("emulator")
def run_emulator(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 9000,
    open_accounts: Annotated[bool, typer.Option("--open", help="Accept any bearer string as an account")] = False,
    event_delay_ms: Annotated[int, typer.Option(help="Delay between answer frames")] = 30,
) -> None:
    """Run the fake Kimi upstream (G3 protocol) for tests and demos."""
    from kimi_free_api.emulator import EmulatorConfig
    from kimi_free_api.emulator.server import run

    configure_logging()
    run(host, port, EmulatorConfig(open_accounts=open_accounts, event_delay_ms=event_delay_ms))


accounts_cli = typer.Typer(help="Kimi accounts the server answers with (server mode).", no_args_is_help=True)
keys_cli = typer.Typer(
    help="Gateway API keys for clients (server mode); only their hashes are stored.", no_args_is_help=True
)
cli.add_typer(accounts_cli, name="accounts")
cli.add_typer(keys_cli, name="keys")


def _store() -> SqliteStore:
    return SqliteStore.in_dir(_settings().data_dir)


@accounts_cli.command("add")
def accounts_add(
    token: Annotated[str, typer.Argument(help="A Kimi refresh token (or access token)")],
    label: Annotated[str, typer.Option(help="A name to recognise the account by")] = "",
) -> None:
    """Add a Kimi account (takes effect when the server starts)."""
    token = token.strip()
    if token.startswith(KEY_PREFIX):
        raise typer.BadParameter("that is a gateway API key, not a Kimi token")
    store = _store()
    store.add_account(account_id(token), token, label)
    typer.echo(f"added account {account_id(token)} ({mask_token(token)})")


@accounts_cli.command("list")
def accounts_list() -> None:
    """List the stored accounts (tokens masked)."""
    for stored in _store().list_accounts():
        typer.echo(f"{stored.id}  {mask_token(stored.token)}  {stored.label}")


@accounts_cli.command("remove")
def accounts_remove(account: Annotated[str, typer.Argument(help="The account id shown by `accounts list`")]) -> None:
    """Remove a stored account."""
    if not _store().remove_account(account):
        raise typer.BadParameter(f"no stored account {account}")
    typer.echo(f"removed account {account}")


@keys_cli.command("create")
def keys_create(name: Annotated[str, typer.Option(help="Who the key is for")] = "") -> None:
    """Create an API key; it is shown once, only its hash is kept."""
    stored, key = _store().create_key(name)
    typer.echo(f"created key {stored.id}{f' ({name})' if name else ''}:")
    typer.echo(key)


@keys_cli.command("list")
def keys_list() -> None:
    """List API keys (ids and names only)."""
    for stored in _store().list_keys():
        typer.echo(f"{stored.id}  {stored.name}")


@keys_cli.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="The key id shown by `keys list`")]) -> None:
    """Revoke an API key (running servers stop accepting it within seconds)."""
    if not _store().revoke_key(key):
        raise typer.BadParameter(f"no key {key}")
    typer.echo(f"revoked key {key}")


def main() -> None:
    cli()
