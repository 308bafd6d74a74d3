"""/admin/users: user management (roles, disabling, deletion with a confirmation page, new
accounts). Every handler checks admin rights first, in the server; the forms work without
JavaScript."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.services.users import ROLES, parse_new_account
from app.web import keys
from app.web.admin_lists import confirm_delete, list_page
from app.web.params import path_id, require_admin
from app.web.render import (
    back_to_list,
    error_line,
    field_errors,
    form_summary,
    form_text,
    redirect_flash,
    render,
)

routes = web.RouteTableDef()


@routes.get("/admin/users", name="admin_users")
async def users_list(request: web.Request) -> web.Response:
    require_admin(request)
    return await list_page(request, "admin_users", "admin/users.html", "users",
                           request.app[keys.USERS].list, roles=ROLES)


async def _act(request: web.Request, action: str) -> web.Response:
    """Run one user-management action from a list-row form and go back with a flash message."""
    admin = require_admin(request)
    user_id = path_id(request)
    form = await request.post()
    back = back_to_list(request, form.get("back"), "admin_users")
    users = request.app[keys.USERS]
    try:
        if action == "role":
            user = await users.set_role(admin.user_id, user_id, form.get("role"))
            message = f"{user['username']} is now {'an admin' if user['role'] == 'admin' else 'a member'}."
        elif action == "disabled":
            user = await users.set_disabled(admin.user_id, user_id, form.get("disabled") == "1")
            message = f"{user['username']} is {'disabled' if user['disabled'] else 'enabled'}."
        else:
            user = await users.delete(admin.user_id, user_id)
            message = f"{user['username']} has been deleted."
    except NotFound:
        return redirect_flash(request, back, "That user no longer exists.", "error")
    except (Forbidden, InvalidInput) as exc:
        return redirect_flash(request, back, error_line(exc), "error")
    return redirect_flash(request, back, message)


@routes.post(r"/admin/users/{id:[0-9]+}/role", name="admin_user_role")
async def user_role(request: web.Request) -> web.Response:
    return await _act(request, "role")


@routes.post(r"/admin/users/{id:[0-9]+}/disabled", name="admin_user_disabled")
async def user_disabled(request: web.Request) -> web.Response:
    return await _act(request, "disabled")


@routes.get(r"/admin/users/{id:[0-9]+}/delete", name="admin_user_delete_confirm")
async def user_delete_confirm(request: web.Request) -> web.Response:
    admin = require_admin(request)
    user = await request.app[keys.USERS].get(path_id(request))
    return await confirm_delete(request, "user", user, "admin_users",
                                is_self=user["id"] == admin.user_id)


@routes.post(r"/admin/users/{id:[0-9]+}/delete", name="admin_user_delete")
async def user_delete(request: web.Request) -> web.Response:
    return await _act(request, "delete")


def _new_user_context(values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                      error: str | None = None) -> dict[str, Any]:
    return {
        "values": {"email": "", "username": "", "display_name": "", "role": "member",
                   **(values or {})},
        "errors": errors or {}, "error": error, "roles": ROLES,
    }


@routes.get("/admin/users/new", name="admin_user_new")
async def user_new(request: web.Request) -> web.Response:
    require_admin(request)
    return await render(request, "admin/user_new.html", _new_user_context())


@routes.post("/admin/users/new", name="admin_user_create")
async def user_create(request: web.Request) -> web.Response:
    admin = require_admin(request)
    form = await request.post()
    values = {k: form_text(form, k, 300) for k in ("email", "username", "display_name", "role")}
    role = values["role"] if values["role"] in ROLES else "member"
    try:
        account = parse_new_account({**values, "password": form_text(form, "password", 1024)})
        user = await request.app[keys.USERS].create(account, role=role, actor_id=admin.user_id)
    except (InvalidInput, Conflict) as exc:
        errors: dict[str, str] = {}
        if isinstance(exc, InvalidInput):
            errors = field_errors(exc)
        else:
            field = str((exc.details or {}).get("field", ""))
            errors = {field: "is already taken"} if field else {}
        return await render(request, "admin/user_new.html",
                            _new_user_context(values, errors, form_summary(exc)), status=exc.status)
    return redirect_flash(request, str(request.app.router["admin_users"].url_for().with_query(
        q=user["username"])), f"Account {user['username']} created.")
