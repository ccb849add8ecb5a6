"""Settings.from_env: types, booleans, validation and the refresh URL."""

from __future__ import annotations

import resource
from dataclasses import fields
from pathlib import Path

import pytest
import trustme

from kimi_free_api.api.server import connection_limits
from kimi_free_api.config import Settings, SettingsError, auth_origin


def test_empty_environment_gives_the_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.port == 8000
    assert settings.kimi_base_url == "https://www.kimi.com"
    assert settings.kimi_append_mode == "delta"
    assert settings.auto_delete is True
    assert settings.whole_answer_keepalive_s == 0  # off: a failure after early headers could not change the status


def test_values_are_typed() -> None:
    settings = Settings.from_env(
        {
            "HOST": "127.0.0.1",
            "PORT": "9000",
            "CONNECT_TIMEOUT_S": "2.5",
            "STREAM_IDLE_TIMEOUT_S": "30",
            "MAX_REQUEST_BYTES": "1024",
            "AUTO_DELETE": "false",
            "LOG_JSON": "yes",
            "KIMI_SCENARIO": "SCENARIO_K2",
            "KIMI_APPEND_MODE": "cumulative",
            "KIMI_REFRESH_STYLE": "connect",
            "UNRELATED": "ignored",
            "port": "1",  # only upper-case names are read
        }
    )
    assert (settings.host, settings.port, settings.max_request_bytes) == ("127.0.0.1", 9000, 1024)
    assert isinstance(settings.port, int)
    assert settings.connect_timeout_s == 2.5
    assert isinstance(settings.stream_idle_timeout_s, float)
    assert settings.stream_idle_timeout_s == 30.0
    assert (settings.auto_delete, settings.log_json) == (False, True)
    assert (settings.kimi_scenario, settings.kimi_append_mode, settings.kimi_refresh_style) == (
        "SCENARIO_K2",
        "cumulative",
        "connect",
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        (" Yes ", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
        ("", False),
    ],
)
def test_booleans(raw: str, expected: bool) -> None:
    assert Settings.from_env({"STRIP_CITATION_MARKERS": raw}).strip_citation_markers is expected


@pytest.mark.parametrize("raw", ["maybe", "2", "enabled", "y"])
def test_invalid_booleans(raw: str) -> None:
    with pytest.raises(SettingsError, match="AUTO_DELETE"):
        Settings.from_env({"AUTO_DELETE": raw})


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"PORT": "abc"}, "PORT"),
        ({"PORT": "8000.5"}, "PORT"),
        ({"PORT": ""}, "PORT"),
        ({"MAX_REQUEST_BYTES": "1MB"}, "MAX_REQUEST_BYTES"),
        ({"CONNECT_TIMEOUT_S": "fast"}, "CONNECT_TIMEOUT_S"),
        ({"PORT": "0"}, "PORT"),
        ({"PORT": "65536"}, "PORT"),
        ({"PORT": "-1"}, "PORT"),
        ({"KIMI_BASE_URL": "ftp://www.kimi.com"}, "KIMI_BASE_URL"),
        ({"KIMI_BASE_URL": "www.kimi.com"}, "KIMI_BASE_URL"),
        ({"KIMI_REFRESH_STYLE": "soap"}, "KIMI_REFRESH_STYLE"),
        ({"KIMI_APPEND_MODE": "full"}, "KIMI_APPEND_MODE"),
        ({"CONNECT_TIMEOUT_S": "0"}, "CONNECT_TIMEOUT_S"),
        ({"STREAM_IDLE_TIMEOUT_S": "-1"}, "STREAM_IDLE_TIMEOUT_S"),
        ({"TOKEN_DEFAULT_TTL_S": "0"}, "TOKEN_DEFAULT_TTL_S"),
        ({"KIMI_UPLOAD_FLOW": "ftp"}, "KIMI_UPLOAD_FLOW"),
        ({"KIMI_FILE_REF_STYLE": "inline"}, "KIMI_FILE_REF_STYLE"),
        ({"MAX_ATTACHMENT_BYTES": "0"}, "MAX_ATTACHMENT_BYTES"),
        ({"MAX_ATTACHMENTS": "-1"}, "MAX_ATTACHMENTS"),
        ({"FILE_PARSE_TIMEOUT_S": "0"}, "FILE_PARSE_TIMEOUT_S"),
        ({"ATTACHMENT_TRANSFER_TIMEOUT_S": "-5"}, "ATTACHMENT_TRANSFER_TIMEOUT_S"),
        ({"ALLOW_LOOPBACK_FETCH": "maybe"}, "ALLOW_LOOPBACK_FETCH"),
        ({"MAX_CONNECTIONS": "-1"}, "MAX_CONNECTIONS"),
        ({"REQUEST_HEAD_TIMEOUT_S": "0"}, "REQUEST_HEAD_TIMEOUT_S"),
        ({"IDLE_CONNECTION_TIMEOUT_S": "nan"}, "IDLE_CONNECTION_TIMEOUT_S"),
        ({"REQUEST_BODY_TIMEOUT_S": "-1"}, "REQUEST_BODY_TIMEOUT_S"),
        ({"WHOLE_ANSWER_KEEPALIVE_S": "-1"}, "WHOLE_ANSWER_KEEPALIVE_S"),
        ({"WHOLE_ANSWER_KEEPALIVE_S": "nan"}, "WHOLE_ANSWER_KEEPALIVE_S"),
        ({"MAX_CLIENT_ACCOUNTS": "0"}, "MAX_CLIENT_ACCOUNTS"),
        ({"KIMI_PROXY": "ftp://127.0.0.1:21"}, "KIMI_PROXY"),
        ({"KIMI_PROXY": "socks5://127.0.0.1"}, "KIMI_PROXY"),
        ({"KIMI_PROXY": "http://127.0.0.1:port"}, "KIMI_PROXY"),
    ],
)
def test_invalid_values(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


def test_a_ca_file_that_cannot_be_read_is_refused_naming_the_setting(tmp_path: Path, tls_ca: trustme.CA) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate\n")
    for path, why in ((tmp_path / "missing.pem", "No such file"), (not_pem, "no PEM certificate"), (tmp_path, "")):
        with pytest.raises(SettingsError, match=f"^KIMI_CA_FILE: {why}") as refused:
            Settings.from_env({"KIMI_CA_FILE": str(path)})
        assert str(path) in str(refused.value) and "\n" not in str(refused.value)
    good = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(good))
    assert Settings.from_env({"KIMI_CA_FILE": str(good)}).kimi_ca_file == str(good)
    assert Settings.from_env({}).kimi_ca_file == "", "system trust only by default"


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


