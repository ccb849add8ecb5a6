"""Secrets never reach a log line or an error message."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import orjson
import pytest

from kimi_free_api.redact import (
    _RedactingFormatter,
    configure_logging,
    escape_controls,
    mask_token,
    redact,
    request_id_var,
)

from .tokens import mint_jwt

REFRESH = mint_jwt({"iss": "user-center", "typ": "refresh", "sub": "cnndivilnl96vah411dg", "exp": 1_900_000_000})
ACCESS = mint_jwt({"typ": "access", "app_id": "kimi", "sub": "cnndivilnl96vah411dg", "device_id": "7123"})


def masked(secret: str) -> str:
    return f"{secret[:4]}…{secret[-4:]}"


@pytest.mark.parametrize(
    ("secret", "expected"),
    [("", "***"), ("short", "***"), ("x" * 12, "***"), ("abcdefghijklm", "abcd…jklm")],
)
def test_mask_token(secret: str, expected: str) -> None:
    assert mask_token(secret) == expected


def test_redact_jwts() -> None:
    text = f"refresh={REFRESH}&access={ACCESS}."
    result = redact(text)
    assert REFRESH not in result
    assert ACCESS not in result
    assert result == f"refresh={masked(REFRESH)}&access={masked(ACCESS)}."


def test_redact_jwt_with_empty_signature() -> None:
    token = mint_jwt({"sub": "x"}, signature=b"")
    assert token.endswith(".")
    assert token not in redact(f"[{token}]")


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer sk-abcdefghijklmnopqrstuvwxyz",
        "authorization: bearer sk-abcdefghijklmnopqrstuvwxyz",
        "BEARER\tsk-abcdefghijklmnopqrstuvwxyz trailing",
        '{"Authorization": "Bearer sk-abcdefghijklmnopqrstuvwxyz"}',
        "headers={'Authorization': 'Bearer sk-abcdefghijklmnopqrstuvwxyz'}",
    ],
)
def test_redact_bearer_values(text: str) -> None:
    result = redact(text)
    assert "sk-abcdefghijklmnopqrstuvwxyz" not in result
    assert "Bear…wxyz" in result or "bear…wxyz" in result or "BEAR…wxyz" in result


def test_redact_short_bearer_is_fully_masked() -> None:
    assert redact("Bearer abc") == "***"


def test_redact_leaves_ordinary_text_alone() -> None:
    for text in ("hello world", "eyJ is how JSON starts", "a.b.c", "Bearer", "你好 🌏"):
        assert redact(text) == text


def test_redact_every_comma_separated_bearer_token() -> None:
    result = redact("Authorization: Bearer opaque-first-token-123,opaque-second-token-456")
    assert "opaque-first-token-123" not in result
    assert "opaque-second-token-456" not in result


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.unit.redact")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream, handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def _log_everything(logger: logging.Logger) -> None:
    logger.info("exchanging %s", REFRESH)
    logger.warning("header was Bearer %s", ACCESS)
    logger.info(f"inline {ACCESS} in the format string")
    try:
        raise ValueError(f"refresh failed for {REFRESH} with Authorization: Bearer opaque-secret-value-42")
    except ValueError:
        logger.exception("refresh failed")


def test_text_formatter_never_prints_tokens(
    captured: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]],
) -> None:
    logger, stream, handler = captured
    handler.setFormatter(_RedactingFormatter(as_json=False))
    token = request_id_var.set("req-123")
    try:
        _log_everything(logger)
    finally:
        request_id_var.reset(token)
    output = stream.getvalue()
    for secret in (REFRESH, ACCESS, "opaque-secret-value-42"):
        assert secret not in output
    assert masked(REFRESH) in output
    assert "Traceback (most recent call last)" in output
    assert "ValueError: refresh failed for" in output
    first = output.splitlines()[0]
    assert first.endswith(f"INFO    [req-123] tests.unit.redact: exchanging {masked(REFRESH)}")


def test_json_formatter_never_prints_tokens(
    captured: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]],
) -> None:
    logger, stream, handler = captured
    handler.setFormatter(_RedactingFormatter(as_json=True))
    _log_everything(logger)
    output = stream.getvalue()
    for secret in (REFRESH, ACCESS, "opaque-secret-value-42"):
        assert secret not in output
    records = [orjson.loads(line) for line in output.splitlines()]
    assert len(records) == 4
    assert set(records[0]) == {"ts", "level", "logger", "request_id", "msg"}
    assert records[0]["level"] == "INFO"
    assert records[0]["logger"] == "tests.unit.redact"
    assert records[0]["request_id"] == "-"
    assert records[0]["msg"] == f"exchanging {masked(REFRESH)}"
    assert records[3]["level"] == "ERROR"
    assert "Traceback" in records[3]["msg"]


def test_configure_logging_installs_the_redacting_formatter() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    access = logging.getLogger("aiohttp.access")
    saved_access = access.level
    try:
        configure_logging("debug", as_json=True)
        assert root.level == logging.DEBUG
        assert len(root.handlers) == 1
        assert isinstance(root.handlers[0].formatter, _RedactingFormatter)
        assert access.level == logging.WARNING
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        access.setLevel(saved_access)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("GET /a\r\n2026-01-01 INFO forged", "GET /a\\r\\n2026-01-01 INFO forged"),
        ("tab\there", "tab\\there"),
        ("nul\x00 esc\x1b[2J del\x7f c1\x85", "nul\\x00 esc\\x1b[2J del\\x7f c1\\x85"),
        ("line\u2028sep\u2029", "line\\u2028sep\\u2029"),
        ("plain text, 你好", "plain text, 你好"),
    ],
)
def test_escape_controls(text: str, shown: str) -> None:
    assert escape_controls(text) == shown


@pytest.mark.parametrize("as_json", [False, True])
def test_one_record_is_one_line_whatever_its_arguments(as_json: bool) -> None:
    record = logging.LogRecord("kimi_free_api", logging.INFO, __file__, 1, "%s %s", ("GET", "/x\r\nFAKE\n"), None)
    line = _RedactingFormatter(as_json).format(record)
    assert "\n" not in line and "\r" not in line
    assert "/x\\r\\nFAKE\\n" in (orjson.loads(line)["msg"] if as_json else line)


def test_tracebacks_keep_their_lines() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "\nValueError: boom" in _RedactingFormatter(False).format(record)
