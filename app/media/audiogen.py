"""Real audio files made with ffmpeg: test fixtures, the demo library and benchmark input.

Framework-free. Each song is a two-tone chord (a root and its fifth, with a slow tremolo) so songs
differ audibly and in content hash; tags go in with `-metadata`, covers as attached pictures where
ffmpeg can embed them (MP3, FLAC, M4A) and through mutagen for Ogg Vorbis and Opus.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from mutagen.flac import Picture
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from PIL import Image

from app.media.images import placeholder_cover

FORMATS = ("mp3", "flac", "ogg", "opus", "m4a", "wav", "alac")

# fmt: (extension, ffmpeg codec arguments, can ffmpeg embed a cover)
_CODECS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "mp3": (".mp3", ("-c:a", "libmp3lame", "-b:a", "128k", "-id3v2_version", "3"), True),
    "flac": (".flac", ("-c:a", "flac"), True),
    "ogg": (".ogg", ("-c:a", "libvorbis", "-q:a", "3"), False),
    "opus": (".opus", ("-c:a", "libopus", "-b:a", "96k", "-ar", "48000"), False),
    "m4a": (".m4a", ("-c:a", "aac", "-b:a", "128k"), True),
    "alac": (".m4a", ("-c:a", "alac"), True),
    "wav": (".wav", ("-c:a", "pcm_s16le"), False),
}


class AudioGenError(RuntimeError):
    """ffmpeg is missing or failed."""


def ffmpeg_path() -> str:
    """The ffmpeg executable, or a clear error when it is not installed."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise AudioGenError("ffmpeg is not installed (Debian: apt-get install ffmpeg)")
    return exe


def _source(seconds: float, frequency: float) -> str:
    fifth = frequency * 1.5
    left = f"0.35*sin(2*PI*{frequency}*t)*(0.8+0.2*sin(2*PI*0.5*t))+0.2*sin(2*PI*{fifth}*t)"
    right = f"0.3*sin(2*PI*{frequency}*t)+0.25*sin(2*PI*{fifth}*t)*(0.8+0.2*sin(2*PI*0.7*t))"
    return f"aevalsrc=exprs={left}|{right}:s=44100:d={seconds}"


def _ogg_cover(path: Path, fmt: str, cover: bytes) -> None:
    pic = Picture()
    pic.type = 3
    pic.desc = "Cover (front)"
    pic.data = cover
    with Image.open(io.BytesIO(cover)) as im:
        pic.mime = Image.MIME.get(im.format or "", "image/jpeg")
        pic.width, pic.height = im.size
        pic.depth = 24
    audio = OggVorbis(path) if fmt == "ogg" else OggOpus(path)
    assert audio.tags is not None
    audio.tags["metadata_block_picture"] = [base64.b64encode(pic.write()).decode("ascii")]
    audio.save()


def generate(
    path: Path,
    fmt: str,
    *,
    seconds: float = 3.0,
    title: str | None = None,
    artist: str | None = None,
    album: str | None = None,
    album_artist: str | None = None,
    track: int | None = None,
    track_total: int | None = None,
    disc: int | None = None,
    year: int | None = None,
    genre: str | None = None,
    cover: bytes | None = None,
    frequency: float = 440.0,
    bitrate: str | None = None,
) -> Path:
    """Write a tagged tone of `seconds` to `path` as `fmt` (mp3, flac, ogg, opus, m4a, wav, alac)."""
    if fmt not in _CODECS:
        raise ValueError(f"unknown format {fmt!r}; one of {FORMATS}")
    _ext, codec_args, embeds_cover = _CODECS[fmt]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [ffmpeg_path(), "-loglevel", "error", "-nostdin", "-y",
           "-f", "lavfi", "-i", _source(seconds, frequency)]
    with tempfile.TemporaryDirectory(prefix="audiogen-") as tmp:
        if cover is not None and embeds_cover:
            cover_file = Path(tmp) / "cover.jpg"
            cover_file.write_bytes(cover)
            cmd += ["-i", str(cover_file), "-map", "0:a", "-map", "1:v", "-c:v", "copy",
                    "-disposition:v:0", "attached_pic",
                    "-metadata:s:v", "title=Album cover", "-metadata:s:v", "comment=Cover (front)"]
        cmd += list(codec_args)
        if bitrate is not None:
            cmd += ["-b:a", bitrate]
        tags = {
            "title": title, "artist": artist, "album": album, "album_artist": album_artist,
            "genre": genre, "date": str(year) if year else None,
            "track": (f"{track}/{track_total}" if track_total else str(track)) if track else None,
            "disc": str(disc) if disc else None,
        }
        for key, value in tags.items():
            if value is not None:
                cmd += ["-metadata", f"{key}={value}"]
        cmd.append(str(path))
        done = subprocess.run(cmd, capture_output=True, check=False)  # noqa: S603 - fixed argv, no shell
        if done.returncode != 0:
            raise AudioGenError(f"ffmpeg failed for {path.name}: {done.stderr.decode(errors='replace')}")
    if cover is not None and fmt in ("ogg", "opus"):
        _ogg_cover(path, fmt, cover)
    return path


