"""The byte-rate limiter (SPEC §6): Pacer arithmetic on a fake clock, `allocate` (max-min fair
shares above per-stream floors) checked by properties and against the other twin, the scheduler's
byte grants over simulated time, and the scheduler on the real loop clock."""

from __future__ import annotations

import asyncio
import math
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamcore

INF = math.inf
TWINS: list[ModuleType] = [m for m in (streamcore._pystream, streamcore._cstream) if m is not None]


# --- Pacer ------------------------------------------------------------------------------------

def test_unpaced_never_waits(impl: ModuleType) -> None:
    for rate in (0, -5):
        p = impl.Pacer(rate, 0, 100.0)
        assert not p.paced
        assert p.delay(10**12, 100.0) == 0.0
        assert p.chunk(4096) == 4096


def test_burst_then_pace(impl: ModuleType) -> None:
    p = impl.Pacer(1000.0, 5000, 10.0)
    assert p.paced and p.sent == 0
    assert p.floor == INF  # full speed during the burst
    assert p.delay(5000, 10.0) == 0.0  # the whole burst at once
    assert p.chunk(65536) == 5000
    p.consume(5000)
    assert p.sent == 5000
    assert p.floor == 1000.0  # then the pace
    assert p.delay(1000, 10.0) == pytest.approx(1.0)
    assert p.delay(1000, 10.25) == pytest.approx(0.75)
    assert p.delay(1000, 11.0) == 0.0
    assert p.delay(1000, 50.0) == 0.0  # idle time is credit, as burst + rate * t says
    assert p.chunk(65536) == 1024  # rate * 0.1 s, at least 1 KiB
    p.consume(1000)
    assert p.delay(500, 11.0) == pytest.approx(0.5)
    assert impl.Pacer(0.0, 0, 0.0).floor == 0.0


def test_first_chunk_bigger_than_burst(impl: ModuleType) -> None:
    p = impl.Pacer(100.0, 50, 0.0)
    assert p.delay(250, 0.0) == pytest.approx(2.0)
    assert p.delay(250, 1.5) == pytest.approx(0.5)


def test_chunk_follows_share_then_rate(impl: ModuleType) -> None:
    p = impl.Pacer(80_000.0, 0, 0.0)
    assert p.chunk(256 * 1024) == 8000
    assert p.chunk(4000) == 4000
    assert impl.Pacer(80_000.0, 0, 0.0, granularity=0.5).chunk(1 << 20) == 40_000
    assert impl.Pacer(1e300, 0, 0.0).chunk(1 << 20) == 1 << 20
    p.share = 200_000.0  # a share from the limiter wins over the floor
    assert p.chunk(256 * 1024) == 20_000
    p.share = INF  # unlimited: whole chunks
    assert p.chunk(256 * 1024) == 256 * 1024


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


# --- allocate ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("budget", "floors", "demands", "expected"),
    [
        (90.0, [10, 10, 10], [INF] * 3, [30, 30, 30]),  # equal shares
        (100.0, [50, 10, 10], [INF] * 3, [50, 25, 25]),  # a floor above the level is kept
        (100.0, [INF, 10, 10], [INF] * 3, [80, 10, 10]),  # a burst takes what the floors leave
        (100.0, [10, 10, 10], [5, 20, INF], [5, 20, 75]),  # who wants less gets it all
        (100.0, [10, 10, 10], [5, 20, 30], [5, 20, 30]),  # room to spare: everyone at full speed
        (20.0, [10, 10, 10], [5, 20, 30], [5, 7.5, 7.5]),  # floors do not fit: shared under them
        (100.0, [0, 0], [INF, 0], [100, 0]),  # a lone stream gets the whole budget
        (100.0, [INF, 0], [INF, INF], [50, 50]),  # no floor: a burst never starves it
        (100.0, [INF, 0, 0, 0], [INF, INF, 10, INF], [40, 25, 10, 25]),  # ... an equal part at most
        (100.0, [INF], [INF], [100]),
        (100.0, [], [], []),
    ],
)
def test_allocate_examples(impl: ModuleType, budget: float, floors: list[float],
                           demands: list[float], expected: list[float]) -> None:
    assert impl.allocate(budget, floors, demands) == pytest.approx(expected)


