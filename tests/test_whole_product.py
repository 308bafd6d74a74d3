"""The whole product, run as a new user runs it (issue 10 §7).

`python -m app bootstrap` and `python -m app run` on a fresh database and data directory start the
demo import, the worker and the web server as real processes on the real MariaDB, Redis and
RabbitMQ. Then, with the worker running: an in-place import of a few hundred generated files,
bursts of edits, plays, likes and playlist changes through the API, and an in-place rescan after
tag edits, moves and a deletion. Search, play counts, listening time, history, the library,
playlists and the audit log must converge within a bound, `/api/health` must say `ok`, and SIGTERM
must stop every process within the drain bound.

This is the test that catches what part-by-part tests cannot: more events in flight than the
worker has connections, and a rescan after a tag edit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiomysql
import mutagen.id3
import pytest
from conftest import AMQP_URL, MYSQL_URL, REDIS_URL, RUN_ID, _admin_sql

from app.media import audiogen
from app.repos.db import DbTarget

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

SONGS = 240  # generated files imported in place, beside the demo library
ARTISTS = 12
ALBUMS_PER_ARTIST = 4
CONVERGE = 120.0  # seconds every derived view gets to catch up
DRAIN = 30.0  # seconds SIGTERM gets to stop the server and the worker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Product:
    """The running product: its processes, its URL and what the test made in it."""

    base: str
    env: dict[str, str]
    cwd: Path
    data_dir: Path
    database: str
    log: Path
    proc: subprocess.Popen[bytes]
    admin_password: str
    files: dict[int, Path] = field(default_factory=dict)  # song id -> file

    def cli(self, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        """Run `python -m app ARGS` as the user would, with the product's settings."""
        return subprocess.run([sys.executable, "-m", "app", *args], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


async def _sql(product: Product, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    t = DbTarget.parse(product.env["SONORA_DATABASE_URL"])
    conn = await aiomysql.connect(host=t.host, port=t.port, user=t.user, password=t.password,
                                  db=t.database, autocommit=True)
    try:
        async with conn.cursor() as cur:
            await cur.execute(statement, params)
            return list(await cur.fetchall())
    finally:
        conn.close()


async def converge(what: str, check: Callable[[], Awaitable[bool]], product: Product,
                   timeout: float = CONVERGE) -> None:
    """Wait until `check()` holds; fail with the server's log when it never does."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
            if await check():
                return
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not converge within {timeout:.0f} s\n--- log ---\n{product.tail()}")
        await asyncio.sleep(0.5)


@pytest.fixture
def product(tmp_path: Path) -> Iterator[Product]:
    database = f"sonora_whole_{RUN_ID}"
    cwd = tmp_path / "home"
    cwd.mkdir()
    data_dir = tmp_path / "data"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SONORA_")}
    env.update({
        "PYTHONPATH": str(ROOT),
        "SONORA_DATABASE_URL": f"{MYSQL_URL}/{database}",
        "SONORA_REDIS_URL": REDIS_URL,
        "SONORA_AMQP_URL": AMQP_URL,
        "SONORA_DATA_DIR": str(data_dir),
        "SONORA_NAMESPACE": f"whole_{RUN_ID}",
        "SONORA_SECRET_KEY": secrets.token_urlsafe(48),
        "SONORA_HOST": "127.0.0.1",
        "SONORA_PORT": str(port),
        "SONORA_BCRYPT_ROUNDS": "4",
        "SONORA_LOG_LEVEL": "INFO",
    })
    proc: subprocess.Popen[bytes] | None = None
    try:
        boot = subprocess.run([sys.executable, "-m", "app", "bootstrap"], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert boot.returncode == 0, boot.stdout + boot.stderr
        note = (data_dir / "initial-admin.txt").read_text()
        admin_password = note.split("password:", 1)[1].strip()
        log = tmp_path / "run.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "app", "run"], cwd=cwd, env=env,  # noqa: S603
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        yield Product(f"http://127.0.0.1:{port}", env, cwd, data_dir, database, log, proc, admin_password)
    finally:
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the run and a worker it left behind
            proc.wait(10)
        asyncio.run(_admin_sql(f"DROP DATABASE IF EXISTS `{database}`"))
        from backbone_support import delete_rabbit

        ns = env["SONORA_NAMESPACE"]
        asyncio.run(delete_rabbit(ns, [f"{ns}.{c}" for c in ("audit", "play_counts", "search_index")]))


class Api:
    """A JSON client of the running product, as one user."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session = session
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, expect: tuple[int, ...] = (200,), **kw: Any) -> Any:
        async with self.session.request(method, self.base + path, headers=self.headers, **kw) as resp:
            text = await resp.text()
            assert resp.status in expect, f"{method} {path} -> {resp.status}: {text[:500]}"
            return await resp.json() if text and resp.content_type == "application/json" else None


async def _login(session: aiohttp.ClientSession, base: str, username: str, password: str) -> Api:
    async with session.post(base + "/api/auth/login",
                            json={"username": username, "password": password}) as resp:
        assert resp.status == 200, await resp.text()
        return Api(session, base, (await resp.json())["access_token"])


@contextlib.asynccontextmanager
async def _session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
        yield s


def _generate(root: Path) -> dict[str, Path]:
    """SONGS tagged one-second MP3s as Artist/Album/NN Title.mp3; title -> file."""
    jobs = []
    n = 0
    per_album = SONGS // (ARTISTS * ALBUMS_PER_ARTIST)
    for a in range(ARTISTS):
        for b in range(ALBUMS_PER_ARTIST):
            for t in range(per_album):
                n += 1
                title = f"Wpsong{n:04d} Tune"
                path = root / f"Wpartist{a:02d}" / f"Wpalbum{a:02d}x{b}" / f"{t + 1:02d} {title}.mp3"
                jobs.append((path, dict(title=title, artist=f"Wpartist{a:02d}", album=f"Wpalbum{a:02d}x{b}",
                                        album_artist=f"Wpartist{a:02d}", track=t + 1, year=1990 + a,
                                        genre=("Rock", "Jazz", "Folk")[a % 3],
                                        frequency=150.0 + n * 3.1)))
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda j: audiogen.generate(j[0], "mp3", seconds=1.0, bitrate="64k", **j[1]), jobs))
    return {j[1]["title"]: j[0] for j in jobs}


