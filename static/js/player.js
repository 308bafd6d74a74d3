// The player: one <audio> in the footer that router.js never replaces, a queue, play reports,
// the Media Session (lock screen, headphones), keyboard shortcuts, and state that survives a reload.
//
// Pages only need to mark songs: any `button.play[data-song-id]` or `.recent-play[data-song-id]`
// plays that song with the other `[data-song-id]` rows of its list as the queue; a
// `[data-play-context]` button plays the page's first track list. Rows of the playing song get
// `is-playing`. Other scripts can drive it through `window.sonoraPlayer` (see the bottom).
import { csrfToken } from "./app.js";

const footer = document.getElementById("player");
const REPORT_MS = 30_000;
const PREV_RESTART_S = 3;
const SEEK_STEP_S = 5;
const SAVE_EVERY_MS = 2000;
const REPORT_RETRIES = 6;

const fmt = (s) => {
  if (!Number.isFinite(s) || s < 0) s = 0;
  s = Math.floor(s);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
};
const sized = (url, size) => (url ? url.replace(/([?&]size=)\d+/, `$1${size}`) : url);
const isTextField = (el) => el && (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT"
  || (el.tagName === "INPUT" && !["range", "checkbox", "radio", "button", "submit"].includes(el.type)));

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json", "X-CSRF-Token": csrfToken() } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (!resp.ok) throw Object.assign(new Error(`HTTP ${resp.status}`), { status: resp.status });
  return resp.status === 204 ? null : resp.json();
}

// ------------------------------------------------------------------ song metadata

const songs = new Map();        // id → song JSON from /api/song/:id
const pending = new Map();      // id → Promise
function song(id) {
  id = Number(id);
  if (songs.has(id)) return Promise.resolve(songs.get(id));
  if (!pending.has(id)) {
    pending.set(id, api("GET", `/api/song/${id}`).then((s) => { songs.set(id, s); pending.delete(id); return s; })
      .catch((err) => { pending.delete(id); throw err; }));
  }
  return pending.get(id);
}
// What a page row already says about a song, so the queue can show it before /api/song answers.
const rowInfo = new Map();
const unknownSongs = new Set();  // ids /api/song refused: not asked again
function learnRows(root) {
  for (const row of root.querySelectorAll("[data-song-id]")) {
    const id = Number(row.dataset.songId);
    const title = row.querySelector(".track-title, .recent-link, .rank-title")?.textContent.trim();
    const artist = row.querySelector(".track-artists a, .recent-sub, .rank-sub")?.textContent.trim();
    if (title && !rowInfo.has(id)) rowInfo.set(id, { title, artist: artist || "" });
  }
}
const label = (id) => {
  const s = songs.get(id);
  if (s) return { title: s.title, artist: s.artist?.name || "" };
  return rowInfo.get(id) || { title: `Song ${id}`, artist: "" };
};

// ------------------------------------------------------------------ state

const state = {
  items: [],        // [{id, o, q}]: o = order in its context (un-shuffling), q = queued by hand
  index: -1,
  shuffle: false,
  repeat: "off",    // off | all | one
  volume: 1,
  muted: false,
};
let nextOrder = 0;
const item = (id, q = false) => ({ id: Number(id), o: nextOrder++, q });
const current = () => state.items[state.index];
const storeKey = () => `sonora.player.v1.${footer?.dataset.user || "anon"}`;

function save(position) {
  try {
    const at = position ?? (audio ? audio.currentTime : 0);
    localStorage.setItem(storeKey(), JSON.stringify({
      items: state.items, index: state.index, shuffle: state.shuffle, repeat: state.repeat,
      volume: state.volume, muted: state.muted, position: Number.isFinite(at) ? at : 0,
    }));
  } catch { /* private mode or full: the player still works */ }
}
function load() {
  try {
    const saved = JSON.parse(localStorage.getItem(storeKey()) || "null");
    if (!saved || !Array.isArray(saved.items)) return null;
    state.items = saved.items.filter((it) => Number.isInteger(it?.id)).map((it) => ({ id: it.id, o: Number(it.o) || 0, q: Boolean(it.q) }));
    nextOrder = Math.max(0, ...state.items.map((it) => it.o + 1));
    state.index = Number.isInteger(saved.index) ? Math.min(saved.index, state.items.length - 1) : -1;
    state.shuffle = Boolean(saved.shuffle);
    state.repeat = ["off", "all", "one"].includes(saved.repeat) ? saved.repeat : "off";
    state.volume = Math.min(1, Math.max(0, Number(saved.volume ?? 1)));
    state.muted = Boolean(saved.muted);
    return Number(saved.position) || 0;
  } catch { return null; }
}

// ------------------------------------------------------------------ elements

