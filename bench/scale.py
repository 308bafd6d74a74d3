"""Scale rows (issue 12, SPEC 11): a 1,000,000-song library of generated rows (and the same at
100,000, shown as the reference so the growth shows): every listener page, the admin lists
(first and last page), the API lists and searches, cold and warm, server p95 ≤ 100 ms, memory
flat; the worst statement's plan; 1,000 song inserts and deletes through the services (16 at a
time, one at a time, and as `import` writes them); `reindex`.

For each size: `bench.scale_data` fills a database of its own (dropped at the end); an admin and a
member are made with `python -m app create-user` (the member takes over `listener1`'s plays,
library and playlists); `python -m app reindex` builds the search index (bounded: past
REINDEX_BOUND seconds it is stopped and the rate projected); the app is then served in this
process like bench/search.py, on 127.0.0.1, with an outermost timing middleware. Server time is
that middleware's (handler entry to response ready, every app middleware included); the
client-observed time on loopback is printed beside it (cold/warm p95), not tabled.

Cold: before each cold request every Redis key of the bench's own namespace is deleted with
SCAN + DEL (never FLUSHDB: Redis db 0 is shared) and a broadcast on the namespace's channel that
is not a key list makes the app drop its in-process copy (app/adapters/cache.py) — so nothing the
app caches survives (MariaDB's buffer pool stays warm: this is the app's cold, not the disk's).
Warm: the same request after one untimed one.

MariaDB's slow log goes to a table with `long_query_time=0` while the app serves the timed
requests (those globals are read at connect, so they are set before the app opens its pool, and
put back as they were in a `finally`); the slowest SELECT of the bench database in the timed
window is EXPLAINed and printed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import hashlib
import math
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiomysql
from aiohttp import web

from app.repos.db import DbTarget
from bench.common import MYSQL_URL, REDIS_URL, ROOT, Context, Row, free_port
from bench.scale_data import Size, drop_triggers, generate, give_listener_data, restore_triggers

DATABASE = "sonora_bench_scale"
SIZES = [int(n) for n in os.environ.get("BENCH_SCALE_SONGS", "100000,1000000").split(",") if n]
COLD_N = int(os.environ.get("BENCH_SCALE_COLD", "15"))
WARM_N = int(os.environ.get("BENCH_SCALE_WARM", "30"))
BUDGET_S = float(os.environ.get("BENCH_SCALE_BUDGET", "4"))  # per request and mode, ≥ 3 samples
MIN_SAMPLES = 3
REINDEX_BOUND = float(os.environ.get("BENCH_SCALE_REINDEX_SECONDS", "240"))
WRITES = 1000
WRITE_BOUND = 45.0  # seconds for each of the inserts and the deletes
WRITERS = 16  # writes in flight at once in the concurrent rows (a pool of as many connections)
IMPORT_BATCH = 200  # songs a transaction, as app/cli/importer.py writes them
TARGET_MS = 100.0
REINDEX_TARGET = 1_000_000 / 300  # songs/s: 1M songs in ≤ 300 s
ADMIN = ("scaleadmin", "scale admin password 1")
MEMBER = ("scalemember", "scale member password 1")


@dataclass
class Req:
    key: str  # the same for both sizes (the table's row)
    label: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    admin: bool = False
    prime: list[dict[str, str]] = field(default_factory=list)  # asked first, untimed, each time


@dataclass
class Timing:
    server: list[float] = field(default_factory=list)
    client: list[float] = field(default_factory=list)
    statuses: set[int] = field(default_factory=set)

    def p95(self) -> float:
        return _p95(self.server)


@dataclass
class SizeResult:
    songs: int
    generate_s: float = 0.0
    timings: dict[str, tuple[Req, Timing, Timing]] = field(default_factory=dict)  # cold, warm
    rss_before: float = 0.0
    rss_after: float = 0.0
    reindex: str = ""
    reindex_rate: float = 0.0
    reindex_s: float = 0.0
    reindex_done: bool = False
    inserts: float = 0.0
    deletes: float = 0.0
    inserts_at_once: float = 0.0
    deletes_at_once: float = 0.0
    statement_inserts: float = 0.0
    statement_deletes: float = 0.0
    bare_inserts: float = 0.0
    bare_deletes: float = 0.0
    batch_inserts: float = 0.0
    batch_deletes: float = 0.0
    write_note: str = ""
    worst: str = ""
    plan: str = ""
    seconds: float = 0.0


def _p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- MariaDB ---------------------------------------------------------------------------------
async def _root_conn(db: str | None = None) -> aiomysql.Connection:
    t = DbTarget.parse(f"{MYSQL_URL}/x")
    return await aiomysql.connect(host=t.host, port=t.port, user=t.user, password=t.password,
                                  db=db, autocommit=True)


async def _query(sql: str, params: Any = (), db: str | None = None) -> list[tuple[Any, ...]]:
    conn = await _root_conn(db)
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql, params or None)  # no parameters: a `%` in the text stays
            return list(await cur.fetchall())
    finally:
        conn.close()


class SlowLog:
    """The server's slow log to `mysql.slow_log`, every statement, while in use; the previous
    globals put back on exit (and the table emptied again if it was empty and the log off)."""

    SETTINGS = ("log_output", "long_query_time", "slow_query_log")

    def __init__(self) -> None:
        self.before: dict[str, Any] = {}
        self.rows_before = 0

    async def __aenter__(self) -> SlowLog:
        got = await _query("SELECT @@GLOBAL.log_output, @@GLOBAL.long_query_time,"
                           " @@GLOBAL.slow_query_log")
        self.before = dict(zip(self.SETTINGS, got[0], strict=True))
        self.rows_before = int((await _query("SELECT COUNT(*) FROM mysql.slow_log"))[0][0])
        out = str(self.before["log_output"])
        wanted = out if "TABLE" in out.upper().split(",") else "TABLE"
        await _query(f"SET GLOBAL log_output = '{wanted}'")
        await _query("SET GLOBAL long_query_time = 0")
        await _query("SET GLOBAL slow_query_log = 1")
        return self

    async def __aexit__(self, *exc: object) -> None:
        b = self.before
        await _query(f"SET GLOBAL slow_query_log = {int(b['slow_query_log'])}")
        await _query(f"SET GLOBAL long_query_time = {float(b['long_query_time'])}")
        await _query(f"SET GLOBAL log_output = '{b['log_output']}'")

    async def tidy(self) -> None:
        """Empty the table again when it was empty and the log off before (as found)."""
        if self.rows_before == 0 and not int(self.before.get("slow_query_log", 1)):
            await _query("TRUNCATE TABLE mysql.slow_log")


Span = tuple[dt.datetime, dt.datetime, str]  # a timed request's start and end on the server's clock


async def _worst_statement(since: dt.datetime, until: dt.datetime, spans: list[Span]
                           ) -> tuple[str, str]:
    """The slowest SELECT of the bench database in the window, with its EXPLAIN: (row text,
    printed plan)."""
    rows = await _query(
        "SELECT start_time, query_time, rows_examined, rows_sent, CONVERT(sql_text USING utf8mb4)"
        " FROM mysql.slow_log WHERE db = %s AND start_time BETWEEN %s AND %s"
        " ORDER BY query_time DESC LIMIT 200", (DATABASE, since, until))
    selects = [r for r in rows if re.match(r"\s*(\(\s*)?(SELECT|WITH)\b", r[4] or "", re.I)]
    if not selects:
        return "no SELECT in the slow log", ""
    def owner_of(start: dt.datetime) -> str | None:
        """The timed request it served: its start inside a request's span (the server's clock)."""
        return next((label for t0, t1, label in spans if t0 <= start <= t1), None)

    # The slowest one that served a timed request (not an untimed warm-up), else the slowest.
    timed = [r for r in selects if owner_of(r[0])]
    start, qtime, examined, sent, sql = (timed or selects)[0]
    ms = qtime.total_seconds() * 1000 if isinstance(qtime, dt.timedelta) else float(qtime) * 1000
    owner = owner_of(start) or "an untimed warm-up request"
    lines = [f"worst statement: {ms:.1f} ms, rows examined {examined:,}, sent {sent:,},"
             f" during {owner}", f"  {sql}"]
    compact = ""
    try:
        plan = await _query(f"EXPLAIN {sql}", db=DATABASE)
        cols = ("id", "select_type", "table", "type", "possible_keys", "key", "key_len", "ref",
                "rows", "Extra")
        lines.append("  " + " | ".join(cols))
        lines += ["  " + " | ".join("" if v is None else str(v) for v in p) for p in plan]
        compact = "; ".join(f"{p[2]}: {p[3]} key={p[5]} rows={p[8]} {p[9] or ''}".strip()
                            for p in plan)
    except Exception as exc:  # noqa: BLE001 - a plan that cannot be shown is reported, not fatal
        lines.append(f"  EXPLAIN failed: {exc}")
    # The top few, to see whether one statement dominates.
    lines.append("  next slowest:")
    for r in [r for r in (timed or selects) if r[4] != sql][:5]:
        t = r[1].total_seconds() * 1000 if isinstance(r[1], dt.timedelta) else float(r[1]) * 1000
        lines.append(f"    {t:8.1f} ms  {(r[4] or '')[:150]}")
    short = re.sub(r"\s+", " ", sql)[:160]
    row = f"{ms:.0f} ms during {owner}: `{short}`" + (f" — plan: {compact}" if compact else "")
    return row, "\n".join(lines)


# -- Redis: the cold state --------------------------------------------------------------------
class Cold:
    """Delete every key of the namespace (SCAN + DEL) and make the app drop its L1 copy."""

    def __init__(self, namespace: str) -> None:
        import redis.asyncio as aioredis

        self.namespace = namespace
        self.client = aioredis.Redis.from_url(REDIS_URL)

    async def __call__(self) -> int:
        keys = [k async for k in self.client.scan_iter(match=f"{self.namespace}:*", count=1000)]
        for i in range(0, len(keys), 500):
            await self.client.delete(*keys[i:i + 500])
        # Not a key list: every listening process drops its whole in-process copy.
        await self.client.publish(f"{self.namespace}:broadcast", b"bench: cold")
        await asyncio.sleep(0.02)  # the app's subscriber runs on this loop
        return len(keys)

    async def close(self) -> None:
        await self()
        await self.client.aclose()


# -- the steps ---------------------------------------------------------------------------------
def _requests(songs: int, totals: dict[str, int], rest: dict[str, str]) -> list[Req]:
    per = 20  # an admin list's page and the API's default limit
    last = {k: max(1, math.ceil(v / per)) for k, v in totals.items()}
    off = {k: max(0, v - per) for k, v in totals.items()}
    q = "Song 777"
    return [
        Req("home", "`GET /` (home)", "/"),
        Req("browse_genre", "`/browse?genre=Rock`", "/browse", {"genre": "Rock"}),
        Req("browse_year", "`/browse?year=1999`", "/browse", {"year": "1999"}),
        Req("artist", "`/artist/1`", "/artist/1"),
        Req("album", "`/album/1`", "/album/1"),
        Req("search", f"`/search?q={q}`", "/search", {"q": q}),
        Req("history", "`/history`", "/history"),
        Req("library", "`/library`", "/library"),
        Req("admin", "`/admin` (dashboard)", "/admin", admin=True),
        Req("admin_songs", "`/admin/songs` first page", "/admin/songs", admin=True),
        Req("admin_songs_last", "`/admin/songs` last page", "/admin/songs",
            {"page": str(last["songs"])}, admin=True),
        Req("admin_songs_q", f"`/admin/songs?q={q}`", "/admin/songs", {"q": q}, admin=True),
        Req("admin_albums", "`/admin/albums` first page", "/admin/albums", admin=True),
        Req("admin_albums_last", "`/admin/albums` last page", "/admin/albums",
            {"page": str(last["albums"])}, admin=True),
        Req("admin_artists", "`/admin/artists` first page", "/admin/artists", admin=True),
        Req("admin_artists_last", "`/admin/artists` last page", "/admin/artists",
            {"page": str(last["artists"])}, admin=True),
        Req("admin_users", "`/admin/users`", "/admin/users", admin=True),
        Req("admin_audit", "`/admin/audit`", "/admin/audit", admin=True),
        Req("api_song", "`/api/song?limit=20`", "/api/song", {"limit": "20"}),
        Req("api_song_last", "`/api/song?limit=20&offset=<last page>`", "/api/song",
            {"limit": "20", "offset": str(off["songs"])}),
        Req("api_song_jazz", "`/api/song?genre=Jazz&offset=<songs/10>`", "/api/song",
            {"genre": "Jazz", "offset": str(songs // 10)}),
        Req("api_song_q", f"`/api/song?q={q}`", "/api/song", {"q": q}),
        Req("api_album_last", "`/api/album?offset=<last page>`", "/api/album",
            {"offset": str(off["albums"])}),
        Req("api_artist_last", "`/api/artist?offset=<last page>`", "/api/artist",
            {"offset": str(off["artists"])}),
        Req("api_artist_albums", "`/api/artist/1/albums`", "/api/artist/1/albums"),
        Req("charts", "`/api/stream/charts?period=week`", "/api/stream/charts", {"period": "week"}),
        *_subsonic_requests(totals, rest),
    ]


def _subsonic_requests(totals: dict[str, int], rest: dict[str, str]) -> list[Req]:
    """What a Subsonic app asks when it syncs (SPEC 13): every artist in one index, albums by
    name, newest, year and genre in pages of 500 (the first and one deep in the list), and the
    empty-query search3 that pages through every song by 500 (a page reached by walking, read
    by key from where the last one ended, and one jumped to in the middle, counted)."""
    mid_albums = max(0, totals["albums"] // 2 // 500 * 500)
    mid_songs = max(0, totals["songs"] // 2 // 500 * 500)
    walked = 1000  # the bench walks 0, 500, 1000 first: the third page is read by key

    def list2(kind: str, **extra: str) -> dict[str, str]:
        return {**rest, "type": kind, "size": "500", **extra}

    def songs(offset: int) -> dict[str, str]:
        return {**rest, "query": "", "songCount": "500", "songOffset": str(offset),
                "albumCount": "0", "artistCount": "0"}

    return [
        Req("rest_artists", "`/rest/getArtists` (every artist, one index)", "/rest/getArtists",
            dict(rest)),
        Req("rest_by_name", "`/rest/getAlbumList2?type=alphabeticalByName&size=500`, middle",
            "/rest/getAlbumList2", list2("alphabeticalByName", offset=str(mid_albums))),
        Req("rest_newest", "`/rest/getAlbumList2?type=newest&size=500`, first page",
            "/rest/getAlbumList2", list2("newest")),
        Req("rest_newest_mid", "`/rest/getAlbumList2?type=newest&size=500`, middle",
            "/rest/getAlbumList2", list2("newest", offset=str(mid_albums))),
        Req("rest_by_year", "`/rest/getAlbumList2?type=byYear&fromYear=1990&toYear=2000&size=500`",
            "/rest/getAlbumList2", list2("byYear", fromYear="1990", toYear="2000")),
        Req("rest_by_genre", "`/rest/getAlbumList2?type=byGenre&genre=Rock&size=500`",
            "/rest/getAlbumList2", list2("byGenre", genre="Rock")),
        Req("rest_album", "`/rest/getAlbum` (an album with its songs)", "/rest/getAlbum",
            {**rest, "id": "al-1"}),
        Req("rest_search_walk", "`/rest/search3?query=&songCount=500`, third page (walked to)",
            "/rest/search3", songs(walked), prime=[songs(0), songs(500)]),
        Req("rest_search_mid", "`/rest/search3?query=&songCount=500`, a page in the middle",
            "/rest/search3", songs(mid_songs)),
        Req("rest_search3", "`/rest/search3?query=Song 777` (20 of each, as an app searches)",
            "/rest/search3", {**rest, "query": "Song 777"}),
    ]


def _run_cli(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=env, check=True,  # noqa: S603
                   capture_output=True, timeout=120)


async def _reindex(env: dict[str, str], res: SizeResult) -> None:
    """`python -m app reindex`, stopped after REINDEX_BOUND s (rate and projection then)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "reindex", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    started = time.monotonic()
    done = total = 0
    tail = b""

    async def read() -> None:
        nonlocal done, total, tail
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(4096):
            tail = (tail + chunk)[-4096:]
            for m in re.finditer(rb"\] (\d+)/(\d+)", chunk):
                done, total = int(m[1]), int(m[2])
    try:
        await asyncio.wait_for(read(), REINDEX_BOUND)
        await proc.wait()
        seconds = time.monotonic() - started
        res.reindex_done = proc.returncode == 0
        res.reindex_s = seconds
        res.reindex_rate = res.songs / seconds
        res.reindex = (f"{seconds:.1f} s, {res.reindex_rate:,.0f} songs/s ({done:,} documents)"
                       if res.reindex_done else f"failed: {tail.decode(errors='replace')[-300:]}")
    except TimeoutError:
        seconds = time.monotonic() - started
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        rate = done / seconds if seconds else 0.0
        projected = total / rate if rate else float("inf")
        res.reindex_s = projected
        res.reindex_rate = res.songs / projected if projected else 0.0
        res.reindex = (f"stopped after {seconds:.0f} s at {done:,}/{total:,} documents"
                       f" ({rate:,.0f} documents/s): projected {projected:.0f} s in all,"
                       f" {res.reindex_rate:,.0f} songs/s (the search page then has no index)")


