"""`kimi-free-api serve` runs the gateway; `kimi-free-api emulator` runs the fake Kimi upstream; `accounts` and
`keys` manage server mode's stored accounts and API keys; `doctor` checks Kimi's protocol with a live script;
`chat` tries a model from the terminal.

The standard library's argparse parses the command line: a CLI framework would be the largest thing the server
loads (typer brings pydantic and rich, about 10 MB of the gateway's memory) for six commands.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from aiohttp import web

from kimi_free_api.app import make_runner
from kimi_free_api.config import Settings, SettingsError, proxy_url_problem
from kimi_free_api.pool.accounts import account_id
from kimi_free_api.redact import configure_logging, mask_proxy, mask_token
from kimi_free_api.state.sqlite import KEY_PREFIX, SqliteStore

log = logging.getLogger("kimi_free_api")
_LISTEN_BACKLOG = 1024
_DEFAULT_CHAT_URL = "http://127.0.0.1:8000"


class UsageError(Exception):
    """A bad argument or setting: reported in one line with exit status 2, like argparse's own errors."""


def _settings(**overrides: object) -> Settings:
    try:
        return Settings.from_env().with_overrides(**overrides)
    except SettingsError as exc:
        raise UsageError(str(exc)) from exc


async def _serve(settings: Settings, with_emulator: bool) -> None:
    emulator = None
    if with_emulator:
        from kimi_free_api.emulator import Emulator, EmulatorConfig

        emulator = Emulator(EmulatorConfig(open_accounts=True, event_delay_ms=30, guided_answers=True))
        await emulator.start("127.0.0.1", 0)
        # The demo's chats hold the emulator's tokens: a real server started later on the same data directory
        # must not inherit them.
        demo_data = str(Path(settings.data_dir) / "demo")
        settings = settings.with_overrides(kimi_base_url=emulator.base_url, data_dir=demo_data)
        log.info(
            "demo mode: answering from the built-in emulator at %s; any bearer token works; state in %s",
            emulator.base_url,
            demo_data,
        )
    runner = make_runner(settings, access_log=None)
    await runner.setup()
    # Everything allocated so far lives for the whole process: keep it out of every future collection, and
    # collect young objects less often, so hundreds of open streams do not pay for repeated full scans.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    # A burst of new connections larger than the default backlog of 128 would see some of them refused and
    # retried a second later by the client's kernel.
    site = web.TCPSite(runner, settings.host, settings.port, backlog=_LISTEN_BACKLOG)
    try:
        with _listening(settings.host, settings.port):
            await site.start()
        log.info("kimi-free-api listening on http://%s:%d", settings.host, settings.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # A graceful stop lets in-flight cleanups (cancel + delete upstream chats) finish before exiting.
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("stopping: finishing upstream cleanups")
    finally:
        await runner.cleanup()
        if emulator is not None:
            await emulator.stop()


@contextlib.contextmanager
def _listening(host: str, port: int) -> Iterator[None]:
    """A port that is taken (or an address not on this machine) is one line for the user, not a traceback."""
    try:
        yield
    except OSError as exc:
        # asyncio's message repeats the address; the errno's own text is the reason.
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        if exc.errno == errno.EADDRINUSE:
            hint = "another server running there? choose another port with --port or PORT"
        else:
            hint = "is it an address of this machine? choose another with --host or HOST"
        raise UsageError(f"cannot listen on {host}:{port}: {reason} ({hint})") from None


def serve(args: argparse.Namespace) -> None:
    settings = _settings(host=args.host, port=args.port, kimi_base_url=args.kimi_base_url)
    configure_logging(settings.log_level, settings.log_json)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(settings, args.emulator))


def run_emulator(args: argparse.Namespace) -> None:
    from kimi_free_api.emulator import EmulatorConfig
    from kimi_free_api.emulator.server import run

    configure_logging()
    try:
        config = EmulatorConfig(open_accounts=args.open, event_delay_ms=args.event_delay_ms, replay=args.replay)
    except ValueError as exc:  # the emulator's InvalidSetting, e.g. a trace that cannot be read
        raise UsageError(str(exc)) from exc
    with _listening(args.host, args.port):
        run(args.host, args.port, config)