const $ = (sel) => footer.querySelector(sel);
const audio = footer ? $("audio") : null;
const el = footer ? {
  play: $('[data-player="play"]'), prev: $('[data-player="prev"]'), next: $('[data-player="next"]'),
  shuffle: $('[data-player="shuffle"]'), repeat: $('[data-player="repeat"]'), like: $('[data-player="like"]'),
  queue: $('[data-player="queue"]'), mute: $('[data-player="mute"]'), help: $('[data-player="help"]'),
  seek: $("[data-player-seek]"), volume: $("[data-player-volume]"), buffered: $("[data-player-buffered]"),
  time: $("[data-player-time]"), duration: $("[data-player-duration]"), title: $("[data-player-title]"),
  artist: $("[data-player-artist]"), cover: $("[data-player-cover]"), coverLink: $("[data-player-cover-link]"),
  status: $("[data-player-status]"), panel: $("#queue-panel"), now: $("[data-queue-now]"),
  nextList: $("[data-queue-next]"), queuedList: $("[data-queue-queued]"),
  queuedLabel: $("[data-queue-queued-label]"), nextLabel: $("[data-queue-next-label]"), empty: $("[data-queue-empty]"), dialog: $("#shortcuts"),
} : null;

const announce = (text) => { if (el) el.status.textContent = text; };

// ------------------------------------------------------------------ loading a song

let loadToken = 0;
let retried = false;       // one signed-URL retry per loaded source
let pendingSeek = null;    // a position to apply once metadata is known
let seeking = false;       // the listener is dragging the seek bar
let wantPlay = false;      // the listener asked for sound (an error's pause does not change it)

function load_(index, { autoplay = true, position = 0 } = {}) {
  if (index < 0 || index >= state.items.length) return;
  state.index = index;
  const id = current().id;
  const token = ++loadToken;
  retried = false;
  newListen(id);
  pendingSeek = position > 0 ? position : null;
  audio.src = `/api/stream/${id}`;
  audio.load();
  if (autoplay) playAudio();
  showSong(id, token);
  render();
  save(position);
}

function pauseAudio() {
  wantPlay = false;
  audio.pause();
}

function playAudio() {
  wantPlay = true;
  const p = audio.play();
  if (p) p.catch((err) => { if (err.name === "NotAllowedError") setPlaying(false); });
}

async function showSong(id, token) {
  markRows();
  const info = label(id);
  el.title.textContent = info.title;
  el.artist.textContent = info.artist;
  let s;
  try { s = await song(id); } catch { return; }
  if (token !== loadToken) return;
  el.title.textContent = s.title;
  el.title.href = s.album_id ? `/album/${s.album_id}` : `/artist/${s.artist_id}`;
  el.artist.textContent = s.artist?.name || "";
  el.artist.href = `/artist/${s.artist_id}`;
  el.coverLink.href = el.title.href;
  el.like.setAttribute("aria-label", `Like ${s.title}`);
  el.play.dataset.title = s.title;
  if (s.cover_url) {
    const img = document.createElement("img");
    img.src = sized(s.cover_url, 64);
    img.alt = "";
    img.width = 64;
    img.height = 64;
    el.cover.replaceChildren(img);
  } else {
    const ph = document.createElement("span");
    ph.className = `player-cover-initials ph-${s.album_id ? s.album_id % 8 : s.id % 8}`;
    ph.textContent = (s.album?.title || s.title).slice(0, 1).toUpperCase();
    el.cover.replaceChildren(ph);
  }
  document.querySelector("[data-player-page-title]")?.remove();
  mediaMetadata(s);
  refreshLiked(s.id);
  renderQueue();
}

// ------------------------------------------------------------------ the queue

function playList(ids, start = 0) {
  if (!ids.length) return;
  state.items = ids.map((id) => item(id));
  let index = start;
  if (state.shuffle) {
    const [first] = state.items.splice(start, 1);
    shuffleInPlace(state.items);
    state.items.unshift(first);
    index = 0;
  }
  load_(index);
}

function shuffleInPlace(list) {
  for (let i = list.length - 1; i > 0; i -= 1) {
    const j = Math.floor(Math.random() * (i + 1));
    [list[i], list[j]] = [list[j], list[i]];
  }
  return list;
}

function setShuffle(on) {
  state.shuffle = on;
  const head = state.items.slice(0, state.index + 1);
  const tail = state.items.slice(state.index + 1);
  const queued = tail.filter((it) => it.q);
  const rest = tail.filter((it) => !it.q);
  if (on) shuffleInPlace(rest); else rest.sort((a, b) => a.o - b.o);
  state.items = [...head, ...queued, ...rest];
  render();
  save();
  announce(on ? "Shuffle on" : "Shuffle off");
}

function playNext(ids) {
  const at = state.index + 1;
  state.items.splice(at, 0, ...ids.map((id) => item(id, true)));
  afterQueueChange(ids.length === 1 ? `${label(Number(ids[0])).title} plays next` : "Playing next");
}

