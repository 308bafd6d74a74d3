"""What every benchmark group shares: rows, the app and nginx as subprocesses, wrk, seeding.

Everything binds to 127.0.0.1 and every measurement is bounded in time. Row groups are modules
with `rows(ctx) -> list[Row]`; figures are ratios against a reference measured in the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiomysql

from app.repos.db import DbTarget

ROOT = Path(__file__).resolve().parent.parent
MYSQL_URL = os.environ.get("SONORA_BENCH_MYSQL", "mysql://root@127.0.0.1:3306")
REDIS_URL = os.environ.get("SONORA_BENCH_REDIS", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("SONORA_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
DATABASE = "sonora_bench"
DURATION = float(os.environ.get("BENCH_SECONDS", "5"))

async def admin_sql(statement: str, mysql_url: str = MYSQL_URL) -> None:
    """One statement on the MariaDB server itself, outside any database (a bench creating or
    dropping a database of its own)."""
    t = DbTarget.parse(f"{mysql_url}/x")
    conn = await aiomysql.connect(host=t.host, port=t.port, user=t.user, password=t.password,
                                  autocommit=True)
    try:
        async with conn.cursor() as cur:
            await cur.execute(statement)
    finally:
        conn.close()



@dataclass
class Row:
    """One line of the table: a measurement, its reference in the same run, and the target."""

    what: str
    reference: str
    measured: str
    ratio: str
    target: str
    met: bool | None  # None: no target, shown for information

    def cells(self) -> list[str]:
        met = "—" if self.met is None else ("yes" if self.met else "**no**")
        return [self.what, self.reference, self.measured, self.ratio, self.target, met]


@dataclass
class Wrk:
    """What wrk reported."""

    requests_per_s: float
    bytes_per_s: float
    latency_ms: dict[str, float]  # "50", "75", "90", "99"
    errors: str = ""
    requests: int = 0


_UNITS = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_BYTE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(out: str) -> Wrk:
    rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    tps = re.search(r"Transfer/sec:\s*([\d.]+)([KMGT]?B)", out)
    total = re.search(r"(\d+) requests in", out)
    lat = {m[1]: float(m[2]) * _TIME_UNITS[m[3]]
           for m in re.finditer(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)}
    errors = "; ".join(line.strip() for line in out.splitlines()
                       if "Socket errors" in line or "Non-2xx" in line)
    if rps is None or tps is None:
        raise RuntimeError(f"wrk output not understood:\n{out}")
    return Wrk(float(rps[1]), float(tps[1]) * _BYTE_UNITS[tps[2]], lat, errors,
               int(total[1]) if total else 0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes] | None, log: Path | None,
              seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited early:\n{log.read_text()[-3000:] if log else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def raise_fd_limit(want: int = 65536) -> int:
    """Enough descriptors for thousands of streams; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(want, hard) if hard != resource.RLIM_INFINITY else want
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def ensure_tools() -> None:
    """nginx and wrk from Debian when missing."""
    missing = [p for p, exe in (("nginx", "nginx"), ("wrk", "wrk"))
               if shutil.which(exe) is None and not Path(f"/usr/sbin/{exe}").exists()]
    if missing:
        print(f"installing {' '.join(missing)} from Debian...", flush=True)
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run([*sudo, "apt-get", "install", "-y", *missing], check=True,  # noqa: S603
                       stdout=subprocess.DEVNULL)


def wrk_path() -> str:
    return shutil.which("wrk") or "/usr/bin/wrk"


def nginx_path() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


