"""Each protocol assumption the doctor checks: one small judge per row of the 2026 evidence table.

"Held" means what the script observed agrees with `kimi-2026-evidence.md`; "differs" names the shape observed
instead (shapes and counts only, never text, ids or tokens); "untested" means the script could not observe it
(a step failed, or Kimi had no reason to show it, e.g. no overload happened). Judges read `Observations` only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kimi_free_api.doctor.script import Observations, chat_id
from kimi_free_api.doctor.wire import Reply, Stream
from kimi_free_api.upstream.connect import FLAG_END_STREAM
from kimi_free_api.upstream.drift import shape_text

HELD, DIFFERS, UNTESTED = "held", "differs", "untested"

# The frame kinds the 2026 captures show (evidence rows 38-49); anything else is named by the drift check.
KNOWN_MASKS = frozenset(
    {
        "chat",
        "message",
        "message.status",
        "message.refs.searchChunks",
        "block.text",
        "block.text.content",
        "block.think",
        "block.think.content",
        "block.multiStage",
        "block.search.webPages",
        "block.tool",
        "block.tool.args",
        "block.tool.contents",
        "block.exception",
    }
)
KNOWN_KEYS = frozenset(
    {"op", "mask", "eventOffset", "chat", "message", "block", "heartbeat", "done", "error", "notification"}
)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_STAGE_START, _STAGE_END = "STAGE_STATUS_START", "STAGE_STATUS_END"
# Citation markers as captured: U+E3A0 … U+E3A8 sequences, or 🛠…🛠 (evidence row 46).
_MARKER_CHARS = re.compile("[\ue3a0-\ue3a8\U0001f6e0\U0001f3a8]")
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")
ACCESS_LIFETIME_S = 900


@dataclass(frozen=True, slots=True)
class Verdict:
    result: str
    observed: str = ""


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    row: int  # the row of the evidence table (kimi-2026-evidence.md §2); 0 for the catch-all drift check
    step: str
    assumption: str
    judge: Callable[[Observations], Verdict]


CHECKS: list[Check] = []


def check(name: str, row: int, step: str, assumption: str) -> Callable[[Callable[[Observations], Verdict]], None]:
    def register(judge: Callable[[Observations], Verdict]) -> None:
        CHECKS.append(Check(name, row, step, assumption, judge))

    return register


def held(observed: str = "") -> Verdict:
    return Verdict(HELD, observed)


def differs(observed: str) -> Verdict:
    return Verdict(DIFFERS, observed)


def untested(why: str) -> Verdict:
    return Verdict(UNTESTED, why)


def _failed_call(reply: Reply | None, what: str) -> Verdict | None:
    """The verdict when a call could not be made or answered an error; None when it answered 200 with JSON."""
    if reply is None:
        return untested(f"{what} was not reached")
    if reply.failure:
        return untested(f"{what}: {reply.failure}")
    if reply.status in (401, 403):
        return untested(f"Kimi refused the token ({what}: HTTP {reply.status})")
    if not reply.ok:
        return differs(f"{what} answered HTTP {reply.status}, {_body(reply.body)}")
    return None


def _body(body: Any) -> str:
    return "a body that is not JSON" if body is None else shape_text(body)


def _stream(seen: Observations, step: str) -> Stream | Verdict:
    stream = seen.streams.get(step)
    if stream is None:
        return untested(f"the {step} answer was not reached")
    if stream.failure:
        return untested(f"the {step} answer: {stream.failure}")
    if stream.status != 200:
        return differs(f"Chat answered HTTP {stream.status}, {_body(stream.body)}")
    return stream


def _masks(frames: Iterable[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for frame in frames:
        mask = frame.get("mask") or ("chat" if "chat" in frame else "")
        if isinstance(mask, str) and mask and mask not in found:
            found.append(mask)
    return found


def _blocks(frames: Iterable[dict[str, Any]], kind: str) -> Iterator[dict[str, Any]]:
    for frame in frames:
        block = frame.get("block")
        if isinstance(block, dict) and isinstance(block.get(kind), dict):
            yield block[kind]


def _answer_text(stream: Stream) -> str:
    return "".join(
        text.get("content", "") for text in _blocks(stream.frames, "text") if isinstance(text.get("content"), str)
    )


def _all_streams(seen: Observations) -> list[Stream]:
    return [stream for stream in seen.streams.values() if stream.opened]


# Token exchange


@check("refresh.connect", 20, "exchange", "refresh: POST auth host AuthService/RefreshToken gives both tokens")
def _refresh_connect(seen: Observations) -> Verdict:
    if seen.token_kind == "access":
        return untested("an access token was given: nothing to exchange")
    failed = _failed_call(seen.refresh, "RefreshToken")
    if failed is not None:
        return failed
    reply = seen.refresh
    assert reply is not None
    if isinstance(reply.field("accessToken"), str) and isinstance(reply.field("refreshToken"), str):
        return held()
    return differs(f"answer {shape_text(reply.body)}")


@check("refresh.legacy", 19, "exchange", "legacy refresh GET /api/auth/token/refresh still answers")
def _refresh_legacy(seen: Observations) -> Verdict:
    if seen.legacy_refresh is None:
        return untested("not needed: the RefreshToken call worked" if seen.refresh else "no refresh token given")
    failed = _failed_call(seen.legacy_refresh, "the legacy refresh")
    return failed or held()


@check("refresh.rotation", 21, "exchange", "every refresh rotates the refresh token")
def _rotation(seen: Observations) -> Verdict:
    if seen.token_kind != "refresh" or seen.fatal:
        return untested("no refresh happened")
    if not seen.new_refresh_token:
        return differs("the refresh answer carried no refresh token")
    if seen.new_refresh_token == seen.sent_refresh_token:
        return differs("the same refresh token came back")
    return held()


@check("token.access", 22, "exchange", f"the access token is a JWT with typ=access living {ACCESS_LIFETIME_S} s")
def _access_token(seen: Observations) -> Verdict:
    claims = seen.access_claims
    if not claims:
        return untested("no access token") if seen.fatal else differs("the access token is not a readable JWT")
    lifetime = claims.get("exp", 0) - claims.get("iat", 0) if {"exp", "iat"} <= claims.keys() else None
    if claims.get("typ") == "access" and seen.token_kind == "access":
        # Only an exchange says what Kimi issues now; a token brought along may come from an older login.
        return held("typ=access; the lifetime of a token given, not exchanged, is not judged")
    if claims.get("typ") == "access" and lifetime == ACCESS_LIFETIME_S:
        return held()
    return differs(f"typ={claims.get('typ')!s}, lifetime {lifetime if lifetime is not None else 'unknown'} s")


# Catalog


@check("catalog.call", 5, "catalog", "GetAvailableModels {} answers availableModels")
def _catalog_call(seen: Observations) -> Verdict:
    failed = _failed_call(seen.catalog, "GetAvailableModels")
    if failed is not None:
        return failed
    assert seen.catalog is not None
    models = seen.catalog.field("availableModels", "available_models")
    if isinstance(models, list) and models:
        return held(f"{len(models)} models")
    return differs(f"answer {shape_text(seen.catalog.body)}")


@check("catalog.entries", 47, "catalog", "catalog entries carry id and reasoningEffortOptions (2026 bucket)")
def _catalog_entries(seen: Observations) -> Verdict:
    models = seen.catalog.field("availableModels", "available_models") if seen.catalog else None
    entries = [entry for entry in models if isinstance(entry, dict)] if isinstance(models, list) else []
    if not entries:
        return untested("no catalog entries")
    with_id = all(isinstance(entry.get("id") or entry.get("key"), str) for entry in entries)
    with_effort = any("reasoningEffortOptions" in entry or "reasoning_effort_options" in entry for entry in entries)
    if with_id and with_effort:
        return held()
    return differs(f"entry keys {sorted(entries[0])}")


# The plain answer


@check("chat.opens", 38, "plain", "the stream opens with op=set carrying chat.id")
def _opens(seen: Observations) -> Verdict:
    stream = _stream(seen, "plain")
    if isinstance(stream, Verdict):
        return stream
    first = stream.frames[0] if stream.frames else {}
    if first.get("op") == "set" and chat_id(Stream(200, frames=[first])):
        return held()
    return differs(f"first frame {shape_text(first)}")


@check("chat.id_format", 35, "plain", "chat ids are 36-character UUIDs")
def _id_format(seen: Observations) -> Verdict:
    stream = _stream(seen, "plain")
    if isinstance(stream, Verdict):
        return stream
    opened = chat_id(stream)
    if not opened:
        return untested("no chat id in the stream")
    if _UUID.fullmatch(opened):
        return held()
    alphabet = "".join(
        name
        for name, pattern in (("0-9", r"\d"), ("a-z", "[a-z]"), ("A-Z", "[A-Z]"), ("-", "-"))
        if re.search(pattern, opened)
    )
    return differs(f"a {len(opened)}-character id of [{alphabet}]")


@check("chat.assistant", 39, "plain", "a message frame with role=assistant carries the reply's id")
def _assistant(seen: Observations) -> Verdict:
    stream = _stream(seen, "plain")
    if isinstance(stream, Verdict):
        return stream
    for frame in stream.frames:
        message = frame.get("message")
        if isinstance(message, dict) and message.get("role") == "assistant" and isinstance(message.get("id"), str):
            return held()
    return differs(f"message frames {_masks(f for f in stream.frames if 'message' in f)}")


@check("chat.text", 40, "plain", "answer text: block.text set, then block.text.content appends")
def _text(seen: Observations) -> Verdict:
    stream = _stream(seen, "plain")
    if isinstance(stream, Verdict):
        return stream
    appends = [f for f in stream.frames if f.get("op") == "append" and f.get("mask") == "block.text.content"]
    if "block.text" in _masks(stream.frames) and appends:
        return held(f"{len(appends)} appends")
    return differs(f"frames {_masks(stream.frames)}")


@check("chat.done", 44, "plain", "the answer ends with done:{}")
def _done(seen: Observations) -> Verdict:
    stream = _stream(seen, "plain")
    if isinstance(stream, Verdict):
        return stream
    if any(frame.get("done") == {} for frame in stream.frames):
        return held()
    last = stream.frames[-1] if stream.frames else {}
    return differs(f"last frame {shape_text(last)}")


@check("chat.end_stream", 26, "plain", "an end envelope (flags 0x02) with {} or an empty error closes the stream")
def _end_stream(seen: Observations) -> Verdict:
    stream = _stream(seen, "plain")
    if isinstance(stream, Verdict):
        return stream
    if not stream.ends:
        return differs("no end envelope")
    flags, trailer = stream.ends[-1]
    if flags & FLAG_END_STREAM and isinstance(trailer, dict) and not trailer.get("error"):
        return held()
    return differs(f"flags {flags:#04x}, {shape_text(trailer)}")


@check("chat.json", 28, "all", "every data envelope holds a JSON object")
def _json(seen: Observations) -> Verdict:
    streams = _all_streams(seen)
    if not streams:
        return untested("no stream opened")
    bad = sum(stream.not_json for stream in streams)
    return differs(f"{bad} envelopes were empty or not JSON") if bad else held()


@check("chat.frames", 0, "all", "every frame is of a kind the 2026 captures show")
def _known_frames(seen: Observations) -> Verdict:
    streams = _all_streams(seen)
    if not streams:
        return untested("no stream opened")
    unknown: list[str] = []
    for stream in streams:
        for frame in stream.frames:
            names = [f"key {key}" for key in frame if key not in KNOWN_KEYS]
            mask = frame.get("mask")
            if isinstance(mask, str) and mask not in KNOWN_MASKS:
                names.append(f"mask {mask}")
            unknown += [name for name in names if name not in unknown]
    return differs("unknown " + ", ".join(unknown)) if unknown else held()


# Thinking


@check("thinking.reasoning", 41, "thinking", "reasoning arrives as block.think (or a thinking stage)")
def _reasoning(seen: Observations) -> Verdict:
    stream = _stream(seen, "thinking")
    if isinstance(stream, Verdict):
        return stream
    masks = _masks(stream.frames)
    if "block.think" in masks or "block.multiStage" in masks:
        return held()
    if any(text.get("flags") == "thinking" for text in _blocks(stream.frames, "text")):
        return held("as block.text with flags=thinking")
    return differs(f"frames {masks}")


@check("thinking.stage", 42, "thinking", f"a thinking stage goes {_STAGE_START} then {_STAGE_END}")
def _stage(seen: Observations) -> Verdict:
    stream = _stream(seen, "thinking")
    if isinstance(stream, Verdict):
        return stream
    statuses: list[str] = []
    for multi in _blocks(stream.frames, "multiStage"):
        stages = multi.get("stages")
        for stage in stages if isinstance(stages, list) else ():
            status = stage.get("status") if isinstance(stage, dict) else None
            if isinstance(status, str) and status not in statuses:
                statuses.append(status)
    if not statuses:
        return untested("no thinking stage was sent")
    if statuses == [_STAGE_START, _STAGE_END]:
        return held()
    return differs(" then ".join(statuses))


# Search


@check("search.results", 45, "search", "results: block.search.webPages, or a $web_search tool with searchChunks")
def _search_results(seen: Observations) -> Verdict:
    stream = _stream(seen, "search")
    if isinstance(stream, Verdict):
        return stream
    masks = _masks(stream.frames)
    if "block.search.webPages" in masks or {"block.tool.contents", "message.refs.searchChunks"} <= set(masks):
        return held()
    return differs(f"frames {masks}")


@check("search.markers", 46, "search", "citation markers are U+E3A0…U+E3A8 sequences or 🛠…🛠")
def _markers(seen: Observations) -> Verdict:
    stream = _stream(seen, "search")
    if isinstance(stream, Verdict):
        return stream
    text = _answer_text(stream)
    private = sorted({f"U+{ord(c):04X}" for c in _PRIVATE_USE.findall(text) if not _MARKER_CHARS.fullmatch(c)})
    if private:
        return differs(f"lone private-use characters {', '.join(private[:4])}")
    if not _MARKER_CHARS.search(text):
        return untested("the answer had no citation markers")
    return held()


@check("stream.exception", 48, "all", "a failure inside an answer is block.exception with error.reason")
def _exception(seen: Observations) -> Verdict:
    exceptions = [e for stream in _all_streams(seen) for e in _blocks(stream.frames, "exception")]
    if not exceptions:
        return untested("no failure happened inside an answer")
    error = exceptions[0].get("error")
    if isinstance(error, dict) and isinstance(error.get("reason"), str):
        return held(str(error["reason"]))
    return differs(f"exception {shape_text(exceptions[0])}")


# Upload, cancel, delete


@check("upload.direct", 7, "upload", "POST /apiv2-files/file/upload (multipart field file) answers file.id")
def _upload(seen: Observations) -> Verdict:
    failed = _failed_call(seen.upload, "the upload")
    if failed is not None:
        return failed
    assert seen.upload is not None
    file = seen.upload.field("file")
    if isinstance(file, dict) and isinstance(file.get("id"), str):
        return held()
    return differs(f"answer {shape_text(seen.upload.body)}")


@check("upload.parse", 51, "upload", "GetFileParseProgress reports PROCESS_STATUS_* until …_SUCCESS")
def _parse(seen: Observations) -> Verdict:
    if not seen.parse_statuses:
        return untested("no file to poll")
    if seen.parse_statuses[-1] == "PROCESS_STATUS_SUCCESS":
        return held(" then ".join(seen.parse_statuses))
    return differs(" then ".join(status or "no status" for status in seen.parse_statuses))


@check("upload.chat", 36, "upload", "a Chat naming the file as {file:{id, status}} is answered")
def _upload_chat(seen: Observations) -> Verdict:
    stream = _stream(seen, "upload")
    if isinstance(stream, Verdict):
        return stream
    return held() if _answer_text(stream) else differs(f"frames {_masks(stream.frames)}")


@check("cancel.call", 3, "cancel", "CancelChat {chat_id, message_id} stops the answer")
def _cancel(seen: Observations) -> Verdict:
    if not seen.cancel_sent:
        stream = seen.streams.get("cancel")
        return untested("the answer ended before it could be cancelled" if stream else "not reached")
    failed = _failed_call(seen.cancel, "CancelChat")
    if failed is not None:
        return failed
    if seen.cancel_to_end_s is None:
        return differs("the answer went on after CancelChat")
    return held(f"stopped {seen.cancel_to_end_s:.1f} s later")


@check("delete.call", 4, "delete", "DeleteChat {chat_id} answers {}")
def _delete(seen: Observations) -> Verdict:
    if not seen.deletes:
        return untested("no chat was opened")
    for reply in seen.deletes:
        failed = _failed_call(reply, "DeleteChat")
        if failed is not None:
            return failed
    return held(f"{len(seen.deletes)} chats deleted")


def judge(seen: Observations) -> list[tuple[Check, Verdict]]:
    return [(item, item.judge(seen)) for item in CHECKS]