async def _login(session: aiohttp.ClientSession, who: tuple[str, str]) -> dict[str, str]:
    resp = await session.post("/api/auth/login", json={"username": who[0], "password": who[1]})
    resp.raise_for_status()
    return {"Authorization": f"Bearer {(await resp.json())['access_token']}"}


async def _server_now(conn: aiomysql.Connection) -> dt.datetime:
    async with conn.cursor() as cur:
        await cur.execute("SELECT NOW(6)")
        return (await cur.fetchone())[0]


async def _serve_and_time(env: dict[str, str], res: SizeResult) -> list[Span]:
    """Serve the app in this process and time every request cold and warm; returns the timed
    requests' spans on the server's clock, to find which one ran the slowest statement."""
    from app.config import load_config
    from app.main import create_app, tune_gc

    config = load_config(environ=env, env_file=None)
    app = create_app(config)
    collector = gc.get_threshold()
    tune_gc(app)  # as `serve` runs it: the collector tuned, start-up's heap frozen
    last: list[float] = []
    clock = await _root_conn()

    @web.middleware
    async def timing(request: web.Request, handler: Any) -> web.StreamResponse:
        t0 = time.perf_counter()
        try:
            return await handler(request)
        finally:
            last.append((time.perf_counter() - t0) * 1000)

    app.middlewares.insert(0, timing)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    cold = Cold(config.namespace)
    spans: list[Span] = []
    timeout = aiohttp.ClientTimeout(total=120)
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", timeout=timeout) as session:
            admin, member = await _login(session, ADMIN), await _login(session, MEMBER)
            totals = {}
            for name, path in (("songs", "/api/song"), ("albums", "/api/album"),
                               ("artists", "/api/artist")):
                r = await session.get(path, params={"limit": "1"}, headers=member)
                totals[name] = int((await r.json())["total"])
            made = await session.post("/api/user/me/app-passwords", json={"label": "bench"},
                                      headers=member)
            rest = {"u": MEMBER[0], "p": (await made.json())["password"], "v": "1.16.1",
                    "c": "sonora-bench", "f": "json"}
            reqs = _requests(res.songs, totals, rest)

            async def fetch(req: Req) -> tuple[int, float, float]:
                for params in req.prime:  # the pages an app asked before this one
                    await (await session.get(req.path, params=params)).read()
                last.clear()
                t0 = time.perf_counter()
                r = await session.get(req.path, params=req.params,
                                      headers=admin if req.admin else member, allow_redirects=False)
                body = await r.read()
                client = (time.perf_counter() - t0) * 1000
                status = r.status
                if req.path.startswith("/rest/") and b'"status":"ok"' not in body.replace(b" ", b""):
                    status = 599  # a Subsonic error travels in a 200: counted as a failure
                return status, last[-1] if last else client, client

            for req in reqs:  # untimed: templates compiled, pools filled, before RSS is read
                await fetch(req)
            res.rss_before = _rss_mib()
            for req in reqs:
                runs = []
                for mode, n in (("cold", COLD_N), ("warm", WARM_N)):
                    timing_ = Timing()
                    if mode == "warm":
                        await fetch(req)
                    started = time.monotonic()
                    for i in range(n):
                        if i >= MIN_SAMPLES and time.monotonic() - started > BUDGET_S:
                            break
                        if mode == "cold":
                            await cold()
                        w0 = await _server_now(clock)
                        status, server, client = await fetch(req)
                        spans.append((w0, await _server_now(clock), f"{req.label} ({mode})"))
                        timing_.server.append(server)
                        timing_.client.append(client)
                        timing_.statuses.add(status)
                    runs.append(timing_)
                res.timings[req.key] = (req, runs[0], runs[1])
                c, w = runs
                print(f"  {res.songs:>9,}  {req.label:<60} cold p95 {c.p95():8.1f} ms (n={len(c.server)})"
                      f"  warm p95 {w.p95():8.1f} ms (n={len(w.server)})"
                      f"  client p95 {_p95(c.client):.1f}/{_p95(w.client):.1f} ms"
                      f"  {sorted(c.statuses | w.statuses)}", flush=True)
            res.rss_after = _rss_mib()
    finally:
        clock.close()
        await runner.cleanup()
        gc.unfreeze()
        gc.set_threshold(*collector)
        await cold.close()  # after the app stopped: none of its keys left in Redis
    return spans


