"""The real Subsonic client libraries against a real Sonora (SPEC 13, issue 13).

Each library is installed at its pinned version (LIBRARIES, the one place versions are named) in a
virtual environment of its own under `.cache/subsonic-clients/` in the checkout (git ignores it):
they cannot share one, as py-sonic and py-sonic2 both install `libsonic` and subsonic-connector
pins py-sonic 1.1.2. subsonic-api comes from npm into a folder of its own and runs on the
machine's Node. An environment is made once per machine (the first test of its library pays for
it: pip or npm, through the machine's own configuration) and reused while its stamp says it is
complete.

A small driver per library (tests/clients/) calls the library's own API for the read methods an
app uses to browse, list, search and sign in, and prints what the library handed back as JSON.
It runs once per auth mode and transport the library has, against the app served on
127.0.0.1:<free port> in a thread, with real uploaded audio: two artists, two albums, three songs,
one of each starred by the member whose app password the drivers use. The test compares the
report with what the server holds, and a wrong password must come back as the library's own
error for code 40.

Known library bugs are worked around in the drivers, never in the server (which follows the
reference): py-opensonic's `get_music_folders()` iterates the wrong level, knuckles'
`get_open_subsonic_extensions()` expects a dict and its `get_user()` reads fields the reference
does not have; those calls go through the library's lower-level request function.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import MYSQL_URL, RUN_ID, _admin_sql, make_audio, make_config, unique
from support import Served

from app.main import create_app
from app.media.images import placeholder_cover
from app.web import keys

ROOT = Path(__file__).resolve().parent.parent
DRIVERS = Path(__file__).resolve().parent / "clients"
CACHE = Path(os.environ.get("SONORA_CLIENTS_CACHE", ROOT / ".cache" / "subsonic-clients"))
pytestmark = pytest.mark.slow
RUN_TIMEOUT = 120  # seconds one driver run may take
INSTALL_TIMEOUT = 900  # seconds one environment may take to make


@dataclass(frozen=True)
class Library:
    """A client library at its pinned version, how it runs and what it can do."""

    name: str  # on PyPI or npm
    version: str
    driver: str  # in tests/clients
    runtime: str  # "python", "python3.12+" or "node"
    modes: tuple[str, ...]  # auth modes, as the driver names them
    transports: tuple[str, ...]
    wrong_password: str  # what the library raises (or returns) for error 40
    wrong_api_key: str = ""  # and for error 44, where it has apiKey
    shares: bool = False  # its driver makes, lists, edits and deletes shares in the write run


LIBRARIES = {lib.name: lib for lib in [
    Library("py-sonic", "1.2.0", "py_sonic_drive.py", "python",
            ("token", "enc", "salted"), ("post-view",), "libsonic.errors.CredentialError",
            shares=True),
    Library("py-sonic2", "1.0.4", "py_sonic2_drive.py", "python3.12+",
            ("token", "enc", "salted"), ("post-view", "get-view"), "libsonic.errors.CredentialError"),
    Library("py-opensonic", "10.4.1", "py_opensonic_drive.py", "python",
            ("token", "enc", "apiKey"), ("post-view", "get-view", "post", "get"),
            "libopensonic.errors.CredentialError", "libopensonic.errors.SonicError"),
    Library("knuckles", "1.2.0", "knuckles_drive.py", "python",
            ("plain", "token"), ("get", "post"), "knuckles.exceptions.ErrorCode40",
            shares=True),
    Library("subsonic-connector", "0.3.12", "subsonic_connector_drive.py", "python",
            ("token", "enc"), ("post-view",), "libsonic.errors.CredentialError"),
    Library("subsonic-cli", "0.2.1", "subsonic_cli_drive.py", "python",
            ("token",), ("get-view", "command"), "builtins.NotImplementedError"),
    Library("subsonic-api", "3.3.1", "subsonic_api_drive.mjs", "node",
            ("token", "salted", "apiKey"), ("get", "post"), "envelope 40", "envelope 44"),
]}
CASES = [pytest.param(lib.name, mode, transport, id=f"{lib.name}-{mode}-{transport}")
         for lib in LIBRARIES.values() for mode in lib.modes for transport in lib.transports]


# ---------------------------------------------------------------- the environments


def newer_python() -> str | None:
    """A Python 3.12 or newer that can make a virtual environment, for py-sonic2."""
    candidates = sorted(glob.glob("/usr/bin/python3.1[2-9]")) + sorted(
        glob.glob("/usr/local/bin/python3.1[2-9]")) + sorted(
        glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python3")))
    candidates += [p for p in (shutil.which(f"python3.{minor}") for minor in range(12, 20)) if p]
    for candidate in candidates:
        probe = subprocess.run([candidate, "-c", "import sys, venv; print(sys.version_info >= (3, 12))"],
                               capture_output=True, text=True, timeout=60, check=False)
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    return None


def _run(args: list[str], cwd: Path | None = None) -> None:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
                          check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def environment(lib: Library) -> list[str]:
    """The command that runs `lib`'s driver (its interpreter or node), making the environment
    first when its stamp is missing. A lock keeps two test runs from making one at once."""
    home = CACHE / f"{lib.name}-{lib.version}"
    stamp = home / ".complete"
    CACHE.mkdir(parents=True, exist_ok=True)
    if lib.runtime == "node":
        node = shutil.which("node")
        assert node and shutil.which("npm"), "node and npm are needed (scripts/packages.sh installs them)"
        command = [node]
    else:
        interpreter = sys.executable if lib.runtime == "python" else newer_python()
        if interpreter is None:
            pytest.skip(f"{lib.name} {lib.version} needs Python >= 3.12: no python3.12+ found in"
                        " /usr/bin, /usr/local/bin, ~/.pyenv/versions or on PATH")
        command = [str(home / "bin" / "python")]
    with open(CACHE / f".{lib.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.is_file():
            shutil.rmtree(home, ignore_errors=True)
            started = time.monotonic()
            if lib.runtime == "node":
                home.mkdir(parents=True)
                (home / "package.json").write_text('{"private": true}\n')
                _run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts",
                      f"{lib.name}@{lib.version}"], cwd=home)
            else:
                _run([interpreter, "-m", "venv", str(home)])
                _run([command[0], "-m", "pip", "install", "-q", "--disable-pip-version-check",
                      f"{lib.name}=={lib.version}"])
            stamp.write_text(f"{lib.name} {lib.version} made in {time.monotonic() - started:.1f} s\n")
    return command


# ---------------------------------------------------------------- the server and its catalogue


@dataclass
class World:
    """The served app and what the test made in it."""

    served: Served
    username: str
    secret: str  # the member's app password
    outsider: str  # another member, whose wrong passwords the failure cases send
    word: str
    songs: list[dict[str, Any]]
    digests: list[str]  # sha256 of each song's uploaded file

    def ask(self) -> dict[str, Any]:
        """What the drivers ask for: the first artist, its album, its first song (and for the
        writes, the other artist, every song and a playlist name)."""
        first = self.songs[0]
        return {"artist": f"ar-{first['artist_id']}", "album": f"al-{first['album_id']}",
                "song": f"tr-{first['id']}", "query": self.word, "genre": "Jazz",
                "username": self.username, "songs": [f"tr-{s['id']}" for s in self.songs],
                "otherArtist": f"ar-{self.songs[2]['artist_id']}",
                "playlist": unique("client playlist ")}


def _register(served: Served) -> tuple[dict[str, Any], dict[str, str]]:
    name = unique("client")
    resp = requests.post(served.url + "/api/auth/register", timeout=30, json={
        "email": f"{name}@example.com", "username": name, "password": "correct horse 1"})
    assert resp.status_code == 201, resp.text
    data = resp.json()
    return data["user"], {"Authorization": f"Bearer {data['access_token']}"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    name = f"sonora_test_{RUN_ID}_clients"
    data_dir = tmp_path_factory.mktemp("clients")
    config = make_config(f"{MYSQL_URL}/{name}", data_dir, amqp_url="", stream_pace=0.0,
                         login_max_failures_account_address=100_000)
    try:
        with Served(create_app(config)) as served:
            admin, admin_headers = _register(served)

            async def promote() -> None:
                await served.app[keys.DB].execute("UPDATE users SET role = 'admin' WHERE id = %s",
                                                  (admin["id"],))
                await served.app[keys.AUTH].authstate.forget_user(admin["id"])
            served.call(promote())

            word = unique("Quillon")
            tags = [dict(title=f"{word} First", artist=f"{word} Alpha", album=f"{word} Dawn",
                         track=1, year=2001, genre="Ambient"),
                    dict(title=f"{word} Second", artist=f"{word} Alpha", album=f"{word} Dawn",
                         track=2, year=2001, genre="Ambient"),
                    dict(title=f"{word} Third", artist=f"{word} Beta", album=f"{word} Dusk",
                         track=1, year=1995, genre="Jazz")]
            songs, digests = [], []
            for tag in tags:
                path = make_audio(data_dir, "mp3", seconds=1.0, cover=placeholder_cover(unique()),
                                  **tag)
                resp = requests.post(served.url + "/api/song", headers=admin_headers, timeout=60,
                                     json={"file_base64": base64.b64encode(path.read_bytes()).decode()})
                assert resp.status_code == 201, resp.text
                songs.append(resp.json())
                digests.append(hashlib.sha256(path.read_bytes()).hexdigest())

            member, member_headers = _register(served)
            for kind, item in (("songs", songs[2]["id"]), ("albums", songs[2]["album_id"]),
                               ("artists", songs[0]["artist_id"])):
                resp = requests.put(f"{served.url}/api/library/{kind}/{item}",
                                    headers=member_headers, timeout=30)
                assert resp.status_code == 204, resp.text
            resp = requests.post(served.url + "/api/user/me/app-passwords", headers=member_headers,
                                 json={"label": "client libraries"}, timeout=30)
            assert resp.status_code == 201, resp.text
            outsider, _ = _register(served)
            found = World(served, member["username"], resp.json()["password"], outsider["username"],
                          word, songs, digests)
            _wait_for_search(found)
            yield found
    finally:
        asyncio.run(_admin_sql(f"DROP DATABASE IF EXISTS `{name}`"))


def _wait_for_search(world: World) -> None:
    """Without a broker the app's own consumers index the uploads: wait until search3 finds
    them all."""
    params = {"u": world.username, "p": world.secret, "v": "1.16.1", "c": "sonora-tests",
              "f": "json", "query": world.word}
    deadline = time.monotonic() + 60
    while True:
        result = requests.get(world.served.url + "/rest/search3", params=params, timeout=30).json()
        found = result["subsonic-response"].get("searchResult3", {})
        if [len(found.get(kind, [])) for kind in ("artist", "album", "song")] == [2, 2, 3]:
            return
        assert time.monotonic() < deadline, f"the uploads were not indexed within 60 s: {result}"
        time.sleep(0.2)


# ---------------------------------------------------------------- running a driver


def drive(lib: Library, world: World, mode: str, transport: str, *, secret: str | None = None,
          username: str | None = None, wrong: bool = False, writes: bool = False
          ) -> dict[str, Any]:
    """Run `lib`'s driver once; returns the JSON report it printed."""
    command = environment(lib)
    args = [*command, str(DRIVERS / lib.driver), world.served.url, username or world.username,
            secret or world.secret, mode, transport, json.dumps(world.ask())]
    if wrong:
        args.append("--wrong")
    if writes:
        args.append("--writes")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["SONORA_CLIENT_MODULES"] = str(CACHE / f"{lib.name}-{lib.version}" / "node_modules")
    done = subprocess.run(args, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env,
                          check=False)
    assert done.returncode == 0, (f"{lib.name} ({mode}, {transport}) failed:\n"
                                  f"{done.stdout[-4000:]}\n{done.stderr[-6000:]}")
    lines = done.stdout.strip().splitlines()
    assert lines, f"{lib.name} printed nothing:\n{done.stderr[-4000:]}"
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def expected(world: World) -> dict[str, Any]:
    """What every library must report, from what the server holds."""
    s = world.songs
    artist_ids = [f"ar-{s[0]['artist_id']}", f"ar-{s[2]['artist_id']}"]
    album_ids = [f"al-{s[0]['album_id']}", f"al-{s[2]['album_id']}"]
    song_ids = [f"tr-{x['id']}" for x in s]
    w = world.word
    artists = [{"id": artist_ids[0], "name": f"{w} Alpha", "albumCount": 1},
               {"id": artist_ids[1], "name": f"{w} Beta", "albumCount": 1}]
    return {
        "ping": True,
        "license": {"valid": True},
        "musicFolders": [{"id": "1", "name": "Music"}],
        "artists": artists,
        "indexes": [{k: a[k] for k in ("id", "name")} for a in artists],
        "artist": {"id": artist_ids[0], "name": f"{w} Alpha", "albumCount": 1,
                   "albums": [album_ids[0]]},
        "album": {"id": album_ids[0], "name": f"{w} Dawn", "artist": f"{w} Alpha",
                  "artistId": artist_ids[0], "songCount": 2, "year": 2001, "genre": "Ambient",
                  "songs": song_ids[:2]},
        "song": {"id": song_ids[0], "title": f"{w} First", "album": f"{w} Dawn",
                 "albumId": album_ids[0], "artist": f"{w} Alpha", "artistId": artist_ids[0],
                 "track": 1, "year": 2001, "genre": "Ambient", "suffix": "mp3",
                 "contentType": "audio/mpeg", "duration": 1},
        "directory": [album_ids[0]],
        "albumList2": {"alphabeticalByName": album_ids, "newest": sorted(album_ids),
                       "byGenre": [album_ids[1]]},
        "search3": {"artist": artist_ids, "album": album_ids, "song": song_ids},
        "search3All": {"artist": artist_ids, "album": album_ids, "song": song_ids},
        "randomSongs": sorted(song_ids),
        "starred2": {"artist": [artist_ids[0]], "album": [album_ids[1]], "song": [song_ids[2]]},
        "user": {"username": world.username, "adminRole": False, "streamRole": True,
                 "downloadRole": True, "playlistRole": True},
        "artistInfo2": "ok",
    }


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    """The report with what may come in any order sorted and ids as strings."""
    out = json.loads(json.dumps(report))
    for folder in out.get("musicFolders", []):
        folder["id"] = str(folder["id"])
    if "albumList2" in out:
        out["albumList2"]["newest"] = sorted(out["albumList2"]["newest"])
    if "randomSongs" in out:
        out["randomSongs"] = sorted(out["randomSongs"])
    for key in ("search3", "search3All"):
        if key in out:
            out[key] = {kind: sorted(found) for kind, found in out[key].items()}
    return out