def test_allocate_refuses_nonsense(impl: ModuleType) -> None:
    for budget in (0.0, -1.0, INF, math.nan):
        with pytest.raises(ValueError):
            impl.allocate(budget, [1.0], [1.0])
    with pytest.raises(ValueError):
        impl.allocate(10.0, [1.0, 2.0], [1.0])
    # negative or nan demands and floors count as nothing
    assert impl.allocate(10.0, [-5.0, math.nan], [math.nan, -1.0]) == [0.0, 0.0]


_rate = st.one_of(st.floats(0.0, 1e9, allow_nan=False), st.just(INF), st.just(0.0))
_streams = st.lists(st.tuples(_rate, _rate), max_size=60)
_budget = st.floats(1.0, 1e10, allow_nan=False, allow_infinity=False)


def _check_fair(budget: float, floors: list[float], demands: list[float], x: list[float]) -> None:
    tol = 1e-9 * budget
    n = len(x)
    own = [min(f, d) for f, d in zip(floors, demands, strict=True)]
    if sum(own) > budget:  # the floors do not fit: a stream with none counts an equal part as one
        own = [o if f > 0.0 else min(budget / n, d) for o, f, d in zip(own, floors, demands, strict=True)]
    assert all(0.0 <= xi <= di + tol for xi, di in zip(x, demands, strict=True))
    assert sum(x) <= budget * (1 + 1e-9)  # never more than the budget
    if sum(own) <= budget:  # the floors fit: every stream has at least min(floor, demand)
        assert all(xi >= oi - tol for xi, oi in zip(x, own, strict=True))
    if any(xi < di - tol for xi, di in zip(x, demands, strict=True)):
        assert sum(x) == pytest.approx(budget, rel=1e-9)  # work-conserving
    # Max-min fair: a stream that wants more could only be raised by lowering one with no more
    # than it, or one held at its floor.
    for i in range(n):
        if x[i] < demands[i] - tol:
            for j in range(n):
                if x[j] > x[i] + tol:
                    assert x[j] <= own[j] + tol, (i, j, x)
    if n == 1:
        assert x[0] == pytest.approx(min(demands[0], budget), rel=1e-9)  # a lone stream


@settings(max_examples=600, deadline=None)
@given(budget=_budget, streams=_streams)
def test_allocate_properties_and_twins_agree(budget: float, streams: list[tuple[float, float]]) -> None:
    floors = [f for f, _ in streams]
    demands = [d for _, d in streams]
    results = [m.allocate(budget, floors, demands) for m in TWINS]
    for other in results[1:]:
        assert other == pytest.approx(results[0], rel=1e-12, abs=1e-9)
    _check_fair(budget, floors, demands, results[0])


@settings(max_examples=200, deadline=None)
@given(budget=_budget, n=st.integers(1, 300), floor=st.floats(0.0, 1e8, allow_nan=False))
def test_equal_streams_get_equal_shares(budget: float, n: int, floor: float) -> None:
    """More streams than the budget's share supports: each gets exactly budget / n."""
    for m in TWINS:
        x = m.allocate(budget, [floor] * n, [INF] * n)
        assert x == pytest.approx([max(budget / n, min(floor, budget / n))] * n, rel=1e-9)


# --- byte grants over simulated time ----------------------------------------------------------

def _simulate(impl: ModuleType, egress: float, streams: list[tuple[float, int, int, float]],
              seconds: float, step: float = 0.01, quantum: float = 0.1) -> tuple[Any, list[Any]]:
    """Drive `grant`/`tick` on a fake clock.  Each stream is (floor rate, burst, bytes its reader
    takes per step at most, time it starts); a stream sends whenever it is granted."""
    sched = impl.PaceScheduler(egress, quantum)
    pacers = [impl.Pacer(rate, burst, start, 0.5) for rate, burst, _, start in streams]
    pending: dict[Any, int] = {}
    next_tick = 0.0
    t = 0.0
    for _ in range(round(seconds / step)):
        if t >= next_tick - 1e-9:
            for p in sched.tick(t):
                assert 0 < p.allowed <= pending.pop(p)  # at most what it asked for
                p.consume(p.allowed)
            next_tick += quantum
        for p, (_, _, reader, start) in zip(pacers, streams, strict=True):
            if t < start - 1e-9:
                continue
            took = 0
            while took < reader and not sched.queued(p):
                n = min(p.chunk(64 * 1024), reader - took)
                if sched.grant(p, n, t):  # a stream just joining may be allowed less
                    p.consume(p.allowed)
                    took += p.allowed
                else:
                    pending[p] = n
        t += step
    return sched, pacers


