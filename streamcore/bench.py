"""Micro-benchmark: the compiled twin against the pure-Python reference, same workload.

Run with ``python -m streamcore.bench``; prints a Markdown table of operations per second.
Figures are machine-dependent; compare the two columns of one run, not runs with each other.
"""

from __future__ import annotations

import asyncio
import time
import timeit
from collections.abc import Callable
from types import ModuleType
from typing import Any

from . import _cstream, _pystream

HEADERS = {
    "parse_range `bytes=0-`": "bytes=0-",
    "parse_range `bytes=1048576-1114111`": "bytes=1048576-1114111",
    "parse_range 4 ranges, merged": "bytes=500-999, 0-99,100-199,-10",
    "parse_range malformed": "bytes=12-x",
}


def _rate(fn: Callable[[], object], number: int) -> float:
    best = min(timeit.repeat(fn, number=number, repeat=5))
    return number / best


def _parse_op(impl: ModuleType, header: str) -> Callable[[], object]:
    parse = impl.parse_range
    return lambda: parse(header, 5_000_000)


def _pacer_ops(impl: ModuleType) -> Callable[[], object]:
    pacer = impl.Pacer(80_000.0, 1_000_000, 0.0)

    def op() -> None:
        n = pacer.chunk(262_144)
        pacer.delay(n, 12.5)
        pacer.consume(n)

    return op


def _allocate_op(impl: ModuleType, streams: int) -> Callable[[], object]:
    floors = [float("inf") if i % 7 == 0 else 32_000.0 + i for i in range(streams)]
    demands = [float("inf") if i % 3 else 20_000.0 + i for i in range(streams)]
    budget = 48_000.0 * streams

    def op() -> None:
        impl.allocate(budget, floors, demands)

    return op


def _wait_rate(impl: ModuleType, number: int) -> float:
    """Calls per second of ``PaceScheduler.wait`` granted at once (unlimited egress): the path
    every chunk of every stream takes, through the shared event-loop side."""

    async def run() -> float:
        sched = impl.PaceScheduler(0.0, 0.1)
        pacer = impl.Pacer(0.0, 0, 0.0)
        wait = sched.wait
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(number):
                await wait(pacer, 65_536)
            best = min(best, time.perf_counter() - t)
        sched.close()
        return number / best

    return asyncio.run(run())


async def _shared_streams(impl: ModuleType, streams: int, seconds: float) -> tuple[float, float]:
    """Worst relative error from the fair share over ``streams`` streams that all want more than
    a shared budget gives them (share 80 kB/s, floors 40 kB/s; 100 ms ticks and steps), after
    a 1 s warm-up, and the CPU share of one core."""
    loop = asyncio.get_running_loop()
    share = 80_000.0
    sched = impl.PaceScheduler(share * streams, 0.1)
    t0 = loop.time()
    pacers = [impl.Pacer(40_000.0, 16_000, t0, 0.1) for _ in range(streams)]

    async def run(p: Any) -> None:
        while True:
            n = p.chunk(262_144)
            await sched.wait(p, n)
            p.consume(n)

    tasks = [asyncio.create_task(run(p)) for p in pacers]
    await asyncio.sleep(1.0)
    start, before = loop.time(), [p.sent for p in pacers]
    cpu = time.process_time()
    await asyncio.sleep(seconds)
    cpu = time.process_time() - cpu
    elapsed = loop.time() - start
    after = [p.sent for p in pacers]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    worst = max(abs((b - a) / elapsed - share) / share for a, b in zip(before, after, strict=True))
    sched.close()
    return worst, cpu / elapsed


def main() -> None:
    impls = [m for m in (_pystream, _cstream) if m is not None]
    rows = []
    for label, header in HEADERS.items():
        rates = [_rate(_parse_op(m, header), 50_000) for m in impls]
        rows.append((label, rates))
    rows.append(("Pacer chunk+delay+consume", [_rate(_pacer_ops(m), 100_000) for m in impls]))
    rows.append(("allocate, 2,000 streams (one tick's water-filling)",
                 [_rate(_allocate_op(m, 2000), 200) for m in impls]))
    rows.append(("PaceScheduler.wait granted at once", [_wait_rate(m, 100_000) for m in impls]))
    names = [m.__name__.rsplit(".", 1)[-1] for m in impls]
    for m in impls:
        worst, cpu = asyncio.run(_shared_streams(m, 2000, 4.0))
        print(
            f"{m.__name__}: 2000 streams sharing a budget (fair share 80 kB/s) over 4 s: "
            f"worst error from the fair share {worst:.2%}, CPU {cpu:.0%} of one core"
        )
    print()
    print("| operation | " + " | ".join(f"{n} ops/s" for n in names) + " | speed-up |")
    print("|---|" + "---|" * len(names) + "---|")
    for label, rates in rows:
        cells = " | ".join(f"{r:,.0f}" for r in rates)
        ratio = f"{rates[-1] / rates[0]:.1f}×" if len(rates) > 1 else "—"
        print(f"| {label} | {cells} | {ratio} |")


if __name__ == "__main__":
    main()