def _store() -> SqliteStore:
    return SqliteStore.in_dir(_settings().data_dir)


def _kimi_token(given: str) -> str:
    """The token as pasted, refused when it cannot be one (it would only show up later as a dead account)."""
    token = given.strip()
    if not token:
        raise UsageError("the token is empty")
    if token[:7].lower() == "bearer ":
        raise UsageError("paste the token alone, without the `Bearer ` in front of it")
    if token.startswith(KEY_PREFIX):
        raise UsageError("that is a gateway API key, not a Kimi token")
    if any(char.isspace() or char in ",;\"'" for char in token):
        raise UsageError("a Kimi token has no spaces, commas, semicolons or quotes: add one account at a time")
    return token


def accounts_add(args: argparse.Namespace) -> None:
    token = _kimi_token(args.token)
    if problem := proxy_url_problem(args.proxy):
        raise UsageError(f"--proxy: {problem}")
    _store().add_account(account_id(token), token, args.label, args.proxy)
    via = f" via {mask_proxy(args.proxy)}" if args.proxy else ""
    print(f"added account {account_id(token)} ({mask_token(token)}){via}")


def accounts_list(args: argparse.Namespace) -> None:
    for stored in _store().list_accounts():
        print(f"{stored.id}  {mask_token(stored.token)}  {stored.label}  {mask_proxy(stored.proxy)}".rstrip())


def accounts_remove(args: argparse.Namespace) -> None:
    if not _store().remove_account(args.account):
        raise UsageError(f"no stored account {args.account}")
    print(f"removed account {args.account}")


def keys_create(args: argparse.Namespace) -> None:
    stored, key = _store().create_key(args.name)
    print(f"created key {stored.id}{f' ({args.name})' if args.name else ''}:")
    print(key)


def keys_list(args: argparse.Namespace) -> None:
    for stored in _store().list_keys():
        print(f"{stored.id}  {stored.name}")


def keys_revoke(args: argparse.Namespace) -> None:
    if not _store().revoke_key(args.key):
        raise UsageError(f"no key {args.key}")
    print(f"revoked key {args.key}")


def doctor(args: argparse.Namespace) -> None:
    from kimi_free_api.doctor.command import DoctorUsageError, run_doctor

    settings = _settings(kimi_base_url=args.base_url)
    configure_logging("WARNING", settings.log_json)
    try:
        status = run_doctor(args, settings)
    except DoctorUsageError as exc:
        raise UsageError(str(exc)) from exc
    raise SystemExit(status)


def chat(args: argparse.Namespace) -> None:
    from kimi_free_api.chat_cli import ChatOptions, run_chat

    settings = _settings(kimi_base_url=args.kimi_base_url)
    prompt = " ".join(args.prompt)
    interactive = not prompt and sys.stdin.isatty()
    if not prompt and not interactive:
        prompt = sys.stdin.read().strip()
    if not prompt and not interactive:
        raise UsageError("no prompt: give one as an argument or on stdin")
    options = ChatOptions(
        url=args.url or ("" if args.token else _DEFAULT_CHAT_URL),
        key=args.key or args.token,
        token=args.token,
        model=args.model,
    )
    with contextlib.suppress(KeyboardInterrupt):
        status = asyncio.run(run_chat(options, settings, prompt, interactive))
        if status:
            raise SystemExit(status)


Command = Callable[[argparse.Namespace], None]


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, run: Command, help: str
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help, description=help)
    parser.set_defaults(run=run)
    return parser