function addToQueue(ids) {
  // After the songs already queued by hand, before the rest of the album or playlist (Spotify's way).
  let at = state.index + 1;
  while (at < state.items.length && state.items[at].q) at += 1;
  state.items.splice(at, 0, ...ids.map((id) => item(id, true)));
  afterQueueChange(ids.length === 1 ? `${label(Number(ids[0])).title} added to the queue` : "Added to the queue");
}

function afterQueueChange(message) {
  if (state.index < 0) { load_(0, { autoplay: true }); } else { render(); save(); }
  if (message) { announce(message); toast(message); }
}

function move(pos, delta) {
  const to = pos + delta;
  if (pos <= state.index || to <= state.index || to >= state.items.length) return;
  const [it] = state.items.splice(pos, 1);
  state.items.splice(to, 0, it);
  render();
  save();
  const row = el.panel.querySelector(`[data-pos="${to}"] [data-move="${delta < 0 ? "up" : "down"}"]:not(:disabled)`)
    || el.panel.querySelector(`[data-pos="${to}"] button`);
  row?.focus();
  announce(`${label(it.id).title} moved to position ${to - state.index} in the queue`);
}

function removeAt(pos) {
  if (pos <= state.index) return;
  const [it] = state.items.splice(pos, 1);
  render();
  save();
  (el.panel.querySelector(`.queue-item[data-pos="${pos}"] .queue-tools button`)
    || el.panel.querySelector(`[data-pos="${pos - 1}"] .queue-tools button`) || el.panel.querySelector('[data-queue="clear"]')).focus();
  announce(`${label(it.id).title} removed from the queue`);
}

function clearQueue() {
  state.items = state.index >= 0 ? [current()] : [];
  state.index = state.items.length ? 0 : -1;
  render();
  save();
  announce("Queue cleared");
}

function next(auto = false) {
  if (state.index < 0) return;
  if (auto && state.repeat === "one") { restart(); return; }
  if (state.index + 1 < state.items.length) { load_(state.index + 1); return; }
  if (state.repeat === "all" && state.items.length) { load_(0); return; }
  if (auto) {  // the end of the queue: stop on the last song, ready to play it again
    pauseAudio();
    audio.currentTime = 0;
    newListen(current().id);  // this listen is over (and reported); playing again is another
    return;
  }
}

function prev() {
  if (state.index < 0) return;
  if (audio.currentTime > PREV_RESTART_S || state.index === 0) { restart(); return; }
  load_(state.index - 1);
}

function restart() {
  audio.currentTime = 0;
  newListen(current().id);
  playAudio();
}

// ------------------------------------------------------------------ play reports

// A listen is one song played from its start (or a restart) to a skip, its end or leaving the page.
// It is reported once it reaches the counting threshold (the server counts it), then again with the
// same play_id when it ends, so the history holds the time really played; the server keeps the
// longest report of a play_id and never counts it twice.
let listen = null;
function newListen(id) {
  finishListen();
  listen = { id, playId: crypto.randomUUID(), playedMs: 0, sentMs: 0, last: null };
}

function threshold() {
  const d = Number.isFinite(audio.duration) && audio.duration > 0 ? audio.duration * 1000
    : (songs.get(listen.id)?.duration_ms || Infinity);
  return Math.min(REPORT_MS, d / 2);
}

