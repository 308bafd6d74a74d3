"""The shape the admin lists share: a searchable, paged list whose rows link to edit and delete
pages, and a delete that asks first and goes back to the same search and page (`back`).

The handlers in app/web/pages/admin/ check admin rights and load what they show; these functions
do the rest, so every list, confirmation and delete behaves the same."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from app.errors import Conflict, NotFound
from app.services.catalog import Cursor
from app.services.types import Listing
from app.web.paging import PER_PAGE, list_pager, list_search
from app.web.render import back_to_list, redirect_flash, render

# One page of a list: (rows, total) for the search text, a limit and an offset.
Fetch = Callable[[str, int, int], Awaitable[tuple[list[Any], int]]]


async def list_page(request: web.Request, name: str, template: str, key: str, fetch: Fetch,
                    **extra: Any) -> web.Response:
    """The list on route `name`: the search and page from the query, the page's rows under `key`,
    its pager, and `back` (this very page) for the rows' forms and links."""
    q, offset = list_search(request)
    rows, total = await fetch(q, PER_PAGE, offset)
    return await render(request, template, {
        key: rows, "q": q, "pager": list_pager(request, name, q, total, offset),
        "back": request.path_qs, **extra,
    })


# One page of a catalogue list: the Listing for the search text, a limit, an offset and a cursor.
FetchListing = Callable[[str, int, int, Cursor], Awaitable[Listing[Any]]]


async def keyset_list_page(request: web.Request, name: str, template: str, key: str,
                           fetch: FetchListing, **extra: Any) -> web.Response:
    """Like `list_page`, for the catalogue's lists of a million rows: the Next and Previous
    links carry the keyset cursor of the page's last or first row (`after`, `before`), so
    walking the list costs what its first page does; a page asked by number alone (the last
    one, say) is read from the nearer end of the list."""
    q, offset = list_search(request)
    cursor = Cursor(request.query.get("after") or None, request.query.get("before") or None)
    page = await fetch(q, PER_PAGE, offset, cursor)
    pager = list_pager(request, name, q, page["total"], offset)
    base = request.app.router[name].url_for()
    number = offset // PER_PAGE + 1
    if pager["next_url"] and page["next"]:
        pager["next_url"] = str(base.with_query(
            {**({"q": q} if q else {}), "page": str(number + 1), "after": page["next"]}))
    if pager["prev_url"] and page["prev"] and number > 2:
        pager["prev_url"] = str(base.with_query(
            {**({"q": q} if q else {}), "page": str(number - 1), "before": page["prev"]}))
    return await render(request, template, {
        key: page["items"], "q": q, "pager": pager, "back": request.path_qs, **extra,
    })


async def confirm_delete(request: web.Request, kind: str, item: Mapping[str, Any], list_name: str,
                         **extra: Any) -> web.Response:
    """The page asking to delete `item` (`admin/<kind>_delete.html`, the item under `kind`); its
    Cancel link and its form go back to the list `list_name`, search and page kept."""
    return await render(request, f"admin/{kind}_delete.html", {
        kind: item, "back": back_to_list(request, request.query.get("back"), list_name), **extra,
    })


async def delete_and_return(request: web.Request, list_name: str, kind: str,
                            delete: Callable[[], Awaitable[str]]) -> web.Response:
    """The confirmation form's post: `delete` loads the item, deletes it and says what went; back to
    the list with that, or with why not (the item was already gone, or something still needs it)."""
    form = await request.post()
    back = back_to_list(request, form.get("back"), list_name)
    try:
        done = await delete()
    except NotFound:
        return redirect_flash(request, back, f"That {kind} no longer exists.", "error")
    except Conflict as exc:
        return redirect_flash(request, back, f"Not deleted: {exc.message}.", "error")
    return redirect_flash(request, back, done)
