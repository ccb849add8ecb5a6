"""The single prompt sent to Kimi: a lone user message as is, anything else as a role-keeping transcript."""

from __future__ import annotations

from kimi_free_api.core.conversation.prompt import PREAMBLE, build_prompt, unanswered_tail
from kimi_free_api.core.request import Message, ToolCall


def test_single_user_message_passes_through_unchanged() -> None:
    content = "  What is 2+2?\n<user>not a tag</user>  "
    assert build_prompt([Message(role="user", content=content)]) == content


def test_single_named_user_message_becomes_a_transcript() -> None:
    assert build_prompt([Message(role="user", content="Hi", name="ann")]) == (
        f'{PREAMBLE}\n\n<user name="ann">\nHi\n</user>'
    )


def test_single_system_message_becomes_a_transcript() -> None:
    assert (
        build_prompt([Message(role="system", content="Be terse.")]) == f"{PREAMBLE}\n\n<system>\nBe terse.\n</system>"
    )


def test_multi_role_conversation() -> None:
    messages = [
        Message(role="system", content="You are terse."),
        Message(role="user", content="Weather in Paris and the time?", name="ann"),
        Message(
            role="assistant",
            content="Let me check.",
            tool_calls=(
                ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),
                ToolCall(id="call_2", name="now", arguments="{}"),
            ),
        ),
        Message(role="tool", content="18°C", name="get_weather", tool_call_id="call_1"),
        Message(role="tool", content="12:00", tool_call_id="call_2"),
        Message(role="assistant", content="", tool_calls=(ToolCall(id="", name="noop", arguments="{}"),)),
        Message(role="tool", content="done"),
        Message(role="assistant", content="18°C at noon."),
        Message(role="user", content="Thanks!\nBye."),
    ]
    assert build_prompt(messages) == (
        "Continue the conversation below as the assistant: answer the last user message.\n"
        "\n"
        "<system>\n"
        "You are terse.\n"
        "</system>\n"
        "\n"
        '<user name="ann">\n'
        "Weather in Paris and the time?\n"
        "</user>\n"
        "\n"
        "<assistant>\n"
        "Let me check.\n"
        '<tool_call id="call_1" name="get_weather">{"city":"Paris"}</tool_call>\n'
        '<tool_call id="call_2" name="now">{}</tool_call>\n'
        "</assistant>\n"
        "\n"
        '<tool tool_call_id="call_1" name="get_weather">\n'
        "18°C\n"
        "</tool>\n"
        "\n"
        '<tool tool_call_id="call_2" name="now">\n'
        "12:00\n"
        "</tool>\n"
        "\n"
        "<assistant>\n"
        '<tool_call name="noop">{}</tool_call>\n'
        "</assistant>\n"
        "\n"
        "<tool>\n"
        "done\n"
        "</tool>\n"
        "\n"
        "<assistant>\n"
        "18°C at noon.\n"
        "</assistant>\n"
        "\n"
        "<user>\n"
        "Thanks!\n"
        "Bye.\n"
        "</user>"
    )


def test_attribute_values_are_escaped() -> None:
    prompt = build_prompt([Message(role="user", content="x", name='a"b&c<d>&quot;')])
    assert '<user name="a&quot;b&amp;c<d>&amp;quot;">' in prompt
    call = ToolCall(id='id"1', name="f&g", arguments='{"a":"b&c"}')
    prompt = build_prompt([Message(role="assistant", content="", tool_calls=(call,))])
    # Attributes are escaped; the arguments (element text) are not touched.
    assert '<tool_call id="id&quot;1" name="f&amp;g">{"a":"b&c"}</tool_call>' in prompt


def test_empty_name_and_tool_call_id_add_no_attribute() -> None:
    prompt = build_prompt([Message(role="tool", content="r", name="", tool_call_id="")])
    assert prompt.endswith("\n\n<tool>\nr\n</tool>")


def test_tool_call_id_is_only_an_attribute_of_tool_messages() -> None:
    prompt = build_prompt([Message(role="user", content="a", tool_call_id="call_9"), Message(role="user", content="b")])
    assert "call_9" not in prompt


def test_unanswered_tail() -> None:
    u1 = Message(role="user", content="1")
    a1 = Message(role="assistant", content="2")
    u2 = Message(role="user", content="3")
    t1 = Message(role="tool", content="4")
    s1 = Message(role="system", content="s")
    assert list(unanswered_tail([])) == []
    assert list(unanswered_tail([s1, u1])) == [s1, u1]
    assert list(unanswered_tail([u1, a1])) == []
    assert list(unanswered_tail([u1, a1, u2, t1])) == [u2, t1]
    assert list(unanswered_tail([u1, a1, u2, a1, t1])) == [t1]
    assert unanswered_tail((u1, a1, u2)) == (u2,)
