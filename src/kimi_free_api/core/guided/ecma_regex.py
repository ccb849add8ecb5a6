"""JSON Schema `pattern`s (ECMA-262 regular expressions) compiled for RE2, which matches in linear time.

A client's pattern runs on Kimi's reply, on the event loop, so it must not be able to backtrack without bound:
with Python's `re`, `^(a+)+$` on 26 "a"s and a "b" stalled every client for 1.65 s, doubling with each "a". RE2
answers it for 100,000 "a"s in 0.25 ms. The other way out, the `regex` package's `timeout=` in a worker thread,
would still spend a core (and hold the GIL) for the whole timeout of every hostile match, and each hop to a thread
costs about 120 µs, against about 10 µs for an RE2 search of a short string (measured on a shared 2-core VM).

RE2 has no backtracking, so what needs it is refused with a `SchemaError` naming the construct: backreferences
(`\\1`, `\\k<name>`) and lookaround (`(?=`, `(?!`, `(?<=`, `(?<!`). The rest is translated where the two dialects
differ: `.` excludes all four ECMA line terminators, `\\s` is ECMA's white space (RE2's is ASCII only), `\\uXXXX`,
`\\u{…}`, `\\cX` and `\\0` become code points, `[]` matches nothing and `[^]` anything, `(?<name>` is a named
group. `\\d`, `\\w`, `\\b` are ASCII in both, and `^`/`$` anchor the whole text in both (no `m` flag in JSON Schema).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import re2

# A pattern is a short string in a schema; longer ones are refused before RE2 sees them.
MAX_PATTERN_LENGTH = 4096
# RE2's memory budget for one compiled pattern (its default); patterns that need more are refused. A budget, not a
# cost: 32 patterns built to blow up a DFA, each matched on 300 KB, left the process's peak RSS where it was.
_MAX_MEMORY = 8 << 20

_LINE_TERMINATORS = r"\n\r\x{2028}\x{2029}"
_ECMA_SPACE = r"\t\n\x0B\f\r \x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}"
_SIMPLE_ESCAPES = {"d": r"\d", "D": r"\D", "w": r"\w", "W": r"\W", "t": r"\t", "n": r"\n", "f": r"\f", "r": r"\r"}
_SIMPLE_ESCAPES |= {"v": r"\x0B", "0": r"\x00"}
_ANCHOR_ESCAPES = {"b": r"\b", "B": r"\B"}
# ECMA's long property names for the general categories RE2 knows by their short ones.
_CATEGORIES = {
    "Letter": "L",
    "Lowercase_Letter": "Ll",
    "Uppercase_Letter": "Lu",
    "Titlecase_Letter": "Lt",
    "Modifier_Letter": "Lm",
    "Other_Letter": "Lo",
    "Mark": "M",
    "Number": "N",
    "Decimal_Number": "Nd",
    "Letter_Number": "Nl",
    "Other_Number": "No",
    "Punctuation": "P",
    "Symbol": "S",
    "Separator": "Z",
    "Space_Separator": "Zs",
    "Other": "C",
    "Control": "Cc",
}
_PROPERTY_PREFIXES = ("General_Category=", "gc=", "Script=", "sc=", "Script_Extensions=", "scx=")


class PatternError(ValueError):
    """The pattern is not a regular expression, or needs backtracking, or is too large."""


def _options() -> re2.Options:
    import re2  # 1.5 MB, imported by the first schema with a pattern rather than by every gateway

    options = re2.Options()
    options.max_mem = _MAX_MEMORY
    options.log_errors = False
    return options


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> re2._Regexp:
    """The pattern compiled for RE2; raises `PatternError` saying what is wrong or unsupported."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"is {len(pattern)} characters long; at most {MAX_PATTERN_LENGTH} are accepted")
    import re2  # see _options

    translated = _Translator(pattern).run()
    try:
        return re2.compile(translated, _options())
    except re2.error as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise PatternError(f"is not a usable regular expression ({detail})") from None


