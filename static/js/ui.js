// The scripts' shared layer: the JSON API, toasts, popup menus, confirmations, and the document
// events the modules talk through (instead of reading each other's DOM). It has no page of its
// own: app.js (page enhancements), search.js, library.js, player.js and router.js import it.
//
// Events, all dispatched on `document` with a `detail`:
//   sonora:navigate {url, root}     router.js swapped a page into <main> (root = the new <main>)
//   sonora:liked    {songId, liked} a song's like changed (or became known): every heart follows
//   sonora:played   {song_id, …}    the player's report of a listen was accepted
//   sonora:search-rendered {root}   search.js put new results into #search-results (root)

export const NAVIGATE = "sonora:navigate";
export const LIKED = "sonora:liked";
export const PLAYED = "sonora:played";
export const SEARCH_RENDERED = "sonora:search-rendered";

const TOAST_MS = 2600;

/** Dispatch a module-to-module event (see the list above). */
export function emit(name, detail) {
  document.dispatchEvent(new CustomEvent(name, { detail }));
}

/** Listen to one of those events; `fn` receives its detail. */
export function on(name, fn) {
  document.addEventListener(name, (event) => fn(event.detail ?? {}));
}

/**
 * Run `setUp(root)` for the page as loaded (root = document) and again for each page router.js
 * swaps in (root = the new <main>), so a page behaves the same however it was reached. Listeners
 * on `document` itself belong outside `setUp`: they are bound once.
 */
export function onPage(setUp) {
  setUp(document);
  on(NAVIGATE, (detail) => setUp(detail.root || document));
}

/** The CSRF token for scripts that send X-CSRF-Token (router.js refreshes it on every swap). */
export function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content ?? "";
}

/**
 * A JSON API call with the session cookie and the CSRF token. Resolves to the answer's JSON (null
 * for 204 or a body that is not JSON); rejects with an Error carrying the server's message and
 * `status` (0 when the network failed; an aborted call rejects with the AbortError itself).
 */
export async function api(method, path, body, { signal } = {}) {
  const init = { method, signal, credentials: "same-origin", headers: { Accept: "application/json", "X-CSRF-Token": csrfToken() } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  const data = resp.status === 204 ? null : await resp.json().catch((err) => {
    if (err.name === "AbortError") throw err;
    return null;
  });
  if (!resp.ok) {
    throw Object.assign(new Error(data?.error?.message || `Request failed (${resp.status})`), { status: resp.status });
  }
  return data;
}

// ------------------------------------------------------------------ toasts

let toastTimer;
/**
 * A short message over the player bar. It is a status region; `quiet` hides it from assistive
 * technology when the caller announces the same text in a live region of its own (the player's).
 */
export function toast(text, { quiet = false } = {}) {
  let el = document.querySelector(".toast");
  if (!el) {
    el = document.createElement("p");
    el.className = "toast";
    el.setAttribute("role", "status");
    document.body.append(el);
  }
  if (quiet) el.setAttribute("aria-hidden", "true"); else el.removeAttribute("aria-hidden");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, TOAST_MS);
}

// ------------------------------------------------------------------ popup menus

// One menu at a time: it closes on a click elsewhere, Escape, Tab, a resize or a scroll.
let menu = null;

export function closeMenu(restoreFocus = true) {
  if (!menu) return;
  const { opener } = menu;
  menu.remove();
  menu = null;
  opener.setAttribute("aria-expanded", "false");
  if (restoreFocus) opener.focus();
}

function menuItem({ label, run, className = "" }) {
  const li = document.createElement("li");
  li.setAttribute("role", "none");
  const b = document.createElement("button");
  b.type = "button";
  b.setAttribute("role", "menuitem");
  b.textContent = label; // text only: names are never parsed as markup
  if (className) b.className = className;
  b.addEventListener("click", async () => {
    closeMenu();
    try { await run(); } catch (err) { toast(err.message); }
  });
  li.append(b);
  return li;
}

function separator() {
  const li = document.createElement("li");
  li.className = "menu-sep";
  li.setAttribute("role", "separator");
  return li;
}

function onMenuKey(event) {
  const items = [...menu.querySelectorAll("button")];
  const at = items.indexOf(document.activeElement);
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    items[(at + (event.key === "ArrowDown" ? 1 : items.length - 1)) % items.length].focus();
  } else if (event.key === "Escape") {
    event.preventDefault();
    event.stopPropagation();  // the queue panel or a dialog behind it stays open
    closeMenu();
  } else if (event.key === "Tab") closeMenu(false);
}

/**
 * Open a menu under `opener` (closing any other). `items` are {label, run, className?} or the string
 * "separator"; a failing `run` shows its message as a toast. The menu's element gets `className`.
 */
export function showMenu(opener, { className, label, items }) {
  closeMenu(false);
  menu = document.createElement("ul");
  menu.className = className;
  menu.setAttribute("role", "menu");
  menu.setAttribute("aria-label", label);
  menu.opener = opener;
  for (const it of items) menu.append(it === "separator" ? separator() : menuItem(it));
  document.body.append(menu);
  const box = opener.getBoundingClientRect();
  menu.style.top = `${Math.max(8, Math.min(box.bottom + 4, innerHeight - menu.offsetHeight - 8))}px`;
  menu.style.left = `${Math.max(8, Math.min(box.right - menu.offsetWidth, innerWidth - menu.offsetWidth - 8))}px`;
  opener.setAttribute("aria-expanded", "true");
  menu.querySelector("button").focus();
  menu.addEventListener("keydown", onMenuKey);
}

document.addEventListener("click", (event) => {
  if (menu && !menu.contains(event.target)) closeMenu(false);
}, true);
window.addEventListener("resize", () => closeMenu(false));
window.addEventListener("scroll", (event) => { if (menu && !menu.contains(event.target)) closeMenu(false); }, true);

// ------------------------------------------------------------------ confirmations

/**
 * Ask before submitting forms marked with data-confirm (the server has its own confirmation step).
 * One listener on the document, in the capture phase: it sees every form, on the first page and on
 * every page router.js swaps in, before the form's own handlers (an upload, say) can act.
 */
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm")) return;
  if (!window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);
