"""/admin/audit: who did what, when — every admin action, written by the `audit` consumer."""

from __future__ import annotations

from aiohttp import web
from yarl import URL

from app.web import keys
from app.web.paging import PER_PAGE, list_pager, list_search
from app.web.params import require_admin
from app.web.render import render

routes = web.RouteTableDef()
KINDS = {"user.": "Users", "song.": "Songs", "album.": "Albums", "artist.": "Artists",
         "playlist.": "Playlists", "catalog.": "Imports"}


@routes.get("/admin/audit", name="admin_audit")
async def audit(request: web.Request) -> web.Response:
    require_admin(request)
    _, offset = list_search(request)
    kind = request.query.get("kind", "")
    prefix = kind if kind in KINDS else None
    entries, total = await request.app[keys.AUDIT].list(PER_PAGE, offset, prefix)
    page_links = list_pager(request, "admin_audit", "", total, offset)
    # The kind rides after the page (`?page=2&kind=user.`), as the links have always been.
    if prefix:
        for name in ("prev_url", "next_url"):
            if page_links[name]:
                page_links[name] = str(URL(page_links[name]).update_query(kind=prefix))
    return await render(request, "admin/audit.html", {
        "entries": entries, "pager": page_links, "kind": prefix or "", "kinds": KINDS,
    })
