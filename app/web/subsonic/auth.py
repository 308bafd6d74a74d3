"""Who is calling /rest: the decision table of SPEC 13, checked in this order.

| what the request carries                          | answer |
|---------------------------------------------------|--------|
| no `v` or no `c`                                  | 10     |
| a `v` that is not `major.minor[.patch]`           | 10     |
| a `v` newer than the server's 1.16 (1.17, 2.0…)   | 30     |
| a `v` older than 1.0 (0.9…)                       | 20     |
| `apiKey` together with any of `u`, `p`, `t`, `s`  | 43     |
| an `apiKey` that is no app password               | 44     |
| none of `apiKey`, `p`, `t`, `s`                   | 10     |
| `p` together with `t` or `s`                      | 43     |
| `t` without `s`, or `s` without `t`               | 10     |
| `p` or `t`+`s` without `u`                        | 10     |
| a wrong username or secret                        | 40     |

The version rule is the reference's (subsonic-versions): a server serves a client of the same major
version and a minor version no greater than its own; the third number does not count. Apps send
anything from 1.1.0 to 1.16.1, and all of that is served. Public methods (getOpenSubsonicExtensions,
which apps call to probe a server before they have credentials) check none of this.

A parameter counts as given when it has a non-empty value. The secret is an app password
(app/services/app_passwords.py), never the account's password: `p` as it is or `enc:` + hex
(either case), `t = md5(secret + s)` with any salt, or `apiKey`. The error 40 says where to make
one (`helpUrl` points at the /me page's "Apps and devices").

Failures are rate-limited with the login budgets (SPEC 5.4). Past a budget the answer is error 0,
not 40, with the time to wait in the message and a `Retry-After` header: 40 would make an app
tell its user that a right password is wrong (someone else's failures from the same address can
spend a budget), while 0 shows the message as it is.
"""

from __future__ import annotations

import binascii
import re

from aiohttp import web
from multidict import MultiDictProxy

from app.errors import Forbidden, RateLimited, Unauthenticated
from app.services.app_passwords import AppCaller
from app.web import keys
from app.web.params import client_ip, public_origin
from app.web.subsonic.envelope import PROTOCOL_VERSION
from app.web.subsonic.errors import (
    CLIENT_TOO_OLD,
    CONFLICTING_MECHANISMS,
    GENERIC,
    INVALID_API_KEY,
    MISSING_PARAMETER,
    SERVER_TOO_OLD,
    WRONG_CREDENTIALS,
    SubsonicError,
)

VERSION = re.compile(r"([0-9]{1,9})\.([0-9]{1,9})(?:\.[0-9]{1,9})?", re.ASCII)
SERVER_MAJOR, SERVER_MINOR = (int(n) for n in PROTOCOL_VERSION.split(".")[:2])
ME_SECTION = "apps"  # the id of the "Apps and devices" section of templates/me.html
WRONG_MESSAGE = (
    "Wrong username or password. Sonora does not accept your account password here: make an app"
    " password on your profile page (/me, \u201cApps and devices\u201d) and enter it in the app as"
    " the password")


def _given(values: MultiDictProxy[str], name: str) -> str | None:
    value = values.get(name)
    return value if value else None


def help_url(request: web.Request) -> str:
    """The /me page's "Apps and devices" section, as the client reached this server."""
    path = request.app.router["me_page"].url_for()
    return str(public_origin(request).join(path).with_fragment(ME_SECTION))


def check_version(v: str) -> None:
    """Nothing when this server serves protocol version `v`; else error 10 (not a version), 30
    (newer than the server's: the server must upgrade) or 20 (older: the client must)."""
    match = VERSION.fullmatch(v.strip())
    if match is None:
        raise SubsonicError(MISSING_PARAMETER, f"Parameter 'v' must be a protocol version such as"
                            f" {PROTOCOL_VERSION}, not {v[:20]!r}")
    major, minor = int(match[1]), int(match[2])
    if major > SERVER_MAJOR or (major == SERVER_MAJOR and minor > SERVER_MINOR):
        raise SubsonicError(SERVER_TOO_OLD, "Incompatible Subsonic REST protocol version. Server"
                            f" must upgrade. (This server speaks {PROTOCOL_VERSION}.)")
    if major < SERVER_MAJOR:
        raise SubsonicError(CLIENT_TOO_OLD, "Incompatible Subsonic REST protocol version. Client"
                            f" must upgrade. (This server speaks {PROTOCOL_VERSION}.)")


def decode_password(p: str) -> str | None:
    """`p` as sent: plain, or `enc:` followed by the hex of its UTF-8 bytes (either case).
    None when an `enc:` value does not decode (it is then a wrong password)."""
    if not p.startswith("enc:"):
        return p
    try:
        return bytes.fromhex(p[4:]).decode("utf-8")
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return None


async def authenticate(request: web.Request, values: MultiDictProxy[str]) -> tuple[AppCaller, str]:
    """The caller and how they authenticated ("password", "token" or "apiKey"), or a
    SubsonicError by the table above."""
    if not _given(values, "v") or not _given(values, "c"):
        raise SubsonicError(MISSING_PARAMETER,
                            "Parameters 'v' (protocol version) and 'c' (client name) are required")
    check_version(values.get("v") or "")
    client = values.get("c") or ""
    u, p, t, s = (_given(values, name) for name in ("u", "p", "t", "s"))
    api_key = _given(values, "apiKey")
    service = request.app[keys.APP_PASSWORDS]
    ip = client_ip(request)
    try:
        if api_key is not None:
            if u or p or t or s:
                raise SubsonicError(CONFLICTING_MECHANISMS,
                                    "apiKey cannot be combined with u, p, t or s")
            try:
                return await service.by_api_key(api_key, ip, client), "apiKey"
            except Unauthenticated:
                raise SubsonicError(
                    INVALID_API_KEY, "Invalid API key: use an app password made on your profile"
                    " page (/me, \u201cApps and devices\u201d)", help_url=help_url(request)) from None
        if not (p or t or s):
            raise SubsonicError(MISSING_PARAMETER,
                                "No credentials: send u with p, u with t and s, or apiKey")
        if p and (t or s):
            raise SubsonicError(CONFLICTING_MECHANISMS, "p cannot be combined with t or s")
        if bool(t) != bool(s):
            raise SubsonicError(MISSING_PARAMETER, "Token authentication needs both t and s")
        if not u:
            raise SubsonicError(MISSING_PARAMETER, "Required parameter 'u' is missing")
        try:
            if p is not None:
                password = decode_password(p)
                return await service.by_password(u, password or "", ip, client), "password"
            assert t is not None and s is not None  # checked above
            return await service.by_token(u, t, s, ip, client), "token"
        except Unauthenticated:
            raise SubsonicError(WRONG_CREDENTIALS, WRONG_MESSAGE,
                                help_url=help_url(request)) from None
    except Forbidden as exc:  # a disabled account with the right secret
        raise SubsonicError(WRONG_CREDENTIALS, exc.message) from None
    except RateLimited as exc:
        raise SubsonicError(
            GENERIC, f"Too many failed sign-ins from this address or for this account; try again"
            f" in {exc.retry_after} s", headers=exc.headers) from None
