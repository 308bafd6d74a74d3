"""/admin/audit: who did what, when — every admin action, written by the `audit` consumer."""

from __future__ import annotations

from aiohttp import web
from yarl import URL

from app.services.audit import AuditService
from app.web import keys
from app.web.pages.admin.console import PER_PAGE, _pager, _search
from app.web.pages.listener import render
from app.web.params import require_admin

routes = web.RouteTableDef()
KINDS = {"user.": "Users", "song.": "Songs", "album.": "Albums", "artist.": "Artists",
         "playlist.": "Playlists", "catalog.": "Imports"}


@routes.get("/admin/audit", name="admin_audit")
async def audit(request: web.Request) -> web.Response:
    require_admin(request)
    _, offset = _search(request)
    kind = request.query.get("kind", "")
    prefix = kind if kind in KINDS else None
    entries, total = await AuditService(request.app[keys.DB]).list(PER_PAGE, offset, prefix)
    pager = _pager(request, "admin_audit", "", total, offset)
    if prefix:
        for name in ("prev_url", "next_url"):
            if pager[name]:
                pager[name] = str(URL(pager[name]).update_query(kind=prefix))
    return await render(request, "admin/audit.html", {
        "entries": entries, "pager": pager, "kind": prefix or "", "kinds": KINDS,
    })
