// What the page shows. Everything a peer sent goes in with textContent: never HTML.
// Each room has its own list of messages (a tab); `box` is the list to write to.

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
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.append(li);
  if (atBottom) box.scrollTop = box.scrollHeight;
  return li;
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
  return line(box, chatParts(c), c.nick !== me && mentions(c.text, me) ? "mention" : "");
}

// Older messages (paging back) go on top; the view stays where it was.
export function older(box, chats, complete, room) {
  const before = box.scrollHeight;
  const items = chats.map((c) => item(chatParts(c), ""));
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

export function pending(box, message) {
  const li = line(box, [["", `… ${message.text} (sending)`]], "pending");
  li.dataset.id = message.id;
}

export function settled(id) {
  for (const li of document.querySelectorAll("#rooms li.pending")) if (li.dataset.id === id) li.remove();
}

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
  document.getElementById("topic").textContent = topic || "";
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
