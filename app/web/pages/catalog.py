"""The catalogue's pages: artists, albums (save, follow), browse, and public profiles."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.web import keys
from app.web.paging import page_number, pager
from app.web.params import int_param, path_id, require_user
from app.web.render import link, redirect_flash, render

routes = web.RouteTableDef()

ARTIST_ALBUMS = 50
BROWSE_PAGE = 24


@routes.get(r"/artist/{id:[0-9]+}", name="artist_page")
async def artist_page(request: web.Request) -> web.Response:
    user = require_user(request)
    catalog = request.app[keys.CATALOG]
    artist = await catalog.artist(path_id(request))
    top = await catalog.artist_top_songs(artist["id"], 10)
    albums, album_total = await catalog.artist_albums(artist["id"], ARTIST_ALBUMS, 0)
    [following] = await request.app[keys.LIBRARY].contains("artists", user.user_id, [artist["id"]])
    return await render(request, "artist.html", {
        "artist": artist, "top_songs": top, "albums": albums, "album_total": album_total,
        "following": following,
    })


@routes.get(r"/album/{id:[0-9]+}", name="album_page")
async def album_page(request: web.Request) -> web.Response:
    user = require_user(request)
    album = await request.app[keys.CATALOG].album(path_id(request))
    discs = sorted({s["disc_number"] or 1 for s in album["songs"]})
    more, _ = await request.app[keys.CATALOG].artist_albums(album["artist_id"], 7, 0)
    [saved] = await request.app[keys.LIBRARY].contains("albums", user.user_id, [album["id"]])
    return await render(request, "album.html", {
        "album": album, "discs": discs, "saved": saved,
        "more_albums": [a for a in more if a["id"] != album["id"]][:6],
    })


async def _toggle(request: web.Request, kind: str, page: str, added: str, removed: str
                  ) -> web.Response:
    """Save an album or follow an artist, or undo it (a form: works without scripts)."""
    user = require_user(request)
    item_id = path_id(request)
    library = request.app[keys.LIBRARY]
    if (await library.contains(kind, user.user_id, [item_id]))[0]:
        await library.remove(kind, user.user_id, item_id)
        message = removed
    else:
        await library.add(kind, user.user_id, item_id)
        message = added
    return redirect_flash(request, link(request, page, id=str(item_id)), message)


@routes.post(r"/album/{id:[0-9]+}/save", name="album_save")
async def album_save(request: web.Request) -> web.Response:
    return await _toggle(request, "albums", "album_page", "Saved to your library.",
                         "Removed from your library.")


@routes.post(r"/artist/{id:[0-9]+}/follow", name="artist_follow")
async def artist_follow(request: web.Request) -> web.Response:
    return await _toggle(request, "artists", "artist_page", "You follow this artist now.",
                         "You no longer follow this artist.")


@routes.get("/browse", name="browse_page")
async def browse_page(request: web.Request) -> web.Response:
    require_user(request)
    catalog = request.app[keys.CATALOG]
    q = request.query
    genre = q.get("genre", "").strip()[:100]
    year = int_param(q.get("year"), "year", 0, 1000, 9999) if not genre else 0
    page = page_number(request)
    context: dict[str, Any] = {"genre": genre, "year": year, **await catalog.browse()}
    if genre or year:
        filters: dict[str, Any] = {"genre": genre} if genre else {"year": year}
        offset = (page - 1) * BROWSE_PAGE
        albums, album_total = await catalog.albums(filters, BROWSE_PAGE, offset, "newest")
        songs, song_total = await catalog.songs(filters, BROWSE_PAGE, offset, "popular")
        # The pages run as long as the longer of the two lists.
        pages = pager(request, "browse_page", max(album_total, song_total), page, BROWSE_PAGE,
                      {"genre": genre} if genre else {"year": str(year)})
        context.update({
            "albums": albums, "album_total": album_total, "songs": songs,
            "song_total": song_total, "offset": offset, "pager": {**pages, "total": song_total},
        })
    return await render(request, "browse.html", context)


@routes.get(r"/user/{username:[A-Za-z0-9_.-]{1,64}}", name="user_page")
async def user_page(request: web.Request) -> web.Response:
    principal = require_user(request)
    user = await request.app[keys.USERS].by_username(request.match_info["username"])
    if user["disabled"] and not principal.is_admin:
        return await render(request, "errors/404.html",
                            {"status": 404, "message": "No such user"}, status=404)
    playlists = request.app[keys.PLAYLISTS]
    public, _ = await playlists.public("", 24, 0, owner_id=user["id"])
    return await render(request, "user.html", {
        "user": user, "is_self": user["id"] == principal.user_id, "playlists": public,
        "counts": await playlists.profile_counts(user["id"]),
        "following": await request.app[keys.LIBRARY].counts(user["id"]),
    })
