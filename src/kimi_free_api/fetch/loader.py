"""The core's `AttachmentLoader`: the bytes behind an attachment reference, from a data: URL, base64 or http(s)."""

from __future__ import annotations

from kimi_free_api.core.attachments.attachments import Download
from kimi_free_api.core.attachments.blobs import BlobWriter
from kimi_free_api.core.request import AttachmentRef
from kimi_free_api.fetch.dataurl import decode_base64, decode_data_url
from kimi_free_api.fetch.fetcher import SafeFetcher


class SourceLoader:
    def __init__(self, fetcher: SafeFetcher, max_bytes: int) -> None:
        self._fetcher = fetcher
        self._max_bytes = max_bytes

    async def load(self, ref: AttachmentRef) -> Download:
        writer = BlobWriter(self._max_bytes)
        name = ""
        try:
            if ref.kind == "base64":
                await decode_base64(ref.value, writer, self._max_bytes)
            elif ref.value[:5].lower() == "data:":
                await decode_data_url(ref.value, writer, self._max_bytes)
            else:
                name = await self._fetcher.fetch(ref.value, writer)
            return Download(await writer.finish(), name)
        except BaseException:
            writer.discard()
            raise
