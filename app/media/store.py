"""The content-addressed media store: files hashed (whole and audio-only), written atomically under
their hash, read back and deleted. Framework-free: no aiohttp, no database."""

from __future__ import annotations

import hashlib
import os
import re
import struct
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from app.media.probe import SNIFF_BYTES, id3_size

_BLOCK = 1024 * 1024


class TooLargeUpload(Exception):
    """The upload passed its size cap while being read (→ 413)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"upload larger than {max_bytes} bytes")
        self.max_bytes = max_bytes


# --- storage -----------------------------------------------------------------------------

_SHA256 = re.compile(r"[0-9a-f]{64}")
_EXT = re.compile(r"\.[a-z0-9]{1,5}")


@dataclass(frozen=True)
class StoredFile:
    """A file in the store, named by its content."""

    rel_path: str
    size: int
    sha256: str


def hash_file(path: str | Path) -> tuple[str, int]:
    """(sha256 hex, size) of a file, read in 1 MiB blocks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _audio_ranges(f: BinaryIO, size: int, container: str) -> list[tuple[int, int]]:
    """Where the audio of a file lies, tags left out (MP3, FLAC, M4A, WAV); [] when unknown."""
    f.seek(0)
    head = f.read(SNIFF_BYTES)
    start, end = id3_size(head) or 0, size
    if container in ("mp3", "flac"):
        if end - start >= 128:
            f.seek(end - 128)
            if f.read(3) == b"TAG":
                end -= 128
        if container == "mp3" and end - start >= 32:
            f.seek(end - 32)
            footer = f.read(32)
            if footer[:8] == b"APETAGEX":
                tag_size, flags = struct.unpack("<I", footer[12:16])[0], struct.unpack("<I", footer[20:24])[0]
                end -= tag_size + (32 if flags & 0x80000000 else 0)
        if container == "flac":
            pos = start + 4
            while True:  # the metadata blocks (tags, pictures, padding) come before the frames
                f.seek(pos)
                block = f.read(4)
                if len(block) < 4:
                    return []
                pos += 4 + int.from_bytes(block[1:4], "big")
                if block[0] & 0x80:
                    break
            start = pos
        return [(start, end)] if start < end else []
    ranges = []
    pos = 12 if container == "wav" else 0
    while pos + 8 <= size:
        f.seek(pos)
        box = f.read(16)
        if container == "wav":
            kind, length, body = box[:4], struct.unpack("<I", box[4:8])[0], pos + 8
            if kind == b"data":
                ranges.append((body, size if length == 0xFFFFFFFF else min(size, body + length)))
            pos = body + length + (length & 1)
            continue
        length, kind, body = struct.unpack(">I", box[:4])[0], box[4:8], pos + 8
        if length == 1 and len(box) >= 16:
            length, body = struct.unpack(">Q", box[8:16])[0], pos + 16
        elif length == 0:
            length = size - pos
        if length < 8:
            return []
        if kind == b"mdat":
            ranges.append((body, min(size, pos + length)))
        pos += length
    return ranges


def _ogg_audio_digest(f: BinaryIO) -> str | None:
    """A digest of an Ogg stream's audio packets (the header packets, tags among them, left out)."""
    audio = hashlib.sha256(b"ogg")
    f.seek(0)
    packets, skip = 0, None
    while header := f.read(27):
        if len(header) < 27 or header[:4] != b"OggS":
            return None
        table = f.read(header[26])
        data = f.read(sum(table))
        if len(table) < header[26] or len(data) < sum(table):
            return None
        if skip is None:
            skip = 3 if data[:7] == b"\x01vorbis" else 2 if data[:8] == b"OpusHead" else 0
            if not skip:
                return None
        offset = 0
        for lace in table:
            if packets >= skip:
                audio.update(data[offset:offset + lace])
            offset += lace
            if lace < 255:
                packets += 1
    return audio.hexdigest() if packets > (skip or 0) else None