# --- libraries -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrackSpec:
    """One song of a generated album; `artist` overrides the album's (e.g. "A feat. B")."""

    title: str
    fmt: str = "mp3"
    frequency: float = 440.0
    artist: str | None = None


@dataclass(frozen=True)
class AlbumSpec:
    """One album folder. `cover`: "embedded", "folder" (a cover.jpg), "both" or None."""

    artist: str
    title: str
    year: int
    genre: str
    tracks: tuple[TrackSpec, ...]
    cover: str | None = "both"


_UNSAFE = re.compile(r'[/\\:*?"<>|\x00-\x1f]')


def safe_name(name: str) -> str:
    """A name usable as one path component."""
    cleaned = _UNSAFE.sub("_", name).strip().lstrip(".")
    return cleaned or "_"


def generate_library(root: Path, spec: Sequence[AlbumSpec], *, seconds: float = 3.0,
                     workers: int = 2) -> list[Path]:
    """Write `spec` as `root/Artist/Album/NN Title.ext` (plus cover.jpg where asked); the songs."""
    root = Path(root)
    jobs: list[Callable[[], Path]] = []
    for album in spec:
        folder = root / safe_name(album.artist) / safe_name(album.title)
        folder.mkdir(parents=True, exist_ok=True)
        art = placeholder_cover(f"{album.artist}\n{album.title}") if album.cover else None
        if art is not None and album.cover in ("folder", "both"):
            (folder / "cover.jpg").write_bytes(art)
        for n, t in enumerate(album.tracks, start=1):
            ext = _CODECS[t.fmt][0]
            dest = folder / f"{n:02d} {safe_name(t.title)}{ext}"
            jobs.append(partial(
                generate, dest, t.fmt, seconds=seconds, title=t.title, artist=t.artist or album.artist,
                album=album.title, album_artist=album.artist, track=n, track_total=len(album.tracks),
                disc=1, year=album.year, genre=album.genre, frequency=t.frequency,
                cover=art if album.cover in ("embedded", "both") else None,
            ))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(job) for job in jobs]
        return [f.result() for f in futures]


def _album(artist: str, title: str, year: int, genre: str, base: float,
           tracks: Sequence[tuple[str, ...]], cover: str | None = "both") -> AlbumSpec:
    # Frequencies walk up a pentatonic scale from `base`, so no two songs sound alike.
    steps = (1.0, 9 / 8, 5 / 4, 3 / 2, 5 / 3, 2.0, 9 / 4, 5 / 2)
    return AlbumSpec(artist, title, year, genre, tuple(
        TrackSpec(t[0], t[1], round(base * steps[i % len(steps)] * (1 + i // len(steps) * 0.01), 2),
                  t[2] if len(t) > 2 else None)
        for i, t in enumerate(tracks)), cover)


DEMO_LIBRARY: tuple[AlbumSpec, ...] = (
    _album("Sigrún Vé", "Harbour Lights", 2019, "Folk", 196.0, (
        ("Harbour Lights", "mp3"),
        ("Quiet Hours", "flac"),
        ("Salt on the Window", "mp3"),
        ("Northern Ferry", "mp3"),
        ("Lanterns for the Fleet", "ogg"),
        ("Yesterday's Tide", "mp3"),
        ("The Long Pier", "mp3"),
    )),
    _album("Northbound Tram", "Yesterday's Quokka", 2021, "Indie Rock", 246.94, (
        ("Yesterday's Quokka", "mp3"),
        ("Quokkas in the Rain", "mp3"),
        ("Tram Lines", "m4a"),
        ("Postcards from Rottnest", "mp3"),
        ("Loud Little Heart", "opus"),
        ("Quiet Carriage", "mp3"),
        ("Last Stop, Fremantle", "mp3", "Northbound Tram feat. Sigrún Vé"),
    ), cover="embedded"),
    _album("Mara Okafor", "Low Tide Radio", 2016, "Electronic", 220.0, (
        ("Low Tide Radio", "mp3"),
        ("Harbour Static", "flac"),
        ("Signal Fade", "mp3"),
        ("Midnight Frequencies", "m4a"),
        ("Glass Ocean", "mp3"),
        ("Quiet Transmission", "ogg", "Mara Okafor ft. Northbound Tram"),
    ), cover="folder"),
    _album("Mara Okafor", "Quiet Hours EP", 2023, "Ambient", 174.61, (
        ("Quiet Hours", "mp3"),
        ("Yesterday, Slowly", "opus"),
        ("Harbour at Dawn", "mp3"),
    )),
)


def build_demo_library(root: Path, seconds: float = 20.0) -> list[Path]:
    """Write the demo library (DEMO_LIBRARY) under `root`; returns the song files."""
    return generate_library(root, DEMO_LIBRARY, seconds=seconds)
