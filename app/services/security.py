"""Password hashing, JWT access tokens, refresh tokens and signatures."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import bcrypt
import jwt

ISSUER = "sonora"
AUDIENCE = "sonora-api"
ALGORITHM = "HS256"


def _prehash(password: str) -> bytes:
    # bcrypt reads only 72 bytes; a SHA-256 digest first makes every byte of the password count.
    # base64 keeps NUL bytes out of what bcrypt sees.
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def hash_password_sync(password: str, rounds: int) -> str:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode()


def check_password_sync(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(_prehash(password), hashed.encode())
    except ValueError:
        return False


async def hash_password(password: str, rounds: int) -> str:
    """bcrypt in an executor thread (~270 ms at cost 12), never on the event loop."""
    return await asyncio.get_running_loop().run_in_executor(
        None, hash_password_sync, password, rounds
    )


async def check_password(password: str, hashed: str) -> bool:
    """Compare a password with its hash in an executor thread."""
    return await asyncio.get_running_loop().run_in_executor(
        None, check_password_sync, password, hashed
    )


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    session_id: int
    version: int
    jti: str
    issued_at: int
    expires_at: int


class TokenError(Exception):
    """A token is malformed, forged, expired or of the wrong kind."""


class Signer:
    """Everything derived from the secret key."""

    def __init__(self, secret_key: str, access_ttl: int) -> None:
        self.key = secret_key.encode()
        self.access_ttl = access_ttl

    def _mac(self, purpose: str, value: str) -> bytes:
        return hmac.new(self.key, f"{purpose}:{value}".encode(), hashlib.sha256).digest()

    def access_token(
        self, user_id: int, session_id: int, version: int, issued_at: float, seed: str
    ) -> str:
        """An access JWT; the same inputs always give the same token (grace-period replays)."""
        iat = int(issued_at)
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(user_id),
            "sid": session_id,
            "ver": version,
            "typ": "access",
            "jti": base64.urlsafe_b64encode(self._mac("jti", seed)[:16]).decode().rstrip("="),
            "iat": iat,
            "exp": iat + self.access_ttl,
        }
        return jwt.encode(claims, self.key, algorithm=ALGORITHM)

    def decode_access(self, token: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "jti", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(str(exc)) from exc
        if claims.get("typ") != "access":
            raise TokenError("not an access token")
        try:
            return AccessClaims(
                user_id=int(claims["sub"]),
                session_id=int(claims["sid"]),
                version=int(claims["ver"]),
                jti=str(claims["jti"]),
                issued_at=int(claims["iat"]),
                expires_at=int(claims["exp"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TokenError("malformed claims") from exc

    def successor_refresh(self, refresh_token: str) -> str:
        """The refresh token that follows this one: derived, so a replay in the grace period
        can hand back the very same pair without storing any token in clear."""
        return base64.urlsafe_b64encode(self._mac("refresh-next", refresh_token)).decode().rstrip("=")

    def sign(self, purpose: str, value: str) -> str:
        return base64.urlsafe_b64encode(self._mac(purpose, value)).decode().rstrip("=")

    def verify(self, purpose: str, value: str, signature: str) -> bool:
        return hmac.compare_digest(self.sign(purpose, value), signature)


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Refresh tokens are stored only as this digest."""
    return hashlib.sha256(token.encode()).hexdigest()


def now() -> float:
    return time.time()


def random_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def claims_dict(c: AccessClaims) -> dict[str, Any]:
    return {"user_id": c.user_id, "session_id": c.session_id, "jti": c.jti}
