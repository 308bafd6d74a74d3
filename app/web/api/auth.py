"""/api/auth: register, login, refresh, logout."""

from __future__ import annotations

from aiohttp import web

from app.services.users import parse_new_account
from app.web import keys
from app.web.params import client_ip, json_body, require_user, user_agent
from app.web.routing import BOOL, STR, ApiRoutes, obj
from app.web.session import REFRESH_COOKIE, clear_auth_cookies
from app.web.user_json import tokens_json

routes = ApiRoutes("auth")


@routes.post(
    "/api/auth/register", name="api_register", summary="Create an account", auth="public",
    status=201,
    body=obj(["email", "username", "password"], email=STR, username=STR, password=STR,
             display_name=STR),
)
async def register(request: web.Request) -> web.Response:
    account = parse_new_account(await json_body(request))
    pair = await request.app[keys.AUTH].register(account, client_ip(request), user_agent(request))
    return web.json_response(tokens_json(request, pair), status=201)


@routes.post(
    "/api/auth/login", name="api_login", summary="Log in by email or username", auth="public",
    body=obj(["password"], email=STR, username=STR, password=STR),
)
async def login(request: web.Request) -> web.Response:
    body = await json_body(request)
    pair = await request.app[keys.AUTH].login(
        body.get("email") or body.get("username") or body.get("login"), body.get("password"),
        client_ip(request), user_agent(request),
    )
    return web.json_response(tokens_json(request, pair))


@routes.post(
    "/api/auth/refresh", name="api_refresh",
    summary="Trade a refresh token (body or cookie) for a new pair; the old one is spent",
    auth="public", body=obj(refresh_token=STR),
)
async def refresh(request: web.Request) -> web.Response:
    body = await json_body(request)
    token = body.get("refresh_token") or request.cookies.get(REFRESH_COOKIE)
    pair = await request.app[keys.AUTH].refresh(token)
    return web.json_response(tokens_json(request, pair))


@routes.post("/api/auth/logout", name="api_logout", summary="End this session",
             body=obj(everywhere=BOOL))
async def logout(request: web.Request) -> web.Response:
    principal = require_user(request)
    if (await json_body(request)).get("everywhere") is True:
        await request.app[keys.AUTH].logout_all(principal.user_id)
    else:
        await request.app[keys.AUTH].logout(principal)
    response = web.json_response({"ok": True})
    clear_auth_cookies(response)
    request[keys.COOKIES_SET] = True
    return response


@routes.post("/api/auth/logout-all", name="api_logout_all",
             summary="End every session of this account")
async def logout_all(request: web.Request) -> web.Response:
    principal = require_user(request)
    await request.app[keys.AUTH].logout_all(principal.user_id)
    response = web.json_response({"ok": True})
    clear_auth_cookies(response)
    request[keys.COOKIES_SET] = True
    return response
