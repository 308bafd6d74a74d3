"""Listening pages: `/history` (the listener's plays, grouped by day, and a stats tab with charts)
and clearing the history. The charts' geometry is in app/web/charts.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from app.services.listening import PERIODS
from app.web import keys
from app.web.charts import CHART_DAYS, plays_chart
from app.web.charts import today as _today
from app.web.paging import page_number, pager
from app.web.params import require_user
from app.web.render import link, redirect_flash, render

routes = web.RouteTableDef()

HISTORY_PAGE = 20
TOP_LIMIT = 10
DEFAULT_PERIOD = "week"  # the month is already in the panels above
PERIOD_LABELS = {"day": "Today", "week": "This week", "month": "This month", "year": "This year",
                 "all": "All time"}
assert set(PERIOD_LABELS) == set(PERIODS)

def _day_heading(day: dt.date, today: dt.date) -> str:
    if day == today:
        return "Today"
    if day == today - dt.timedelta(days=1):
        return "Yesterday"
    if day.year == today.year:
        return f"{day:%A}, {day:%B} {day.day}"
    return f"{day:%A}, {day:%B} {day.day}, {day.year}"


def group_by_day(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """History entries (newest first) in day groups with a heading and each play's time."""
    today = _today()
    groups: list[dict[str, Any]] = []
    for item in items:
        at = dt.datetime.fromisoformat(item["played_at"])
        entry = {**item, "time": f"{at:%H:%M}", "datetime": item["played_at"]}
        if not groups or groups[-1]["date"] != at.date():
            groups.append({"date": at.date(), "heading": _day_heading(at.date(), today),
                           "iso": at.date().isoformat(), "entries": []})
        groups[-1]["entries"].append(entry)
    return groups


def _tab_url(request: web.Request, **query: str) -> str:
    return str(request.app.router["history_page"].url_for().with_query(query or None))


async def _history_tab(request: web.Request, user_id: int) -> dict[str, Any]:
    page = page_number(request)
    offset = (page - 1) * HISTORY_PAGE
    items, total = await request.app[keys.LISTENING].history(user_id, HISTORY_PAGE, offset)
    return {
        "groups": group_by_day(items), "total": total, "offset": offset,
        "pager": pager(request, "history_page", total, page, HISTORY_PAGE),
    }


async def _stats_tab(request: web.Request, user_id: int) -> dict[str, Any]:
    listening = request.app[keys.LISTENING]
    # Pages are forgiving: an unknown period falls back to the default rather than an error page.
    period = request.query.get("period", DEFAULT_PERIOD)
    if period not in PERIODS:
        period = DEFAULT_PERIOD
    stats = await listening.stats(user_id)
    top = await listening.top_songs(user_id, period, TOP_LIMIT)
    return {
        "stats": stats,
        "hours": f"{stats['listened_ms'] / 3_600_000:.1f}",
        "chart": plays_chart(stats["per_day"][-CHART_DAYS:]),
        "period": period, "period_label": PERIOD_LABELS[period], "top": top,
        "periods": [{"key": k, "label": v, "url": _tab_url(request, tab="stats", period=k),
                     "active": k == period} for k, v in PERIOD_LABELS.items()],
    }


@routes.get("/history", name="history_page")
async def history_page(request: web.Request) -> web.Response:
    principal = require_user(request)
    tab = "stats" if request.query.get("tab") == "stats" else "history"
    context: dict[str, Any] = {
        "tab": tab,
        "history_url": _tab_url(request), "stats_url": _tab_url(request, tab="stats"),
    }
    if tab == "stats":
        context.update(await _stats_tab(request, principal.user_id))
    else:
        context.update(await _history_tab(request, principal.user_id))
    return await render(request, "history.html", context)


@routes.post("/history/clear", name="history_clear")
async def history_clear(request: web.Request) -> web.Response:
    principal = require_user(request)  # the CSRF token was checked by the auth middleware
    await request.app[keys.LISTENING].clear(principal.user_id)
    return redirect_flash(request, link(request, "history_page"),
                          "Your listening history has been cleared.")
