"""A private playlist is found only by its owner and its collaborators, through every search
endpoint and whatever the query; injection attempts are inert."""

from __future__ import annotations

import pytest
from conftest import register, unique
from support import eventually
from test_search_api import found, get, post, sadmin, sclient  # noqa: F401 - fixtures

INJECTIONS = ['" OR is_public = true OR "', "' OR 1=1 --", "*", "owner_id = 1", "is_public:true",
              "\\\" OR 1", "%", "_", "a) OR (b", "NOT private", "\x00", "%27%20OR%20%271%27%3D%271",
              "<script>alert(1)</script>", "a" * 1500]


async def test_private_playlist_only_for_owner_and_collaborators(sclient):  # noqa: F811
    owner, collab, stranger = [await register(sclient) for _ in range(3)]
    word = unique("Velvetine")
    private = await post(sclient, owner, "/api/playlist", {"name": f"{word} Secret", "is_public": False})
    public = await post(sclient, owner, "/api/playlist", {"name": f"{word} Open", "is_public": True})
    await post(sclient, owner, f"/api/playlist/{private['id']}/collaborators", {"username": collab.username})

    async def indexed() -> bool:
        return len(await found(sclient, collab, "playlists", word)) == 2
    await eventually(indexed, timeout=5)

    for who, expected in ((owner, {private["id"], public["id"]}), (collab, {private["id"], public["id"]}),
                          (stranger, {public["id"]})):
        typed = await get(sclient, who, "/api/search/playlists", q=word)
        assert {p["id"] for p in typed["items"]} == expected and typed["total"] == len(expected)
        combined = await get(sclient, who, "/api/search", q=word)
        assert {p["id"] for p in combined["playlists"]["items"]} == expected
        top = combined["top_result"]
        assert top is None or top["type"] != "playlist" or top["item"]["id"] in expected
        suggested = (await get(sclient, who, "/api/search/suggest", q=f"{word} secret"))["suggestions"]
        assert {s["id"] for s in suggested if s["type"] == "playlist"} <= expected
        if who is not stranger:
            assert private["id"] in {s["id"] for s in suggested if s["type"] == "playlist"}
        page = await sclient.get("/search", params={"q": word}, headers=who.headers)
        assert (f"{word} Secret" in await page.text()) == (private["id"] in expected)

    # Whatever the query or filters, the stranger never sees it.
    for q in [*INJECTIONS, "secret", word.lower(), f"{word} secret", word[:4]]:
        for path in ("/api/search", "/api/search/playlists", "/api/search/suggest"):
            resp = await sclient.get(path, params={"q": q, "genre": q}, headers=stranger.headers)
            assert resp.status in (200, 400, 422), (path, q, resp.status)
            assert f"{word} Secret" not in await resp.text()

    # Made public, everyone finds it; private again, the stranger no longer does.
    resp = await sclient.put(f"/api/playlist/{private['id']}", json={"is_public": True}, headers=owner.headers)
    assert resp.status == 200

    async def now_public() -> bool:
        return len(await found(sclient, stranger, "playlists", word)) == 2
    await eventually(now_public, timeout=5)
    await sclient.put(f"/api/playlist/{private['id']}", json={"is_public": False}, headers=owner.headers)

    async def private_again() -> bool:
        return len(await found(sclient, stranger, "playlists", word)) == 1
    await eventually(private_again, timeout=5)


@pytest.mark.parametrize("q", INJECTIONS)
async def test_injection_in_q_and_filters_is_inert(sclient, q):  # noqa: F811
    who = await register(sclient)
    for path in ("/api/search", "/api/search/songs", "/api/search/albums", "/api/search/suggest"):
        resp = await sclient.get(path, params={"q": q, "genre": q, "year": q[:4]}, headers=who.headers)
        assert resp.status in (200, 400, 422), (path, resp.status)
        assert (await resp.json()) is not None
