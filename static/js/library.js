// The library and playlists: likes, add-to-playlist, the sidebar's playlists, and reordering a
// playlist by drag-and-drop or from the keyboard. Everything goes through the JSON API with the
// CSRF token; the pages' forms keep working without this script.
import { LIKED, api, closeMenu, emit, on, onPage, showMenu, toast } from "./ui.js";

const CONTAINS_MAX = 50;

// ------------------------------------------------------------------ likes

// Every heart of a song follows its like, whoever changed it (a row here, the player's bar).
function showLiked(songId, liked) {
  for (const b of document.querySelectorAll(`[data-like-song="${songId}"]`)) {
    b.setAttribute("aria-pressed", String(liked));
  }
}
const setLiked = (songId, liked) => emit(LIKED, { songId: Number(songId), liked });

// Clicks are handled once, on the document; `root` is the document at load, then each page
// router.js swaps in, whose buttons only need showing and their state.
async function likes(root) {
  const buttons = [...root.querySelectorAll("[data-like-song]")];
  if (!buttons.length) return;
  for (const b of buttons) b.hidden = false;
  const unknown = [...new Set(buttons.filter((b) => !b.hasAttribute("aria-pressed")).map((b) => b.dataset.likeSong))];
  for (let i = 0; i < unknown.length; i += CONTAINS_MAX) {
    const ids = unknown.slice(i, i + CONTAINS_MAX);
    try {
      const flags = await api("GET", `/api/library/songs/contains?ids=${ids.join(",")}`);
      ids.forEach((id, n) => showLiked(id, Boolean(flags[n])));
    } catch { /* the hearts stay neutral */ }
  }
}

async function onLikeClick(event) {
  const b = event.target.closest("[data-like-song]");
  if (!b) return;
  const id = b.dataset.likeSong;
  const liked = b.getAttribute("aria-pressed") !== "true";
  setLiked(id, liked);
  b.classList.remove("is-pop");
  if (liked) requestAnimationFrame(() => b.classList.add("is-pop"));
  try {
    await api(liked ? "PUT" : "DELETE", `/api/library/songs/${id}`);
    toast(liked ? "Added to Liked Songs" : "Removed from Liked Songs");
  } catch (err) {
    setLiked(id, !liked);
    toast(err.message);
  }
}

// ------------------------------------------------------------------ add to playlist

let myPlaylists = null;
async function playlists() {
  if (myPlaylists === null) {
    const page = await api("GET", "/api/playlist?limit=100");
    myPlaylists = page.items;
  }
  return myPlaylists;
}

async function addTo(playlist, songId) {
  await api("POST", `/api/playlist/${playlist.id}/songs`, { song_ids: [Number(songId)] });
  toast(`Added to ${playlist.name}`);
}

async function newPlaylistWith(songId) {
  const name = window.prompt("Name of the new playlist");
  if (!name || !name.trim()) return;
  const created = await api("POST", "/api/playlist", { name: name.trim() });
  myPlaylists = null;
  await addTo(created, songId);
  navPlaylists(document);
}

async function openMenu(opener) {
  closeMenu(false);
  const songId = opener.dataset.addSong;
  let lists = [];
  try { lists = await playlists(); } catch { /* only "New playlist" then */ }
  const items = [{ label: "New playlist…", run: () => newPlaylistWith(songId), className: "pl-menu-new" }];
  if (lists.length) items.push("separator");
  for (const p of lists) items.push({ label: p.name, run: () => addTo(p, songId) });
  showMenu(opener, { className: "pl-menu", label: "Add to playlist", items });
}

function onAddClick(event) {
  const b = event.target.closest("[data-add-song]");
  if (b) { event.stopPropagation(); openMenu(b); }
}

function addButtons(root) {
  for (const b of root.querySelectorAll("[data-add-song]")) b.hidden = false;
}

// ------------------------------------------------------------------ the sidebar

async function navPlaylists(root) {
  const card = root.querySelector("[data-nav-playlists]");
  if (!card) return;
  const list = card.querySelector(".nav-playlist-list");
  try {
    myPlaylists = null;
    const items = await playlists();
    list.replaceChildren(...items.slice(0, 30).map((p) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = `/playlist/${p.id}`;
      a.textContent = p.name;
      if (location.pathname === a.pathname) a.setAttribute("aria-current", "page");
      li.append(a);
      return li;
    }));
    list.hidden = items.length === 0;
    const hint = card.querySelector(".nav-card-text");
    if (hint && items.length) hint.hidden = true;
  } catch { /* keep the hint */ }
}

// ------------------------------------------------------------------ reordering a playlist

// A playlist's editable track list: `pl` holds what its handlers share.
function playlistOf(list, root) {
  const live = root.querySelector("#pl-live");
  const pl = {
    list,
    pid: list.dataset.playlistId,
    total: Number(list.dataset.total),
    rows: () => [...list.querySelectorAll(".pl-row")],
    title: (row) => row.querySelector(".track-title").textContent,
    announce: (text) => { if (live) live.textContent = text; },
  };
  pl.base = Math.min(...pl.rows().map((r) => Number(r.dataset.position)));
  return pl;
}

function renumber(pl) {
  pl.rows().forEach((row, i) => {
    const pos = pl.base + i;
    row.dataset.position = String(pos);
    row.querySelector(".track-index").textContent = String(pos + 1);
    const input = row.querySelector('input[name="position"]');
    if (input) input.value = String(pos);
    const up = row.querySelector('[data-move="up"]');
    const down = row.querySelector('[data-move="down"]');
    if (up) up.disabled = pos === 0;
    if (down) down.disabled = pos >= pl.total - 1;
  });
}

