"""Library and playlist pages: sign-in required, escaping everywhere, forms, the shared link."""

from __future__ import annotations

from conftest import register, unique
from test_auth import claims_of, cookie
from test_playlists import create, dense, songs

from app.web import keys
from app.web.session import csrf_for

EVIL = '<script>alert(1)</script><img src=x onerror=alert(2)>'


def token(client, acct) -> str:
    return csrf_for(client.app[keys.AUTH].signer, claims_of(acct.access)["sid"])


async def test_pages_need_a_session(client):
    for path in ("/library", "/playlists", "/playlist/1", "/admin/playlists"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"].startswith("/login"), path


async def test_markup_in_names_is_escaped_on_every_page(client, member, admin, audio_dir):
    (a,) = await songs(client, admin, audio_dir, 1)
    p = await create(client, member, name="N" + EVIL, description="D" + EVIL, is_public=True)
    await client.post(f"/api/playlist/{p['id']}/songs", headers=member.headers, json={"song_ids": [a]})
    link = await (await client.post(f"/api/playlist/{p['id']}/share", headers=member.headers)).json()
    other = await register(client)
    await client.put(f"/api/library/playlists/{p['id']}", headers=other.headers)
    pages = [(member, f"/playlist/{p['id']}"), (member, "/library"), (other, "/library"),
             (other, "/playlists"), (other, f"/user/{member.username}"), (None, link["url"]),
             (admin, "/admin/playlists"), (admin, f"/admin/playlists/{p['id']}/delete")]
    for who, path in pages:
        resp = await client.get(path, headers=cookie(who) if who else {})
        text = await resp.text()
        assert resp.status == 200, path
        assert "<script>alert" not in text and "<img src=x" not in text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, path
        assert "Content-Security-Policy" in resp.headers


async def test_playlist_page_forms(client, member, admin, audio_dir):
    a, b = await songs(client, admin, audio_dir, 2)
    p = await create(client, member)
    await client.post(f"/api/playlist/{p['id']}/songs", headers=member.headers, json={"song_ids": [a, b]})
    h = cookie(member)
    t = token(client, member)
    page = await (await client.get(f"/playlist/{p['id']}", headers=h)).text()
    assert 'aria-label="Play ' in page and "Move" in page and 'aria-live="polite"' in page
    resp = await client.post(f"/playlist/{p['id']}/entries", headers=h, allow_redirects=False,
                             data={"csrf_token": t, "position": "1", "action": "up"})
    assert resp.status == 302
    assert await dense(client, p["id"]) == [b, a]
    resp = await client.post(f"/playlist/{p['id']}/entries", headers=h, allow_redirects=False,
                             data={"position": "1", "action": "up"})
    assert resp.status == 403  # no CSRF token
    await client.post(f"/playlist/{p['id']}/edit", headers=h, allow_redirects=False,
                      data={"csrf_token": t, "name": "Edited", "description": "", "is_public": "on"})
    got = await (await client.get(f"/api/playlist/{p['id']}", headers=member.headers)).json()
    assert got["name"] == "Edited" and got["is_public"] is True
    resp = await client.post(f"/playlist/{p['id']}/share", headers=h, data={"csrf_token": t})
    assert resp.status == 200 and "/s/" in await resp.text()
    resp = await client.post("/library/playlists", headers=h, allow_redirects=False,
                             data={"csrf_token": t, "name": unique("Form")})
    assert resp.status == 302 and resp.headers["Location"].startswith("/playlist/")
    resp = await client.post(f"/playlist/{p['id']}/delete", headers=h, allow_redirects=False,
                             data={"csrf_token": t})
    assert resp.status == 302 and resp.headers["Location"] == "/library"
    assert (await client.get(f"/api/playlist/{p['id']}", headers=member.headers)).status == 404


async def test_shared_page_exposes_nothing_else(client, admin, audio_dir):
    member = await register(client, display_name="Ada Owner")
    (a,) = await songs(client, admin, audio_dir, 1)
    other = await create(client, member, name=unique("OtherList"), is_public=True)
    p = await create(client, member, name=unique("Shared"))
    await client.post(f"/api/playlist/{p['id']}/songs", headers=member.headers, json={"song_ids": [a]})
    link = await (await client.post(f"/api/playlist/{p['id']}/share", headers=member.headers)).json()
    resp = await client.get(link["url"])
    text = await resp.text()
    assert resp.status == 200 and p["name"] in text and "Log in to listen" in text
    assert other["name"] not in text and member.username not in text and "/api/stream" not in text
    assert resp.headers["X-Robots-Tag"] == "noindex"
    assert (await client.get("/s/" + "x" * 43)).status == 404
    # a new link replaces the old one
    newer = await (await client.post(f"/api/playlist/{p['id']}/share", headers=member.headers)).json()
    assert (await client.get(link["url"])).status == 404
    assert (await client.get(newer["url"])).status == 200


async def test_user_profile_shows_public_playlists_and_counts(client, member):
    pub = await create(client, member, name=unique("Public"), is_public=True)
    priv = await create(client, member, name=unique("Private"))
    fan = await register(client)
    await client.put(f"/api/library/playlists/{pub['id']}", headers=fan.headers)
    text = await (await client.get(f"/user/{member.username}", headers=cookie(fan))).text()
    assert pub["name"] in text and priv["name"] not in text
    assert "<strong>1</strong> public playlist" in text and "<strong>1</strong> follower" in text


async def test_save_album_and_follow_artist_from_their_pages(client, admin, audio_dir):
    """The album page's Save and the artist page's Follow work as plain forms."""
    import re

    from conftest import make_audio, unique

    path = make_audio(audio_dir, "mp3", seconds=1.0, title=unique("Saveable "), artist=unique("Followed "),
                      album=unique("Saved Album "))
    import io

    import aiohttp

    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(path.read_bytes()), filename=path.name)
    song = await (await client.post("/api/song", data=form, headers=admin.headers)).json()
    login = await client.post("/api/auth/login", json={"username": admin.username, "password": admin.password})
    client.session.cookie_jar.update_cookies({"sonora_access": (await login.json())["access_token"]})
    page = await (await client.get(f"/album/{song['album_id']}")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert (await client.post(f"/album/{song['album_id']}/save", data={}, allow_redirects=False)).status == 403
    resp = await client.post(f"/album/{song['album_id']}/save", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status in (302, 303)
    assert ">Saved<" in await (await client.get(f"/album/{song['album_id']}")).text()
    resp = await client.post(f"/artist/{song['artist_id']}/follow", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status in (302, 303)
    assert ">Following<" in await (await client.get(f"/artist/{song['artist_id']}")).text()
    contains = await client.get(f"/api/library/albums/contains?ids={song['album_id']}", headers=admin.headers)
    assert await contains.json() == [True]
    contains = await client.get(f"/api/library/artists/contains?ids={song['artist_id']}", headers=admin.headers)
    assert await contains.json() == [True]
    # Again: undone.
    await client.post(f"/album/{song['album_id']}/save", data={"csrf_token": token}, allow_redirects=False)
    contains = await client.get(f"/api/library/albums/contains?ids={song['album_id']}", headers=admin.headers)
    assert await contains.json() == [False]
