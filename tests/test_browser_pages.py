"""The pages' scripts in a real browser (Debian's Chromium through Playwright, against the real app):
each module loads once, whatever a page binds works after in-app navigation as on a first load,
the header's suggestions on /search, admin tables aligned on a 1366-pixel laptop, and listening
time as really played (a skip, leaving the page)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from browser_support import CHROMIUM, login
from conftest import make_audio, register, unique
from support import eventually
from test_browser import WAIT, build_site, new_page, upload

from app.web import keys

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (.ci/run installs Debian's chromium)"),
]


@pytest.fixture
async def site(aiohttp_server, aiohttp_client, database_url, tmp_path, audio_dir) -> dict[str, Any]:
    # Pacing off: the listening test plays two short songs back to back.
    site = await build_site(aiohttp_server, aiohttp_client, database_url, tmp_path, audio_dir, stream_pace=0.0)
    app, client = site["app"], site["client"]
    admin = await register(client, display_name="Page Admin")
    await app[keys.DB].execute("UPDATE users SET role = 'admin' WHERE id = %s", (admin.id,))
    await app[keys.AUTH].authstate.forget_user(admin.id)
    site["admin"] = admin
    return site


@pytest.fixture
async def browser():
    from browser_support import chromium

    async with chromium() as b:
        yield b


def app_js_loads(page: Any) -> list[str]:
    """Every request for app.js, whatever its query string."""
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if r.url.split("?")[0].endswith("/static/js/app.js") else None)
    return seen


async def test_app_js_loads_once_and_one_upload_click_sends_one_upload(site, browser, audio_dir):
    base, admin = site["base"], site["admin"]
    context, page = await new_page(browser)
    loads = app_js_loads(page)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/admin/songs/upload" in r.url else None)
    await login(page, base, admin.username, admin.password)
    loads.clear()
    await page.goto(f"{base}/admin/songs/upload")
    await page.wait_for_load_state("networkidle")
    # The page and the modules that import it (library.js, player.js) name it by one URL.
    assert len(loads) == 1, loads
    song = make_audio(audio_dir, "mp3", seconds=3.0, title=unique("Upload once "), artist=unique("Uploader "))
    await page.set_input_files("form[data-stream-upload] input[type=file]", str(song))
    await page.click("form[data-stream-upload] button[type=submit]")
    status = page.locator(".panel-lead[role=status]")
    await status.wait_for()
    assert (await status.text_content() or "").strip() == "1 added · 0 duplicates · 0 refused"
    assert len(posts) == 1, posts
    assert page.js_errors == []
    await context.close()


async def test_confirmations_after_in_app_navigation(site, browser):
    """A playlist's Delete and "log out everywhere", reached by in-app links: the browser asks once,
    and a dismissed question sends nothing."""
    base, client, listener = site["base"], site["client"], site["listener"]
    resp = await client.post("/api/playlist", json={"name": unique("Keep me ")}, headers=listener.headers)
    playlist = await resp.json()
    context, page = await new_page(browser)
    dialogs: list[str] = []
    answer = {"accept": False}

    async def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        await (dialog.accept() if answer["accept"] else dialog.dismiss())

    page.on("dialog", on_dialog)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    await login(page, base, listener.username, listener.password)
    await page.evaluate("window.__marker = 1")

    await page.click(".sidebar a[href='/library']")
    await page.click(f"#main a[href='/playlist/{playlist['id']}'] >> nth=0")
    await page.wait_for_selector(f"#main form[action='/playlist/{playlist['id']}/delete']")
    assert await page.evaluate("window.__marker") == 1  # navigated in the page, not loaded
    posts.clear()
    await page.click(f"form[action='/playlist/{playlist['id']}/delete'] button[type=submit]")
    await page.wait_for_timeout(500)  # a submission would have left by now
    assert dialogs == ["Delete this playlist? This cannot be undone."]
    assert posts == []
    assert (await client.get(f"/api/playlist/{playlist['id']}", headers=listener.headers)).status == 200

    # Settings, through the account menu; dismissing keeps every session.
    await page.click(".user-menu summary")
    await page.click(".user-menu a[href='/me']")
    await page.wait_for_selector("#s-sessions")
    assert await page.evaluate("window.__marker") == 1
    await page.click("section[aria-labelledby=s-sessions] button[type=submit]")
    await page.wait_for_timeout(500)
    assert dialogs[1:] == ["Log out on every device, including this one?"]
    assert posts == []
    assert (await client.get("/api/user/me", headers=listener.headers)).status == 200

    # Back to the playlist, in-app again: accepting deletes it, the question asked once.
    await page.go_back()
    await page.wait_for_selector(f"#main form[action='/playlist/{playlist['id']}/delete']")
    answer["accept"] = True
    async with page.expect_navigation():
        await page.click(f"form[action='/playlist/{playlist['id']}/delete'] button[type=submit]")
    assert len(dialogs) == 3 and len(posts) == 1
    assert (await client.get(f"/api/playlist/{playlist['id']}", headers=listener.headers)).status == 404
    assert page.js_errors == []
    await context.close()


async def test_a_flash_after_navigation_can_be_closed(site, browser):
    """A flash message on a page reached in-app gets its close button, and the button works."""
    base, listener = site["base"], site["listener"]
    context, page = await new_page(browser)
    await login(page, base, listener.username, listener.password)
    await page.evaluate("window.__marker = 1")
    # A page that carries a flash, swapped in: an unknown share link would be a full load, so the
    # profile form's answer (a redirect with a flash) is fetched the way the router does.
    await page.evaluate("""async () => {
        const token = document.querySelector('meta[name=csrf-token]').content;
        await fetch('/me/profile', {method: 'POST', credentials: 'same-origin', redirect: 'manual',
            headers: {'Content-Type': 'application/x-www-form-urlencoded'},
            body: new URLSearchParams({csrf_token: token, display_name: 'Browser Listener', bio: ''})});
    }""")
    await page.evaluate("p => window.sonoraRouter.navigate(p)", "/me")
    flash = page.locator("#main [data-flash]")
    await flash.wait_for()
    assert await page.evaluate("window.__marker") == 1
    close = flash.locator("[data-dismiss]")
    assert await close.is_visible()
    await close.click()
    await flash.wait_for(state="detached")
    assert page.js_errors == []
    await context.close()


async def test_header_suggestions_on_a_search_page_opened_directly(site, browser):
    base, listener, songs = site["base"], site["listener"], site["songs"]
    context, page = await new_page(browser)
    await login(page, base, listener.username, listener.password)
    await page.goto(f"{base}/search")
    await page.type("#top-search", site["artist"][:7], delay=30)
    suggestions = page.locator("#top-search-suggestions")
    await suggestions.wait_for(state="visible")
    await page.wait_for_selector(f"#top-search-suggestions >> text={site['artist']}")
    assert await page.get_attribute("#top-search", "aria-expanded") == "true"
    assert songs and page.js_errors == []
    await context.close()


@pytest.mark.parametrize("width", [1366, 1000, 1500])
async def test_admin_tables_keep_their_columns(site, browser, width):
    """Header and cells of each column stay together, the date column hidden or shown as one."""
    base, admin, client = site["base"], site["admin"], site["client"]
    resp = await client.post("/api/playlist", json={"name": unique("Admin table "), "is_public": True},
                             headers=site["listener"].headers)
    assert resp.status == 201
    context, page = await new_page(browser)
    await page.set_viewport_size({"width": width, "height": 900})
    await login(page, base, admin.username, admin.password)
    columns = """() => {
        const shown = (cells) => [...cells].filter((c) => getComputedStyle(c).display !== 'none')
            .map((c) => [Math.round(c.getBoundingClientRect().left), Math.round(c.getBoundingClientRect().width)]);
        const t = document.querySelector('.table-catalog');
        return {head: shown(t.querySelectorAll('thead th')), row: shown(t.querySelector('tbody tr').children)};
    }"""
    for path in ("/admin/artists", "/admin/albums", "/admin/playlists", "/admin/songs"):
        await page.goto(f"{base}{path}")
        cols = await page.evaluate(columns)
        assert len(cols["head"]) == len(cols["row"]) >= 4, (path, cols)
        for (head_x, head_w), (cell_x, cell_w) in zip(cols["head"], cols["row"], strict=True):
            assert abs(head_x - cell_x) <= 1 and abs(head_w - cell_w) <= 1, (path, cols)
        if width == 1366 and path != "/admin/albums":
            assert await page.locator("thead .cell-date").is_hidden(), path
        if width == 1500 and path != "/admin/albums":
            assert await page.locator("thead .cell-date").is_visible(), path
    await context.close()


async def history_ms(site: dict[str, Any]) -> dict[int, int]:
    resp = await site["client"].get("/api/stream/history", headers=site["listener"].headers)
    assert resp.status == 200
    return {h["song"]["id"]: h["played_ms"] for h in (await resp.json())["items"]}


async def test_listening_time_is_the_time_played(site, browser, audio_dir):
    """Skipped after about 11 s, a song's listen records about 11 s (not the counting threshold);
    the next song, left with the page after about 9 s, records about 9 s (the beacon)."""
    client, admin, listener = site["client"], site["admin"], site["listener"]
    artist, album = unique("Timekeeper "), unique("Clock ")
    made = []
    for n, (title, seconds) in enumerate((("Tick", 16.0), ("Tock", 12.0)), start=1):
        path = make_audio(audio_dir, "mp3", seconds=seconds, title=unique(title), artist=artist, album=album, track=n)
        made.append(await upload(client, admin, path))
    first, second = made
    context, page = await new_page(browser)
    await login(page, site["base"], listener.username, listener.password)
    await page.goto(f"{site['base']}/album/{first['album_id']}")
    await page.click(f".tracklist button.play[data-song-id='{first['id']}']", force=True)
    # Past the threshold (half of 16 s), then a while more; the skip comes at what the audio says.
    await page.wait_for_function("() => { const a = document.querySelector('audio'); return !a.paused && a.currentTime > 11; }", timeout=WAIT)
    skipped_at = await page.evaluate("document.querySelector('audio').currentTime")
    await page.click("[data-player='next']")
    await page.wait_for_function(f"() => window.sonoraPlayer.queue[window.sonoraPlayer.index] === {second['id']}")
    await page.wait_for_function("() => { const a = document.querySelector('audio'); return !a.paused && a.currentTime > 9; }", timeout=WAIT)
    left_at = await page.evaluate("document.querySelector('audio').currentTime")
    await page.goto(f"{site['base']}/library")  # a full load: the old page's beacon reports

    async def recorded() -> bool:
        got = await history_ms(site)
        return abs(got.get(first["id"], 0) - skipped_at * 1000) < 1500 and abs(got.get(second["id"], 0) - left_at * 1000) < 1500

    await eventually(recorded, timeout=20)
    got = await history_ms(site)
    stats = await (await client.get("/api/stream/stats", headers=listener.headers)).json()
    assert stats["plays"] == 2 and stats["listened_ms"] == got[first["id"]] + got[second["id"]]
    for song in (first, second):
        resp = await client.get(f"/api/song/{song['id']}/play-count", headers=listener.headers)
        assert (await resp.json())["play_count"] == 1
    assert page.js_errors == []
    await context.close()
