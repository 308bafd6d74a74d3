"""/api/openapi.json describes every API route, in OpenAPI 3.1."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from aiohttp.web_urldispatcher import DynamicResource, PlainResource

from app.config import Config
from app.main import create_app

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def _template(resource: object) -> str:
    info = resource.get_info()  # type: ignore[attr-defined]
    if isinstance(resource, PlainResource):
        return str(info["path"])
    assert isinstance(resource, DynamicResource), resource
    # aiohttp's formatter keeps `{id}` for `{id:\d+}`; strip any pattern to be sure.
    return re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", str(info["formatter"]))


def api_routes(client: TestClient) -> set[tuple[str, str]]:
    found = set()
    for route in client.app.router.routes():
        resource = route.resource
        if resource is None:
            continue
        path = _template(resource) if isinstance(resource, PlainResource | DynamicResource) else ""
        if not (path == "/api" or path.startswith("/api/")):
            continue
        method = route.method.lower()
        if method == "head":  # answered by the GET beside it
            continue
        found.add((method, path))
    return found


async def test_openapi_is_3_1_and_well_formed(client: TestClient) -> None:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200 and resp.content_type == "application/json"
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["paths"] and "Error" in doc["components"]["schemas"]
    operation_ids = []
    for path, item in doc["paths"].items():
        assert path.startswith("/api/") and ":" not in path, path
        for method, op in item.items():
            assert method in METHODS, (path, method)
            assert op["summary"] and op["operationId"] and op["responses"]
            operation_ids.append(op["operationId"])
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"\{(\w+)\}", path)), (method, path)
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"
    login = doc["paths"]["/api/auth/login"]["post"]
    assert login["security"] == [] and "requestBody" in login
    assert doc["paths"]["/api/user"]["get"]["x-sonora-role"] == "admin"


async def test_every_api_route_is_documented(client: TestClient) -> None:
    doc = await (await client.get("/api/openapi.json")).json()
    documented = {(m, p) for p, item in doc["paths"].items() for m in item}
    served = api_routes(client)
    assert ("get", "/api/user/me") in served and ("put", "/api/user/{id}/role") in served
    missing = served - documented
    assert not missing, f"API routes missing from /api/openapi.json: {sorted(missing)}"
    extra = documented - served
    assert not extra, f"documented but not served: {sorted(extra)}"


async def test_the_check_catches_an_undocumented_route(
    aiohttp_client: Any, config: Config
) -> None:
    app = create_app(config)

    async def hidden(request: web.Request) -> web.Response:
        return web.json_response({})

    app.router.add_get(r"/api/hidden/{id:\d+}", hidden)
    client = await aiohttp_client(app)
    doc = await (await client.get("/api/openapi.json")).json()
    documented = {(m, p) for p, item in doc["paths"].items() for m in item}
    assert api_routes(client) - documented == {("get", "/api/hidden/{id}")}
