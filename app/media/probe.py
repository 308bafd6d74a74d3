"""Audio files: content sniffing, truncation checks and stream facts (`probe` → `AudioInfo`).

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

import math
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from mutagen.flac import FLAC
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from app.media.tags import (
    Tags,
    id3_tags,
    int_part,
    mp4_tags,
    ogg_pictures,
    split_artist,
    total_part,
    vorbis_tags,
    wav_riff_scan,
    year_part,
)

MAX_DURATION_S = 48 * 3600  # longer than any real upload; a corrupt header claims more
SNIFF_BYTES = 64 * 1024


class UnsupportedAudio(Exception):
    """The content is not one of the accepted audio formats (→ 415)."""


class BadAudio(Exception):
    """A recognised container that is empty, truncated or unparseable (→ 422)."""


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


def id3_size(buf: bytes) -> int | None:
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
    id3 = id3_size(head)
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
    start = id3_size(head) or 0
    f.seek(start)
    buf = f.read(SNIFF_BYTES)
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
    start = id3_size(head) or 0
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
    tail_at = max(0, size - SNIFF_BYTES)
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
        head = f.read(SNIFF_BYTES)
        after_id3 = None
        id3 = id3_size(head)
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
    audio, tags, codec = _PARSERS[kind](p, f, head, size)
    duration_ms, bitrate, sample_rate, channels = _stream_facts(audio.info, kind, size)
    main, featured = split_artist(tags.artist, tags.artist_more)
    return AudioInfo(
        codec=codec, container=container, mime_type=mime, ext=ext,
        duration_ms=duration_ms, bitrate=bitrate, sample_rate=sample_rate, channels=channels,
        title=tags.title, artist=main, album=tags.album, album_artist=tags.album_artist,
        genre=tags.genre, track_number=int_part(tags.track),
        track_total=int_part(tags.track_total) or total_part(tags.track),
        disc_number=int_part(tags.disc), year=year_part(tags.date), explicit=tags.explicit,
        featured=featured, cover=tags.cover, cover_mime=tags.cover_mime if tags.cover else None,
    )


def _stream_facts(info: Any, kind: str, size: int) -> tuple[int, int, int, int]:
    """`(duration_ms, bitrate, sample_rate, channels)` of a parsed stream; `BadAudio` when it has
    no playable duration, sample rate or channels. A missing bitrate is the file's average."""
    length = float(getattr(info, "length", 0) or 0)
    if not math.isfinite(length) or length <= 0 or length > MAX_DURATION_S:
        raise BadAudio("no playable duration")
    sample_rate = int(getattr(info, "sample_rate", 0) or (48000 if kind == "opus" else 0))
    channels = int(getattr(info, "channels", 0) or 0)
    if sample_rate <= 0 or channels <= 0:
        raise BadAudio("no sample rate or channel count")
    bitrate = int(getattr(info, "bitrate", 0) or 0)
    if bitrate <= 0:
        bitrate = round(size * 8 / length)
    return round(length * 1000), bitrate, sample_rate, channels


# --- one parser per container: (mutagen's file, its tags, the codec), after its own checks -----

_Parsed = tuple[Any, Tags, str]


def _parse_mp3(p: str, f: BinaryIO, head: bytes, size: int) -> _Parsed:
    audio = _load(MP3, p)
    if getattr(audio.info, "layer", 3) != 3:
        raise UnsupportedAudio("MPEG audio layer I/II, not MP3")
    if _mp3_truncated(f, head, size):
        raise BadAudio("truncated MP3")
    return audio, id3_tags(audio.tags), "mp3"


def _parse_flac(p: str, f: BinaryIO, head: bytes, size: int) -> _Parsed:
    audio = _load(FLAC, p)
    if _flac_truncated(f, head, size, audio.info):
        raise BadAudio("truncated FLAC")
    return audio, vorbis_tags(audio.tags, list(audio.pictures)), "flac"


def _parse_ogg(loader: Callable[[str], Any], codec: str, p: str, f: BinaryIO, size: int) -> _Parsed:
    audio = _load(loader, p)
    if _ogg_truncated(f, size):
        raise BadAudio("truncated Ogg stream")
    return audio, vorbis_tags(audio.tags, ogg_pictures(audio.tags)), codec


def _parse_vorbis(p: str, f: BinaryIO, head: bytes, size: int) -> _Parsed:
    return _parse_ogg(OggVorbis, "vorbis", p, f, size)


def _parse_opus(p: str, f: BinaryIO, head: bytes, size: int) -> _Parsed:
    return _parse_ogg(OggOpus, "opus", p, f, size)


def _parse_mp4(p: str, f: BinaryIO, head: bytes, size: int) -> _Parsed:
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
    return audio, mp4_tags(audio.tags), codec


def _parse_wav(p: str, f: BinaryIO, head: bytes, size: int) -> _Parsed:
    audio = _load(WAVE, p)
    riff, data_ok = wav_riff_scan(f, size)
    if not data_ok:
        raise BadAudio("truncated WAV")
    tags = id3_tags(audio.tags)
    for key, value in riff.items():  # RIFF INFO fills what the ID3 chunk left out
        if getattr(tags, key) is None:
            setattr(tags, key, value)
    return audio, tags, "pcm"


_PARSERS: dict[str, Callable[[str, BinaryIO, bytes, int], _Parsed]] = {
    "mp3": _parse_mp3,
    "flac": _parse_flac,
    "vorbis": _parse_vorbis,
    "opus": _parse_opus,
    "mp4": _parse_mp4,
    "wav": _parse_wav,
}
