"""The embedded store: one SQLite file in the data directory, nothing to set up.

Calls are small and local, so they run synchronously at start-up and in the CLI; the server asks it again only
for an API key it has not seen yet (from a worker thread).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from kimi_free_api.core.access.callers import NO_LIMITS, KeyLimits
from kimi_free_api.core.ports import CachedAccess

KEY_PREFIX = "kfa-"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    added REAL NOT NULL,
    proxy TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS account_health (
    id TEXT PRIMARY KEY,
    dead INTEGER NOT NULL,
    cooldown_until REAL NOT NULL,
    last_error TEXT NOT NULL,
    last_error_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS token_cache (
    id TEXT PRIMARY KEY,
    access_token TEXT NOT NULL,
    expires_at REAL NOT NULL,
    refresh_token TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ended_admin_sessions (
    nonce TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS admin_sessions_ended_before (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    issued_ms INTEGER NOT NULL
);
"""
# Columns added after the first release: (table, column, definition). Older files gain them at start-up.
_ADDED_COLUMNS = (
    ("accounts", "disabled", "INTEGER NOT NULL DEFAULT 0"),
    ("accounts", "proxy", "TEXT NOT NULL DEFAULT ''"),
    ("api_keys", "rpm", "INTEGER NOT NULL DEFAULT 0"),
    ("api_keys", "concurrent", "INTEGER NOT NULL DEFAULT 0"),
    ("api_keys", "models", "TEXT NOT NULL DEFAULT ''"),
)


def add_columns(db: sqlite3.Connection, table: str, columns: dict[str, str]) -> None:
    """Adds the columns a table created by an earlier version lacks (name -> type with its default)."""
    present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
    for name, declaration in columns.items():
        if name not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")


def key_hash(key: str) -> str:
    # Gateway keys are 32 random bytes: a fast hash is enough, nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class StoredAccount:
    id: str
    token: str
    label: str
    added: float
    disabled: bool = False
    # Empty: the global KIMI_PROXY.
    proxy: str = ""


@dataclass(frozen=True, slots=True)
class AccountHealth:
    """What a restart should remember about an account: dead, cooling until (wall clock), and why."""

    id: str
    dead: bool
    cooldown_until: float
    last_error: str
    last_error_at: float


@dataclass(frozen=True, slots=True)
class StoredKey:
    id: str
    name: str
    created: float
    limits: KeyLimits = NO_LIMITS


_KEY_COLUMNS = "id, name, created, rpm, concurrent, models"


def _stored_key(row: tuple[str, str, float, int, int, str]) -> StoredKey:
    key_id, name, created, rpm, concurrent, models = row
    return StoredKey(key_id, name, created, KeyLimits(rpm, concurrent, tuple(m for m in models.split(",") if m)))


class SqliteStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit; multi-statement writes open their own transaction. One lock serialises the threads.
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.lock = threading.Lock()
        self.db.executescript(_SCHEMA)
        for table, column, definition in _ADDED_COLUMNS:
            present = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
        path.chmod(0o600)  # it holds Kimi tokens

    @classmethod
    def in_dir(cls, data_dir: str) -> SqliteStore:
        return cls(Path(data_dir) / "kimi-free-api.sqlite3")

    def close(self) -> None:
        with self.lock:  # waits for a write still running in a worker thread
            self.db.close()

    def add_account(self, account_id: str, token: str, label: str = "", proxy: str = "") -> None:
        with self.lock:
            self.db.execute(
                "INSERT OR REPLACE INTO accounts (id, token, label, added, proxy) VALUES (?, ?, ?, ?, ?)",
                (account_id, token, label, time.time(), proxy),
            )

    def list_accounts(self) -> list[StoredAccount]:
        with self.lock:
            rows = self.db.execute(
                "SELECT id, token, label, added, disabled, proxy FROM accounts ORDER BY added"
            ).fetchall()
        return [StoredAccount(row[0], row[1], row[2], row[3], bool(row[4]), row[5]) for row in rows]

    def update_account(self, account_id: str, *, label: str, disabled: bool, proxy: str) -> bool:
        with self.lock:
            return (
                self.db.execute(
                    "UPDATE accounts SET label = ?, disabled = ?, proxy = ? WHERE id = ?",
                    (label, int(disabled), proxy, account_id),
                ).rowcount
                > 0
            )

    def remove_account(self, account_id: str) -> bool:
        with self.lock:
            return self.db.execute("DELETE FROM accounts WHERE id = ?", (account_id,)).rowcount > 0

    def save_health(self, health: AccountHealth) -> None:
        with self.lock:
            self.db.execute(
                "INSERT OR REPLACE INTO account_health (id, dead, cooldown_until, last_error, last_error_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (health.id, int(health.dead), health.cooldown_until, health.last_error, health.last_error_at),
            )

    def load_health(self) -> dict[str, AccountHealth]:
        with self.lock:
            rows = self.db.execute(
                "SELECT id, dead, cooldown_until, last_error, last_error_at FROM account_health"
            ).fetchall()
        return {row[0]: AccountHealth(row[0], bool(row[1]), row[2], row[3], row[4]) for row in rows}

    async def load(self, credential_id: str) -> CachedAccess | None:
        """The token cache (core.ports.TokenCache): read once per credential and process."""
        return await asyncio.to_thread(self._load_access, credential_id)

    def _load_access(self, credential_id: str) -> CachedAccess | None:
        with self.lock:
            row = self.db.execute(
                "SELECT access_token, expires_at, refresh_token FROM token_cache WHERE id = ?", (credential_id,)
            ).fetchone()
        return CachedAccess(*row) if row else None

    async def save(self, credential_id: str, entry: CachedAccess) -> None:
        await asyncio.to_thread(self._save_access, credential_id, entry)

    def _save_access(self, credential_id: str, entry: CachedAccess) -> None:
        with self.lock:
            self.db.execute(
                "INSERT OR REPLACE INTO token_cache (id, access_token, expires_at, refresh_token) VALUES (?, ?, ?, ?)",
                (credential_id, entry.access_token, entry.expires_at, entry.refresh_token),
            )

    # --- ended admin console sessions (api.admin.ports.EndedSessions) ---

    async def end_session(self, nonce: str, expires_at: float) -> None:
        await asyncio.to_thread(self._end_session, nonce, expires_at)

    def _end_session(self, nonce: str, expires_at: float) -> None:
        with self.lock:
            self.db.execute("BEGIN")
            # A session past its expiry is refused by its cookie alone: its row is no longer needed.
            self.db.execute("DELETE FROM ended_admin_sessions WHERE expires_at < ?", (time.time(),))
            self.db.execute(
                "INSERT OR REPLACE INTO ended_admin_sessions (nonce, expires_at) VALUES (?, ?)", (nonce, expires_at)
            )
            self.db.execute("COMMIT")

    async def end_sessions_before(self, issued_ms: int) -> None:
        await asyncio.to_thread(self._end_sessions_before, issued_ms)

    def _end_sessions_before(self, issued_ms: int) -> None:
        with self.lock:
            # Never moved back: another instance's later mark stays.
            self.db.execute(
                "INSERT INTO admin_sessions_ended_before (id, issued_ms) VALUES (0, ?)"
                " ON CONFLICT (id) DO UPDATE SET issued_ms = max(issued_ms, excluded.issued_ms)",
                (issued_ms,),
            )

    async def session_ended(self, nonce: str, issued_ms: int) -> bool:
        return await asyncio.to_thread(self._session_ended, nonce, issued_ms)

    def _session_ended(self, nonce: str, issued_ms: int) -> bool:
        with self.lock:
            row = self.db.execute(
                "SELECT EXISTS (SELECT 1 FROM ended_admin_sessions WHERE nonce = ?)"
                " OR EXISTS (SELECT 1 FROM admin_sessions_ended_before WHERE issued_ms > ?)",
                (nonce, issued_ms),
            ).fetchone()
        return bool(row[0])

    def create_key(self, name: str = "", limits: KeyLimits = NO_LIMITS) -> tuple[StoredKey, str]:
        """A new key; the key itself is returned once and only its hash is kept."""
        key = new_api_key()
        stored = StoredKey(id=secrets.token_hex(6), name=name, created=time.time(), limits=limits)
        with self.lock:
            self.db.execute(
                "INSERT INTO api_keys (id, hash, name, created, rpm, concurrent, models) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (stored.id, key_hash(key), name, stored.created, *_limit_columns(limits)),
            )
        return stored, key

    def list_keys(self) -> list[StoredKey]:
        with self.lock:
            rows = self.db.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created").fetchall()
        return [_stored_key(row) for row in rows]

    def key_known(self, hashed: str) -> bool:
        return self.key_by_hash(hashed) is not None

    def key_by_hash(self, hashed: str) -> StoredKey | None:
        with self.lock:
            row = self.db.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE hash = ?", (hashed,)).fetchone()
        return _stored_key(row) if row else None

    def set_key_limits(self, key_id: str, limits: KeyLimits) -> bool:
        with self.lock:
            return (
                self.db.execute(
                    "UPDATE api_keys SET rpm = ?, concurrent = ?, models = ? WHERE id = ?",
                    (*_limit_columns(limits), key_id),
                ).rowcount
                > 0
            )

    def revoke_key(self, key_id: str) -> bool:
        with self.lock:
            return self.db.execute("DELETE FROM api_keys WHERE id = ?", (key_id,)).rowcount > 0


def _limit_columns(limits: KeyLimits) -> tuple[int, int, str]:
    return limits.rpm, limits.concurrent, ",".join(limits.models)
