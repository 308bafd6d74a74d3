"""The `subsonic-response` envelope: one data structure rendered as XML, JSON or JSONP (SPEC 13).

Methods answer plain data, a dict of what goes inside `subsonic-response`, and never think about
the format. The rules that make one structure come out in both formats as the reference shows
them (`../shared/opensubsonic/`):

- a scalar (str, int, float, bool) is an XML attribute and a JSON member; JSON keeps numbers and
  booleans as such, XML writes `true`/`false`;
- a dict is a child element and a JSON object;
- a list is one element per item, named by its key, and a JSON array — always an array, even
  with one item or none (an empty list writes no XML element);
- a list of scalars is one element per item with the value as its text (`<versions>1</versions>`);
- the key `value` is the element's text in XML (a genre's name, lyrics) and a member in JSON;
- None is left out of both; a datetime is written in ISO 8601, UTC, with milliseconds.

XML is written by hand rather than through ElementTree: it is the default format, the one most
apps read, and a few hundred elements per answer are common (`search3` pages of 500).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiMapping

from app.web.subsonic.errors import GENERIC, MISSING_PARAMETER, SubsonicError

NAMESPACE = "http://subsonic.org/restapi"
PROTOCOL_VERSION = "1.16.1"
SERVER_TYPE = "sonora"
FORMATS = ("xml", "json", "jsonp")
# A JavaScript name, dotted names allowed (`jQuery123.cb`): nothing else reaches a JSONP answer.
CALLBACK = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*", re.ASCII)
CALLBACK_MAX = 128
# Characters XML 1.0 cannot carry at all (control characters, lone surrogates, U+FFFE/U+FFFF): a
# tag read from a file may hold them, and one would make the whole answer unreadable.
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ATTR = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                       "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"})
_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})

Payload = dict[str, Any]


@dataclass(frozen=True)
class Format:
    """How the answer is written: `xml`, `json` or `jsonp` (with its callback)."""

    kind: str = "xml"
    callback: str = ""


def resolve_format(params: MultiMapping[str]) -> tuple[Format, SubsonicError | None]:
    """The format a request asks for (`f`, `callback`), and the error to answer with, in a format
    that can be written, when it cannot be honoured."""
    kind = (params.get("f") or "xml").strip().lower()
    if kind not in FORMATS:
        return Format("xml"), SubsonicError(
            GENERIC, f"Unknown format f={kind[:20]!r}: use xml, json or jsonp")
    if kind != "jsonp":
        return Format(kind), None
    callback = params.get("callback") or ""
    if not callback:
        return Format("json"), SubsonicError(MISSING_PARAMETER,
                                             "f=jsonp needs a callback parameter")
    if len(callback) > CALLBACK_MAX or not CALLBACK.fullmatch(callback):
        return Format("json"), SubsonicError(
            MISSING_PARAMETER, "callback must be a JavaScript function name (letters, digits,"
            " '_', '$' and dots)")
    return Format("jsonp", callback), None


def ok(data: Mapping[str, Any] | None, fmt: Format, server_version: str) -> web.Response:
    """A successful answer carrying `data`."""
    return _respond(_head("ok", server_version), data or {}, fmt)


def failed(error: SubsonicError, fmt: Format, server_version: str) -> web.Response:
    """An error answer: HTTP 200 with `status="failed"` and `error{code, message, helpUrl?}`."""
    body: Payload = {"error": {"code": error.code, "message": error.message,
                               "helpUrl": error.help_url}}
    response = _respond(_head("failed", server_version), body, fmt)
    response.headers.update(error.headers)
    return response


def _head(status: str, server_version: str) -> Payload:
    return {"status": status, "version": PROTOCOL_VERSION, "type": SERVER_TYPE,
            "serverVersion": server_version, "openSubsonic": True}


def _respond(head: Payload, data: Mapping[str, Any], fmt: Format) -> web.Response:
    if fmt.kind == "xml":
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
        _element("subsonic-response", {"xmlns": NAMESPACE, **head, **data}, out)
        return web.Response(body="".join(out).encode("utf-8", "replace"),
                            content_type="text/xml", charset="utf-8")
    body = json_bytes({"subsonic-response": {**head, **data}})
    if fmt.kind == "jsonp":
        return web.Response(body=fmt.callback.encode("utf-8", "replace") + b"(" + body + b");",
                            content_type="application/javascript", charset="utf-8")
    return web.Response(body=body, content_type="application/json", charset="utf-8")


# ---------------------------------------------------------------- JSON


class Walked(list[Any]):
    """A list whose items hold no None at any depth (dicts of scalars, as the artist index's
    entries are made): sent as it is, without the walk that drops None members. An index of
    20,000 artists is 100,000 scalars, and the walk cost as much as encoding them."""


def json_bytes(value: Any) -> bytes:
    """`value` as compact UTF-8 JSON (None members dropped, datetimes as ISO 8601). orjson
    encodes; what it refuses (a lone surrogate, an integer past 64 bits) goes through `json`,
    which writes anything."""
    clean = _without_none(value)
    try:
        return orjson.dumps(clean, default=_json_default, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except orjson.JSONEncodeError:
        text = json.dumps(clean, ensure_ascii=False, separators=(",", ":"), default=_json_default)
        return text.encode("utf-8", "replace")


def _without_none(value: Any) -> Any:
    # Scalars are taken as they are, without a call or an ABC check each (an index of 20,000
    # artists holds some 100,000 of them): only dicts, lists and tuples are walked into, which
    # is all a method's answer is made of (a `Walked` list is none of them: it is left as is).
    kind = type(value)
    if kind is dict or (kind not in CONTAINERS and isinstance(value, Mapping)):
        return {k: v if type(v) not in CONTAINERS else _without_none(v)
                for k, v in value.items() if v is not None}
    if kind is list or kind is tuple:
        return [v if type(v) not in CONTAINERS else _without_none(v)
                for v in value if v is not None]
    return value


CONTAINERS = frozenset((dict, list, tuple))


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return timestamp(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def timestamp(value: dt.datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as the reference writes times (naive means UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


# ---------------------------------------------------------------- XML


def _scalar(value: Any) -> str:
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is str and value.isprintable():  # printable characters are all allowed in XML
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dt.datetime):
        return timestamp(value)
    return NOT_XML.sub("", str(value))


SCALARS = frozenset((str, int, bool, float))


def _element(name: str, value: Mapping[str, Any], out: list[str]) -> None:
    attrs: list[str] = []
    children: list[tuple[str, Any]] = []
    text = None
    for key, item in value.items():
        if item is None:
            continue
        # Scalars, by far the most items, are told by their type alone (no ABC check each).
        if type(item) not in SCALARS and isinstance(item, Mapping | list | tuple):
            children.append((key, item))
        elif key == "value":
            text = _scalar(item).translate(_TEXT)
        else:
            attrs.append(f' {key}="{_scalar(item).translate(_ATTR)}"')
    out.append(f"<{name}{''.join(attrs)}")
    if not children and text is None:
        out.append("/>")
        return
    out.append(">")
    if text is not None:
        out.append(text)
    for key, item in children:
        if isinstance(item, Mapping):
            _element(key, item, out)
            continue
        for entry in item:
            if isinstance(entry, Mapping):
                _element(key, entry, out)
            elif entry is not None:
                out.append(f"<{key}>{_scalar(entry).translate(_TEXT)}</{key}>")
    out.append(f"</{name}>")
