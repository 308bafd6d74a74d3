// The library and playlists: likes, add-to-playlist, the sidebar's playlists, and reordering a
// playlist by drag-and-drop or from the keyboard. Everything goes through the JSON API with the
// CSRF token; the pages' forms keep working without this script.
import { csrfToken } from "./app.js";

const CONTAINS_MAX = 50;

async function api(method, path, body) {
  const init = { method, headers: { "X-CSRF-Token": csrfToken(), Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  const data = resp.status === 204 ? null : await resp.json().catch(() => null);
  if (!resp.ok) throw new Error(data?.error?.message || `Request failed (${resp.status})`);
  return data;
}

let toastTimer;
function toast(text) {
  let el = document.querySelector(".pl-toast");
  if (!el) {
    el = document.createElement("p");
    el.className = "pl-toast";
    el.setAttribute("role", "status");
    document.body.append(el);
  }
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 2600);
}

// ------------------------------------------------------------------ likes

function setLiked(songId, liked) {
  for (const b of document.querySelectorAll(`[data-like-song="${songId}"]`)) {
    b.setAttribute("aria-pressed", String(liked));
  }
}

// Clicks are handled once, on the document; `root` is the document at load, then each page
// router.js swaps in (`sonora:navigate`), whose buttons only need showing and their state.
async function likes(root) {
  if (root === document) document.addEventListener("click", onLikeClick);
  const buttons = [...root.querySelectorAll("[data-like-song]")];
  if (!buttons.length) return;
  for (const b of buttons) b.hidden = false;
  const unknown = [...new Set(buttons.filter((b) => !b.hasAttribute("aria-pressed")).map((b) => b.dataset.likeSong))];
  for (let i = 0; i < unknown.length; i += CONTAINS_MAX) {
    const ids = unknown.slice(i, i + CONTAINS_MAX);
    try {
      const flags = await api("GET", `/api/library/songs/contains?ids=${ids.join(",")}`);
      ids.forEach((id, n) => setLiked(id, Boolean(flags[n])));
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

function closeMenu(restoreFocus = true) {
  const menu = document.querySelector(".pl-menu");
  if (!menu) return;
  const opener = menu.opener;
  menu.remove();
  if (opener) {
    opener.setAttribute("aria-expanded", "false");
    if (restoreFocus) opener.focus();
  }
}

async function addTo(playlist, songId) {
  await api("POST", `/api/playlist/${playlist.id}/songs`, { song_ids: [Number(songId)] });
  toast(`Added to ${playlist.name}`);
}

function menuItem(label, onChoose, cls = "") {
  const li = document.createElement("li");
  li.setAttribute("role", "none");
  const b = document.createElement("button");
  b.type = "button";
  b.setAttribute("role", "menuitem");
  b.textContent = label; // text only: names are never parsed as markup
  if (cls) b.className = cls;
  b.addEventListener("click", async () => {
    closeMenu();
    try { await onChoose(); } catch (err) { toast(err.message); }
  });
  li.append(b);
  return li;
}

async function openMenu(opener) {
  closeMenu(false);
  const songId = opener.dataset.addSong;
  const menu = document.createElement("ul");
  menu.className = "pl-menu";
  menu.setAttribute("role", "menu");
  menu.setAttribute("aria-label", "Add to playlist");
  menu.opener = opener;
  menu.append(menuItem("New playlist…", async () => {
    const name = window.prompt("Name of the new playlist");
    if (!name || !name.trim()) return;
    const created = await api("POST", "/api/playlist", { name: name.trim() });
    myPlaylists = null;
    await addTo(created, songId);
    navPlaylists(document);
  }, "pl-menu-new"));
  let lists = [];
  try { lists = await playlists(); } catch { /* only "New playlist" then */ }
  if (lists.length) {
    const sep = document.createElement("li");
    sep.className = "pl-menu-sep";
    sep.setAttribute("role", "separator");
    menu.append(sep);
  }
  for (const p of lists) menu.append(menuItem(p.name, () => addTo(p, songId)));
  document.body.append(menu);
  const box = opener.getBoundingClientRect();
  const top = Math.min(box.bottom + 4, window.innerHeight - menu.offsetHeight - 8);
  menu.style.top = `${Math.max(8, top)}px`;
  menu.style.left = `${Math.max(8, Math.min(box.right - menu.offsetWidth, window.innerWidth - menu.offsetWidth - 8))}px`;
  opener.setAttribute("aria-expanded", "true");
  menu.querySelector("button").focus();
  menu.addEventListener("keydown", (event) => {
    const items = [...menu.querySelectorAll("button")];
    const at = items.indexOf(document.activeElement);
    if (event.key === "ArrowDown") { event.preventDefault(); items[(at + 1) % items.length].focus(); }
    else if (event.key === "ArrowUp") { event.preventDefault(); items[(at - 1 + items.length) % items.length].focus(); }
    else if (event.key === "Escape") { event.preventDefault(); closeMenu(); }
    else if (event.key === "Tab") closeMenu(false);
  });
}

function addButtons(root) {
  const buttons = root.querySelectorAll("[data-add-song]");
  for (const b of buttons) b.hidden = false;
  if (root !== document) return; // a swapped-in page: the document's listeners below serve it
  root.addEventListener("click", (event) => {
    const b = event.target.closest("[data-add-song]");
    if (b) { event.stopPropagation(); openMenu(b); return; }
    if (!event.target.closest(".pl-menu")) closeMenu(false);
  });
  window.addEventListener("resize", () => closeMenu(false));
  window.addEventListener("scroll", () => closeMenu(false), true);
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

function reorderable(root) {
  const list = root.querySelector(".pl-tracks[data-editable]");
  if (!list) return;
  const pid = list.dataset.playlistId;
  const total = Number(list.dataset.total);
  const live = root.querySelector("#pl-live");
  const rows = () => [...list.querySelectorAll(".pl-row")];
  const base = Math.min(...rows().map((r) => Number(r.dataset.position)));
  const title = (row) => row.querySelector(".track-title").textContent;
  const announce = (text) => { if (live) live.textContent = text; };

  function renumber() {
    rows().forEach((row, i) => {
      const pos = base + i;
      row.dataset.position = String(pos);
      row.querySelector(".track-index").textContent = String(pos + 1);
      const input = row.querySelector('input[name="position"]');
      if (input) input.value = String(pos);
      const up = row.querySelector('[data-move="up"]');
      const down = row.querySelector('[data-move="down"]');
      if (up) up.disabled = pos === 0;
      if (down) down.disabled = pos >= total - 1;
    });
  }

  // Move the row at `from` to just before the entry at `before` (Spotify's insert_before).
  async function move(row, before, keepFocus) {
    const from = Number(row.dataset.position);
    if (before === from || before === from + 1) return;
    const lastOnPage = base + rows().length;
    try {
      await api("PUT", `/api/playlist/${pid}/songs/order`, { range_start: from, insert_before: before });
    } catch (err) {
      announce(`Could not move ${title(row)}: ${err.message}`);
      toast(err.message);
      return;
    }
    if (before < base || before > lastOnPage) { location.reload(); return; }
    const anchor = rows().find((r) => Number(r.dataset.position) === before) || null;
    list.insertBefore(row, anchor);
    renumber();
    row.classList.remove("is-moved");
    requestAnimationFrame(() => row.classList.add("is-moved"));
    if (keepFocus) row.focus();
    const now = Number(row.dataset.position);
    announce(`${title(row)} moved to position ${now + 1} of ${total}.`);
  }

  async function remove(row) {
    const pos = Number(row.dataset.position);
    try {
      await api("DELETE", `/api/playlist/${pid}/songs`, { positions: [pos] });
    } catch (err) { toast(err.message); return; }
    const next = row.nextElementSibling || row.previousElementSibling;
    const name = title(row);
    row.remove();
    list.dataset.total = String(Number(list.dataset.total) - 1);
    announce(`${name} removed from the playlist.`);
    if (next) next.focus();
    setTimeout(() => location.reload(), 600); // counts and pages follow the server
  }

  // The row's buttons post forms without JavaScript; with it, they call the API in place.
  list.addEventListener("submit", (event) => {
    const row = event.target.closest(".pl-row");
    const action = event.submitter?.value;
    if (!row || !action) return;
    event.preventDefault();
    const pos = Number(row.dataset.position);
    if (action === "remove") remove(row);
    else move(row, action === "up" ? pos - 1 : pos + 2, false).then(() => event.submitter.focus());
  });

  list.addEventListener("keydown", (event) => {
    const row = event.target.closest(".pl-row");
    if (!row || event.target !== row || !event.altKey) return;
    const pos = Number(row.dataset.position);
    if (event.key === "ArrowUp" && pos > 0) { event.preventDefault(); move(row, pos - 1, true); }
    if (event.key === "ArrowDown" && pos < total - 1) { event.preventDefault(); move(row, pos + 2, true); }
  });

  let dragged = null;
  const clearMarks = () => { for (const r of rows()) r.classList.remove("drop-before", "drop-after"); };
  list.addEventListener("dragstart", (event) => {
    dragged = event.target.closest(".pl-row");
    if (!dragged) return;
    dragged.classList.add("is-dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", dragged.dataset.position);
  });
  list.addEventListener("dragend", () => { dragged?.classList.remove("is-dragging"); dragged = null; clearMarks(); });
  const side = (row, event) => {
    const box = row.getBoundingClientRect();
    return event.clientY > box.top + box.height / 2 ? "after" : "before";
  };
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
    move(dragged, before, true);
  });
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

function init() {
  if (!document.body.classList.contains("shell")) return; // signed-out pages have none of this
  likes(document);
  addButtons(document);
  navPlaylists(document);
  reorderable(document);
  copyButtons(document);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
else init();

// router.js swapped a page into <main>: set up what is new there (see router.js).
document.addEventListener("sonora:navigate", (event) => {
  const root = event.detail.root;
  likes(root);
  addButtons(root);
  reorderable(root);
  copyButtons(root);
  for (const a of document.querySelectorAll(".nav-playlist-list a")) {
    if (a.pathname === location.pathname) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
});
