"""Web-search results rendered as the seed renders them: numbered markdown lines.

Streaming shows `【检索 N】 [title](url)` lines as the results arrive; a non-streamed answer ends with the list under
`搜索结果来自：`. Models with the `-silent` flag hide both.
"""

from __future__ import annotations

from kimi_free_api.core.events import SearchResult

SOURCES_HEADER = "\n\n搜索结果来自：\n"


def _escape_title(title: str) -> str:
    return title.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").replace("\n", " ")


def _escape_url(url: str) -> str:
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


class Citations:
    __slots__ = ("_lines", "silent")

    def __init__(self, silent: bool) -> None:
        self.silent = silent
        self._lines: list[str] = []

    def add(self, result: SearchResult) -> str:
        """Records a result; answers the line to show in a stream ('' when silent)."""
        number = len(self._lines) + 1
        line = f"【检索 {number}】 [{_escape_title(result.title)}]({_escape_url(result.url)})\n"
        self._lines.append(line)
        return "" if self.silent else line

    def sources(self) -> str:
        if self.silent or not self._lines:
            return ""
        return SOURCES_HEADER + "\n".join(self._lines)