_sim_stream = st.tuples(st.sampled_from([0.0, 4_000.0, 16_000.0, 32_000.0]),
                        st.sampled_from([0, 20_000, 100_000]),
                        st.sampled_from([200, 2_000, 10**9]),
                        st.sampled_from([0.0, 0.0, 0.5, 1.0]))


@settings(max_examples=40, deadline=None)
@given(egress=st.sampled_from([20_000.0, 100_000.0, 1e6]), streams=st.lists(_sim_stream, min_size=1,
                                                                             max_size=12))
def test_simulated_grants_twins_agree_and_keep_the_budget(
        egress: float, streams: list[tuple[float, int, int, float]]) -> None:
    seconds = 6.0
    runs = [_simulate(m, egress, streams, seconds) for m in TWINS]
    granted = [[p.granted for p in pacers] for _, pacers in runs]
    for other in granted[1:]:
        assert other == granted[0]  # the twins grant the same bytes at the same ticks
    for m_sched, pacers in runs:
        shares = [p.share for p in pacers]
        assert sum(shares) <= egress * (1 + 1e-9)
        assert m_sched.allocated() == pytest.approx(sum(shares))
        # Exactly: what went out, less what is still owed, was credited from the budget (or
        # forgiven: a debt falls with a falling share, as a stream owes time).
        assert sum(granted[0]) + sum(p.balance for p in pacers) <= (
            egress * (seconds + 0.1) + m_sched.forgiven + 1e-3)
        # and what the changes of share forgave is small next to the budget
        assert m_sched.forgiven <= 0.25 * egress * seconds + 64 * 1024 * len(pacers)
        assert m_sched.granted == sum(p.granted for p in pacers)


def test_simulated_fair_shares_and_a_stalled_reader(impl: ModuleType) -> None:
    """Backlogged streams get budget / n; a reader that stops taking bytes gives its share back."""
    egress = 120_000.0
    # three greedy readers and one that takes a little, all past their burst (burst 0)
    streams = [(8_000.0, 0, 10**9, 0.0)] * 3 + [(8_000.0, 0, 100, 0.0)]
    sched, pacers = _simulate(impl, egress, streams, 20.0)
    slow = pacers[3]
    assert slow.share <= 100 / 0.01 * 1.25 + 1  # what it takes, and a quarter more
    for p in pacers[:3]:
        assert p.share == pytest.approx((egress - slow.share) / 3, rel=1e-9)
        assert p.granted / 20.0 == pytest.approx(p.share, rel=0.05)  # over time too
    assert slow.granted / 20.0 == pytest.approx(100 / 0.01, rel=0.05)


def test_simulated_lone_stream_gets_the_whole_budget(impl: ModuleType) -> None:
    egress = 1_000_000.0
    sched, (p,) = _simulate(impl, egress, [(32_000.0, 0, 10**9, 0.0)], 10.0)
    assert p.share == egress
    assert p.granted / 10.0 == pytest.approx(egress, rel=0.05)


def test_simulated_burst_first_then_floors(impl: ModuleType) -> None:
    """A new stream in its burst takes what the others' floors leave; they keep their floors."""
    egress = 100_000.0
    streams = [(20_000.0, 0, 10**9, 0.0)] * 3 + [(20_000.0, 10**9, 10**9, 1.0)]
    sched, pacers = _simulate(impl, egress, streams, 3.0)
    assert [p.share for p in pacers[:3]] == pytest.approx([20_000.0] * 3)
    assert pacers[3].share == pytest.approx(40_000.0)


