"""Tags (mutagen): cleaned text, numbers, the artist split into main and featured, and the tag
readers per container (ID3, Vorbis comments, MP4 atoms, WAV RIFF INFO)."""

from __future__ import annotations

import base64
import re
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from mutagen.flac import Picture
from mutagen.mp4 import MP4Cover

TAG_MAX_CHARS = 500


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


def _number(pattern: re.Pattern[str], value: str | None) -> int:
    """The number in `pattern`'s group at the start of `value`; 0 when there is none."""
    m = pattern.match(value) if value else None
    return int(m.group(1)) if m else 0


def int_part(value: str | None) -> int | None:
    """The leading number of a tag ("3/12" → 3); None when there is none, or it is 0."""
    return _number(_LEADING_INT, value) or None


def total_part(value: str | None) -> int | None:
    """The total of an "n/total" tag ("3/12" → 12); None when there is none, or it is 0."""
    return _number(_SLASH_TOTAL, value) or None


def year_part(value: str | None) -> int | None:
    """The year a date tag starts with ("2019-04-01" → 2019); None unless four digits."""
    n = _number(_YEAR, value)
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
class Tags:
    """The tags as one container holds them, before `probe` cleans them into an `AudioInfo`."""

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


def _set_artists(t: Tags, values: Any) -> None:
    """The first non-empty artist value is the artist; the others are more (featured) ones."""
    artists = [c for c in (clean_tag(v) for v in values) if c]
    if artists:
        t.artist, t.artist_more = artists[0], artists[1:]


def _set_front_cover(t: Tags, pictures: list[Any]) -> None:
    """The front cover (picture type 3), else the first picture, with its sniffed MIME type."""
    chosen = [p for p in pictures if p.type == 3] or pictures
    if chosen and chosen[0].data:
        t.cover = bytes(chosen[0].data)
        t.cover_mime = _image_mime(t.cover) or clean_tag(chosen[0].mime)


def id3_tags(id3: Any) -> Tags:
    t = Tags()
    if id3 is None:
        return t

    def text(key: str) -> str | None:
        frame = id3.get(key)
        return clean_tag(frame.text) if frame is not None and frame.text else None

    t.title, t.album, t.album_artist = text("TIT2"), text("TALB"), text("TPE2")
    tpe1 = id3.get("TPE1")
    if tpe1 is not None and tpe1.text:
        _set_artists(t, tpe1.text)
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
    _set_front_cover(t, id3.getall("APIC"))
    return t


def vorbis_tags(tags: Any, pictures: list[Any]) -> Tags:
    t = Tags()
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
        artists = tags["artist"]
    except (KeyError, ValueError):
        artists = []
    _set_artists(t, artists)
    t.album_artist = get("albumartist", "album artist", "album_artist")
    t.track, t.track_total = get("tracknumber", "track"), get("tracktotal", "totaltracks")
    t.disc = get("discnumber", "disc")
    t.date = get("date", "year", "originaldate")
    t.explicit = _truthy_advisory(get("itunesadvisory", "explicit"))
    _set_front_cover(t, pictures)
    return t


def ogg_pictures(tags: Any) -> list[Picture]:
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


def mp4_tags(tags: Any) -> Tags:
    t = Tags()
    if tags is None:
        return t

    def get(key: str) -> str | None:
        values = tags.get(key)
        return clean_tag(values) if values else None

    t.title, t.album, t.album_artist = get("\xa9nam"), get("\xa9alb"), get("aART")
    t.genre, t.date = get("\xa9gen"), get("\xa9day")
    _set_artists(t, tags.get("\xa9ART") or [])
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


def wav_riff_scan(f: BinaryIO, size: int) -> tuple[dict[str, str], bool]:
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
