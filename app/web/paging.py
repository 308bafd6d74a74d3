"""Paging for pages: the page number (listener pages) or the search text and page offset (admin
lists) from the query, and the one pager every paged page renders with `_pagination.html` (page n
of m, previous and next links that keep the page's other parameters)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from app.web.params import int_param, paging

PER_PAGE = 20  # an admin list's page


def page_number(request: web.Request) -> int:
    """The 1-based `page` of a listener page (a bad one is a 400)."""
    return int_param(request.query.get("page"), "page", 1, 1, 100_000)


def list_search(request: web.Request) -> tuple[str, int]:
    """The list pages' search text and page offset (unknown parameters are ignored)."""
    q = request.query.get("q", "").strip()[:100]
    _, offset = paging(request)
    return q, offset - offset % PER_PAGE


def pager(request: web.Request, name: str, total: int, page: int, per: int = PER_PAGE,
          keep: Mapping[str, str] | None = None, **parts: str) -> dict[str, Any]:
    """Page `page` of `total` items, `per` a page, on the named route (`parts` fill its path):
    the links keep the query `keep` and leave `page` out for the first page."""
    pages = max(1, math.ceil(total / per))
    base = request.app.router[name].url_for(**parts)

    def page_url(n: int) -> str:
        query = dict(keep or {})
        if n > 1:
            query["page"] = str(n)
        return str(base.with_query(query))

    return {"page": page, "pages": pages, "total": total,
            "prev_url": page_url(page - 1) if page > 1 else None,
            "next_url": page_url(page + 1) if page < pages else None}


def list_pager(request: web.Request, name: str, q: str, total: int, offset: int) -> dict[str, Any]:
    """An admin list's pager: its page from the offset, the search kept."""
    return pager(request, name, total, offset // PER_PAGE + 1, keep={"q": q} if q else None)
