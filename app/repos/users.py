"""SQL for accounts."""

from __future__ import annotations

from typing import Any

from app.repos.db import Database, Row, Tx

COLUMNS = (
    "id, email, username, display_name, bio, role, disabled, token_version, avatar_image_id,"
    " created_at, updated_at"
)


class UserRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def by_id(self, user_id: int, tx: Tx | None = None) -> Row | None:
        """The user; inside a transaction, read through it (`tx`), never the pool."""
        return await (tx or self.db).fetchone(f"SELECT {COLUMNS} FROM users WHERE id = %s",
                                              (user_id,))

    async def by_username(self, username: str) -> Row | None:
        return await self.db.fetchone(
            f"SELECT {COLUMNS} FROM users WHERE username_canon = %s", (username.lower(),)
        )

    async def credentials(self, login: str, by_email: bool) -> Row | None:
        column = "email_canon" if by_email else "username_canon"
        return await self.db.fetchone(
            f"SELECT {COLUMNS}, password_hash FROM users WHERE {column} = %s", (login.lower(),)
        )

    async def password_hash(self, user_id: int) -> str | None:
        value = await self.db.fetchval("SELECT password_hash FROM users WHERE id = %s", (user_id,))
        return str(value) if value is not None else None

    async def find_existing(self, email: str, username: str, exclude: int = 0) -> Row | None:
        """Another account holding this email or username (the `exclude` id is not another)."""
        return await self.db.fetchone(
            "SELECT id, email_canon, username_canon FROM users"
            " WHERE (email_canon = %s OR username_canon = %s) AND id <> %s LIMIT 1",
            (email.lower(), username.lower(), exclude),
        )

    async def insert(
        self, tx: Tx, email: str, username: str, display_name: str, password_hash: str, role: str
    ) -> int:
        return await tx.execute(
            "INSERT INTO users (email, email_canon, username, username_canon, display_name,"
            " password_hash, role) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (email, email.lower(), username, username.lower(), display_name, password_hash, role),
        )

    async def update_profile(self, user_id: int, changes: dict[str, Any], tx: Tx | None = None
                             ) -> None:
        allowed = {"email", "username", "display_name", "bio"}
        sets, params = [], []
        for key, value in changes.items():
            if key not in allowed:
                raise ValueError(key)
            sets.append(f"{key} = %s")
            params.append(value)
            if key in ("email", "username"):
                sets.append(f"{key}_canon = %s")
                params.append(value.lower())
        if sets:
            await (tx or self.db).execute(
                f"UPDATE users SET {', '.join(sets)} WHERE id = %s", (*params, user_id)
            )

    async def set_password(self, user_id: int, password_hash: str) -> None:
        await self.db.execute(
            "UPDATE users SET password_hash = %s, token_version = token_version + 1 WHERE id = %s",
            (password_hash, user_id),
        )

    async def set_role(self, tx: Tx, user_id: int, role: str) -> int:
        return await tx.rowcount("UPDATE users SET role = %s WHERE id = %s", (role, user_id))

    async def set_disabled(self, tx: Tx, user_id: int, disabled: bool) -> int:
        # Disabling also bumps the token version, so every token of the account dies with it.
        return await tx.rowcount(
            "UPDATE users SET disabled = %s, token_version = token_version + %s WHERE id = %s",
            (int(disabled), int(disabled), user_id),
        )

    async def bump_token_version(self, user_id: int) -> None:
        await self.db.execute(
            "UPDATE users SET token_version = token_version + 1 WHERE id = %s", (user_id,)
        )

    async def delete(self, tx: Tx, user_id: int) -> int:
        return await tx.rowcount("DELETE FROM users WHERE id = %s", (user_id,))

    async def count_admins(self) -> int:
        return int(
            await self.db.fetchval("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0")
        )

    async def count(self) -> int:
        return int(await self.db.fetchval("SELECT COUNT(*) FROM users"))

    async def search(self, q: str, limit: int, offset: int) -> tuple[list[Row], int]:
        where, params = "", []
        if q:
            # A plain substring search for the admin list; LIKE wildcards in input are escaped.
            pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where = " WHERE username_canon LIKE %s OR email_canon LIKE %s OR LOWER(display_name) LIKE %s"
            params = [pattern, pattern, pattern]
        rows = await self.db.fetchall(
            f"SELECT {COLUMNS} FROM users{where} ORDER BY id LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )
        total = int(await self.db.fetchval(f"SELECT COUNT(*) FROM users{where}", params))
        return rows, total
