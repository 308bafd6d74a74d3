"""Accounts row: bcrypt runs off the event loop, so `/api/health` stays quick while 20 logins
(bcrypt cost 12, ~270 ms each) are in flight."""

from __future__ import annotations

import asyncio
import statistics
import time

import aiohttp

from bench.common import Context, Row


def rows(ctx: Context) -> list[Row]:
    return asyncio.run(_rows(ctx))


async def _latencies(session: aiohttp.ClientSession, url: str, count: int) -> list[float]:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        async with session.get(url) as resp:
            await resp.read()
        out.append((time.perf_counter() - started) * 1000)
    return out


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


async def _rows(ctx: Context) -> list[Row]:
    async with ctx.app("accounts", bcrypt_rounds="12") as app, aiohttp.ClientSession(app.base) as s:
        creds = {"username": "bcryptbench", "password": "a long enough password"}
        reg = await s.post("/api/auth/register", json={**creds, "email": "bcrypt@example.com"})
        if reg.status not in (201, 409):
            raise RuntimeError(f"register: {reg.status} {await reg.text()}")
        idle = await _latencies(s, "/api/health", 200)
        stop = asyncio.Event()
        logins = 0

        async def login_loop() -> None:
            nonlocal logins
            while not stop.is_set():
                async with s.post("/api/auth/login", json=creds) as resp:
                    await resp.read()
                    logins += resp.status == 200

        tasks = [asyncio.create_task(login_loop()) for _ in range(20)]
        await asyncio.sleep(0.5)
        started = time.perf_counter()
        busy = await _latencies(s, "/api/health", 200)
        elapsed = time.perf_counter() - started
        stop.set()
        await asyncio.gather(*tasks)
    p99_idle, p99_busy = _p(idle, 99), _p(busy, 99)
    return [Row(
        "`GET /api/health` p99 while 20 logins run (bcrypt cost 12, in executor threads)",
        f"idle p99 {p99_idle:.2f} ms", f"p99 {p99_busy:.2f} ms ({logins} logins, "
        f"{logins / max(elapsed, 1e-6):.1f}/s)", f"{p99_busy / p99_idle:.1f}×",
        "stays responsive (no target in SPEC)", None,
    )]
