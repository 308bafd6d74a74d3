"""Listening pages: `/history` (the listener's plays, grouped by day, and a stats tab with charts)
and clearing the history. Also the plays-per-day chart geometry the admin dashboard shares.

Charts are inline SVG whose bar sizes are computed here and written as SVG presentation
attributes: the CSP forbids inline styles, and no third-party chart code is shipped."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from app.services.listening import PERIODS, ListeningService
from app.web import keys
from app.web.pages.listener import link, redirect_flash, render
from app.web.params import int_param, require_user

routes = web.RouteTableDef()

HISTORY_PAGE = 20
CHART_DAYS = 30
TOP_LIMIT = 10
DEFAULT_PERIOD = "week"  # the month is already in the panels above
PERIOD_LABELS = {"day": "Today", "week": "This week", "month": "This month", "year": "This year",
                 "all": "All time"}
assert set(PERIOD_LABELS) == set(PERIODS)

# Chart geometry, in SVG user units (the SVG scales to its box through its viewBox).
SLOT, BAR_W, PLOT_H, TOP_PAD, AXIS_H, GUTTER = 20, 14, 120, 14, 22, 26


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def chart_start(days: int = CHART_DAYS) -> dt.datetime:
    """Midnight (UTC, naive like the stored timestamps) of the first of the last `days` days."""
    first = _today() - dt.timedelta(days=days - 1)
    return dt.datetime(first.year, first.month, first.day)


def _day_label(day: dt.date) -> str:
    return f"{day:%b} {day.day}"


def _plays(n: int) -> str:
    return f"{n} play{'' if n == 1 else 's'}"


def plays_chart(per_day: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Bars for `[{day, plays}]` (oldest first): positions, tooltips, axis ticks and a summary."""
    counts = [int(d["plays"]) for d in per_day]
    peak = max(counts, default=0)
    scale = _nice(peak)
    today = _today()
    bars: list[dict[str, Any]] = []
    for i, d in enumerate(per_day):
        day = dt.date.fromisoformat(str(d["day"]))
        plays = int(d["plays"])
        height = round(PLOT_H * plays / scale, 2) if plays else 0
        x = i * SLOT + (SLOT - BAR_W) / 2
        bars.append({
            "day": day.isoformat(), "label": _day_label(day), "plays": plays,
            "x": x, "y": round(TOP_PAD + PLOT_H - height, 2), "width": BAR_W, "height": height,
            "slot_x": i * SLOT, "center": i * SLOT + SLOT / 2,
            "today": day == today,
            "title": f"{'Today' if day == today else _day_label(day)}: {_plays(plays)}",
            # Every seventh day from the end carries a label, so today always has one.
            "tick": (len(per_day) - 1 - i) % 7 == 0,
        })
    total = sum(counts)
    best = max(bars, key=lambda b: b["plays"], default=None)
    summary = f"{_plays(total)} in the last {len(bars)} days"
    if best and best["plays"]:
        summary += f"; the busiest day was {best['label']} with {_plays(best['plays'])}"
    return {
        "bars": bars, "slot": SLOT, "total": total, "peak": peak, "scale": scale, "summary": summary,
        # The scale's labels sit in a gutter right of the bars, never over one.
        "plot_width": len(bars) * SLOT, "width": len(bars) * SLOT + GUTTER,
        "height": TOP_PAD + PLOT_H + AXIS_H,
        "top": TOP_PAD, "base": TOP_PAD + PLOT_H, "mid": TOP_PAD + PLOT_H / 2,
        "mid_value": scale // 2 if scale % 2 == 0 else None,
        "today_plays": bars[-1]["plays"] if bars and bars[-1]["today"] else 0,
    }


def _nice(peak: int) -> int:
    """A round top for the scale, the smallest of 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60,
    80, 100, 120… that is at least `peak` (at least 4: a quiet month does not draw one play as a
    full-height bar)."""
    magnitude = 1
    while True:
        for step in (4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80):
            if step * magnitude >= peak:
                return step * magnitude
        magnitude *= 10


async def all_plays_chart(listening: ListeningService) -> dict[str, Any]:
    """Everyone's plays per day over the last 30 days (the admin dashboard)."""
    return plays_chart(await listening.per_day(None, chart_start()))


def _day_heading(day: dt.date, today: dt.date) -> str:
    if day == today:
        return "Today"
    if day == today - dt.timedelta(days=1):
        return "Yesterday"
    if day.year == today.year:
        return f"{day:%A}, {day:%B} {day.day}"
    return f"{day:%A}, {day:%B} {day.day}, {day.year}"


def group_by_day(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
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
    page = int_param(request.query.get("page"), "page", 1, 1, 100_000)
    offset = (page - 1) * HISTORY_PAGE
    items, total = await request.app[keys.LISTENING].history(user_id, HISTORY_PAGE, offset)
    pages = max(1, math.ceil(total / HISTORY_PAGE))

    def page_url(n: int) -> str:
        return _tab_url(request, page=str(n)) if n > 1 else _tab_url(request)

    return {
        "groups": group_by_day(items), "total": total, "offset": offset,
        "pager": {"page": page, "pages": pages, "total": total,
                  "prev_url": page_url(page - 1) if page > 1 else None,
                  "next_url": page_url(page + 1) if page < pages else None},
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
    return redirect_flash(request, link(request, "history_page", "/history"),
                          "Your listening history has been cleared.")
