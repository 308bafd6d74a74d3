// Search as you type: the /search page (grouped results, a top result) and suggestions under the
// header's search box on every page. Both are ARIA comboboxes: ↑/↓ move, Enter opens, Esc closes.
import { api, emit, onPage, SEARCH_RENDERED } from "./ui.js";

const DEBOUNCE_MS = 150;

const esc = (text) => String(text ?? "").replace(/[&<>"']/g, (c) => (
  { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

function debounce(fn, ms) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

function hrefFor(type, item) {
  if (type === "song") return item.album_id ? `/album/${item.album_id}` : `/artist/${item.artist_id}`;
  return `/${type}/${item.id}`;
}

function describe(type, item) {
  if (type === "song") return { title: item.title, sub: item.artist.name + (item.album ? ` · ${item.album.title}` : ""), cover: item.cover_url };
  if (type === "album") return { title: item.title, sub: item.artist.name + (item.year ? ` · ${item.year}` : ""), cover: item.cover_url };
  if (type === "artist") return { title: item.name, sub: "Artist", cover: item.image_url };
  return { title: item.name, sub: `Playlist · by ${item.owner.username}`, cover: item.cover_url };
}

const thumb = (d, cls, size) => `<span class="${cls} hue-${Math.abs([...d.title].reduce((a, c) => a + c.charCodeAt(0), 0)) % 8}">${
  d.cover ? `<img src="${esc(d.cover.replace(/size=\d+/, `size=${size}`))}" alt="" loading="lazy">` : `<span aria-hidden="true">${esc(d.title.slice(0, 1).toUpperCase())}</span>`}</span>`;

function duration(ms) {
  const s = Math.floor((ms || 0) / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function renderResults(q, data) {
  const groups = [["songs", "Songs", "song"], ["artists", "Artists", "artist"], ["albums", "Albums", "album"], ["playlists", "Playlists", "playlist"]];
  if (!groups.some(([key]) => data[key].total)) {
    return `<div class="search-empty"><h2>No results for “${esc(q)}”</h2><p>Check the spelling, or try fewer or different words.</p></div>`;
  }
  let html = '<div class="search-grid">';
  if (data.top_result) {
    const { type, item } = data.top_result;
    const d = describe(type, item);
    html += `<section class="search-group search-top" aria-labelledby="sr-top"><h2 id="sr-top" class="search-heading">Top result</h2>
      <a class="top-card search-option" role="option" id="sr-top-item" href="${hrefFor(type, item)}" aria-selected="false">
      ${thumb(d, `top-cover${type === "artist" ? " round" : ""}`, 300)}
      <span class="top-title">${esc(d.title)}</span>
      <span class="top-sub">${type === "artist" ? "" : esc(d.sub.split(" · ")[0]) + " · "}<span class="pill">${type[0].toUpperCase() + type.slice(1)}</span></span></a></section>`;
  }
  for (const [key, label, type] of groups) {
    const group = data[key];
    if (!group.total) continue;
    html += `<section class="search-group search-${key}" aria-labelledby="sr-${key}"><h2 id="sr-${key}" class="search-heading">${label} <span class="search-count">${group.total}</span></h2><ul class="search-list" role="group" aria-labelledby="sr-${key}">`;
    for (const item of group.items) {
      const d = describe(type, item);
      html += `<li role="presentation"><a class="search-row search-option" role="option" id="sr-${key}-${item.id}" href="${hrefFor(type, item)}" aria-selected="false">
        ${thumb(d, `search-thumb${type === "artist" ? " round" : ""}`, 64)}
        <span class="search-text"><span class="search-title">${esc(d.title)}</span><span class="search-sub">${esc(d.sub)}</span></span>
        ${type === "song" ? `<span class="search-meta">${duration(item.duration_ms)}</span>` : ""}</a></li>`;
    }
    html += "</ul></section>";
  }
  return html + "</div>";
}

// Keyboard navigation over the [role=option] elements of a listbox, driven from the input.
function navigable(input, listbox, onClose) {
  let active = -1;
  const options = () => [...listbox.querySelectorAll('[role="option"]')];
  const select = (index) => {
    const all = options();
    all.forEach((el, i) => el.setAttribute("aria-selected", String(i === index)));
    active = index;
    if (index >= 0 && all[index]) {
      input.setAttribute("aria-activedescendant", all[index].id);
      all[index].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  };
  input.addEventListener("keydown", (event) => {
    const all = options();
    if (event.key === "ArrowDown" && all.length) {
      event.preventDefault();
      select(Math.min(active + 1, all.length - 1));
    } else if (event.key === "ArrowUp" && all.length) {
      event.preventDefault();
      select(Math.max(active - 1, -1));
    } else if (event.key === "Enter" && active >= 0 && all[active]) {
      event.preventDefault();
      window.location.assign(all[active].href);
    } else if (event.key === "Escape") {
      select(-1);
      onClose?.();
    }
  });
  return { reset: () => select(-1) };
}

function setupSearchPage(page) {
  const input = page.querySelector("#search-q");
  const results = page.querySelector("#search-results");
  const status = page.querySelector("#search-status");
  const endpoint = page.dataset.api;
  let controller;
  const nav = navigable(input, results);
  const run = debounce(async () => {
    const q = input.value.trim();
    const url = new URL(window.location.href);
    if (q) url.searchParams.set("q", q); else url.searchParams.delete("q");
    history.replaceState(null, "", url);
    controller?.abort();
    controller = new AbortController();
    if (!q) {
      results.innerHTML = '<div class="search-empty"><h2>Find your music</h2><p>Start typing: songs, artists, albums and playlists appear as you type, typos forgiven.</p></div>';
      input.setAttribute("aria-expanded", "false");
      status.textContent = "";
      return;
    }
    try {
      const data = await api("GET", `${endpoint}?q=${encodeURIComponent(q)}&limit=10`, undefined, { signal: controller.signal });
      if (input.value.trim() !== q) return;
      results.innerHTML = renderResults(q, data);
      emit(SEARCH_RENDERED, { root: results });
      nav.reset();
      const count = data.songs.total + data.artists.total + data.albums.total + data.playlists.total;
      input.setAttribute("aria-expanded", count ? "true" : "false");
      status.textContent = count ? `${count} results` : "No results";
    } catch (err) {
      if (err.name === "AbortError") return;
      results.innerHTML = '<div class="search-empty" role="alert"><h2>Search is unavailable right now</h2><p>Everything else still works; try again in a moment.</p></div>';
    }
  }, DEBOUNCE_MS);
  input.addEventListener("input", run);
  const end = input.value.length;
  input.setSelectionRange(end, end);
}

function setupHeaderSuggestions(input) {
  const form = input.closest("form");
  const list = document.createElement("ul");
  list.id = "top-search-suggestions";
  list.className = "suggest-list";
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", "Suggestions");
  list.hidden = true;
  form.append(list);
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", list.id);
  input.setAttribute("aria-expanded", "false");
  const close = () => { list.hidden = true; input.setAttribute("aria-expanded", "false"); };
  const nav = navigable(input, list, close);
  let controller;
  const run = debounce(async () => {
    const q = input.value.trim();
    controller?.abort();
    if (!q) { close(); return; }
    controller = new AbortController();
    try {
      const data = await api("GET", `/api/search/suggest?q=${encodeURIComponent(q)}&limit=7`, undefined, { signal: controller.signal });
      if (input.value.trim() !== q) return;
      const items = data.suggestions.map((s, i) => `<li role="presentation"><a role="option" id="sg-${i}" class="suggest-option" aria-selected="false" href="${s.type === "song" ? `/search?q=${encodeURIComponent(s.text)}` : `/${s.type}/${s.id}`}">
        <span class="suggest-text">${esc(s.text)}</span><span class="suggest-sub">${esc(s.type[0].toUpperCase() + s.type.slice(1))}${s.subtitle && s.type !== "artist" ? ` · ${esc(s.subtitle)}` : ""}</span></a></li>`);
      items.push(`<li role="presentation"><a role="option" id="sg-all" class="suggest-option suggest-all" aria-selected="false" href="/search?q=${encodeURIComponent(q)}">See all results for “${esc(q)}”</a></li>`);
      list.innerHTML = items.join("");
      nav.reset();
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    } catch (err) {
      if (err.name !== "AbortError") close();
    }
  }, DEBOUNCE_MS);
  input.addEventListener("input", run);
  input.addEventListener("blur", () => setTimeout(close, 150));
  input.addEventListener("focus", () => { if (list.children.length && input.value.trim()) { list.hidden = false; input.setAttribute("aria-expanded", "true"); } });
}

// The /search page, as loaded or swapped in by router.js.
onPage((root) => {
  const page = root.querySelector("[data-search-page]");
  if (page) setupSearchPage(page);
});
// The header box suggests on every page, /search included (opened there directly or navigated to).
const top = document.getElementById("top-search");
if (top) setupHeaderSuggestions(top);
