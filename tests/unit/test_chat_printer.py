"""How `kimi-free-api chat` keeps thinking apart from the answer, on a terminal and in a pipe."""

from __future__ import annotations

import io

import pytest

from kimi_free_api.chat_cli import Printer


@pytest.mark.parametrize(
    ("styled", "shown"),
    [
        (True, "\x1b[2mweighing it up\x1b[0m\n\nIt is 42.\nagain\n"),
        (False, "[thinking]\nweighing it up\n[/thinking]\nIt is 42.\nagain\n"),
    ],
)
def test_thinking_is_set_apart_and_each_answer_ends_its_line(styled: bool, shown: str) -> None:
    out = io.StringIO()
    printer = Printer(out, styled)
    printer.thinking("weighing ")
    printer.thinking("it up")
    printer.text("It is ")
    printer.text("42.")
    printer.end()
    printer.text("again")
    printer.end()
    assert out.getvalue() == shown
