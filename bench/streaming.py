"""The streaming rows of SPEC §11, each against its reference in the same run."""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import DURATION, ROOT, App, Context, Process, Row, free_port, wait_port

FULL = "full5m"  # ~5 MiB WAV
PACED = "paced"  # 128 kbps MP3, PACED_SONG_S long
#: Long enough that no stream finishes the song within the run, even one that had a large share
#: while it was nearly alone (at 60 s, 960 kB, the first streams ended early and left the window).
PACED_SONG_S = 240.0
RANGE = "bytes=1048576-1114111"  # 64 KiB
PACED_STREAMS = 2000
PACED_SECONDS = 14.0
PACED_BURST_S = 4  # 4 s at 128 kbps = 64,000 bytes
PACED_RANGE = "bytes=0-32767"  # inside the burst, so the limiter has no say in it
PACED_SHARE = 48_000  # bytes/s: each stream's fair share of the budget, above its 32 kB/s floor
EGRESS_MBPS = PACED_STREAMS * PACED_SHARE * 8 / 1e6  # 768 Mbit/s for all streams together


def _gb(v: float) -> str:
    return f"{v / 1e9:.2f} GB/s"


def _rps(v: float) -> str:
    return f"{v:,.0f} req/s"


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def ttfb_ms(port: int, path: str, headers: dict[str, str], count: int = 400) -> float:
    """Median time from sending a request to its first response byte, one keep-alive connection."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode()
    samples = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(count + 20):
            t0 = time.perf_counter()
            sock.sendall(request)
            data = sock.recv(1 << 20)
            t1 = time.perf_counter()
            while b"\r\n\r\n" not in data:
                data += sock.recv(1 << 20)
            header, _, body = data.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in header.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            while len(body) < length:
                body += sock.recv(1 << 20)
            if i >= 20:  # warm-up excluded
                samples.append((t1 - t0) * 1000)
    return statistics.median(samples)


FILE_RESPONSE_APP = """
import sys
from aiohttp import web

async def song(request):
    return web.FileResponse(sys.argv[1], headers={"Cache-Control": "private"})

app = web.Application()
app.router.add_get("/song", song)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), print=None, access_log=None)
"""


def file_response_server(ctx: Context, path: Path) -> tuple[Process, int]:
    """aiohttp's FileResponse on the same file, in a tiny app of its own: a second reference."""
    script = ctx.tmp / "fileresponse_app.py"
    script.write_text(FILE_RESPONSE_APP)
    port = free_port()
    proc = Process([sys.executable, str(script), str(path), str(port)], ctx.tmp / "fileresponse.log")
    wait_port(port, proc.proc, proc.log)
    return proc, port


def rows(ctx: Context) -> list[Row]:
    return asyncio.run(_rows(ctx))


