"""SQL for app passwords (sql/0009): the owner's list, and the reads that authenticate /rest."""

from __future__ import annotations

from app.repos.db import Database, Row

LISTED = "id, label, created_at, last_used_at, last_client"
# What a successful check needs of the owner, read in the same statement (never from a cache
# older than the statement): a disabled account fails at once.
OWNER = "u.id AS user_id, u.username, u.username_canon, u.role, u.disabled"


class AppPasswordRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def of_user(self, user_id: int) -> list[Row]:
        return await self.db.fetchall(
            f"SELECT {LISTED} FROM app_passwords WHERE user_id = %s ORDER BY id", (user_id,)
        )

    async def count(self, user_id: int) -> int:
        return int(await self.db.fetchval(
            "SELECT COUNT(*) FROM app_passwords WHERE user_id = %s", (user_id,)
        ))

    async def get(self, app_password_id: int) -> Row | None:
        return await self.db.fetchone(
            f"SELECT {LISTED}, user_id FROM app_passwords WHERE id = %s", (app_password_id,)
        )

    async def insert(self, user_id: int, label: str, lookup_hash: str, secret_box: str) -> int:
        return await self.db.execute(
            "INSERT INTO app_passwords (user_id, label, lookup_hash, secret_box)"
            " VALUES (%s, %s, %s, %s)",
            (user_id, label, lookup_hash, secret_box),
        )

    async def delete(self, user_id: int, app_password_id: int) -> int:
        """Delete one of the user's app passwords; 0 when it is not theirs (or gone)."""
        return await self.db.rowcount(
            "DELETE FROM app_passwords WHERE id = %s AND user_id = %s",
            (app_password_id, user_id), idempotent=True,
        )

    async def by_lookup(self, lookup_hash: str) -> Row | None:
        """The app password with this keyed hash, with its owner as they are now."""
        return await self.db.fetchone(
            f"SELECT a.id, {OWNER} FROM app_passwords a JOIN users u ON u.id = a.user_id"
            " WHERE a.lookup_hash = %s",
            (lookup_hash,),
        )

    async def boxes_of(self, username: str) -> list[Row]:
        """Every app password of an account (by username, any case) with its encrypted secret and
        the owner as they are now: token authentication tries each."""
        return await self.db.fetchall(
            f"SELECT a.id, a.secret_box, {OWNER} FROM users u"
            " JOIN app_passwords a ON a.user_id = u.id WHERE u.username_canon = %s ORDER BY a.id",
            (username.lower(),),
        )

    async def touch(self, app_password_id: int, client: str) -> None:
        await self.db.execute(
            "UPDATE app_passwords SET last_used_at = UTC_TIMESTAMP(6), last_client = %s"
            " WHERE id = %s",
            (client, app_password_id), idempotent=True,
        )
