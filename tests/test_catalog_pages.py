"""Listener catalogue pages through the real app with real uploaded files: home, artist, album and
browse pages, the track-row and album-card partials, escaping of tag values, 404s and redirects."""

from __future__ import annotations

import io
import re

import aiohttp
import pytest
from conftest import make_audio, unique
from markupsafe import escape
from test_pages import XSS_NAMES, login_as
from yarl import URL

from app.media import images
from app.web import keys
from app.web.render import duration, image_size

COVER = images.placeholder_cover("catalog pages", 300)


async def upload(client, admin, path):
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(path.read_bytes()), filename=path.name,
                   content_type="application/octet-stream")
    resp = await client.post("/api/song", data=form, headers=admin.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


@pytest.fixture
async def album_songs(client, admin, audio_dir):
    """Three songs of one album on two discs, with a genre and a year of their own."""
    artist, album, genre = unique("Artist "), unique("Album "), unique("Genre")
    songs = []
    for track, disc, seconds in ((1, 1, 2.0), (2, 1, 3.0), (1, 2, 2.0)):
        path = make_audio(audio_dir, "mp3", seconds=seconds, title=f"Song {disc}-{track}",
                          artist=artist, album=album, track=track, disc=disc, year=1987,
                          genre=genre, cover=COVER)
        songs.append(await upload(client, admin, path))
    return songs


def test_duration_and_image_size_filters():
    assert duration(0) == "0:00" and duration(65_400) == "1:05" and duration(3_725_000) == "1:02:05"
    assert image_size("/api/image/7?size=300", 64) == "/api/image/7?size=64"
    assert image_size(None) is None


@pytest.mark.parametrize("path", ["/browse", "/browse?genre=Folk", "/artist/1", "/album/1"])
async def test_anonymous_catalogue_pages_redirect_to_login(client, path):
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 302
    location = URL(resp.headers["Location"])
    assert location.path == "/login" and location.query["next"] == path


async def test_album_page_lists_tracks_with_discs(client, member, album_songs):
    await login_as(client, member)
    first = album_songs[0]
    resp = await client.get(f"/album/{first['album_id']}")
    text = await resp.text()
    assert resp.status == 200
    assert str(escape(first["album"]["title"])) in text
    assert f'href="/artist/{first["artist_id"]}"' in text
    assert "Disc 1" in text and "Disc 2" in text
    for song in album_songs:
        assert f'aria-label="Play {song["title"]}"' in text
        assert f'data-song-id="{song["id"]}"' in text
        assert duration(song["duration_ms"]) in text
    assert re.search(r"0:0[23]", text)
    assert "3 songs" in text and "1987" in text
    assert "?size=300" in text  # the cover rendition, never the original


async def test_artist_page_shows_top_songs_and_discography(client, member, album_songs):
    await login_as(client, member)
    song = album_songs[0]
    text = await (await client.get(f"/artist/{song['artist_id']}")).text()
    assert str(escape(song["artist"]["name"])) in text
    assert "Popular" in text and "Discography" in text
    assert f'href="/album/{song["album_id"]}"' in text
    assert "1987 · Album" in text
    assert "3 songs" in text
    assert "?size=64" in text  # small thumbnails in track rows


def popular_ids(page: str) -> list[int]:
    section = re.search(r'<section class="shelf" aria-labelledby="shelf-popular">(.*?)</section>', page, re.S)
    found = re.findall(r'data-song-id="(\d+)"', section.group(1)) if section else []
    return [int(i) for i in dict.fromkeys(found)]  # a row names its song twice (row and button)


async def test_home_popular_songs_are_played_ones_and_hidden_when_none(client, member, album_songs):
    await login_as(client, member)
    db, cache = client.app[keys.DB], client.app[keys.CACHE]
    # Nobody played anything (this test owns the counts while it runs): no section at all.
    await db.execute("UPDATE songs SET play_count = 0 WHERE play_count > 0")
    await cache.bump("songs")
    text = await (await client.get("/")).text()
    assert "Popular songs" not in text and popular_ids(text) == []
    assert "New releases" in text
    # One song played: it is the only one listed.
    played = album_songs[1]
    await db.execute("UPDATE songs SET play_count = 3 WHERE id = %s", (played["id"],))
    await cache.bump("songs")
    text = await (await client.get("/")).text()
    assert "Popular songs" in text
    assert popular_ids(text) == [played["id"]]


async def test_home_shows_new_releases_popular_and_genres(client, member, album_songs):
    await login_as(client, member)
    await client.app[keys.DB].execute("UPDATE songs SET play_count = 1 WHERE id = %s", (album_songs[0]["id"],))
    await client.app[keys.CACHE].bump("songs")
    text = await (await client.get("/")).text()
    for heading in ("Recently played", "New releases", "Popular songs", "Browse by genre"):
        assert heading in text
    song = album_songs[0]
    assert f'href="/album/{song["album_id"]}"' in text
    assert f'href="/browse?genre={song["genre"]}"' in text
    assert 'class="play"' in text


async def test_browse_by_genre_and_year(client, member, album_songs):
    await login_as(client, member)
    genre = album_songs[0]["genre"]
    index = await (await client.get("/browse")).text()
    assert f'href="/browse?genre={genre}"' in index and 'href="/browse?year=1987"' in index
    resp = await client.get("/browse", params={"genre": genre, "unknown": "x", "artist_id": "1"})
    text = await resp.text()
    assert resp.status == 200
    assert "3 songs" in text and "1 album" in text
    for song in album_songs:
        assert f'aria-label="Play {song["title"]}"' in text
    by_year = await (await client.get("/browse?year=1987")).text()
    assert album_songs[0]["title"] in by_year
    nothing = await (await client.get("/browse", params={"genre": unique("none")})).text()
    assert "Nothing in" in nothing


async def test_unknown_ids_are_404(client, member):
    await login_as(client, member)
    for path in ("/artist/999999999", "/album/999999999"):
        resp = await client.get(path)
        assert resp.status == 404
        assert "This track skipped" in await resp.text()


async def test_tag_values_are_escaped_everywhere(client, admin, member, audio_dir):
    uploaded = []
    for i, evil in enumerate(XSS_NAMES):
        path = make_audio(audio_dir, "mp3", title=evil, artist=evil + unique(" a"),
                          album=evil + unique(" b"), genre=f"{evil}{i}", year=1999)
        uploaded.append(await upload(client, admin, path))
    await login_as(client, member)
    for song, evil in zip(uploaded, XSS_NAMES, strict=True):
        pages = ["/", f"/artist/{song['artist_id']}", f"/album/{song['album_id']}",
                 str(URL("/browse").with_query(genre=song["genre"])), "/browse"]
        for path in pages:
            resp = await client.get(path)
            text = await resp.text()
            assert resp.status == 200, path
            assert evil not in text, path
            assert str(escape(evil)) in text, path
