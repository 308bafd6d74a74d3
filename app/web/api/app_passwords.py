"""/api/user/me/app-passwords: one's app passwords for the Subsonic API at /rest (SPEC 13)."""

from __future__ import annotations

from aiohttp import web

from app.web import keys
from app.web.params import json_body, path_id, require_user
from app.web.routing import ApiRoutes, obj

routes = ApiRoutes("users")


@routes.get("/api/user/me/app-passwords", name="api_app_passwords",
            summary="Your app passwords for Subsonic apps at /rest: `{items: [{id, label,"
                    " created_at, last_used_at, last_client}]}`, never their secrets")
async def list_app_passwords(request: web.Request) -> web.Response:
    principal = require_user(request)
    items = await request.app[keys.APP_PASSWORDS].for_user(principal.user_id)
    return web.json_response({"items": items})


@routes.post("/api/user/me/app-passwords", name="api_app_password_create",
             summary="Make an app password labelled for its device: 201 `{id, label, password,"
                     " created_at}`; `password` is in this answer only",
             body=obj(["label"], label={"type": "string", "minLength": 1, "maxLength": 64}),
             status=201)
async def create_app_password(request: web.Request) -> web.Response:
    principal = require_user(request)
    created = await request.app[keys.APP_PASSWORDS].create(principal.user_id,
                                                           await json_body(request))
    return web.json_response(created, status=201, headers={"Cache-Control": "no-store"})


@routes.delete(r"/api/user/me/app-passwords/{id:[0-9]+}", name="api_app_password_delete",
               summary="Revoke one of your app passwords: it fails from the next request on",
               status=204)
async def delete_app_password(request: web.Request) -> web.Response:
    principal = require_user(request)
    await request.app[keys.APP_PASSWORDS].revoke(principal.user_id, path_id(request))
    return web.Response(status=204)
