"""The page toolkit every page module uses: `render` (the layout's context: the caller, the CSRF
token, flash messages, navigation), `link` to named routes, redirects that carry a flash message,
`safe_next`, the Jinja filters and the form helpers.

Handlers return their responses rather than raising redirects, so the cookies a silent token
refresh sets on the way out are never lost."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from yarl import URL

from app.errors import AppError, InvalidInput
from app.repos.db import Row
from app.web import keys
from app.web.flash import add_flash, consume_flashes, read_flashes
from app.web.session import csrf_for, pre_login_token, set_pre_cookie

# The user row of the caller, loaded once per request for the layout.
CURRENT_USER = web.RequestKey("page_current_user", dict)

# Sidebar entries: (label, route name, icon).
NAV = (
    ("Home", "home", "home"),
    ("Search", "search_page", "search"),
    ("Browse", "browse_page", "browse"),
    ("Your Library", "library_page", "library"),
)
ADMIN_NAV = (
    ("Dashboard", "admin_dashboard", "dashboard"),
    ("Users", "admin_users", "users"),
    ("Songs", "admin_songs", "note"),
    ("Albums", "admin_albums", "disc"),
    ("Artists", "admin_artists", "mic"),
    ("Playlists", "admin_playlists", "library"),
    ("Audit log", "admin_audit", "shield"),
)


def link(request: web.Request, name: str, **parts: str) -> str:
    """The URL of a named route; an unknown name raises KeyError (a typo is a bug, not a link)."""
    return str(request.app.router[name].url_for(**parts))


def safe_next(value: Any, default: str = "/") -> str:
    """A redirect target on this site only: a path starting with one "/", nothing that a browser
    could read as another host (`//host`, `/\\host`, schemes, control characters)."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 2000:
        return default
    if value.startswith("//") or "\\" in value or any(ch <= " " or ch == "\x7f" for ch in value):
        return default
    try:
        url = URL(value)
    except ValueError:
        return default
    if url.scheme or url.host or url.raw_authority:
        return default
    return value


def initials(name: str) -> str:
    parts = [p for p in name.replace("_", " ").replace(".", " ").split() if p]
    letters = "".join(p[0] for p in parts[:2]) if parts else "?"
    return letters.upper()


def fmt_date(value: dt.datetime | None) -> str:
    return value.strftime("%b %-d, %Y") if value else ""


