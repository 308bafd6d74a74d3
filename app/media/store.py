"""Audio files: content sniffing, tag and stream facts (mutagen), and the content-addressed store.

Framework-free: no aiohttp, no database. The HTTP layer maps `UnsupportedAudio` to 415,
`BadAudio` to 422 and `TooLargeUpload` to 413 (SPEC §10).

What counts as truncated (→ `BadAudio`), per container, beyond "mutagen cannot parse it":
- MP3: the Xing/Info header promises more audio bytes than the file holds (CBR files without
  one cannot be told apart from a shorter song, and are accepted as such);
- FLAC: the last complete frame header ends before STREAMINFO's total sample count;
- Ogg: the last page is cut short;
- M4A: a top-level box (usually `mdat`) runs past the end of the file (a whole file without a
  `moov` box, or with a video track, or an AVIF/HEIF image, is `UnsupportedAudio` instead);
- WAV: the `data` chunk runs past the end of the file.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import re
import struct
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from mutagen.flac import FLAC, Picture
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, MP4Cover
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

TAG_MAX_CHARS = 500
MAX_DURATION_S = 48 * 3600  # longer than any real upload; a corrupt header claims more
_SNIFF_BYTES = 64 * 1024
_BLOCK = 1024 * 1024


class UnsupportedAudio(Exception):
    """The content is not one of the accepted audio formats (→ 415)."""


class BadAudio(Exception):
    """A recognised container that is empty, truncated or unparseable (→ 422)."""


class TooLargeUpload(Exception):
    """The upload passed its size cap while being read (→ 413)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"upload larger than {max_bytes} bytes")
        self.max_bytes = max_bytes


@dataclass(frozen=True)
class AudioInfo:
    """Stream facts and cleaned tags of one audio file."""

    codec: str
    container: str
    mime_type: str
    ext: str
    duration_ms: int
    bitrate: int
    sample_rate: int
    channels: int
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    album_artist: str | None = None
    genre: str | None = None
    track_number: int | None = None
    track_total: int | None = None
    disc_number: int | None = None
    year: int | None = None
    explicit: bool = False
    featured: list[str] = field(default_factory=list)
    cover: bytes | None = field(default=None, repr=False)
    cover_mime: str | None = None


# --- tag helpers -------------------------------------------------------------------------

