"""Catalogue rows: folder import of 10,000 generated files, and the cached `GET /api/song/:id`
against a bare aiohttp handler in the same run."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ROOT, Context, Process, Row, free_port, wait_port

IMPORT_FILES = int(os.environ.get("BENCH_IMPORT_FILES", "10000"))
SMALL_IMPORT = 1000

HELLO_APP = """
import sys
from aiohttp import web

async def hello(request):
    return web.json_response({"hello": "world"})

app = web.Application()
app.router.add_get("/hello", hello)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def make_library(root: Path, count: int, ctx: Context) -> None:
    """`count` distinct tagged MP3s in Artist/Album folders with a cover.jpg per album: a few
    ffmpeg-made tones, copied and re-tagged with mutagen (each copy is new content)."""
    from mutagen.easyid3 import EasyID3

    from app.media import audiogen, images

    bases = []
    for i in range(8):
        path = ctx.tmp / f"import-base-{i}.mp3"
        audiogen.generate(path, "mp3", seconds=1.0, frequency=220.0 + 40 * i, title="base")
        bases.append(path.read_bytes())
    per_album, per_artist = 10, 10
    for n in range(count):
        artist, album = n // (per_album * per_artist), (n // per_album) % per_artist
        folder = root / f"Artist {artist:04d}" / f"Album {album:02d}"
        if n % per_album == 0:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "cover.jpg").write_bytes(images.placeholder_cover(f"{artist}-{album}", 320))
        path = folder / f"{n % per_album + 1:02d} Track {n}.mp3"
        path.write_bytes(bases[n % len(bases)])
        tags = EasyID3(str(path))
        tags.update({"title": f"Track {n}", "artist": f"Artist {artist:04d}",
                     "album": f"Album {artist:04d}-{album:02d}", "tracknumber": str(n % per_album + 1),
                     "date": str(1990 + album), "genre": ["Rock", "Jazz", "Folk", "Pop"][artist % 4]})
        tags.save()


def run_import(ctx: Context, folder: Path, label: str) -> tuple[float, float, str]:
    """`python -m app import` into a fresh database: (files/s, peak RSS MiB of the importer and
    its workers, the summary line)."""
    env = ctx.app_env(database_url=f"mysql://root@127.0.0.1:3306/sonora_bench_import_{label}",
                      data_dir=str(ctx.tmp / f"import-data-{label}"), redis_url="", amqp_url="")
    subprocess.run(["mariadb", "-uroot", "-h127.0.0.1", "-e",  # noqa: S607
                    f"DROP DATABASE IF EXISTS sonora_bench_import_{label}"], check=False)
    subprocess.run([sys.executable, "-m", "app", "migrate"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "app", "import", str(folder)], cwd=ROOT, env=env,
                         check=True, capture_output=True, text=True)
    seconds = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(["mariadb", "-uroot", "-h127.0.0.1", "-e",  # noqa: S607
                    f"DROP DATABASE IF EXISTS sonora_bench_import_{label}"], check=False)
    summary = out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""
    files = sum(1 for _ in folder.rglob("*.mp3"))
    # ru_maxrss of children is the largest single child so far (KiB on Linux).
    return files / seconds, max(peak, before) / 1024, summary


def rows(ctx: Context) -> list[Row]:
    out = _import_rows(ctx)
    out.extend(asyncio.run(_cached_song_rows(ctx)))
    return out


def _import_rows(ctx: Context) -> list[Row]:
    big = ctx.tmp / "import-big"
    small = ctx.tmp / "import-small"
    make_library(big, IMPORT_FILES, ctx)
    make_library(small, SMALL_IMPORT, ctx)
    small_rate, small_rss, _ = run_import(ctx, small, "small")
    rate, rss, summary = run_import(ctx, big, "big")
    shutil.rmtree(big, ignore_errors=True)
    shutil.rmtree(small, ignore_errors=True)
    return [
        Row(f"`import` of {IMPORT_FILES:,} generated files (tagged MP3s, a cover per album)", "—",
            f"{rate:,.0f} files/s ({summary})", "—", "≥ 500 files/s", rate >= 500),
        Row(f"`import` peak memory, {IMPORT_FILES:,} files vs {SMALL_IMPORT:,}",
            f"{SMALL_IMPORT:,} files: {small_rss:.0f} MiB ({small_rate:,.0f} files/s)",
            f"{rss:.0f} MiB", f"{rss / small_rss:.2f}×", "memory flat", rss / small_rss < 1.5),
    ]


async def _cached_song_rows(ctx: Context) -> list[Row]:
    ctx.audio("cached-song", "mp3", seconds=5.0)
    script = ctx.tmp / "hello_app.py"
    script.write_text(HELLO_APP)
    port = free_port()
    hello = Process([sys.executable, str(script), str(port)], ctx.tmp / "hello.log")
    try:
        await asyncio.to_thread(wait_port, port, hello.proc, hello.log)
        ref = ctx.wrk(f"http://127.0.0.1:{port}/hello", 64)
    finally:
        hello.stop()
    async with ctx.app("catalog") as app:
        url = f"{app.base}/api/song/{app.songs['cached-song']}"
        auth = {"Authorization": f"Bearer {app.token}"}
        ctx.wrk(url, 8, headers=auth, seconds=1)  # warm the cache
        got = ctx.wrk(url, 64, headers=auth)
    ratio = got.requests_per_s / ref.requests_per_s
    p99 = got.latency_ms.get("99", float("nan"))
    return [
        Row("cached `GET /api/song/:id`, 64 connections (bearer token)",
            f"bare aiohttp handler {ref.requests_per_s:,.0f} req/s",
            f"{got.requests_per_s:,.0f} req/s", f"{ratio:.2f}×", "≥ 0.5×", ratio >= 0.5),
        Row("cached `GET /api/song/:id` p99 latency, 64 connections",
            f"bare handler p99 {ref.latency_ms.get('99', 0):.2f} ms", f"p99 {p99:.2f} ms", "—",
            "≤ 10 ms", p99 <= 10.0),
    ]