class Process:
    """A subprocess with its log in the run's directory, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None,
                 cwd: Path = ROOT) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - the bench's own fixed commands
                args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class App:
    """A running `python -m app serve` and what was seeded in it."""

    port: int
    process: Process
    env: dict[str, str]
    token: str = ""
    songs: dict[str, int] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stream_url(self, name: str) -> str:
        return f"{self.base}/api/stream/{self.songs[name]}"


class Context:
    """One bench run: a temp directory, the seeded files, and the servers it started."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="sonora-bench-"))
        self.files_dir = self.tmp / "files"
        self.files_dir.mkdir()
        self.files: dict[str, Path] = {}
        self._stack = contextlib.ExitStack()
        self.namespace = f"bench_{secrets.token_hex(3)}"
        self.secret = secrets.token_urlsafe(36)
        self.admin = ("benchadmin", "bench password 1")
        self._db_ready = False
        self.nginx_port = 0

    def close(self) -> None:
        self._stack.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- files -----------------------------------------------------------------------------
    def audio(self, name: str, fmt: str, seconds: float, bitrate: str | None = None) -> Path:
        """A real audio file made by ffmpeg, kept for the whole run (and served by nginx)."""
        if name not in self.files:
            from app.media import audiogen

            ext = {"ogg": ".ogg", "m4a": ".m4a"}.get(fmt, f".{fmt}")
            path = self.files_dir / f"{name}{ext}"
            audiogen.generate(path, fmt, seconds=seconds, frequency=300.0 + len(self.files) * 31,
                              bitrate=bitrate)
            self.files[name] = path
        return self.files[name]

    # -- the app ---------------------------------------------------------------------------
    async def _reset_database(self) -> None:
        t = DbTarget.parse(f"{MYSQL_URL}/x")
        conn = await aiomysql.connect(host=t.host, port=t.port, user=t.user, password=t.password,
                                      autocommit=True)
        try:
            async with conn.cursor() as cur:
                await cur.execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
        finally:
            conn.close()

    def app_env(self, **settings: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SONORA_")}
        env.update({
            "SONORA_DATABASE_URL": f"{MYSQL_URL}/{DATABASE}", "SONORA_REDIS_URL": REDIS_URL,
            "SONORA_AMQP_URL": AMQP_URL, "SONORA_NAMESPACE": self.namespace,
            "SONORA_SECRET_KEY": self.secret, "SONORA_DATA_DIR": str(self.tmp / "data"),
            "SONORA_HOST": "127.0.0.1", "SONORA_BCRYPT_ROUNDS": "4",
            # One user opens every connection of the bench; the per-user limit is not measured.
            "SONORA_STREAM_MAX_PER_USER": "100000",
        })
        env.update({f"SONORA_{k.upper()}": v for k, v in settings.items()})
        return env

    async def start_app(self, label: str, extra_env: dict[str, str] | None = None,
                        **settings: str) -> App:
        """Start the app (first call: fresh database, admin and songs seeded through the API)."""
        env = self.app_env(**settings)
        env.update(extra_env or {})
        if not self._db_ready:
            await self._reset_database()
            await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "app", "create-user", "--admin", "--email",
                 "bench@example.com", "--username", self.admin[0], "--password", self.admin[1]],
                cwd=ROOT, env=env, check=True, capture_output=True)
        port = free_port()
        env["SONORA_PORT"] = str(port)
        proc = Process([sys.executable, "-m", "app", "serve"], self.tmp / f"app-{label}.log", env)
        app = App(port, proc, env)
        try:
            await asyncio.to_thread(wait_port, port, proc.proc, proc.log)
            await self._login_and_seed(app)
        except BaseException:
            proc.stop()
            raise
        self._db_ready = True
        return app

    async def _login_and_seed(self, app: App) -> None:
        async with aiohttp.ClientSession(app.base) as session:
            resp = await session.post("/api/auth/login",
                                      json={"username": self.admin[0], "password": self.admin[1]})
            resp.raise_for_status()
            app.token = (await resp.json())["access_token"]
            h = {"Authorization": f"Bearer {app.token}"}
            for name, path in self.files.items():
                form = aiohttp.FormData()
                form.add_field("file", io.BytesIO(path.read_bytes()), filename=path.name,
                               content_type="application/octet-stream")
                up = await session.post("/api/song", data=form, headers=h)
                if up.status == 409:  # seeded by an earlier start in this run
                    app.songs[name] = (await up.json())["error"]["details"]["existing_id"]
                    continue
                if up.status != 201:
                    raise RuntimeError(f"upload of {name}: {up.status} {await up.text()}")
                app.songs[name] = (await up.json())["id"]

    @contextlib.asynccontextmanager
    async def app(self, label: str, extra_env: dict[str, str] | None = None,
                  **settings: str) -> Any:
        app = await self.start_app(label, extra_env, **settings)
        try:
            yield app
        finally:
            await asyncio.to_thread(app.process.stop)

    # -- nginx -----------------------------------------------------------------------------
    def nginx(self) -> int:
        """nginx, 1 worker, sendfile on, tcp_nopush off, serving the run's files; its port."""
        if self.nginx_port:
            return self.nginx_port
        port = free_port()
        prefix = self.tmp / "nginx"
        prefix.mkdir()
        user = "user root root;" if os.geteuid() == 0 else ""
        conf = prefix / "nginx.conf"
        conf.write_text(f"""
{user}
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    types {{ audio/mpeg mp3; audio/wav wav; }}
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body; proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fcgi; uwsgi_temp_path {prefix}/uwsgi; scgi_temp_path {prefix}/scgi;
    sendfile on;
    tcp_nopush off;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        root {self.files_dir};
    }}
}}
""")
        proc = Process([nginx_path(), "-p", str(prefix), "-c", str(conf)], prefix / "stdout.log")
        self._stack.callback(proc.stop)
        wait_port(port, proc.proc, proc.log)
        self.nginx_port = port
        return port

    def nginx_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.nginx()}/{self.files[name].name}"

    # -- wrk -------------------------------------------------------------------------------
    def wrk(self, url: str, connections: int, *, headers: dict[str, str] | None = None,
            seconds: float = DURATION, threads: int = 1) -> Wrk:
        """wrk with a Lua script for the headers, latency percentiles, bounded in time."""
        script = self.tmp / f"wrk-{secrets.token_hex(4)}.lua"
        lines = [f'wrk.headers["{k}"] = "{v}"' for k, v in (headers or {}).items()]
        script.write_text("\n".join(lines) + "\n")
        args = [wrk_path(), f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency",
                "--timeout", "10s", "-s", str(script), url]
        out = subprocess.run(args, capture_output=True, text=True,  # noqa: S603
                             timeout=seconds + 30)
        if out.returncode != 0:
            raise RuntimeError(f"wrk failed: {out.stderr}")
        return parse_wrk(out.stdout)

    @contextlib.contextmanager
    def wrk_background(self, url: str, connections: int, seconds: float,
                       headers: dict[str, str] | None = None) -> Iterator[None]:
        """wrk running alongside a measurement (load for the latency rows)."""
        script = self.tmp / f"wrk-bg-{secrets.token_hex(4)}.lua"
        script.write_text("\n".join(f'wrk.headers["{k}"] = "{v}"'
                                    for k, v in (headers or {}).items()) + "\n")
        proc = subprocess.Popen([wrk_path(), "-t1",  # noqa: S603 f"-c{connections}", f"-d{seconds:g}s",
                                 "--timeout", "10s", "-s", str(script), url],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)  # let the load reach a steady state
            yield
        finally:
            proc.terminate()
            proc.wait(30)


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"nproc": str(os.cpu_count() or 0), "cpu": cpu, "python": sys.version.split()[0]}
