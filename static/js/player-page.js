// The player on the page: play buttons on song rows and search results, the rows' "more" menu
// (Play next, Add to queue), the album's big Play button, and the keyboard shortcuts.
// `bindPage(player)` wires them to the controller player.js passes.
import { on, onPage, SEARCH_RENDERED, showMenu } from "./ui.js";
import { footer } from "./player-audio.js";
import { current, state } from "./player-state.js";
import { label, learnRows, learnSong } from "./player-songs.js";
import { button, el, markRows, svg } from "./player-view.js";

const SEEK_STEP_S = 5;

const isTextField = (t) => t && (t.isContentEditable || t.tagName === "TEXTAREA" || t.tagName === "SELECT"
  || (t.tagName === "INPUT" && !["range", "checkbox", "radio", "button", "submit"].includes(t.type)));

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

// The big Play button: the page's first track list, or play/pause when it is already the queue.
function playContext(player, b) {
  const list = document.querySelector(b.dataset.playContext || "#main .tracklist");
  const ids = list ? [...list.closest("#main").querySelectorAll(`.${[...list.classList].join(".")} > [data-song-id]`)].map((r) => Number(r.dataset.songId)) : [];
  if (!ids.length) return;
  const same = state.items.length === ids.length && state.items.every((it, i) => it.id === ids[i]);
  if (same && state.index >= 0) { player.togglePlay(); return; }
  player.playList(ids, 0);
}

function onPlayClick(player, event) {
  const b = event.target.closest("button.play[data-song-id], .recent-play[data-song-id], [data-play-context]");
  if (!b || !document.contains(b) || footer.contains(b)) return;
  event.preventDefault();
  if (b.hasAttribute("data-play-context")) { playContext(player, b); return; }
  const id = Number(b.dataset.songId);
  if (current()?.id === id) { player.togglePlay(); return; }
  const ids = contextIds(b);
  learnRows(document);
  player.playList(ids, Math.max(0, ids.indexOf(id)));
}

// Row menus: "Play next" and "Add to queue" beside each song's other actions.
function openQueueMenu(player, opener) {
  const id = Number(opener.dataset.queueSong);
  showMenu(opener, {
    className: "queue-menu",
    label: `Queue options for ${label(id).title}`,
    items: [{ label: "Play next", run: () => player.playNext([id]) }, { label: "Add to queue", run: () => player.addToQueue([id]) }],
  });
}

// Album and playlist headers get a big Play button for the whole list.
function playContextButton(root) {
  const hero = root.querySelector(".entity-hero");
  const list = root.querySelector(".tracklist");
  if (!hero || !list || !list.querySelector("[data-song-id]") || root.querySelector("[data-play-context]")) return;
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

function enhanceRows(root) {
  learnRows(root);
  for (const row of root.querySelectorAll("li.track[data-song-id]")) {
    // Rows without an actions cell (history, stats) keep their grid: their songs queue from elsewhere.
    if (row.querySelector("[data-queue-song]") || !row.querySelector(".track-actions")) continue;
    const title = row.querySelector(".track-title")?.textContent.trim() || "this song";
    const b = button("icon-button queue-more", `More options for ${title}`, "more");
    b.dataset.queueSong = row.dataset.songId;
    b.setAttribute("aria-haspopup", "menu");
    b.setAttribute("aria-expanded", "false");
    row.querySelector(".track-actions").append(b);
  }
  playContextButton(root);
  markRows();
}

// Search results list songs as links; each gets a Play button, the other songs as its queue.
// The page's first results come with it (onPage); search.js says when it renders new ones.
function enhanceSearch(root) {
  const box = root.id === "search-results" ? root : root.querySelector("#search-results");
  if (!box) return;
  for (const a of box.querySelectorAll('a.search-row[id^="sr-songs-"]')) {
    const li = a.parentElement;
    if (!li || li.querySelector(".search-play")) continue;
    const id = a.id.slice("sr-songs-".length);
    const title = a.querySelector(".search-title")?.textContent.trim() || "this song";
    li.dataset.songId = id;
    li.classList.add("search-song");
    learnSong(id, { title, artist: (a.querySelector(".search-sub")?.textContent || "").split(" · ")[0] });
    const b = button("play search-play", `Play ${title}`, "play");
    b.dataset.songId = id;
    li.append(b);
  }
  markRows();
}

function onArrow(player, event, t) {
  if (t instanceof Element && t.closest("input[type=range], [role=menu], [draggable=true]")) return;
  event.preventDefault();
  const forward = event.key === "ArrowRight";
  if (event.shiftKey) { if (forward) player.next(); else player.prev(); } else player.seekBy(forward ? SEEK_STEP_S : -SEEK_STEP_S);
}

function focusSearch(event) {
  const box = document.getElementById("search-q") || document.getElementById("top-search");
  if (box) { event.preventDefault(); box.focus(); box.select(); }
}

function onKey(player, event) {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
  const t = event.target;
  if (isTextField(t) || el.dialog.open && event.key !== "?") return;
  const onControl = t instanceof Element && t.closest("button, a, summary, [role=menu], input[type=range], [draggable=true]");
  switch (event.key) {
    case " ":
    case "Spacebar":
      if (onControl) return;   // Space presses the focused button
      event.preventDefault();
      player.togglePlay();
      break;
    case "ArrowLeft":
    case "ArrowRight":
      onArrow(player, event, t);
      break;
    case "/":
      focusSearch(event);
      break;
    case "m":
    case "M":
      player.toggleMute();
      break;
    case "l":
    case "L":
      player.toggleLike();
      break;
    case "?":
      event.preventDefault();
      if (el.dialog.open) el.dialog.close(); else el.dialog.showModal();
      break;
    default:
  }
}

/** `player`: {playList, playNext, addToQueue, togglePlay, next, prev, seekBy, toggleMute, toggleLike}. */
export function bindPage(player) {
  document.addEventListener("click", (event) => onPlayClick(player, event));
  document.addEventListener("click", (event) => {
    const b = event.target.closest("[data-queue-song]");
    if (b) { event.stopPropagation(); openQueueMenu(player, b); }
  }, true);
  document.addEventListener("keydown", (event) => onKey(player, event));
  onPage((root) => {
    enhanceRows(root);
    enhanceSearch(root);
  });
  on(SEARCH_RENDERED, ({ root }) => enhanceSearch(root));
}
