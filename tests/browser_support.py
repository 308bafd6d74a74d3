"""Driving Debian's Chromium with Playwright: the launch settings the browser tests share, and the
screenshots of docs/screenshots/ (`python -m tests.browser_support screenshots`).

The screenshots run the real server (`python -m app serve`) on a free port against a database of
their own filled with the demo library, sign in as the demo listener, start a song and visit the
main pages at desktop (1366×900) and phone (390×844) sizes. The database and data directory are
dropped afterwards. Playwright's own browser download is never used."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required",
    "--disable-dev-shm-usage", "--mute-audio",
]
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless Debian Chromium through Playwright (its bundled node driver; no browser download)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def login(page: Any, base: str, username: str, password: str) -> None:
    """Sign in through the /login form, as a person would."""
    await page.goto(f"{base}/login")
    await page.fill("input[name=login]", username)
    await page.fill("input[name=password]", password)
    async with page.expect_navigation():
        await page.click("form button[type=submit]")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def dev_server(seconds: float = 30.0) -> Iterator[tuple[str, str, str]]:
    """`python -m app serve` with the demo library in a database of its own; yields
    (base URL, demo username, demo password) and drops everything afterwards."""
    name = f"sonora_screens_{secrets.token_hex(3)}"
    mysql = os.environ.get("SONORA_TEST_MYSQL", "mysql://root@127.0.0.1:3306")
    with tempfile.TemporaryDirectory(prefix="sonora-screens-") as data:
        env = {**os.environ, "SONORA_DATABASE_URL": f"{mysql}/{name}", "SONORA_DATA_DIR": data,
               "SONORA_REDIS_URL": "", "SONORA_AMQP_URL": "", "SONORA_MEILI_URL": "",
               "SONORA_NAMESPACE": name}
        port = free_port()
        server = None
        try:
            subprocess.run([sys.executable, "-m", "app", "demo", "--seconds", str(seconds)],
                           cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
            note = (Path(data) / "demo-listener.txt").read_text()
            password = note.split("password:")[1].strip()
            server = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)],
                                      cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not start")
                time.sleep(0.2)
            yield f"http://127.0.0.1:{port}", "demo", password
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=20)
            sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
            from conftest import _admin_sql

            asyncio.run(_admin_sql(f"DROP DATABASE IF EXISTS `{name}`"))


async def _shoot(base: str, username: str, password: str) -> list[Path]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    written = []
    async with chromium() as browser:
        for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            context = await browser.new_context(viewport=viewport, device_scale_factor=1,
                                                color_scheme="dark", is_mobile=label == "phone",
                                                has_touch=label == "phone")
            page = await context.new_page()
            await login(page, base, username, password)
            album = await page.get_attribute(".card-link", "href")
            await page.goto(f"{base}{album}")
            artist = await page.get_attribute(".entity-artist", "href")
            # A few plays (for home and history), then one playing song for the bar.
            await page.click(".tracklist .track:nth-child(2) button.play", force=True)
            await page.wait_for_function("() => document.querySelector('audio').currentTime > 0.5", timeout=30_000)
            await page.evaluate("window.sonoraPlayer.addToQueue([...document.querySelectorAll('.tracklist li[data-song-id]')].slice(2, 5).map(r => Number(r.dataset.songId)))")
            await page.evaluate("document.querySelector('audio').currentTime = 12")
            if label == "desktop":
                await page.evaluate("""async () => {
                    const ids = [...document.querySelectorAll('.tracklist li[data-song-id]')].map(r => Number(r.dataset.songId));
                    const token = document.querySelector('meta[name=csrf-token]').content;
                    for (const id of ids.slice(0, 4)) {
                        await fetch('/api/stream/play', {method: 'POST', headers: {'Content-Type': 'application/json', 'X-CSRF-Token': token},
                            body: JSON.stringify({song_id: id, played_ms: 30000, play_id: crypto.randomUUID()})});
                        await fetch('/api/library/songs/' + id, {method: 'PUT', headers: {'X-CSRF-Token': token}});
                    }
                    const pl = await (await fetch('/api/playlist', {method: 'POST', headers: {'Content-Type': 'application/json', 'X-CSRF-Token': token},
                        body: JSON.stringify({name: 'Late night drive', description: 'Slow songs for empty roads', is_public: true})})).json();
                    await fetch(`/api/playlist/${pl.id}/songs`, {method: 'POST', headers: {'Content-Type': 'application/json', 'X-CSRF-Token': token},
                        body: JSON.stringify({song_ids: ids})});
                }""")
            query = (await page.text_content(".entity-name") or "").split()[0]
            playlists = await page.evaluate("fetch('/api/playlist').then(r => r.json())")
            playlist = f"/playlist/{playlists['items'][0]['id']}" if playlists["items"] else "/library"
            pages = [("home", "/"), ("album", album), ("artist", artist), ("search", "/search"),
                     ("library", "/library"), ("playlist", playlist), ("history", "/history")]
            for name, path in pages:
                await page.evaluate("p => window.sonoraRouter.navigate(p)", path)
                await page.wait_for_function("p => location.pathname === p", arg=path.split("?")[0])
                if name == "search":  # rendered by the server, as a shared search link would be
                    await page.goto(f"{base}/search?q={query}")
                    await page.wait_for_selector(".search-grid", timeout=15_000)
                    await page.click("[data-player='play']")  # restored paused after the load
                await page.wait_for_load_state("networkidle")
                await page.mouse.move(0, 0)
                await page.evaluate("document.querySelector('.toast')?.setAttribute('hidden', '')")
                await page.wait_for_timeout(400)  # settled images and fonts
                wide = await page.evaluate("() => { const m = document.getElementById('main'); return m.scrollWidth - m.clientWidth; }")
                if wide > 0:
                    print(f"warning: {name} is {wide}px wider than the {label} screen", file=sys.stderr)
                out = SHOTS / f"{name}-{label}.png"
                await page.screenshot(path=str(out))
                written.append(out)
            await page.evaluate("document.querySelector('[data-player=queue]').click()")
            await page.wait_for_timeout(300)
            out = SHOTS / f"queue-{label}.png"
            await page.screenshot(path=str(out))
            written.append(out)
            await context.close()
    return written


def screenshots() -> None:
    with dev_server() as (base, username, password):
        for path in asyncio.run(_shoot(base, username, password)):
            print(path.relative_to(ROOT))


if __name__ == "__main__":
    if sys.argv[1:] == ["screenshots"]:
        sys.path.insert(0, str(ROOT / "tests"))
        screenshots()
    else:
        print("usage: python -m tests.browser_support screenshots")
        sys.exit(2)
