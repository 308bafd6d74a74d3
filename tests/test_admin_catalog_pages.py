"""Admin catalogue pages through the real app: rights on every page and form, the multi-file
upload with per-file outcomes, edit and delete flows with confirmation, pictures, escaping."""

from __future__ import annotations

import io

import aiohttp
import pytest
from conftest import make_audio, unique
from markupsafe import escape
from support import index_songs
from test_pages import XSS_NAMES, form_token, login_as, post_form

from app.media import images
from app.web import keys

COVER = images.placeholder_cover("admin catalog pages", 300)


async def api_upload(client, admin, path):
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(path.read_bytes()), filename=path.name,
                   content_type="application/octet-stream")
    resp = await client.post("/api/song", data=form, headers=admin.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def page_upload(client, files, token, header=False, field="file", path="/admin/songs/upload"):
    """A multipart form as a browser sends it: without scripts the token rides in the form's
    action URL (the body is streamed, never parsed by the middleware); the page script sends it
    as a header instead."""
    form = aiohttp.FormData()
    if not header and files:
        path = f"{path}?csrf_token={token}"
    elif not header:  # no file: the browser sends a plain urlencoded form
        form.add_field("csrf_token", token)
    for name, data in files:
        form.add_field(field, io.BytesIO(data), filename=name, content_type="application/octet-stream")
    headers = {"X-CSRF-Token": token} if header else {}
    return await client.post(path, data=form, headers=headers, allow_redirects=False)


async def song_count(client):
    return int(await client.app[keys.DB].fetchval("SELECT COUNT(*) FROM songs"))


@pytest.fixture
async def song(client, admin, audio_dir):
    artist = unique("Edit Artist ")
    path = make_audio(audio_dir, "mp3", title="Before", artist=artist, album=unique("Edit Album "),
                      track=1, genre="Folk", year=2001)
    return await api_upload(client, admin, path)


ADMIN_GETS = ["/admin/songs", "/admin/songs?q=x&page=2", "/admin/songs/upload",
              "/admin/songs/{song}/edit", "/admin/songs/{song}/delete", "/admin/artists",
              "/admin/artists/new", "/admin/artists/{artist}/edit", "/admin/artists/{artist}/delete",
              "/admin/albums", "/admin/albums/new", "/admin/albums/{album}/edit",
              "/admin/albums/{album}/delete"]
ADMIN_POSTS = [
    ("/admin/songs/{song}/edit", {"title": "Hacked", "artist_id": "{artist}"}),
    ("/admin/songs/{song}/delete", {}),
    ("/admin/artists/new", {"name": "Made by member"}),
    ("/admin/artists/{artist}/edit", {"name": "Hacked"}),
    ("/admin/artists/{artist}/delete", {}),
    ("/admin/albums/new", {"title": "Made by member", "artist_id": "{artist}"}),
    ("/admin/albums/{album}/edit", {"title": "Hacked", "artist_id": "{artist}"}),
    ("/admin/albums/{album}/delete", {}),
]


async def test_member_gets_403_on_every_admin_catalogue_page(client, member, song, audio_dir):
    ids = {"song": song["id"], "artist": song["artist_id"], "album": song["album_id"]}
    before = await song_count(client)
    await login_as(client, member)
    for path in ADMIN_GETS:
        resp = await client.get(path.format(**ids), allow_redirects=False)
        assert resp.status == 403, path
        assert "go in there" in await resp.text()
    for path, data in ADMIN_POSTS:
        body = {k: v.format(**ids) for k, v in data.items()}
        resp = await post_form(client, path.format(**ids), body)
        assert resp.status == 403, path
    token = await form_token(client, "/me")
    mp3 = make_audio(audio_dir, "mp3", title="Sneaky")
    for header in (False, True):
        resp = await page_upload(client, [(mp3.name, mp3.read_bytes())], token, header)
        assert resp.status == 403
    for path in (f"/admin/artists/{ids['artist']}/image", f"/admin/albums/{ids['album']}/cover"):
        resp = await page_upload(client, [("c.jpg", COVER)], token, field="image", path=path)
        assert resp.status == 403
    catalog = client.app[keys.CATALOG]
    assert await song_count(client) == before
    assert (await catalog.song(song["id"]))["title"] == "Before"
    assert (await catalog.artist(song["artist_id"]))["image_url"] is None
    assert (await catalog.album(song["album_id"]))["title"] == song["album"]["title"]


async def test_multi_file_upload_reports_each_file(client, admin, audio_dir):
    await login_as(client, admin)
    token = await form_token(client, "/admin/songs/upload")
    title = unique("Uploaded ")
    mp3 = make_audio(audio_dir, "mp3", title=title, artist=unique("Up Artist "), cover=COVER)
    text_file = b"this is a text file, not audio\n" * 40
    before = await song_count(client)
    files = [(mp3.name, mp3.read_bytes()), ("again.mp3", mp3.read_bytes()), ("notes.mp3", text_file)]
    resp = await page_upload(client, files, token)
    page = await resp.text()
    assert resp.status == 200, page
    assert await song_count(client) == before + 1
    song_id = await client.app[keys.DB].fetchval("SELECT id FROM songs WHERE title = %s", (title,))
    assert "1 added · 1 duplicate · 1 refused" in page
    assert ">Added</span>" in page and ">Duplicate</span>" in page and ">Refused</span>" in page
    assert f'href="/admin/songs/{song_id}/edit"' in page  # the duplicate links to the existing song
    assert "notes.mp3" in page and "(415)" in page
    # The page script's way (token in a header, files streamed): the same file is a duplicate.
    resp = await page_upload(client, [(mp3.name, mp3.read_bytes()), ("empty.mp3", b"")], token,
                             header=True)
    page = await resp.text()
    assert resp.status == 200
    assert "0 added · 1 duplicate · 1 refused" in page and "(422)" in page
    assert await song_count(client) == before + 1


async def test_upload_without_files_asks_for_some(client, admin):
    await login_as(client, admin)
    token = await form_token(client, "/admin/songs/upload")
    resp = await page_upload(client, [], token)
    assert resp.status == 422
    assert "Choose one or more audio files" in await resp.text()


async def test_song_list_search_edit_and_delete(client, admin, song):
    await login_as(client, admin)
    await index_songs(client.app, [song["id"]])  # the index narrows the text filter
    listing = await (await client.get("/admin/songs", params={"q": "Before"})).text()
    assert f'href="/artist/{song["artist_id"]}"' in listing and "MP3" in listing
    edit = await client.get(f"/admin/songs/{song['id']}/edit")
    assert edit.status == 200 and 'value="Before"' in await edit.text()
    bad = await post_form(client, f"/admin/songs/{song['id']}/edit",
                          {"title": "", "artist_id": str(song["artist_id"]), "year": "12"},
                          f"/admin/songs/{song['id']}/edit")
    assert bad.status == 422
    assert "field-error" in await bad.text()
    ok = await post_form(client, f"/admin/songs/{song['id']}/edit", {
        "title": "After", "artist_id": str(song["artist_id"]), "album_id": "", "track_number": "4",
        "disc_number": "2", "year": "2002", "genre": "Jazz", "explicit": "1",
        "back": "/admin/songs?q=After"}, "/admin/songs")
    assert ok.status == 302 and ok.headers["Location"] == "/admin/songs?q=After"
    saved = await client.app[keys.CATALOG].song(song["id"])
    assert (saved["title"], saved["album_id"], saved["track_number"], saved["disc_number"],
            saved["year"], saved["genre"], saved["explicit"]) == ("After", None, 4, 2, 2002, "Jazz", True)
    assert "Saved" in await (await client.get("/admin/songs?q=After")).text()
    # Delete: a confirmation page, then the POST removes the song and its stored file.
    row = await client.app[keys.DB].fetchone("SELECT file_path FROM songs WHERE id = %s", (song["id"],))
    stored = client.app[keys.MEDIA].path(row["file_path"])
    assert stored.exists()
    confirm = await client.get(f"/admin/songs/{song['id']}/delete")
    assert confirm.status == 200 and "Delete “After”?" in await confirm.text()
    resp = await post_form(client, f"/admin/songs/{song['id']}/delete", {}, "/admin/songs")
    assert resp.status == 302
    assert await client.app[keys.DB].fetchval("SELECT COUNT(*) FROM songs WHERE id = %s", (song["id"],)) == 0
    assert not stored.exists()
    again = await post_form(client, f"/admin/songs/{song['id']}/delete", {}, "/admin/songs")
    assert again.status == 302
    assert "no longer exists" in await (await client.get("/admin/songs")).text()


async def test_artist_create_edit_picture_and_delete(client, admin, song):
    await login_as(client, admin)
    name = unique("Hand Made ")
    resp = await post_form(client, "/admin/artists/new", {"name": name, "bio": "Plays the fiddle."},
                           "/admin/artists/new")
    assert resp.status == 302
    artist_id = int(resp.headers["Location"].split("/")[3])
    dup = await post_form(client, "/admin/artists/new", {"name": name}, "/admin/artists/new")
    assert dup.status == 409 and "already exists" in await dup.text()
    empty = await post_form(client, "/admin/artists/new", {"name": ""}, "/admin/artists/new")
    assert empty.status == 422
    resp = await post_form(client, f"/admin/artists/{artist_id}/edit", {"name": name + " II", "bio": ""},
                           "/admin/artists")
    assert resp.status == 302
    assert (await client.app[keys.CATALOG].artist(artist_id))["name"] == name + " II"
    token = await form_token(client, f"/admin/artists/{artist_id}/edit")
    pic = await page_upload(client, [("me.jpg", COVER)], token, field="image",
                            path=f"/admin/artists/{artist_id}/image")
    assert pic.status == 302
    assert (await client.app[keys.CATALOG].artist(artist_id))["image_url"]
    bad = await page_upload(client, [("me.jpg", b"not an image at all")], token, header=True,
                            field="image", path=f"/admin/artists/{artist_id}/image")
    assert bad.status == 302
    assert "Picture not saved" in await (await client.get(f"/admin/artists/{artist_id}/edit")).text()
    # An artist with songs cannot go: the refusal is a flash message, not an error page.
    busy = await post_form(client, f"/admin/artists/{song['artist_id']}/delete", {}, "/admin/artists")
    assert busy.status == 302
    assert "still has" in await (await client.get("/admin/artists")).text()
    confirm = await client.get(f"/admin/artists/{artist_id}/delete")
    assert confirm.status == 200
    resp = await post_form(client, f"/admin/artists/{artist_id}/delete", {}, "/admin/artists")
    assert resp.status == 302
    assert await client.app[keys.DB].fetchval("SELECT COUNT(*) FROM artists WHERE id = %s", (artist_id,)) == 0


async def test_album_create_edit_cover_and_delete(client, admin, song):
    await login_as(client, admin)
    title = unique("Made Album ")
    body = {"title": title, "artist_id": str(song["artist_id"]), "album_type": "ep", "year": "2010",
            "genre": "Folk"}
    resp = await post_form(client, "/admin/albums/new", body, "/admin/albums/new")
    assert resp.status == 302, await resp.text()
    album_id = int(resp.headers["Location"].split("/")[3])
    dup = await post_form(client, "/admin/albums/new", body, "/admin/albums/new")
    assert dup.status == 409
    bad = await post_form(client, "/admin/albums/new", {**body, "title": "x", "artist_id": "999999999"},
                          "/admin/albums/new")
    assert bad.status == 422 and "no such artist" in await bad.text()
    resp = await post_form(client, f"/admin/albums/{album_id}/edit", {**body, "album_type": "single"},
                           "/admin/albums")
    assert resp.status == 302
    assert (await client.app[keys.CATALOG].album(album_id))["album_type"] == "single"
    token = await form_token(client, f"/admin/albums/{album_id}/edit")
    resp = await page_upload(client, [("c.jpg", COVER)], token, header=True, field="image",
                             path=f"/admin/albums/{album_id}/cover")
    assert resp.status == 302
    assert (await client.app[keys.CATALOG].album(album_id))["cover_url"]
    assert (await client.get(f"/admin/albums/{album_id}/delete")).status == 200
    resp = await post_form(client, f"/admin/albums/{album_id}/delete", {}, "/admin/albums")
    assert resp.status == 302
    assert (await client.get(f"/admin/albums/{album_id}/edit")).status == 404


async def test_dashboard_shows_catalogue_counts(client, admin, song):
    await login_as(client, admin)
    text = await (await client.get("/admin")).text()
    counts = await client.app[keys.CATALOG].counts()
    assert f'<span class="stat-value">{counts["songs"]}</span>' in text
    assert f'<span class="stat-value">{counts["artists"]}</span>' in text
    for href in ("/admin/songs", "/admin/albums", "/admin/artists", "/admin/users"):
        assert f'href="{href}"' in text


async def test_admin_pages_escape_tag_values(client, admin, audio_dir):
    uploaded = []
    for evil in XSS_NAMES:
        path = make_audio(audio_dir, "mp3", title=evil, artist=evil + unique(" a"),
                          album=evil + unique(" b"))
        uploaded.append((await api_upload(client, admin, path), evil))
    await login_as(client, admin)
    for song, evil in uploaded:
        for path in ("/admin/songs", f"/admin/songs/{song['id']}/edit",
                     f"/admin/songs/{song['id']}/delete", "/admin/artists", "/admin/albums",
                     f"/admin/artists/{song['artist_id']}/edit", f"/admin/albums/{song['album_id']}/edit"):
            resp = await client.get(path)
            text = await resp.text()
            assert resp.status == 200, path
            assert evil not in text, path
            assert str(escape(evil)) in text, path
