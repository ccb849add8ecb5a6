"""Attachments end to end: data: URLs, http URLs from a loopback server, the Files API, big files, and failures.

The emulator's answer lists every file it received (name, size, sha256), so each test proves that the bytes
reached the upstream intact; the loopback file server records every request, so refusals prove nothing was fetched.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from kimi_free_api.core.conversation.prompt import PREAMBLE
from kimi_free_api.emulator import Account, Emulator, Fault
from kimi_free_api.emulator.answers import AttachedFile, expected_answer
from kimi_free_api.emulator.state import UploadedFile
from tests.e2e.support import Gateway, GatewayFactory, eventually, openai_client
from tests.fileserver import FileServer, pdf, png, stream_digest

CHAT = "/v1/chat/completions"
MiB = 1024 * 1024
FLOWS = ("direct", "presign")


@pytest.fixture
async def files_server() -> AsyncIterator[FileServer]:
    server = FileServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def user(*parts: dict[str, Any] | str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": p} if isinstance(p, str) else p for p in parts]}


def received(emulator: Emulator, request: int = -1) -> tuple[str, list[UploadedFile]]:
    """The prompt and the files of a Chat request the emulator got (file blocks and `refs` alike)."""
    body = emulator.state.chat_requests[request]
    blocks = body["message"]["blocks"]
    prompt = "\n".join(block["text"]["content"] for block in blocks if "text" in block)
    ids = [block["file"]["id"] for block in blocks if "file" in block] + body.get("refs", [])
    return prompt, [emulator.state.files[file_id] for file_id in ids]


def answer_for(emulator: Emulator, request: int = -1) -> str:
    prompt, files = received(emulator, request)
    return expected_answer(prompt, emulator.config, files=[AttachedFile(f.name, f.size, f.sha256) for f in files])


async def post(gateway: Gateway, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http,
        http.post(gateway.url + CHAT, json=body, headers={"Authorization": f"Bearer {token}"}) as response,
    ):
        return response.status, await response.json(content_type=None)


async def refused(gateway: Gateway, token: str, *parts: dict[str, Any] | str) -> tuple[int, dict[str, Any]]:
    status, payload = await post(gateway, token, {"model": "kimi", "messages": [user(*parts)]})
    assert set(payload) == {"error"}, payload
    return status, payload["error"]


# Getting the bytes to Kimi


@pytest.mark.parametrize("style", ["block", "refs"])
@pytest.mark.parametrize("flow", FLOWS)
async def test_data_urls_reach_kimi_intact(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account, flow: str, style: str
) -> None:
    gateway = await gateway_factory(kimi_upload_flow=flow, kimi_file_ref_style=style)
    picture, document = png(), pdf()
    async with openai_client(gateway, account.refresh_token) as client:
        reply = await client.chat.completions.create(
            model="kimi",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in these?"},
                        {"type": "image_url", "image_url": {"url": data_url("image/png", picture)}},
                        {
                            "type": "file",
                            "file": {"file_data": data_url("application/pdf", document), "filename": "report.pdf"},
                        },
                    ],
                }
            ],
        )
    prompt, files = received(emulator)
    assert prompt == "What is in these?\n[attachment 1: attachment-1.png]\n[attachment 2: report.pdf]"
    assert [(f.name, f.size, f.sha256, f.kind) for f in files] == [
        ("attachment-1.png", len(picture), sha(picture), "image"),
        ("report.pdf", len(document), sha(document), "file"),
    ]
    assert reply.choices[0].message.content == answer_for(emulator)
    body = emulator.state.chat_requests[-1]
    file_blocks = [block for block in body["message"]["blocks"] if "file" in block]
    assert (len(file_blocks), "refs" in body) == ((0, True) if style == "refs" else (2, False))
    assert emulator.state.storage_rejections == 0


async def test_http_urls_are_fetched_and_typed_by_their_bytes(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account, files_server: FileServer
) -> None:
    gateway = await gateway_factory(allow_loopback_fetch=True, kimi_upload_flow="presign")
    picture, document = png(seed=7), pdf("From a URL")
    files_server.files.update({"photo.php": picture, "download": document})
    status, reply = await post(
        gateway,
        account.refresh_token,
        {
            "model": "kimi",
            "messages": [
                user(
                    image(f"{files_server.url}/f/photo.php?sig=abc"),
                    {"type": "file", "file_url": {"url": f"{files_server.url}/f/download"}},  # the seed's shape
                    "Compare them.",
                )
            ],
        },
    )
    assert status == 200, reply
    prompt, files = received(emulator)
    assert prompt == "[attachment 1: photo.php.png]\n[attachment 2: download.pdf]\nCompare them."
    assert [(f.name, f.sha256, f.kind) for f in files] == [
        ("photo.php.png", sha(picture), "image"),  # sniffed: an image whatever the URL says
        ("download.pdf", sha(document), "file"),
    ]
    assert reply["choices"][0]["message"]["content"] == answer_for(emulator)
    assert sorted(files_server.hits) == ["/f/download", "/f/photo.php?sig=abc"]


async def test_bare_base64_file_data(client: openai.AsyncOpenAI, emulator: Emulator) -> None:
    text = "第一行\nsecond line\n".encode()
    reply = await client.chat.completions.create(
        model="kimi",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "file", "file": {"file_data": base64.b64encode(text).decode(), "filename": "a.md"}}
                ],
            }
        ],
    )
    [file] = received(emulator)[1]
    assert (file.name, file.size, file.sha256) == ("a.md", len(text), sha(text))
    assert reply.choices[0].message.content == answer_for(emulator)


async def test_streamed_answer_with_an_attachment(client: openai.AsyncOpenAI, emulator: Emulator) -> None:
    stream = await client.chat.completions.create(
        model="kimi",
        messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url("x/y", png())}}]}],
        stream=True,
    )
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
    assert text == answer_for(emulator)
    assert received(emulator)[0] == "[attachment 1: attachment-1.png]"


@pytest.mark.parametrize("flow", FLOWS)
async def test_a_large_file_streams_through_without_being_held_in_memory(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account, files_server: FileServer, flow: str
) -> None:
    size = 48 * MiB
    gateway = await gateway_factory(allow_loopback_fetch=True, kimi_upload_flow=flow)
    url = f"{files_server.url}/stream/{size}?length=0"  # no Content-Length: the cap must hold while streaming
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline, _ = tracemalloc.get_traced_memory()
        status, reply = await refused_or_answer(gateway, account.refresh_token, url)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 200, reply
    [file] = received(emulator)[1]
    assert (file.size, file.sha256) == (size, stream_digest(size))
    assert peak - baseline < 16 * MiB, f"the gateway held {(peak - baseline) / MiB:.1f} MiB at once"


async def refused_or_answer(gateway: Gateway, token: str, url: str) -> tuple[int, dict[str, Any]]:
    return await post(gateway, token, {"model": "kimi", "messages": [user("Read this.", image(url))]})


@pytest.mark.parametrize("length", ["0", "1"], ids=["chunked", "content-length"])
async def test_a_too_large_file_is_refused_mid_download(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account, files_server: FileServer, length: str
) -> None:
    size = 64 * MiB
    gateway = await gateway_factory(allow_loopback_fetch=True, max_attachment_bytes=MiB)
    status, error = await refused(
        gateway, account.refresh_token, "Read this.", image(f"{files_server.url}/stream/{size}?length={length}")
    )
    assert (status, error["code"], error["param"]) == (400, "attachment_too_large", "messages[0].content[1]")
    assert "1 MiB limit" in error["message"]
    await eventually(lambda: len(files_server.streams) == 1)
    [(written, completed)] = files_server.streams
    assert not completed and written < size
    assert emulator.state.requests["upload"] == emulator.state.requests["chat"] == 0


# Several turns, continued chats, limits


async def test_attachments_of_every_turn_are_uploaded_once_and_placed(
    client: openai.AsyncOpenAI, emulator: Emulator
) -> None:
    picture, document = data_url("image/png", png()), data_url("application/pdf", pdf())
    await client.chat.completions.create(
        model="kimi",
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": picture}}],
            },
            {"role": "assistant", "content": "A picture."},
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": picture}},
                    {"type": "text", "text": "Same one, and this?"},
                    {"type": "file", "file": {"file_data": document, "filename": "report.pdf"}},
                ],
            },
        ],
    )
    prompt, files = received(emulator)
    assert prompt == (
        f"{PREAMBLE}\n\n<user>\nLook\n[attachment 1: attachment-1.png]\n</user>\n\n"
        "<assistant>\nA picture.\n</assistant>\n\n"
        "<user>\n[attachment 1: attachment-1.png]\nSame one, and this?\n[attachment 2: report.pdf]\n</user>"
    )
    assert [f.name for f in files] == ["attachment-1.png", "report.pdf"]
    assert emulator.state.requests["upload"] == 2


async def test_a_continued_chat_uploads_only_the_new_turn(
    gateway: Gateway, emulator: Emulator, account: Account
) -> None:
    first_turn = user("Look", image(data_url("image/png", png())))
    status, first = await post(
        gateway, account.refresh_token, {"model": "kimi", "messages": [first_turn], "conversation_id": "none"}
    )
    assert status == 200, first
    assert emulator.state.requests["upload"] == 1
    pdf_part = {"type": "file", "file": {"file_data": data_url("x/y", pdf()), "filename": "b.pdf"}}
    history = [first_turn, first["choices"][0]["message"], user("And this?", pdf_part)]
    status, _ = await post(
        gateway, account.refresh_token, {"model": "kimi", "messages": history, "conversation_id": first["id"]}
    )
    assert status == 200
    prompt, files = received(emulator)
    assert (prompt, [f.name for f in files]) == ("And this?\n[attachment 1: b.pdf]", ["b.pdf"])
    assert emulator.state.chat_requests[-1]["chat_id"] == first["id"]
    assert emulator.state.requests["upload"] == 2


async def test_too_many_attachments(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account, files_server: FileServer
) -> None:
    gateway = await gateway_factory(allow_loopback_fetch=True, max_attachments=2)
    files_server.files["a.png"] = png()
    url = f"{files_server.url}/f/a.png"
    status, error = await refused(gateway, account.refresh_token, image(url), image(url), "text", image(url))
    assert (status, error["code"], error["param"]) == (400, "too_many_attachments", "messages[0].content[3]")
    assert files_server.hits == []


# The Files API


async def test_files_api_round_trip(client: openai.AsyncOpenAI, emulator: Emulator) -> None:
    document = pdf("Uploaded once")
    created = await client.files.create(file=("notes.pdf", document, "application/pdf"), purpose="user_data")
    assert created.id.startswith("file-")
    assert (created.object, created.bytes, created.filename, created.purpose, created.status) == (
        "file", len(document), "notes.pdf", "user_data", "processed",
    )  # fmt: skip
    assert abs(created.created_at - time.time()) < 60
    assert (await client.files.retrieve(created.id)).filename == "notes.pdf"
    assert [f.id async for f in client.files.list()] == [created.id]
    [uploaded] = emulator.state.files.values()
    assert (uploaded.size, uploaded.sha256) == (len(document), sha(document))

    reply = await client.chat.completions.create(
        model="kimi",
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "Summarise"}, {"type": "file", "file": {"file_id": created.id}}],
            }
        ],
    )
    assert received(emulator)[0] == "Summarise\n[attachment 1: notes.pdf]"
    assert reply.choices[0].message.content == answer_for(emulator)
    assert emulator.state.requests["upload"] == 1, "the chat reuses Kimi's copy"

    deleted = await client.files.delete(created.id)
    assert (deleted.id, deleted.deleted) == (created.id, True)
    with pytest.raises(openai.NotFoundError):
        await client.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError) as caught:  # as for a file that never existed
        await client.chat.completions.create(
            model="kimi", messages=[{"role": "user", "content": [{"type": "file", "file": {"file_id": created.id}}]}]
        )
    assert caught.value.code == "file_not_found"


async def test_files_with_a_gateway_api_key_belong_to_a_server_account(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    accounts = [emulator.create_account(f"server{n}") for n in range(3)]
    key = "files-api-key-0123456789"
    gateway = await gateway_factory(kimi_tokens=",".join(a.refresh_token for a in accounts), api_keys=key)
    async with openai_client(gateway, key) as client:
        created = await client.files.create(
            file=("brief.pdf", pdf("Server side"), "application/pdf"), purpose="user_data"
        )
        assert [f.id async for f in client.files.list()] == [created.id]
        for _ in range(3):  # whichever account would be next in turn, the file's owner answers
            await client.chat.completions.create(
                model="kimi",
                messages=[{"role": "user", "content": [{"type": "file", "file": {"file_id": created.id}}]}],
            )
    [uploaded] = emulator.state.files.values()
    assert received(emulator)[1] == [uploaded]
    assert emulator.state.requests["upload"] == 1
    # Every chat ran on the account that owns the file, never on the other two.
    assert set(emulator.state.max_concurrent_streams) == {uploaded.owner}


async def test_a_file_belongs_to_the_account_that_uploaded_it(
    gateway: Gateway, emulator: Emulator, account: Account
) -> None:
    bob = emulator.create_account("bob")
    async with openai_client(gateway, account.refresh_token) as alice_client:
        created = await alice_client.files.create(file=("a.png", png()), purpose="vision")
    part = {"type": "file", "file": {"file_id": created.id}}
    async with openai_client(gateway, bob.refresh_token) as bob_client:
        with pytest.raises(openai.NotFoundError):
            await bob_client.files.retrieve(created.id)
        assert [f async for f in bob_client.files.list()] == []
    status, error = await refused(gateway, bob.refresh_token, part)
    assert (status, error["code"], error["param"]) == (404, "file_not_found", "messages[0].content[0]")
    assert "account that uploaded it" in error["message"]
    # With both accounts in the bearer, the chat runs on the owner's: the emulator only lets the owner use it.
    status, reply = await post(
        gateway, f"{bob.refresh_token},{account.refresh_token}", {"model": "kimi", "messages": [user("Hi", part)]}
    )
    assert status == 200, reply
    assert reply["choices"][0]["message"]["content"] == answer_for(emulator)


async def test_files_api_refusals(http: aiohttp.ClientSession, account: Account, emulator: Emulator) -> None:
    headers = {"Authorization": f"Bearer {account.refresh_token}"}
    form = aiohttp.FormData()
    form.add_field("purpose", "user_data")
    form.add_field("file", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00", filename="clip.mp4")
    async with http.post("/v1/files", data=form, headers=headers) as response:
        error = (await response.json())["error"]
    assert (response.status, error["code"], error["param"]) == (400, "unsupported_attachment_type", "file")
    form = aiohttp.FormData()
    form.add_field("purpose", "fun")
    form.add_field("file", pdf(), filename="a.pdf")
    async with http.post("/v1/files", data=form, headers=headers) as response:
        assert (response.status, (await response.json())["error"]["param"]) == (400, "purpose")
    async with http.post("/v1/files", json={"file": "x"}, headers=headers) as response:
        assert (response.status, (await response.json())["error"]["code"]) == (400, "invalid_content_type")
    async with http.get("/v1/files/file-nope", headers=headers) as response:
        assert response.status == 404
    assert emulator.state.requests["upload"] == 0


# Server-side request forgery: loopback fetching is NOT allowed here


@pytest.fixture
async def v6_files_server() -> AsyncIterator[FileServer]:
    server = FileServer()
    await server.start("::1")
    try:
        yield server
    finally:
        await server.stop()


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("localhost", "loopback"),
        ("[::1]", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("127.1", "loopback"),
        ("2130706433", "loopback"),
        ("0x7f000001", "loopback"),
    ],
)
async def test_loopback_urls_are_refused_and_never_fetched(
    gateway: Gateway,
    emulator: Emulator,
    account: Account,
    files_server: FileServer,
    v6_files_server: FileServer,
    host: str,
    reason: str,
) -> None:
    port = v6_files_server.port if host == "[::1]" else files_server.port
    files_server.files["secret.png"] = v6_files_server.files["secret.png"] = png()
    status, error = await refused(gateway, account.refresh_token, "Look", image(f"http://{host}:{port}/f/secret.png"))
    assert (status, error["code"], error["param"]) == (400, "attachment_url_refused", "messages[0].content[1]")
    assert f"{reason} address" in error["message"]
    assert files_server.hits == v6_files_server.hits == []
    assert emulator.state.requests["upload"] == emulator.state.requests["chat"] == 0


# Failures name the attachment, and leave no chat behind


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("part", "code", "shown"),
    [
        (
            image("http://127.0.0.1:{closed}/scan.pdf?token=SECRET#frag"),
            "attachment_unreachable",
            "http://127.0.0.1:{closed}/scan.pdf",
        ),
        (image("{server}/status/404"), "attachment_unreachable", "HTTP 404"),
        (image("{server}/f/missing.png"), "attachment_unreachable", "HTTP 404"),
        (
            image(data_url("video/mp4", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00isom")),
            "unsupported_attachment_type",
            "a data: URL",
        ),
        (image(data_url("image/png", b"\x7fELF\x02\x01\x01\x00" * 4)), "unsupported_attachment_type", "audio, video"),
        (image("data:image/png;base64,iVBOR*w0K"), "invalid_data_url", "base64"),
        (image("data:image png;base64,AAAA"), "invalid_data_url", "media type"),
        (image("data:image/png;base64,"), "invalid_data_url", "empty"),
        ({"type": "file", "file": {"file_data": "!!!!", "filename": "x.txt"}}, "invalid_data_url", "x.txt"),
        (image("ftp://127.0.0.1/x.png"), "invalid_attachment_url", "http(s) URL"),
    ],
)
async def test_unusable_attachments_are_400s_that_name_them(
    gateway_factory: GatewayFactory,
    emulator: Emulator,
    account: Account,
    files_server: FileServer,
    part: dict[str, Any],
    code: str,
    shown: str,
) -> None:
    gateway = await gateway_factory(allow_loopback_fetch=True)
    values = {"closed": _closed_port(), "server": files_server.url}
    part = _format(part, values)
    status, error = await refused(gateway, account.refresh_token, "Look", part)
    assert (status, error["code"], error["param"]) == (400, code, "messages[0].content[1]"), error
    assert shown.format(**values) in error["message"]
    assert "SECRET" not in error["message"] and "frag" not in error["message"]
    assert emulator.state.requests["chat"] == 0


def _format(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {key: _format(item, values) for key, item in value.items()}
    return value.format(**values) if isinstance(value, str) and not value.startswith("data:") else value


@pytest.mark.parametrize("flow", FLOWS)
async def test_kimi_failing_to_parse_is_a_400(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account, flow: str
) -> None:
    gateway = await gateway_factory(kimi_upload_flow=flow)
    emulator.add_fault(Fault(kind="parse_failed", endpoint="parse"))
    part = {"type": "file", "file": {"file_data": data_url("application/pdf", pdf()), "filename": "report.pdf"}}
    status, error = await refused(gateway, account.refresh_token, part)
    assert (status, error["code"], error["param"]) == (400, "attachment_parse_failed", "messages[0].content[0]")
    assert "report.pdf" in error["message"] and "parsing failed" in error["message"]
    assert emulator.state.requests["chat"] == 0


@pytest.mark.parametrize("flow", FLOWS)
async def test_slow_parsing_times_out(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account, flow: str
) -> None:
    gateway = await gateway_factory(kimi_upload_flow=flow, file_parse_timeout_s=0.6)
    emulator.configure(parse_delay_ms=60_000)
    started = time.monotonic()
    status, error = await refused(gateway, account.refresh_token, image(data_url("image/png", png())))
    assert (status, error["code"], error["param"]) == (504, "attachment_parse_timeout", "messages[0].content[0]")
    assert time.monotonic() - started < 5, "one account's wait, no failover"
    assert emulator.state.requests["chat"] == 0
    polls = emulator.state.requests["parse"]
    # direct: polled with backoff, not in a tight loop; presign: one parse_process call held until the deadline
    assert 1 < polls < 10 if flow == "direct" else polls == 1


async def test_a_failed_storage_upload_is_a_502(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory(kimi_upload_flow="presign")
    emulator.add_fault(Fault(kind="internal", endpoint="upload", times=10))
    status, error = await refused(gateway, account.refresh_token, "Look", image(data_url("image/png", png())))
    assert (status, error["code"], error["param"]) == (502, "attachment_upload_failed", "messages[0].content[1]")
    assert "HTTP 500" in error["message"]
    assert emulator.state.requests["chat"] == 0
    assert emulator.state.requests["register"] == 0, "nothing half-uploaded was registered"
    assert emulator.state.storage_rejections == 0


async def test_an_upload_refused_for_a_stale_token_is_sent_again_after_a_refresh(
    client: openai.AsyncOpenAI, emulator: Emulator
) -> None:
    emulator.add_fault(Fault(kind="unauthenticated", endpoint="upload"))
    document = pdf("twice")
    reply = await client.chat.completions.create(
        model="kimi",
        messages=[{"role": "user", "content": [{"type": "file", "file": {"file_data": data_url("x/y", document)}}]}],
    )
    [file] = received(emulator)[1]
    assert (file.size, file.sha256) == (len(document), sha(document)), "the whole body went out again"
    assert emulator.state.requests["upload"] == 2
    assert reply.choices[0].message.content == answer_for(emulator)


async def test_a_refused_direct_upload_keeps_kimis_status(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory(kimi_upload_flow="direct")
    emulator.add_fault(Fault(kind="unavailable", endpoint="upload", times=10))
    status, error = await refused(gateway, account.refresh_token, image(data_url("image/png", png())))
    assert (status, error["code"], error["param"]) == (503, "service_unavailable", "messages[0].content[0]")
    assert error["message"].startswith("The attachment at messages[0].content[0] (a data: URL): Kimi is unavailable")
    assert emulator.state.requests["chat"] == 0


async def test_file_ids_outlive_a_restart(
    gateway_factory: GatewayFactory, account: Account, emulator: Emulator, tmp_path: Any
) -> None:
    data_dir = str(tmp_path / "kept")
    first = await gateway_factory(data_dir=data_dir)
    async with openai_client(first, account.refresh_token) as client:
        created = await client.files.create(file=("notes.pdf", pdf("Kept across restarts")), purpose="user_data")
    await first.stop()
    again = await gateway_factory(data_dir=data_dir)
    async with openai_client(again, account.refresh_token) as client:
        assert (await client.files.retrieve(created.id)).model_dump() == created.model_dump()
        assert [f.id async for f in client.files.list()] == [created.id]
        await client.chat.completions.create(
            model="kimi", messages=[{"role": "user", "content": [{"type": "file", "file": {"file_id": created.id}}]}]
        )
    assert emulator.state.requests["upload"] == 1, "the restarted gateway reuses Kimi's copy"