def _group(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    parser = commands.add_parser(name, help=help, description=help)
    parser.set_defaults(run=lambda _: parser.print_help())
    return parser.add_subparsers(title="commands", metavar="COMMAND")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="kimi-free-api", description=__doc__.split("\n\n")[0])
    root.set_defaults(run=lambda _: root.print_help())
    commands = root.add_subparsers(title="commands", metavar="COMMAND")

    run = _command(commands, "serve", serve, "Run the OpenAI-compatible gateway.")
    run.add_argument("--host", help="address to listen on [env HOST, default 0.0.0.0]")
    run.add_argument("--port", type=int, help="port to listen on [env PORT, default 8000]")
    run.add_argument("--kimi-base-url", help="Kimi web origin [env KIMI_BASE_URL]")
    run.add_argument("--emulator", action="store_true", help="answer from a built-in fake Kimi (demo)")

    fake = _command(commands, "emulator", run_emulator, "Run the fake Kimi upstream (G3 protocol) for tests and demos.")
    fake.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    fake.add_argument("--port", type=int, default=9000, help="port to listen on (default 9000)")
    fake.add_argument("--open", action="store_true", help="accept any bearer string as an account")
    fake.add_argument("--event-delay-ms", type=int, default=30, help="delay between answer frames (default 30)")
    fake.add_argument("--replay", metavar="TRACE", default="", help="answer with the shapes of a recorded trace")

    check = _command(commands, "doctor", doctor, "Check Kimi's protocol with a short live script; exit 1 on drift.")
    check.add_argument("--token", help="a Kimi refresh token or access token (default: the server's first account)")
    check.add_argument("--token-file", help="read the token from this file instead (keeps it out of ps and history)")
    check.add_argument("--base-url", help="Kimi web origin [env KIMI_BASE_URL]")
    check.add_argument("--record", metavar="FILE", help="write a trace of every call's and frame's shape (no text)")
    check.add_argument("--save-token", metavar="FILE", help="also write a rotated refresh token to this file")

    accounts = _group(commands, "accounts", "Kimi accounts the server answers with (server mode).")
    add = _command(accounts, "add", accounts_add, "Add a Kimi account (takes effect when the server starts).")
    add.add_argument("token", help="a Kimi refresh token (or access token)")
    add.add_argument("--label", default="", help="a name to recognise the account by")
    add.add_argument(
        "--proxy", default="", help="http(s):// or socks5:// proxy for this account's traffic [default KIMI_PROXY]"
    )
    _command(accounts, "list", accounts_list, "List the stored accounts (tokens masked).")
    remove = _command(accounts, "remove", accounts_remove, "Remove a stored account.")
    remove.add_argument("account", help="the account id shown by `accounts list`")

    talk = _command(
        commands, "chat", chat, "Chat from the terminal: through a running gateway, or straight with a Kimi token."
    )
    talk.add_argument("prompt", nargs="*", help="the message (default: stdin, or a conversation on a terminal)")
    talk.add_argument("--url", default="", help=f"the gateway to ask (default {_DEFAULT_CHAT_URL} unless --token)")
    talk.add_argument("--key", default="", help="the gateway's API key, or a Kimi token it accepts")
    talk.add_argument("--token", default="", help="a Kimi token: ask Kimi directly, no gateway (unless --url)")
    talk.add_argument("--model", default="kimi", help="model name with flags, e.g. kimi-thinking (default kimi)")
    talk.add_argument("--kimi-base-url", help="Kimi web origin for --token [env KIMI_BASE_URL]")

    keys = _group(commands, "keys", "Gateway API keys for clients (server mode); only their hashes are stored.")
    create = _command(keys, "create", keys_create, "Create an API key; it is shown once, only its hash is kept.")
    create.add_argument("--name", default="", help="who the key is for")
    _command(keys, "list", keys_list, "List API keys (ids and names only).")
    revoke = _command(
        keys, "revoke", keys_revoke, "Revoke an API key (running servers stop accepting it within seconds)."
    )
    revoke.add_argument("key", help="the key id shown by `keys list`")
    return root


def main(argv: Sequence[str] | None = None) -> None:
    cli = parser()
    args = cli.parse_args(argv)
    try:
        args.run(args)
    except UsageError as exc:
        cli.exit(2, f"kimi-free-api: error: {exc}\n")