async def _writes(env: dict[str, str], res: SizeResult) -> None:
    """1,000 songs inserted through IngestService.add_song (as an upload does after probing,
    with its cache invalidation) and deleted through CatalogService.delete_song: WRITERS at a
    time (uploads and deletions as they arrive together), then one at a time (each waits for
    its own commit: the latency of one write). The services are wired by the composition root
    as the web app wires them (its routes for the links), over a pool of their own with the
    slow log off again; the event consumers are not running here (as with a broker, where the
    worker runs them): the events stay in the outbox, so the figure is the write path's own
    cost. The songs come ten to an album, as a library's folders hold them."""
    from app.adapters.kv import kv_context
    from app.config import load_config
    from app.container import build_services
    from app.main import create_app
    from app.media.probe import AudioInfo
    from app.repos.db import database_context
    from app.services.catalog import Actor
    from app.services.ingest import Prepared
    from app.web.links import RouterLinks

    config = load_config(environ=env, env_file=None)
    size = Size.for_songs(res.songs)
    router = create_app(config).router  # for the links the services put in their answers
    async with database_context(config.database_url, maxsize=WRITERS, migrate=False) as db, \
            kv_context(config) as kv:
        services = build_services(config, db, kv, local_cache=False, links=RouterLinks(router))
        ingest, catalog = services.ingest, services.catalog
        admin_id = int(await db.fetchval(
            "SELECT id FROM users WHERE username_canon = %s", (ADMIN[0],)))
        actor = Actor(admin_id, ADMIN[0])

        def songs(run: str) -> list[Prepared]:
            made = []
            for i in range(WRITES):
                album = 1 + (i // 10 * 37) % size.albums
                artist = 1 + (album - 1) % size.artists  # the album's artist, as generated
                info = AudioInfo(codec="mp3", container="mp3", mime_type="audio/mpeg", ext="mp3",
                                 duration_ms=200_000, bitrate=320_000, sample_rate=44_100,
                                 channels=2, title=f"Scale write {i}", artist=f"Artist {artist}",
                                 album=f"Album {album}", genre="Rock", year=2001,
                                 track_number=1 + i % 10)
                sha = hashlib.sha256(f"scale-write-{run}-{i}".encode()).hexdigest()
                made.append(Prepared(info, f"bench-writes/{sha}.mp3", sha, 4_000_000))
            return made

        async def add(prepared: Prepared) -> int:
            song_id, dropped = await ingest.add_song(prepared, {}, actor)
            await catalog.after_write(f"song:{song_id}", *dropped)
            return song_id

        async def timed(work: list[Any], do: Callable[[Any], Awaitable[Any]], at_once: int
                        ) -> tuple[list[Any], float]:
            done: list[Any] = []
            queue = list(reversed(work))
            started = time.monotonic()

            async def writer() -> None:
                while queue and time.monotonic() - started <= WRITE_BOUND:
                    done.append(await do(queue.pop()))

            await asyncio.gather(*(writer() for _ in range(at_once)))
            return done, time.monotonic() - started

        for at_once in (WRITERS, 1):
            ids, insert_s = await timed(songs(secrets.token_hex(4)), add, at_once)
            deleted, delete_s = await timed(ids, lambda i: catalog.delete_song(i, actor), at_once)
            rates = (len(ids) / insert_s if insert_s else 0.0,
                     len(deleted) / delete_s if delete_s else 0.0)
            if at_once == 1:
                res.inserts, res.deletes = rates
            else:
                res.inserts_at_once, res.deletes_at_once = rates
            if len(ids) < WRITES or len(deleted) < len(ids):
                res.write_note += (f" (stopped at {WRITE_BOUND:.0f} s: {len(ids)} inserted,"
                                   f" {len(deleted)} deleted, {at_once} at a time)")
        await _importer_writes(services, songs(secrets.token_hex(4)), res)
    await Cold(config.namespace).close()
    await _statement_writes(env, res)


async def _statement_writes(env: dict[str, str], res: SizeResult) -> None:
    """What the maintained counts cost a write: 1,000 songs inserted and deleted by the
    repository's own statements (CatalogRepo.insert_song / delete_song, which the services
    call), a transaction and commit each, WRITERS connections at once, with the count triggers
    firing; then the same with the triggers set aside (the reference), and put back."""
    from app.config import load_config
    from app.repos.catalog import CatalogRepo
    from app.repos.db import database_context

    config = load_config(environ=env, env_file=None)
    size = Size.for_songs(res.songs)
    async with database_context(config.database_url, maxsize=WRITERS, migrate=False) as db:
        repo = CatalogRepo(db)

        async def rates() -> tuple[float, float]:
            run = secrets.token_hex(4)
            todo = list(range(WRITES))
            ids: list[int] = []

            async def insert() -> None:
                while todo:
                    i = todo.pop()
                    album = 1 + (i // 10 * 37) % size.albums
                    async with db.transaction() as tx:
                        ids.append(await repo.insert_song(tx, {
                            "title": f"Statement write {i}", "artist_id": 1 + (album - 1) % size.artists,
                            "album_id": album, "track_number": 1 + i % 10, "duration_ms": 200_000,
                            "bitrate": 320_000, "sample_rate": 44_100, "codec": "mp3",
                            "mime_type": "audio/mpeg", "size": 4_000_000, "genre": "Rock", "year": 2001,
                            "sha256": hashlib.sha256(f"{run}-{i}".encode()).hexdigest(),
                            "file_path": f"bench-statements/{run}/{i}.mp3"}))

            async def delete() -> None:
                while ids:
                    song_id = ids.pop()
                    async with db.transaction() as tx:
                        await repo.delete_song(tx, song_id)

            started = time.monotonic()
            await asyncio.gather(*(insert() for _ in range(WRITERS)))
            inserted = time.monotonic() - started
            started = time.monotonic()
            await asyncio.gather(*(delete() for _ in range(WRITERS)))
            return WRITES / inserted, WRITES / (time.monotonic() - started)

        res.statement_inserts, res.statement_deletes = await rates()
        triggers = await drop_triggers(db, DATABASE)
        try:
            res.bare_inserts, res.bare_deletes = await rates()
        finally:
            await restore_triggers(db, triggers)


async def _importer_writes(services: Any, preps: list[Any], res: SizeResult) -> None:
    """The same songs written as `import` writes them: IMPORT_BATCH songs a transaction with
    their events (IngestService.insert_from_file, the count triggers firing per row), the cache
    dropped once per batch; then removed as a rescan removes them (IngestService.remove_songs)."""
    from app import events
    from app.services.ingest import Batch

    ingest = services.ingest
    ids: list[int] = []
    memo = Batch()
    started = time.monotonic()
    for lo in range(0, len(preps), IMPORT_BATCH):
        keys: list[str] = []
        memo = memo.carry()
        async with services.db.transaction() as tx:
            for prepared in preps[lo:lo + IMPORT_BATCH]:
                song_id, dropped = await ingest.insert_from_file(tx, prepared, memo)
                ids.append(song_id)
                keys += dropped
            await events.emit_many(tx, memo.events)
        await services.catalog.after_write(*dict.fromkeys(keys))
    insert_s = time.monotonic() - started
    started = time.monotonic()
    for lo in range(0, len(ids), IMPORT_BATCH):
        await ingest.remove_songs(ids[lo:lo + IMPORT_BATCH])
    delete_s = time.monotonic() - started
    res.batch_inserts = len(ids) / insert_s if insert_s else 0.0
    res.batch_deletes = len(ids) / delete_s if delete_s else 0.0


async def _one_size(ctx: Context, songs: int) -> SizeResult:
    res = SizeResult(songs)
    begun = time.monotonic()
    size = Size.for_songs(songs)
    print(f"-- {songs:,} songs: generating {size}", flush=True)
    res.generate_s = await generate(DATABASE, size, progress=False)
    print(f"   generated in {res.generate_s:.0f} s", flush=True)
    namespace = f"benchscale_{secrets.token_hex(3)}"
    env = ctx.app_env(database_url=f"{MYSQL_URL}/{DATABASE}", namespace=namespace,
                      data_dir=str(ctx.tmp / f"scale-{songs}"), amqp_url="")
    try:
        for (user, password), admin in ((ADMIN, True), (MEMBER, False)):
            await asyncio.to_thread(_run_cli, env, "create-user", "--email", f"{user}@example.com",
                                    "--username", user, "--password", password,
                                    *(["--admin"] if admin else []))
        await give_listener_data(DATABASE, MEMBER[0])
        await _reindex(env, res)
        print(f"   reindex: {res.reindex}", flush=True)
        log = SlowLog()
        async with log:  # before the app opens its pool: the settings are read at connect
            since = (await _query("SELECT NOW(6)"))[0][0]
            spans = await _serve_and_time(env, res)
            until = (await _query("SELECT NOW(6)"))[0][0]
        try:
            res.worst, res.plan = await _worst_statement(since, until, spans)
        finally:
            await log.tidy()
        print(res.plan, flush=True)
        try:
            await _writes(env, res)
        except Exception as exc:  # noqa: BLE001 - the service API moved: say so in the row
            res.write_note = f" (failed: {type(exc).__name__}: {exc})"
        print(f"   writes: {res.inserts_at_once:,.0f} inserts/s, {res.deletes_at_once:,.0f} deletes/s"
              f" {WRITERS} at a time; {res.inserts:,.0f} inserts/s, {res.deletes:,.0f} deletes/s"
              " one at a time; "
              f"{res.batch_inserts:,.0f} inserts/s, {res.batch_deletes:,.0f} deletes/s as import writes"
              f"{res.write_note}", flush=True)
    finally:
        await _query(f"DROP DATABASE IF EXISTS `{DATABASE}`")
    res.seconds = time.monotonic() - begun
    print(f"   {songs:,} songs done in {res.seconds:.0f} s", flush=True)
    return res


# -- the table ---------------------------------------------------------------------------------
def _k(songs: int) -> str:
    return f"{songs // 1_000_000}M" if songs % 1_000_000 == 0 else f"{songs // 1000}k"


def _cell(req_key: str, res: SizeResult) -> str:
    _, c, w = res.timings[req_key]
    bad = sorted(s for s in c.statuses | w.statuses if s >= 400)
    err = f" **HTTP {', '.join(map(str, bad))}**" if bad else ""
    return (f"{_k(res.songs)}: cold p95 {c.p95():.1f} ms, warm p95 {w.p95():.1f} ms"
            f" (n={len(c.server)}/{len(w.server)}){err}")


def _table(results: list[SizeResult]) -> list[Row]:
    big = results[-1]
    ref = results[0] if len(results) > 1 else None
    rows: list[Row] = []
    for key, (req, c, w) in big.timings.items():
        worst = max(c.p95(), w.p95())
        bad = any(s >= 400 for s in c.statuses | w.statuses)
        ratio = "—"
        if ref is not None and key in ref.timings:
            r = max(ref.timings[key][1].p95(), ref.timings[key][2].p95())
            ratio = f"{worst / r:.1f}×" if r > 0 else "—"
        rows.append(Row(f"{_k(big.songs)} songs: {req.label}",
                        _cell(key, ref) if ref is not None and key in ref.timings else "—",
                        _cell(key, big), ratio, "p95 ≤ 100 ms (server, cold and warm)",
                        worst <= TARGET_MS and not bad))
    met = sum(1 for r in rows if r.met)
    rows.append(Row(f"{_k(big.songs)} songs: requests within p95 ≤ 100 ms (cold and warm)",
                    f"{_k(ref.songs)}: {sum(1 for k in ref.timings if _ok(ref, k))}/{len(ref.timings)}"
                    if ref else "—", f"{met}/{len(big.timings)}", "—", "all", met == len(big.timings)))
    growth = big.rss_after / big.rss_before if big.rss_before else float("nan")
    rows.append(Row(f"{_k(big.songs)} songs: process RSS (app served in the bench process) before"
                    " and after the timed requests",
                    f"{_k(ref.songs)}: {ref.rss_before:.0f} → {ref.rss_after:.0f} MiB" if ref else "—",
                    f"{big.rss_before:.0f} → {big.rss_after:.0f} MiB", f"{growth:.2f}×",
                    "memory flat (≤ 1.25×)", growth <= 1.25))
    rows.append(Row(f"{_k(big.songs)} songs: worst statement during the timed requests (slow log)",
                    f"{_k(ref.songs)}: {ref.worst.split(':')[0]}" if ref else "—", big.worst, "—",
                    "—", None))
    for what, attr, bare in (("INSERT", "statement_inserts", "bare_inserts"),
                             ("DELETE", "statement_deletes", "bare_deletes")):
        got, ref_rate = float(getattr(big, attr)), float(getattr(big, bare))
        rows.append(Row(f"{_k(big.songs)} songs: {WRITES:,} song {what}s with the count triggers firing,"
                        f" {WRITERS} connections, a commit each (CatalogRepo.insert_song /"
                        " delete_song: what the maintained counts cost a write)",
                        f"the same with the triggers set aside: {ref_rate:,.0f}/s",
                        f"{got:,.0f}/s", f"{got / ref_rate:.2f}×" if ref_rate else "—",
                        "≥ 1,000/s", got >= 1000))
    for what, attr in (("inserts", "inserts_at_once"), ("deletes", "deletes_at_once")):
        path = ("IngestService.add_song + cache invalidation" if what == "inserts"
                else "CatalogService.delete_song")
        got = float(getattr(big, attr))
        rows.append(Row(f"{_k(big.songs)} songs: {WRITES:,} song {what}, {WRITERS} at a time, "
                        f"as uploads and deletions arrive ({path})",
                        f"{_k(ref.songs)}: {getattr(ref, attr):,.0f}/s" if ref else "—",
                        f"{got:,.0f}/s{big.write_note}", "—", "≥ 1,000/s", got >= 1000))
    for what, attr in (("inserts", "inserts"), ("deletes", "deletes")):
        got = float(getattr(big, attr))
        rows.append(Row(f"{_k(big.songs)} songs: the same song {what}, one at a time (each waits"
                        " for its commit and cache invalidation: a write's latency)",
                        f"{_k(ref.songs)}: {getattr(ref, attr):,.0f}/s" if ref else "—",
                        f"{got:,.0f}/s ({1000 / got if got else 0:.2f} ms each)", "—",
                        "— (the rows above and below carry the target)", None))
    for what, attr in (("inserts", "batch_inserts"), ("deletes", "batch_deletes")):
        path = ("IngestService.insert_from_file, events in the same transaction" if what == "inserts"
                else "IngestService.remove_songs, as a rescan removes")
        got = float(getattr(big, attr))
        rows.append(Row(f"{_k(big.songs)} songs: the same song {what} as `import` writes them, "
                        f"{IMPORT_BATCH} a transaction ({path})",
                        f"{_k(ref.songs)}: {getattr(ref, attr):,.0f}/s" if ref else "—",
                        f"{got:,.0f}/s", "—", "≥ 1,000/s", got >= 1000))
    rows.append(Row(f"`reindex` of {big.songs:,} songs (`python -m app reindex`)",
                    f"{_k(ref.songs)}: {ref.reindex}" if ref else "—", big.reindex, "—",
                    f"≤ 300 s for 1M (≥ {REINDEX_TARGET:,.0f} songs/s)",
                    big.reindex_rate >= REINDEX_TARGET))
    return rows


def _ok(res: SizeResult, key: str) -> bool:
    _, c, w = res.timings[key]
    return max(c.p95(), w.p95()) <= TARGET_MS and not any(s >= 400 for s in c.statuses | w.statuses)


async def _rows(ctx: Context) -> list[Row]:
    started = time.monotonic()
    results = []
    for songs in SIZES:
        results.append(await _one_size(ctx, songs))
    print(f"   scale group: {time.monotonic() - started:.0f} s"
          f" ({', '.join(f'{_k(r.songs)} {r.seconds:.0f} s' for r in results)})", flush=True)
    return _table(results)


def rows(ctx: Context) -> list[Row]:
    return asyncio.run(_rows(ctx))

