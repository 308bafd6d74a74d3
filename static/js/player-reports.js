// Play reports. A listen is one song played from its start (or a restart) to a skip, its end or
// leaving the page. It is reported once it reaches the counting threshold (the server counts it),
// then again with the same play_id when it ends, so the history holds the time really played; the
// server keeps the longest report of a play_id and never counts it twice.
import { PLAYED, api, csrfToken, emit } from "./ui.js";
import { audio } from "./player-audio.js";
import { songs } from "./player-songs.js";

const REPORT_MS = 30_000;
const REPORT_RETRIES = 6;

let listen = null;

/** A new listen of song `id` begins (the one before it ends and is reported). */
export function newListen(id) {
  finishListen();
  listen = { id, playId: crypto.randomUUID(), playedMs: 0, sentMs: 0, last: null };
}

function threshold() {
  const d = Number.isFinite(audio.duration) && audio.duration > 0 ? audio.duration * 1000
    : (songs.get(listen.id)?.duration_ms || Infinity);
  return Math.min(REPORT_MS, d / 2);
}

/** On each timeupdate: add the time really played. */
export function countPlayback() {
  if (!listen || audio.paused || audio.seeking) { if (listen) listen.last = null; return; }
  const t = audio.currentTime;
  if (listen.last !== null) {
    const delta = t - listen.last;
    // timeupdate fires every ~250 ms; a jump is a seek, not listening.
    if (delta > 0 && delta < 2) listen.playedMs += delta * 1000;
  }
  listen.last = t;
  if (!listen.sentMs && listen.playedMs >= threshold()) sendListen();
}

/** A seek starts: the time it jumps is not listening. */
export function seekStarted() {
  if (listen) listen.last = null;
}

/** What the listen adds since its last report, if it counts at all (below the threshold, nothing). */
function unsent() {
  if (!listen || listen.playedMs < threshold()) return null;
  const played = Math.round(listen.playedMs);
  return played > listen.sentMs ? { song_id: listen.id, played_ms: played, play_id: listen.playId } : null;
}

function sendListen() {
  const body = unsent();
  if (!body) return;
  listen.sentMs = body.played_ms;
  report(body);
}

/** The listen ends (a skip, the song's end, a restart): its final time goes to the server. */
function finishListen() {
  if (!listen) return;
  sendListen();
  listen = null;
}

/**
 * The page is being left or hidden (a phone may never come back to it): the time so far goes as a
 * beacon, which outlives the page. A beacon cannot set headers, so it is a form with csrf_token.
 */
export function beaconListen() {
  const body = unsent();
  if (!body || !navigator.sendBeacon) return;
  const form = new URLSearchParams({ ...body, csrf_token: csrfToken() });
  if (navigator.sendBeacon("/api/stream/play", form)) listen.sentMs = body.played_ms;
}

async function report(body, attempt = 0) {
  try {
    await api("POST", "/api/stream/play", body);
    emit(PLAYED, body);
  } catch (err) {
    // Same play_id on every retry: the server counts it once. 4xx other than 429 will not heal.
    const status = err.status || 0;
    if (attempt + 1 >= REPORT_RETRIES || (status >= 400 && status < 500 && status !== 429)) return;
    setTimeout(() => report(body, attempt + 1), Math.min(30_000, 1000 * 2 ** attempt));
  }
}
