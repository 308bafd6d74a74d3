// What the player knows about songs: /api/song answers (asked once per song) and, until they come,
// what the page's rows say about them.
import { api } from "./ui.js";

export const songs = new Map();        // id → song JSON from /api/song/:id
const pending = new Map();             // id → Promise
export const unknownSongs = new Set(); // ids /api/song refused: not asked again
const rowInfo = new Map();             // id → {title, artist} read from page rows

export function song(id) {
  id = Number(id);
  if (songs.has(id)) return Promise.resolve(songs.get(id));
  if (!pending.has(id)) {
    pending.set(id, api("GET", `/api/song/${id}`).then((s) => { songs.set(id, s); pending.delete(id); return s; })
      .catch((err) => { pending.delete(id); throw err; }));
  }
  return pending.get(id);
}

export function learnRows(root) {
  for (const row of root.querySelectorAll("[data-song-id]")) {
    const id = Number(row.dataset.songId);
    const title = row.querySelector(".track-title, .recent-link, .rank-title")?.textContent.trim();
    const artist = row.querySelector(".track-artists a, .recent-sub, .rank-sub")?.textContent.trim();
    if (title && !rowInfo.has(id)) rowInfo.set(id, { title, artist: artist || "" });
  }
}

export function learnSong(id, info) {
  rowInfo.set(Number(id), info);
}

/** The best title and artist known now. */
export function label(id) {
  const s = songs.get(id);
  if (s) return { title: s.title, artist: s.artist?.name || "" };
  return rowInfo.get(id) || { title: `Song ${id}`, artist: "" };
}

/** A cover URL at another size. */
export const sized = (url, size) => (url ? url.replace(/([?&]size=)\d+/, `$1${size}`) : url);