def fmt_datetime(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def duration(ms: int | None) -> str:
    """A track length as m:ss (h:mm:ss past an hour)."""
    seconds = max(0, int(ms or 0)) // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def long_duration(ms: int | None) -> str:
    """A total length in words: "1 hr 5 min", "12 min 30 sec"."""
    seconds = max(0, int(ms or 0)) // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} hr {minutes} min"
    return f"{minutes} min {secs} sec" if minutes else f"{secs} sec"


def file_size(size: int | None) -> str:
    value = float(size or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""  # unreachable


_SIZE_PARAM = re.compile(r"([?&]size=)\d+")


def image_size(url: str | None, size: int = 64) -> str | None:
    """The same image at another of its fixed renditions (64, 300 or 640 pixels)."""
    return _SIZE_PARAM.sub(lambda m: f"{m.group(1)}{size}", url) if url else url


def hue(value: Any) -> int:
    """One of eight placeholder gradients, stable for an id or a name."""
    text = str(value)
    if text.isdigit():
        return int(text) % 8
    return sum((i + 7) * ord(ch) for i, ch in enumerate(text)) % 8


def rfc3339_text(value: str | None) -> str:
    """An RFC 3339 UTC time as the API gives it ("2026-05-01T12:30:00Z"), as a page shows it."""
    return f"{value[:10]} {value[11:16]} UTC" if value else ""


FILTERS = {"rfc3339_text": rfc3339_text,
           "duration": duration, "long_duration": long_duration, "file_size": file_size,
           "image_size": image_size, "hue": hue, "initials": lambda v: initials(str(v or "?"))}


def _install_filters(request: web.Request) -> None:
    """The page filters, added to the app's Jinja environment on first use."""
    env = aiohttp_jinja2.get_env(request.app)
    if "image_size" not in env.filters:
        env.filters.update(FILTERS)


def form_text(form: Mapping[str, Any], name: str, max_len: int = 2000) -> str:
    value = form.get(name)
    return value[:max_len] if isinstance(value, str) else ""


def field_errors(exc: InvalidInput) -> dict[str, str]:
    fields = (exc.details or {}).get("fields")
    return {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {}


def form_summary(exc: AppError) -> str:
    """The line above a form that was refused: fields are marked one by one, anything else is said."""
    return "Please fix the highlighted fields." if isinstance(exc, InvalidInput) else exc.message


def error_line(exc: AppError) -> str:
    """One line for a flash message, naming the first bad field when there is one."""
    detail = next(iter(field_errors(exc).items()), None) if isinstance(exc, InvalidInput) else None
    return f"{detail[0].replace('_', ' ').capitalize()} {detail[1]}." if detail else exc.message


def back_to_list(request: web.Request, value: Any, name: str) -> str:
    """Where a form returns to: its list page (route `name`), with the list's search and page kept
    when `value` is that page; anything else is the bare list."""
    list_url = link(request, name)
    target = safe_next(value, list_url)
    return target if target.split("?")[0] == list_url else list_url


def redirect(location: str) -> web.Response:
    """A plain 302 that is returned, not raised (see the module docstring)."""
    return web.Response(status=302, headers={"Location": location})


def redirect_flash(request: web.Request, location: str, message: str,
                   level: str = "success") -> web.Response:
    response = redirect(location)
    add_flash(request, response, message, level)
    return response


async def render(request: web.Request, template: str, context: Mapping[str, Any] | None = None,
                 status: int = 200) -> web.Response:
    """Render a page with the layout's context: the caller, CSRF token, flashes and navigation."""
    _install_filters(request)
    principal = request.get(keys.PRINCIPAL)
    me: Row | None = None
    if principal is not None:
        me = request.get(CURRENT_USER)
        if me is None:
            me = await request.app[keys.USERS].get(principal.user_id)
            request[CURRENT_USER] = me
        csrf_token = csrf_for(request.app[keys.AUTH].signer, principal.session_id)
        set_pre = False
    else:
        csrf_token, set_pre = pre_login_token(request)
    is_admin = bool(principal and principal.is_admin)
    nav = [
        {"label": label, "url": link(request, name), "icon": icon}
        for label, name, icon in NAV
    ]
    admin_nav = [
        {"label": label, "url": link(request, name), "icon": icon}
        for label, name, icon in ADMIN_NAV
    ] if is_admin else []
    _mark_active([*nav, *admin_nav], request.path)
    base = {
        "principal": principal,
        "me": me,
        "me_initials": initials(me["display_name"]) if me else "",
        "is_admin": is_admin,
        "csrf_token": csrf_token,
        "flashes": read_flashes(request),
        "current_path": request.path,
        "nav": nav,
        "admin_nav": admin_nav,
        "search_url": link(request, "search_page"),
        "fmt_date": fmt_date,
        "fmt_datetime": fmt_datetime,
        "initials": initials,
    }
    response = aiohttp_jinja2.render_template(template, request, {**base, **(context or {})},
                                              status=status)
    consume_flashes(request, response)
    if set_pre:
        set_pre_cookie(response, csrf_token, request.app[keys.CONFIG].secure_cookies)
    response.headers["Cache-Control"] = "no-store"
    return response


def _mark_active(items: list[dict[str, Any]], path: str) -> None:
    """The entry whose URL is the longest prefix of the path is the current page."""
    def matches(url: str) -> bool:
        return path == url or url != "/" and path.startswith(url.rstrip("/") + "/")
    best = max((i for i in items if matches(i["url"])), key=lambda i: len(i["url"]), default=None)
    for item in items:
        item["active"] = item is best