def test_back_to_back_short_responses_stay_within_the_budget(impl: ModuleType) -> None:
    """A client making one short response after another (a download manager's ranges): each
    new stream joins with one step of its share at most and pays what the last one still owed,
    so together they get the budget, not a free burst each (reviewed: 262x the budget before)."""
    egress, quantum = 100_000.0, 0.01
    sched = impl.PaceScheduler(egress, quantum)
    now, granted, responses = 0.0, 0, 0
    while now < 10.0:
        p = impl.Pacer(0.0, 256 * 1024, now, 0.5)  # in its burst: its first chunk would be 256 KiB
        if not sched.grant(p, p.chunk(256 * 1024), now):
            while p not in sched.tick(now := now + quantum):
                pass
        granted += p.allowed
        p.consume(p.allowed)
        sched.leave(p)
        responses += 1
        now += 0.001  # the next request
    assert responses > 10
    assert granted <= egress * now + egress * 0.5 + 1024  # the budget, and one step of it


def test_a_stream_with_no_floor_is_not_starved_by_one_in_its_burst(impl: ModuleType) -> None:
    """Past its burst with no pace (floor 0) beside a stream still in its burst (floor inf):
    both are backlogged, and both are granted bytes, the burst one more."""
    egress = 100_000.0
    streams = [(0.0, 0, 10**9, 0.0), (0.0, 10**9, 10**9, 0.0)]
    sched, (floorless, bursting) = _simulate(impl, egress, streams, 5.0)
    assert floorless.granted > 0.3 * egress * 5.0  # about half of it: an equal part
    assert bursting.granted > 0.3 * egress * 5.0
    assert floorless.granted + bursting.granted <= egress * 5.1 + 128 * 1024


def test_a_huge_budget_releases_what_was_asked(impl: ModuleType) -> None:
    """A share too large for a C integer is compared as a double (the compiled twin used to
    overflow and release 1 KiB where the pure-Python one released the whole request)."""
    sched = impl.PaceScheduler(1e20, 0.01)
    p = impl.Pacer(0.0, 0, 0.0, 0.5)
    assert sched.grant(p, 200_000, 0.0) and p.allowed == 200_000
    assert not sched.grant(p, 200_000, 0.0)  # it owes the first chunk: it waits for a tick
    assert sched.tick(0.01) == [p]
    assert p.allowed == 200_000


def test_simulated_idle_streams_leave(impl: ModuleType) -> None:
    sched = impl.PaceScheduler(1000.0, 0.1)
    p = impl.Pacer(0.0, 0, 0.0)
    assert sched.grant(p, 10, 0.0)
    assert sched.streams == 1
    t = 0.0
    while t < 3.0:
        t += 0.1
        sched.tick(t)
    assert sched.streams == 0  # neither waited nor sent for IDLE_DROP seconds
    q = impl.Pacer(0.0, 0, 0.0)
    assert sched.grant(q, 10, t)
    sched.leave(q)
    assert sched.streams == 0 and len(sched) == 0


# --- the scheduler on the real loop -----------------------------------------------------------

async def _run_stream(sched: Any, p: Any, seconds: float, chunk: int = 65536) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        n = await sched.wait(p, p.chunk(chunk))
        p.consume(n)


async def test_unlimited_never_waits(impl: ModuleType) -> None:
    """Egress 0: no pacing at all, whatever the floors; every wait returns at once."""
    sched = impl.PaceScheduler()
    assert not sched.limited
    p = impl.Pacer(1000.0, 0, asyncio.get_running_loop().time())
    for _ in range(100):
        assert p.chunk(256 * 1024) in (256 * 1024, 1024, 100)
        await asyncio.wait_for(sched.wait(p, 256 * 1024), 0.5)
        p.consume(256 * 1024)
    assert p.share == INF and p.chunk(256 * 1024) == 256 * 1024
    assert sched.waits == 0 and p.waits == 0
    assert sched.granted == p.granted == 100 * 256 * 1024
    assert sched.streams == 0 and len(sched) == 0
    sched.close()


