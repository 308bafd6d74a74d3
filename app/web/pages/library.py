"""Listener pages for the library and playlists: `/library`, `/playlists` (public ones),
`/playlist/{id}` with its owner's forms, and `/s/{token}`, a shared playlist, read-only.

Forms post back here and work without JavaScript; static/js/library.js enhances them (likes,
add-to-playlist, drag-and-drop and keyboard reordering) through the JSON API. A playlist the
viewer may not see is a 404, exactly like one that does not exist."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.errors import AppError, Forbidden, InvalidInput, NotFound
from app.web import keys
from app.web.paging import page_number, pager
from app.web.params import path_id, require_user
from app.web.render import error_line, field_errors, form_text, link, redirect_flash, render

routes = web.RouteTableDef()
PER_PAGE = 100
GRID = 48
TABS = ("playlists", "songs", "albums", "artists")


# ---------------------------------------------------------------- the library


@routes.get("/library", name="library_page")
async def library_page(request: web.Request) -> web.Response:
    user = require_user(request)
    tab = request.query.get("tab", "playlists")
    tab = tab if tab in TABS else "playlists"
    page = page_number(request)
    library = request.app[keys.LIBRARY]
    context: dict[str, Any] = {"tab": tab, "tabs": TABS, "counts": await library.counts(user.user_id)}
    per = PER_PAGE if tab == "songs" else GRID
    offset = (page - 1) * per
    if tab == "playlists":
        mine, mine_total = await request.app[keys.PLAYLISTS].mine(user.user_id, per, offset)
        followed, _ = await library.page("playlists", user.user_id, per, 0) if page == 1 else ([], 0)
        context.update(playlists=mine, followed=[f["playlist"] for f in followed],
                       pager=pager(request, "library_page", mine_total, page, per, {"tab": tab}))
    else:
        items, total = await library.page(tab, user.user_id, per, offset)
        context.update(items=items, offset=offset,
                       pager=pager(request, "library_page", total, page, per, {"tab": tab}))
    return await render(request, "library.html", context)


@routes.post("/library/playlists", name="library_playlist_create")
async def create_playlist(request: web.Request) -> web.Response:
    user = require_user(request)
    form = await request.post()
    body = {"name": form_text(form, "name", 300), "description": form_text(form, "description"),
            "is_public": form.get("is_public") == "on"}
    try:
        playlist = await request.app[keys.PLAYLISTS].create(user.user_id, body)
    except InvalidInput as exc:
        detail = next(iter(field_errors(exc).items()), ("name", "is invalid"))
        return redirect_flash(request, link(request, "library_page"),
                              f"Not created: {detail[0]} {detail[1]}.", "error")
    return redirect_flash(request, link(request, "playlist_page", id=str(playlist["id"])),
                          f"Created {playlist['name']}.")


# ---------------------------------------------------------------- public playlists


@routes.get("/playlists", name="playlists_public_page")
async def public_playlists(request: web.Request) -> web.Response:
    require_user(request)
    q = request.query.get("q", "").strip()[:100]
    page = page_number(request)
    items, total = await request.app[keys.PLAYLISTS].public(q, GRID, (page - 1) * GRID)
    return await render(request, "playlists_public.html", {
        "playlists": items, "q": q,
        "pager": pager(request, "playlists_public_page", total, page, GRID, {"q": q} if q else {}),
    })


# ---------------------------------------------------------------- one playlist


async def _playlist_context(request: web.Request, playlist_id: int, user_id: int) -> dict[str, Any]:
    service = request.app[keys.PLAYLISTS]
    access = await service.access(playlist_id, user_id)
    page = page_number(request)
    playlist = await service.get(playlist_id, user_id, PER_PAGE, (page - 1) * PER_PAGE)
    entries = playlist["songs"]["items"]
    library = request.app[keys.LIBRARY]
    liked = await library.contains("songs", user_id, sorted({e["song"]["id"] for e in entries}))
    liked_ids = {sid for sid, yes in zip(sorted({e["song"]["id"] for e in entries}), liked, strict=True)
                 if yes}
    following = (await library.contains("playlists", user_id, [playlist_id]))[0]
    return {
        "playlist": playlist, "entries": entries, "liked_ids": liked_ids,
        "is_owner": access.is_owner, "is_collaborator": access.is_collaborator,
        "can_edit": access.can_edit_songs, "following": following,
        "duration_ms": await service.duration_ms(playlist_id),
        "collaborators": await service.collaborators(playlist_id, user_id),
        "has_share": access.is_owner and await service.has_share(playlist_id),
        "share_url": None,
        "pager": pager(request, "playlist_page", playlist["song_count"], page, PER_PAGE,
                        id=str(playlist_id)),
    }


@routes.get(r"/playlist/{id:[0-9]+}", name="playlist_page")
async def playlist_page(request: web.Request) -> web.Response:
    user = require_user(request)
    context = await _playlist_context(request, path_id(request), user.user_id)
    return await render(request, "playlist.html", context)


async def _act(request: web.Request, done: str, action: Any) -> web.Response:
    """Run a form's action; back to the playlist with a flash (errors flashed too)."""
    back = link(request, "playlist_page", id=request.match_info["id"])
    try:
        await action
    except NotFound:
        raise
    except AppError as exc:
        return redirect_flash(request, back, error_line(exc), "error")
    return redirect_flash(request, back, done)