function countPlayback() {
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
function beaconListen() {
  const body = unsent();
  if (!body || !navigator.sendBeacon) return;
  const form = new URLSearchParams({ ...body, csrf_token: csrfToken() });
  if (navigator.sendBeacon("/api/stream/play", form)) listen.sentMs = body.played_ms;
}

async function report(body, attempt = 0) {
  try {
    await api("POST", "/api/stream/play", body);
    document.dispatchEvent(new CustomEvent("sonora:played", { detail: body }));
  } catch (err) {
    // Same play_id on every retry: the server counts it once. 4xx other than 429 will not heal.
    const status = err.status || 0;
    if (attempt + 1 >= REPORT_RETRIES || (status >= 400 && status < 500 && status !== 429)) return;
    setTimeout(() => report(body, attempt + 1), Math.min(30_000, 1000 * 2 ** attempt));
  }
}

// ------------------------------------------------------------------ likes

async function refreshLiked(id) {
  el.like.disabled = false;
  try {
    const [liked] = await api("GET", `/api/library/songs/contains?ids=${id}`);
    if (current()?.id === id) setLikedUi(id, Boolean(liked));
  } catch { /* neutral heart */ }
}

function setLikedUi(id, liked) {
  if (current()?.id === id) el.like.setAttribute("aria-pressed", String(liked));
  for (const b of document.querySelectorAll(`[data-like-song="${id}"]`)) b.setAttribute("aria-pressed", String(liked));
}

async function toggleLike() {
  const it = current();
  if (!it) return;
  const liked = el.like.getAttribute("aria-pressed") !== "true";
  setLikedUi(it.id, liked);
  el.like.classList.remove("is-pop");
  if (liked) requestAnimationFrame(() => el.like.classList.add("is-pop"));
  try {
    await api(liked ? "PUT" : "DELETE", `/api/library/songs/${it.id}`);
    const text = liked ? "Added to Liked Songs" : "Removed from Liked Songs";
    announce(text);
    toast(text);
  } catch {
    setLikedUi(it.id, !liked);
    toast("Could not update Liked Songs");
  }
}

// ------------------------------------------------------------------ rendering

function setPlaying(playing) {
  footer.classList.toggle("is-playing", playing);
  el.play.setAttribute("aria-label", playing ? "Pause" : "Play");
  el.play.title = playing ? "Pause (Space)" : "Play (Space)";
  if ("mediaSession" in navigator) navigator.mediaSession.playbackState = playing ? "playing" : "paused";
  markRows();
}

function markRows() {
  const id = current()?.id;
  for (const row of document.querySelectorAll(".is-playing[data-song-id]")) {
    if (Number(row.dataset.songId) !== id) row.classList.remove("is-playing");
  }
  if (id === undefined) return;
  for (const row of document.querySelectorAll(`li[data-song-id="${id}"]`)) row.classList.add("is-playing");
  for (const b of document.querySelectorAll(`button.play[data-song-id], .recent-play[data-song-id]`)) {
    const mine = Number(b.dataset.songId) === id && !audio.paused;
    b.classList.toggle("is-current", mine);
  }
  document.body.classList.toggle("has-song", true);
}

function render() {
  const has = state.index >= 0;
  for (const b of [el.play, el.prev, el.next]) b.disabled = !has;
  el.seek.disabled = !has;
  el.shuffle.setAttribute("aria-pressed", String(state.shuffle));
  el.repeat.dataset.mode = state.repeat;
  el.repeat.setAttribute("aria-label", `Repeat: ${state.repeat === "one" ? "one song" : state.repeat}`);
  el.repeat.setAttribute("aria-pressed", String(state.repeat !== "off"));
  footer.classList.toggle("has-song", has);
  renderQueue();
}

function queueRow(it, pos, { now = false } = {}) {
  const li = document.createElement("li");
  li.className = "queue-item";
  li.dataset.pos = String(pos);
  li.dataset.songId = String(it.id);
  const info = label(it.id);
  const text = document.createElement("span");
  text.className = "queue-text";
  const t = document.createElement("span");
  t.className = "queue-title";
  t.textContent = info.title;
  const a = document.createElement("span");
  a.className = "queue-artist";
  a.textContent = info.artist;
  text.append(t, a);
  const play = button(now ? "queue-play is-now" : "queue-play", now ? `Now playing: ${info.title}` : `Play ${info.title}`, "play");
  play.addEventListener("click", () => { if (now) togglePlay(); else load_(pos); });
  li.append(play, text);
  if (!now) {
    const tools = document.createElement("span");
    tools.className = "queue-tools";
    const up = button("icon-button", `Move ${info.title} up`, "up");
    up.dataset.move = "up";
    up.disabled = pos === state.index + 1;
    up.addEventListener("click", () => move(pos, -1));
    const down = button("icon-button", `Move ${info.title} down`, "down");
    down.dataset.move = "down";
    down.disabled = pos === state.items.length - 1;
    down.addEventListener("click", () => move(pos, 1));
    const rm = button("icon-button", `Remove ${info.title} from the queue`, "close");
    rm.addEventListener("click", () => removeAt(pos));
    tools.append(up, down, rm);
    li.append(tools);
    if (it.q) li.classList.add("is-queued");
  }
  return li;
}

const ICONS = {
  play: '<path d="M7 4.5v15l12-7.5z" fill="currentColor"/>',
  up: '<path d="m6 15 6-6 6 6"/>',
  down: '<path d="m6 9 6 6 6-6"/>',
  close: '<path d="M6 6l12 12M18 6 6 18"/>',
  more: '<circle cx="5" cy="12" r="1.6" fill="currentColor"/><circle cx="12" cy="12" r="1.6" fill="currentColor"/><circle cx="19" cy="12" r="1.6" fill="currentColor"/>',
};
function svg(name, size = 18) {
  const s = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  for (const [k, v] of Object.entries({ class: "icon", width: size, height: size, viewBox: "0 0 24 24", "aria-hidden": "true", focusable: "false",
    fill: "none", stroke: "currentColor", "stroke-width": 2, "stroke-linecap": "round", "stroke-linejoin": "round" })) s.setAttribute(k, v);
  s.innerHTML = ICONS[name]; // constant markup, never data
  return s;
}
function button(cls, name, icon) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = cls;
  b.setAttribute("aria-label", name);
  b.append(svg(icon));
  return b;
}