async def test_more_streams_than_the_budget_supports(impl: ModuleType) -> None:
    """60 streams, each owed 4 kB/s, on 120 kB/s: the floors do not fit, each gets 2 kB/s."""
    loop = asyncio.get_running_loop()
    sched = impl.PaceScheduler(120_000.0, 0.05)
    pacers = [impl.Pacer(4_000.0, 0, loop.time(), 0.2) for _ in range(60)]
    tasks = [asyncio.create_task(_run_stream(sched, p, 30.0)) for p in pacers]
    await asyncio.sleep(0.6)
    shares = [p.share for p in pacers]  # while every stream still wants more
    total = sched.allocated()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert total == pytest.approx(120_000.0)
    assert shares == pytest.approx([2_000.0] * 60)
    assert all(p.waits > 0 for p in pacers)
    assert len(sched) == 0  # the cancelled waits are gone
    for p in pacers:
        sched.leave(p)
    assert sched.streams == 0
    sched.close()


async def test_lone_stream_on_a_budget(impl: ModuleType) -> None:
    """One stream alone gets the whole budget (not its floor), from the scheduler's accounting."""
    loop = asyncio.get_running_loop()
    sched = impl.PaceScheduler(2_000_000.0, 0.05)
    p = impl.Pacer(10_000.0, 0, loop.time(), 0.1)
    await _run_stream(sched, p, 0.5)
    assert p.share == 2_000_000.0
    assert p.waits > 0  # it was held to the budget, which it had to itself
    sched.close()


async def test_first_chunk_at_once(impl: ModuleType) -> None:
    sched = impl.PaceScheduler(10.0, 0.1)
    p = impl.Pacer(10.0, 0, asyncio.get_running_loop().time())
    await asyncio.wait_for(sched.wait(p, 1000), 0.05)  # in credit: no tick needed
    assert len(sched) == 0 and p.waits == 0
    sched.close()


async def test_scheduler_cancellation(impl: ModuleType) -> None:
    loop = asyncio.get_running_loop()
    sched = impl.PaceScheduler(1000.0, 0.05)
    slow = impl.Pacer(0.0, 0, loop.time())
    fast = impl.Pacer(0.0, 0, loop.time())
    await sched.wait(slow, 100_000)  # now far in debt
    await sched.wait(fast, 1)
    blocked = asyncio.create_task(sched.wait(slow, 1000))
    await asyncio.sleep(0)
    assert len(sched) == 1 and sched.queued(slow) == 1000
    with pytest.raises(RuntimeError):
        sched.grant(slow, 1, loop.time())  # one wait at a time per stream
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    assert len(sched) == 0 and sched.queued(slow) == 0
    await asyncio.wait_for(sched.wait(fast, 10), 1.0)  # a cancelled wait blocks nobody
    sched.close()


async def test_scheduler_close(impl: ModuleType) -> None:
    loop = asyncio.get_running_loop()
    sched = impl.PaceScheduler(1.0, 0.05)
    pacers = [impl.Pacer(0.0, 0, loop.time()) for _ in range(5)]
    for p in pacers:
        await sched.wait(p, 10_000)  # each in debt
    waiters = [asyncio.create_task(sched.wait(p, 100)) for p in pacers]
    await asyncio.sleep(0)
    assert len(sched) == 5
    sched.close()
    assert sched.closed
    for w in waiters:
        with pytest.raises(asyncio.CancelledError):
            await w
    with pytest.raises(RuntimeError):
        await sched.wait(pacers[0], 1)


async def test_wait_without_a_pacer_is_an_error_not_a_crash(impl: ModuleType) -> None:
    """The shared wait() hands its pacer to the twin's grant(): None is refused there (the
    compiled grant would otherwise read through a NULL pacer), and the scheduler stays usable."""
    loop = asyncio.get_running_loop()
    for egress in (0.0, 1000.0):
        sched = impl.PaceScheduler(egress, 0.05)
        with pytest.raises(TypeError):
            await sched.wait(None, 10)
        assert sched.streams == 0 and len(sched) == 0
        p = impl.Pacer(0.0, 0, loop.time())
        assert await sched.wait(p, 10) == 10
        sched.close()
