"""The emulator's file uploads: the direct flow, the presign flow with its object storage, faults, and answers
that list the attached files."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import aiohttp
import pytest

from kimi_free_api.emulator import Account, Emulator, Fault
from kimi_free_api.emulator.answers import AttachedFile, expected_answer
from kimi_free_api.emulator.files import DIRECT_UPLOAD, PARSE_PROCESS, PARSE_PROGRESS, PRESIGN, REGISTER
from tests.tls import HTTPS

from .client import call, chat, chat_body

DATA = b"%PDF-1.4\n" + bytes(range(256)) * 300
SHA = hashlib.sha256(DATA).hexdigest()


async def _direct(session: aiohttp.ClientSession, token: str, data: bytes = DATA, name: str = "a.pdf") -> Any:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/pdf")
    async with session.post(DIRECT_UPLOAD, data=form, headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json()


async def _progress(session: aiohttp.ClientSession, token: str, file_id: str) -> str:
    status, body = await call(session, PARSE_PROGRESS, token, {"file_ids": [file_id]})
    assert status == 200, body
    [progress] = body["progresses"]
    assert progress["fileId"] == file_id
    return str(progress["status"])


async def _rest(session: aiohttp.ClientSession, path: str, token: str, body: dict[str, Any]) -> tuple[int, Any]:
    return await call(session, path, token, body)


async def _presigned_upload(
    session: aiohttp.ClientSession, token: str, action: str = "file", data: bytes = DATA
) -> dict[str, Any]:
    status, signed = await _rest(session, PRESIGN, token, {"action": action, "name": "a.pdf"})
    assert status == 200, signed
    async with session.put(signed["url"], data=data) as response:
        assert response.status == 200, await response.text()
    return dict(signed)


def _chat_with_files(*file_ids: str, refs: bool = False) -> dict[str, Any]:
    body = chat_body("what is this?")
    if refs:
        body["refs"] = list(file_ids)
    else:
        body["message"]["blocks"] += [{"message_id": "", "file": {"id": file_id}} for file_id in file_ids]
    return body


async def test_direct_upload_then_progress(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.configure(parse_delay_ms=150)
    status, body = await _direct(session, account.access_token)
    assert status == 200, body
    file = body["file"]
    assert (file["meta"]["name"], file["meta"]["sizeBytes"], file["meta"]["contentType"]) == (
        "a.pdf",
        str(len(DATA)),
        "application/pdf",
    )
    assert await _progress(session, account.access_token, file["id"]) == "PROCESS_STATUS_PROCESSING"
    await asyncio.sleep(0.2)
    assert await _progress(session, account.access_token, file["id"]) == "PROCESS_STATUS_SUCCESS"
    [listed] = emulator.state["files"]
    assert listed == {
        "id": file["id"],
        "owner": account.user_id,
        "name": "a.pdf",
        "size": len(DATA),
        "sha256": SHA,
        "kind": "file",
        "status": "parsed",
    }
    assert emulator.state.requests["upload"] == 1 and emulator.state.requests["parse"] == 2


async def test_direct_flow_answers_in_snake_case(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.configure(casing="snake", parse_delay_ms=0)
    _, body = await _direct(session, account.access_token)
    file_id = body["file"]["id"]
    assert body["file"]["meta"]["size_bytes"] == str(len(DATA))
    _, progress = await call(session, PARSE_PROGRESS, account.access_token, {"fileIds": [file_id]})
    assert progress == {"progresses": [{"file_id": file_id, "status": "PROCESS_STATUS_SUCCESS"}]}


async def test_uploads_need_a_token_and_a_file_field(session: aiohttp.ClientSession, account: Account) -> None:
    assert (await _direct(session, "nope"))[0] == 401
    form = aiohttp.FormData()
    form.add_field("other", b"x", filename="x")
    async with session.post(DIRECT_UPLOAD, data=form, headers={"Authorization": f"Bearer {account.access_token}"}) as r:
        assert (r.status, (await r.json())["code"]) == (400, "invalid_argument")


@pytest.mark.parametrize("action", ["file", "image"])
async def test_presign_flow(session: aiohttp.ClientSession, account: Account, emulator: Emulator, action: str) -> None:
    emulator.configure(parse_delay_ms=100)
    token = account.access_token
    signed = await _presigned_upload(session, token, action)
    assert signed["url"].startswith(f"{emulator.base_url}/object-storage/")
    body = (
        {"type": "image", "file_id": signed["file_id"], "name": "a.pdf"}
        if action == "image"
        else {"type": "file", "name": "a.pdf", "object_name": signed["object_name"], "file_id": ""}
    )
    status, registered = await _rest(session, REGISTER, token, body)
    assert (status, registered["status"], registered["size"]) == (200, "initialized", len(DATA))
    assert (await _rest(session, REGISTER, token, body))[1]["id"] == registered["id"], "registration is idempotent"
    status, parsed = await _rest(session, PARSE_PROCESS, token, {"ids": [registered["id"]], "timeout": 5000})
    assert parsed == {"files": [{"id": registered["id"], "status": "parsed"}]}
    [file] = emulator.state.files.values()
    assert (file.size, file.sha256, file.kind) == (len(DATA), SHA, action)


@pytest.mark.parametrize("emulator", [HTTPS], indirect=True)
async def test_on_https_the_urls_it_hands_out_are_https(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    assert emulator.base_url.startswith("https://127.0.0.1:")
    signed = await _presigned_upload(session, account.access_token)  # the PUT goes to the URL handed out
    assert signed["url"].startswith(f"{emulator.base_url}/object-storage/")
    status, body = await _direct(session, account.access_token)
    assert status == 200, body
    assert body["file"]["blob"]["signUrl"].startswith(f"{emulator.base_url}/apiv2-files/sign-obj/")


async def test_object_storage_takes_no_kimi_credentials(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    status, signed = await _rest(session, PRESIGN, account.access_token, {"action": "file", "name": "a.pdf"})
    for headers in ({"Authorization": f"Bearer {account.access_token}"}, {"Cookie": "kimi-auth=x"}):
        async with session.put(signed["url"], data=DATA, headers=headers) as response:
            assert response.status == 400
            assert "InvalidArgument" in await response.text()
    assert emulator.state.storage_rejections == 2
    async with session.put(signed["url"].replace("signature=", "signature=0"), data=DATA) as response:
        assert response.status == 403
    async with session.put(signed["url"].split("?")[0], data=DATA) as response:
        assert response.status == 403

    async def chunked() -> Any:
        yield DATA

    async with session.put(signed["url"], data=chunked()) as response:
        assert response.status == 411, "object storage wants a Content-Length"
    body = {"type": "file", "name": "a.pdf", "object_name": signed["object_name"], "file_id": ""}
    status, refused = await _rest(session, REGISTER, account.access_token, body)
    assert (status, refused["error_type"]) == (400, "invalid_argument"), "nothing arrived, nothing to register"


async def test_upload_and_parse_faults(session: aiohttp.ClientSession, account: Account, emulator: Emulator) -> None:
    token = account.access_token
    emulator.add_fault(Fault(kind="internal", endpoint="upload"))
    status, signed = await _rest(session, PRESIGN, token, {"action": "file", "name": "a.pdf"})
    async with session.put(signed["url"], data=DATA) as response:
        assert (response.status, response.content_type) == (500, "application/xml")
    emulator.add_fault(Fault(kind="unavailable", endpoint="upload"))
    assert (await _direct(session, token))[0] == 503
    emulator.add_fault(Fault(kind="rate_limited", endpoint="presign"))
    status, refused = await _rest(session, PRESIGN, token, {"action": "file", "name": "a.pdf"})
    assert status == 429 and "error_type" in refused

    _, body = await _direct(session, token)
    emulator.add_fault(Fault(kind="parse_failed", endpoint="parse"))
    assert await _progress(session, token, body["file"]["id"]) == "PROCESS_STATUS_FAIL"
    signed = await _presigned_upload(session, token)
    file_body = {"type": "file", "name": "a.pdf", "object_name": signed["object_name"], "file_id": ""}
    registered = (await _rest(session, REGISTER, token, file_body))[1]
    emulator.add_fault(Fault(kind="parse_failed", endpoint="parse"))
    status, parsed = await _rest(session, PARSE_PROCESS, token, {"ids": [registered["id"]], "timeout": 100})
    assert parsed == {"files": [{"id": registered["id"], "status": "failed"}]}


@pytest.mark.parametrize("refs", [False, True])
async def test_answers_list_the_attached_files(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator, refs: bool
) -> None:
    emulator.configure(parse_delay_ms=0)
    other = b"%PDF-1.7\nanother file"
    first = (await _direct(session, account.access_token))[1]["file"]["id"]
    second = (await _direct(session, account.access_token, other, "b.pdf"))[1]["file"]["id"]
    reply = await chat(session, account.access_token, _chat_with_files(first, second, refs=refs))
    other_sha = hashlib.sha256(other).hexdigest()
    files = [AttachedFile("a.pdf", len(DATA), SHA), AttachedFile("b.pdf", len(other), other_sha)]
    assert list(reply.block_texts().values())[-1] == expected_answer("what is this?", emulator.config, files=files)
    assert files[0].line == f"File: a.pdf ({len(DATA)} bytes, sha256 {SHA[:16]})\n"


async def test_chats_refer_only_to_the_accounts_parsed_files(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.configure(parse_delay_ms=60_000)
    unparsed = (await _direct(session, account.access_token))[1]["file"]["id"]
    intruder = emulator.create_account("mallory")
    for token, file_id, expected in (
        (account.access_token, "d0000000000000000000", "file.not_found"),
        (intruder.access_token, unparsed, "file.not_found"),
        (account.access_token, unparsed, "not parsed"),
    ):
        reply = await chat(session, token, _chat_with_files(file_id))
        assert (reply.status, reply.body["code"]) == (400, "invalid_argument")
        assert expected in reply.body["message"]
    assert emulator.state.live_chats == 0
