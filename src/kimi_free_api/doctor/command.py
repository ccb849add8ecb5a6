"""What `kimi-free-api doctor` does with its arguments: which token, which token cache, then the script."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from kimi_free_api.config import Settings, SettingsError
from kimi_free_api.doctor import diagnose
from kimi_free_api.state.sqlite import SqliteStore

if TYPE_CHECKING:
    from kimi_free_api.state.redis import RedisState


class DoctorUsageError(Exception):
    """No token to run with, or one that cannot be read: a usage error of the command."""


def doctor_token(args: argparse.Namespace, settings: Settings) -> str:
    """The token given, else the server's first account (KIMI_TOKENS, KIMI_TOKENS_FILE, then stored ones)."""
    if args.token_file:
        try:
            return Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise DoctorUsageError(f"--token-file: {exc.strerror}: {args.token_file}") from exc
    if args.token:
        return str(args.token).strip()
    try:
        tokens = settings.server_tokens()
    except SettingsError as exc:
        raise DoctorUsageError(str(exc)) from exc
    stored = [account.token for account in SqliteStore.in_dir(settings.data_dir).list_accounts()]
    candidates = [*tokens, *stored]
    if candidates:
        return candidates[0]
    raise DoctorUsageError("doctor needs a Kimi token: --token, --token-file, KIMI_TOKENS or `accounts add`")


def _redis(url: str) -> RedisState:
    # Imported only when configured, as the gateway does.
    from kimi_free_api.state.redis import RedisState

    return RedisState.from_url(url)


async def _diagnose(args: argparse.Namespace, settings: Settings, token: str) -> int:
    # The gateway's own token cache, so a refresh token Kimi rotates stays usable by the server.
    store = SqliteStore.in_dir(settings.data_dir)
    shared = _redis(settings.redis_url) if settings.redis_url else None
    try:
        return await diagnose(
            settings, token, tokens=shared or store, record=args.record or "", save_token=args.save_token or ""
        )
    finally:
        if shared is not None:
            await shared.close()
        store.close()


def run_doctor(args: argparse.Namespace, settings: Settings) -> int:
    """The exit status (see `doctor/report.py`)."""
    return asyncio.run(_diagnose(args, settings, doctor_token(args, settings)))
