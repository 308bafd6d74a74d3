"""The saved play queue (getPlayQueue, savePlayQueue) and the library scan (getScanStatus,
startScan).

The queue is PlayQueueService's (a stopgap store until SPEC 16's queue shared with the web
player lands; see its docstring): getPlayQueue answers the reference's `playQueue`, empty (no
entries, `changed` at the epoch) when nothing was saved. savePlayQueue with no `id` clears it.

Scanning: Sonora's music folders are imported with `python -m app import PATH --in-place`, a
command run by the operator, and no folder is configured on the server for it to rescan by
itself (SPEC 16's scheduled rescans come later). So startScan starts nothing and both methods
answer that no scan runs, with the number of songs in the library — admins only, as the brief
for /rest and the reference's startScan want.
"""

from __future__ import annotations

import datetime as dt

from app.web import keys
from app.web.subsonic.envelope import Payload
from app.web.subsonic.errors import MISSING_PARAMETER, SubsonicError
from app.web.subsonic.reading import shaper, stars
from app.web.subsonic.registry import ADMIN, Call, Methods
from app.web.subsonic.shapes import parse_id, song_id

methods = Methods()
EPOCH = dt.datetime(1970, 1, 1)
MAX_POSITION_MS = 7 * 86_400_000


@methods.method("getPlayQueue")
async def get_play_queue(call: Call) -> Payload:
    me = call.user
    saved = await call.app[keys.PLAY_QUEUE].get(me.user_id)
    if saved is None:
        return {"playQueue": {"username": me.username, "changed": EPOCH, "changedBy": "",
                              "entry": []}}
    wanted = sorted(set(saved["song_ids"]))
    found, _ = await call.app[keys.CATALOG].songs({"ids": wanted}, len(wanted), 0)
    songs = {s["id"]: s for s in found}
    queue = [songs[i] for i in saved["song_ids"] if i in songs]  # songs deleted since: left out
    starred = await stars(call, songs=queue)
    shapes = shaper(call)
    current = saved["current"] if saved["current"] in songs else None
    return {"playQueue": {
        "current": song_id(current) if current is not None else None,
        "position": saved["position_ms"] if current is not None else None,
        "username": me.username,
        "changed": dt.datetime.fromtimestamp(saved["changed_at"], dt.UTC),
        "changedBy": saved["changed_by"],
        "entry": [shapes.child(s, starred) for s in queue],
    }}


@methods.method("savePlayQueue")
async def save_play_queue(call: Call) -> Payload:
    values = call.params.texts("id")
    if len(values) > 1000:
        raise SubsonicError(MISSING_PARAMETER, "A play queue holds at most 1000 songs")
    songs = [parse_id(value, "song")[1] for value in values]
    raw_current = call.params.get("current")
    current = parse_id(raw_current, "song")[1] if raw_current is not None else None
    if current is not None and current not in songs:
        raise SubsonicError(MISSING_PARAMETER, "Parameter 'current' must be one of the ids")
    position = call.params.integer("position", 0, lo=0, hi=MAX_POSITION_MS, clamp=True)
    await call.app[keys.PLAY_QUEUE].save(call.user.user_id, songs, current, position,
                                         call.params.get("c") or "")
    return {}


async def _status(call: Call) -> Payload:
    counts = await call.app[keys.CATALOG].counts()
    return {"scanStatus": {"scanning": False, "count": int(counts.get("songs", 0))}}


@methods.method("getScanStatus", access=ADMIN)
async def get_scan_status(call: Call) -> Payload:
    return await _status(call)


@methods.method("startScan", access=ADMIN)
async def start_scan(call: Call) -> Payload:
    return await _status(call)
