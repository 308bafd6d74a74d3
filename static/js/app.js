// Sonora's page scripts: progressive enhancement only — every page works without them.
// This one enhances every page (flashes, uploads, the account menu); what the scripts share
// (the API, toasts, menus, confirmations, onPage) is ui.js.
import { csrfToken, onPage } from "./ui.js";

const FLASH_TIMEOUT_MS = 6000;

// Elements already set up, so a root enhanced twice (a swapped page, an upload's answer) is not.
const bound = new WeakSet();
function once(el) {
  if (bound.has(el)) return false;
  bound.add(el);
  return true;
}

function dismiss(flash) {
  flash.classList.add("is-leaving");
  flash.addEventListener("transitionend", () => flash.remove(), { once: true });
  // Reduced motion disables the transition, so no transitionend arrives.
  setTimeout(() => flash.remove(), 400);
}

/** Flash messages get a close button and fade out on their own, except errors. */
function flashes(root) {
  for (const flash of root.querySelectorAll("[data-flash]")) {
    if (!once(flash)) continue;
    const close = flash.querySelector("[data-dismiss]");
    if (close) close.hidden = false;  // its clicks are handled on the document (see below)
    if (!flash.classList.contains("flash-error")) {
      let timer = setTimeout(() => dismiss(flash), FLASH_TIMEOUT_MS);
      // Keep it while the reader is on it.
      flash.addEventListener("mouseenter", () => clearTimeout(timer));
      flash.addEventListener("mouseleave", () => { timer = setTimeout(() => dismiss(flash), FLASH_TIMEOUT_MS); });
    }
  }
}

function dismissClicks() {
  document.addEventListener("click", (event) => {
    const close = event.target.closest("[data-flash] [data-dismiss]");
    if (close) dismiss(close.closest("[data-flash]"));
  });
}

/** The greeting follows the listener's clock rather than the server's. */
function greeting(root) {
  const el = root.querySelector("[data-greeting]");
  if (!el) return;
  const hour = new Date().getHours();
  const text = hour >= 5 && hour < 12 ? "Good morning" : hour >= 12 && hour < 18 ? "Good afternoon" : "Good evening";
  const first = el.firstChild;
  if (first && first.nodeType === Node.TEXT_NODE) {
    first.textContent = first.textContent.replace(/^Good (morning|afternoon|evening)/, text);
  }
}

/** Close the account menu on Escape or a click elsewhere (looked up per event: uploads swap the page). */
function userMenu() {
  document.addEventListener("click", (event) => {
    const menu = document.querySelector(".user-menu");
    if (menu && menu.open && !menu.contains(event.target)) menu.open = false;
  });
  document.addEventListener("keydown", (event) => {
    const menu = document.querySelector(".user-menu");
    if (event.key === "Escape" && menu && menu.open) {
      menu.open = false;
      menu.querySelector("summary").focus();
    }
  });
}

/** The file picker of an upload form names what was chosen; files can be dropped on it. */
function dropzones(root) {
  for (const zone of root.querySelectorAll(".dropzone")) {
    if (!once(zone)) continue;
    const input = zone.querySelector("input[type=file]");
    const summary = zone.querySelector("[data-file-summary]");
    if (!input || !summary) continue;
    const show = () => {
      const names = Array.from(input.files, (f) => f.name);
      summary.textContent = names.length === 0 ? "You can pick several at once."
        : names.length === 1 ? names[0] : `${names.length} files: ${names.slice(0, 3).join(", ")}${names.length > 3 ? ", …" : ""}`;
    };
    input.addEventListener("change", show);
    zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("is-over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("is-over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("is-over");
      if (event.dataTransfer?.files.length) {
        input.files = event.dataTransfer.files;
        show();
      }
    });
  }
}

/**
 * Upload forms are sent with the X-CSRF-Token header, so the server streams each file to disk
 * instead of parsing the whole form in memory (without scripts the form posts normally, up to the
 * app's body size). The answer page replaces this one, as a normal submission would.
 */
function streamUploads(root) {
  for (const form of root.querySelectorAll("form[data-stream-upload]")) {
    if (!once(form)) continue;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      if (button) {
        button.dataset.label = button.textContent;
        button.textContent = button.dataset.busyLabel || "Sending…";
      }
      form.classList.add("is-busy");
      try {
        const response = await fetch(form.action, {
          method: "POST", body: new FormData(form), credentials: "same-origin",
          headers: { "X-CSRF-Token": csrfToken() },
        });
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        document.title = page.title;
        document.body.replaceWith(document.adoptNode(page.body));
        history.pushState(null, "", response.url);
        enhance(document.body);
      } catch {
        form.submit();  // the network failed: fall back to an ordinary submission
      }
    });
  }
}

function enhance(root) {
  flashes(root);
  greeting(root);
  dropzones(root);
  streamUploads(root);
}

dismissClicks();
userMenu();
onPage(enhance);
// A page swapped in by an upload is not in the history: going back reloads the real one
// (unless router.js is on: it swaps the right page in for every history entry).
window.addEventListener("popstate", () => {
  if (document.documentElement.dataset.router !== "on") window.location.reload();
});
