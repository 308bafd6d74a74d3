// The player's queue and settings, and their copy in localStorage (per listener, so the queue
// survives a reload). Plain data: nothing here touches the page or the <audio>.

export const state = {
  items: [],        // [{id, o, q}]: o = order in its context (un-shuffling), q = queued by hand
  index: -1,
  shuffle: false,
  repeat: "off",    // off | all | one
  volume: 1,
  muted: false,
};
let nextOrder = 0;
const item = (id, q = false) => ({ id: Number(id), o: nextOrder++, q });
export const current = () => state.items[state.index];
const storeKey = () => `sonora.player.v1.${document.getElementById("player")?.dataset.user || "anon"}`;

/** Keep the queue, the settings and the position (seconds) for the next load. */
export function store(position) {
  try {
    localStorage.setItem(storeKey(), JSON.stringify({
      items: state.items, index: state.index, shuffle: state.shuffle, repeat: state.repeat,
      volume: state.volume, muted: state.muted, position: Number.isFinite(position) ? position : 0,
    }));
  } catch { /* private mode or full: the player still works */ }
}

/** What `store` kept, into `state`; returns the position to resume at (null when nothing was kept). */
export function restore() {
  try {
    const saved = JSON.parse(localStorage.getItem(storeKey()) || "null");
    if (!saved || !Array.isArray(saved.items)) return null;
    state.items = saved.items.filter((it) => Number.isInteger(it?.id)).map((it) => ({ id: it.id, o: Number(it.o) || 0, q: Boolean(it.q) }));
    nextOrder = Math.max(0, ...state.items.map((it) => it.o + 1));
    state.index = Number.isInteger(saved.index) ? Math.min(saved.index, state.items.length - 1) : -1;
    state.shuffle = Boolean(saved.shuffle);
    state.repeat = ["off", "all", "one"].includes(saved.repeat) ? saved.repeat : "off";
    state.volume = Math.min(1, Math.max(0, Number(saved.volume ?? 1)));
    state.muted = Boolean(saved.muted);
    return Number(saved.position) || 0;
  } catch { return null; }
}

function shuffleInPlace(list) {
  for (let i = list.length - 1; i > 0; i -= 1) {
    const j = Math.floor(Math.random() * (i + 1));
    [list[i], list[j]] = [list[j], list[i]];
  }
  return list;
}

/** A new queue of `ids`; returns the index to play (the chosen song comes first when shuffling). */
export function newQueue(ids, start) {
  state.items = ids.map((id) => item(id));
  if (!state.shuffle) return start;
  const [first] = state.items.splice(start, 1);
  shuffleInPlace(state.items);
  state.items.unshift(first);
  return 0;
}

/** Shuffle (or restore the order of) what follows the current song; hand-queued songs stay first. */
export function setShuffle(on) {
  state.shuffle = on;
  const head = state.items.slice(0, state.index + 1);
  const tail = state.items.slice(state.index + 1);
  const queued = tail.filter((it) => it.q);
  const rest = tail.filter((it) => !it.q);
  if (on) shuffleInPlace(rest); else rest.sort((a, b) => a.o - b.o);
  state.items = [...head, ...queued, ...rest];
}

/** Right after the current song. */
export function insertNext(ids) {
  state.items.splice(state.index + 1, 0, ...ids.map((id) => item(id, true)));
}

/** After the songs already queued by hand, before the rest of the album or playlist (Spotify's way). */
export function insertQueued(ids) {
  let at = state.index + 1;
  while (at < state.items.length && state.items[at].q) at += 1;
  state.items.splice(at, 0, ...ids.map((id) => item(id, true)));
}

/** Move an upcoming entry by `delta`; returns the entry, or null when the move is not allowed. */
export function moveEntry(pos, delta) {
  const to = pos + delta;
  if (pos <= state.index || to <= state.index || to >= state.items.length) return null;
  const [it] = state.items.splice(pos, 1);
  state.items.splice(to, 0, it);
  return it;
}

/** Remove an upcoming entry; returns it, or null for the current song and those before it. */
export function removeEntry(pos) {
  if (pos <= state.index) return null;
  return state.items.splice(pos, 1)[0];
}

/** Keep only the current song. */
export function clearUpcoming() {
  state.items = state.index >= 0 ? [current()] : [];
  state.index = state.items.length ? 0 : -1;
}

export function cycleRepeat() {
  state.repeat = { off: "all", all: "one", one: "off" }[state.repeat];
}
