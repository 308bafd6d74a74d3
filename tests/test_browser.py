"""The web player in a real browser: Debian's Chromium driven by Playwright against the real app
(pytest-aiohttp's server on the run's own database) with real uploaded songs of one to four minutes.

One journey walks what a listener does (log in → search as you type → play → seek → browse while
playing → pause → like → add to a playlist → log out); a second covers the queue, a reload that
restores it, and recovery from a refused stream URL. Waits are on conditions, with generous
timeouts for a 2-core machine."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from browser_support import CHROMIUM, chromium, login
from conftest import make_audio, make_config, register, unique

from app.main import create_app
from app.media import images
from app.web import keys

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (.ci/run installs Debian's chromium)"),
]

WAIT = 30_000  # ms: a loaded 2-core machine can be slow; every wait ends as soon as its condition holds
# The first song is long enough that a seek far ahead needs a new range request (a response
# shared under the egress budget has not reached it yet); the others keep the album quick to make.
SONG_SECONDS = (240.0, 60.0, 60.0)
COVER = images.placeholder_cover("browser tests", 300)


async def upload(client: Any, admin: Any, path: Any) -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(path.read_bytes()), filename=path.name, content_type="application/octet-stream")
    resp = await client.post("/api/song", data=form, headers=admin.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def build_site(aiohttp_server: Any, aiohttp_client: Any, database_url: str, tmp_path: Any,
                     audio_dir: Any, **overrides: Any) -> dict[str, Any]:
    """The real app on a real port, an admin who uploaded one album of three songs (4, 1 and 1
    minutes), and a listener."""
    app = create_app(make_config(database_url, tmp_path, amqp_url="", **overrides))
    server = await aiohttp_server(app)
    client = await aiohttp_client(server)
    admin = await register(client)
    await app[keys.DB].execute("UPDATE users SET role = 'admin' WHERE id = %s", (admin.id,))
    await app[keys.AUTH].authstate.forget_user(admin.id)
    artist, album = unique("Nightjar "), unique("Lanterns ")
    songs = []
    for n, (title, seconds) in enumerate(zip((unique("Aurora"), unique("Borealis"), unique("Cirrus")), SONG_SECONDS, strict=True), start=1):
        path = make_audio(audio_dir, "mp3", seconds=seconds, title=title, artist=artist, album=album,
                          track=n, year=2024, genre="Ambient", cover=COVER)
        songs.append(await upload(client, admin, path))
    listener = await register(client, display_name="Browser Listener")
    return {"base": str(server.make_url("")).rstrip("/"), "client": client, "app": app, "songs": songs,
            "listener": listener, "artist": artist, "album": album}


@pytest.fixture
async def site(aiohttp_server, aiohttp_client, database_url, tmp_path, audio_dir) -> dict[str, Any]:
    """With an egress budget (SPEC 6) about four times the songs' bitrate: the lone stream gets
    all of it, so the four-minute song takes about a minute to arrive and a seek far ahead needs
    a new range request. (With no budget, the default, it would arrive at full speed at once.)"""
    return await build_site(aiohttp_server, aiohttp_client, database_url, tmp_path, audio_dir,
                            stream_egress_mbps=0.5)


@pytest.fixture
async def unpaced_site(aiohttp_server, aiohttp_client, database_url, tmp_path, audio_dir) -> dict[str, Any]:
    """No egress budget (the default): every stream at full speed. This test switches songs every
    few seconds; the journey test streams under a budget."""
    return await build_site(aiohttp_server, aiohttp_client, database_url, tmp_path, audio_dir)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as b:
        yield b


async def new_page(browser: Any) -> tuple[Any, Any]:
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(WAIT)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    return context, page


async def current_time(page: Any) -> float:
    return float(await page.evaluate("document.querySelector('audio').currentTime"))


async def wait_advancing(page: Any, beyond: float) -> None:
    await page.wait_for_function("t => { const a = document.querySelector('audio'); return !a.paused && a.currentTime > t; }",
                                 arg=beyond, timeout=WAIT)


async def liked(site: dict[str, Any], song_id: int) -> bool:
    resp = await site["client"].get(f"/api/library/songs/contains?ids={song_id}", headers=site["listener"].headers)
    assert resp.status == 200
    return bool((await resp.json())[0])


async def test_listener_journey(site, browser):
    base, songs, listener = site["base"], site["songs"], site["listener"]
    context, page = await new_page(browser)
    ranges: list[tuple[int, str]] = []
    page.on("response", lambda r: ranges.append((r.status, r.request.headers.get("range", "")))
            if "/api/stream/" in r.url and r.request.method == "GET" else None)

    client = site["client"]
    resp = await client.post("/api/playlist", json={"name": unique("Roadtrip ")}, headers=listener.headers)
    assert resp.status == 201
    playlist = await resp.json()

    # Log in through the form.
    await login(page, base, listener.username, listener.password)
    assert "Browser Listener" in await page.text_content(".user-menu")

    # From here to logging out, one document: links swap <main> only.
    await page.evaluate("window.__marker = 1")

    # Search as you type (on a page the router swapped in): results appear without submitting.
    await page.click(".sidebar a[href='/search']")
    await page.wait_for_selector("#search-q")
    assert await page.evaluate("document.activeElement.id") == "search-q"
    await page.type("#search-q", songs[0]["title"][:9], delay=30)
    await page.wait_for_selector(f"#search-results >> text={songs[0]['title']}")
    await page.wait_for_selector(f"#search-results button.search-play[aria-label='Play {songs[0]['title']}']", state="attached")

    # Open the album from the result and play its first song.
    await page.click(f"#search-results a[href='/album/{songs[0]['album_id']}'] >> nth=0")
    await page.wait_for_selector(".entity-name")
    assert await page.evaluate("window.__marker") == 1
    await page.click(f"button.play[aria-label='Play {songs[0]['title']}']", force=True)
    await wait_advancing(page, 0.3)
    first = await current_time(page)
    await page.wait_for_timeout(1200)
    assert await current_time(page) > first
    assert await page.text_content("[data-player-title]") == songs[0]["title"]
    assert await page.evaluate("window.sonoraPlayer.queue") == [s["id"] for s in songs]

    # Seek far ahead, past what the budgeted response has brought: a new range request, answered 206.
    await page.focus("[data-player-seek]")
    await page.evaluate("""() => { const s = document.querySelector('[data-player-seek]');
        s.value = 200; s.dispatchEvent(new Event('input', {bubbles: true})); s.dispatchEvent(new Event('change', {bubbles: true})); }""")
    await wait_advancing(page, 200)
    def start(value: str) -> int:
        first = value.removeprefix("bytes=").split("-")[0]
        return int(first) if first.isdigit() else 0

    assert any(status == 206 and start(value) > 0 for status, value in ranges), ranges
    await page.keyboard.press("ArrowRight")  # focus on the range: the input's own step, still fine

    # Browse to the artist from the player bar while playing: same document, still playing.
    await page.click("[data-player-artist]")
    await page.wait_for_selector(".entity-hero-artist")
    assert page.url.endswith(f"/artist/{songs[0]['artist_id']}")
    assert await page.evaluate("window.__marker") == 1
    assert await page.title() == f"{site['artist']} · Sonora"
    focused = await page.evaluate("document.activeElement.tagName")
    assert focused == "H1"
    now = await current_time(page)
    await wait_advancing(page, now + 0.5)

    # Back and forward stay in the same document too.
    await page.go_back()
    await page.wait_for_function("() => location.pathname.startsWith('/album/')")
    await page.wait_for_selector(".tracklist-album")
    await page.go_forward()
    await page.wait_for_selector(".entity-hero-artist")
    assert await page.evaluate("window.__marker") == 1

    # Space pauses (focus is on the page, not in a field).
    await page.focus("h1")
    await page.keyboard.press("Space")
    await page.wait_for_function("() => document.querySelector('audio').paused === true")

    # `l` likes the song playing; the server agrees.
    await page.keyboard.press("l")
    await page.wait_for_selector("[data-player='like'][aria-pressed='true']")
    for _ in range(150):
        if await liked(site, songs[0]["id"]):
            break
        await page.wait_for_timeout(100)
    assert await liked(site, songs[0]["id"])

    # Add to a playlist through a song row's control (the playlist was made before logging in).
    await page.go_back()
    await page.wait_for_selector(".tracklist-album")
    row = page.locator(f"li.track[data-song-id='{songs[1]['id']}']")
    await row.hover()
    await row.locator("[data-add-song]").click()
    await page.click(f".pl-menu [role=menuitem]:text-is('{playlist['name']}')")
    for _ in range(150):
        got = await (await client.get(f"/api/playlist/{playlist['id']}", headers=listener.headers)).json()
        if got["song_count"]:
            break
        await page.wait_for_timeout(100)
    assert [e["song"]["id"] for e in got["songs"]["items"]] == [songs[1]["id"]]
    assert await page.evaluate("window.__marker") == 1

    # Log out from the account menu: the login page, and the player's state stays on this device only.
    await page.click(".user-menu summary")
    async with page.expect_navigation():
        await page.click("text=Log out")
    assert "/login" in page.url
    assert page.js_errors == []
    await context.close()


async def test_queue_reload_and_expired_url(unpaced_site, browser):
    site = unpaced_site
    base, songs, listener = site["base"], site["songs"], site["listener"]
    context, page = await new_page(browser)
    await login(page, base, listener.username, listener.password)

    # The first stream request is refused as an expired cookie would be: the player gets a signed URL.
    refused: list[str] = []

    async def refuse_once(route: Any) -> None:
        if not refused and "sig=" not in route.request.url:
            refused.append(route.request.url)
            await route.fulfill(status=401, body="{}", content_type="application/json")
        else:
            await route.continue_()

    await page.route("**/api/stream/*", refuse_once)
    await page.goto(f"{base}/album/{songs[0]['album_id']}")
    await page.click("button.play-context")  # the album's big Play button
    await wait_advancing(page, 0.3)
    assert refused
    assert "sig=" in await page.evaluate("document.querySelector('audio').currentSrc")
    await page.unroute("**/api/stream/*")

    # Next, previous (restarts after 3 s, else goes back), and the queue panel.
    await page.click("[data-player='next']")
    await page.wait_for_function("t => document.querySelector('[data-player-title]').textContent === t", arg=songs[1]["title"])
    await wait_advancing(page, 3.2)
    await page.click("[data-player='prev']")
    await page.wait_for_function("() => document.querySelector('audio').currentTime < 3")
    assert await page.text_content("[data-player-title]") == songs[1]["title"]
    await page.click("[data-player='prev']")
    await page.wait_for_function("t => document.querySelector('[data-player-title]').textContent === t", arg=songs[0]["title"])

    # Play next and add to queue from a row's menu.
    await page.click(f"[data-queue-song='{songs[2]['id']}']", force=True)
    await page.click(".queue-menu >> text=Play next")
    await page.click(f"[data-queue-song='{songs[1]['id']}']", force=True)
    await page.click(".queue-menu >> text=Add to queue")
    order = [s["id"] for s in songs]
    expected = [order[0], order[2], order[1], order[1], order[2]]
    assert await page.evaluate("window.sonoraPlayer.queue") == expected

    await page.click("[data-player='queue']")
    panel = page.locator("#queue-panel")
    await panel.wait_for()
    assert await panel.locator("[data-queue-queued] .queue-item").count() == 2
    assert await panel.locator("[data-queue-next] .queue-item").count() == 2
    await panel.locator(f"[aria-label='Move {songs[2]['title']} down'] >> nth=0").click()
    assert await page.evaluate("window.sonoraPlayer.queue") == [order[0], order[1], order[2], order[1], order[2]]
    await panel.locator(f"[aria-label='Remove {songs[2]['title']} from the queue'] >> nth=1").click()
    assert await page.evaluate("window.sonoraPlayer.queue") == [order[0], order[1], order[2], order[1]]

    # Shuffle and repeat are buttons with a state; volume is a range.
    await page.click("[data-player='repeat']")
    assert await page.get_attribute("[data-player='repeat']", "aria-label") == "Repeat: all"

    # Position and queue survive a reload; the player comes back paused where it was.
    await page.evaluate("document.querySelector('audio').currentTime = 20")
    await page.wait_for_function("() => document.querySelector('audio').currentTime >= 20")
    await page.wait_for_timeout(2500)  # one periodic save (every 2 s) past the seek
    await page.reload()
    await page.wait_for_function("() => window.sonoraPlayer && window.sonoraPlayer.queue.length === 4")
    assert await page.evaluate("window.sonoraPlayer.queue") == [order[0], order[1], order[2], order[1]]
    await page.wait_for_function("() => document.querySelector('audio').currentTime >= 19")
    assert await page.evaluate("document.querySelector('audio').paused")
    assert await page.text_content("[data-player-title]") == songs[0]["title"]
    assert await page.get_attribute("[data-player='repeat']", "aria-label") == "Repeat: all"
    await page.click("[data-player='play']")
    await wait_advancing(page, 20.2)

    # Keyboard help opens with `?` (focus outside text fields), Escape closes it.
    await page.focus("h1")
    await page.keyboard.press("Shift+Slash")
    await page.wait_for_selector("#shortcuts[open]")
    await page.keyboard.press("Escape")
    await page.wait_for_selector("#shortcuts:not([open])", state="attached")
    assert page.js_errors == []
    await context.close()


async def test_play_report_after_half_a_short_song(site, browser, audio_dir):
    """A song shorter than a minute counts after half of it: one report, with a play_id."""
    app, client = site["app"], site["client"]
    admin = await register(client)
    await app[keys.DB].execute("UPDATE users SET role = 'admin' WHERE id = %s", (admin.id,))
    await app[keys.AUTH].authstate.forget_user(admin.id)
    short = await upload(client, admin, make_audio(audio_dir, "mp3", seconds=4.0, title=unique("Short"), artist=site["artist"]))
    context, page = await new_page(browser)
    reports: list[dict[str, Any]] = []
    page.on("request", lambda r: reports.append(r.post_data_json) if r.url.endswith("/api/stream/play") else None)
    await login(page, site["base"], site["listener"].username, site["listener"].password)
    await page.goto(f"{site['base']}/artist/{short['artist_id']}")
    await page.click(f"button.play[data-song-id='{short['id']}']", force=True)
    for _ in range(200):
        if reports:
            break
        await page.wait_for_timeout(100)
    assert len(reports) == 1 and reports[0]["song_id"] == short["id"] and len(reports[0]["play_id"]) == 36
    assert reports[0]["played_ms"] >= 1900

    # The same page on a 390-pixel phone: nothing wider than the screen, the compact bar usable.
    await page.set_viewport_size({"width": 390, "height": 844})
    fits = "() => document.documentElement.scrollWidth <= 390 && document.getElementById('main').scrollWidth <= document.getElementById('main').clientWidth"
    assert await page.evaluate(fits)
    for control in ("play", "next", "queue"):
        assert await page.locator(f"[data-player='{control}']").is_visible()
    await page.click("[data-player='queue']")
    box = await page.locator("#queue-panel").bounding_box()
    assert box is not None and box["width"] <= 390
    await page.click("[data-queue='close']")
    await page.evaluate("q => window.sonoraRouter.navigate('/search?q=' + encodeURIComponent(q))", short["title"])
    await page.wait_for_selector(f"#search-results button.search-play[data-song-id='{short['id']}']", state="attached")
    assert await page.evaluate(fits)
    await context.close()
