"""Prompts longer than one Kimi message holds: the history travels as an uploaded file instead.

Kimi's web chat takes about 200,000 characters in one message (past that its own UI turns a paste into an
attachment). A prompt up to `limit` characters is sent as it is. A longer one is split: the transcript of the
conversation becomes a text file attached to the message (`HISTORY_FILE`), and the message itself says where the
conversation is and carries the output directive (tool declarations and format rules, compacted beforehand), so
the rules Kimi must follow stay in front of it. When even the directive does not fit beside that note, the whole
prompt goes into the file and the message only points at it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kimi_free_api.core.conversation.prompt import build_prompt
from kimi_free_api.core.request import Message

HISTORY_FILE = "conversation.txt"

_HISTORY_NOTE = (
    f"The conversation is too long for one message, so it is in the attached file {HISTORY_FILE} (a transcript "
    "with one element per message, <system>, <user>, <assistant> and <tool>, when it holds several). Read all of "
    "it, then continue the conversation as the assistant: answer its last message."
)
_EVERYTHING_NOTE = (
    f"This request is too long for one message, so all of it is in the attached file {HISTORY_FILE}: the "
    "conversation, then the rules for your answer. Read all of it and answer exactly as it asks."
)


@dataclass(frozen=True, slots=True)
class FittedPrompt:
    # What the Chat message says.
    prompt: str
    # The text of the attached history file; "" when the prompt fits in the message.
    history: str = ""

    @property
    def counted(self) -> str:
        """What Kimi reads for this prompt, message and file, as usage counts it."""
        return f"{self.prompt}\n\n{self.history}" if self.history else self.prompt


def fit_prompt(messages: Sequence[Message], directive: str, limit: int) -> FittedPrompt:
    """The prompt for `messages` and `directive`, its history moved to a file when it is longer than `limit`."""
    whole = build_prompt(messages, directive)
    if len(whole) <= limit:
        return FittedPrompt(whole)
    with_directive = f"{_HISTORY_NOTE}\n\n{directive}" if directive else _HISTORY_NOTE
    if len(with_directive) <= limit:
        return FittedPrompt(with_directive, build_prompt(messages))
    return FittedPrompt(_EVERYTHING_NOTE, whole)
