"""Usage counts from the BPE vocabulary shipped in an installed package, without any network access."""

from __future__ import annotations

import socket

import pytest

from kimi_free_api.core import tokenizer
from kimi_free_api.core.tokenizer import BpeCounter, EstimateCounter
from kimi_free_api.core.usage import Usage, measure


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("Hello world", 2),
        ("The quick brown fox jumps over the lazy dog.", 10),
        ("你好，世界", 3),
        ("🙂", 1),
        ("def f(x):\n    return x", 7),
        # A special-token string in a prompt is text Kimi reads, not a control token.
        ("<|im_start|>user", 7),
    ],
)
def test_bpe_counts(text: str, tokens: int) -> None:
    assert BpeCounter().count(text) == tokens


def test_the_vocabulary_loads_from_the_installed_package_without_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object) -> None:
        raise AssertionError("the tokenizer tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    encoding = tokenizer._load_encoding()
    assert encoding.n_vocab > 150_000
    assert encoding.encode_ordinary("Hello world") == [9707, 1879]


def test_the_estimate_is_the_fallback_counter() -> None:
    assert EstimateCounter().count("你好 hello") == 2 + 2


async def test_long_texts_are_counted_off_the_event_loop_with_the_same_result() -> None:
    long = "数据 alpha 🙂 " * 20_000
    counter = BpeCounter()
    assert await measure(counter, long, "ok", "") == Usage.count(counter, long, "ok", "")
    assert (await measure(counter, long, "ok", "")).prompt_tokens > 50_000