@routes.post(r"/playlist/{id:[0-9]+}/edit", name="playlist_edit")
async def playlist_edit(request: web.Request) -> web.Response:
    user = require_user(request)
    form = await request.post()
    body = {"name": form_text(form, "name", 300), "description": form_text(form, "description"),
            "is_public": form.get("is_public") == "on",
            "is_collaborative": form.get("is_collaborative") == "on"}
    service = request.app[keys.PLAYLISTS]
    return await _act(request, "Playlist saved.", service.update(path_id(request), user.user_id, body))


@routes.post(r"/playlist/{id:[0-9]+}/delete", name="playlist_delete")
async def playlist_delete(request: web.Request) -> web.Response:
    user = require_user(request)
    playlist_id = path_id(request)
    service = request.app[keys.PLAYLISTS]
    access = await service.access(playlist_id, user.user_id)
    try:
        await service.delete(playlist_id, user.user_id)
    except Forbidden as exc:
        return redirect_flash(request, link(request, "playlist_page", id=str(playlist_id)),
                              exc.message, "error")
    return redirect_flash(request, link(request, "library_page"), f"Deleted {access.row['name']}.")


@routes.post(r"/playlist/{id:[0-9]+}/share", name="playlist_share")
async def playlist_share(request: web.Request) -> web.Response:
    user = require_user(request)
    form = await request.post()
    playlist_id = path_id(request)
    service = request.app[keys.PLAYLISTS]
    if form.get("action") == "revoke":
        return await _act(request, "Share link revoked.", service.unshare(playlist_id, user.user_id))
    token = await service.share(playlist_id, user.user_id)
    context = await _playlist_context(request, playlist_id, user.user_id)
    context["share_url"] = str(request.url.origin().join(
        request.app.router["shared_playlist_page"].url_for(token=token)))
    return await render(request, "playlist.html", context)


@routes.post(r"/playlist/{id:[0-9]+}/collaborators", name="playlist_collaborators")
async def playlist_collaborators(request: web.Request) -> web.Response:
    user = require_user(request)
    form = await request.post()
    username = form_text(form, "username", 64).strip()
    service = request.app[keys.PLAYLISTS]
    playlist_id = path_id(request)
    if form.get("action") == "remove":
        if username.lower() == user.username.lower():
            await service.remove_collaborator(playlist_id, user.user_id, username)
            return redirect_flash(request, link(request, "library_page"), "You left the playlist.")
        return await _act(request, f"Removed {username}.",
                          service.remove_collaborator(playlist_id, user.user_id, username))
    return await _act(request, f"Added {username} as a collaborator.",
                      service.add_collaborator(playlist_id, user.user_id, {"username": username}))


@routes.post(r"/playlist/{id:[0-9]+}/follow", name="playlist_follow")
async def playlist_follow(request: web.Request) -> web.Response:
    user = require_user(request)
    playlist_id = path_id(request)
    library = request.app[keys.LIBRARY]
    if (await library.contains("playlists", user.user_id, [playlist_id]))[0]:
        return await _act(request, "Removed from your library.",
                          library.remove("playlists", user.user_id, playlist_id))
    return await _act(request, "Added to your library.", library.add("playlists", user.user_id, playlist_id))


@routes.post(r"/playlist/{id:[0-9]+}/entries", name="playlist_entries")
async def playlist_entries(request: web.Request) -> web.Response:
    """Remove an entry, or move it one step (the no-JavaScript twin of drag-and-drop)."""
    user = require_user(request)
    form = await request.post()
    service = request.app[keys.PLAYLISTS]
    playlist_id = path_id(request)
    try:
        position = int(form_text(form, "position", 10))
    except ValueError:
        position = -1
    action = form.get("action")
    if action == "remove":
        return await _act(request, "Removed from the playlist.",
                          service.remove_songs(playlist_id, user.user_id, {"positions": [position]}))
    before = position - 1 if action == "up" else position + 2
    return await _act(request, "Moved.", service.reorder(
        playlist_id, user.user_id, {"range_start": position, "insert_before": before}))


# ---------------------------------------------------------------- a shared link


@routes.get(r"/s/{token:[A-Za-z0-9_-]{20,100}}", name="shared_playlist_page")
async def shared_playlist(request: web.Request) -> web.Response:
    """Anyone holding the link sees the playlist (read-only), and nothing else of its owner.
    Opening it counts a visit (its first page only: paging through is the same visit)."""
    service = request.app[keys.PLAYLISTS]
    page = page_number(request)
    share = await service.shared(request.match_info["token"],
                                 visit=page == 1 and request.method == "GET")
    playlist = share["playlist"]
    full = await service.shared_songs(playlist["id"], PER_PAGE, (page - 1) * PER_PAGE)
    response = await render(request, "shared_playlist.html", {
        "playlist": playlist, "share_description": share["description"],
        "entries": full["songs"]["items"],
        "offset": (page - 1) * PER_PAGE,
        "pager": pager(request, "shared_playlist_page", playlist["song_count"], page, PER_PAGE,
                        token=request.match_info["token"]),
        "login_url": str(request.app.router["login_page"].url_for().with_query(next=request.path)),
    })
    response.headers["X-Robots-Tag"] = "noindex"
    return response
