"""Login, registration, token refresh with rotation, logout, and checking access tokens."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from app.adapters.kv import KeyValue
from app.config import Config
from app.errors import Forbidden, RateLimited, Unauthenticated
from app.repos.db import Database, Row
from app.repos.sessions import SessionRepo
from app.repos.users import UserRepo
from app.services.authstate import AuthStateCache
from app.services.ratelimit import RateLimiter
from app.services.security import (
    Signer,
    TokenError,
    check_password,
    hash_password_sync,
    new_refresh_token,
    now,
    token_hash,
)
from app.services.users import NewAccount, UserService

log = logging.getLogger(__name__)
INVALID_LOGIN = "Wrong username, email or password"


@dataclass(frozen=True)
class Principal:
    """Who is calling, as checked against the session and the user right now."""

    user_id: int
    session_id: int
    username: str
    role: str
    jti: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class TokenPair:
    """A new session's tokens, and its user (the API shows them as `Tokens`)."""

    user: Row
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: int


class AuthService:
    def __init__(
        self, db: Database, kv: KeyValue, config: Config, users: UserService,
        authstate: AuthStateCache,
    ) -> None:
        self.db = db
        self.config = config
        self.users = users
        self.repo = UserRepo(db)
        self.sessions = SessionRepo(db)
        self.authstate = authstate
        self.signer = Signer(config.secret_key, config.access_token_ttl)
        self.limits = RateLimiter(kv, config.namespace)
        # Compared against when the account does not exist, so both answers take as long.
        self._dummy_hash = hash_password_sync("not-a-real-password", config.bcrypt_rounds)

    async def register(self, account: NewAccount, ip: str, user_agent: str) -> TokenPair:
        if not self.config.open_registration:
            raise Forbidden("Registration is closed; ask an admin for an account")
        key = f"rl:register:{ip}"
        await self.limits.ensure_below(key, self.config.register_max_per_address)
        await self.limits.hit(key, 3600)
        user = await self.users.create(account)
        return await self._open_session(user, ip, user_agent)

    async def login(self, login: Any, password: Any, ip: str, user_agent: str) -> TokenPair:
        """Check credentials; unknown accounts and wrong passwords answer alike."""
        if not isinstance(login, str) or not isinstance(password, str) or not login or not password:
            raise Unauthenticated(INVALID_LOGIN, error="invalid_credentials")
        login = login.strip()[:254]
        limits, config = self.limits, self.config
        window = config.login_window_seconds
        # Three budgets (SPEC 5.4): per address, per account from one address, and per account
        # from all addresses together. The owner's right password from another address is not
        # stopped by someone else's failures, short of the (much larger) all-address budget.
        address_key = f"rl:login:ip:{ip}"
        await limits.ensure_below(address_key, config.login_max_failures_address)
        row = await self.repo.credentials(login, by_email="@" in login)
        # Counted per account, not per spelling: by email and by username share one budget.
        account = row["id"] if row else login.lower()
        account_key = f"rl:login:acct:{account}"
        pair_key = f"rl:login:acct-ip:{account}:{ip}"
        await limits.ensure_below(pair_key, config.login_max_failures_account_address)
        await limits.ensure_below(account_key, config.login_max_failures_account)
        stored = row["password_hash"] if row else self._dummy_hash
        ok = await check_password(password[:1024], stored)
        if not ok or row is None:
            await limits.hit(address_key, window)
            pair_count = await limits.hit(pair_key, window)
            count = await limits.hit(account_key, window)
            # Concurrent attempts all passed the checks above: the ones past a budget are 429.
            if (pair_count > config.login_max_failures_account_address
                    or count > config.login_max_failures_account):
                raise RateLimited(window)
            raise Unauthenticated(INVALID_LOGIN, error="invalid_credentials")
        if row["disabled"]:
            raise Forbidden("This account is disabled")
        await limits.reset(pair_key)
        await limits.reset(account_key)
        return await self._open_session(row, ip, user_agent)

    async def issue_for(self, user: Row, ip: str, user_agent: str) -> TokenPair:
        """A new session for a user already proven (after a password change)."""
        return await self._open_session(user, ip, user_agent)

    async def _open_session(self, user: Row, ip: str, user_agent: str) -> TokenPair:
        refresh = new_refresh_token()
        issued = now()
        async with self.db.transaction() as tx:
            session_id = await self.sessions.create(
                tx, user["id"], int(user["token_version"]), user_agent, ip
            )
            await self.sessions.add_token(
                tx, session_id, token_hash(refresh), issued, self._refresh_expiry(issued)
            )
        return self._pair(user, session_id, int(user["token_version"]), refresh, issued)

    def _refresh_expiry(self, issued: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(issued + self.config.refresh_token_ttl, dt.UTC).replace(
            tzinfo=None
        )

    def _pair(
        self, user: Row, session_id: int, version: int, refresh: str, issued: float
    ) -> TokenPair:
        access = self.signer.access_token(user["id"], session_id, version, issued, refresh)
        return TokenPair(user, access, refresh, self.config.access_token_ttl, session_id)

    async def refresh(self, refresh_token: Any) -> TokenPair:
        """Rotate a refresh token. A spent one replayed within the grace period gets the same
        successor pair; replayed later, it revokes its whole family."""
        if not isinstance(refresh_token, str) or not 16 <= len(refresh_token) <= 200:
            raise Unauthenticated("Invalid refresh token")
        successor = self.signer.successor_refresh(refresh_token)
        revoke_session: int | None = None
        async with self.db.transaction() as tx:
            row = await self.sessions.token_for_update(tx, token_hash(refresh_token))
            if row is None:
                raise Unauthenticated("Invalid refresh token")
            session_id = row["session_id"]
            dead = (
                row["revoked_at"] is not None
                or row["disabled"]
                or row["user_version"] != row["session_version"]
                or row["expires_at"] <= dt.datetime.now(dt.UTC).replace(tzinfo=None)
            )
            if dead:
                raise Unauthenticated("This session has ended; log in again")
            if row["spent_at"] is not None:
                spent_for = (
                    dt.datetime.now(dt.UTC).replace(tzinfo=None) - row["spent_at"]
                ).total_seconds()
                nxt = await self.sessions.token_by_hash(tx, token_hash(successor))
                if spent_for <= self.config.refresh_reuse_grace_seconds and nxt is not None:
                    issued = float(nxt["issued_at"])
                else:
                    revoke_session = session_id
            else:
                issued = now()
                await self.sessions.spend(tx, row["id"])
                await self.sessions.add_token(
                    tx, session_id, token_hash(successor), issued, self._refresh_expiry(issued)
                )
                await self.sessions.touch(tx, session_id)
        if revoke_session is not None:
            log.warning("refresh token reused after its grace period; session %s revoked",
                        revoke_session)
            await self.revoke_session(revoke_session, "reuse")
            raise Unauthenticated("This refresh token was already used; the session is revoked")
        user = await self.users.get(row["user_id"])
        return self._pair(user, session_id, int(row["session_version"]), successor, issued)

    async def revoke_session(self, session_id: int, reason: str) -> None:
        await self.sessions.revoke(session_id, reason)
        await self.authstate.forget_session(session_id)

    async def logout(self, principal: Principal) -> None:
        await self.revoke_session(principal.session_id, "logout")

    async def logout_refresh(self, refresh_token: str) -> None:
        """Logout by refresh token (a page whose access token has expired)."""
        async with self.db.transaction() as tx:
            row = await self.sessions.token_by_hash(tx, token_hash(refresh_token))
        if row is not None:
            await self.revoke_session(row["session_id"], "logout")

    async def logout_all(self, user_id: int) -> None:
        await self.repo.bump_token_version(user_id)
        await self.sessions.revoke_all(user_id, "logout-all")
        await self.authstate.forget_user(user_id)

    async def authenticate(self, token: str) -> Principal:
        """Check an access token against its session and user as they are now (as of at most
        `authstate.RECENT_TTL` seconds ago: see AuthStateCache.recall)."""
        recent: Principal | None = self.authstate.recall(token)
        if recent is not None:
            return recent
        try:
            claims = self.signer.decode_access(token)
        except TokenError as exc:
            raise Unauthenticated("Invalid or expired token") from exc
        state = await self.authstate.get(claims.session_id, claims.user_id)
        if (
            state is None
            or state.session_revoked
            or state.disabled
            or state.session_version != state.user_version
            or claims.version != state.user_version
        ):
            raise Unauthenticated("This token has been revoked")
        principal = Principal(
            user_id=claims.user_id, session_id=claims.session_id, username=state.username,
            role=state.role, jti=claims.jti,
        )
        self.authstate.remember(token, principal, claims.expires_at)
        return principal
