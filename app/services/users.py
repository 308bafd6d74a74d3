"""Accounts: creation, profiles, passwords and the admin's user management."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pymysql

from app import events
from app.config import Config
from app.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from app.repos.db import Database, Row, Tx
from app.repos.sessions import SessionRepo
from app.repos.users import UserRepo
from app.services import validation as v
from app.services.authstate import AuthStateCache
from app.services.indexer import user_changed
from app.services.security import check_password, hash_password

ROLES = ("member", "admin")


@dataclass(frozen=True)
class NewAccount:
    email: str
    username: str
    password: str
    display_name: str


def parse_new_account(body: dict[str, Any]) -> NewAccount:
    """Validate a registration body; fields a client may not set are simply not read."""
    errors = v.Fields()
    email = v.email(body.get("email"), errors)
    username = v.username(body.get("username"), errors)
    password = v.password(body.get("password"), errors)
    display = body.get("display_name")
    display_name = (
        v.clean_text(display, "display_name", errors, min_len=1, max_len=64)
        if display not in (None, "")
        else username
    )
    errors.check()
    return NewAccount(email, username, password, display_name)


class UserService:
    def __init__(self, db: Database, config: Config, authstate: AuthStateCache) -> None:
        self.db = db
        self.config = config
        self.repo = UserRepo(db)
        self.sessions = SessionRepo(db)
        self.authstate = authstate

    async def get(self, user_id: int) -> Row:
        row = await self.repo.by_id(user_id)
        if row is None:
            raise NotFound("No such user")
        return row

    async def exists(self, username: str) -> bool:
        """Whether an account has this username."""
        return await self.repo.by_username(username) is not None

    async def by_username(self, username: str) -> Row:
        row = await self.repo.by_username(username)
        if row is None:
            raise NotFound("No such user")
        return row

    async def create(self, account: NewAccount, role: str = "member",
                     actor_id: int | None = None) -> Row:
        """Create an account; 409 names the field already taken. With `actor_id` (an admin made
        it), the creation is audited."""
        await self._ensure_free(account.email, account.username)
        hashed = await hash_password(account.password, self.config.bcrypt_rounds)
        try:
            async with self.db.transaction() as tx:
                user_id = await self.repo.insert(
                    tx, account.email, account.username, account.display_name, hashed, role
                )
                if actor_id is not None:
                    await self._audit(tx, actor_id, "created", {"id": user_id,
                                      "username": account.username}, f"created {role}", {})
        except pymysql.err.IntegrityError as exc:  # lost a race with another registration
            await self._ensure_free(account.email, account.username)
            raise Conflict("That account already exists") from exc
        return await self.get(user_id)

    async def _ensure_free(self, email: str, username: str, exclude: int | None = None) -> None:
        # The caller's own row is excluded in SQL: with LIMIT 1 it could hide the real holder.
        existing = await self.repo.find_existing(email, username, exclude or 0)
        if existing is None:
            return
        field = "email" if existing["email_canon"] == email.lower() else "username"
        raise Conflict(f"That {field} is already taken", details={"field": field})

    async def update_profile(self, user_id: int, body: dict[str, Any]) -> tuple[Row, bool]:
        """Change profile fields and, with the current password, the password or email.

        Returns the user and whether the password changed (then every session was revoked)."""
        user = await self.get(user_id)
        errors = v.Fields()
        changes: dict[str, Any] = {}
        if "display_name" in body:
            changes["display_name"] = v.clean_text(
                body["display_name"], "display_name", errors, min_len=1, max_len=64
            )
        if "bio" in body:
            changes["bio"] = v.clean_text(body["bio"], "bio", errors, max_len=500)
        if "username" in body and body["username"] != user["username"]:
            changes["username"] = v.username(body["username"], errors)
        if "email" in body and body["email"] != user["email"]:
            changes["email"] = v.email(body["email"], errors)
        new_password = None
        if body.get("new_password") is not None or body.get("password") is not None:
            new_password = v.password(
                body.get("new_password", body.get("password")), errors, "new_password"
            )
        sensitive = new_password is not None or "email" in changes
        if sensitive and not isinstance(body.get("current_password"), str):
            errors.add("current_password", "required to change the email or password")
        errors.check()
        if sensitive:
            stored = await self.repo.password_hash(user_id)
            if stored is None or not await check_password(body["current_password"], stored):
                raise InvalidInput(
                    "The current password is wrong",
                    details={"fields": {"current_password": "is wrong"}},
                )
        if "email" in changes or "username" in changes:
            await self._ensure_free(
                str(changes.get("email", user["email"])),
                str(changes.get("username", user["username"])),
                exclude=user_id,
            )
        try:
            async with self.db.transaction() as tx:
                await self.repo.update_profile(user_id, changes, tx)
                if "username" in changes:  # their playlists' documents show it
                    await events.emit_many(tx, list(await user_changed(tx, user_id)))
        except pymysql.err.IntegrityError as exc:
            raise Conflict("That email or username is already taken") from exc
        if new_password is not None:
            await self.set_password(user_id, new_password)
        else:
            await self.authstate.forget_user(user_id)
        return await self.get(user_id), new_password is not None

    async def set_password(self, user_id: int, password: str) -> None:
        """Set a password and revoke every session of the account."""
        hashed = await hash_password(password, self.config.bcrypt_rounds)
        await self.repo.set_password(user_id, hashed)
        await self.sessions.revoke_all(user_id, "password")
        await self.authstate.forget_user(user_id)

    async def reset_password(self, username: str, password: str) -> Row:
        """The admin's rescue from the command line: a new password, every session ended."""
        errors = v.Fields()
        v.password(password, errors)
        errors.check()
        user = await self.by_username(username)
        await self.set_password(user["id"], password)
        async with self.db.transaction() as tx:
            await self._audit(tx, None, "password_reset", user, "reset the password of")
        return user

    async def list(self, q: str, limit: int, offset: int) -> tuple[list[Row], int]:
        return await self.repo.search(q.strip()[:100], limit, offset)

    async def _audit(self, tx: Tx, actor_id: int | None, action: str, user: Row, summary: str,
                     details: dict[str, Any] | None = None) -> None:
        """Every admin action on an account lands in the audit log (through the outbox)."""
        actor = await self.repo.by_id(actor_id, tx) if actor_id is not None else None
        await events.emit(tx, events.AdminAction(
            actor_id=actor_id, actor_username=actor["username"] if actor else "command line",
            action=f"user.{action}", target_type="user", target_id=user["id"],
            summary=f"{summary} {user['username']}", details=details or {},
        ))

    async def set_role(self, actor_id: int, user_id: int, role: Any) -> Row:
        if role not in ROLES:
            raise InvalidInput(details={"fields": {"role": "must be member or admin"}})
        user = await self.get(user_id)
        if user_id == actor_id and role != "admin":
            raise Forbidden("You cannot remove your own admin role")
        async with self.db.transaction() as tx:
            await self.repo.set_role(tx, user_id, role)
            await self._audit(tx, actor_id, "role_changed", user, f"made {role}:",
                              {"from": user["role"], "to": role})
        await self.authstate.forget_user(user_id)
        return await self.get(user_id)

    async def set_disabled(self, actor_id: int, user_id: int, disabled: Any) -> Row:
        if not isinstance(disabled, bool):
            raise InvalidInput(details={"fields": {"disabled": "must be true or false"}})
        user = await self.get(user_id)
        if user_id == actor_id and disabled:
            raise Forbidden("You cannot disable your own account")
        async with self.db.transaction() as tx:
            await self.repo.set_disabled(tx, user_id, disabled)
            await self._audit(tx, actor_id, "disabled" if disabled else "enabled", user,
                              "disabled" if disabled else "enabled")
        if disabled:
            await self.sessions.revoke_all(user_id, "disabled")
        await self.authstate.forget_user(user_id)
        return await self.get(user_id)

    async def delete(self, actor_id: int, user_id: int) -> Row:
        user = await self.get(user_id)
        if user_id == actor_id:
            raise Forbidden("You cannot delete your own account here")
        async with self.db.transaction() as tx:
            playlists = await user_changed(tx, user_id, deleting=True)
            await self.repo.delete(tx, user_id)
            await events.emit_many(tx, list(playlists))
            await self._audit(tx, actor_id, "deleted", user, "deleted", {"email": user["email"]})
        await self.authstate.forget_user(user_id)
        return user

    async def count(self) -> int:
        return await self.repo.count()

    async def has_admin(self) -> bool:
        return await self.repo.count_admins() > 0


def require_admin(principal: Any) -> None:
    """Admin rights are checked in the server, on every admin route and page."""
    if principal is None:
        raise Unauthenticated()
    if principal.role != "admin":
        raise Forbidden("Admins only")
