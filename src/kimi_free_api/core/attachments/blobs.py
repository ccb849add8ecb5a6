"""The bytes of one attachment on their way from the client (or a URL) to Kimi, never all in memory at once.

A `BlobWriter` takes the bytes as they arrive, counting, capping and hashing them, and spools them to a temporary
file once they outgrow a small memory buffer; the finished `Blob` is read back in chunks for the upload. File I/O
and hashing of each batch run in a worker thread, so a 100 MiB attachment never blocks the event loop for long.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import AsyncIterator
from typing import IO

SPOOL_MEMORY_BYTES = 1024 * 1024  # attachments up to this size never touch the disk
CHUNK_BYTES = 1024 * 1024
HEAD_BYTES = 8192  # kept in memory for sniffing the type


class AttachmentRejected(Exception):
    """The attachment itself cannot be used (too large, unreachable, undecodable …): the client's problem, a 400.

    `reason` completes the sentence "The attachment … cannot be used: …"; the core adds which attachment it is.
    """

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def human_size(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"


def too_large(limit: int) -> AttachmentRejected:
    return AttachmentRejected(f"it is larger than the {human_size(limit)} limit", "attachment_too_large")


class Blob:
    """Finished bytes: `size`, `sha256` (hex), the first bytes in `head`, the rest readable with `chunks()`."""

    __slots__ = ("_spool", "head", "sha256", "size")

    def __init__(self, spool: IO[bytes], size: int, sha256: str, head: bytes) -> None:
        self._spool = spool
        self.size = size
        self.sha256 = sha256
        self.head = head

    async def chunks(self, size: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
        """All the bytes from the start, in pieces; each call starts over (an upload may be retried)."""
        offset = 0
        while offset < self.size:
            data = await asyncio.to_thread(self._read_at, offset, size)
            if not data:
                return
            offset += len(data)
            yield data

    def _read_at(self, offset: int, size: int) -> bytes:
        self._spool.seek(offset)
        return self._spool.read(size)

    def close(self) -> None:
        self._spool.close()


class BlobWriter:
    """Collects bytes into a `Blob`; `write` raises `AttachmentRejected` as soon as they pass `limit`."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._size = 0
        self._hash = hashlib.sha256()
        self._head = bytearray()
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: bytes) -> None:
        if not data:
            return
        self._size += len(data)
        if self._size > self._limit:
            raise too_large(self._limit)
        if len(self._head) < HEAD_BYTES:
            self._head += data[: HEAD_BYTES - len(self._head)]
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= CHUNK_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._pending_size = 0
            await asyncio.to_thread(self._store, data)

    def _store(self, data: bytes) -> None:
        self._hash.update(data)
        self._spool.write(data)

    async def finish(self) -> Blob:
        await self._flush()
        return Blob(self._spool, self._size, self._hash.hexdigest(), bytes(self._head))

    def discard(self) -> None:
        self._spool.close()
