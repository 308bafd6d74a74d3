"""Pacer arithmetic on a fake clock, and PaceScheduler on the real loop clock."""

from __future__ import annotations

import asyncio
from types import ModuleType

import pytest


def test_unpaced_never_waits(impl: ModuleType) -> None:
    for rate in (0, -5):
        p = impl.Pacer(rate, 0, 100.0)
        assert not p.paced
        assert p.delay(10**12, 100.0) == 0.0
        assert p.chunk(4096) == 4096


def test_burst_then_pace(impl: ModuleType) -> None:
    p = impl.Pacer(1000.0, 5000, 10.0)
    assert p.paced and p.sent == 0
    assert p.delay(5000, 10.0) == 0.0  # the whole burst at once
    assert p.chunk(65536) == 5000
    p.consume(5000)
    assert p.sent == 5000
    assert p.delay(1000, 10.0) == pytest.approx(1.0)
    assert p.delay(1000, 10.25) == pytest.approx(0.75)
    assert p.delay(1000, 11.0) == 0.0
    assert p.delay(1000, 50.0) == 0.0  # idle time is credit, as burst + rate * t says
    assert p.chunk(65536) == 1024  # rate * 0.1 s, at least 1 KiB
    p.consume(1000)
    assert p.delay(500, 11.0) == pytest.approx(0.5)


def test_first_chunk_bigger_than_burst(impl: ModuleType) -> None:
    p = impl.Pacer(100.0, 50, 0.0)
    assert p.delay(250, 0.0) == pytest.approx(2.0)
    assert p.delay(250, 1.5) == pytest.approx(0.5)


def test_chunk_follows_rate(impl: ModuleType) -> None:
    p = impl.Pacer(80_000.0, 0, 0.0)
    assert p.chunk(256 * 1024) == 8000
    assert p.chunk(4000) == 4000
    assert impl.Pacer(80_000.0, 0, 0.0, granularity=0.5).chunk(1 << 20) == 40_000
    assert impl.Pacer(1e300, 0, 0.0).chunk(1 << 20) == 1 << 20


def test_budget_invariant_on_fake_clock(impl: ModuleType) -> None:
    """Sending whenever delay() says 0 never exceeds burst + rate * t, and keeps up with it."""
    rate, burst = 3000.0, 7000
    p = impl.Pacer(rate, burst, 0.0)
    now = 0.0
    while now < 20.0:
        n = p.chunk(4096)
        now += p.delay(n, now)
        p.consume(n)
        assert p.sent <= burst + rate * now + 1e-6
    assert p.sent >= burst + rate * now - 4096


async def _run_stream(sched: object, p: object, seconds: float) -> float:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while True:
        n = p.chunk(65536)  # type: ignore[attr-defined]
        await sched.wait(p, n)  # type: ignore[attr-defined]
        if loop.time() >= end:
            return loop.time() - p.t0  # type: ignore[attr-defined]
        p.consume(n)  # type: ignore[attr-defined]


async def test_scheduler_one_stream(impl: ModuleType) -> None:
    loop = asyncio.get_running_loop()
    sched = impl.PaceScheduler()
    rate, burst = 40_000.0, 20_000
    p = impl.Pacer(rate, burst, loop.time())
    elapsed = await _run_stream(sched, p, 2.0)
    expected = burst + rate * elapsed
    assert p.sent == pytest.approx(expected, rel=0.10)
    assert p.sent <= expected
    assert len(sched) == 0
    sched.close()


async def test_scheduler_many_streams(impl: ModuleType) -> None:
    loop = asyncio.get_running_loop()
    sched = impl.PaceScheduler()
    pacers = [impl.Pacer(20_000.0 + 200 * i, 10_000, loop.time()) for i in range(300)]
    elapsed = await asyncio.gather(*(_run_stream(sched, p, 1.5) for p in pacers))
    for p, t in zip(pacers, elapsed, strict=True):
        assert p.sent == pytest.approx(p.burst + p.rate * t, rel=0.10)
    sched.close()


async def test_scheduler_immediate_when_allowed(impl: ModuleType) -> None:
    sched = impl.PaceScheduler()
    p = impl.Pacer(10.0, 1000, asyncio.get_running_loop().time())
    await asyncio.wait_for(sched.wait(p, 1000), 0.05)
    assert len(sched) == 0
    sched.close()


async def test_scheduler_cancellation(impl: ModuleType) -> None:
    loop = asyncio.get_running_loop()
    sched = impl.PaceScheduler()
    slow = impl.Pacer(100.0, 0, loop.time())  # 1000 bytes: 10 s
    fast = impl.Pacer(10_000.0, 0, loop.time())  # 1000 bytes: 0.1 s
    blocked = asyncio.create_task(sched.wait(slow, 1000))
    early = asyncio.create_task(sched.wait(fast, 100))  # 0.01 s, rescheduled earlier
    await asyncio.sleep(0)
    assert len(sched) == 2
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    await asyncio.wait_for(early, 1.0)
    fast.consume(100)
    await asyncio.wait_for(sched.wait(fast, 1000), 1.0)  # cancelled entries do not block
    sched.close()


async def test_scheduler_close(impl: ModuleType) -> None:
    loop = asyncio.get_running_loop()
    sched = impl.PaceScheduler()
    p = impl.Pacer(1.0, 0, loop.time())
    waiters = [asyncio.create_task(sched.wait(p, 100)) for _ in range(5)]
    await asyncio.sleep(0)
    sched.close()
    assert sched.closed
    for w in waiters:
        with pytest.raises(asyncio.CancelledError):
            await w
    with pytest.raises(RuntimeError):
        await sched.wait(p, 1)