def clean_tag(value: Any) -> str | None:
    """A tag value as display text: NULs removed, stripped, capped; empty → None (not escaped)."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        value = value[0] if value else None
        if value is None:
            return None
    text = str(value).replace("\x00", "").strip()[:TAG_MAX_CHARS].strip()
    return text or None


_LEADING_INT = re.compile(r"\s*(\d{1,6})")
_SLASH_TOTAL = re.compile(r"\s*\d{1,6}\s*/\s*(\d{1,6})")
_YEAR = re.compile(r"\s*(\d{4})")


def _int_part(value: str | None) -> int | None:
    if not value:
        return None
    m = _LEADING_INT.match(value)
    n = int(m.group(1)) if m else 0
    return n or None


def _total_part(value: str | None) -> int | None:
    if not value:
        return None
    m = _SLASH_TOTAL.match(value)
    n = int(m.group(1)) if m else 0
    return n or None


def _year(value: str | None) -> int | None:
    if not value:
        return None
    m = _YEAR.match(value)
    n = int(m.group(1)) if m else 0
    return n if 1000 <= n <= 9999 else None


_FEAT = re.compile(r"\s+(?:feat\.?|ft\.|featuring)\s+|\s*;\s+|\s+/\s+", re.IGNORECASE)


def split_artist(artist: str | None, extra: list[str] | None = None) -> tuple[str | None, list[str]]:
    """("A feat. B; C", …) → ("A", ["B", "C"]): the main artist and the featured ones.

    "/" splits only with spaces around it, so names like "AC/DC" stay whole. Further values of a
    multi-valued artist tag (ID3v2.4, repeated Vorbis ARTIST) count as featured artists.
    """
    if not artist:
        return None, []
    text = re.sub(r"\s*[(\[]\s*((?:feat\.?|ft\.|featuring)\s+[^)\]]*)[)\]]", r" \1", artist,
                  flags=re.IGNORECASE)
    parts = [p.strip() for p in _FEAT.split(text)]
    parts = [p for p in parts if p]
    if not parts:
        return artist, []
    main, featured = parts[0], parts[1:]
    for more in extra or []:
        featured.extend(p.strip() for p in _FEAT.split(more) if p.strip())
    seen = {main.casefold()}
    out: list[str] = []
    for name in featured:
        if name.casefold() not in seen:
            seen.add(name.casefold())
            out.append(name[:TAG_MAX_CHARS])
    return main, out


def _truthy_advisory(value: str | None) -> bool:
    # iTunes advisory: 1 = explicit, 4 = explicit (old), 2 = clean, 0 = none.
    if value is None:
        return False
    v = value.strip().lower()
    return v in {"1", "4", "explicit", "true", "yes", "e"}


@dataclass
class _Tags:
    title: str | None = None
    artist: str | None = None
    artist_more: list[str] = field(default_factory=list)
    album: str | None = None
    album_artist: str | None = None
    genre: str | None = None
    track: str | None = None
    track_total: str | None = None
    disc: str | None = None
    date: str | None = None
    explicit: bool = False
    cover: bytes | None = None
    cover_mime: str | None = None


def _image_mime(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    return None


def _id3_tags(id3: Any) -> _Tags:
    t = _Tags()
    if id3 is None:
        return t

    def text(key: str) -> str | None:
        frame = id3.get(key)
        return clean_tag(frame.text) if frame is not None and frame.text else None

    t.title, t.album, t.album_artist = text("TIT2"), text("TALB"), text("TPE2")
    tpe1 = id3.get("TPE1")
    if tpe1 is not None and tpe1.text:
        values = [c for c in (clean_tag(v) for v in tpe1.text) if c]
        t.artist, t.artist_more = (values[0], values[1:]) if values else (None, [])
    tcon = id3.get("TCON")
    if tcon is not None:
        genres = tcon.genres
        t.genre = clean_tag(genres[0]) if genres else None
    t.track, t.disc = text("TRCK"), text("TPOS")
    t.track_total = None  # TRCK carries "n/total"
    t.date = text("TDRC") or text("TYER") or text("TDOR")
    for frame in id3.getall("TXXX"):
        if frame.desc.strip().upper() in {"ITUNESADVISORY", "EXPLICIT"}:
            t.explicit = _truthy_advisory(clean_tag(frame.text))
    pictures = id3.getall("APIC")
    front = [p for p in pictures if p.type == 3] or pictures
    if front and front[0].data:
        t.cover = bytes(front[0].data)
        t.cover_mime = _image_mime(t.cover) or clean_tag(front[0].mime)
    return t


def _vorbis_tags(tags: Any, pictures: list[Any]) -> _Tags:
    t = _Tags()
    if tags is None:
        tags = {}

    def get(*keys: str) -> str | None:
        for key in keys:
            try:
                values = tags[key]
            except (KeyError, ValueError):
                continue
            if values:
                return clean_tag(values)
        return None

    t.title, t.album, t.genre = get("title"), get("album"), get("genre")
    try:
        artists = [c for c in (clean_tag(v) for v in tags["artist"]) if c]
    except (KeyError, ValueError):
        artists = []
    if artists:
        t.artist, t.artist_more = artists[0], artists[1:]
    t.album_artist = get("albumartist", "album artist", "album_artist")
    t.track, t.track_total = get("tracknumber", "track"), get("tracktotal", "totaltracks")
    t.disc = get("discnumber", "disc")
    t.date = get("date", "year", "originaldate")
    t.explicit = _truthy_advisory(get("itunesadvisory", "explicit"))
    chosen = [p for p in pictures if p.type == 3] or pictures
    if chosen and chosen[0].data:
        t.cover = bytes(chosen[0].data)
        t.cover_mime = _image_mime(t.cover) or clean_tag(chosen[0].mime)
    return t


def _ogg_pictures(tags: Any) -> list[Picture]:
    pictures: list[Picture] = []
    if tags is None:
        return pictures
    try:
        blocks = tags["metadata_block_picture"]
    except (KeyError, ValueError):
        return pictures
    for b64 in blocks:
        try:
            pictures.append(Picture(base64.b64decode(b64)))
        except Exception:  # noqa: S112 - a broken picture block must not hide the song
            continue
    return pictures


def _mp4_tags(tags: Any) -> _Tags:
    t = _Tags()
    if tags is None:
        return t

    def get(key: str) -> str | None:
        values = tags.get(key)
        return clean_tag(values) if values else None

    t.title, t.album, t.album_artist = get("\xa9nam"), get("\xa9alb"), get("aART")
    t.genre, t.date = get("\xa9gen"), get("\xa9day")
    artists = [c for c in (clean_tag(v) for v in tags.get("\xa9ART") or []) if c]
    if artists:
        t.artist, t.artist_more = artists[0], artists[1:]
    trkn, disk = tags.get("trkn"), tags.get("disk")
    if trkn:
        t.track, t.track_total = str(trkn[0][0]), str(trkn[0][1])
    if disk:
        t.disc = str(disk[0][0])
    rtng = tags.get("rtng")
    t.explicit = bool(rtng) and rtng[0] in (1, 4)
    covers = tags.get("covr")
    if covers:
        cover = covers[0]
        t.cover = bytes(cover)
        if isinstance(cover, MP4Cover) and cover.imageformat == MP4Cover.FORMAT_PNG:
            t.cover_mime = "image/png"
        else:
            t.cover_mime = _image_mime(t.cover) or "image/jpeg"
    return t


_INFO_KEYS = {b"INAM": "title", b"IART": "artist", b"IPRD": "album", b"IGNR": "genre",
              b"ICRD": "date", b"ITRK": "track", b"IPRT": "track"}


def _wav_riff_scan(f: BinaryIO, size: int) -> tuple[dict[str, str], bool]:
    """RIFF INFO tags, and whether the `data` chunk is complete."""
    info: dict[str, str] = {}
    f.seek(12)
    pos, data_ok = 12, False
    while pos + 8 <= size:
        head = f.read(8)
        if len(head) < 8:
            break
        cid, clen = head[:4], struct.unpack("<I", head[4:])[0]
        body_at = pos + 8
        if cid == b"data":
            data_ok = clen > 0 and body_at + clen <= size
            if clen == 0xFFFFFFFF:  # written to a pipe, size never fixed up: trust the file end
                data_ok = size > body_at
        elif cid == b"LIST" and clen <= 1 << 20 and body_at + clen <= size:
            body = f.read(clen)
            if body[:4] == b"INFO":
                p = 4
                while p + 8 <= len(body):
                    sid, slen = body[p:p + 4], struct.unpack("<I", body[p + 4:p + 8])[0]
                    raw = body[p + 8:p + 8 + slen]
                    key = _INFO_KEYS.get(sid)
                    if key and key not in info:
                        text = clean_tag(raw.decode("utf-8", "replace"))
                        if text:
                            info[key] = text
                    p += 8 + slen + (slen & 1)
        pos = body_at + clen + (clen & 1)
        f.seek(pos)
    return info, data_ok


# --- sniffing ----------------------------------------------------------------------------

_MP3_BITRATES = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mpeg_frame(buf: bytes, i: int) -> tuple[int, int, int] | None:
    """(frame length, version bits, sample rate) of a Layer III frame header at `i`, or None."""
    if i + 4 > len(buf) or buf[i] != 0xFF or (buf[i + 1] & 0xE0) != 0xE0:
        return None
    version = (buf[i + 1] >> 3) & 3
    layer = (buf[i + 1] >> 1) & 3
    br_idx, sr_idx, pad = buf[i + 2] >> 4, (buf[i + 2] >> 2) & 3, (buf[i + 2] >> 1) & 1
    if version == 1 or layer != 1 or br_idx in (0, 15) or sr_idx == 3:
        return None
    if (buf[i + 3] & 3) == 2:  # reserved emphasis
        return None
    rate = _MP3_RATES[version][sr_idx]
    kbps = _MP3_BITRATES[1 if version == 3 else 2][br_idx]
    length = (144000 if version == 3 else 72000) * kbps // rate + pad
    return length, version, rate


def _find_mpeg_frames(buf: bytes, start: int, limit: int) -> int | None:
    """Offset of the first of two consecutive, consistent MPEG Layer III frames."""
    end = min(len(buf) - 4, start + limit)
    i = start
    while i <= end:
        i = buf.find(b"\xff", i, end + 1)
        if i < 0:
            return None
        first = _mpeg_frame(buf, i)
        if first is not None:
            nxt = _mpeg_frame(buf, i + first[0])
            if nxt is not None and nxt[1:] == first[1:]:
                return i
        i += 1
    return None


def _id3_size(buf: bytes) -> int | None:
    """Total size of a leading ID3v2 tag, or None when `buf` does not start with a valid one."""
    if len(buf) < 10 or buf[:3] != b"ID3" or buf[3] not in (2, 3, 4) or buf[4] == 0xFF:
        return None
    if any(b & 0x80 for b in buf[6:10]):
        return None
    size = (buf[6] << 21) | (buf[7] << 14) | (buf[8] << 7) | buf[9]
    return 10 + size + (10 if buf[5] & 0x10 else 0)


def sniff(head: bytes, after_id3: bytes | None = None) -> str | None:
    """The container kind from the first bytes: mp3, flac, vorbis, opus, ogg-other, wav, mp4.

    `after_id3` is the 4 bytes following a leading ID3 tag when that tag is longer than `head`.
    """
    id3 = _id3_size(head)
    if id3 is not None:
        after = head[id3:id3 + 4] if after_id3 is None else after_id3
        return "flac" if after == b"fLaC" else "mp3"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        if len(head) < 28:
            return "ogg-truncated"
        n = head[26]
        packet = head[27 + n:27 + n + 8]
        if len(head) < 27 + n + 8:
            return "ogg-truncated"
        if packet[:7] == b"\x01vorbis":
            return "vorbis"
        if packet == b"OpusHead":
            return "opus"
        return "ogg-other"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[4:8] == b"ftyp" and len(head) >= 12:
        return "mp4"
    if _find_mpeg_frames(head, 0, 4096) is not None:
        return "mp3"
    return None


# --- truncation checks -------------------------------------------------------------------

def _mp3_truncated(f: BinaryIO, head: bytes, size: int) -> bool:
    start = _id3_size(head) or 0
    f.seek(start)
    buf = f.read(_SNIFF_BYTES)
    at = _find_mpeg_frames(buf, 0, len(buf))
    if at is None:
        return True
    frame = buf[at:at + 200]
    for tag in (b"Xing", b"Info"):
        j = frame.find(tag)
        if 0 <= j <= 40 and len(frame) >= j + 16:
            flags = struct.unpack(">I", frame[j + 4:j + 8])[0]
            p = j + 8 + (4 if flags & 1 else 0)
            if flags & 2:
                promised = struct.unpack(">I", frame[p:p + 4])[0]
                # The encoder counts from this frame; allow for a rewritten ID3 tag or trailer.
                return size - (start + at) < promised * 0.98
    return False


def _flac_crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _crc16_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        crc = n << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        table.append(crc)
    return tuple(table)


_CRC16 = _crc16_table()


def _flac_crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[(crc >> 8) ^ byte]
    return crc


def _flac_frame_end(buf: bytes, i: int, fixed_block: int) -> int | None:
    """The sample position at the end of the FLAC frame whose header starts at `i`, or None."""
    if i + 6 > len(buf) or buf[i] != 0xFF or buf[i + 1] not in (0xF8, 0xF9):
        return None
    variable = buf[i + 1] & 1
    bs_code, sr_code = buf[i + 2] >> 4, buf[i + 2] & 0xF
    if bs_code == 0 or sr_code == 15 or (buf[i + 3] >> 4) > 10 or buf[i + 3] & 1:
        return None
    p = i + 4
    first = buf[p]
    if first < 0x80:
        number, extra = first, 0
    elif 0xC0 <= first < 0xFE:
        extra = 1 if first < 0xE0 else 2 if first < 0xF0 else 3 if first < 0xF8 else 4 if first < 0xFC else 5
        number = first & (0x3F >> extra)
    elif first == 0xFE:
        number, extra = 0, 6
    else:
        return None
    if p + 1 + extra > len(buf):
        return None
    for k in range(1, extra + 1):
        c = buf[p + k]
        if c & 0xC0 != 0x80:
            return None
        number = (number << 6) | (c & 0x3F)
    p += 1 + extra
    if bs_code == 6:
        block, p = buf[p] + 1 if p < len(buf) else 0, p + 1
    elif bs_code == 7:
        block, p = (struct.unpack(">H", buf[p:p + 2])[0] + 1) if p + 2 <= len(buf) else 0, p + 2
    elif bs_code == 1:
        block = 192
    elif bs_code <= 5:
        block = 576 << (bs_code - 2)
    else:
        block = 256 << (bs_code - 8)
    p += {12: 1, 13: 2, 14: 2}.get(sr_code, 0)
    if p >= len(buf) or not block or _flac_crc8(buf[i:p]) != buf[p]:
        return None
    first_sample = number if variable else number * fixed_block
    return first_sample + block


def _flac_truncated(f: BinaryIO, head: bytes, size: int, info: Any) -> bool:
    start = _id3_size(head) or 0
    f.seek(start + 4)
    pos = start + 4
    while True:  # walk the metadata blocks to where the frames start
        block = f.read(4)
        if len(block) < 4:
            return True
        length = int.from_bytes(block[1:4], "big")
        pos += 4 + length
        if pos > size:
            return True
        f.seek(pos)
        if block[0] & 0x80:
            break
    total = int(getattr(info, "total_samples", 0) or 0)
    if total <= 0:
        return False  # unknown length: nothing to compare with
    window = max(64 * 1024, 2 * int(getattr(info, "max_framesize", 0) or 0) + 64)
    tail_at = max(pos, size - window)
    f.seek(tail_at)
    tail = f.read(size - tail_at)
    # Taggers sometimes append ID3v1 or APEv2 tags after the last frame.
    if len(tail) >= 128 and tail[-128:-125] == b"TAG":
        tail = tail[:-128]
    if len(tail) >= 32 and tail[-32:-24] == b"APETAGEX":
        ape_size = struct.unpack("<I", tail[-20:-16])[0]
        tail = tail[:max(0, len(tail) - ape_size - 32)]
    fixed = int(getattr(info, "max_blocksize", 0) or 0)
    i = len(tail) - 6
    while i >= 0:
        i = tail.rfind(b"\xff", 0, i + 1)
        if i < 0:
            break
        end = _flac_frame_end(tail, i, fixed)
        if end is not None:
            # The last frame must reach the total and be whole: it ends with a CRC-16 of itself.
            return end < total or _flac_crc16(tail[i:-2]) != int.from_bytes(tail[-2:], "big")
        i -= 1
    return True


def _ogg_truncated(f: BinaryIO, size: int) -> bool:
    tail_at = max(0, size - _SNIFF_BYTES)
    f.seek(tail_at)
    tail = f.read()
    i = tail.rfind(b"OggS")
    while i >= 0:
        if i + 27 <= len(tail) and tail[i + 4] == 0:
            n = tail[i + 26]
            if i + 27 + n <= len(tail):
                body = sum(tail[i + 27:i + 27 + n])
                return tail_at + i + 27 + n + body != size
            return True
        i = tail.rfind(b"OggS", 0, i)
    return True


def _mp4_scan(f: BinaryIO, size: int) -> str:
    """"ok", "truncated", "no-moov" or "video", from the top-level boxes and moov's track handlers."""
    pos, moov = 0, None
    while pos + 8 <= size:
        f.seek(pos)
        head = f.read(16)
        box_size, kind = struct.unpack(">I", head[:4])[0], head[4:8]
        if box_size == 1:
            if len(head) < 16:
                return "truncated"
            box_size = struct.unpack(">Q", head[8:16])[0]
        elif box_size == 0:
            box_size = size - pos
        if box_size < 8 or pos + box_size > size:
            return "truncated"
        if kind == b"moov":
            moov = (pos, box_size)
        pos += box_size
    if pos != size:
        return "truncated"
    if moov is None:
        return "no-moov"
    if moov[1] > 64 * 1024 * 1024:
        return "ok"
    f.seek(moov[0])
    data = f.read(moov[1])
    # Every track's handler box: 'hdlr' + version/flags + pre_defined + handler type.
    j = data.find(b"hdlr")
    while j >= 0:
        if data[j + 12:j + 16] == b"vide":
            return "video"
        j = data.find(b"hdlr", j + 4)
    return "ok"


