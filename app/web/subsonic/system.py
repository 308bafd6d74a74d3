"""System methods: ping, getLicense, getOpenSubsonicExtensions (public) and tokenInfo; and the
extensions the core itself implements (form POST, API keys)."""

from __future__ import annotations

from app.web.subsonic.envelope import Payload
from app.web.subsonic.errors import MECHANISM_UNSUPPORTED, SubsonicError
from app.web.subsonic.registry import PUBLIC, Call, Methods

methods = Methods()
methods.extension("formPost", (1,))  # parameters in an x-www-form-urlencoded body (endpoint.py)
methods.extension("apiKeyAuthentication", (1,))  # apiKey = an app password, and tokenInfo


@methods.method("ping")
async def ping(call: Call) -> Payload:
    return {}


@methods.method("getLicense")
async def get_license(call: Call) -> Payload:
    # Free software: always licensed.
    return {"license": {"valid": True}}


@methods.method("getOpenSubsonicExtensions", access=PUBLIC)
async def get_open_subsonic_extensions(call: Call) -> Payload:
    return {"openSubsonicExtensions": [{"name": e.name, "versions": list(e.versions)}
                                       for e in call.api.extensions]}


@methods.method("tokenInfo")
async def token_info(call: Call) -> Payload:
    if call.mechanism != "apiKey":
        raise SubsonicError(MECHANISM_UNSUPPORTED,
                            "tokenInfo describes an API key: call it with apiKey, not u")
    return {"tokenInfo": {"username": call.user.username}}
