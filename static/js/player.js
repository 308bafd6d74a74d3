// The player: one <audio> in the footer that router.js never replaces, a queue, play reports,
// the Media Session (lock screen, headphones), keyboard shortcuts, and state that survives a reload.
//
// Pages only need to mark songs: any `button.play[data-song-id]` or `.recent-play[data-song-id]`
// plays that song with the other `[data-song-id]` rows of its list as the queue; a
// `[data-play-context]` button plays the page's first track list. Rows of the playing song get
// `is-playing`. Other scripts can drive it through `window.sonoraPlayer` (see the bottom).
//
// This module is the controller; the rest is split by concern:
//   player-state.js    the queue and settings, kept in localStorage
//   player-songs.js    song metadata (/api/song, the page's rows)
//   player-audio.js    the audio engine: the <audio>, signed-URL retry, the Media Session
//   player-reports.js  play reports (a listen, its threshold, retries, the beacon)
//   player-view.js     the bar and the queue panel
//   player-page.js     play buttons and menus on the page, keyboard shortcuts
import { LIKED, api, emit, on, toast } from "./ui.js";
import {
  applyPendingSeek, audio, canRetry, footer, isLatest, loadSource, mediaHandlers, mediaMetadata,
  pauseAudio, playAudio, played, positionState, retrySigned,
} from "./player-audio.js";
import { bindPage } from "./player-page.js";
import { beaconListen, countPlayback, newListen, seekStarted } from "./player-reports.js";
import { label, song } from "./player-songs.js";
import * as queue from "./player-state.js";
import { current, state } from "./player-state.js";
import {
  announce, el, focusInQueue, markRows, render, renderQueue, setPlaying, setQueueActions, setSeeking,
  showBuffered, showDetails, showLabel, showLiked, showTime, showVolume, toggleQueue,
} from "./player-view.js";

const PREV_RESTART_S = 3;
const MEDIA_SEEK_S = 10;
const SAVE_EVERY_MS = 2000;

const save = (position) => queue.store(position ?? (audio ? audio.currentTime : 0));
const play = () => playAudio(() => setPlaying(false));
const tell = (message) => { announce(message); toast(message, { quiet: true }); };

// ------------------------------------------------------------------ loading a song

function load(index, { autoplay = true, position = 0 } = {}) {
  if (index < 0 || index >= state.items.length) return;
  state.index = index;
  const id = current().id;
  newListen(id);
  const token = loadSource(id, position);
  if (autoplay) play();
  showSong(id, token);
  render();
  save(position);
}

async function showSong(id, token) {
  markRows();
  showLabel(label(id));
  let s;
  try { s = await song(id); } catch { return; }
  if (!isLatest(token)) return;
  showDetails(s);
  mediaMetadata(s);
  refreshLiked(s.id);
  renderQueue();
}

// ------------------------------------------------------------------ the queue

function playList(ids, start = 0) {
  if (!ids.length) return;
  load(queue.newQueue(ids, start));
}

function setShuffle(on) {
  queue.setShuffle(on);
  render();
  save();
  announce(on ? "Shuffle on" : "Shuffle off");
}

function playNext(ids) {
  queue.insertNext(ids);
  afterQueueChange(ids.length === 1 ? `${label(Number(ids[0])).title} plays next` : "Playing next");
}

function addToQueue(ids) {
  queue.insertQueued(ids);
  afterQueueChange(ids.length === 1 ? `${label(Number(ids[0])).title} added to the queue` : "Added to the queue");
}

function afterQueueChange(message) {
  if (state.index < 0) { load(0, { autoplay: true }); } else { render(); save(); }
  if (message) tell(message);
}

function move(pos, delta) {
  const it = queue.moveEntry(pos, delta);
  if (!it) return;
  const to = pos + delta;
  render();
  save();
  focusInQueue(`[data-pos="${to}"] [data-move="${delta < 0 ? "up" : "down"}"]:not(:disabled)`, `[data-pos="${to}"] button`);
  announce(`${label(it.id).title} moved to position ${to - state.index} in the queue`);
}

function removeAt(pos) {
  const it = queue.removeEntry(pos);
  if (!it) return;
  render();
  save();
  focusInQueue(`.queue-item[data-pos="${pos}"] .queue-tools button`, `[data-pos="${pos - 1}"] .queue-tools button`, '[data-queue="clear"]');
  announce(`${label(it.id).title} removed from the queue`);
}

function clearQueue() {
  queue.clearUpcoming();
  render();
  save();
  announce("Queue cleared");
}

function next(auto = false) {
  if (state.index < 0) return;
  if (auto && state.repeat === "one") { restart(); return; }
  if (state.index + 1 < state.items.length) { load(state.index + 1); return; }
  if (state.repeat === "all" && state.items.length) { load(0); return; }
  if (auto) {  // the end of the queue: stop on the last song, ready to play it again
    pauseAudio();
    audio.currentTime = 0;
    newListen(current().id);  // this listen is over (and reported); playing again is another
  }
}

function prev() {
  if (state.index < 0) return;
  if (audio.currentTime > PREV_RESTART_S || state.index === 0) { restart(); return; }
  load(state.index - 1);
}

function restart() {
  audio.currentTime = 0;
  newListen(current().id);
  play();
}

// ------------------------------------------------------------------ controls

function togglePlay() {
  if (state.index < 0) return;
  if (audio.paused) play(); else pauseAudio();
}