# Still images in ISO-BMFF (AVIF, HEIF) share the `ftyp` magic with MP4 audio.
_IMAGE_BRANDS = {b"avif", b"avis", b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"}


# --- probe -------------------------------------------------------------------------------

_KINDS: dict[str, tuple[str, str, str]] = {
    # kind: (container, mime type, extension)
    "mp3": ("mp3", "audio/mpeg", ".mp3"),
    "flac": ("flac", "audio/flac", ".flac"),
    "vorbis": ("ogg", "audio/ogg", ".ogg"),
    "opus": ("ogg", "audio/ogg", ".opus"),  # "audio/ogg; codecs=opus" is not a bare MIME type
    "mp4": ("m4a", "audio/mp4", ".m4a"),
    "wav": ("wav", "audio/wav", ".wav"),
}


def _load(loader: Callable[[str], Any], path: str) -> Any:
    try:
        return loader(path)
    except Exception as exc:
        # Any failure of the parser on untrusted bytes is a broken file, never a server error:
        # mutagen raises its own errors but also struct.error, IndexError … on crafted input.
        raise BadAudio(f"cannot parse the audio: {exc}") from exc


def probe(path: str | Path) -> AudioInfo:
    """Sniff, parse and describe an audio file; `UnsupportedAudio` or `BadAudio` if unfit."""
    p = os.fspath(path)
    size = os.path.getsize(p)
    if size == 0:
        raise BadAudio("the file is empty")
    with open(p, "rb") as f:
        head = f.read(_SNIFF_BYTES)
        after_id3 = None
        id3 = _id3_size(head)
        if id3 is not None and id3 + 4 > len(head):  # a big tag, usually cover art
            f.seek(id3)
            after_id3 = f.read(4)
        kind = sniff(head, after_id3)
        if kind is None or kind == "ogg-other":
            raise UnsupportedAudio("not MP3, FLAC, Ogg Vorbis, Opus, M4A or WAV")
        if kind == "ogg-truncated":
            raise BadAudio("truncated Ogg stream")
        try:
            return _probe_kind(p, f, kind, head, size)
        except (UnsupportedAudio, BadAudio):
            raise
        except (struct.error, IndexError, ValueError, OverflowError) as exc:
            raise BadAudio(f"malformed {kind} structure") from exc


def _probe_kind(p: str, f: BinaryIO, kind: str, head: bytes, size: int) -> AudioInfo:
    container, mime, ext = _KINDS[kind]
    codec = {"mp3": "mp3", "flac": "flac", "vorbis": "vorbis", "opus": "opus", "wav": "pcm"}.get(kind, "")
    sample_rate: int
    if kind == "mp3":
        audio = _load(MP3, p)
        if getattr(audio.info, "layer", 3) != 3:
            raise UnsupportedAudio("MPEG audio layer I/II, not MP3")
        if _mp3_truncated(f, head, size):
            raise BadAudio("truncated MP3")
        tags = _id3_tags(audio.tags)
    elif kind == "flac":
        audio = _load(FLAC, p)
        if _flac_truncated(f, head, size, audio.info):
            raise BadAudio("truncated FLAC")
        tags = _vorbis_tags(audio.tags, list(audio.pictures))
    elif kind in ("vorbis", "opus"):
        audio = _load(OggVorbis if kind == "vorbis" else OggOpus, p)
        if _ogg_truncated(f, size):
            raise BadAudio("truncated Ogg stream")
        tags = _vorbis_tags(audio.tags, _ogg_pictures(audio.tags))
    elif kind == "mp4":
        if head[8:12] in _IMAGE_BRANDS:
            raise UnsupportedAudio("an ISO-BMFF image, not audio")
        state = _mp4_scan(f, size)
        if state == "truncated":
            raise BadAudio("truncated MP4")
        if state == "no-moov":
            raise UnsupportedAudio("an MP4 file without a movie box holds no audio track")
        if state == "video":
            raise UnsupportedAudio("an MP4 with a video track is not an audio file")
        audio = _load(MP4, p)
        raw = (getattr(audio.info, "codec", "") or "").lower()
        if raw.startswith("mp4a"):
            codec = "aac"
        elif raw == "alac":
            codec = "alac"
        else:
            raise UnsupportedAudio(f"unsupported MP4 audio codec {raw!r}")
        tags = _mp4_tags(audio.tags)
    else:  # wav
        audio = _load(WAVE, p)
        riff, data_ok = _wav_riff_scan(f, size)
        if not data_ok:
            raise BadAudio("truncated WAV")
        tags = _id3_tags(audio.tags)
        for key, value in riff.items():
            if getattr(tags, key) is None:
                setattr(tags, key, value)

    info = audio.info
    length = float(getattr(info, "length", 0) or 0)
    if not math.isfinite(length) or length <= 0 or length > MAX_DURATION_S:
        raise BadAudio("no playable duration")
    duration_ms = round(length * 1000)
    sample_rate = int(getattr(info, "sample_rate", 0) or (48000 if kind == "opus" else 0))
    channels = int(getattr(info, "channels", 0) or 0)
    if sample_rate <= 0 or channels <= 0:
        raise BadAudio("no sample rate or channel count")
    bitrate = int(getattr(info, "bitrate", 0) or 0)
    if bitrate <= 0:
        bitrate = round(size * 8 / length)

    main, featured = split_artist(tags.artist, tags.artist_more)
    return AudioInfo(
        codec=codec, container=container, mime_type=mime, ext=ext,
        duration_ms=duration_ms, bitrate=bitrate, sample_rate=sample_rate, channels=channels,
        title=tags.title, artist=main, album=tags.album, album_artist=tags.album_artist,
        genre=tags.genre, track_number=_int_part(tags.track),
        track_total=_int_part(tags.track_total) or _total_part(tags.track),
        disc_number=_int_part(tags.disc), year=_year(tags.date), explicit=tags.explicit,
        featured=featured, cover=tags.cover, cover_mime=tags.cover_mime if tags.cover else None,
    )


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
    head = f.read(_SNIFF_BYTES)
    start, end = _id3_size(head) or 0, size
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