async def _rows(ctx: Context) -> list[Row]:
    ctx.audio(FULL, "wav", seconds=29.72)  # 44.1 kHz stereo 16-bit: 5.24 MB
    ctx.audio(PACED, "mp3", seconds=PACED_SONG_S, bitrate="128k")
    out: list[Row] = []
    nginx_full = ctx.nginx_url(FULL)
    rng = {"Range": RANGE}
    # Unpaced: these rows measure the serving path, not the pacing.
    async with ctx.app("unpaced", stream_pace="0") as app:
        auth = {"Authorization": f"Bearer {app.token}"}
        url = app.stream_url(FULL)
        for conns in (16, 64):
            ref = ctx.wrk(nginx_full, conns)
            got = ctx.wrk(url, conns, headers=auth)
            r = _ratio(got.bytes_per_s, ref.bytes_per_s)
            out.append(Row(f"full-file GET 5 MiB, {conns} connections", f"nginx {_gb(ref.bytes_per_s)}",
                           _gb(got.bytes_per_s), f"{r:.2f}×", "≥ 0.95×", r >= 0.95))
        ref = ctx.wrk(nginx_full, 64, headers=rng)
        got = ctx.wrk(url, 64, headers={**auth, **rng})
        r = _ratio(got.requests_per_s, ref.requests_per_s)
        out.append(Row("64 KiB range GET, 64 connections, authenticated endpoint",
                       f"nginx {_rps(ref.requests_per_s)}", _rps(got.requests_per_s), f"{r:.2f}×",
                       "≥ 0.5×", r >= 0.5))
        proc, port = await asyncio.to_thread(file_response_server, ctx, ctx.files[FULL])
        try:
            fr = ctx.wrk(f"http://127.0.0.1:{port}/song", 64, headers=rng)
        finally:
            proc.stop()
        out.append(Row("64 KiB range GET, 64 connections: aiohttp `FileResponse` (no auth)",
                       f"nginx {_rps(ref.requests_per_s)}", _rps(fr.requests_per_s),
                       f"{_ratio(fr.requests_per_s, ref.requests_per_s):.2f}×",
                       "reference (SPEC: ~0.08×)", None))
        cython_rps = got.requests_per_s

        nginx_ttfb = ttfb_ms(ctx.nginx(), "/" + ctx.files[FULL].name, rng)
        app_ttfb = ttfb_ms(app.port, f"/api/stream/{app.songs[FULL]}", {**auth, **rng})
        r = _ratio(app_ttfb, nginx_ttfb)
        out.append(Row("time to first byte, 64 KiB range, idle (median)", f"nginx {nginx_ttfb:.3f} ms",
                       f"{app_ttfb:.3f} ms", f"{r:.2f}×", "≤ 1.5×", r <= 1.5))

        idle = ctx.wrk(url, 2, headers={**auth, **rng})
        with ctx.wrk_background(url, 16, DURATION + 5, headers=auth):
            loaded = ctx.wrk(url, 2, headers={**auth, **rng})
        p99 = loaded.latency_ms.get("99", float("nan"))
        out.append(Row("64 KiB range p99 while 16 clients stream whole files (2 range clients)",
                       f"same server idle: p99 {idle.latency_ms.get('99', 0):.2f} ms",
                       f"p99 {p99:.2f} ms",
                       f"{_ratio(p99, idle.latency_ms.get('99', 0)):.1f}×", "≤ 5 ms", p99 <= 5.0))

    async with ctx.app("twin", extra_env={"STREAMCORE_NO_EXTENSIONS": "1"}, stream_pace="0") as app:
        auth = {"Authorization": f"Bearer {app.token}"}
        twin = ctx.wrk(app.stream_url(FULL), 64, headers={**auth, **rng})
    r = _ratio(cython_rps, twin.requests_per_s)
    out.append(Row("Cython core vs pure-Python twin: 64 KiB range GET, 64 connections",
                   f"twin {_rps(twin.requests_per_s)}", f"Cython {_rps(cython_rps)}", f"{r:.2f}×",
                   "a measured speed-up", None))
    out.extend(_micro_rows())

    out.extend(await pacing_rows(ctx))
    return out


async def pacing_rows(ctx: Context) -> list[Row]:
    """The limiter's rows (SPEC §6, §11): a lone download on an idle server, with no budget and
    with one, and 2,000 streams sharing a budget; `python -m bench.streaming pacing` runs only
    these."""
    ctx.audio(FULL, "wav", seconds=29.72)
    ctx.audio(PACED, "mp3", seconds=PACED_SONG_S, bitrate="128k")
    out: list[Row] = []
    async with ctx.app("nofloor", stream_pace="0", stream_burst_seconds="0") as app:
        ref = ctx.wrk(app.stream_url(FULL), 1, headers={"Authorization": f"Bearer {app.token}"})
    async with ctx.app("defaults") as app:  # SONORA_STREAM_EGRESS_MBPS=0, burst 30 s, pace 2
        got = ctx.wrk(app.stream_url(FULL), 1, headers={"Authorization": f"Bearer {app.token}"})
    r = _ratio(got.bytes_per_s, ref.bytes_per_s)
    out.append(Row("lone download on an idle server, 5 MiB WAV, 1 connection, default settings "
                   "(no egress budget; burst 30 s, pace 2)",
                   f"same server with no floors at all {_gb(ref.bytes_per_s)}",
                   _gb(got.bytes_per_s), f"{r:.2f}×", "≥ 0.9× unpaced", r >= 0.9))
    async with ctx.app("paced", stream_burst_seconds=str(PACED_BURST_S), stream_pace="2",
                       stream_egress_mbps=f"{EGRESS_MBPS:g}") as app:
        budget = EGRESS_MBPS * 1e6 / 8
        lone = ctx.wrk(app.stream_url(FULL), 1, headers={"Authorization": f"Bearer {app.token}"})
        r = _ratio(lone.bytes_per_s, budget)
        out.append(Row(f"lone download on an idle server with a {EGRESS_MBPS:g} Mbit/s egress "
                       "budget (floor: 2 × 1411 kbps)", f"the budget {_gb(budget)}",
                       _gb(lone.bytes_per_s), f"{r:.2f}×", "≥ 0.9× the budget (not the floor)",
                       r >= 0.9))
        out.extend(await _paced_rows(ctx, app))
    return out


