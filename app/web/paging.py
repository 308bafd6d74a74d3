"""The admin list pages' paging: the search text and page offset from the query, and the pager
(page n of m, previous and next links that keep the search)."""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from app.web.params import paging

PER_PAGE = 20


def list_search(request: web.Request) -> tuple[str, int]:
    """The list pages' search text and page offset (unknown parameters are ignored)."""
    q = request.query.get("q", "").strip()[:100]
    _, offset = paging(request)
    return q, offset - offset % PER_PAGE


def pager(request: web.Request, name: str, q: str, total: int, offset: int) -> dict[str, Any]:
    page, pages = offset // PER_PAGE + 1, max(1, math.ceil(total / PER_PAGE))
    base = request.app.router[name].url_for()

    def page_url(n: int) -> str:
        query = {"q": q} if q else {}
        return str(base.with_query({**query, "page": str(n)} if n > 1 else query))

    return {"page": page, "pages": pages, "total": total,
            "prev_url": page_url(page - 1) if page > 1 else None,
            "next_url": page_url(page + 1) if page < pages else None}
