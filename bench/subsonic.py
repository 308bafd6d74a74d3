"""Subsonic rows (SPEC 11 and 13): the browsing an app does when it syncs — `getArtists`,
`getAlbum`, `getAlbumList2`, `search3` — and a scan of the same 10,000 generated files, Sonora
side by side with supysonic (a Subsonic server in Python, Debian's package) in the same run.

Both serve the same folder of tagged MP3s (bench.catalog.make_library: 100 artists, 1,000 albums
with a cover each). supysonic scans it into its SQLite database (`supysonic-cli folder scan`) and
serves it with waitress; Sonora imports it where it lies, as supysonic does (`python -m app import
--in-place`, the in-place music folder `startScan` rescans; then `python -m app reindex` for its
search index: both count as its scan) and serves it with `python -m app serve`, timed once its
event consumers are idle (the rebuild covers the import's events, so that takes a moment). Each
method is asked the same way of both, one request at a time from this process on 127.0.0.1, with
the password sent as `p=enc:<hex>` (supysonic has no token auth); Sonora's is an app password.
The figure is the client-observed p95 over the same requests; the ratio is supysonic's time over
Sonora's (how many times faster Sonora answers).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench.catalog import make_library
from bench.common import MYSQL_URL, ROOT, Context, Process, Row, free_port, wait_port

FILES = int(os.environ.get("BENCH_SUBSONIC_FILES", "10000"))
DATABASE = "sonora_bench_subsonic"
USER, PASSWORD = "benchsub", "bench password 1"
RUNS = 60  # timed requests per method and server, after one untimed pass
TARGET = 3.0  # Sonora at least this many times faster on each row
Params = dict[str, str]


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _ensure_supysonic() -> None:
    """supysonic and waitress from Debian when missing."""
    if shutil.which("supysonic-server") is None:
        print("installing supysonic python3-waitress from Debian...", flush=True)
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run([*sudo, "apt-get", "install", "-y", "supysonic", "python3-waitress"],  # noqa: S603
                       check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


class Server:
    """One Subsonic server under test: its base URL and the credentials to send."""

    def __init__(self, name: str, base: str, auth: Params) -> None:
        self.name, self.base, self.auth = name, base, auth
        self.albums: list[str] = []


def _supysonic(ctx: Context, folder: Path) -> tuple[Process, Server, float]:
    """supysonic on the folder: configured, scanned (timed) and serving."""
    home = ctx.tmp / "supysonic"
    home.mkdir()
    (home / "supysonic.conf").write_text(
        "[base]\n"
        f"database_uri = sqlite:///{home / 'supysonic.db'}\n"
        "[webapp]\n"
        f"cache_dir = {home / 'cache'}\n"
        "log_level = WARNING\n"
        "mount_webui = false\n"
        "[daemon]\n"
        f"socket = {home / 'daemon.sock'}\n"
        "run_watcher = false\n")

    def cli(*args: str) -> None:
        subprocess.run(["supysonic-cli", *args], cwd=home, check=True,  # noqa: S603,S607
                       capture_output=True)

    cli("user", "add", USER, "-p", PASSWORD)
    cli("folder", "add", "music", str(folder))
    started = time.monotonic()
    cli("folder", "scan", "--foreground", "music")
    scan_s = time.monotonic() - started
    port = free_port()
    proc = Process(["supysonic-server", "-S", "waitress", "-h", "127.0.0.1", "-p", str(port)],
                   ctx.tmp / "supysonic.log", cwd=home)
    wait_port(port, proc.proc, proc.log)
    auth = {"u": USER, "p": "enc:" + PASSWORD.encode().hex(), "v": "1.16.1", "c": "bench",
            "f": "json"}
    return proc, Server("supysonic", f"http://127.0.0.1:{port}", auth), scan_s


def _sonora(ctx: Context, folder: Path) -> tuple[Process, dict[str, str], float]:
    """Sonora on the folder: a fresh database, imported and indexed (timed), serving."""
    env = ctx.app_env(database_url=f"{MYSQL_URL}/{DATABASE}", data_dir=str(ctx.tmp / "sub-data"),
                      amqp_url="")
    subprocess.run(["mariadb", "-uroot", "-h127.0.0.1", "-e",  # noqa: S607
                    f"DROP DATABASE IF EXISTS {DATABASE}"], check=False)

    def cli(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=env, check=True,  # noqa: S603
                       capture_output=True)

    cli("migrate")
    cli("create-user", "--email", "benchsub@example.com", "--username", USER,
        "--password", PASSWORD)
    started = time.monotonic()
    cli("import", "--in-place", str(folder))
    cli("reindex")
    scan_s = time.monotonic() - started
    port = free_port()
    env["SONORA_PORT"] = str(port)
    proc = Process([sys.executable, "-m", "app", "serve"], ctx.tmp / "sonora-subsonic.log", env)
    wait_port(port, proc.proc, proc.log)
    settled = asyncio.run(_consumers_idle(f"http://127.0.0.1:{port}"))
    print(f"  Sonora's consumers idle {settled:.1f} s after it started", flush=True)
    return proc, env, scan_s


async def _consumers_idle(base: str, most: float = 300.0) -> float:
    """Seconds until /api/health shows every consumer's queue empty and nothing in flight, three
    times in a row (the relay publishes the outbox a batch at a time)."""
    started, quiet = time.monotonic(), 0
    async with aiohttp.ClientSession(base) as session:
        while time.monotonic() - started < most:
            async with session.get("/api/health") as resp:
                items = (await resp.json())["consumers"]["items"]
            idle = bool(items) and all(not i["queue_depth"] and not i["in_flight"] for i in items)
            quiet = quiet + 1 if idle else 0
            if quiet == 3:
                return time.monotonic() - started
            await asyncio.sleep(0.5)
    raise RuntimeError(f"Sonora's consumers still busy after {most:.0f} s")


async def _app_password(base: str) -> str:
    async with aiohttp.ClientSession(base) as session:
        login = await session.post("/api/auth/login", json={"username": USER, "password": PASSWORD})
        login.raise_for_status()
        token = (await login.json())["access_token"]
        made = await session.post("/api/user/me/app-passwords", json={"label": "bench"},
                                  headers={"Authorization": f"Bearer {token}"})
        made.raise_for_status()
        return str((await made.json())["password"])


async def _call(session: aiohttp.ClientSession, server: Server, method: str, params: Params
                ) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    async with session.get(f"{server.base}/rest/{method}", params={**server.auth, **params}) as r:
        body = await r.json(content_type=None)
    took = (time.perf_counter() - started) * 1000
    inner = body.get("subsonic-response", {})
    if inner.get("status") != "ok":
        raise RuntimeError(f"{server.name} {method} {params}: {inner.get('error')}")
    return took, inner


Plan = Callable[[Server, int], tuple[str, Params]]
PLANS: list[tuple[str, str, Plan]] = [
    ("getArtists", "`getArtists` (the whole index)", lambda s, i: ("getArtists", {})),
    ("getAlbum", "`getAlbum` (an album with its 10 songs)",
     lambda s, i: ("getAlbum", {"id": s.albums[(i * 37) % len(s.albums)]})),
    ("getAlbumList2", "`getAlbumList2?type=alphabeticalByName&size=50` (pages through the list)",
     lambda s, i: ("getAlbumList2", {"type": "alphabeticalByName", "size": "50",
                                     "offset": str((i * 50) % max(1, len(s.albums)))})),
    ("search3", "`search3` (a word of a title, an artist or an album; 20 of each)",
     lambda s, i: ("search3", {"query": ["Track 12", "Artist 0042", "Album 0007", "Track 777"][i % 4]})),
]


async def _measure(servers: list[Server]) -> dict[tuple[str, str], list[float]]:
    timings: dict[tuple[str, str], list[float]] = {}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for server in servers:
            _, inner = await _call(session, server, "getAlbumList2",
                                   {"type": "alphabeticalByName", "size": "500"})
            server.albums = [a["id"] for a in inner["albumList2"].get("album", [])]
            _, inner = await _call(session, server, "getAlbumList2",
                                   {"type": "alphabeticalByName", "size": "500", "offset": "500"})
            server.albums += [a["id"] for a in inner["albumList2"].get("album", [])]
        for key, _, plan in PLANS:
            for server in servers:
                for i in range(3):  # untimed: caches, connections and compiled paths warmed
                    await _call(session, server, *plan(server, i))
                got = []
                for i in range(RUNS):
                    took, _ = await _call(session, server, *plan(server, i))
                    got.append(took)
                timings[(key, server.name)] = got
                print(f"  {server.name:<10} {key:<14} p95 {_p95(got):7.1f} ms"
                      f"  median {statistics.median(got):6.1f} ms", flush=True)
    return timings


def rows(ctx: Context) -> list[Row]:
    _ensure_supysonic()
    folder = ctx.tmp / "subsonic-library"
    make_library(folder, FILES, ctx)
    procs: list[Process] = []
    try:
        supy_proc, supy, supy_scan = _supysonic(ctx, folder)
        procs.append(supy_proc)
        print(f"  supysonic scanned {FILES:,} files in {supy_scan:.1f} s", flush=True)
        sonora_proc, env, sonora_scan = _sonora(ctx, folder)
        procs.append(sonora_proc)
        print(f"  Sonora imported and indexed {FILES:,} files in {sonora_scan:.1f} s", flush=True)
        base = f"http://127.0.0.1:{env['SONORA_PORT']}"
        secret = asyncio.run(_app_password(base))
        sonora = Server("Sonora", base, {"u": USER, "p": "enc:" + secret.encode().hex(),
                                         "v": "1.16.1", "c": "bench", "f": "json"})
        timings = asyncio.run(_measure([supy, sonora]))
    finally:
        for proc in procs:
            proc.stop()
        subprocess.run(["mariadb", "-uroot", "-h127.0.0.1", "-e",  # noqa: S607
                        f"DROP DATABASE IF EXISTS {DATABASE}"], check=False)
        shutil.rmtree(folder, ignore_errors=True)
    out = []
    for key, label, _ in PLANS:
        theirs, ours = _p95(timings[(key, "supysonic")]), _p95(timings[(key, "Sonora")])
        ratio = theirs / ours if ours else float("inf")
        out.append(Row(f"Subsonic {label}, {FILES:,} files: p95 over {RUNS} requests",
                       f"supysonic {theirs:.1f} ms", f"Sonora {ours:.1f} ms", f"{ratio:.1f}× faster",
                       f"≥ {TARGET:.0f}× faster", ratio >= TARGET))
    ratio = supy_scan / sonora_scan if sonora_scan else float("inf")
    out.append(Row(f"Subsonic: a scan of the same {FILES:,} files (Sonora: `import` and `reindex`)",
                   f"supysonic `folder scan` {supy_scan:.1f} s", f"Sonora {sonora_scan:.1f} s",
                   f"{ratio:.1f}× faster", f"≥ {TARGET:.0f}× faster", ratio >= TARGET))
    return out
