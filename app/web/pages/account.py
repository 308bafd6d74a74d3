"""One's own profile and settings: `/me` (profile, email, password, signing out everywhere, and
the app passwords of "Apps and devices" for the Subsonic API at /rest)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.errors import Conflict, InvalidInput, NotFound
from app.web import keys
from app.web.params import client_ip, path_id, public_origin, require_user, user_agent
from app.web.render import (
    CURRENT_USER,
    error_line,
    field_errors,
    form_text,
    link,
    redirect_flash,
    render,
)
from app.web.session import (
    clear_auth_cookies,
    set_auth_cookies,
)

routes = web.RouteTableDef()


async def _me_page(request: web.Request, status: int = 200, **forms: Any) -> web.Response:
    principal = require_user(request)
    user = await request.app[keys.USERS].get(principal.user_id)
    request[CURRENT_USER] = user
    context: dict[str, Any] = {
        "user": user,
        "profile": {"values": {"display_name": user["display_name"], "bio": user["bio"]},
                    "errors": {}},
        "email_form": {"values": {"email": user["email"]}, "errors": {}},
        "password_form": {"errors": {}},
        "app_form": {"values": {"label": ""}, "errors": {}},
        "app_passwords": await request.app[keys.APP_PASSWORDS].for_user(principal.user_id),
        "new_app_password": None,
        # What an app asks for as the server: where this browser reached Sonora.
        "server_address": str(public_origin(request)),
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


@routes.post("/me/app-passwords", name="me_app_password_create")
async def me_app_password_create(request: web.Request) -> web.Response:
    principal = require_user(request)
    form = await request.post()
    values = {"label": form_text(form, "label", 300)}
    try:
        created = await request.app[keys.APP_PASSWORDS].create(principal.user_id, values)
    except (InvalidInput, Conflict) as exc:
        errors = field_errors(exc) if isinstance(exc, InvalidInput) else {"label": exc.message}
        return await _me_page(request, exc.status, app_form={"values": values, "errors": errors})
    # Shown in this answer and never again: no redirect, which would have to carry the secret.
    return await _me_page(request, new_app_password=created)


@routes.post(r"/me/app-passwords/{id:[0-9]+}/revoke", name="me_app_password_revoke")
async def me_app_password_revoke(request: web.Request) -> web.Response:
    principal = require_user(request)
    service = request.app[keys.APP_PASSWORDS]
    target = link(request, "me_page") + "#apps"
    try:
        revoked = await service.get(principal.user_id, path_id(request))
        await service.revoke(principal.user_id, revoked["id"])
    except NotFound as exc:
        return redirect_flash(request, target, error_line(exc), "error")
    return redirect_flash(request, target,
                          f"Revoked \u201c{revoked['label']}\u201d: the app using it is signed out.")
