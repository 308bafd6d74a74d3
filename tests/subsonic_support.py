"""Helpers for the /rest tests: app passwords, credentials in every mode, calling a method, every
`f=json` answer validated against the OpenSubsonic schemas, and XML answers compared with JSON.

The schemas are the reference's (`shared/opensubsonic/openapi/` beside the checkout or a folder
above it, or beside the checkout a clone was made from, or `SONORA_OPENSUBSONIC` naming the
`opensubsonic` folder), read at test time and never copied into the repository. When the reference is missing, every test that validates fails, loudly.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema_rs
from aiohttp.test_utils import TestClient
from conftest import Account

ROOT = Path(__file__).resolve().parent.parent


def _reference() -> Path:
    """Where the OpenSubsonic reference is: SONORA_OPENSUBSONIC, else `shared/opensubsonic`
    beside the checkout or beside any folder above it, else beside the checkout this one was
    cloned from (a clone made elsewhere for a clean run). The first candidate when none has it,
    so the error names where it was looked for."""
    if os.environ.get("SONORA_OPENSUBSONIC"):
        return Path(os.environ["SONORA_OPENSUBSONIC"])
    candidates = [folder / "shared" / "opensubsonic" for folder in ROOT.parents]
    try:
        origin = subprocess.run(["git", "-C", str(ROOT), "remote", "get-url", "origin"],  # noqa: S603,S607
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        origin = ""
    if origin and Path(origin).is_dir():
        candidates += [folder / "shared" / "opensubsonic" for folder in Path(origin).resolve().parents]
    return next((c for c in candidates if (c / "openapi").is_dir()), candidates[0])


REFERENCE = _reference()
NS = "http://subsonic.org/restapi"
CLIENT = "sonora-tests"
BASE = {"v": "1.16.1", "c": CLIENT}
Params = Sequence[tuple[str, str]] | Mapping[str, str]


# ---------------------------------------------------------------- app passwords and credentials


async def new_app_password(client: TestClient, account: Account, label: str = "test device") -> str:
    """An app password of `account`, made through the API; returns its secret."""
    resp = await client.post("/api/user/me/app-passwords", json={"label": label},
                             headers=account.headers)
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["password"])


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def token_params(username: str, secret: str, salt: str) -> dict[str, str]:
    return {"u": username, "t": md5_hex(secret + salt), "s": salt}


def credentials(mode: str, username: str, secret: str) -> dict[str, str]:
    """The parameters of one auth mode: p, enc (lower-case hex), ENC (upper-case hex), token (a
    six-character salt) or apiKey."""
    if mode == "p":
        return {"u": username, "p": secret}
    if mode == "enc":
        return {"u": username, "p": "enc:" + secret.encode().hex()}
    if mode == "ENC":
        return {"u": username, "p": "enc:" + secret.encode().hex().upper()}
    if mode == "token":
        return token_params(username, secret, "c19b2d")
    if mode == "apiKey":
        return {"apiKey": secret}
    raise ValueError(mode)


# ---------------------------------------------------------------- calling /rest


def _items(params: Params) -> list[tuple[str, str]]:
    return list(params.items()) if isinstance(params, Mapping) else list(params)


async def call(client: TestClient, method: str, params: Params, *, fmt: str | None = "json",
               post: bool = False, view: bool = False, headers: Mapping[str, str] | None = None
               ) -> tuple[int, str, str]:
    """One request: GET with a query string, or POST with the parameters in a form body.
    Returns (status, content type, body text)."""
    items = _items(params)
    if fmt is not None and not any(k == "f" for k, _ in items):
        items.append(("f", fmt))
    path = f"/rest/{method}.view" if view else f"/rest/{method}"
    if post:
        resp = await client.post(path, data=items, headers=headers)
    else:
        resp = await client.get(path, params=items, headers=headers)
    return resp.status, resp.content_type, await resp.text()


async def call_json(client: TestClient, method: str, params: Params, *, post: bool = False,
                    view: bool = False, schema_method: str | None = None,
                    headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`f=json`: checked against the reference's schema of `method` (or of `schema_method`, for
    a method the reference does not have); returns the inside of `subsonic-response`."""
    status, content_type, text = await call(client, method, params, post=post, view=view,
                                            headers=headers)
    assert status == 200, text
    assert content_type == "application/json", content_type
    body = json.loads(text)
    assert_valid(schema_method or method, body)
    inner = body["subsonic-response"]
    assert inner["version"] == "1.16.1" and inner["type"] == "sonora"
    assert inner["openSubsonic"] is True and inner["serverVersion"]
    return dict(inner)


async def call_both(client: TestClient, method: str, params: Params, **kw: Any) -> dict[str, Any]:
    """The JSON answer (validated) and the XML answer to the same request, which must carry the
    same data; returns the JSON one."""
    inner = await call_json(client, method, params, **kw)
    status, content_type, text = await call(client, method, params, fmt=None,
                                            post=kw.get("post", False), view=kw.get("view", False))
    assert status == 200 and content_type == "text/xml", (status, content_type)
    assert_xml_matches_json(text, {"subsonic-response": inner})
    return inner


