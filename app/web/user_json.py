"""A user and a token pair as the API shows them (SPEC 5.0). The services hand over the account's
row; the avatar's URL is the web layer's to build."""

from __future__ import annotations

from aiohttp import web

from app.repos.db import Row
from app.services.auth import TokenPair
from app.services.types import PublicUser, Tokens
from app.services.validation import rfc3339
from app.web.links import links


def user_json(request: web.Request, row: Row, with_email: bool = False) -> PublicUser:
    """The user shape; the email and state only for oneself and admins."""
    avatar = row.get("avatar_image_id")
    out: PublicUser = {
        "id": row["id"],
        "username": row["username"],
        "display_name": row["display_name"],
        "role": row["role"],
        "avatar_url": links(request).image(avatar) if avatar else None,
        "bio": row.get("bio", ""),
        "created_at": rfc3339(row["created_at"]),
    }
    if with_email:
        out["email"] = row["email"]
        out["disabled"] = bool(row["disabled"])
    return out


def tokens_json(request: web.Request, pair: TokenPair) -> Tokens:
    """What registration, login and refresh answer: the user (as they see themselves) and tokens."""
    return {
        "user": user_json(request, pair.user, with_email=True),
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
    }
