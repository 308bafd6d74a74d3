// The audio engine: the footer's one <audio> (router.js never replaces it), which URL it plays,
// the signed-URL retry, and the Media Session (lock screen, headphones).
import { api } from "./ui.js";
import { sized } from "./player-songs.js";

export const footer = document.getElementById("player");
export const audio = footer ? footer.querySelector("audio") : null;

let loadToken = 0;
let retried = false;       // one signed-URL retry per loaded source
let pendingSeek = null;    // a position to apply once metadata is known
let wantPlay = false;      // the listener asked for sound (an error's pause does not change it)

/** Point the <audio> at song `id` (from `position` seconds); returns a token for `isLatest`. */
export function loadSource(id, position = 0) {
  const token = ++loadToken;
  retried = false;
  pendingSeek = position > 0 ? position : null;
  audio.src = `/api/stream/${id}`;
  audio.load();
  return token;
}

/** No other song was loaded since `token`. */
export const isLatest = (token) => token === loadToken;

export function pauseAudio() {
  wantPlay = false;
  audio.pause();
}

/** Start sound; `refused()` runs when the browser will not start it on its own. */
export function playAudio(refused) {
  wantPlay = true;
  const p = audio.play();
  if (p) p.catch((err) => { if (err.name === "NotAllowedError") refused(); });
}

/** Metadata is known: apply the position the load asked for. */
export function applyPendingSeek() {
  if (pendingSeek === null) return;
  audio.currentTime = Math.min(pendingSeek, Math.max(0, audio.duration - 0.5));
  pendingSeek = null;
}

/** It plays: a later expiry (a long pause) may retry again. */
export function played() {
  retried = false;
}

export const canRetry = () => !retried;

/**
 * The source failed, most often for an expired session cookie (401): a signed URL needs neither
 * cookie nor header. Same position, playing again if it was. Resolves false when that failed too.
 */
export async function retrySigned(id, play) {
  retried = true;
  const token = loadToken;
  const at = audio.currentTime || pendingSeek || 0;
  const wasPlaying = wantPlay || !audio.paused;
  try {
    const { url } = await api("GET", `/api/song/${id}/stream-url`);
    if (token !== loadToken) return true;
    pendingSeek = at > 0 ? at : null;
    audio.src = url;
    audio.load();
    if (wasPlaying) play();
    return true;
  } catch { return false; }
}

// ------------------------------------------------------------------ media session

export function mediaMetadata(s) {
  if (!("mediaSession" in navigator) || typeof MediaMetadata === "undefined") return;
  const artwork = s.cover_url ? [300, 640].map((n) => ({ src: new URL(sized(s.cover_url, n), location.href).href, sizes: `${n}x${n}` })) : [];
  navigator.mediaSession.metadata = new MediaMetadata({ title: s.title, artist: s.artist?.name || "", album: s.album?.title || "", artwork });
}

export function mediaPlaying(playing) {
  if ("mediaSession" in navigator) navigator.mediaSession.playbackState = playing ? "playing" : "paused";
}

export function positionState() {
  if (!("mediaSession" in navigator) || !navigator.mediaSession.setPositionState) return;
  const d = audio.duration;
  if (!Number.isFinite(d) || d <= 0) return;
  try {
    navigator.mediaSession.setPositionState({ duration: d, playbackRate: audio.playbackRate || 1, position: Math.min(audio.currentTime, d) });
  } catch { /* an inconsistent moment during a seek */ }
}

/** The lock screen's and headphones' buttons drive `player` ({play, pause, prev, next, seekBy}). */
export function mediaHandlers(player, stepS) {
  if (!("mediaSession" in navigator)) return;
  const set = (action, fn) => { try { navigator.mediaSession.setActionHandler(action, fn); } catch { /* unsupported */ } };
  set("play", () => player.play());
  set("pause", () => player.pause());
  set("previoustrack", () => player.prev());
  set("nexttrack", () => player.next());
  set("seekbackward", (d) => player.seekBy(-(d.seekOffset || stepS)));
  set("seekforward", (d) => player.seekBy(d.seekOffset || stepS));
  set("seekto", (d) => {
    if (d.fastSeek && "fastSeek" in audio) audio.fastSeek(d.seekTime); else audio.currentTime = d.seekTime;
    positionState();
  });
}
