"""Helpers every kind of test uses: waiting for an effect that lands asynchronously, putting songs
in the search index at once, and serving an app over real TCP from a thread of its own."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from app.repos.db import DbTarget


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0,
                     every: float = 0.02) -> float:
    """Wait until `check()` is true, trying every `every` seconds; returns the seconds it took.
    Fails after `timeout` seconds."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(every)
    return time.monotonic() - start


async def index_songs(app: Any, ids: Sequence[int]) -> None:
    """Put these songs' documents in the app's search index now, as live indexing does once the
    worker consumes their events (a test's app with a broker has no worker consuming them)."""
    from app.adapters.search.documents import build
    from app.web import keys

    await app[keys.SEARCH_BACKEND].upsert(await build(app[keys.DB], "song", ids))


class Served:
    """The app on 127.0.0.1:<free port>, in a thread with its own event loop, so other processes
    (schemathesis, the client libraries' drivers) reach it over real TCP while a test waits."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app, access_log=None)
        self.port = 0
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        self.call(self._start())
        return self

    async def _start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def __exit__(self, *exc: object) -> None:
        self.call(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def database_dumps(database_url: str, *tables: str) -> list[bytes]:
    """`mariadb-dump` of these tables, as written and with --hex-blob: what a stolen backup shows."""
    dump_tool = shutil.which("mariadb-dump") or shutil.which("mysqldump")
    assert dump_tool, "mariadb-dump (MariaDB's client) is needed for this test"
    target = DbTarget.parse(database_url)
    dumps = []
    for extra in ([], ["--hex-blob"]):
        args = [dump_tool, "-h", target.host, "-P", str(target.port), "-u", target.user,
                *(["-p" + target.password] if target.password else []), *extra,
                "--skip-comments", target.database, *tables]
        proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        dumps.append(out)
    return dumps
