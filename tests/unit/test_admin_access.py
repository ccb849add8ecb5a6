"""The admin console's pure parts: pasted credentials, the plan reader, per-key limits in one process, the
request log's SQLite store and retention, ended console sessions in the SQLite file, and masking."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from kimi_free_api.core.access.callers import KeyLimits
from kimi_free_api.core.access.pasted import token_from_paste
from kimi_free_api.core.access.requestlog import LogEntry, LogQuery, LogWriter, Retention
from kimi_free_api.core.errors import InvalidRequest
from kimi_free_api.redact import mask_proxy
from kimi_free_api.state.limits import LocalKeyLimiter
from kimi_free_api.state.requestlog import SqliteRequestLog
from kimi_free_api.state.sqlite import SqliteStore
from kimi_free_api.upstream.plan import parse_plan

REFRESH = "eyJhbGciOiJIUzUxMiJ9.eyJ0eXAiOiJyZWZyZXNoIn0.c2lnbmF0dXJl"
ACCESS = "eyJhbGciOiJIUzUxMiJ9.eyJ0eXAiOiJhY2Nlc3MifQ.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "pasted",
    [
        REFRESH,
        f"  {REFRESH}\n",
        f'"{REFRESH}"',
        json.dumps({"refresh_token": REFRESH, "access_token": ACCESS}),
        # JSON.stringify(localStorage): the values are strings holding JSON.
        json.dumps({"access_token": json.dumps(ACCESS), "refresh_token": json.dumps(REFRESH), "theme": "dark"}),
        # DevTools' parsed view shows a JWT as the array of its segments.
        json.dumps({"refresh_token": REFRESH.split(".")}),
        json.dumps({"refreshToken": REFRESH}),
    ],
)
def test_the_refresh_token_is_found_in_what_was_pasted(pasted: str) -> None:
    assert token_from_paste(pasted) == REFRESH


def test_an_access_token_is_taken_when_the_dump_has_no_refresh_token() -> None:
    assert token_from_paste(json.dumps({"access_token": ACCESS, "lang": "en"})) == ACCESS


@pytest.mark.parametrize(
    ("pasted", "says"),
    [
        ("", "Paste a Kimi refresh token"),
        ("{broken", "not valid JSON"),
        (json.dumps({"theme": "dark"}), "no refresh_token"),
        ("two words", "no spaces"),
    ],
)
def test_what_is_not_a_token_is_refused_clearly(pasted: str, says: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        token_from_paste(pasted)
    assert says in refused.value.message and refused.value.param == "token"


def test_the_plan_reader_takes_what_kimi_publishes_and_leaves_the_rest_unknown() -> None:
    # GetSubscription answers {subscription: …} (evidence row 6); the rest of its fields are not documented.
    bare = parse_plan({"subscription": {"level": "LEVEL_FREE"}}, None)
    assert (bare.plan, bare.status, bare.expires_at, bare.windows) == ("LEVEL_FREE", None, None, None)
    assert parse_plan({}, {}).to_json() == {"plan": None, "status": None, "expires_at": None, "windows": None}
    full = parse_plan(
        {
            "subscription": {
                "goods": {"title": "Moderato"},
                "status": "SUBSCRIPTION_STATUS_ACTIVE",
                "end_time": "2026-12-01T00:00:00Z",
            }
        },
        {"stats": {"usages": [{"window": "FIVE_HOURS", "used_count": "7", "limit_count": "50"}, {"usage": 3}, 5]}},
    )
    assert (full.plan, full.status, full.expires_at) == (
        "Moderato",
        "SUBSCRIPTION_STATUS_ACTIVE",
        "2026-12-01T00:00:00Z",
    )
    assert full.to_json()["windows"] == [
        {"name": "FIVE_HOURS", "used": 7.0, "limit": 50.0, "resets_at": None},
        {"name": "window 2", "used": 3.0, "limit": None, "resets_at": None},
    ]


async def test_the_local_limiter_counts_a_sliding_minute_and_concurrent_slots() -> None:
    limiter = LocalKeyLimiter()
    assert [await limiter.admit("k", 2) for _ in range(2)] == [0.0, 0.0]
    wait = await limiter.admit("k", 2)
    assert 59 < wait <= 60
    assert await limiter.admit("other", 2) == 0.0  # keys are counted apart
    assert await limiter.hold("k", 1, "a")
    assert not await limiter.hold("k", 1, "b")
    await limiter.release("k", "a")
    assert await limiter.hold("k", 1, "b")


def test_limits_allow_every_model_unless_listed() -> None:
    assert KeyLimits().allows("anything")
    assert KeyLimits(models=("kimi",)).allows("kimi") and not KeyLimits(models=("kimi",)).allows("kimi-search")


def _entry(n: int, **fields: object) -> LogEntry:
    base: dict[str, object] = {"at": time.time(), "method": "POST", "path": "/v1/chat/completions", "status": 200}
    return LogEntry(**{**base, "key_name": f"key{n % 2}", "model": "kimi", **fields})  # type: ignore[arg-type]


async def test_the_sqlite_log_filters_newest_first_and_keeps_what_retention_allows(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db.sqlite3")
    log = SqliteRequestLog(store)
    retention = Retention(max_entries=5, max_age_s=3600)
    await log.append([_entry(n, completion_tokens=n) for n in range(4)], retention)
    await log.append([_entry(4, status=429), _entry(5, at=time.time() - 7200), _entry(6, status=503)], retention)
    everything = await log.recent(LogQuery(), retention)
    # The two-hour-old entry is gone, and of the rest only the newest five are kept.
    assert [e.status for e in everything] == [503, 429, 200, 200, 200]
    assert [e.completion_tokens for e in everything[2:]] == [3, 2, 1]
    assert [e.status for e in await log.recent(LogQuery(status="4xx"), retention)] == [429]
    assert [e.status for e in await log.recent(LogQuery(status="503"), retention)] == [503]
    assert len(await log.recent(LogQuery(key="key0"), retention)) == 3
    assert len(await log.recent(LogQuery(limit=1), retention)) == 1
    store.close()


async def test_ended_sessions_are_kept_until_they_expire_and_the_everywhere_mark_only_moves_on(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "db.sqlite3")
    now = time.time()
    await store.end_session("stale", now - 1)
    await store.end_session("fresh", now + 3600)
    assert await store.session_ended("fresh", 0) and not await store.session_ended("other", 0)
    # Writing a row prunes those past their expiry, which their cookies' own expiry refuses already.
    assert [row[0] for row in store.db.execute("SELECT nonce FROM ended_admin_sessions")] == ["fresh"]
    await store.end_sessions_before(2_000)
    await store.end_sessions_before(1_000)
    assert await store.session_ended("other", 1_999) and not await store.session_ended("other", 2_000)
    store.close()


async def test_the_writer_hands_entries_over_in_batches_and_survives_a_failing_store(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db.sqlite3")
    writer = LogWriter(SqliteRequestLog(store), Retention(), keep_prompts=False)
    for n in range(3):
        writer.add(_entry(n))
    assert len(await writer.recent(LogQuery())) == 3  # reading writes what is pending first
    store.close()
    writer.add(_entry(9))
    await writer.flush()  # the closed database fails; the log is best-effort and the request is not affected


def test_log_entries_survive_a_round_trip_through_json() -> None:
    entry = _entry(1, first_content_ms=12.5, prompt_tokens=3, completion_tokens=4, account_label="alice")
    again = LogEntry.from_json(json.loads(json.dumps(entry.to_json())))
    assert again.to_json() == entry.to_json()


def test_an_older_database_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE accounts (id TEXT PRIMARY KEY, token TEXT NOT NULL, label TEXT NOT NULL DEFAULT '',"
        " added REAL NOT NULL);"
        "INSERT INTO accounts VALUES ('a1', 'tok', 'old', 1.0);"
        "CREATE TABLE api_keys (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL DEFAULT '',"
        " created REAL NOT NULL);"
    )
    old.close()
    store = SqliteStore(path)
    [account] = store.list_accounts()
    assert (account.label, account.disabled, account.proxy) == ("old", False, "")
    stored, _ = store.create_key("k", KeyLimits(rpm=5, models=("kimi",)))
    assert store.list_keys()[0].limits == KeyLimits(rpm=5, models=("kimi",))
    assert store.set_key_limits(stored.id, KeyLimits(concurrent=2))
    assert store.list_keys()[0].limits == KeyLimits(concurrent=2)
    store.close()


def test_a_proxy_password_is_masked() -> None:
    assert mask_proxy("socks5://user:pa55@10.1.2.3:1080") == "socks5://user:***@10.1.2.3:1080"
    assert mask_proxy("http://10.1.2.3:3128") == "http://10.1.2.3:3128"
    assert mask_proxy("") == ""
