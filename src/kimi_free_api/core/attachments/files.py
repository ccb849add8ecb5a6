"""Files: an attachment ready for Kimi, the upload port, and the registry behind the OpenAI Files API.

A Kimi file belongs to the Kimi account that uploaded it, so every file uploaded through `POST /v1/files` records
its owner: a fingerprint of the Kimi token (never the token itself), so a later chat can find which of the
caller's tokens may use it, and other callers never see it. In server mode the fingerprint also covers the API key
it was uploaded with (core/owners.py): the server's accounts are shared, the files are not. The registry is an
interface with an in-memory implementation; persistent ones plug in behind it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from kimi_free_api.core.attachments.blobs import AttachmentRejected, Blob
from kimi_free_api.core.attachments.sniff import FileType, sniff
from kimi_free_api.core.errors import GatewayError
from kimi_free_api.core.owners import SEED

_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]+")
_NAME_MAX = 200


@dataclass(frozen=True, slots=True)
class LoadedFile:
    """The bytes of one attachment with the name and type Kimi will be told."""

    blob: Blob
    name: str
    type: FileType


class FileUploader(Protocol):
    async def upload_file(self, token: str, file: LoadedFile) -> str:
        """Uploads `file` with the account of `token` and waits until Kimi has parsed it; answers Kimi's file id.

        Raises `GatewayError`: `InvalidRequest` when Kimi cannot read the file, `AttachmentTimeout` when it takes
        too long, the usual upstream errors otherwise.
        """
        ...


class AttachmentTimeout(GatewayError):
    """Kimi did not finish parsing an attachment in time. Not an `UpstreamError`: another account would be no
    faster, so it does not fail over."""

    status = 504
    type = "server_error"
    code = "attachment_parse_timeout"


def clean_name(name: str) -> str:
    return _UNSAFE_NAME.sub("_", name.strip())[-_NAME_MAX:].strip()


def identify(blob: Blob, name: str, fallback: str) -> LoadedFile:
    """Names and types the bytes: the type from the bytes themselves, and a name whose suffix agrees with it."""
    if not blob.size:
        raise AttachmentRejected("it is empty", "empty_attachment")
    kind = sniff(blob.head)
    if kind is None:
        raise AttachmentRejected(
            "its content is not a document, text or image Kimi can read (audio, video and executables are not)",
            "unsupported_attachment_type",
        )
    return LoadedFile(blob, kind.file_name(clean_name(name) or fallback), kind)


def owner_of(token: str, key_owner: str = SEED) -> str:
    """Who owns a file: a fingerprint of the Kimi token that uploaded it (and of the API key, in server mode)."""
    key = b"\x00" + key_owner.encode() if key_owner else b""
    return hashlib.sha256(b"kimi-free-api file owner\x00" + token.encode() + key).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: str
    kimi_id: str
    owner: str
    filename: str
    bytes: int
    sha256: str
    media_type: str
    purpose: str
    created_at: int


class FileRegistry(Protocol):
    async def put(self, file: StoredFile) -> None: ...

    async def get(self, file_id: str) -> StoredFile | None: ...

    async def remove(self, file_id: str) -> bool: ...

    async def owned_by(self, owners: frozenset[str]) -> list[StoredFile]:
        """The files of these owners, oldest first."""
        ...


class InMemoryFileRegistry:
    def __init__(self) -> None:
        self._files: dict[str, StoredFile] = {}

    async def put(self, file: StoredFile) -> None:
        self._files[file.id] = file

    async def get(self, file_id: str) -> StoredFile | None:
        return self._files.get(file_id)

    async def remove(self, file_id: str) -> bool:
        return self._files.pop(file_id, None) is not None

    async def owned_by(self, owners: frozenset[str]) -> list[StoredFile]:
        return [file for file in self._files.values() if file.owner in owners]


class FileService:
    """The Files API: upload to Kimi with the caller's account, and find, list or forget the caller's files."""

    def __init__(self, registry: FileRegistry, uploader: FileUploader, max_bytes: int) -> None:
        self._registry = registry
        self.max_bytes = max_bytes
        self._uploader = uploader

    async def upload(self, token: str, key_owner: str, blob: Blob, filename: str, purpose: str) -> StoredFile:
        file = identify(blob, filename, "upload")
        kimi_id = await self._uploader.upload_file(token, file)
        stored = StoredFile(
            id=f"file-{secrets.token_hex(12)}",
            kimi_id=kimi_id,
            owner=owner_of(token, key_owner),
            filename=file.name,
            bytes=blob.size,
            sha256=blob.sha256,
            media_type=file.type.media_type,
            purpose=purpose,
            created_at=int(time.time()),
        )
        await self._registry.put(stored)
        return stored

    async def find(self, tokens: Iterable[str], key_owner: str, file_id: str) -> StoredFile | None:
        """The file, if one of `tokens` uploaded it (with this API key); otherwise None, whether or not it exists."""
        file = await self._registry.get(file_id)
        return file if file is not None and file.owner in {owner_of(t, key_owner) for t in tokens} else None

    async def delete(self, tokens: Iterable[str], key_owner: str, file_id: str) -> bool:
        """Forgets the file (Kimi keeps its copy: no deletion call for it is known)."""
        return await self.find(tokens, key_owner, file_id) is not None and await self._registry.remove(file_id)

    async def list(self, tokens: Iterable[str], key_owner: str) -> list[StoredFile]:
        return await self._registry.owned_by(frozenset(owner_of(t, key_owner) for t in tokens))
