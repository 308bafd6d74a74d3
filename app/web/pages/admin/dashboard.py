"""/admin: the dashboard (accounts, catalogue, everyone's plays, the consumers' health) and the
search index rebuild."""

from __future__ import annotations

from aiohttp import web

from app.services.indexer import start_reindex
from app.services.users import UserService
from app.web import keys
from app.web.charts import all_plays_chart
from app.web.params import require_admin
from app.web.render import (
    link,
    redirect_flash,
    render,
)

routes = web.RouteTableDef()
SCAN_PAGE = 100


async def _user_counts(users: UserService) -> dict[str, int]:
    """Totals for the dashboard, read through the service's public listing."""
    total = await users.count()
    admins = disabled = 0
    offset = 0
    while offset < total:
        rows, total = await users.list("", SCAN_PAGE, offset)
        if not rows:
            break
        admins += sum(1 for r in rows if r["role"] == "admin")
        disabled += sum(1 for r in rows if r["disabled"])
        offset += len(rows)
    return {"total": total, "admins": admins, "disabled": disabled}


@routes.get("/admin", name="admin_dashboard")
async def dashboard(request: web.Request) -> web.Response:
    require_admin(request)
    counts = await _user_counts(request.app[keys.USERS])
    catalog = await request.app[keys.CATALOG].counts()
    plays = await all_plays_chart(request.app[keys.LISTENING])
    task = request.app[keys.REINDEX_TASK].get("task")
    return await render(request, "admin/dashboard.html",
                        {"counts": counts, "catalog": catalog, "plays_chart": plays,
                         "reindex_running": task is not None and not task.done(),
                         "consumers": await request.app[keys.BACKBONE].liveness()})


@routes.post("/admin/search/reindex", name="admin_reindex")
async def reindex(request: web.Request) -> web.Response:
    """Rebuild the search index in the background (fresh index, then an atomic swap)."""
    require_admin(request)
    started = start_reindex(request.app[keys.DB], request.app[keys.SEARCH_BACKEND],
                            request.app[keys.REINDEX_TASK])
    message = ("Rebuilding the search index; searches keep working meanwhile." if started
               else "A rebuild of the search index is already running.")
    return redirect_flash(request, link(request, "admin_dashboard"), message,
                          "success" if started else "info")