def content_hashes(path: str | Path, container: str) -> tuple[str, str | None]:
    """(sha256 of the file, sha256 of its audio alone) in one read: the second is the same when
    only the tags changed, so a file both retagged and renamed can still be recognised. None
    when the audio cannot be told apart from the rest."""
    full = hashlib.sha256()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        try:
            ranges = [] if container == "ogg" else _audio_ranges(f, size, container)
        except (struct.error, ValueError, IndexError, OverflowError):
            ranges = []
        audio = hashlib.sha256(container.encode()) if ranges else None
        f.seek(0)
        pos = 0
        while block := f.read(_BLOCK):
            full.update(block)
            if audio is not None:
                view = memoryview(block)
                for lo, hi in ranges:
                    a, b = max(lo, pos), min(hi, pos + len(block))
                    if a < b:
                        audio.update(view[a - pos:b - pos])
            pos += len(block)
        if container == "ogg":
            return full.hexdigest(), _ogg_audio_digest(f)
    return full.hexdigest(), audio.hexdigest() if audio is not None else None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _TempWriter:
    """A temporary file that hashes what it is given; sync on purpose, writes are small and local."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.digest = hashlib.sha256()
        self.size = 0
        self._f: BinaryIO = open(path, "xb")  # noqa: SIM115 - closed by close()/discard()

    def write(self, chunk: bytes) -> None:
        self._f.write(chunk)
        self.digest.update(chunk)
        self.size += len(chunk)

    def close(self, durable: bool = True) -> None:
        self._f.flush()
        if durable:
            os.fsync(self._f.fileno())
        self._f.close()

    def discard(self) -> None:
        self._f.close()
        self.path.unlink(missing_ok=True)


class MediaStore:
    """Content-addressed files under `root`: `audio/<aa>/<bb>/<sha256><ext>`, `images/…`, `tmp/`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def temp_path(self) -> Path:
        """A fresh, unused path under `root/tmp` (the directory is created)."""
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp / f"{uuid.uuid4().hex}.part"

    async def receive(self, chunks: AsyncIterator[bytes], max_bytes: int) -> tuple[Path, int, str]:
        """Stream an upload into a temporary file: (temp path, size, sha256).

        Raises `TooLargeUpload` as soon as the cap is passed; on any error the file is removed.
        """
        writer = _TempWriter(self.temp_path())
        try:
            async for chunk in chunks:
                if writer.size + len(chunk) > max_bytes:
                    raise TooLargeUpload(max_bytes)
                writer.write(chunk)
            writer.close()
        except BaseException:
            writer.discard()
            raise
        return writer.path, writer.size, writer.digest.hexdigest()

    def audio_rel_path(self, sha256: str, ext: str) -> str:
        """Where content with this hash and extension lives, relative to `root`."""
        if not _SHA256.fullmatch(sha256):
            raise ValueError("not a sha256 hex digest")
        if not _EXT.fullmatch(ext):
            raise ValueError(f"bad extension {ext!r}")
        return f"audio/{sha256[:2]}/{sha256[2:4]}/{sha256}{ext}"

    def adopt(self, temp: Path, sha256: str, ext: str, durable: bool = True) -> StoredFile:
        """Move a received temp file to its content address; the same content twice is one file.
        `durable=False` skips the fsyncs: the caller syncs once for a whole batch (folder import)."""
        rel = self.audio_rel_path(sha256, ext)
        dest = self.root / rel
        if dest.exists():
            Path(temp).unlink(missing_ok=True)
            return StoredFile(rel, dest.stat().st_size, sha256)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if durable:
            with open(temp, "rb") as f:
                os.fsync(f.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, dest)
        if durable:
            _fsync_dir(dest.parent)
        return StoredFile(rel, dest.stat().st_size, sha256)

    def copy_in(self, src: Path, ext: str, durable: bool = True) -> StoredFile:
        """Copy a file (folder import) into the store, hashing while copying."""
        writer = _TempWriter(self.temp_path())
        try:
            with open(src, "rb") as f:
                while block := f.read(_BLOCK):
                    writer.write(block)
            writer.close(durable)
            return self.adopt(writer.path, writer.digest.hexdigest(), ext, durable)
        except BaseException:
            writer.discard()
            raise

    def path(self, rel_path: str) -> Path:
        """The absolute path of a stored file; `ValueError` for anything that could leave `root`."""
        if not rel_path or "\x00" in rel_path or "\\" in rel_path:
            raise ValueError("bad stored path")
        if rel_path.startswith("/") or os.path.isabs(rel_path):
            raise ValueError("absolute stored path")
        parts = rel_path.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise ValueError("bad stored path")
        root = self.root.resolve()
        full = (root / rel_path).resolve()
        if not full.is_relative_to(root):
            raise ValueError("stored path leaves the media root")
        return full

    def remove(self, rel_path: str) -> None:
        """Delete a stored file; a missing one is not an error."""
        self.path(rel_path).unlink(missing_ok=True)