# ---------------------------------------------------------------- the tests


@pytest.mark.parametrize(("name", "mode", "transport"), CASES)
def test_library_browses_lists_and_searches(world: World, name: str, mode: str,
                                            transport: str) -> None:
    lib = LIBRARIES[name]
    report = _comparable(drive(lib, world, mode, transport))
    want = _comparable(expected(world))
    # A library that lacks a method leaves its key out and names it in `lacks`.
    wrong = {key: {"got": report[key], "want": value} for key, value in want.items()
             if key in report and report[key] != value}
    assert not wrong, f"{name} ({mode}, {transport}) differs from the server's data: {wrong}"
    missing = set(want) - set(report) - set(report.get("lacks", []))
    assert not missing, f"{name} reported nothing for {sorted(missing)}"
    extra = report.get("extra", {})
    if "extensions" in extra:
        assert {"formPost", "apiKeyAuthentication"} <= set(extra["extensions"]), extra
    if mode == "apiKey":
        assert extra.get("tokenInfo") == world.username, extra


@pytest.mark.parametrize("name", list(LIBRARIES))
def test_wrong_password_is_the_librarys_error_40(world: World, name: str) -> None:
    """In every mode; a wrong apiKey is error 44 (SPEC 13), which the libraries that have apiKey
    surface as their generic error."""
    lib = LIBRARIES[name]
    for mode in lib.modes:
        report = drive(lib, world, mode, lib.transports[0], username=world.outsider,
                       secret="not-an-app-password", wrong=True)
        error = report["error"]
        assert error is not None, f"{name} ({mode}) accepted a wrong password: {report}"
        assert error["type"] == (lib.wrong_api_key if mode == "apiKey" else lib.wrong_password), (
            name, mode, error)
        # Sonora's messages say where to make an app password (SPEC 13).
        assert "app password" in error["message"].lower(), (name, mode, error)


