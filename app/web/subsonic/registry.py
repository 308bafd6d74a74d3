"""The /rest method registry: how a Subsonic method plugs into Sonora.

Adding a method
    In a module of `app/web/subsonic/` (one per area, as `app/web/api/` has one per domain), make
    or reuse a table and decorate an async function taking a `Call`::

        methods = Methods()

        @methods.method("getGenres")
        async def get_genres(call: Call) -> Payload:
            genres = await call.app[keys.CATALOG].genres()
            return {"genres": {"genre": [{"value": g["name"], "songCount": g["songs"]}
                                         for g in genres]}}

    and list the table in `SUBSONIC_TABLES` in `app/main.py`. `/rest/getGenres` and
    `/rest/getGenres.view` then answer, GET or form POST, in every format. Names are matched
    exactly first, then without regard to case. Method modules share code through helpers in
    this package, never by importing each other (as the route modules do).

Access
    `access=USER` (the default) needs valid credentials (app/web/subsonic/auth.py: the decision
    table of SPEC 13); `access=ADMIN` also needs an admin, or the answer is error 50 before the
    method runs; `access=PUBLIC` runs with no credentials at all (`call.caller` is None; only
    getOpenSubsonicExtensions is public). `call.user` is the authenticated `AppCaller` (user id,
    username, role, app password id); `call.mechanism` says how it authenticated
    (`"password"`, `"token"` or `"apiKey"`).

Parameters
    `call.params` reads typed parameters (app/web/subsonic/params.py): `text(name)` (required:
    missing → error 10), `optional_text`, `texts(name)` (a repeated parameter, all its values),
    `integer(name, default, lo=, hi=, clamp=)` (not a number or out of bounds → error 10; with
    `clamp` a huge `size` is cut to the bound instead), `flag(name, default)` (true/false/1/0 in
    any case). `numeric_id(value, prefix)` turns an opaque id into its number, and an id that
    names nothing into error 70. Unknown parameters are ignored.

Answers
    Return a dict of what goes inside `subsonic-response` (`{"user": {...}}`, `{}` for an empty
    answer); `envelope.py` renders it as XML, JSON or JSONP by its rules (scalars are attributes,
    lists repeated elements and always JSON arrays, `value` an element's text, None left out).
    Binary methods (stream, download, getCoverArt) return a `web.StreamResponse` instead, sent as
    it is; their errors are still envelopes.

Errors
    Raise `SubsonicError(code, message)` (codes in `errors.py`), or let a service's domain error
    through: NotFound → 70, Forbidden → 50, InvalidInput → 10 (naming the fields), the rest → 0
    (`errors.from_app_error`). Any other exception is logged and answered as error 0: never a 500,
    never an HTML page.

Extensions
    `methods.extension(name, versions)` declares an OpenSubsonic extension the table implements;
    getOpenSubsonicExtensions lists those of every table, so it advertises exactly what is there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from app.web.subsonic.envelope import Payload
from app.web.subsonic.params import Params

if TYPE_CHECKING:
    from app.services.app_passwords import AppCaller

PUBLIC, USER, ADMIN = "public", "user", "admin"
MethodResult = Payload | web.StreamResponse
MethodHandler = Callable[["Call"], Awaitable[MethodResult]]


@dataclass(frozen=True)
class Method:
    name: str
    handler: MethodHandler
    access: str


@dataclass(frozen=True)
class Extension:
    """An OpenSubsonic extension, as getOpenSubsonicExtensions lists it."""

    name: str
    versions: tuple[int, ...]


@dataclass
class Call:
    """One call of a method: the request, its parameters and who made it."""

    request: web.Request
    params: Params
    caller: AppCaller | None
    mechanism: str  # "password", "token", "apiKey", or "none" for a public method
    api: SubsonicApi

    @property
    def app(self) -> web.Application:
        """The application, whose keys (app/web/keys.py) hold the services."""
        return self.request.app

    @property
    def user(self) -> AppCaller:
        """The authenticated caller (every method but the public ones has one)."""
        if self.caller is None:
            raise RuntimeError("a public method has no caller")
        return self.caller


class Methods:
    """A table of /rest methods (as `ApiRoutes` is for /api): `@methods.method(name)`."""

    def __init__(self) -> None:
        self.items: list[Method] = []
        self.extensions: list[Extension] = []

    def method(self, name: str, *, access: str = USER) -> Callable[[MethodHandler], MethodHandler]:
        if access not in (PUBLIC, USER, ADMIN):
            raise ValueError(f"unknown access {access!r}")

        def register(handler: MethodHandler) -> MethodHandler:
            self.items.append(Method(name, handler, access))
            return handler
        return register

    def extension(self, name: str, versions: tuple[int, ...]) -> None:
        self.extensions.append(Extension(name, versions))


@dataclass
class SubsonicApi:
    """Every method of the tables given, found by name, and the extensions they implement."""

    tables: list[Methods]
    server_version: str
    methods: dict[str, Method] = field(init=False)
    extensions: list[Extension] = field(init=False)
    _folded: dict[str, Method] = field(init=False)

    def __post_init__(self) -> None:
        self.methods = {}
        for table in self.tables:
            for method in table.items:
                if method.name in self.methods:
                    raise ValueError(f"/rest method {method.name} is registered twice")
                self.methods[method.name] = method
        self._folded = {name.lower(): method for name, method in self.methods.items()}
        self.extensions = sorted((e for t in self.tables for e in t.extensions),
                                 key=lambda e: e.name)

    def find(self, name: str) -> Method | None:
        return self.methods.get(name) or self._folded.get(name.lower())
