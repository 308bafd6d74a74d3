"""Plays-per-day charts, for a listener's stats tab and the admin dashboard.

Charts are inline SVG whose bar sizes are computed here and written as SVG presentation
attributes: the CSP forbids inline styles, and no third-party chart code is shipped."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from app.services.listening import ListeningService
from app.services.types import DayPlays

CHART_DAYS = 30

# Chart geometry, in SVG user units (the SVG scales to its box through its viewBox).
SLOT, BAR_W, PLOT_H, TOP_PAD, AXIS_H, GUTTER = 20, 14, 120, 14, 22, 26


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def chart_start(days: int = CHART_DAYS) -> dt.datetime:
    """Midnight (UTC, naive like the stored timestamps) of the first of the last `days` days."""
    first = today() - dt.timedelta(days=days - 1)
    return dt.datetime(first.year, first.month, first.day)


def _day_label(day: dt.date) -> str:
    return f"{day:%b} {day.day}"


def _plays(n: int) -> str:
    return f"{n} play{'' if n == 1 else 's'}"


def plays_chart(per_day: Sequence[DayPlays]) -> dict[str, Any]:
    """Bars for `[{day, plays}]` (oldest first): positions, tooltips, axis ticks and a summary."""
    counts = [int(d["plays"]) for d in per_day]
    peak = max(counts, default=0)
    scale = _nice(peak)
    this_day = today()
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
            "today": day == this_day,
            "title": f"{'Today' if day == this_day else _day_label(day)}: {_plays(plays)}",
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
