"""Steps the API's handlers share (route modules share code here, never with each other): a page of
a list, an admin's create, change or delete of a catalogue entry, and an uploaded picture."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from app.services.catalog import Actor, Cursor
from app.services.types import Listing
from app.web import keys
from app.web.params import admin_actor, json_body, page_json, paging, path_id
from app.web.uploads import read_image

T = TypeVar("T")
Body = dict[str, Any]


async def paged(request: web.Request,
                load: Callable[[int, int], Awaitable[tuple[list[T], int]]]) -> web.Response:
    """`load(limit, offset)` for the request's paging, answered as `{items, total, limit, offset}`.
    The paging is read first, so its errors come before those of parameters `load` reads."""
    limit, offset = paging(request)
    items, total = await load(limit, offset)
    return web.json_response(page_json(items, total, limit, offset))


# Keyset paging beside `offset` (catalogue lists): documented once, on each list route.
CURSOR_PARAMS = [
    {"name": "after", "in": "query", "schema": {"type": "string"},
     "description": "The `next` cursor of a previous answer: the page after it (then `offset`"
                    " is ignored). Cursors work with the sorts by newest, title, popular and"
                    " name; deep pages by cursor cost what the first one does."},
    {"name": "before", "in": "query", "schema": {"type": "string"},
     "description": "The `prev` cursor of a previous answer: the page before it."},
]
LIST_NOTE = (" The answer is `{items, total, limit, offset, total_is_estimate, next, prev}`:"
             " `total` is exact unless `total_is_estimate` is true (a text search matching more"
             " songs than it takes from the search index, or scanning the titles while the index"
             " is down, or a combination of filters matching more than 10,000 rows);"
             " `next`/`prev` are cursors for `after`/`before`, null when there is no such page.")


async def listed(request: web.Request,
                 load: Callable[[int, int, Cursor], Awaitable[Listing[T]]]) -> web.Response:
    """`load(limit, offset, cursor)` for the request's paging and keyset cursor, answered as
    `{items, total, limit, offset, total_is_estimate, next, prev}`."""
    limit, offset = paging(request)
    cursor = Cursor(request.query.get("after") or None, request.query.get("before") or None)
    page = await load(limit, offset, cursor)
    return web.json_response({**page_json(page["items"], page["total"], limit, offset),
                              "total_is_estimate": page["total_is_estimate"],
                              "next": page["next"], "prev": page["prev"]})


async def admin_create(request: web.Request, create: Callable[[Body, Actor], Awaitable[object]]
                       ) -> web.Response:
    """An admin creates an entry from the JSON body: 201 with it."""
    who = admin_actor(request)
    return web.json_response(await create(await json_body(request), who), status=201)


async def admin_change(request: web.Request,
                       change: Callable[[int, Body, Actor], Awaitable[object]]) -> web.Response:
    """An admin changes the entry of the path's id with the JSON body: the entry as it is now."""
    who = admin_actor(request)
    return web.json_response(await change(path_id(request), await json_body(request), who))


async def admin_delete(request: web.Request, delete: Callable[[int, Actor], Awaitable[None]]
                       ) -> web.Response:
    """An admin deletes the entry of the path's id: 204."""
    who = admin_actor(request)
    await delete(path_id(request), who)
    return web.Response(status=204)


async def uploaded_image(request: web.Request) -> int:
    """The request's image (image body or multipart `image`) checked, resized and kept: its id."""
    return await request.app[keys.INGEST].save_image(await read_image(request))


async def picture(request: web.Request, attach: Callable[[int], Awaitable[object]]) -> web.Response:
    """The uploaded image kept, then attached by `attach(image_id)`: the entry it was attached to.
    Callers check the entry and the caller's rights first, so a refused upload is not read."""
    return web.json_response(await attach(await uploaded_image(request)))


async def admin_picture(request: web.Request, check: Callable[[int], Awaitable[object]],
                        attach: Callable[[int, int, Actor], Awaitable[object]]) -> web.Response:
    """An admin uploads the picture of the path's entry: `check(id)` answers 404 for an unknown
    one before the upload is read, then `attach(id, image_id, actor)`."""
    who = admin_actor(request)
    entry_id = path_id(request)
    await check(entry_id)
    return await picture(request, lambda image_id: attach(entry_id, image_id, who))