def test_port_bounds_are_inclusive() -> None:
    assert Settings.from_env({"PORT": "1"}).port == 1
    assert Settings.from_env({"PORT": "65535"}).port == 65535


def test_refresh_url() -> None:
    assert Settings().refresh_url == "https://auth.kimi.com/api/account.gateway.v1.AuthService/RefreshToken"
    overseas = Settings.from_env({"KIMI_BASE_URL": "https://www.kimi.ai"})
    assert overseas.refresh_url == "https://auth.kimi.ai/api/account.gateway.v1.AuthService/RefreshToken"
    assert overseas.legacy_refresh_url == "https://www.kimi.ai/api/auth/token/refresh"
    local = Settings.from_env({"KIMI_BASE_URL": "http://127.0.0.1:9/"})
    assert local.refresh_url == "http://127.0.0.1:9/api/account.gateway.v1.AuthService/RefreshToken", "same origin"
    legacy = Settings.from_env({"KIMI_BASE_URL": "http://127.0.0.1:9/", "KIMI_REFRESH_STYLE": "rest"})
    assert legacy.refresh_url == "http://127.0.0.1:9/api/auth/token/refresh"
    explicit = Settings.from_env({"KIMI_REFRESH_URL": "https://auth.example/refresh"})
    assert explicit.refresh_url == "https://auth.example/refresh"


@pytest.mark.parametrize(
    ("base", "auth"),
    [
        ("https://www.kimi.com", "https://auth.kimi.com"),
        ("https://WWW.KIMI.COM/", "https://auth.kimi.com"),
        ("https://www.kimi.ai", "https://auth.kimi.ai"),
        ("https://kimi.example:8443", "https://kimi.example:8443"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_auth_origin_follows_the_site(base: str, auth: str) -> None:
    assert auth_origin(base) == auth


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in fields(Settings):
        monkeypatch.delenv(field.name.upper(), raising=False)
    monkeypatch.setenv("PORT", "1234")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    settings = Settings.from_env()
    assert (settings.port, settings.log_level) == (1234, "DEBUG")


def test_with_overrides() -> None:
    base = Settings()
    changed = base.with_overrides(port=9999, host=None, auto_delete=False)
    assert (changed.port, changed.host, changed.auto_delete) == (9999, base.host, False)
    assert base.port == 8000
    with pytest.raises(SettingsError):
        base.with_overrides(port=0)


def test_connection_cap_defaults_to_half_of_what_the_file_limit_leaves() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limits = connection_limits(Settings())
    assert limits.max_connections == max(16, (soft - 64) // 2)
    assert connection_limits(Settings(max_connections=7)).max_connections == 7
