"""SPEC 12: a private playlist, once opened by its owner, is never served to anyone else."""

from __future__ import annotations

from conftest import make_admin, register, unique
from test_auth import claims_of, cookie
from test_playlists import create, dense, songs

from app.web import keys
from app.web.session import csrf_for


async def test_private_playlist_never_leaks(client, member, admin, audio_dir):
    (a,) = await songs(client, admin, audio_dir, 1)
    name = unique("Secret")
    p = await create(client, member, name=name, description="hidden")
    url = f"/api/playlist/{p['id']}"
    await client.post(url + "/songs", headers=member.headers, json={"song_ids": [a]})
    # the owner opens it, through the API and the page (the original cached it for everyone)
    assert (await client.get(url, headers=member.headers)).status == 200
    assert (await client.get(f"/playlist/{p['id']}", headers=cookie(member))).status == 200
    stranger = await register(client)
    resp = await client.get(url, headers=stranger.headers)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    assert (await client.get(url + "/collaborators", headers=stranger.headers)).status == 404
    page = await client.get(f"/playlist/{p['id']}", headers=cookie(stranger))
    assert page.status == 404 and name not in await page.text()
    for path in ("/api/playlist/public?limit=100", f"/api/playlist/public?q={name}", "/api/playlist",
                 "/api/library/playlists"):
        assert name not in await (await client.get(path, headers=stranger.headers)).text(), path
    for path in (f"/user/{member.username}", "/playlists", f"/playlists?q={name}", "/library"):
        resp = await client.get(path, headers=cookie(stranger))
        text = await resp.text()
        assert resp.status == 200 and f"/playlist/{p['id']}" not in text, path
        if "q=" not in path:  # a search page echoes its query
            assert name not in text, path
    assert (await client.put(f"/api/library/playlists/{p['id']}", headers=stranger.headers)).status == 404
    # anonymous
    assert (await client.get(url)).status == 401
    resp = await client.get(f"/playlist/{p['id']}", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/login")
    # a stranger changes nothing
    for method, path, body in (("PUT", url, {"name": "Pwned", "is_public": True}), ("DELETE", url, None),
                               ("POST", url + "/songs", {"song_ids": [a]}),
                               ("DELETE", url + "/songs", {"positions": [0]}),
                               ("PUT", url + "/songs/order", {"range_start": 0, "insert_before": 1}),
                               ("POST", url + "/share", None), ("DELETE", url + "/share", None),
                               ("POST", url + "/collaborators", {"username": stranger.username})):
        resp = await client.request(method, path, json=body, headers=stranger.headers)
        assert resp.status in (403, 404), (method, path)
    got = await (await client.get(url, headers=member.headers)).json()
    assert got["name"] == name and got["is_public"] is False and got["song_count"] == 1
    assert await dense(client, p["id"]) == [a]


async def test_public_playlist_is_read_only_for_others(client, member, audio_dir, admin):
    (a,) = await songs(client, admin, audio_dir, 1)
    p = await create(client, member, is_public=True)
    url = f"/api/playlist/{p['id']}"
    other = await register(client)
    assert (await client.get(url, headers=other.headers)).status == 200
    assert (await client.put(url, headers=other.headers, json={"name": "x"})).status == 403
    assert (await client.delete(url, headers=other.headers)).status == 403
    assert (await client.post(url + "/songs", headers=other.headers, json={"song_ids": [a]})).status == 403
    assert (await client.put(url + "/songs/order", headers=other.headers,
                             json={"range_start": 0, "insert_before": 0})).status == 403
    assert (await client.get(url, headers=member.headers)).status == 200


async def test_cookie_writes_need_csrf(client, member):
    p = await create(client, member)
    url = f"/api/playlist/{p['id']}"
    resp = await client.put(url, headers=cookie(member), json={"name": "Forged"})
    assert resp.status == 403
    resp = await client.post("/api/playlist", headers=cookie(member), json={"name": "Forged"})
    assert resp.status == 403
    resp = await client.put(f"/api/library/playlists/{p['id']}", headers=cookie(member))
    assert resp.status == 403
    token = csrf_for(client.app[keys.AUTH].signer, claims_of(member.access)["sid"])
    resp = await client.put(url, headers={**cookie(member), "X-CSRF-Token": token}, json={"name": "Mine"})
    assert resp.status == 200 and (await resp.json())["name"] == "Mine"


async def test_admin_moderation_is_audited(client, member):
    admin = await make_admin(client, await register(client))
    p = await create(client, member, name=unique("Bad"))
    page = await client.get(f"/admin/playlists?q={p['name']}", headers=cookie(admin))
    assert page.status == 200 and p["name"] in await page.text()
    assert (await client.get("/admin/playlists", headers=cookie(member))).status == 403
    token = csrf_for(client.app[keys.AUTH].signer, claims_of(admin.access)["sid"])
    resp = await client.post(f"/admin/playlists/{p['id']}/delete", headers=cookie(admin),
                             data={"csrf_token": token, "back": "/admin/playlists"}, allow_redirects=False)
    assert resp.status == 302
    assert (await client.get(f"/api/playlist/{p['id']}", headers=member.headers)).status == 404
    rows = await client.app[keys.DB].fetchall(
        "SELECT type FROM outbox WHERE payload LIKE %s ORDER BY id", (f'%"target_id":{p["id"]},%',))
    assert "admin.playlist.deleted" in [r["type"] for r in rows]
