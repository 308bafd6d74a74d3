"""app.media (probe, store): sniffing and probing real generated audio, refusals, and the content-addressed store."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import stat
import struct
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from audio_fixtures import COVER, EXPECTED, SECONDS, WITH_COVER, fixture_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutagen.flac import FLAC
from mutagen.mp4 import MP4

from app.media import audiogen
from app.media.probe import BadAudio, UnsupportedAudio, probe
from app.media.store import MediaStore, StoredFile, TooLargeUpload, hash_file
from app.media.tags import split_artist


@pytest.fixture(scope="session")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return fixture_files(tmp_path_factory.mktemp("audio"))


@pytest.fixture(scope="session")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scratch")


def _copy(src: Path, dest_dir: Path, name: str) -> Path:
    dest = dest_dir / name
    shutil.copyfile(src, dest)
    return dest


def _cut(src: Path, dest: Path, length: int) -> Path:
    dest.write_bytes(src.read_bytes()[:length])
    return dest


# --- probing every format ---------------------------------------------------------------

@pytest.mark.parametrize("fmt", list(EXPECTED))
def test_probe_reports_stream_facts(audio: dict[str, Path], fmt: str) -> None:
    info = probe(audio[fmt])
    codec, container, mime, ext, rate = EXPECTED[fmt]
    assert (info.codec, info.container, info.mime_type, info.ext) == (codec, container, mime, ext)
    assert abs(info.duration_ms - SECONDS * 1000) <= 100
    assert info.sample_rate == rate
    assert info.channels == 2
    assert info.bitrate > 0


@pytest.mark.parametrize("fmt", list(EXPECTED))
def test_probe_reads_tags(audio: dict[str, Path], fmt: str) -> None:
    info = probe(audio[fmt])
    assert info.title == "Harbour Lights"
    assert info.artist == "Sigrún Vé"
    assert info.featured == ["Quiet Quokka"]
    assert info.album == "Yesterday's Harbour"
    assert info.genre == "Folk"
    assert info.track_number == 3
    assert info.track_total == 12
    assert info.year == 2019
    assert info.explicit is False
    if fmt != "wav":  # RIFF INFO has no album artist or disc field
        assert info.album_artist == "Sigrún Vé"
        assert info.disc_number == 1


@pytest.mark.parametrize("fmt", WITH_COVER)
def test_probe_extracts_the_embedded_cover(audio: dict[str, Path], fmt: str) -> None:
    info = probe(audio[fmt])
    assert info.cover == COVER
    assert info.cover_mime == "image/jpeg"


def test_wav_has_no_cover(audio: dict[str, Path]) -> None:
    info = probe(audio["wav"])
    assert info.cover is None and info.cover_mime is None


def test_the_content_decides_not_the_name(audio: dict[str, Path], tmp_path: Path) -> None:
    assert probe(_copy(audio["mp3"], tmp_path, "song.flac")).codec == "mp3"
    assert probe(_copy(audio["flac"], tmp_path, "song.mp3")).codec == "flac"
    assert probe(_copy(audio["opus"], tmp_path, "song.ogg")).codec == "opus"
    assert probe(_copy(audio["m4a"], tmp_path, "noext")).codec == "aac"


def test_mp3_without_id3_is_found_by_its_frames(audio: dict[str, Path], tmp_path: Path) -> None:
    data = audio["mp3"].read_bytes()
    assert data[:3] == b"ID3"
    id3_len = 10 + ((data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9])
    bare = tmp_path / "bare.bin"
    bare.write_bytes(data[id3_len:])
    info = probe(bare)
    assert info.codec == "mp3"
    assert abs(info.duration_ms - SECONDS * 1000) <= 100
    assert info.title is None and info.cover is None


def test_tag_values_are_parsed_and_cleaned(audio: dict[str, Path], tmp_path: Path) -> None:
    path = _copy(audio["flac"], tmp_path, "tags.flac")
    f = FLAC(path)
    tags: Any = f.tags
    tags["title"] = ["  Quiet\x00 Hours  " + "x" * 1000]
    tags["artist"] = ["Main Act featuring Guest One; Guest Two"]
    tags["tracknumber"] = ["7/9"]
    tags["date"] = ["2018-05-01"]
    tags["itunesadvisory"] = ["1"]
    tags["genre"] = ["<script>alert(1)</script>"]
    f.save()
    info = probe(path)
    assert info.title is not None and info.title.startswith("Quiet Hours") and len(info.title) == 500
    assert (info.artist, info.featured) == ("Main Act", ["Guest One", "Guest Two"])
    assert (info.track_number, info.track_total, info.year) == (7, 9, 2018)
    assert info.explicit is True
    assert info.genre == "<script>alert(1)</script>"  # pages escape; probe does not


def test_mp4_rating_marks_explicit(audio: dict[str, Path], tmp_path: Path) -> None:
    path = _copy(audio["m4a"], tmp_path, "explicit.m4a")
    f = MP4(path)
    assert f.tags is not None
    f.tags["rtng"] = [1]
    f.save()
    assert probe(path).explicit is True


@pytest.mark.parametrize(("text", "main", "featured"), [
    ("Solo", "Solo", []),
    ("A feat. B", "A", ["B"]),
    ("A Feat. B", "A", ["B"]),
    ("A ft. B", "A", ["B"]),
    ("A featuring B & C", "A", ["B & C"]),
    ("A; B; C", "A", ["B", "C"]),
    ("A / B", "A", ["B"]),
    ("A (feat. B)", "A", ["B"]),
    ("AC/DC", "AC/DC", []),
    ("A feat. A", "A", []),
])
def test_split_artist(text: str, main: str, featured: list[str]) -> None:
    assert split_artist(text) == (main, featured)


# --- refusals ----------------------------------------------------------------------------

def test_text_named_mp3_is_unsupported(tmp_path: Path) -> None:
    p = tmp_path / "x.mp3"
    p.write_text("This is not a song, just some notes about a song.\n" * 50)
    with pytest.raises(UnsupportedAudio):
        probe(p)


def test_random_bytes_are_unsupported(tmp_path: Path) -> None:
    p = tmp_path / "noise.mp3"
    p.write_bytes(random.Random(7).randbytes(200_000))
    with pytest.raises(UnsupportedAudio):
        probe(p)


def test_zero_bytes_is_bad(tmp_path: Path) -> None:
    p = tmp_path / "empty.mp3"
    p.touch()
    with pytest.raises(BadAudio):
        probe(p)


def test_id3_tag_alone_is_bad(audio: dict[str, Path], tmp_path: Path) -> None:
    data = audio["mp3"].read_bytes()
    id3_len = 10 + ((data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9])
    with pytest.raises(BadAudio):
        probe(_cut(audio["mp3"], tmp_path / "tag-only.mp3", id3_len + 4))


# Every recognised container cut short is BadAudio (422): a few hundred bytes (mutagen fails or
# the structure runs past the end) and 30%/40%/90% (our truncation checks, see app.media.probe).
@pytest.mark.parametrize("fmt", list(EXPECTED))
@pytest.mark.parametrize("keep", [300, 0.3, 0.4, 0.9])
def test_truncated_audio_is_bad(audio: dict[str, Path], tmp_path: Path, fmt: str, keep: float) -> None:
    size = audio[fmt].stat().st_size
    length = int(keep) if keep >= 1 else int(size * keep)
    with pytest.raises(BadAudio):
        probe(_cut(audio[fmt], tmp_path / f"cut{audio[fmt].suffix}", length))


# Fewer than 12 bytes do not show the WAVE/ftyp brand, so nothing is recognised: UnsupportedAudio.
@pytest.mark.parametrize("fmt", ["wav", "m4a"])
def test_a_few_bytes_of_riff_or_mp4_are_unsupported(audio: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    with pytest.raises(UnsupportedAudio):
        probe(_cut(audio[fmt], tmp_path / "ten", 10))


def test_other_ogg_codecs_are_unsupported(tmp_path: Path) -> None:
    packet = b"\x7fFLAC\x01\x00\x00\x01fLaC" + b"\x00" * 38
    page = b"OggS\x00\x02" + b"\x00" * 8 + b"\x01\x00\x00\x00" + b"\x00" * 8 + bytes([1, len(packet)])
    p = tmp_path / "x.ogg"
    p.write_bytes(page + packet)
    with pytest.raises(UnsupportedAudio):
        probe(p)


@pytest.mark.parametrize("brand", [b"avif", b"heic", b"M4A "])
def test_iso_bmff_without_audio_is_unsupported(tmp_path: Path, brand: bytes) -> None:
    # A complete file of boxes with no movie box: an AVIF/HEIF image or an empty MP4 shell.
    p = tmp_path / "x.m4a"
    p.write_bytes(struct.pack(">I", 16) + b"ftyp" + brand + b"\x00\x00\x00\x00" + struct.pack(">I", 8) + b"free")
    with pytest.raises(UnsupportedAudio):
        probe(p)


def test_mp4_video_is_unsupported(tmp_path: Path) -> None:
    p = tmp_path / "clip.m4a"
    subprocess.run(
        [audiogen.ffmpeg_path(), "-loglevel", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", "testsrc=size=64x64:rate=5:duration=1",
         "-f", "lavfi", "-i", "sine=duration=1", "-c:v", "mpeg4", "-c:a", "aac", "-f", "mp4", str(p)],
        check=True,
    )
    with pytest.raises(UnsupportedAudio):
        probe(p)


_MAGIC = [b"", b"ID3\x03\x00\x00\x00\x00\x02\x00", b"fLaC", b"OggS\x00\x02", b"RIFF\x00\x01\x00\x00WAVE",
          b"\x00\x00\x00\x18ftypM4A ", b"\xff\xfb\x90\x64", b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x13OpusHead"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from(_MAGIC), body=st.binary(max_size=3000))
def test_probe_on_arbitrary_bytes_only_refuses(scratch: Path, prefix: bytes, body: bytes) -> None:
    p = scratch / "fuzz.bin"
    p.write_bytes(prefix + body)
    try:
        probe(p)
    except (UnsupportedAudio, BadAudio):
        pass


@settings(max_examples=120, deadline=None)
@given(fmt=st.sampled_from(list(EXPECTED)), cut=st.floats(0, 1), flips=st.lists(
    st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4))
def test_probe_on_damaged_files_only_refuses(audio: dict[str, Path], scratch: Path, fmt: str, cut: float,
                                             flips: list[tuple[float, int]]) -> None:
    data = bytearray(audio[fmt].read_bytes())
    for where, value in flips:
        data[int(where * (len(data) - 1))] = value
    p = scratch / "damaged.bin"
    p.write_bytes(bytes(data[: max(1, int(len(data) * cut))]))
    try:
        probe(p)
    except (UnsupportedAudio, BadAudio):
        pass


# --- the store ---------------------------------------------------------------------------

async def _chunks(data: bytes, size: int = 1000, seen: list[int] | None = None) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        if seen is not None:
            seen.append(i)
        yield data[i:i + size]


def _tmp_files(store: MediaStore) -> list[Path]:
    tmp = store.root / "tmp"
    return list(tmp.iterdir()) if tmp.exists() else []


async def test_receive_then_adopt(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    data = os.urandom(10_500)
    temp, size, sha = await store.receive(_chunks(data), max_bytes=20_000)
    assert (size, sha) == (len(data), hashlib.sha256(data).hexdigest())
    assert temp.read_bytes() == data and temp.is_relative_to(tmp_path / "tmp")
    stored = store.adopt(temp, sha, ".mp3")
    assert stored == StoredFile(f"audio/{sha[:2]}/{sha[2:4]}/{sha}.mp3", len(data), sha)
    final = store.path(stored.rel_path)
    assert final.read_bytes() == data
    assert stat.S_IMODE(final.stat().st_mode) == 0o644
    assert not temp.exists() and _tmp_files(store) == []


async def test_receive_stops_at_the_cap_and_removes_the_temp_file(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    seen: list[int] = []
    with pytest.raises(TooLargeUpload):
        await store.receive(_chunks(b"x" * 50_000, seen=seen), max_bytes=5_500)
    assert len(seen) == 6  # the sixth chunk passed the cap; nothing after it was read
    assert _tmp_files(store) == []
    assert not (tmp_path / "audio").exists()


async def test_receive_at_exactly_the_cap_is_fine(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    _temp, size, _sha = await store.receive(_chunks(b"y" * 5000), max_bytes=5000)
    assert size == 5000


async def test_receive_removes_the_temp_file_on_any_error(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)

    async def broken() -> AsyncIterator[bytes]:
        yield b"abc"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.receive(broken(), max_bytes=1000)
    assert _tmp_files(store) == []


async def test_adopt_is_idempotent(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    results = []
    for _ in range(2):
        temp, _size, sha = await store.receive(_chunks(b"same song"), max_bytes=1000)
        results.append(store.adopt(temp, sha, ".flac"))
        assert not temp.exists()
    assert results[0] == results[1]
    assert len([p for p in (tmp_path / "audio").rglob("*") if p.is_file()]) == 1


def test_copy_in_hashes_while_copying(audio: dict[str, Path], tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "store")
    stored = store.copy_in(audio["flac"], ".flac")
    assert (stored.sha256, stored.size) == hash_file(audio["flac"])
    assert store.path(stored.rel_path).read_bytes() == audio["flac"].read_bytes()
    assert _tmp_files(store) == []


def test_adopt_refuses_bad_names(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    temp = store.temp_path()
    temp.write_bytes(b"x")
    with pytest.raises(ValueError):
        store.adopt(temp, "../" + "a" * 61, ".mp3")
    with pytest.raises(ValueError):
        store.adopt(temp, "a" * 64, "/../../x")


@pytest.mark.parametrize("rel", ["../x", "/etc/passwd", "a/../../b", "a\x00b", "", "audio//x", "./x",
                                 "audio/..", "..\\x"])
def test_path_refuses_escapes(tmp_path: Path, rel: str) -> None:
    with pytest.raises(ValueError):
        MediaStore(tmp_path).path(rel)


def test_path_refuses_symlinks_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(ValueError):
        MediaStore(root).path("link/secret")


def test_remove(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    temp = store.temp_path()
    temp.write_bytes(b"bye")
    sha, _ = hash_file(temp)
    stored = store.adopt(temp, sha, ".wav")
    store.remove(stored.rel_path)
    assert not store.path(stored.rel_path).exists()
    store.remove(stored.rel_path)  # twice is fine


def test_hash_file_reads_large_files(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    p = tmp_path / "big"
    p.write_bytes(data)
    assert hash_file(p) == (hashlib.sha256(data).hexdigest(), len(data))


# --- generated libraries -----------------------------------------------------------------

def test_demo_library_builds_with_the_promised_content(tmp_path: Path) -> None:
    files = audiogen.build_demo_library(tmp_path, seconds=1.0)
    infos = [probe(f) for f in files]
    assert len(files) >= 20
    assert len({i.album_artist for i in infos}) >= 3
    assert len({(i.album_artist, i.album) for i in infos}) >= 4
    assert {i.codec for i in infos} >= {"mp3", "flac", "vorbis", "opus", "aac"}
    assert any(i.artist and not i.artist.isascii() for i in infos)
    titles = " ".join(i.title or "" for i in infos).lower()
    for word in ("harbour", "quiet", "quokkas", "yesterday"):
        assert word in titles
    assert len({i.year for i in infos}) >= 3 and len({i.genre for i in infos}) >= 3
    assert any(i.featured for i in infos)
    assert any(i.cover for i in infos) and list(tmp_path.rglob("cover.jpg"))
    assert len({hash_file(f)[0] for f in files}) == len(files)
    for f in files:  # Artist/Album/NN Title.ext
        assert f.relative_to(tmp_path).parts[2][:2].isdigit()


def test_generate_refuses_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        audiogen.generate(tmp_path / "x.xm", "xm")


def test_fixture_mp3_has_a_lame_info_header(audio: dict[str, Path]) -> None:
    # The MP3 truncation cases above rely on the byte count of this header.
    head = audio["mp3"].read_bytes()[:20_000]
    assert b"Info" in head or b"Xing" in head