// Move the row at `from` to just before the entry at `before` (Spotify's insert_before).
async function moveRow(pl, row, before, keepFocus) {
  const from = Number(row.dataset.position);
  if (before === from || before === from + 1) return;
  const lastOnPage = pl.base + pl.rows().length;
  try {
    await api("PUT", `/api/playlist/${pl.pid}/songs/order`, { range_start: from, insert_before: before });
  } catch (err) {
    pl.announce(`Could not move ${pl.title(row)}: ${err.message}`);
    toast(err.message);
    return;
  }
  if (before < pl.base || before > lastOnPage) { location.reload(); return; }
  const anchor = pl.rows().find((r) => Number(r.dataset.position) === before) || null;
  pl.list.insertBefore(row, anchor);
  renumber(pl);
  row.classList.remove("is-moved");
  requestAnimationFrame(() => row.classList.add("is-moved"));
  if (keepFocus) row.focus();
  const now = Number(row.dataset.position);
  pl.announce(`${pl.title(row)} moved to position ${now + 1} of ${pl.total}.`);
}

async function removeRow(pl, row) {
  const pos = Number(row.dataset.position);
  try {
    await api("DELETE", `/api/playlist/${pl.pid}/songs`, { positions: [pos] });
  } catch (err) { toast(err.message); return; }
  const next = row.nextElementSibling || row.previousElementSibling;
  const name = pl.title(row);
  row.remove();
  pl.list.dataset.total = String(Number(pl.list.dataset.total) - 1);
  pl.announce(`${name} removed from the playlist.`);
  if (next) next.focus();
  setTimeout(() => location.reload(), 600); // counts and pages follow the server
}

// The row's buttons post forms without JavaScript; with it, they call the API in place.
function reorderByButtons(pl) {
  pl.list.addEventListener("submit", (event) => {
    const row = event.target.closest(".pl-row");
    const action = event.submitter?.value;
    if (!row || !action) return;
    event.preventDefault();
    const pos = Number(row.dataset.position);
    if (action === "remove") removeRow(pl, row);
    else moveRow(pl, row, action === "up" ? pos - 1 : pos + 2, false).then(() => event.submitter.focus());
  });
}

// Alt+↑/↓ on a focused row.
function reorderByKeys(pl) {
  pl.list.addEventListener("keydown", (event) => {
    const row = event.target.closest(".pl-row");
    if (!row || event.target !== row || !event.altKey) return;
    const pos = Number(row.dataset.position);
    if (event.key === "ArrowUp" && pos > 0) { event.preventDefault(); moveRow(pl, row, pos - 1, true); }
    if (event.key === "ArrowDown" && pos < pl.total - 1) { event.preventDefault(); moveRow(pl, row, pos + 2, true); }
  });
}

function reorderByDragging(pl) {
  const { list } = pl;
  let dragged = null;
  const clearMarks = () => { for (const r of pl.rows()) r.classList.remove("drop-before", "drop-after"); };
  const side = (row, event) => {
    const box = row.getBoundingClientRect();
    return event.clientY > box.top + box.height / 2 ? "after" : "before";
  };
  list.addEventListener("dragstart", (event) => {
    dragged = event.target.closest(".pl-row");
    if (!dragged) return;
    dragged.classList.add("is-dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", dragged.dataset.position);
  });
  list.addEventListener("dragend", () => { dragged?.classList.remove("is-dragging"); dragged = null; clearMarks(); });
  list.addEventListener("dragover", (event) => {
    const row = event.target.closest(".pl-row");
    if (!dragged || !row) return;
    event.preventDefault();
    clearMarks();
    if (row !== dragged) row.classList.add(`drop-${side(row, event)}`);
  });
  list.addEventListener("drop", (event) => {
    const row = event.target.closest(".pl-row");
    if (!dragged || !row) return;
    event.preventDefault();
    const target = Number(row.dataset.position);
    const before = side(row, event) === "after" ? target + 1 : target;
    clearMarks();
    moveRow(pl, dragged, before, true);
  });
}

function reorderable(root) {
  const list = root.querySelector(".pl-tracks[data-editable]");
  if (!list) return;
  const pl = playlistOf(list, root);
  reorderByButtons(pl);
  reorderByKeys(pl);
  reorderByDragging(pl);
}

// ------------------------------------------------------------------ small helpers

function copyButtons(root) {
  for (const b of root.querySelectorAll("[data-copy]")) {
    b.addEventListener("click", async () => {
      const input = root.querySelector(b.dataset.copy);
      if (!input) return;
      input.select();
      try { await navigator.clipboard.writeText(input.value); toast("Link copied"); } catch { /* selected */ }
    });
  }
}

function currentPlaylistMark() {
  for (const a of document.querySelectorAll(".nav-playlist-list a")) {
    if (a.pathname === location.pathname) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
}

if (document.body.classList.contains("shell")) { // signed-out pages have none of this
  document.addEventListener("click", onLikeClick);
  document.addEventListener("click", onAddClick);
  on(LIKED, ({ songId, liked }) => showLiked(songId, liked));
  navPlaylists(document);
  // The page as loaded, then each page router.js swaps into <main>.
  onPage((root) => {
    likes(root);
    addButtons(root);
    reorderable(root);
    copyButtons(root);
    if (root !== document) currentPlaylistMark();
  });
}
