// Drives subsonic-api (npm; `SubsonicAPI`, answers as the inside of `subsonic-response`) on the
// machine's Node against a Sonora /rest and prints what it got as JSON, as the Python drivers do
// (tests/clients/drive_common.py describes the arguments and the report).
//
// Usage: node subsonic_api_drive.mjs URL USERNAME SECRET MODE TRANSPORT ASK_JSON [--wrong|--writes]
// with SONORA_CLIENT_MODULES naming the node_modules folder the test installed it in.
//
// It calls `<method>.view`. Modes: `token` (a random base64url salt per request, which may hold
// `_` and `-`), `salted` (its `salt` option with `reuseSalt`: one salt holding both), `apiKey`
// (its `auth.apiKey`; then tokenInfo through its own `customJSON`). Transports: `get` and `post`
// (its `post` option: a form body). It raises nothing on a failed answer: it returns the
// envelope, whose error code 40 (44 for an apiKey) is its error.

import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [url, username, secret, mode, transport, askJson, flag] = process.argv.slice(2);
const ask = JSON.parse(askJson);
const modules = process.env.SONORA_CLIENT_MODULES;
const resolved = createRequire(join(modules, "resolve.js")).resolve("subsonic-api");
const { SubsonicAPI } = await import(pathToFileURL(resolved).href);

const SALT = "s0n_ra-given_salt-";
const auth = mode === "apiKey" ? { apiKey: secret } : { username, password: secret };
const api = new SubsonicAPI({
  url,
  auth,
  post: transport === "post",
  ...(mode === "salted" ? { salt: SALT, reuseSalt: true } : {}),
});

const SONG = ["id", "title", "album", "albumId", "artist", "artistId", "track", "year", "genre",
  "suffix", "contentType", "duration"];
const ALBUM = ["id", "name", "artist", "artistId", "songCount", "year", "genre"];
const ARTIST = ["id", "name", "albumCount"];
const USER = ["username", "adminRole", "streamRole", "downloadRole", "playlistRole"];

const pick = (item, fields) => Object.fromEntries(fields.map((f) => [f, item?.[f] ?? null]));
const ids = (items) => (items ?? []).map((item) => String(item.id));
const found = (result) => ({ artist: ids(result.artist), album: ids(result.album), song: ids(result.song) });
const indexed = (answer, fields) => (answer.index ?? []).flatMap((i) => (i.artist ?? []).map((a) => pick(a, fields)));

// A failed answer stops the drive with the envelope, as an exception would in the Python drivers.
function ok(answer) {
  if (answer?.status !== "ok") {
    throw new Error(`failed answer: ${JSON.stringify(answer)}`);
  }
  return answer;
}

async function drive() {
  const report = { ping: ok(await api.ping()).status === "ok" };
  report.license = { valid: ok(await api.getLicense()).license.valid };
  report.musicFolders = ok(await api.getMusicFolders()).musicFolders.musicFolder.map((f) => pick(f, ["id", "name"]));
  report.indexes = indexed(ok(await api.getIndexes()).indexes, ["id", "name"]);
  report.artists = indexed(ok(await api.getArtists()).artists, ARTIST);
  const artist = ok(await api.getArtist({ id: ask.artist })).artist;
  report.artist = { ...pick(artist, ARTIST), albums: ids(artist.album) };
  const album = ok(await api.getAlbum({ id: ask.album })).album;
  report.album = { ...pick(album, ALBUM), songs: ids(album.song) };
  report.song = pick(ok(await api.getSong({ id: ask.song })).song, SONG);
  report.directory = ids(ok(await api.getMusicDirectory({ id: ask.artist })).directory.child);
  const list = async (type, more = {}) => ids(ok(await api.getAlbumList2({ type, size: 50, ...more })).albumList2.album);
  report.albumList2 = {
    alphabeticalByName: await list("alphabeticalByName"),
    newest: await list("newest"),
    byGenre: await list("byGenre", { genre: ask.genre }),
  };
  report.search3 = found(ok(await api.search3({ query: ask.query })).searchResult3);
  report.search3All = found(ok(await api.search3({ query: "", artistCount: 500, albumCount: 500, songCount: 500 })).searchResult3);
  report.randomSongs = ids(ok(await api.getRandomSongs({ size: 50 })).randomSongs.song);
  report.starred2 = found(ok(await api.getStarred2()).starred2);
  report.user = pick(ok(await api.getUser({ username: ask.username })).user, USER);
  report.artistInfo2 = ok(await api.getArtistInfo2({ id: ask.artist, includeNotPresent: false })).status;
  const extensions = ok(await api.getOpenSubsonicExtensions()).openSubsonicExtensions;
  report.extra = { extensions: extensions.map((e) => e.name) };
  if (mode === "apiKey") {
    report.extra.tokenInfo = ok(await api.customJSON("tokenInfo.view", {})).tokenInfo.username;
  }
  return report;
}

const sha256 = async (response) => createHash("sha256").update(Buffer.from(await response.arrayBuffer())).digest("hex");

// Media, annotation and playlists (repeated parameters as arrays).
async function writes() {
  const report = {
    stream: await sha256(await api.stream({ id: ask.song })),
    download: await sha256(await api.download({ id: ask.song })),
  };
  const cover = ok(await api.getAlbum({ id: ask.album })).album.coverArt;
  report.cover = (await api.getCoverArt({ id: cover, size: 300 })).headers.get("content-type");
  const marks = { id: [ask.song], albumId: [ask.album], artistId: [ask.otherArtist] };
  ok(await api.star(marks));
  report.starred = found(ok(await api.getStarred2()).starred2);
  ok(await api.unstar(marks));
  report.unstarred = found(ok(await api.getStarred2()).starred2);
  report.scrobble = ok(await api.scrobble({ id: ask.song, submission: true })).status;
  ok(await api.createPlaylist({ name: ask.playlist, songId: ask.songs.slice(0, 2) }));
  const mine = (ok(await api.getPlaylists()).playlists.playlist ?? []).filter((p) => p.name === ask.playlist);
  const id = mine[0].id;
  const created = ids(ok(await api.getPlaylist({ id })).playlist.entry);
  ok(await api.updatePlaylist({ playlistId: id, songIdToAdd: ask.songs.slice(2), songIndexToRemove: [0] }));
  const updated = ids(ok(await api.getPlaylist({ id })).playlist.entry);
  ok(await api.deletePlaylist({ id }));
  const left = ids(ok(await api.getPlaylists()).playlists.playlist);
  report.playlist = { created, updated, deleted: !left.includes(String(id)) };
  return report;
}

async function wrong() {
  const answer = await api.ping();
  if (answer?.status === "ok") {
    return { error: null, returned: answer };
  }
  return { error: { type: `envelope ${answer.error.code}`, message: answer.error.message } };
}

const report = flag === "--wrong" ? await wrong() : flag === "--writes" ? await writes() : await drive();
process.stdout.write(`${JSON.stringify(report)}\n`);