function seekBy(delta) {
  if (state.index < 0) return;
  const d = Number.isFinite(audio.duration) ? audio.duration : Infinity;
  audio.currentTime = Math.max(0, Math.min(d - 0.25, audio.currentTime + delta));
  showTime();
}

function toggleMute() {
  state.muted = !state.muted;
  showVolume();
  save();
  announce(state.muted ? "Muted" : "Sound on");
}

function cycleRepeat() {
  queue.cycleRepeat();
  render();
  save();
  announce(`Repeat ${state.repeat === "one" ? "one song" : state.repeat}`);
}

// The bar's heart and the rows' hearts (library.js) follow one event, whoever changed the like.
async function refreshLiked(id) {
  el.like.disabled = false;
  try {
    const [liked] = await api("GET", `/api/library/songs/contains?ids=${id}`);
    if (current()?.id === id) emit(LIKED, { songId: id, liked: Boolean(liked) });
  } catch { /* neutral heart */ }
}

async function toggleLike() {
  const it = current();
  if (!it) return;
  const liked = el.like.getAttribute("aria-pressed") !== "true";
  emit(LIKED, { songId: it.id, liked });
  el.like.classList.remove("is-pop");
  if (liked) requestAnimationFrame(() => el.like.classList.add("is-pop"));
  try {
    await api(liked ? "PUT" : "DELETE", `/api/library/songs/${it.id}`);
    tell(liked ? "Added to Liked Songs" : "Removed from Liked Songs");
  } catch {
    emit(LIKED, { songId: it.id, liked: !liked });
    toast("Could not update Liked Songs", { quiet: true });
  }
}

// ------------------------------------------------------------------ wiring

async function onAudioError() {
  const it = current();
  if (!it || !canRetry()) { footer.classList.remove("is-buffering"); announce("This song could not be played"); return; }
  if (!(await retrySigned(it.id, play))) announce("This song could not be played");
}

function wireAudio() {
  audio.addEventListener("play", () => setPlaying(true));
  audio.addEventListener("pause", () => { setPlaying(false); save(); });
  audio.addEventListener("playing", () => {
    footer.classList.remove("is-buffering");
    setPlaying(true);
    played();
  });
  audio.addEventListener("waiting", () => footer.classList.add("is-buffering"));
  audio.addEventListener("canplay", () => footer.classList.remove("is-buffering"));
  audio.addEventListener("loadedmetadata", () => { applyPendingSeek(); showTime(); positionState(); });
  audio.addEventListener("durationchange", showTime);
  audio.addEventListener("progress", showBuffered);
  let lastSave = 0;
  audio.addEventListener("timeupdate", () => {
    showTime();
    showBuffered();
    countPlayback();
    if (Date.now() - lastSave > SAVE_EVERY_MS) { lastSave = Date.now(); save(); positionState(); }
  });
  audio.addEventListener("seeking", seekStarted);
  audio.addEventListener("seeked", () => { showTime(); positionState(); });
  audio.addEventListener("ended", () => next(true));
  audio.addEventListener("error", onAudioError);
}

function wireVolumeAndSeek() {
  el.mute.addEventListener("click", () => { state.muted = !state.muted; if (!state.muted && state.volume === 0) state.volume = 0.5; showVolume(); save(); });
  el.volume.addEventListener("input", () => {
    state.volume = Number(el.volume.value) / 100;
    state.muted = state.volume === 0;
    showVolume();
  });
  el.volume.addEventListener("change", () => save());
  el.seek.addEventListener("input", () => { setSeeking(true); showTime(); });
  el.seek.addEventListener("change", () => {
    setSeeking(false);
    audio.currentTime = Number(el.seek.value);
    showTime();
    save();
  });
}

function wireBar() {
  el.play.addEventListener("click", togglePlay);
  el.prev.addEventListener("click", prev);
  el.next.addEventListener("click", () => next());
  el.shuffle.addEventListener("click", () => setShuffle(!state.shuffle));
  el.repeat.addEventListener("click", cycleRepeat);
  el.like.addEventListener("click", toggleLike);
  el.queue.addEventListener("click", () => toggleQueue());
  el.help.addEventListener("click", () => el.dialog.showModal());
  wireVolumeAndSeek();
  setQueueActions({ play: (pos) => load(pos), toggle: togglePlay, move, remove: removeAt });
  el.panel.addEventListener("click", (event) => {
    const b = event.target.closest("[data-queue]");
    if (!b) return;
    if (b.dataset.queue === "clear") clearQueue();
    if (b.dataset.queue === "close") toggleQueue(false);
  });
  el.panel.addEventListener("keydown", (event) => { if (event.key === "Escape") { event.stopPropagation(); toggleQueue(false); } });
}

function wireDocument() {
  on(LIKED, ({ songId, liked }) => showLiked(songId, liked));
  bindPage({ playList, playNext, addToQueue, togglePlay, next, prev, seekBy, toggleMute, toggleLike });
  window.addEventListener("pagehide", () => { save(); beaconListen(); });
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") beaconListen(); });
  mediaHandlers({ play, pause: pauseAudio, prev, next: () => next(), seekBy }, MEDIA_SEEK_S);
}

function init() {
  if (!footer || !audio) return;
  wireAudio();
  wireBar();
  wireDocument();
  const position = queue.restore();
  showVolume();
  if (state.index >= 0 && state.items.length) {
    // Back where the listener left off, paused: browsers refuse to start sound on their own anyway.
    load(state.index, { autoplay: false, position: position || 0 });
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