function renderQueue() {
  if (!el || el.panel.hidden) return;
  const focusedPos = document.activeElement?.closest?.(".queue-item")?.dataset.pos;
  const focusedName = document.activeElement?.getAttribute?.("aria-label");
  el.now.replaceChildren(...(state.index >= 0 ? [queueRow(current(), state.index, { now: true })] : []));
  // Songs queued by hand come first ("Next in queue"), then the rest of the album or list.
  const queued = [];
  const upcoming = [];
  for (let pos = state.index + 1; pos < state.items.length && queued.length + upcoming.length < 100; pos += 1) {
    const it = state.items[pos];
    (it.q && !upcoming.length ? queued : upcoming).push(queueRow(it, pos));
  }
  el.queuedList.replaceChildren(...queued);
  el.nextList.replaceChildren(...upcoming);
  el.queuedLabel.hidden = !queued.length;
  el.nextLabel.hidden = !upcoming.length;
  el.empty.hidden = queued.length + upcoming.length > 0;
  // Rows of some pages leave the artist out (an album's own): ask the API, once per song.
  const missing = [...new Set(state.items.slice(state.index, state.index + 100).map((it) => it.id))]
    .filter((id) => !songs.has(id) && !unknownSongs.has(id));
  if (missing.length) {
    const batch = missing.slice(0, 20);
    Promise.allSettled(batch.map(song)).then((results) => {
      results.forEach((r, i) => { if (r.status === "rejected") unknownSongs.add(batch[i]); });
      renderQueue();
    });
  }
  if (focusedPos !== undefined && focusedName) {
    el.panel.querySelector(`[aria-label="${CSS.escape(focusedName)}"]`)?.focus();
  }
}

function toggleQueue(open = el.panel.hidden) {
  el.panel.hidden = !open;
  el.queue.setAttribute("aria-expanded", String(open));
  footer.classList.toggle("queue-open", open);
  if (open) { renderQueue(); el.panel.querySelector("h2").setAttribute("tabindex", "-1"); el.panel.querySelector("h2").focus(); }
  else el.queue.focus();
}

function showBuffered() {
  const d = audio.duration;
  if (!Number.isFinite(d) || d <= 0) { el.buffered.replaceChildren(); return; }
  const spans = [];
  for (let i = 0; i < audio.buffered.length; i += 1) {
    const s = document.createElement("span");
    const start = audio.buffered.start(i) / d;
    const end = audio.buffered.end(i) / d;
    s.style.left = `${(start * 100).toFixed(2)}%`;   // CSSOM, allowed by the CSP (no style attribute in markup)
    s.style.width = `${((end - start) * 100).toFixed(2)}%`;
    spans.push(s);
  }
  el.buffered.replaceChildren(...spans);
}

function showTime() {
  const d = Number.isFinite(audio.duration) ? audio.duration : (songs.get(current()?.id)?.duration_ms || 0) / 1000;
  const t = seeking ? Number(el.seek.value) : audio.currentTime;
  el.time.textContent = fmt(t);
  el.duration.textContent = fmt(d);
  el.seek.max = String(Math.max(0, Math.floor(d)));
  if (!seeking) el.seek.value = String(Math.floor(t));
  el.seek.setAttribute("aria-valuetext", `${fmt(t)} of ${fmt(d)}`);
  el.seek.style.setProperty("--pct", d ? `${Math.min(100, (t / d) * 100)}%` : "0%");
}

function showVolume() {
  audio.volume = state.volume;
  audio.muted = state.muted;
  el.volume.value = String(Math.round((state.muted ? 0 : state.volume) * 100));
  el.volume.style.setProperty("--pct", `${state.muted ? 0 : state.volume * 100}%`);
  el.volume.setAttribute("aria-valuetext", state.muted ? "Muted" : `${Math.round(state.volume * 100)}%`);
  el.mute.setAttribute("aria-pressed", String(state.muted));
  el.mute.setAttribute("aria-label", state.muted ? "Unmute" : "Mute");
  footer.classList.toggle("is-muted", state.muted || state.volume === 0);
}

let toastTimer;
function toast(text) {
  let t = document.querySelector(".player-toast");
  if (!t) {
    t = document.createElement("p");
    t.className = "player-toast";
    t.setAttribute("aria-hidden", "true"); // the status region announces it
    document.body.append(t);
  }
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 2400);
}

// ------------------------------------------------------------------ media session

function mediaMetadata(s) {
  if (!("mediaSession" in navigator) || typeof MediaMetadata === "undefined") return;
  const artwork = s.cover_url ? [300, 640].map((n) => ({ src: new URL(sized(s.cover_url, n), location.href).href, sizes: `${n}x${n}` })) : [];
  navigator.mediaSession.metadata = new MediaMetadata({ title: s.title, artist: s.artist?.name || "", album: s.album?.title || "", artwork });
}

function positionState() {
  if (!("mediaSession" in navigator) || !navigator.mediaSession.setPositionState) return;
  const d = audio.duration;
  if (!Number.isFinite(d) || d <= 0) return;
  try {
    navigator.mediaSession.setPositionState({ duration: d, playbackRate: audio.playbackRate || 1, position: Math.min(audio.currentTime, d) });
  } catch { /* an inconsistent moment during a seek */ }
}

