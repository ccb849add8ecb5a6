from __future__ import annotations

from kimi_free_api.core.conversation.continuity import chained_keys, reply_key, resumption_points
from kimi_free_api.core.request import AttachmentRef, Message, ToolCall

USER = Message(role="user", content="hello")
REPLY = Message(role="assistant", content="hi there")
NEXT = Message(role="user", content="and then?")


def test_the_key_after_our_reply_is_where_the_next_request_resumes() -> None:
    stored = reply_key([USER], REPLY)
    points = resumption_points([USER, REPLY, NEXT])
    assert points[0].key == stored
    assert points[0].new_messages == (NEXT,)


def test_most_recent_reply_first_and_only_points_with_new_messages() -> None:
    history = [USER, REPLY, NEXT, Message(role="assistant", content="later"), Message(role="user", content="x")]
    points = resumption_points(history)
    assert [len(p.new_messages) for p in points] == [1, 3]
    assert resumption_points([USER, REPLY]) == []  # nothing new to send
    assert resumption_points([USER]) == []


def test_outer_whitespace_does_not_matter_but_content_does() -> None:
    assert reply_key([USER], REPLY) == reply_key([USER], Message(role="assistant", content="  hi there\n"))
    assert reply_key([USER], REPLY) != reply_key([USER], Message(role="assistant", content="hi  there"))


def test_an_edit_anywhere_earlier_changes_every_later_key() -> None:
    edited = Message(role="user", content="hello!")
    assert chained_keys([USER, REPLY])[1] != chained_keys([edited, REPLY])[1]
    assert chained_keys([USER, REPLY])[0] == chained_keys([USER])[0]


def test_roles_names_tool_calls_and_attachments_count() -> None:
    base = reply_key([USER], REPLY)
    assert reply_key([Message(role="system", content="hello")], REPLY) != base
    assert reply_key([Message(role="user", content="hello", name="ann")], REPLY) != base
    call = Message(role="assistant", content="", tool_calls=(ToolCall("c1", "f", "{}"),))
    assert reply_key([USER], call) != reply_key([USER], Message(role="assistant", content=""))
    one = AttachmentRef(kind="url", value="data:text/plain;base64,YQ==", filename="a.txt")
    other = AttachmentRef(kind="url", value="data:text/plain;base64,Yg==", filename="a.txt")
    with_one = Message(role="user", content="hello", attachments=(one,))
    with_other = Message(role="user", content="hello", attachments=(other,))
    assert reply_key([with_one], REPLY) != reply_key([with_other], REPLY)
    assert reply_key([with_one], REPLY) != base
