"""What every access token is checked against, cached in the key-value store.

Two entries per request, read in one round trip: the session (revoked?, its token version) and the
user (role, disabled, token version). Changes write MySQL first, then drop the entries; when the
store is down, MySQL answers instead, so revocations hold (fail closed).

The in-process memory of recent checks (`recall`/`remember`) also holds the app passwords that
/rest verified lately (app/services/app_passwords.py), so every change that drops it (a role
change, disabling, deleting, a revoked app password) ends their trust in this process too.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

from app.adapters.kv import KeyValue, KVUnavailable
from app.repos.db import Database
from app.repos.sessions import SessionRepo

TTL = 60.0
# Tokens verified in this process are trusted again for this long without a store round trip.
# A revocation made in this process drops them at once; one made by another process (the admin
# pages of a second server) takes effect here within this bound.
RECENT_TTL = 2.0
RECENT_MAX = 20_000


@dataclass(frozen=True)
class AuthState:
    user_id: int
    username: str
    role: str
    disabled: bool
    session_revoked: bool
    session_version: int
    user_version: int


class AuthStateCache:
    def __init__(self, db: Database, kv: KeyValue) -> None:
        self.kv = kv
        self.sessions = SessionRepo(db)
        self._recent: dict[str, tuple[float, Any]] = {}

    def recall(self, token: str) -> Any:
        """The principal of a token verified in the last RECENT_TTL seconds, if any."""
        hit = self._recent.get(token)
        if hit is None:
            return None
        if hit[0] <= time.monotonic():
            del self._recent[token]
            return None
        return hit[1]

    def remember(self, token: str, principal: Any, expires_at: int) -> None:
        if len(self._recent) >= RECENT_MAX:
            self._recent.clear()
        left = min(RECENT_TTL, expires_at - time.time())
        if left > 0:
            self._recent[token] = (time.monotonic() + left, principal)

    @staticmethod
    def _keys(session_id: int, user_id: int) -> list[str]:
        return [f"auth:s:{session_id}", f"auth:u:{user_id}"]

    async def get(self, session_id: int, user_id: int) -> AuthState | None:
        """The state of a session and its user, or None when the session does not exist."""
        keys = self._keys(session_id, user_id)
        try:
            cached = await self.kv.mget(keys)
        except KVUnavailable:
            cached = [None, None]
            use_cache = False
        else:
            use_cache = True
        if cached[0] is not None and cached[1] is not None:
            s, u = json.loads(cached[0]), json.loads(cached[1])
            if s["user_id"] == user_id:
                return AuthState(
                    user_id=user_id, username=u["username"], role=u["role"],
                    disabled=u["disabled"], session_revoked=s["revoked"],
                    session_version=s["version"], user_version=u["version"],
                )
        row = await self.sessions.auth_state(session_id)
        if row is None or row["user_id"] != user_id:
            return None
        state = AuthState(
            user_id=row["user_id"], username=row["username"], role=row["role"],
            disabled=bool(row["disabled"]), session_revoked=row["revoked_at"] is not None,
            session_version=int(row["session_version"]), user_version=int(row["user_version"]),
        )
        if use_cache:
            await self._store(session_id, state)
        return state

    async def _store(self, session_id: int, state: AuthState) -> None:
        s = {"user_id": state.user_id, "revoked": state.session_revoked,
             "version": state.session_version}
        u: dict[str, Any] = {"username": state.username, "role": state.role,
                             "disabled": state.disabled, "version": state.user_version}
        try:
            await self.kv.set(f"auth:s:{session_id}", json.dumps(s).encode(), TTL)
            await self.kv.set(f"auth:u:{state.user_id}", json.dumps(u).encode(), TTL)
        except KVUnavailable:
            pass

    def forget_recent(self) -> None:
        """Trust none of the credentials verified lately in this process (one was revoked: an app
        password, whose /rest checks are remembered here too)."""
        self._recent.clear()

    async def forget_session(self, session_id: int) -> None:
        self._recent.clear()
        try:
            await self.kv.delete(f"auth:s:{session_id}")
        except KVUnavailable:
            pass  # kept by the store adapter and sent once it answers again

    async def forget_user(self, user_id: int) -> None:
        self._recent.clear()
        with contextlib.suppress(KVUnavailable):
            await self.kv.delete(f"auth:u:{user_id}")