function mediaHandlers() {
  if (!("mediaSession" in navigator)) return;
  const set = (action, fn) => { try { navigator.mediaSession.setActionHandler(action, fn); } catch { /* unsupported */ } };
  set("play", () => playAudio());
  set("pause", () => pauseAudio());
  set("previoustrack", () => prev());
  set("nexttrack", () => next());
  set("seekbackward", (d) => seekBy(-(d.seekOffset || SEEK_STEP_S * 2)));
  set("seekforward", (d) => seekBy(d.seekOffset || SEEK_STEP_S * 2));
  set("seekto", (d) => {
    if (d.fastSeek && "fastSeek" in audio) audio.fastSeek(d.seekTime); else audio.currentTime = d.seekTime;
    positionState();
  });
}

// ------------------------------------------------------------------ controls

function togglePlay() {
  if (state.index < 0) return;
  if (audio.paused) playAudio(); else pauseAudio();
}

function seekBy(delta) {
  if (state.index < 0) return;
  const d = Number.isFinite(audio.duration) ? audio.duration : Infinity;
  audio.currentTime = Math.max(0, Math.min(d - 0.25, audio.currentTime + delta));
  showTime();
}

function contextIds(trigger) {
  // The rows of the list the button sits in; an album's discs and history's days count as one list.
  const main = document.getElementById("main") || document;
  const list = trigger.closest("[data-play-list], ol, ul");
  if (!list) return [Number(trigger.dataset.songId)];
  let lists = [list];
  if (!list.hasAttribute("data-play-list") && list.className && main.contains(list)) {
    lists = [...main.querySelectorAll(list.tagName)].filter((l) => l.className === list.className);
  }
  const ids = [];
  for (const l of lists) {
    for (const row of l.querySelectorAll(":scope > [data-song-id]")) ids.push(Number(row.dataset.songId));
  }
  return ids.length ? ids : [Number(trigger.dataset.songId)];
}

function onPageClick(event) {
  const b = event.target.closest("button.play[data-song-id], .recent-play[data-song-id], [data-play-context]");
  if (!b || !document.contains(b) || footer.contains(b)) return;
  event.preventDefault();
  if (b.hasAttribute("data-play-context")) {
    const list = document.querySelector(b.dataset.playContext || "#main .tracklist");
    const ids = list ? [...list.closest("#main").querySelectorAll(`.${[...list.classList].join(".")} > [data-song-id]`)].map((r) => Number(r.dataset.songId)) : [];
    if (!ids.length) return;
    const same = state.items.length === ids.length && state.items.every((it, i) => it.id === ids[i]);
    if (same && state.index >= 0) { togglePlay(); return; }
    playList(ids, 0);
    return;
  }
  const id = Number(b.dataset.songId);
  if (current()?.id === id) { togglePlay(); return; }
  const ids = contextIds(b);
  learnRows(document);
  playList(ids, Math.max(0, ids.indexOf(id)));
}

// Row menus: "Play next" and "Add to queue" beside each song's other actions.
function closeMenu(focus = true) {
  const m = document.querySelector(".queue-menu");
  if (!m) return;
  m.opener?.setAttribute("aria-expanded", "false");
  if (focus) m.opener?.focus();
  m.remove();
}
function openMenu(opener) {
  closeMenu(false);
  const id = Number(opener.dataset.queueSong);
  const menu = document.createElement("ul");
  menu.className = "queue-menu";
  menu.setAttribute("role", "menu");
  menu.setAttribute("aria-label", `Queue options for ${label(id).title}`);
  menu.opener = opener;
  for (const [text, fn] of [["Play next", () => playNext([id])], ["Add to queue", () => addToQueue([id])]]) {
    const li = document.createElement("li");
    li.setAttribute("role", "none");
    const b = document.createElement("button");
    b.type = "button";
    b.setAttribute("role", "menuitem");
    b.textContent = text;
    b.addEventListener("click", () => { closeMenu(); fn(); });
    li.append(b);
    menu.append(li);
  }
  document.body.append(menu);
  const box = opener.getBoundingClientRect();
  menu.style.top = `${Math.max(8, Math.min(box.bottom + 4, innerHeight - menu.offsetHeight - 8))}px`;
  menu.style.left = `${Math.max(8, Math.min(box.right - menu.offsetWidth, innerWidth - menu.offsetWidth - 8))}px`;
  opener.setAttribute("aria-expanded", "true");
  menu.querySelector("button").focus();
  menu.addEventListener("keydown", (event) => {
    const items = [...menu.querySelectorAll("button")];
    const at = items.indexOf(document.activeElement);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      items[(at + (event.key === "ArrowDown" ? 1 : items.length - 1)) % items.length].focus();
    } else if (event.key === "Escape") { event.preventDefault(); event.stopPropagation(); closeMenu(); }
    else if (event.key === "Tab") closeMenu(false);
  });
}