async def _search_ids(api: Api, q: str) -> set[int]:
    body = await api.call("GET", "/api/search/songs", params={"q": q, "limit": "100"})
    return {s["id"] for s in body["items"]}


async def test_the_whole_product_converges_and_stops(product: Product, tmp_path: Path) -> None:
    async with _session() as http:
        # Up: the demo library imported, the worker and the server running.
        async def healthy() -> bool:
            async with http.get(product.base + "/api/health") as resp:
                return resp.status == 200 and (await resp.json())["status"] == "ok"

        await converge("start-up (demo import, worker, server)", healthy, product, timeout=240)
        admin = await _login(http, product.base, "admin", product.admin_password)
        demo_total = (await admin.call("GET", "/api/song", params={"limit": "1"}))["total"]
        assert demo_total > 0, "make run filled no demo library"

        # The demo library reached the search index through the worker.
        demo_songs = (await admin.call("GET", "/api/song", params={"limit": "100"}))["items"]

        async def demo_indexed() -> bool:
            for s in demo_songs[:5]:
                if s["id"] not in await _search_ids(admin, s["title"]):
                    return False
            return True

        await converge("search of the demo library", demo_indexed, product)

        # A few hundred files imported in place while the worker runs.
        music = tmp_path / "music"
        by_title = await asyncio.to_thread(_generate, music)
        done = await asyncio.to_thread(product.cli, "import", str(music), "--in-place")
        assert done.returncode == 0, done.stdout + done.stderr
        listed = (await admin.call("GET", "/api/song", params={"limit": "1"}))["total"]
        assert listed == demo_total + SONGS, (listed, demo_total, done.stdout)
        songs: dict[str, dict[str, Any]] = {}

        async def listed_by_word() -> bool:
            """Every imported song in the list filtered by its titles' word (the filter's
            candidates come from the search index, which follows the import's events)."""
            songs.clear()
            offset = 0
            while True:
                page = await admin.call("GET", "/api/song", params={
                    "q": "Wpsong", "limit": "100", "offset": str(offset)})
                songs.update({s["title"]: s for s in page["items"]})
                offset += 100
                if offset >= page["total"]:
                    return len(songs) >= SONGS

        await converge("the imported songs listed by a word of their titles", listed_by_word, product)
        assert set(songs) == set(by_title), "the import did not keep every title from its tags"
        product.files = {songs[t]["id"]: p for t, p in by_title.items()}
        ids = sorted(product.files)

        async def imported_indexed() -> bool:
            for sid in ids[::20]:
                s = next(v for v in songs.values() if v["id"] == sid)
                if sid not in await _search_ids(admin, s["title"]):
                    return False
            return True

        await converge("search after the in-place import", imported_indexed, product)

        # A listener, and bursts of work through the API, all at once.
        async with http.post(product.base + "/api/auth/register", json={
            "email": f"wp{RUN_ID}@example.com", "username": f"wp{RUN_ID}", "password": "correct horse 1",
        }) as resp:
            assert resp.status == 201, await resp.text()
            listener = Api(http, product.base, (await resp.json())["access_token"])
        audit_before = (await _sql(product, "SELECT COUNT(*) FROM audit_log"))[0][0]

        renamed = {sid: f"Renamedwp{i:04d} Song" for i, sid in enumerate(ids[:60])}
        played = ids[20:200]  # 180 listens, each reported three times under one play_id
        liked = ids[100:220]
        gate = asyncio.Semaphore(48)

        async def bounded(coro: Awaitable[Any]) -> Any:
            async with gate:
                return await coro

        duration = {s["id"]: s["duration_ms"] for s in songs.values()}
        work: list[Awaitable[Any]] = []
        work += [admin.call("PUT", f"/api/song/{sid}", json={"title": title})
                 for sid, title in renamed.items()]
        # As the player reports a listen: at the threshold, on a skip or at the end, and a retry;
        # the longest time is what was played, and the listen counts once.
        work += [listener.call("POST", "/api/stream/play", expect=(202,),
                               json={"song_id": sid, "played_ms": ms, "play_id": f"p{sid}"})
                 for sid in played
                 for ms in (duration[sid] // 2, duration[sid], duration[sid] - 100)]
        work += [listener.call("PUT", f"/api/library/songs/{sid}", expect=(204,)) for sid in liked]
        await asyncio.gather(*(bounded(w) for w in work))

        playlists = []
        for n in range(6):
            body = await listener.call("POST", "/api/playlist", expect=(201,),
                                       json={"name": f"Wpmix {n}", "is_public": n % 2 == 0})
            playlists.append(body["id"])
        await asyncio.gather(*(bounded(listener.call(
            "POST", f"/api/playlist/{pid}/songs", expect=(200, 201),
            json={"song_ids": ids[n * 30:n * 30 + 30]})) for n, pid in enumerate(playlists)))
        await listener.call("PUT", f"/api/playlist/{playlists[0]}/songs/order",
                            json={"range_start": 0, "insert_before": 10, "range_length": 3})
        await listener.call("DELETE", f"/api/playlist/{playlists[1]}/songs",
                            json={"song_ids": ids[30:35]})
        await listener.call("PUT", f"/api/playlist/{playlists[2]}", json={"name": "Wpmixrenamed"})

        # Everything derived converges.
        async def plays_counted() -> bool:
            for sid in played[::9]:
                body = await listener.call("GET", f"/api/song/{sid}/play-count")
                if body["play_count"] != 1:
                    return False
            stats = await listener.call("GET", "/api/stream/stats")
            return stats["plays"] == len(played)

        await converge("play counts", plays_counted, product)
        stats = await listener.call("GET", "/api/stream/stats")
        assert stats["listened_ms"] == sum(duration[sid] for sid in played), stats
        history = await listener.call("GET", "/api/stream/history", params={"limit": "1"})
        assert history["total"] == len(played)
        marks = ",".join(["%s"] * len(ids))
        counts = dict(await _sql(product, f"SELECT id, play_count FROM songs WHERE id IN ({marks})",
                                 tuple(ids)))
        assert all(counts[sid] == (1 if sid in played else 0) for sid in ids), "a play counted twice or not at all"

        async def renames_indexed() -> bool:
            for sid, title in list(renamed.items())[::6]:
                if sid not in await _search_ids(admin, title):
                    return False
            return True

        await converge("search after the edits", renames_indexed, product)

        async def playlists_indexed() -> bool:
            body = await listener.call("GET", "/api/search/playlists", params={"q": "Wpmixrenamed"})
            return [p["id"] for p in body["items"]] == [playlists[2]]

        await converge("search of a renamed playlist", playlists_indexed, product)

        async def audited() -> bool:
            rows = (await _sql(product, "SELECT COUNT(*) FROM audit_log"))[0][0]
            return rows - audit_before == len(renamed)

        await converge("the audit log", audited, product)
        lib = await listener.call("GET", "/api/library/songs", params={"limit": "1"})
        assert lib["total"] == len(liked)
        pl0 = await listener.call("GET", f"/api/playlist/{playlists[0]}", params={"limit": "100"})
        assert pl0["song_count"] == 30
        assert [e["song"]["id"] for e in pl0["songs"]["items"][:10]] == ids[3:10] + ids[0:3]
        await converge("health after the bursts", healthy, product)

        # A rescan after tag edits, a move and a deletion keeps what listeners made.
        edited, retitled, moved, gone = ids[150], ids[151], ids[152], ids[153]
        tags = mutagen.id3.ID3(product.files[edited])
        tags.add(mutagen.id3.TCON(encoding=3, text=["Wpgenrechanged"]))
        tags.save()
        tags = mutagen.id3.ID3(product.files[retitled])
        tags.add(mutagen.id3.TIT2(encoding=3, text=["Wpretitled Anew"]))
        tags.save()
        target = music / "Moved" / product.files[moved].name
        target.parent.mkdir()
        shutil.move(product.files[moved], target)
        product.files[gone].unlink()
        await admin.call("GET", f"/api/song/{edited}")  # cached before the rescan
        done = await asyncio.to_thread(product.cli, "import", str(music), "--in-place")
        assert done.returncode == 0, done.stdout + done.stderr
        body = await admin.call("GET", f"/api/song/{edited}")
        assert body["genre"] == "Wpgenrechanged", "the rescan's change was not seen through the cache"
        assert (await admin.call("GET", f"/api/song/{retitled}"))["title"] == "Wpretitled Anew"
        await admin.call("GET", f"/api/song/{moved}")
        await admin.call("GET", f"/api/song/{gone}", expect=(404,))
        contains = await listener.call("GET", "/api/library/songs/contains",
                                       params={"ids": f"{edited},{retitled},{moved}"})
        assert contains == [True, True, True], "a rescan dropped a like"
        counts = dict(await _sql(product, "SELECT id, play_count FROM songs WHERE id IN (%s,%s,%s)",
                                 (edited, retitled, moved)))
        assert counts == {edited: 1, retitled: 1, moved: 1}, "a rescan dropped a play count"
        pl5 = await listener.call("GET", f"/api/playlist/{playlists[5]}", params={"limit": "100"})
        assert [e["song"]["id"] for e in pl5["songs"]["items"]] == [s for s in ids[150:180] if s != gone]
        history = await listener.call("GET", "/api/stream/history", params={"limit": "1"})
        assert history["total"] == len(played) - 1  # only the deleted song's play went with it

        gone_title = next(t for t, s in songs.items() if s["id"] == gone)

        async def rescan_indexed() -> bool:
            return (retitled in await _search_ids(admin, "Wpretitled Anew")
                    and gone not in await _search_ids(admin, gone_title))

        await converge("search after the rescan", rescan_indexed, product)
        await converge("health at the end", healthy, product)

    # SIGTERM stops the server and the worker within the drain bound.
    started = time.monotonic()
    product.proc.send_signal(signal.SIGTERM)
    try:
        product.proc.wait(DRAIN)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`run` still running {DRAIN:.0f} s after SIGTERM\n{product.tail()}")
    while True:
        try:
            os.killpg(product.proc.pid, 0)
        except ProcessLookupError:
            break
        if time.monotonic() - started > DRAIN:
            pytest.fail(f"a process of `run` (the worker?) outlived SIGTERM by {DRAIN:.0f} s\n{product.tail()}")
        await asyncio.sleep(0.2)
    assert product.proc.returncode == 0, product.tail()
    log = product.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-6000:]
    assert "still running" not in log, log[-6000:]
