"""Playlist rows: opening the first page of a 10,000-song playlist, and moving one song in it.

Server time is what the app's access log reports for each request (handler and middlewares, no
network or client); the 10,000 entries are seeded with SQL directly (a few real songs, repeated)."""

from __future__ import annotations

import asyncio
import os
import random
import re
import statistics
import time

import aiohttp
import aiomysql

from app.repos.db import DbTarget
from app.repos.playlists import GAP
from bench.common import DATABASE, MYSQL_URL, Context, Row

ENTRIES = 10_000
REQUESTS = int(os.environ.get("BENCH_PLAYLIST_REQUESTS", "200"))
TARGET_MS = 50.0
ACCESS = re.compile(r"\b(GET|PUT) (/api/playlist/\d+(?:/songs/order)?) (\d{3}) ([\d.]+)ms")


def rows(ctx: Context) -> list[Row]:
    return asyncio.run(_rows(ctx))


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[94] if len(values) > 1 else values[0]


async def _seed(playlist_id: int, song_ids: list[int], user_id: int) -> None:
    t = DbTarget.parse(f"{MYSQL_URL}/{DATABASE}")
    conn = await aiomysql.connect(host=t.host, port=t.port, user=t.user, password=t.password,
                                  db=t.database, autocommit=True)
    try:
        async with conn.cursor() as cur:
            for chunk in range(0, ENTRIES, 1000):
                values = [(playlist_id, (p + 1) * GAP, song_ids[p % len(song_ids)], user_id)
                          for p in range(chunk, min(chunk + 1000, ENTRIES))]
                await cur.executemany(
                    "INSERT INTO playlist_songs (playlist_id, sort_key, song_id, added_by)"
                    " VALUES (%s, %s, %s, %s)", values)
    finally:
        conn.close()


async def _rows(ctx: Context) -> list[Row]:
    for i in range(3):
        ctx.audio(f"playlist-{i}", "mp3", 2.0)
    async with ctx.app("playlists") as app:
        h = {"Authorization": f"Bearer {app.token}"}
        async with aiohttp.ClientSession(app.base, headers=h) as session:
            me = await (await session.get("/api/user/me")).json()
            created = await session.post("/api/playlist", json={"name": "Bench: 10,000 songs"})
            playlist_id = (await created.json())["id"]
            await _seed(playlist_id, list(app.songs.values()), me["id"])
            url = f"/api/playlist/{playlist_id}"
            rng = random.Random(1)
            client: dict[str, list[float]] = {"GET": [], "PUT": []}
            for _ in range(20):  # warm-up: pools, caches of the songs on the first page
                await (await session.get(url)).read()
            log_start = app.process.log.stat().st_size
            for _ in range(REQUESTS):
                started = time.perf_counter()
                resp = await session.get(url)
                body = await resp.json()
                client["GET"].append((time.perf_counter() - started) * 1000)
                assert len(body["songs"]["items"]) == 20 and body["song_count"] == ENTRIES
            for _ in range(REQUESTS):
                start = rng.randrange(ENTRIES)
                before = rng.randrange(ENTRIES + 1)
                started = time.perf_counter()
                resp = await session.put(url + "/songs/order",
                                         json={"range_start": start, "insert_before": before})
                await resp.read()
                client["PUT"].append((time.perf_counter() - started) * 1000)
                assert resp.status == 200
            await asyncio.sleep(0.3)  # the log is flushed line by line; let the last ones land
    text = app.process.log.read_bytes()[log_start:].decode(errors="replace")
    server: dict[str, list[float]] = {"GET": [], "PUT": []}
    for method, _path, status, ms in ACCESS.findall(text):
        if status == "200":
            server[method].append(float(ms))
    server = {m: v[-REQUESTS:] for m, v in server.items()}  # late-flushed warm-up lines out
    out = []
    for method, what in (("GET", "open a 10,000-song playlist (first page of 20)"),
                         ("PUT", "move one song in a 10,000-song playlist")):
        values = server[method] or client[method]
        source = "server" if server[method] else "client"
        value = p95(values)
        out.append(Row(f"{what}, {source} p95 over {len(values)}", "—", f"{value:.1f} ms", "—",
                       f"≤ {TARGET_MS:.0f} ms", value <= TARGET_MS))
    return out
