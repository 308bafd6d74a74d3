"""Reading uploads from requests: audio streamed to disk under a cap, images read under a cap."""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import BodyPartReader, web

from app.errors import BadRequest, InvalidInput, TooLarge, UnsupportedMediaType
from app.media.store import MediaStore, TooLargeUpload
from app.web.params import json_body

MAX_FIELD = 16 * 1024
MAX_IMAGE = 10 * 1024 * 1024
CHUNK = 256 * 1024


@dataclass
class Upload:
    temp: Path
    size: int
    sha256: str
    filename: str


@dataclass
class UploadForm:
    files: list[Upload] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)

    def discard(self) -> None:
        for upload in self.files:
            upload.temp.unlink(missing_ok=True)


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while True:
        chunk = await part.read_chunk(CHUNK)
        if not chunk:
            return
        yield chunk


async def _field_text(part: BodyPartReader) -> str:
    data = bytearray()
    async for chunk in _chunks(part):
        data += chunk
        if len(data) > MAX_FIELD:
            raise TooLarge("A form field is too large")
    return data.decode("utf-8", errors="replace")


async def _parts(request: web.Request) -> AsyncIterator[BodyPartReader]:
    """The parts of a multipart body; a malformed body is 400 (aiohttp raises ValueError)."""
    try:
        reader = await request.multipart()
    except (ValueError, KeyError) as exc:
        raise BadRequest("A multipart body needs a boundary") from exc
    while True:
        try:
            part = await reader.next()
        except ValueError as exc:
            raise BadRequest(f"Malformed multipart body: {exc}") from exc
        if part is None:
            return
        if not isinstance(part, BodyPartReader):
            raise InvalidInput("Nested multipart bodies are not accepted")
        yield part


async def read_audio_form(
    request: web.Request, media: MediaStore, max_bytes: int, file_field: str = "file"
) -> UploadForm:
    """A multipart form: every `file` part streamed to a temporary file (413 past the cap, the
    temporary file removed), the other parts as text."""
    form = UploadForm()
    try:
        async for part in _parts(request):
            if part.name == file_field and part.filename is not None:
                try:
                    temp, size, sha = await media.receive(_chunks(part), max_bytes)
                except TooLargeUpload as exc:
                    raise TooLarge(f"The file is larger than {max_bytes // (1024 * 1024)} MiB") from exc
                if size == 0:
                    temp.unlink(missing_ok=True)
                    raise InvalidInput("The file is empty", details={"fields": {"file": "is empty"}})
                # aiohttp's own client percent-encodes the name; browsers and curl send it as is.
                form.files.append(Upload(temp, size, sha, Path(unquote(part.filename)).name[:255]))
            elif part.name:
                form.fields[part.name] = await _field_text(part)
    except BaseException:
        form.discard()
        raise
    return form


async def read_json_audio(request: web.Request, media: MediaStore, max_bytes: int) -> UploadForm:
    """A JSON body carrying a small file as base64 in `file_base64` (bodies are capped at 1 MiB)."""
    body = await json_body(request)
    encoded = body.get("file_base64")
    filename = body.get("filename")
    if filename is not None and not isinstance(filename, str):
        raise InvalidInput(details={"fields": {"filename": "must be a string"}})
    if not isinstance(encoded, str) or not encoded:
        raise InvalidInput(details={"fields": {"file_base64": "a base64-encoded audio file is required"}})
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(details={"fields": {"file_base64": "is not valid base64"}}) from exc

    async def one() -> AsyncIterator[bytes]:
        yield data

    try:
        temp, size, sha = await media.receive(one(), max_bytes)
    except TooLargeUpload as exc:
        raise TooLarge() from exc
    if size == 0:
        temp.unlink(missing_ok=True)
        raise InvalidInput("The file is empty", details={"fields": {"file_base64": "is empty"}})
    return UploadForm([Upload(temp, size, sha, (filename or "")[:255])],
                      {k: v for k, v in body.items() if k not in ("file_base64", "filename")})


async def read_audio(request: web.Request, media: MediaStore, max_bytes: int) -> UploadForm:
    if request.content_type == "multipart/form-data":
        form = await read_audio_form(request, media, max_bytes)
        if not form.files:
            raise InvalidInput(details={"fields": {"file": "an audio file is required"}})
        return form
    if request.content_type == "application/json":
        return await read_json_audio(request, media, max_bytes)
    raise UnsupportedMediaType("Send multipart/form-data with a `file` field, or JSON")


async def read_image(request: web.Request, max_bytes: int = MAX_IMAGE) -> bytes:
    """An image from a multipart `image`/`file` field or a raw image body, read under a cap."""
    if request.content_type == "multipart/form-data":
        async for part in _parts(request):
            if part.name in ("image", "file"):
                return await _capped(_chunks(part), max_bytes)
        raise InvalidInput(details={"fields": {"image": "an image file is required"}})
    if request.content_type.startswith("image/") or request.content_type == "application/octet-stream":
        async def body() -> AsyncIterator[bytes]:
            while True:
                chunk = await request.content.read(CHUNK)
                if not chunk:
                    return
                yield chunk

        return await _capped(body(), max_bytes)
    raise UnsupportedMediaType("Send an image (JPEG, PNG, WebP or GIF)")


async def _capped(chunks: AsyncIterator[bytes], max_bytes: int) -> bytes:
    data = bytearray()
    async for chunk in chunks:
        data += chunk
        if len(data) > max_bytes:
            raise TooLarge(f"Images are limited to {max_bytes // (1024 * 1024)} MiB")
    if not data:
        raise InvalidInput(details={"fields": {"image": "is empty"}})
    return bytes(data)
