"""Listening pages through the real app and real consumers: /history (grouped by day, paged,
cleared with a CSRF-checked form), the stats tab, "recently played" on home, and the admin
dashboard's plays-per-day chart."""

from __future__ import annotations

import html
import io
import re
import uuid

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from conftest import Account, make_admin, make_audio, make_config, register, unique
from markupsafe import escape
from support import eventually
from test_pages import csrf_of, login_as
from yarl import URL

from app.main import create_app
from app.web import keys
from app.web.charts import plays_chart
from app.web.pages.listening import HISTORY_PAGE

TODAY_BAR = re.compile(r'class="chart-bar is-today[^"]*" data-day="[^"]+" data-plays="(\d+)"')


@pytest.fixture
async def local(aiohttp_client, database_url, tmp_path) -> tuple[TestClient, Account]:
    """An app with no broker: it runs the consumers itself, so plays land in the history."""
    client = await aiohttp_client(create_app(make_config(database_url, tmp_path, amqp_url="")))
    admin = await make_admin(client, await register(client))
    return client, admin


async def upload(client: TestClient, admin: Account, audio_dir, title: str | None = None) -> dict:
    path = make_audio(audio_dir, "mp3", seconds=2.0, title=title or unique("Song "),
                      artist=unique("Artist "))
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(path.read_bytes()), filename=path.name)
    resp = await client.post("/api/song", data=form, headers=admin.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def history_total(client: TestClient, user_id: int) -> int:
    _, total = await client.app[keys.LISTENING].history(user_id, 1, 0)
    return total


async def play(client: TestClient, who: Account, *songs: dict) -> None:
    """Report a full play of each song and wait until the consumer has recorded them all."""
    before = await history_total(client, who.id)
    for song in songs:
        body = {"song_id": song["id"], "played_ms": song["duration_ms"], "play_id": uuid.uuid4().hex}
        resp = await client.post("/api/stream/play", json=body, headers=who.headers)
        assert resp.status == 202 and (await resp.json())["counted"] is True

    async def recorded() -> bool:
        return await history_total(client, who.id) == before + len(songs)

    await eventually(recorded)


async def today_bar(client: TestClient) -> int:
    resp = await client.get("/admin")
    assert resp.status == 200
    match = TODAY_BAR.search(await resp.text())
    assert match, "no bar for today"
    return int(match.group(1))


# ---------------------------------------------------------------- /history


@pytest.mark.parametrize("path", ["/history", "/history?tab=stats"])
async def test_anonymous_is_sent_to_login(client, path):
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 302
    location = URL(resp.headers["Location"])
    assert location.path == "/login" and location.query["next"] == path


async def test_history_lists_plays_newest_first_under_today(local, audio_dir):
    client, admin = local
    member = await register(client)
    first, second = await upload(client, admin, audio_dir), await upload(client, admin, audio_dir)
    await play(client, member, first)
    await play(client, member, second)
    await login_as(client, member)
    resp = await client.get("/history")
    text = await resp.text()
    assert resp.status == 200
    assert "Today" in text and "2 plays" in text
    assert text.index(str(escape(second["title"]))) < text.index(str(escape(first["title"])))
    assert 'aria-current="page"' in text.split('href="/history"', 1)[1][:40]  # the nav entry


async def test_history_is_paged(local, audio_dir):
    client, admin = local
    member = await register(client)
    song = await upload(client, admin, audio_dir)
    await play(client, member, *[song] * (HISTORY_PAGE + 1))
    await login_as(client, member)
    text = await (await client.get("/history")).text()
    assert text.count(f'data-song-id="{song["id"]}"') == 2 * HISTORY_PAGE  # row and its button
    assert "Page 1 of 2" in text and 'rel="next"' in text
    text = await (await client.get("/history?page=2")).text()
    assert text.count(f'data-song-id="{song["id"]}"') == 2 and "Page 2 of 2" in text
    assert (await client.get("/history?page=abc")).status in (400, 422)


async def test_empty_history_has_a_friendly_state(client, member):
    await login_as(client, member)
    text = await (await client.get("/history")).text()
    assert "No listening history yet" in text and "Clear history" not in text


async def test_clear_history_needs_csrf_then_empties_it(local, audio_dir):
    client, admin = local
    member = await register(client)
    song = await upload(client, admin, audio_dir)
    await play(client, member, song)
    await login_as(client, member)
    page = await (await client.get("/history")).text()
    assert "Clear history" in page

    refused = await client.post("/history/clear", data={}, allow_redirects=False)
    assert refused.status == 403
    refused = await client.post("/history/clear", data={"csrf_token": "forged"}, allow_redirects=False)
    assert refused.status == 403
    assert await history_total(client, member.id) == 1

    resp = await client.post("/history/clear", data={"csrf_token": csrf_of(page)},
                             allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/history"
    assert await history_total(client, member.id) == 0
    text = await (await client.get("/history")).text()
    assert "has been cleared" in text and "No listening history yet" in text
    assert str(escape(song["title"])) not in text
    # The song's global count stays.
    assert (await client.get(f"/api/song/{song['id']}/play-count", headers=member.headers)
            ).status == 200
    assert int(await client.app[keys.DB].fetchval(
        "SELECT play_count FROM songs WHERE id = %s", (song["id"],))) == 1


async def test_clear_is_post_only_and_for_members(client):
    assert (await client.post("/history/clear", allow_redirects=False)).status in (302, 401, 403)


# ---------------------------------------------------------------- stats


def stat(text: str, name: str) -> str:
    match = re.search(rf'data-stat="{name}">.*?class="stat-value">([^<]*)<', text, re.S)
    assert match, name
    return match.group(1)


async def test_stats_match_what_was_played(local, audio_dir):
    client, admin = local
    member = await register(client)
    a, b = await upload(client, admin, audio_dir), await upload(client, admin, audio_dir)
    await play(client, member, a, a, a, b)
    await login_as(client, member)
    resp = await client.get("/history?tab=stats")
    text = await resp.text()
    assert resp.status == 200
    assert stat(text, "plays") == "4" and stat(text, "songs") == "2" and stat(text, "artists") == "2"
    expected_hours = (3 * a["duration_ms"] + b["duration_ms"]) / 3_600_000
    assert stat(text, "hours") == f"{expected_hours:.1f}"
    # The personal chart: today's bar has the four plays, 30 bars, a title and a table fallback.
    chart = text[text.index('id="chart-mine"'):]
    assert TODAY_BAR.search(chart).group(1) == "4"  # type: ignore[union-attr]
    assert chart.count('class="chart-bar') == 30
    assert "<title>Today: 4 plays</title>" in chart and 'class="visually-hidden"' in chart
    assert 'style=' not in text
    # Top songs of the month, most played first, and the period links.
    top = text[text.index('id="s-top"'):]
    assert top.index(str(escape(a["title"]))) < top.index(str(escape(b["title"])))
    assert "3 plays" in top and "1 play<" in top
    for period in ("day", "week", "month", "year", "all"):
        resp = await client.get(f"/history?tab=stats&period={period}")
        assert resp.status == 200 and f'data-period="{period}"' in await resp.text()


async def test_unknown_period_falls_back_to_the_week(local, audio_dir):
    client, admin = local
    member = await register(client)
    await play(client, member, await upload(client, admin, audio_dir))
    await login_as(client, member)
    resp = await client.get("/history?tab=stats&period=decade'--")
    assert resp.status == 200 and 'data-period="week"' in await resp.text()


def test_chart_geometry():
    days = [{"day": f"2024-01-{d:02d}", "plays": p} for d, p in ((1, 0), (2, 3), (3, 6))]
    chart = plays_chart(days)
    assert chart["total"] == 9 and chart["scale"] == 6
    bars = chart["bars"]
    assert bars[0]["height"] == 0 and bars[2]["height"] == 2 * bars[1]["height"]
    assert all(b["y"] + b["height"] == chart["base"] for b in bars)
    assert plays_chart([])["total"] == 0


# ---------------------------------------------------------------- home and escaping


async def test_home_shows_recently_played(local, audio_dir):
    client, admin = local
    member = await register(client)
    await login_as(client, member)
    text = await (await client.get("/")).text()
    assert "Recently played" in text and "Nothing here yet" in text
    song = await upload(client, admin, audio_dir)
    await play(client, member, song)
    text = await (await client.get("/")).text()
    recent = text[text.index('id="shelf-recent"'):text.index('id="shelf-new"')]
    assert str(escape(song["title"])) in recent and "Nothing here yet" not in recent


async def test_song_titles_are_escaped(local, audio_dir):
    client, admin = local
    member = await register(client)
    evil = f"<script>alert({uuid.uuid4().int % 1000})</script>"
    song = await upload(client, admin, audio_dir, title=evil)
    assert song["title"] == evil
    await play(client, member, song)
    await login_as(client, member)
    for path in ("/", "/history", "/history?tab=stats"):
        text = await (await client.get(path)).text()
        assert evil not in text, path
        assert html.escape(evil, quote=True) in text or str(escape(evil)) in text, path


# ---------------------------------------------------------------- admin dashboard


async def test_admin_dashboard_chart_counts_todays_plays(local, audio_dir):
    client, admin = local
    member = await register(client)
    song = await upload(client, admin, audio_dir)
    await login_as(client, admin)
    before = await today_bar(client)
    await play(client, member, song, song)
    await play(client, admin, song)
    text = await (await client.get("/admin")).text()
    assert int(TODAY_BAR.search(text).group(1)) == before + 3  # type: ignore[union-attr]
    assert f"<title>Today: {before + 3} play" in text
    assert "Plays per day" in text and 'id="chart-all"' in text and 'style=' not in text


async def test_member_gets_403_on_admin_dashboard(client, member):
    await login_as(client, member)
    assert (await client.get("/admin", allow_redirects=False)).status == 403


async def test_history_shows_how_long_each_play_was_listened_to(local, audio_dir):
    client, admin = local
    member = await register(client)
    song = await upload(client, admin, audio_dir)
    body = {"song_id": song["id"], "played_ms": song["duration_ms"] - 1000, "play_id": uuid.uuid4().hex}
    resp = await client.post("/api/stream/play", json=body, headers=member.headers)
    assert resp.status == 202 and (await resp.json())["counted"] is True

    async def recorded() -> bool:
        return await history_total(client, member.id) == 1

    await eventually(recorded)
    await login_as(client, member)
    text = await (await client.get("/history")).text()
    whole, listened = song["duration_ms"] // 1000, (song["duration_ms"] - 1000) // 1000
    assert f"Listened for {listened // 60}:{listened % 60:02d} of {whole // 60}:{whole % 60:02d}" in text, text
