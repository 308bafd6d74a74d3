// The player's bar and queue panel: what they show follows the state, the <audio> and the songs
// known. The queue panel's buttons call the actions player.js gives `setQueueActions`.
import { audio, footer, mediaPlaying } from "./player-audio.js";
import { current, state } from "./player-state.js";
import { label, song, songs, sized, unknownSongs } from "./player-songs.js";

const $ = (sel) => footer.querySelector(sel);
export const el = footer ? {
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

/** Said by the player's status region (screen readers). */
export const announce = (text) => { if (el) el.status.textContent = text; };

const fmt = (s) => {
  if (!Number.isFinite(s) || s < 0) s = 0;
  s = Math.floor(s);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
};

let seeking = false;       // the listener is dragging the seek bar
export const setSeeking = (on) => { seeking = on; };

let actions = { play() {}, toggle() {}, move() {}, remove() {} };
/** What the queue panel's buttons do: {play(pos), toggle(), move(pos, delta), remove(pos)}. */
export const setQueueActions = (given) => { actions = given; };

// ------------------------------------------------------------------ icons

const ICONS = {
  play: '<path d="M7 4.5v15l12-7.5z" fill="currentColor"/>',
  up: '<path d="m6 15 6-6 6 6"/>',
  down: '<path d="m6 9 6 6 6-6"/>',
  close: '<path d="M6 6l12 12M18 6 6 18"/>',
  more: '<circle cx="5" cy="12" r="1.6" fill="currentColor"/><circle cx="12" cy="12" r="1.6" fill="currentColor"/><circle cx="19" cy="12" r="1.6" fill="currentColor"/>',
};
export function svg(name, size = 18) {
  const s = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  for (const [k, v] of Object.entries({ class: "icon", width: size, height: size, viewBox: "0 0 24 24", "aria-hidden": "true", focusable: "false",
    fill: "none", stroke: "currentColor", "stroke-width": 2, "stroke-linecap": "round", "stroke-linejoin": "round" })) s.setAttribute(k, v);
  s.innerHTML = ICONS[name]; // constant markup, never data
  return s;
}
export function button(cls, name, icon) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = cls;
  b.setAttribute("aria-label", name);
  b.append(svg(icon));
  return b;
}

// ------------------------------------------------------------------ the bar

/** The title and artist known so far (a row's text, before /api/song answers). */
export function showLabel(info) {
  el.title.textContent = info.title;
  el.artist.textContent = info.artist;
}

/** The song as /api/song describes it: links, cover, the heart's name. */
export function showDetails(s) {
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
}

/** The bar's heart, when `id` is the song playing. */
export function showLiked(id, liked) {
  if (current()?.id === id) el.like.setAttribute("aria-pressed", String(liked));
}

export function setPlaying(playing) {
  footer.classList.toggle("is-playing", playing);
  el.play.setAttribute("aria-label", playing ? "Pause" : "Play");
  el.play.title = playing ? "Pause (Space)" : "Play (Space)";
  mediaPlaying(playing);
  markRows();
}

/** Rows of the playing song (on any page) get `is-playing`; its play buttons `is-current`. */
export function markRows() {
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

export function render() {
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

export function showBuffered() {
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

export function showTime() {
  const d = Number.isFinite(audio.duration) ? audio.duration : (songs.get(current()?.id)?.duration_ms || 0) / 1000;
  const t = seeking ? Number(el.seek.value) : audio.currentTime;
  el.time.textContent = fmt(t);
  el.duration.textContent = fmt(d);
  el.seek.max = String(Math.max(0, Math.floor(d)));
  if (!seeking) el.seek.value = String(Math.floor(t));
  el.seek.setAttribute("aria-valuetext", `${fmt(t)} of ${fmt(d)}`);
  el.seek.style.setProperty("--pct", d ? `${Math.min(100, (t / d) * 100)}%` : "0%");
}

export function showVolume() {
  audio.volume = state.volume;
  audio.muted = state.muted;
  el.volume.value = String(Math.round((state.muted ? 0 : state.volume) * 100));
  el.volume.style.setProperty("--pct", `${state.muted ? 0 : state.volume * 100}%`);
  el.volume.setAttribute("aria-valuetext", state.muted ? "Muted" : `${Math.round(state.volume * 100)}%`);
  el.mute.setAttribute("aria-pressed", String(state.muted));
  el.mute.setAttribute("aria-label", state.muted ? "Unmute" : "Mute");
  footer.classList.toggle("is-muted", state.muted || state.volume === 0);
}

// ------------------------------------------------------------------ the queue panel

function queueTools(it, pos, info) {
  const tools = document.createElement("span");
  tools.className = "queue-tools";
  const up = button("icon-button", `Move ${info.title} up`, "up");
  up.dataset.move = "up";
  up.disabled = pos === state.index + 1;
  up.addEventListener("click", () => actions.move(pos, -1));
  const down = button("icon-button", `Move ${info.title} down`, "down");
  down.dataset.move = "down";
  down.disabled = pos === state.items.length - 1;
  down.addEventListener("click", () => actions.move(pos, 1));
  const rm = button("icon-button", `Remove ${info.title} from the queue`, "close");
  rm.addEventListener("click", () => actions.remove(pos));
  tools.append(up, down, rm);
  return tools;
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
  play.addEventListener("click", () => { if (now) actions.toggle(); else actions.play(pos); });
  li.append(play, text);
  if (!now) {
    li.append(queueTools(it, pos, info));
    if (it.q) li.classList.add("is-queued");
  }
  return li;
}

// Rows of some pages leave the artist out (an album's own): ask the API, once per song.
function askMissing() {
  const missing = [...new Set(state.items.slice(state.index, state.index + 100).map((it) => it.id))]
    .filter((id) => !songs.has(id) && !unknownSongs.has(id));
  if (!missing.length) return;
  const batch = missing.slice(0, 20);
  Promise.allSettled(batch.map(song)).then((results) => {
    results.forEach((r, i) => { if (r.status === "rejected") unknownSongs.add(batch[i]); });
    renderQueue();
  });
}

export function renderQueue() {
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
  askMissing();
  if (focusedPos !== undefined && focusedName) {
    el.panel.querySelector(`[aria-label="${CSS.escape(focusedName)}"]`)?.focus();
  }
}

export function toggleQueue(open = el.panel.hidden) {
  el.panel.hidden = !open;
  el.queue.setAttribute("aria-expanded", String(open));
  footer.classList.toggle("queue-open", open);
  if (open) { renderQueue(); el.panel.querySelector("h2").setAttribute("tabindex", "-1"); el.panel.querySelector("h2").focus(); }
  else el.queue.focus();
}

/** Focus a queue row's button after a move or a removal (`selectors`: the first that matches). */
export function focusInQueue(...selectors) {
  for (const sel of selectors) {
    const b = el.panel.querySelector(sel);
    if (b) { b.focus(); return; }
  }
}