WRITE_CASES = [pytest.param(lib.name, lib.modes[0], transport, id=f"{lib.name}-{transport}")
               for lib in LIBRARIES.values() for transport in lib.transports]


@pytest.mark.parametrize(("name", "mode", "transport"), WRITE_CASES)
def test_library_streams_stars_scrobbles_and_edits_playlists(world: World, name: str, mode: str,
                                                             transport: str) -> None:
    lib = LIBRARIES[name]
    report = drive(lib, world, mode, transport, writes=True)
    s = world.songs
    before = expected(world)["starred2"]
    song_ids = [f"tr-{x['id']}" for x in s]
    starred = {"artist": sorted([*before["artist"], f"ar-{s[2]['artist_id']}"]),
               "album": sorted([*before["album"], f"al-{s[0]['album_id']}"]),
               "song": sorted([*before["song"], song_ids[0]])}
    want = {
        # No format and no maxBitRate: the original bytes (SPEC 13/14), like download.
        "stream": world.digests[0], "download": world.digests[0],
        "starred": starred, "unstarred": {k: sorted(v) for k, v in before.items()},
        "scrobble": "ok",
        "playlist": {"created": song_ids[:2], "updated": song_ids[1:], "deleted": True},
    }
    if lib.shares:
        # A share of the playlist (as updated) and one of a song; each link opens for anyone
        # until deleted.
        want["share"] = {"playlist": song_ids[1:], "songs": song_ids[:1], "listed": True,
                         "opens": True, "updated": True, "revoked": True}
    got = {key: ({k: sorted(v) for k, v in value.items()} if key in ("starred", "unstarred")
                 else value) for key, value in report.items()}
    wrong = {key: {"got": got[key], "want": value} for key, value in want.items()
             if key in got and got[key] != value}
    assert not wrong, f"{name} ({mode}, {transport}) differs: {wrong}"
    missing = set(want) - set(got) - set(report.get("lacks", []))
    assert not missing, f"{name} reported nothing for {sorted(missing)}"
    if "cover" in got:
        assert str(got["cover"]).startswith("image/"), got["cover"]
