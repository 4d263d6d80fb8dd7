// What the page shows. Everything a peer sent goes in with textContent: never HTML.
const list = () => document.getElementById("messages");

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

// Older messages (paging back) go on top; the view stays where it was.
export function older(chats, me, rooms, complete, room) {
  const box = list();
  const before = box.scrollHeight;
  const items = chats.map((c) => item(chatParts(c, rooms), ""));
  if (complete) items.unshift(item([["", `-- beginning of ${room}`]], "system"));
  box.prepend(...items);
  box.scrollTop += box.scrollHeight - before;
}

function chatParts(c, rooms) {
  const parts = [["time", clock(c.ts)], ["room", rooms > 1 ? `${c.room} ` : ""]];
  if (!c.action) parts.push(["nick", `<${c.nick}> `]);
  parts.push(["text", c.action ? `* ${c.nick} ${c.text}` : c.text]);
  return parts;
}

function line(parts, className = "") {
  const item = document.createElement("li");
  if (className) item.className = className;
  for (const [cls, text] of parts) {
    const span = document.createElement("span");
    if (cls) span.className = cls;
    span.textContent = text;
    item.append(span);
  }
  const box = list();
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.append(item);
  if (atBottom) box.scrollTop = box.scrollHeight;
  return item;
}

export function mentions(text, nick) {
  if (!nick) return false;
  const escaped = nick.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^\\p{L}\\p{N}_])${escaped}($|[^\\p{L}\\p{N}_])`, "iu").test(text);
}

export function chat(c, me, rooms) {
  return line(chatParts(c, rooms), c.nick !== me && mentions(c.text, me) ? "mention" : "");
}

export function privateMessage(p, me) {
  const who = p.nick === me ? `→ ${p.to}` : `${p.nick} →`;
  return line([["time", clock(p.ts)], ["nick", `[${who}] `], ["text", p.text]], p.nick === me ? "" : "mention");
}

export function system(text, error = false) {
  return line([["", `-- ${text}`]], error ? "error" : "system");
}

export function pending(message) {
  const item = line([["", `… ${message.text} (sending)`]], "pending");
  item.dataset.id = message.id;
}

export function settled(id) {
  for (const item of list().querySelectorAll("li.pending")) if (item.dataset.id === id) item.remove();
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
