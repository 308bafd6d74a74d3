"""Builds the OpenAPI 3.1 description from the route tables."""

from __future__ import annotations

import re
from typing import Any

from app.web.routing import ApiRoutes

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}
ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


# Answers an operation gives besides its success status and the 4XX errors, by operation id.
AUDIO = {"audio/*": {"schema": {"type": "string", "format": "binary"}}}
# Request bodies a route takes beside JSON: the play report as `navigator.sendBeacon` sends it
# when a page is left (a beacon cannot set headers, so its CSRF token travels in the form).
EXTRA_BODIES: dict[str, dict[str, Any]] = {
    "api_play": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object", "required": ["song_id", "played_ms", "play_id"],
        "properties": {"song_id": {"type": "integer"}, "played_ms": {"type": "integer"},
                       "play_id": {"type": "string"}, "csrf_token": {"type": "string"}},
    }}},
}

EXTRA_RESPONSES: dict[str, dict[str, Any]] = {
    "api_stream": {
        "200": {"description": "The whole file", "content": AUDIO},
        "206": {"description": "The requested byte range (several ranges: multipart/byteranges)",
                "content": {**AUDIO, "multipart/byteranges": {
                    "schema": {"type": "string", "format": "binary"}}}},
        "304": {"description": "Not modified (If-None-Match / If-Modified-Since held)"},
    },
}


def build(tables: list[ApiRoutes], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for table in tables:
        for r in table.items:
            path = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", r.path)
            params = [
                {"name": name, "in": "path", "required": True,
                 "schema": {"type": "integer", "minimum": 1} if name.endswith("id")
                 else {"type": "string"}}
                for name in re.findall(r"\{(\w+)\}", path)
            ] + r.params
            op: dict[str, Any] = {
                "operationId": r.name,
                "summary": r.summary,
                "tags": [r.tag],
                "responses": {
                    str(r.status): {"description": "Success"},
                    "4XX": {"description": "Error", "content": ERROR_CONTENT},
                },
            }
            op["responses"].update(EXTRA_RESPONSES.get(r.name, {}))
            if params:
                op["parameters"] = params
            if r.auth == "public":
                op["security"] = []
            else:
                op["x-sonora-role"] = r.auth
            if r.body is not None:
                op["requestBody"] = {"content": {"application/json": {"schema": r.body},
                                                 **EXTRA_BODIES.get(r.name, {})}}
            paths.setdefault(path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Sonora API", "version": version,
                 "description": "Self-hosted music streaming. Errors share one shape."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "sonora_access"},
            },
        },
        "security": [{"bearer": []}, {"cookie": []}],
    }
