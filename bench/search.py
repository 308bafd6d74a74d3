"""Search rows: search-as-you-type with a typo over 100,000 generated songs (server p95, target
≤ 10 ms) and `reindex` of those songs (target ≤ 60 s), on the embedded index.

Songs are seeded with multi-row SQL inserts (the bench measures search, not import). The typing
run sends, one request at a time, every prefix of a few misspelled queries to `/api/search/songs`
on the real app served in this process; the server time of each request is taken by an outermost
middleware (handler entry to response), and the client-observed time is shown beside it.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import MYSQL_URL, Context, Row, admin_sql, free_port

SONGS = 100_000
DATABASE = "sonora_bench_search"
WORDS = (
    "harbour", "lights", "quiet", "yesterday", "morning", "river", "golden", "silver", "shadow",
    "dancing", "summer", "winter", "midnight", "ocean", "thunder", "velvet", "crimson", "electric",
    "paper", "garden", "forest", "echo", "wander", "lonely", "broken", "northern", "southern",
    "lantern", "dream", "fire", "stone", "glass", "neon", "sugar", "honey",
)
TYPED = ["harbuor lights", "yesterdy morning", "quite river", "velvet thundr", "midnigt ocean"]


async def _seed(db: Any) -> None:
    rng = random.Random(7)
    await db.execute("INSERT INTO artists (name, name_canon) SELECT CONCAT('Artist ', seq), "
                     "CONCAT('artist ', seq) FROM seq_1_to_2000")
    await db.execute("INSERT INTO albums (title, title_canon, artist_id, year, genre) SELECT "
                     "CONCAT('Album ', seq), CONCAT('album ', seq), 1 + MOD(seq, 2000), 1960 + MOD(seq, 60),"
                     " 'Rock' FROM seq_1_to_8000")
    batch = []
    for i in range(1, SONGS + 1):
        title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4))).title()
        batch.append((title, 1 + i % 2000, 1 + i % 8000, 180000, 320000, 44100, "mp3", "audio/mpeg",
                      1000, f"{i:064x}", f"bench/{i}.mp3", 1960 + i % 60, "Rock"))
        if len(batch) == 5000:
            await _insert(db, batch)
            batch = []
    if batch:
        await _insert(db, batch)


async def _insert(db: Any, batch: list[tuple[Any, ...]]) -> None:
    marks = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(batch))
    await db.execute(
        "INSERT INTO songs (title, artist_id, album_id, duration_ms, bitrate, sample_rate, codec,"
        f" mime_type, size, sha256, file_path, year, genre) VALUES {marks}",
        [v for row in batch for v in row])


async def _rows(ctx: Context) -> list[Row]:
    from app.config import load_config
    from app.main import create_app
    from app.services.indexer import Indexer
    from app.web import keys

    await admin_sql(f"DROP DATABASE IF EXISTS `{DATABASE}`")
    data = Path(ctx.tmp) / "search-bench"
    config = load_config(environ={}, env_file=None, database_url=f"{MYSQL_URL}/{DATABASE}",
                         data_dir=str(data), secret_key=secrets.token_urlsafe(48), bcrypt_rounds=4,
                         namespace=f"benchsearch_{secrets.token_hex(3)}")
    app = create_app(config)
    server_ms: list[float] = []

    @web.middleware
    async def timing(request: web.Request, handler: Any) -> web.StreamResponse:
        t0 = time.perf_counter()
        response = await handler(request)
        if request.path == "/api/search/songs":
            server_ms.append((time.perf_counter() - t0) * 1000)
        return response

    app.middlewares.insert(0, timing)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        db = app[keys.DB]
        await _seed(db)
        started = time.monotonic()
        count = await Indexer(db, app[keys.SEARCH_BACKEND]).reindex()
        reindex_s = time.monotonic() - started
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(base) as session:
            resp = await session.post("/api/auth/register", json={
                "email": "sb@example.com", "username": "searchbench", "password": "bench password 1"})
            token = (await resp.json())["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            times: list[float] = []
            for _round in range(4):
                for text in TYPED:
                    for end in range(2, len(text) + 1):
                        t0 = time.perf_counter()
                        r = await session.get("/api/search/songs", params={"q": text[:end], "limit": 10},
                                              headers=headers)
                        await r.read()
                        times.append((time.perf_counter() - t0) * 1000)
                        assert r.status == 200
        p95 = statistics.quantiles(server_ms, n=20)[-1]
        client_p95 = statistics.quantiles(times, n=20)[-1]
    finally:
        await runner.cleanup()
        await admin_sql(f"DROP DATABASE IF EXISTS `{DATABASE}`")
    return [
        Row(f"search as you type with a typo, {SONGS:,} songs ({len(times)} requests)", "—",
            f"server p95 {p95:.1f} ms, median {statistics.median(server_ms):.1f} ms"
            f" (client-observed p95 {client_p95:.1f} ms)", "—", "p95 ≤ 10 ms",
            p95 <= 10),
        Row(f"`reindex` of {SONGS:,} songs ({count:,} documents)", "—", f"{reindex_s:.1f} s", "—",
            "≤ 60 s", reindex_s <= 60),
    ]


def rows(ctx: Context) -> list[Row]:
    return asyncio.run(_rows(ctx))
