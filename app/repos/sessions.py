"""SQL for login sessions (refresh-token families) and refresh tokens."""

from __future__ import annotations

import datetime as dt

from app.repos.db import Database, Row, Tx


class SessionRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, tx: Tx, user_id: int, version: int, user_agent: str, ip: str) -> int:
        return await tx.execute(
            "INSERT INTO sessions (user_id, token_version, user_agent, ip) VALUES (%s, %s, %s, %s)",
            (user_id, version, user_agent[:255], ip[:45]),
        )

    async def add_token(
        self, tx: Tx, session_id: int, token_hash: str, issued_at: float, expires: dt.datetime
    ) -> int:
        return await tx.execute(
            "INSERT INTO refresh_tokens (session_id, token_hash, issued_at, expires_at)"
            " VALUES (%s, %s, %s, %s)",
            (session_id, token_hash, issued_at, expires),
        )

    async def token_for_update(self, tx: Tx, token_hash: str) -> Row | None:
        """The refresh token with its session and user, locked against a concurrent refresh."""
        return await tx.fetchone(
            "SELECT t.id, t.session_id, t.issued_at, t.expires_at, t.spent_at,"
            " s.user_id, s.token_version AS session_version, s.revoked_at,"
            " u.token_version AS user_version, u.disabled"
            " FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id"
            " JOIN users u ON u.id = s.user_id WHERE t.token_hash = %s FOR UPDATE",
            (token_hash,),
        )

    async def token_by_hash(self, tx: Tx, token_hash: str) -> Row | None:
        return await tx.fetchone(
            "SELECT id, session_id, issued_at, spent_at FROM refresh_tokens WHERE token_hash = %s",
            (token_hash,),
        )

    async def spend(self, tx: Tx, token_id: int) -> None:
        await tx.execute(
            "UPDATE refresh_tokens SET spent_at = UTC_TIMESTAMP(6) WHERE id = %s", (token_id,)
        )

    async def touch(self, tx: Tx, session_id: int) -> None:
        await tx.execute(
            "UPDATE sessions SET last_used_at = UTC_TIMESTAMP(6) WHERE id = %s", (session_id,)
        )

    async def revoke(self, session_id: int, reason: str) -> None:
        await self.db.execute(
            "UPDATE sessions SET revoked_at = COALESCE(revoked_at, UTC_TIMESTAMP(6)),"
            " revoked_reason = COALESCE(revoked_reason, %s) WHERE id = %s",
            (reason, session_id),
            idempotent=True,
        )

    async def revoke_all(self, user_id: int, reason: str) -> None:
        await self.db.execute(
            "UPDATE sessions SET revoked_at = UTC_TIMESTAMP(6), revoked_reason = %s"
            " WHERE user_id = %s AND revoked_at IS NULL",
            (reason, user_id),
            idempotent=True,
        )

    async def auth_state(self, session_id: int) -> Row | None:
        """What an access token is checked against: the session and its user, as they are now."""
        return await self.db.fetchone(
            "SELECT s.user_id, s.revoked_at, s.token_version AS session_version,"
            " u.token_version AS user_version, u.disabled, u.role, u.username"
            " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = %s",
            (session_id,),
        )

    async def purge_expired(self) -> int:
        return await self.db.rowcount(
            "DELETE FROM refresh_tokens WHERE expires_at < UTC_TIMESTAMP(6) - INTERVAL 1 DAY"
        )
