"""Real audio files for tests, made once per session with ffmpeg (app.media.audiogen).

No fixtures here on purpose (conftest will wrap these): `fixture_files(tmpdir)` generates one file per
format with the tags of `TAGS` and the cover `COVER`, and caches the result per process.
"""

from __future__ import annotations

import threading
from pathlib import Path

from app.media import audiogen, images

SECONDS = 3.0
COVER = images.placeholder_cover("audio fixtures", 300)
TAGS: dict[str, object] = {
    "title": "Harbour Lights",
    "artist": "Sigrún Vé feat. Quiet Quokka",
    "album": "Yesterday's Harbour",
    "album_artist": "Sigrún Vé",
    "track": 3,
    "track_total": 12,
    "disc": 1,
    "year": 2019,
    "genre": "Folk",
}
# fmt → (codec, container, mime type, extension, sample rate) that probe must report
EXPECTED: dict[str, tuple[str, str, str, str, int]] = {
    "mp3": ("mp3", "mp3", "audio/mpeg", ".mp3", 44100),
    "flac": ("flac", "flac", "audio/flac", ".flac", 44100),
    "ogg": ("vorbis", "ogg", "audio/ogg", ".ogg", 44100),
    "opus": ("opus", "ogg", "audio/ogg", ".opus", 48000),
    "m4a": ("aac", "m4a", "audio/mp4", ".m4a", 44100),
    "alac": ("alac", "m4a", "audio/mp4", ".m4a", 44100),
    "wav": ("pcm", "wav", "audio/wav", ".wav", 44100),
}
WITH_COVER = ("mp3", "flac", "ogg", "opus", "m4a", "alac")

_cache: dict[Path, dict[str, Path]] = {}
_lock = threading.Lock()


def fixture_files(tmpdir: Path) -> dict[str, Path]:
    """One tagged file per format (keys of EXPECTED) under `tmpdir`, generated once."""
    root = Path(tmpdir)
    with _lock:
        if root not in _cache:
            root.mkdir(parents=True, exist_ok=True)
            files: dict[str, Path] = {}
            for fmt, (_codec, _container, _mime, ext, _rate) in EXPECTED.items():
                files[fmt] = audiogen.generate(
                    root / f"fixture-{fmt}{ext}", fmt, seconds=SECONDS,
                    cover=COVER if fmt in WITH_COVER else None,
                    frequency=330.0 + 20 * len(files), **TAGS,  # type: ignore[arg-type]
                )
            _cache[root] = files
        return dict(_cache[root])
