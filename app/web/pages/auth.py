"""Signing in, registering and signing out: `/login`, `/register`, `/logout`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from app.errors import Conflict, Forbidden, InvalidInput, RateLimited, Unauthenticated
from app.services.users import parse_new_account
from app.web import keys
from app.web.params import client_ip, user_agent
from app.web.render import field_errors, form_text, link, redirect, redirect_flash, render, safe_next
from app.web.session import REFRESH_COOKIE, clear_auth_cookies, set_auth_cookies

routes = web.RouteTableDef()


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
