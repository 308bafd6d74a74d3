"""Route tables that carry their own OpenAPI description, so no API route goes undocumented."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class ApiRoute:
    method: str
    path: str
    handler: Handler
    name: str
    summary: str
    tag: str
    auth: str  # "public", "user" or "admin"
    body: dict[str, Any] | None = None
    status: int = 200
    params: list[dict[str, Any]] = field(default_factory=list)


class ApiRoutes:
    """A domain's API routes; `@routes.get(path, name=..., summary=...)` registers and documents."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.items: list[ApiRoute] = []

    def route(
        self, method: str, path: str, *, name: str, summary: str, auth: str = "user",
        body: dict[str, Any] | None = None, status: int = 200,
        params: list[dict[str, Any]] | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.items.append(ApiRoute(method, path, handler, name, summary, self.tag, auth,
                                       body, status, params or []))
            return handler
        return register

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)

    def install(self, app: web.Application) -> None:
        for r in self.items:
            app.router.add_route(r.method, r.path, r.handler, name=r.name)


def obj(required: list[str] | None = None, /, **props: Any) -> dict[str, Any]:
    """A JSON-schema object, for describing request bodies tersely."""
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
PAGING = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
]
