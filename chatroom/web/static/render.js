// What the page shows. Everything a peer sent goes in with textContent: never HTML.
// Each room has its own list of messages (a tab); `box` is the list to write to.
//
// A busy room must not freeze the page: new lines are made at once but put on the
// page together, once per frame (one layout, one scroll), and a list keeps at most
// MAX_LINES lines -- the oldest go while the reader is at the bottom, and come back
// from the server when scrolled to (the page's "older" paging).
export const MAX_LINES = 500;
const waiting = new Map();   // box -> lines made, not yet on the page
let scheduled = false;
let onTrimmed = () => {};    // (box) -> after old lines were removed from the top

export function trimmed(callback) { onTrimmed = callback; }

function clock(ts) {
  const when = new Date(ts * 1000);
  const now = new Date();
  const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return when.toDateString() === now.toDateString() ? time : `${when.toLocaleDateString()} ${time}`;
}

function item(parts, className) {
  const li = document.createElement("li");
  if (className) li.className = className;
  for (const [cls, text] of parts) {
    const span = document.createElement("span");
    if (cls) span.className = cls;
    if (cls === "text") span.append(...linked(text));
    else span.textContent = text;
    li.append(span);
  }
  return li;
}

// http(s) addresses become links (opened apart from the page, telling it nothing);
// nothing else does -- no javascript:, no data:.  The rest stays text.
const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/g;
// A sentence's end is not the link's: trailing punctuation, and a closing bracket
// that opens nowhere in the address (Wikipedia's "a_(b)" keeps its own).
function withoutTrailing(address) {
  for (;;) {
    const before = address;
    address = address.replace(/[.,;:!?'"]+$/, "");
    for (const [open, close] of [["(", ")"], ["[", "]"], ["{", "}"]]) {
      if (address.endsWith(close) && address.split(open).length < address.split(close).length) {
        address = address.slice(0, -1);
      }
    }
    if (address === before) return address;
  }
}

export function linked(text) {
  const out = [];
  let at = 0;
  for (const found of text.matchAll(URL_RE)) {
    const address = withoutTrailing(found[0]);
    const source = found.input;
    if (found.index > at) out.push(document.createTextNode(source.slice(at, found.index)));
    const a = document.createElement("a");
    a.href = address;
    a.rel = "noopener noreferrer";
    a.target = "_blank";
    a.textContent = address;
    out.push(a);
    at = found.index + address.length;
  }
  const rest = text.slice(at);
  if (rest || !out.length) out.push(document.createTextNode(rest));
  return out;
}

// The same nick, the same colour (one of eight, readable in both themes).
export function nickColour(nick) {
  let h = 0;
  for (const ch of nick.toLowerCase()) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return `c${h % 8}`;
}

function line(box, parts, className = "") {
  box.lastChat = null;  // (a line between two of a person's breaks the group)
  return queue(box, item(parts, className));
}

function queue(box, li) {
  const lines = waiting.get(box);
  if (lines) lines.push(li);
  else waiting.set(box, [li]);
  if (!scheduled) {
    scheduled = true;
    // A frame, or 100 ms in a tab the browser does not draw (no frames there).
    const timer = setTimeout(flush, 100);
    requestAnimationFrame(() => { clearTimeout(timer); flush(); });
  }
  return li;
}

// Put every waiting line on the page: per list, one append and one scroll.
export function flush() {
  scheduled = false;
  for (const [box, lines] of waiting) {
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    box.append(...lines);
    const extra = box.childElementCount - MAX_LINES;
    if (extra > 0 && (atBottom || box.hidden)) {
      for (let i = 0; i < extra; i++) box.firstElementChild.remove();
      onTrimmed(box);
    }
    if (atBottom) box.scrollTop = box.scrollHeight;
    else box.unseen = (box.unseen || 0) + lines.length;
    onArrived(box, atBottom);
  }
  waiting.clear();
}

let onArrived = () => {};    // (box, at the bottom?) -> after new lines were put on a list
export function arrived(callback) { onArrived = callback; }

// Scrolled away from the newest lines?  (The page shows "jump to latest" then.)
export function readingBack(box) { return box.scrollHeight - box.scrollTop - box.clientHeight > box.clientHeight; }

export function toLatest(box) {
  flush();
  box.scrollTop = box.scrollHeight;
  box.unseen = 0;
}

function chatParts(c) {
  const parts = [["time", clock(c.ts)]];
  if (!c.action) parts.push(["nick", `<${c.nick}> `]);
  parts.push(["text", c.action ? `* ${c.nick} ${c.text}` : c.text]);
  return parts;
}

// One person's consecutive lines (within five minutes) are a group: the nick is shown
// once (it stays in the text, for copying and screen readers).
function chatItem(box, c, className) {
  const li = item(chatParts(c), className);
  li.dataset.seq = c.seq;
  li.querySelector(".nick, .text").classList.add(nickColour(c.nick));
  const last = box.lastChat;
  if (!c.action && last && last.nick === c.nick && c.ts - last.ts < 300) li.classList.add("more");
  box.lastChat = c.action ? null : { nick: c.nick, ts: c.ts };
  return li;
}

export function mentions(text, nick) {
  if (!nick) return false;
  const escaped = nick.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^\\p{L}\\p{N}_])${escaped}($|[^\\p{L}\\p{N}_])`, "iu").test(text);
}

export function chat(box, c, me) {
  const li = chatItem(box, c, c.nick !== me && mentions(c.text, me) ? "mention" : "");
  queue(box, li);
  return li;
}

// A line marking where the unread messages of a room begin (one per room).
export function unreadMarker(box) {
  box.querySelector("li.unread")?.remove();
  for (const lines of waiting.values()) {
    const at = lines.findIndex((li) => li.classList.contains("unread"));
    if (at >= 0) lines.splice(at, 1);
  }
  return line(box, [["", "new messages"]], "unread");
}

// The number of the oldest message a list shows (null: none).
export function oldestShown(box) {
  const first = box.querySelector("li[data-seq]");
  return first ? Number(first.dataset.seq) : null;
}

// Older messages (paging back) go on top; the view stays where it was.
export function older(box, chats, complete, room) {
  flush();
  const before = box.scrollHeight;
  const saved = box.lastChat;
  box.lastChat = null;
  const items = chats.map((c) => chatItem(box, c, ""));
  box.lastChat = saved;
  if (complete) items.unshift(item([["", `-- beginning of ${room}`]], "system"));
  const log = box.closest("[role=log]");  // older lines are not news: not announced
  log?.setAttribute("aria-busy", "true");
  box.prepend(...items);
  setTimeout(() => log?.removeAttribute("aria-busy"), 0);
  box.scrollTop += box.scrollHeight - before;
}

export function privateMessage(box, p, me) {
  return chat(box, { ts: p.ts, nick: p.nick, text: p.text, seq: 0 }, p.nick === me ? me : "");
}

export function system(box, text, error = false) {
  return line(box, [["", `-- ${text}`]], error ? "error" : "system");
}

const sending = new Map();   // message id -> its "(sending)" line

export function pending(box, message) {
  const li = line(box, [["", `… ${message.text} (sending)`]], "pending");
  sending.set(message.id, li);
}

export function settled(id) {
  const li = sending.get(id);
  if (!li) return;
  sending.delete(id);
  li.remove();
  for (const lines of waiting.values()) { const at = lines.indexOf(li); if (at >= 0) lines.splice(at, 1); }
}

// Every message still sending is given up (the page starts over: a wrong password...).
export function unsent() { for (const id of [...sending.keys()]) settled(id); }

export function offer(box, f, onAccept, onReject) {
  const li = line(box, [["time", clock(f.ts)], ["", `-- ${f.nick} offers “${f.name}” (${size(f.size)}) `]], "system");
  for (const [label, act] of [["Accept", onAccept], ["Decline", onReject]]) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = label;
    button.addEventListener("click", () => { li.querySelectorAll("button").forEach((b) => b.remove()); act(); });
    li.append(button);
  }
}

export function saved(box, f, ok, text, url, name) {
  const li = line(box, [["", `-- “${f.name}”: ${text} `]], ok ? "system" : "error");
  if (url) {
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    a.textContent = `save ${name}`;
    li.append(a);
    a.click(); // start the download at once; the link stays for another copy
  }
}

function size(n) {
  for (const unit of ["bytes", "KiB", "MiB", "GiB"]) {
    if (n < 1024 || unit === "GiB") return unit === "bytes" ? `${n} bytes` : `${n.toFixed(1)} ${unit}`;
    n /= 1024;
  }
  return `${n}`;
}

export function members(infos) {
  const ul = document.getElementById("members");
  ul.replaceChildren(...infos.map((m) => {
    const li = document.createElement("li");
    li.textContent = (m.role || "") + m.nick + (m.away ? " (away)" : "") + (m.op ? " ★" : "");
    if (m.role) li.title = m.role === "@" ? "runs this room" : "may speak when it is moderated";
    return li;
  }));
}

export function header(room, topic, state, bad) {
  document.getElementById("where").textContent = room ? `#${room}` : "chatroom";
  const shown = document.getElementById("topic");
  shown.textContent = topic || "";
  shown.title = topic || "";  // the whole of a long one, on hover
  const s = document.getElementById("state");
  s.textContent = state;
  s.classList.toggle("bad", bad);
}

// A short tone for a mention or a private message, if the person turned sound on.
let audio = null;
export function beep() {
  audio = audio || new AudioContext();
  const osc = audio.createOscillator();
  const gain = audio.createGain();
  osc.frequency.value = 880;
  gain.gain.value = 0.1;
  osc.connect(gain).connect(audio.destination);
  osc.start();
  osc.stop(audio.currentTime + 0.12);
}