def _micro_rows() -> list[Row]:
    """streamcore's own micro-benchmark, one row per operation."""
    res = subprocess.run([sys.executable, "-m", "streamcore.bench"],  # noqa: S603
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    out = []
    for line in res.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith(("parse_range", "Pacer", "allocate")):
            out.append(Row(f"streamcore micro: {cells[0]}", f"twin {cells[1]} ops/s",
                           f"Cython {cells[2]} ops/s", cells[3], "a measured speed-up", None))
    return out


async def _paced_rows(ctx: Context, app: App) -> list[Row]:
    auth = {"Authorization": f"Bearer {app.token}"}
    path = f"/api/stream/{app.songs[PACED]}"
    bitrate_bytes = 128_000 / 8
    burst = int(PACED_BURST_S * bitrate_bytes)
    expected = EGRESS_MBPS * 1e6 / 8 / PACED_STREAMS
    client = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.paced_client", "127.0.0.1", str(app.port), path, app.token,
        str(PACED_STREAMS), str(PACED_SECONDS), str(burst),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    await asyncio.sleep(5.0)  # all streams open and past their burst
    latency = await asyncio.to_thread(
        ctx.wrk, f"{app.base}{path}", 2, headers={**auth, "Range": PACED_RANGE},
        seconds=min(DURATION, PACED_SECONDS - 7))
    stdout, stderr = await asyncio.wait_for(client.communicate(), PACED_SECONDS + 120)
    if client.returncode != 0:
        raise RuntimeError(f"paced client failed: {stderr.decode()[-2000:]}")
    result = json.loads(stdout)
    rates = [r for r in result["rates"] if r is not None]
    errors = sorted(abs(r - expected) / expected for r in rates)
    within = sum(e <= 0.05 for e in errors)
    unmeasured = result.get("unmeasured") or []
    worst = errors[-1] if errors else float("nan")
    measured = len(rates)
    what = (f"{PACED_STREAMS:,} streams sharing a {EGRESS_MBPS:g} Mbit/s budget (fair share "
            f"{expected / 1000:.0f} kB/s each, floors 2 × 128 kbps = 32 kB/s), over the "
            f"{result['window']:.1f} s once all are past their burst")
    rows = [Row(what,
                f"fair share {expected / 1000:.0f} kB/s",
                f"{within}/{PACED_STREAMS} within ±5 % (measured {measured}); median error "
                f"{statistics.median(errors):.1%}, worst {worst:.1%}; all together "
                f"{sum(rates) * 8 / 1e6:.0f} Mbit/s"
                + (f"; unmeasured (status, bytes, samples): {unmeasured[:3]}" if unmeasured else "")
                if errors else "no stream measured",
                f"{within / PACED_STREAMS:.2f}", "every stream within ±5 % of its fair share",
                within == PACED_STREAMS)]
    p99 = latency.latency_ms.get("99", float("nan"))
    rows.append(Row(f"32 KiB range p99 during the {PACED_STREAMS:,} streams sharing the budget", "—",
                    f"p99 {p99:.2f} ms ({latency.requests_per_s:,.0f} req/s)", "—", "≤ 20 ms",
                    p99 <= 20.0))
    return rows


def _pacing_only() -> int:
    """`python -m bench.streaming pacing`: the limiter's rows alone, printed (docs untouched)."""
    from bench.__main__ import table
    from bench.common import ensure_tools, raise_fd_limit

    ensure_tools()
    raise_fd_limit()
    ctx = Context()
    try:
        got = asyncio.run(pacing_rows(ctx))
    finally:
        ctx.close()
    print(table(got))
    return 0 if all(r.met is not False for r in got) else 1


if __name__ == "__main__":
    if sys.argv[1:] != ["pacing"]:
        raise SystemExit("usage: python -m bench.streaming pacing")
    sys.exit(_pacing_only())
