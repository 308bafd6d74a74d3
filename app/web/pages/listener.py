"""Listener pages: sign-in, registration, home, the catalogue (artist, album, browse), one's profile
and settings, public profiles. Every page goes through `render` (app/web/render.py)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from app.errors import Conflict, Forbidden, InvalidInput, RateLimited, Unauthenticated
from app.services.users import parse_new_account
from app.web import keys
from app.web.params import client_ip, int_param, path_id, require_user, user_agent
from app.web.render import (
    CURRENT_USER,
    field_errors,
    form_text,
    link,
    redirect,
    redirect_flash,
    render,
    safe_next,
)
from app.web.session import (
    REFRESH_COOKIE,
    clear_auth_cookies,
    set_auth_cookies,
)

routes = web.RouteTableDef()

# ---------------------------------------------------------------- sign in, register, sign out


@routes.get("/login", name="login_page")
async def login_page(request: web.Request) -> web.Response:
    target = safe_next(request.query.get("next"))
    if request.get(keys.PRINCIPAL) is not None:
        return redirect(target)
    return await render(request, "login.html", {"next": target, "login": "", "error": None})


@routes.post("/login", name="login_submit")
async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    target = safe_next(form.get("next"))
    login = form_text(form, "login", 254)
    try:
        pair = await request.app[keys.AUTH].login(
            login, form_text(form, "password", 1024), client_ip(request), user_agent(request)
        )
    except (Unauthenticated, Forbidden, RateLimited) as exc:
        message = exc.message
        if isinstance(exc, RateLimited):
            message = f"Too many attempts. Try again in {_duration(exc.retry_after)}."
        response = await render(request, "login.html",
                                {"next": target, "login": login, "error": message},
                                status=exc.status)
        response.headers.update(exc.headers)
        return response
    response = redirect(target)
    set_auth_cookies(response, pair, request.app[keys.CONFIG].secure_cookies)
    request[keys.COOKIES_SET] = True
    return response


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = (seconds + 59) // 60
    return f"{minutes} minutes"


@routes.get("/register", name="register_page")
async def register_page(request: web.Request) -> web.Response:
    if request.get(keys.PRINCIPAL) is not None:
        return redirect(link(request, "home"))
    return await render(request, "register.html", _register_context(request))


def _register_context(request: web.Request, values: Mapping[str, str] | None = None,
                      errors: Mapping[str, str] | None = None,
                      error: str | None = None) -> dict[str, Any]:
    return {
        "open": request.app[keys.CONFIG].open_registration,
        "values": {"email": "", "username": "", "display_name": "", **(values or {})},
        "errors": dict(errors or {}),
        "error": error,
    }


@routes.post("/register", name="register_submit")
async def register_submit(request: web.Request) -> web.Response:
    form = await request.post()
    values = {k: form_text(form, k, 300) for k in ("email", "username", "display_name")}
    password = form_text(form, "password", 1024)
    errors: dict[str, str] = {}
    try:
        if not request.app[keys.CONFIG].open_registration:
            raise Forbidden("Registration is closed; ask an admin for an account")
        if password != form_text(form, "confirm_password", 1024):
            errors["confirm_password"] = "does not match the password"  # noqa: S105 - a message
        try:
            account = parse_new_account({**values, "password": password})
        except InvalidInput as exc:
            raise InvalidInput(details={"fields": {**field_errors(exc), **errors}}) from None
        if errors:
            raise InvalidInput(details={"fields": errors})
        pair = await request.app[keys.AUTH].register(account, client_ip(request),
                                                     user_agent(request))
    except (InvalidInput, Conflict, Forbidden, RateLimited) as exc:
        message: str | None = exc.message
        if isinstance(exc, InvalidInput):
            errors, message = field_errors(exc), "Please fix the highlighted fields."
        elif isinstance(exc, Conflict):
            field = str((exc.details or {}).get("field", ""))
            errors = {field: "is already taken"} if field in values else {}
        elif isinstance(exc, RateLimited):
            message = f"Too many sign-ups from your network. Try again in {_duration(exc.retry_after)}."
        response = await render(request, "register.html",
                                _register_context(request, values, errors, message),
                                status=exc.status)
        response.headers.update(exc.headers)
        return response
    response = redirect_flash(request, link(request, "home"),
                              f"Welcome to Sonora, {pair.user['display_name']}!")
    set_auth_cookies(response, pair, request.app[keys.CONFIG].secure_cookies)
    request[keys.COOKIES_SET] = True
    return response


@routes.post("/logout", name="logout")
async def logout(request: web.Request) -> web.Response:
    principal = request.get(keys.PRINCIPAL)
    auth = request.app[keys.AUTH]
    if principal is not None:
        await auth.logout(principal)
    elif request.cookies.get(REFRESH_COOKIE):
        await auth.logout_refresh(request.cookies[REFRESH_COOKIE])
    response = redirect_flash(request, link(request, "login_page"), "You have been logged out.",
                              "info")
    clear_auth_cookies(response)
    request[keys.COOKIES_SET] = True
    return response


# ---------------------------------------------------------------- home and profiles


def greeting(hour: int) -> str:
    if 5 <= hour < 12:
        return "Good morning"
    if 12 <= hour < 18:
        return "Good afternoon"
    return "Good evening"


HOME_ALBUMS = 12
HOME_SONGS = 10
HOME_GENRES = 16
HOME_RECENT = 6


@routes.get("/", name="home")
async def home(request: web.Request) -> web.Response:
    principal = require_user(request)
    catalog = request.app[keys.CATALOG]
    albums, _ = await catalog.albums({}, HOME_ALBUMS, 0, "newest")
    songs, _ = await catalog.songs({}, HOME_SONGS, 0, "popular")
    popular = [s for s in songs if s["play_count"] > 0]  # by play count: the unplayed come last
    browse = await catalog.browse()
    recent = await request.app[keys.LISTENING].recent(principal.user_id, HOME_RECENT)
    return await render(request, "home.html", {
        "greeting": greeting(dt.datetime.now().hour),
        "new_albums": albums, "popular_songs": popular, "genres": browse["genres"][:HOME_GENRES],
        "recent_plays": recent,
    })


# ---------------------------------------------------------------- the catalogue

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
    page = int_param(q.get("page"), "page", 1, 1, 100_000)
    context: dict[str, Any] = {"genre": genre, "year": year, **await catalog.browse()}
    if genre or year:
        filters: dict[str, Any] = {"genre": genre} if genre else {"year": year}
        offset = (page - 1) * BROWSE_PAGE
        albums, album_total = await catalog.albums(filters, BROWSE_PAGE, offset, "newest")
        songs, song_total = await catalog.songs(filters, BROWSE_PAGE, offset, "popular")
        pages = max(1, math.ceil(max(album_total, song_total) / BROWSE_PAGE))
        base = request.app.router["browse_page"].url_for()
        keep = {"genre": genre} if genre else {"year": str(year)}

        def page_url(n: int) -> str:
            return str(base.with_query({**keep, "page": str(n)} if n > 1 else keep))

        context.update({
            "albums": albums, "album_total": album_total, "songs": songs,
            "song_total": song_total, "offset": offset,
            "pager": {"page": page, "pages": pages, "total": song_total,
                      "prev_url": page_url(page - 1) if page > 1 else None,
                      "next_url": page_url(page + 1) if page < pages else None},
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


# ---------------------------------------------------------------- one's own profile and settings


async def _me_page(request: web.Request, status: int = 200, **forms: dict[str, Any]) -> web.Response:
    principal = require_user(request)
    user = await request.app[keys.USERS].get(principal.user_id)
    request[CURRENT_USER] = user
    context: dict[str, Any] = {
        "user": user,
        "profile": {"values": {"display_name": user["display_name"], "bio": user["bio"]},
                    "errors": {}},
        "email_form": {"values": {"email": user["email"]}, "errors": {}},
        "password_form": {"errors": {}},
    }
    context.update(forms)
    return await render(request, "me.html", context, status=status)


@routes.get("/me", name="me_page")
async def me_page(request: web.Request) -> web.Response:
    return await _me_page(request)


@routes.post("/me/profile", name="me_profile")
async def me_profile(request: web.Request) -> web.Response:
    principal = require_user(request)
    form = await request.post()
    values = {"display_name": form_text(form, "display_name", 300), "bio": form_text(form, "bio")}
    try:
        await request.app[keys.USERS].update_profile(principal.user_id, values)
    except InvalidInput as exc:
        return await _me_page(request, 422,
                              profile={"values": values, "errors": field_errors(exc)})
    return redirect_flash(request, link(request, "me_page"), "Profile saved.")


@routes.post("/me/email", name="me_email")
async def me_email(request: web.Request) -> web.Response:
    principal = require_user(request)
    form = await request.post()
    values = {"email": form_text(form, "email", 300)}
    body = {**values, "current_password": form_text(form, "current_password", 1024)}
    try:
        await request.app[keys.USERS].update_profile(principal.user_id, body)
    except (InvalidInput, Conflict) as exc:
        errors = field_errors(exc) if isinstance(exc, InvalidInput) else {"email": "is already taken"}
        return await _me_page(request, exc.status, email_form={"values": values, "errors": errors})
    return redirect_flash(request, link(request, "me_page"), "Email address updated.")


@routes.post("/me/password", name="me_password")
async def me_password(request: web.Request) -> web.Response:
    principal = require_user(request)
    form = await request.post()
    new_password = form_text(form, "new_password", 1024)
    if new_password != form_text(form, "confirm_password", 1024):
        return await _me_page(request, 422, password_form={
            "errors": {"confirm_password": "does not match the new password"}})
    body = {"new_password": new_password,
            "current_password": form_text(form, "current_password", 1024)}
    try:
        user, _ = await request.app[keys.USERS].update_profile(principal.user_id, body)
    except InvalidInput as exc:
        return await _me_page(request, 422, password_form={"errors": field_errors(exc)})
    # The new password ended every session, this one included: open a fresh one for this browser.
    pair = await request.app[keys.AUTH].issue_for(user, client_ip(request), user_agent(request))
    response = redirect_flash(request, link(request, "me_page"),
                              "Password changed. Every other session has been logged out.")
    set_auth_cookies(response, pair, request.app[keys.CONFIG].secure_cookies)
    request[keys.COOKIES_SET] = True
    return response


@routes.post("/me/logout-all", name="me_logout_all")
async def me_logout_all(request: web.Request) -> web.Response:
    principal = require_user(request)
    await request.app[keys.AUTH].logout_all(principal.user_id)
    response = redirect_flash(request, link(request, "login_page"),
                              "You have been logged out on every device.", "info")
    clear_auth_cookies(response)
    request[keys.COOKIES_SET] = True
    return response
