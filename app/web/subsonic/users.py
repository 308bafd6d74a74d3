"""User management: getUser (oneself; admins anyone) and getUsers (admins)."""

from __future__ import annotations

from app.web import keys
from app.web.subsonic.envelope import Payload
from app.web.subsonic.errors import NOT_AUTHORIZED, SubsonicError
from app.web.subsonic.registry import ADMIN, Call, Methods
from app.web.subsonic.shapes import user_element

methods = Methods()
PAGE = 500


@methods.method("getUser")
async def get_user(call: Call) -> Payload:
    username = call.params.text("username")
    me = call.user
    if username.lower() != me.username.lower() and not me.is_admin:
        raise SubsonicError(NOT_AUTHORIZED, "You can only get your own user")
    row = await call.app[keys.USERS].by_username(username)  # unknown: NotFound → 70
    return {"user": user_element(row, with_email=True)}


@methods.method("getUsers", access=ADMIN)
async def get_users(call: Call) -> Payload:
    users = call.app[keys.USERS]
    rows, total = await users.list("", PAGE, 0)
    while len(rows) < total:
        more, _ = await users.list("", PAGE, len(rows))
        if not more:
            break
        rows.extend(more)
    return {"users": {"user": [user_element(row, with_email=True) for row in rows]}}