def error_of(inner: Mapping[str, Any]) -> tuple[int, str]:
    assert inner["status"] == "failed", inner
    return int(inner["error"]["code"]), str(inner["error"].get("message", ""))


# ---------------------------------------------------------------- the reference's schemas


def _reference() -> Path:
    openapi = REFERENCE / "openapi" / "openapi.json"
    if not openapi.is_file():
        raise AssertionError(
            f"the OpenSubsonic reference is missing: {openapi} does not exist. The /rest answers"
            " are validated against it; put shared/opensubsonic beside the checkout or set"
            " SONORA_OPENSUBSONIC to its folder")
    return openapi


@functools.cache
def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _retrieve(uri: str) -> Any:
    return _load(Path(unquote(urlsplit(uri).path)))


def _follow(base: Path, ref: str) -> tuple[Path, Any]:
    """A `$ref` from the file `base`: the file it names and the value it points at."""
    file_part, _, pointer = ref.partition("#")
    path = (base.parent / file_part).resolve() if file_part else base
    value = _load(path)
    for part in [p for p in pointer.split("/") if p]:
        value = value[part.replace("~1", "/").replace("~0", "~")]
    return path, value


@functools.cache
def response_schema(method: str) -> tuple[Path, dict[str, Any]]:
    """The JSON schema of `method`'s answer (success or failure) and the file it is read from."""
    openapi = _reference()
    paths = _load(openapi)["paths"]
    assert f"/rest/{method}" in paths, f"the reference has no method {method}"
    base, item = openapi, paths[f"/rest/{method}"]
    if "$ref" in item:
        base, item = _follow(base, item["$ref"])
    response = item["get"]["responses"]["200"]
    if "$ref" in response:
        base, response = _follow(base, response["$ref"])
    return base, response["content"]["application/json"]["schema"]


@functools.cache
def _validator(method: str) -> Any:
    base, schema = response_schema(method)
    return jsonschema_rs.validator_for(schema, base_uri=base.as_uri(), retriever=_retrieve,
                                       validate_formats=True)


def assert_valid(method: str, body: Any) -> None:
    """`body` (a whole `f=json` answer) is valid for `method`'s schema in the reference. On a
    failure, the errors against each branch (success, failure) are shown."""
    if _validator(method).is_valid(body):
        return
    base, schema = response_schema(method)
    if "$ref" in schema:
        base, schema = _follow(base, schema["$ref"])
    branches = schema.get("properties", {}).get("subsonic-response", {}).get("oneOf", [])
    report = []
    for branch in branches:
        branch_base, branch_schema = _follow(base, branch["$ref"]) if "$ref" in branch else (base, branch)
        validator = jsonschema_rs.validator_for(branch_schema, base_uri=branch_base.as_uri(),
                                                retriever=_retrieve, validate_formats=True)
        errors = [f"{list(e.instance_path)}: {e.message}"
                  for e in validator.iter_errors(body.get("subsonic-response"))]
        report.append(f"{branch.get('$ref', 'branch')}: {errors[:5]}")
    raise AssertionError(f"{method} answer does not match the reference schema:\n"
                         + "\n".join(report) + f"\nanswer: {json.dumps(body)[:2000]}")


# ---------------------------------------------------------------- XML against JSON


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _from_json(name: str, value: Mapping[str, Any]) -> tuple[Any, ...]:
    attrs, children, text = {}, [], None
    for key, item in value.items():
        if isinstance(item, Mapping):
            children.append(_from_json(key, item))
        elif isinstance(item, list):
            for entry in item:
                children.append(_from_json(key, entry) if isinstance(entry, Mapping)
                                else (key, (), _scalar_text(entry), ()))
        elif key == "value":
            text = _scalar_text(item)
        else:
            attrs[key] = _scalar_text(item)
    return name, tuple(sorted(attrs.items())), text, tuple(children)


def _from_xml(element: ET.Element) -> tuple[Any, ...]:
    assert element.tag.startswith("{" + NS + "}"), f"{element.tag} is not in {NS}"
    name = element.tag[len(NS) + 2:]
    text = element.text if element.text not in (None, "") else None
    return (name, tuple(sorted(element.attrib.items())), text,
            tuple(_from_xml(child) for child in element))


def parse_xml(text: str) -> ET.Element:
    root = ET.fromstring(text.encode())  # noqa: S314 - our own server's answer
    assert root.tag == f"{{{NS}}}subsonic-response", root.tag
    return root


def assert_xml_matches_json(xml_text: str, json_body: Mapping[str, Any]) -> None:
    """The XML answer carries exactly the JSON answer's data: scalars as attributes, objects as
    elements, arrays as repeated elements (text for arrays of scalars), `value` as text."""
    from_xml = _from_xml(parse_xml(xml_text))
    from_json = _from_json("subsonic-response", json_body["subsonic-response"])
    assert from_xml == from_json, f"XML and JSON differ:\nXML  {from_xml}\nJSON {from_json}"


async def error_code(client: TestClient, method: str, params: Params) -> int:
    """The Subsonic error code a call answers (its `f=json` answer checked as `call_json` does)."""
    return error_of(await call_json(client, method, params))[0]