function enhanceRows(root) {
  learnRows(root);
  for (const row of root.querySelectorAll("li.track[data-song-id]")) {
    if (row.querySelector("[data-queue-song]") || !row.querySelector(".track-actions")) continue;
    const id = row.dataset.songId;
    const title = row.querySelector(".track-title")?.textContent.trim() || "this song";
    const b = button("icon-button queue-more", `More options for ${title}`, "more");
    b.dataset.queueSong = id;
    b.setAttribute("aria-haspopup", "menu");
    b.setAttribute("aria-expanded", "false");
    // Rows without an actions cell (history, stats) keep their grid: their songs queue from elsewhere.
    row.querySelector(".track-actions")?.append(b);
  }
  // Album and playlist headers get a big Play button for the whole list.
  const hero = root.querySelector(".entity-hero");
  const list = root.querySelector(".tracklist");
  if (hero && list && list.querySelector("[data-song-id]") && !root.querySelector("[data-play-context]")) {
    const name = root.querySelector(".entity-name")?.textContent.trim() || "all";
    const bar = document.createElement("div");
    bar.className = "play-context-bar";
    const b = document.createElement("button");
    b.type = "button";
    b.className = "play-context";
    b.dataset.playContext = "#main .tracklist";
    b.setAttribute("aria-label", `Play ${name}`);
    b.append(svg("play", 24));
    bar.append(b);
    const actions = root.querySelector(".pl-actions");
    if (actions) actions.prepend(b);
    else {
      // One row of actions under the header: Play, then Save/Follow when the page has it.
      const toggle = hero.nextElementSibling?.matches(".library-toggle") ? hero.nextElementSibling : null;
      hero.after(bar);
      if (toggle) bar.append(toggle);
    }
  }
  markRows();
}

// Search results list songs as links; each gets a Play button, the other songs as its queue.
// search.js re-renders the results as you type, so an observer keeps them equipped.
let searchObserver = null;
function enhanceSearch(root) {
  const box = root.querySelector("#search-results");
  searchObserver?.disconnect();
  if (!box) return;
  const apply = () => {
    for (const a of box.querySelectorAll('a.search-row[id^="sr-songs-"]')) {
      const li = a.parentElement;
      if (!li || li.querySelector(".search-play")) continue;
      const id = a.id.slice("sr-songs-".length);
      const title = a.querySelector(".search-title")?.textContent.trim() || "this song";
      li.dataset.songId = id;
      li.classList.add("search-song");
      rowInfo.set(Number(id), { title, artist: (a.querySelector(".search-sub")?.textContent || "").split(" · ")[0] });
      const b = button("play search-play", `Play ${title}`, "play");
      b.dataset.songId = id;
      li.append(b);
    }
    markRows();
  };
  apply();
  searchObserver = new MutationObserver(apply);
  searchObserver.observe(box, { childList: true, subtree: true });
}

function onKey(event) {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
  const t = event.target;
  if (isTextField(t) || el.dialog.open && event.key !== "?") return;
  const onControl = t instanceof Element && t.closest("button, a, summary, [role=menu], input[type=range], [draggable=true]");
  switch (event.key) {
    case " ":
    case "Spacebar":
      if (onControl) return;   // Space presses the focused button
      event.preventDefault();
      togglePlay();
      break;
    case "ArrowLeft":
    case "ArrowRight": {
      if (t instanceof Element && t.closest("input[type=range], [role=menu], [draggable=true]")) return;
      event.preventDefault();
      const forward = event.key === "ArrowRight";
      if (event.shiftKey) { if (forward) next(); else prev(); } else seekBy(forward ? SEEK_STEP_S : -SEEK_STEP_S);
      break;
    }
    case "/": {
      const box = document.getElementById("search-q") || document.getElementById("top-search");
      if (box) { event.preventDefault(); box.focus(); box.select(); }
      break;
    }
    case "m":
    case "M":
      state.muted = !state.muted;
      showVolume();
      save();
      announce(state.muted ? "Muted" : "Sound on");
      break;
    case "l":
    case "L":
      toggleLike();
      break;
    case "?":
      event.preventDefault();
      if (el.dialog.open) el.dialog.close(); else el.dialog.showModal();
      break;
    default:
  }
}

// ------------------------------------------------------------------ wiring

