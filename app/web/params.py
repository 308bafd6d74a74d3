"""Typed request helpers for handlers: JSON bodies, ids, paging, the caller and their address."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any, TypeVar

from aiohttp import web
from yarl import URL

from app.errors import BadRequest, Forbidden, InvalidInput, InvalidJson, Unauthenticated
from app.services.auth import Principal
from app.services.catalog import Actor
from app.services.types import Page
from app.services.validation import invalid_text
from app.web import keys

MAX_DEPTH = 32
MAX_ID = 2**63 - 1
ASCII_INT = re.compile(r"-?[0-9]+")
ASCII_ID = re.compile(r"[0-9]+")
T = TypeVar("T")


def _depth(value: Any, level: int = 1) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


async def json_body(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; 400 when it is not JSON, 422 when it is not an object."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidJson() from exc
    if _depth(data) > MAX_DEPTH:
        raise InvalidJson("The JSON body is nested too deeply")
    if not isinstance(data, dict):
        raise InvalidInput("The body must be a JSON object")
    bad = invalid_text(data)
    if bad is not None:
        raise InvalidInput("Text must be valid Unicode",
                           details={"fields": {bad: "is not valid Unicode text"}})
    return data


def int_param(value: str | None, name: str, default: int, lo: int, hi: int) -> int:
    if value is None or value == "":
        return default
    # ASCII digits only: int() would take " 1", "1_0" and other scripts' digits ("١") too.
    if not ASCII_INT.fullmatch(value) or len(value) > 20:
        raise InvalidInput(details={"fields": {name: "must be an integer"}})
    number = int(value)
    if not lo <= number <= hi:
        raise InvalidInput(details={"fields": {name: f"must be between {lo} and {hi}"}})
    return number


def paging(request: web.Request) -> tuple[int, int]:
    """`limit` (default 20, max 100) and `offset`, or a 1-based `page`."""
    q = request.query
    limit = int_param(q.get("limit"), "limit", 20, 1, 100)
    if q.get("page") not in (None, "") and q.get("offset") in (None, ""):
        page = int_param(q.get("page"), "page", 1, 1, 1_000_000)
        return limit, (page - 1) * limit
    return limit, int_param(q.get("offset"), "offset", 0, 0, 10_000_000)


def page_json(items: list[T], total: int, limit: int, offset: int) -> Page[T]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def choice_param(request: web.Request, name: str, choices: tuple[str, ...]) -> str:
    """A query parameter that names one of `choices`; anything else (or nothing) is the first."""
    value = request.query.get(name, choices[0])
    return value if value in choices else choices[0]


def query_text(request: web.Request, name: str = "q", max_len: int = 200) -> str:
    """A free-text query parameter, trimmed and cut to `max_len` characters ("" when absent)."""
    return request.query.get(name, "").strip()[:max_len]


def path_id(request: web.Request, name: str = "id") -> int:
    """An id from the path; routes match digits only, this bounds the size."""
    raw = request.match_info[name]
    if not ASCII_ID.fullmatch(raw) or len(raw) > 19 or not 0 < int(raw) <= MAX_ID:
        raise BadRequest("Ids are positive integers")
    return int(raw)


def principal(request: web.Request) -> Principal | None:
    return request.get(keys.PRINCIPAL)


def require_user(request: web.Request) -> Principal:
    """The authenticated caller, or 401 with the reason the credentials were refused."""
    p = request.get(keys.PRINCIPAL)
    if p is None:
        error = request.get(keys.AUTH_ERROR)
        raise error if isinstance(error, Unauthenticated) else Unauthenticated()
    return p


def require_admin(request: web.Request) -> Principal:
    p = require_user(request)
    if not p.is_admin:
        raise Forbidden("Admins only")
    return p


def admin_actor(request: web.Request) -> Actor:
    """The admin making a catalogue change, as the services record it (403 for anyone else)."""
    p = require_admin(request)
    return Actor(p.user_id, p.username)


def user_agent(request: web.Request) -> str:
    """The client's User-Agent as it is kept with a session: at most 255 characters, and bytes
    that are not UTF-8 (aiohttp keeps them as surrogates) replaced rather than refused."""
    raw = request.headers.get("User-Agent", "")[:255]
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def client_ip(request: web.Request) -> str:
    """The peer address, or the last untrusted X-Forwarded-For hop when the peer is a trusted proxy."""
    peer = request.remote or ""
    trusted = request.app[keys.CONFIG].trusted_proxies
    if not trusted or not _in(peer, trusted):
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            return hop
    return peer


def public_origin(request: web.Request) -> URL:
    """The scheme and host the client used: the request's own, or X-Forwarded-Proto and
    X-Forwarded-Host when the peer is a trusted proxy (their first, client-side value)."""
    scheme, host = request.scheme, request.host
    trusted = request.app[keys.CONFIG].trusted_proxies
    if trusted and _in(request.remote or "", trusted):
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            scheme = proto
        forwarded = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
        if forwarded and _usable_host(forwarded):
            host = forwarded
    if not _usable_host(host):  # a Host header no URL can carry: the address that was reached
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        address, port = (sockname[0], sockname[1]) if sockname else ("127.0.0.1", None)
        host = f"[{address}]:{port}" if ":" in address else f"{address}:{port}" if port else address
    return URL.build(scheme=scheme, authority=host)


def _usable_host(host: str) -> bool:
    """A host a URL can carry: the pattern below, and a port (when given) of at most 65535."""
    match = _HOST.fullmatch(host)
    return match is not None and (match.group("port") is None or int(match.group("port")) <= 65535)


# A host name or IPv4 address, or a bracketed IPv6 one, with an optional port.
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::(?P<port>[0-9]{1,5}))?"
)


def _in(address: str, networks: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for net in networks:
        try:
            if ip in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False
