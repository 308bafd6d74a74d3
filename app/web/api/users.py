"""/api/user: one's own profile, and the admin's user management."""

from __future__ import annotations

from aiohttp import web

from app.web import keys
from app.web.params import (
    client_ip,
    json_body,
    page_json,
    paging,
    path_id,
    require_admin,
    require_user,
    user_agent,
)
from app.web.routing import BOOL, PAGING, STR, ApiRoutes, obj
from app.web.session import set_auth_cookies
from app.web.user_json import tokens_json, user_json

routes = ApiRoutes("users")


@routes.get("/api/user/me", name="api_me", summary="Your profile")
async def me(request: web.Request) -> web.Response:
    principal = require_user(request)
    user = await request.app[keys.USERS].get(principal.user_id)
    return web.json_response(user_json(request, user, with_email=True))


@routes.put(
    "/api/user/me", name="api_me_update",
    summary="Change your profile; the email and password need current_password",
    body=obj(display_name=STR, bio=STR, username=STR, email=STR, current_password=STR,
             new_password=STR),
)
async def update_me(request: web.Request) -> web.Response:
    principal = require_user(request)
    user, password_changed = await request.app[keys.USERS].update_profile(
        principal.user_id, await json_body(request)
    )
    body = user_json(request, user, with_email=True)
    if not password_changed:
        return web.json_response(body)
    # A new password ends every session, this one included: hand the caller a fresh pair.
    pair = await request.app[keys.AUTH].issue_for(
        user, client_ip(request), user_agent(request)
    )
    response = web.json_response({**body, "tokens": tokens_json(request, pair)})
    if request.get(keys.VIA_COOKIE):
        set_auth_cookies(response, pair, request.app[keys.CONFIG].secure_cookies)
        request[keys.COOKIES_SET] = True
    return response


@routes.get("/api/user", name="api_users", summary="List and search users (admin)",
            auth="admin", params=[{"name": "q", "in": "query", "schema": STR}, *PAGING])
async def list_users(request: web.Request) -> web.Response:
    require_admin(request)
    limit, offset = paging(request)
    rows, total = await request.app[keys.USERS].list(request.query.get("q", ""), limit, offset)
    items = [user_json(request, r, with_email=True) for r in rows]
    return web.json_response(page_json(items, total, limit, offset))


@routes.put(r"/api/user/{id:[0-9]+}/role", name="api_user_role", summary="Change a user's role (admin)",
            auth="admin", body=obj(["role"], role={"enum": ["member", "admin"]}))
async def set_role(request: web.Request) -> web.Response:
    admin = require_admin(request)
    body = await json_body(request)
    user = await request.app[keys.USERS].set_role(admin.user_id, path_id(request), body.get("role"))
    return web.json_response(user_json(request, user, with_email=True))


@routes.put(r"/api/user/{id:[0-9]+}/disabled", name="api_user_disabled",
            summary="Disable or enable a user (admin)", auth="admin",
            body=obj(["disabled"], disabled=BOOL))
async def set_disabled(request: web.Request) -> web.Response:
    admin = require_admin(request)
    body = await json_body(request)
    user = await request.app[keys.USERS].set_disabled(
        admin.user_id, path_id(request), body.get("disabled")
    )
    return web.json_response(user_json(request, user, with_email=True))


@routes.delete(r"/api/user/{id:[0-9]+}", name="api_user_delete", summary="Delete a user (admin)",
               auth="admin", status=204)
async def delete_user(request: web.Request) -> web.Response:
    admin = require_admin(request)
    await request.app[keys.USERS].delete(admin.user_id, path_id(request))
    return web.Response(status=204)