function wire() {
  audio.addEventListener("play", () => setPlaying(true));
  audio.addEventListener("pause", () => { setPlaying(false); save(); });
  audio.addEventListener("playing", () => {
    footer.classList.remove("is-buffering");
    setPlaying(true);
    retried = false;  // it plays: a later expiry (a long pause) may retry again
  });
  audio.addEventListener("waiting", () => footer.classList.add("is-buffering"));
  audio.addEventListener("canplay", () => footer.classList.remove("is-buffering"));
  audio.addEventListener("loadedmetadata", () => {
    if (pendingSeek !== null) { audio.currentTime = Math.min(pendingSeek, Math.max(0, audio.duration - 0.5)); pendingSeek = null; }
    showTime();
    positionState();
  });
  audio.addEventListener("durationchange", showTime);
  audio.addEventListener("progress", showBuffered);
  let lastSave = 0;
  audio.addEventListener("timeupdate", () => {
    showTime();
    showBuffered();
    countPlayback();
    if (Date.now() - lastSave > SAVE_EVERY_MS) { lastSave = Date.now(); save(); positionState(); }
  });
  audio.addEventListener("seeking", () => { if (listen) listen.last = null; });
  audio.addEventListener("seeked", () => { showTime(); positionState(); });
  audio.addEventListener("ended", () => next(true));
  audio.addEventListener("error", async () => {
    // Most often an expired session cookie (401): a signed URL needs neither cookie nor header.
    const it = current();
    if (!it || retried) { footer.classList.remove("is-buffering"); announce("This song could not be played"); return; }
    retried = true;
    const token = loadToken;
    const at = audio.currentTime || pendingSeek || 0;
    const wasPlaying = wantPlay || !audio.paused;
    try {
      const { url } = await api("GET", `/api/song/${it.id}/stream-url`);
      if (token !== loadToken) return;
      pendingSeek = at > 0 ? at : null;
      audio.src = url;
      audio.load();
      if (wasPlaying) playAudio();
    } catch { announce("This song could not be played"); }
  });

  el.play.addEventListener("click", togglePlay);
  el.prev.addEventListener("click", prev);
  el.next.addEventListener("click", () => next());
  el.shuffle.addEventListener("click", () => setShuffle(!state.shuffle));
  el.repeat.addEventListener("click", () => {
    state.repeat = { off: "all", all: "one", one: "off" }[state.repeat];
    render();
    save();
    announce(`Repeat ${state.repeat === "one" ? "one song" : state.repeat}`);
  });
  el.like.addEventListener("click", toggleLike);
  el.queue.addEventListener("click", () => toggleQueue());
  el.help.addEventListener("click", () => el.dialog.showModal());
  el.mute.addEventListener("click", () => { state.muted = !state.muted; if (!state.muted && state.volume === 0) state.volume = 0.5; showVolume(); save(); });
  el.volume.addEventListener("input", () => {
    state.volume = Number(el.volume.value) / 100;
    state.muted = state.volume === 0;
    showVolume();
  });
  el.volume.addEventListener("change", () => save());
  el.seek.addEventListener("input", () => { seeking = true; showTime(); });
  el.seek.addEventListener("change", () => {
    seeking = false;
    audio.currentTime = Number(el.seek.value);
    showTime();
    save();
  });
  el.panel.addEventListener("click", (event) => {
    const b = event.target.closest("[data-queue]");
    if (!b) return;
    if (b.dataset.queue === "clear") clearQueue();
    if (b.dataset.queue === "close") toggleQueue(false);
  });
  el.panel.addEventListener("keydown", (event) => { if (event.key === "Escape") { event.stopPropagation(); toggleQueue(false); } });

  document.addEventListener("click", onPageClick);
  // A row's heart (library.js) liked the song playing: the bar's heart follows.
  document.addEventListener("click", (event) => {
    const b = event.target.closest("[data-like-song]");
    if (b && Number(b.dataset.likeSong) === current()?.id) {
      setTimeout(() => el.like.setAttribute("aria-pressed", b.getAttribute("aria-pressed") || "false"), 0);
    }
  });
  document.addEventListener("click", (event) => {
    const b = event.target.closest("[data-queue-song]");
    if (b) { event.stopPropagation(); openMenu(b); return; }
    if (!event.target.closest(".queue-menu")) closeMenu(false);
  }, true);
  document.addEventListener("keydown", onKey);
  document.addEventListener("sonora:navigate", (event) => {
    enhanceRows(event.detail?.root || document);
    enhanceSearch(event.detail?.root || document);
  });
  window.addEventListener("pagehide", () => { save(); beaconListen(); });
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") beaconListen(); });
  window.addEventListener("resize", () => closeMenu(false));
  mediaHandlers();
}

function init() {
  if (!footer || !audio) return;
  wire();
  const position = load();
  showVolume();
  enhanceRows(document);
  enhanceSearch(document);
  if (state.index >= 0 && state.items.length) {
    // Back where the listener left off, paused: browsers refuse to start sound on their own anyway.
    load_(state.index, { autoplay: false, position: position || 0 });
  } else {
    state.index = -1;
    render();
  }
  setPlaying(false);
}

init();

/** For other scripts (and tests): the player's small public surface. */
window.sonoraPlayer = {
  playList, playNext, addToQueue, next, prev, togglePlay, clearQueue,
  get queue() { return state.items.map((it) => it.id); },
  get index() { return state.index; },
  get state() { return { ...state, items: state.items.map((it) => ({ ...it })) }; },
};
