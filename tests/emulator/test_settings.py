"""Settings, fault rules and tokens: validation and their Python-side behaviour."""

from __future__ import annotations

import base64
import time

import orjson
import pytest

from kimi_free_api.emulator import EmulatorConfig, Fault, InvalidSetting
from kimi_free_api.emulator.faults import FaultBook
from kimi_free_api.emulator.tokens import TokenMint, is_expired


def test_partial_update_keeps_the_rest() -> None:
    config = EmulatorConfig(event_count=3).updated({"append_mode": "cumulative", "event_delay_ms": 1.5})
    assert (config.event_count, config.append_mode, config.event_delay_ms) == (3, "cumulative", 1.5)


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"event_count": 0}, "event_count"),
        ({"event_count": True}, "event_count"),
        ({"event_count": "5"}, "event_count"),
        ({"append_mode": "sideways"}, "append_mode"),
        ({"end_stream": None}, "end_stream"),
        ({"heartbeat_ms": -1}, "heartbeat_ms"),
        ({"split_utf8": 1}, "split_utf8"),
        ({"models": []}, "models"),
        ({"models": [{"displayName": "no scenario"}]}, "models"),
        ({"legacy_models": []}, "legacy_models"),
        ({"chat_id_style": "uuid4"}, "chat_id_style"),
        ({"refresh_endpoints": "neither"}, "refresh_endpoints"),
        ({"catalog_shape": "2027"}, "catalog_shape"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_settings_name_the_field(changes: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidSetting) as caught:
        EmulatorConfig().updated(changes)
    assert caught.value.param == param


def test_config_json_has_every_key() -> None:
    assert set(EmulatorConfig().to_json()) == {
        "replay",
        "event_count", "event_delay_ms", "first_event_delay_ms", "append_mode", "end_stream", "search_results",
        "search_style", "citation_markers", "thinking_events", "thinking_style", "casing", "split_utf8",
        "heartbeat_ms", "enforce_single_stream", "error_style", "access_token_ttl_s", "open_accounts",
        "rotate_refresh_tokens", "refresh_endpoints", "chat_id_style", "catalog_shape", "models", "legacy_models",
        "citation_style", "stage_statuses", "research_asks_user", "stray_envelopes", "answer_block",
        "upload_delay_ms", "parse_delay_ms", "guided_answers", "usage_stats",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"kind": "meteor"}, "kind"),
        ({"kind": "busy", "times": 0}, "times"),
        ({"kind": "busy", "endpoint": "nowhere"}, "endpoint"),
        ({"kind": "stall", "endpoint": "refresh"}, "kind"),
        ({"kind": "parse_failed", "endpoint": "upload"}, "kind"),
        ({"kind": "busy", "after_events": -1}, "after_events"),
        ({"kind": "rate_limited", "retry_after": "soon"}, "retry_after"),
        ({"kind": "busy", "user_id": 5}, "user_id"),
        ({"kind": "busy", "colour": "red"}, "colour"),
        ({}, "kind"),
    ],
)
def test_bad_faults_name_the_field(fields: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidSetting) as caught:
        Fault.from_json(fields)
    assert caught.value.param == param


def test_fault_book_consumes_in_order_and_by_user() -> None:
    book = FaultBook()
    book.add(Fault(kind="busy", user_id="bob"))
    book.add(Fault(kind="internal", times=2))
    assert book.take("delete", "alice") is None
    assert book.take("chat", "alice") == Fault(kind="internal", times=2)
    assert book.take("chat", "bob") == Fault(kind="busy", user_id="bob")
    assert [rule["times_left"] for rule in book.to_json()] == [1]
    assert book.take("chat", None) is not None
    assert book.take("chat", "bob") is None


def test_refusal_shapes() -> None:
    assert Fault(kind="rate_limited").refusal().retry_after == 1
    assert Fault(kind="rate_limited", retry_after=9).refusal().retry_after == 9
    quota = Fault(kind="quota").refusal()
    assert (quota.status, quota.code, quota.reason) == (429, "resource_exhausted", "usage.limit_reached")
    assert Fault(kind="internal", message="custom").refusal().message == "custom"


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    claims: dict[str, object] = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def test_tokens() -> None:
    mint = TokenMint()
    token = mint.access_token("dc0user", 900)
    claims = _claims(token)
    assert {"typ": "access", "app_id": "kimi", "sub": "dc0user"}.items() <= claims.items()
    assert str(claims["device_id"]).startswith("7") and len(str(claims["device_id"])) == 19
    assert str(claims["ssid"]).startswith("17")
    assert abs(int(str(claims["exp"])) - time.time() - 900) < 5
    assert mint.claims(token) == claims
    assert not is_expired(claims)
    assert is_expired(_claims(mint.access_token("dc0user", 0)))
    assert _claims(mint.refresh_token("dc0user"))["typ"] == "refresh"
    head, body, signature = token.split(".")
    assert mint.claims(f"{head}.{body}x.{signature}") is None
    assert TokenMint().claims(token) is None, "each mint has its own key"
    assert mint.claims("not a jwt") is None
