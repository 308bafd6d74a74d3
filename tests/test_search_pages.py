"""/search renders results on the server (works without JavaScript); the header box is on every
page; the admin dashboard's "Rebuild search index" button rebuilds in the background."""

from __future__ import annotations

from conftest import register, unique
from support import eventually
from test_search_api import found, post, sadmin, sclient  # noqa: F401 - fixtures

from app.web import keys


async def test_search_page_without_session_redirects(sclient):  # noqa: F811
    resp = await sclient.get("/search", params={"q": "x"}, allow_redirects=False)
    assert resp.status in (302, 303) and "/login" in resp.headers["Location"]


async def test_search_page_renders_grouped_results_and_escapes(sclient, sadmin):  # noqa: F811
    word = unique("Lumenx")
    await post(sclient, sadmin, "/api/artist", {"name": f"{word} <b>Band</b>"})

    async def indexed() -> bool:
        return bool(await found(sclient, sadmin, "artists", word))
    await eventually(indexed, timeout=5)
    resp = await sclient.get("/search", params={"q": word.lower()}, headers=sadmin.headers)
    html = await resp.text()
    assert resp.status == 200
    assert "Top result" in html and "Artists" in html
    assert f"{word} &lt;b&gt;Band&lt;/b&gt;" in html and "<b>Band</b>" not in html
    assert 'role="combobox"' in html and 'role="listbox"' in html and "js/search.js" in html
    empty = await (await sclient.get("/search", headers=sadmin.headers)).text()
    assert "Find your music" in empty
    none = await (await sclient.get("/search", params={"q": "zzqqxxv"}, headers=sadmin.headers)).text()
    assert "No results" in none


async def test_header_search_box_on_every_page(sclient, sadmin):  # noqa: F811
    html = await (await sclient.get("/", headers=sadmin.headers)).text()
    assert 'id="top-search"' in html and "js/search.js" in html


async def test_admin_rebuild_button(sclient, sadmin):  # noqa: F811
    dashboard = await (await sclient.get("/admin", headers=sadmin.headers)).text()
    assert "Rebuild search index" in dashboard
    member = await register(sclient)
    assert (await sclient.post("/admin/search/reindex", headers=member.headers,
                               allow_redirects=False)).status in (302, 403)
    resp = await sclient.post("/admin/search/reindex", headers=sadmin.headers, allow_redirects=False)
    assert resp.status == 302
    task = sclient.app[keys.REINDEX_TASK]["task"]
    await task
    assert task.exception() is None