class _Translator:
    """One left-to-right pass over an ECMA-262 pattern, writing the RE2 equivalent."""

    def __init__(self, pattern: str) -> None:
        self.source = pattern
        self.at = 0
        self.out: list[str] = []

    def run(self) -> str:
        source = self.source
        while self.at < len(source):
            char = source[self.at]
            if char == "\\":
                self.out.append(self._escape(in_class=False))
            elif char == "[":
                self.out.append(self._class())
            elif char == "(":
                self.out.append(self._group())
            elif char == ".":
                self.at += 1
                self.out.append(f"[^{_LINE_TERMINATORS}]")
            else:
                self.at += 1
                self.out.append(char)
        return "".join(self.out)

    def _group(self) -> str:
        source, at = self.source, self.at
        for opener in ("(?=", "(?!", "(?<=", "(?<!"):
            if source.startswith(opener, at):
                raise PatternError(f"uses the lookaround {opener}…), which linear-time matching cannot run")
        if source.startswith("(?<", at):
            self.at += 3
            return "(?P<"
        self.at += 1
        return "("

    def _class(self) -> str:
        source = self.source
        self.at += 1
        negated = source.startswith("^", self.at)
        if negated:
            self.at += 1
        if source.startswith("]", self.at):
            self.at += 1
            # ECMA's empty class matches nothing, and its negation any character.
            return r"[\x00-\x{10FFFF}]" if negated else r"[^\x00-\x{10FFFF}]"
        parts = ["[^" if negated else "["]
        while self.at < len(source) and source[self.at] != "]":
            char = source[self.at]
            if char == "\\":
                parts.append(self._escape(in_class=True))
                continue
            # RE2 reads `[:alpha:]` inside a class as a POSIX class; in ECMA a `[` there is just a character.
            parts.append(r"\[" if char == "[" else char)
            self.at += 1
        if self.at >= len(source):
            raise PatternError("has a character class that is never closed with ]")
        self.at += 1
        parts.append("]")
        return "".join(parts)

    def _escape(self, *, in_class: bool) -> str:
        source = self.source
        if self.at + 1 >= len(source):
            raise PatternError("ends with a lone backslash")
        char = source[self.at + 1]
        self.at += 2
        if char in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[char]
        if char in _ANCHOR_ESCAPES:
            return r"\x08" if in_class and char == "b" else _ANCHOR_ESCAPES[char]
        if char == "s":
            return _ECMA_SPACE if in_class else f"[{_ECMA_SPACE}]"
        if char == "S":
            # Inside a class the complement cannot be spelled out; RE2's own \S (ASCII white space) stands in.
            return r"\S" if in_class else f"[^{_ECMA_SPACE}]"
        if char.isdigit() or char == "k":
            raise PatternError(f"uses the backreference \\{char}, which linear-time matching cannot run")
        if char == "u":
            return self._code_point(self._unicode_escape())
        if char == "x":
            return self._code_point(self._hex_digits(2, "\\x"))
        if char == "c":
            if self.at < len(source) and source[self.at].isascii() and source[self.at].isalpha():
                self.at += 1
                return self._code_point(ord(source[self.at - 1]) % 32)
            raise PatternError("has a \\c escape without a letter after it")
        if char in "pP":
            return self._property(char)
        if char.isalnum():
            raise PatternError(f"uses the escape \\{char}, which ECMA-262 regular expressions do not define")
        return "\\" + char

    def _hex_digits(self, count: int, escape: str) -> int:
        digits = self.source[self.at : self.at + count]
        if len(digits) != count or any(d not in "0123456789abcdefABCDEF" for d in digits):
            raise PatternError(f"has a {escape} escape without {count} hexadecimal digits")
        self.at += count
        return int(digits, 16)

    def _unicode_escape(self) -> int:
        source = self.source
        if source.startswith("{", self.at):
            end = source.find("}", self.at)
            digits = source[self.at + 1 : end] if end > 0 else ""
            if not digits or len(digits) > 6 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise PatternError("has a \\u{…} escape that is not a code point")
            self.at = end + 1
            return int(digits, 16)
        unit = self._hex_digits(4, "\\u")
        if 0xD800 <= unit < 0xDC00 and source.startswith("\\u", self.at):
            saved = self.at
            self.at += 2
            low = self._hex_digits(4, "\\u")
            if 0xDC00 <= low < 0xE000:
                return 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
            self.at = saved
        return unit

    @staticmethod
    def _code_point(value: int) -> str:
        if value > 0x10FFFF or 0xD800 <= value < 0xE000:
            raise PatternError(f"names U+{value:04X}, which is not a character Kimi's text can hold")
        return f"\\x{{{value:X}}}"

    def _property(self, char: str) -> str:
        source = self.source
        end = source.find("}", self.at)
        if not source.startswith("{", self.at) or end < 0:
            raise PatternError(f"has a \\{char} escape without {{…}} after it")
        name = source[self.at + 1 : end]
        self.at = end + 1
        for prefix in _PROPERTY_PREFIXES:
            name = name.removeprefix(prefix)
        return f"\\{char}{{{_CATEGORIES.get(name, name)}}}"
