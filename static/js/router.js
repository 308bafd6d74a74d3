// Client-side navigation: clicks on in-app links fetch the page the server renders and swap only
// <main id="main">, so the player in the footer (and its <audio>) never stops. Every URL still
// renders in full on the server: a reload, a new tab or a failed fetch is an ordinary page load.
//
// After each swap, `document` receives a `sonora:navigate` CustomEvent with
// `detail = {url, root}` (`root` is the new <main>). Page scripts that bind to page content when
// they load should also bind on this event, to the elements under `detail.root` only, e.g.
//     document.addEventListener("sonora:navigate", (e) => setUp(e.detail.root));
// (`onPage(setUp)` from ui.js does both.) Listeners bound on `document` itself must not be bound
// again; behaviour shared by many pages (confirmations, flash buttons) is best delegated there.
//
// Not intercepted (full loads as before): other origins, `target`/`download` links, modified
// clicks, forms, `/api/`, `/static/`, `/logout`, `/login`, `/register`, `/s/`, `/admin`, and any
// link or ancestor marked `data-no-router`.
import { NAVIGATE, emit } from "./ui.js";

const main = () => document.getElementById("main");
const SKIP = /^\/(api|static|admin|logout|login|register|s)(\/|$)/;
let controller = null;
let shownUrl = new URL(location.href);

function routable(a) {
  if (!a || !a.href || a.hasAttribute("download") || a.closest("[data-no-router]")) return false;
  if (a.target && a.target !== "_self") return false;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || SKIP.test(url.pathname)) return false;
  return true;
}

function sameDocument(url) {
  return url.pathname === location.pathname && url.search === location.search && url.hash;
}

function setNavCurrent(doc) {
  // The sidebar stays; its "current page" marks follow the new page's.
  const fresh = new Map([...doc.querySelectorAll(".sidebar a[href]")].map((a) => [a.getAttribute("href"), a.getAttribute("aria-current")]));
  for (const a of document.querySelectorAll(".sidebar a[href]")) {
    const mark = fresh.get(a.getAttribute("href"));
    if (mark) a.setAttribute("aria-current", mark); else a.removeAttribute("aria-current");
  }
}

function focusHeading(root, url) {
  const anchor = url.hash ? document.getElementById(decodeURIComponent(url.hash.slice(1))) : null;
  const target = (anchor && root.contains(anchor) && anchor) || root.querySelector("[autofocus]") || root.querySelector("h1") || root;
  if (target !== root && !target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
  target.focus({ preventScroll: true });
  if (url.hash && target !== root) target.scrollIntoView(); else root.scrollTop = 0;
}

/** Swap in the page at `href`; `push` adds a history entry (links), popstate passes false. */
export async function navigate(href, { push = true, scroll = null } = {}) {
  const url = new URL(href, location.href);
  controller?.abort();
  controller = new AbortController();
  document.documentElement.classList.add("is-navigating");
  let resp;
  let text;
  try {
    resp = await fetch(url, { headers: { "X-Requested-With": "sonora-router", Accept: "text/html" }, credentials: "same-origin", signal: controller.signal });
    text = await resp.text();
  } catch (err) {
    if (err.name === "AbortError") return;
    location.assign(url);  // offline or refused: let the browser show what it can
    return;
  } finally {
    document.documentElement.classList.remove("is-navigating");
  }
  const final = new URL(resp.url || url);
  const doc = new DOMParser().parseFromString(text, "text/html");
  const fresh = doc.getElementById("main");
  // Signed out meanwhile (a redirect to /login), or a page without the shell: load it for real.
  if (!fresh || !doc.body.classList.contains("shell") || SKIP.test(final.pathname) || !(resp.headers.get("Content-Type") || "").includes("text/html")) {
    location.assign(final);
    return;
  }
  final.hash = url.hash;
  const current = main();
  if (push) {
    history.replaceState({ ...(history.state || {}), sonora: true, scroll: current.scrollTop }, "");
    history.pushState({ sonora: true }, "", final);
  } else if (final.href !== location.href) {
    history.replaceState({ sonora: true }, "", final);
  }
  current.className = fresh.className;
  current.replaceChildren(...[...fresh.childNodes].map((n) => document.adoptNode(n)));
  document.title = doc.title;
  const csrf = doc.querySelector('meta[name="csrf-token"]');
  if (csrf) document.querySelector('meta[name="csrf-token"]')?.setAttribute("content", csrf.content);
  setNavCurrent(doc);
  for (const d of document.querySelectorAll(".user-menu[open]")) d.open = false;
  shownUrl = new URL(location.href);
  focusHeading(current, final);
  if (scroll !== null) current.scrollTop = scroll;
  emit(NAVIGATE, { url: final.href, root: current });
}

function onClick(event) {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const a = event.target.closest("a[href]");
  if (!routable(a)) return;
  const url = new URL(a.href, location.href);
  if (sameDocument(url)) return;  // an anchor on this page: the browser scrolls
  event.preventDefault();
  navigate(url);
}

function onPopState(event) {
  const url = new URL(location.href);
  if (url.pathname === shownUrl.pathname && url.search === shownUrl.search) { shownUrl = url; return; }
  if (SKIP.test(url.pathname)) { location.reload(); return; }
  navigate(url, { push: false, scroll: event.state?.scroll ?? null });
}

if (main() && document.body.classList.contains("shell")) {
  document.documentElement.dataset.router = "on";   // app.js leaves back/forward to us
  history.scrollRestoration = "manual";
  document.addEventListener("click", onClick);
  window.addEventListener("popstate", onPopState);
  window.sonoraRouter = { navigate };
}
