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
    span.textContent = text;
    li.append(span);
  }
  return li;
}

function line(box, parts, className = "") {
  const li = item(parts, className);
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
  }
  waiting.clear();
}

function chatParts(c) {
  const parts = [["time", clock(c.ts)]];
  if (!c.action) parts.push(["nick", `<${c.nick}> `]);
  parts.push(["text", c.action ? `* ${c.nick} ${c.text}` : c.text]);
  return parts;
}

export function mentions(text, nick) {
  if (!nick) return false;
  const escaped = nick.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^\\p{L}\\p{N}_])${escaped}($|[^\\p{L}\\p{N}_])`, "iu").test(text);
}

export function chat(box, c, me) {
  const li = line(box, chatParts(c), c.nick !== me && mentions(c.text, me) ? "mention" : "");
  li.dataset.seq = c.seq;
  return li;
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
  const items = chats.map((c) => { const li = item(chatParts(c), ""); li.dataset.seq = c.seq; return li; });
  if (complete) items.unshift(item([["", `-- beginning of ${room}`]], "system"));
  box.prepend(...items);
  box.scrollTop += box.scrollHeight - before;
}

export function privateMessage(box, p, me) {
  const who = p.nick === me ? `→ ${p.to}` : `${p.nick} →`;
  return line(box, [["time", clock(p.ts)], ["nick", `[${who}] `], ["text", p.text]], p.nick === me ? "" : "mention");
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
    li.textContent = m.nick + (m.away ? " (away)" : "") + (m.op ? " ★" : "");
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
