// The page: pick a nick (remembered), join, talk.  One tab per room you are in and
// per private conversation, with a count of what arrived while you looked elsewhere
// (also in the page's title) and a "new messages" line where it starts.
// ?nick=NAME&room=ROOM joins directly.
import { ChatSession } from "./session.js";
import * as show from "./render.js";
import { Receiver, Sender, safeName } from "./files.js";
import { Composer } from "./input.js";
import { modeChanges, modesText } from "./roles.js";

const params = new URLSearchParams(location.search);
const joinForm = document.getElementById("join");
const sayForm = document.getElementById("say");
const input = document.getElementById("text");
const sound = document.getElementById("sound");
const notify = document.getElementById("notify");
const latest = document.getElementById("latest");
const nowhere = document.getElementById("nowhere"); // what is said while in no room or conversation
const TITLE = document.title;
let session = null;
let receiver = null;
let sender = null;
let current = "";              // the key of the tab on screen (where typed text goes)
let opened = 0;                // tabs opened so far (their ids)
// key -> { key, name, peer?, list, tab, topic, roster, oldest, complete, asking, who, unread, highlight }
// (a room's key is its folded name; a conversation's is "@" and the other's folded nick)
const tabs = new Map();
const asked = new Set();       // rooms the person asked to join: shown when they come (a rejoin is not)
let lastState = "connecting";
let retryAt = 0;               // while disconnected: when the next try is (the header counts down)

// ---------------------------------------------------------------- preferences

sound.checked = localStorage.getItem("chatroom.sound") === "on";
sound.addEventListener("change", () => localStorage.setItem("chatroom.sound", sound.checked ? "on" : "off"));
notify.checked = localStorage.getItem("chatroom.notify") === "on" && "Notification" in window &&
  Notification.permission === "granted";
notify.addEventListener("change", async () => {
  if (notify.checked && "Notification" in window && Notification.permission !== "granted") {
    notify.checked = (await Notification.requestPermission()) === "granted";  // asked only now, when chosen
  }
  localStorage.setItem("chatroom.notify", notify.checked ? "on" : "off");
});

const THEMES = ["auto", "dark", "light"];
function theme(name) {
  document.documentElement.dataset.theme = name;
  document.getElementById("theme").textContent = `theme: ${name}`;
  localStorage.setItem("chatroom.theme", name);
}
theme(THEMES.includes(localStorage.getItem("chatroom.theme")) ? localStorage.getItem("chatroom.theme") : "auto");
document.getElementById("theme").addEventListener("click", () => {
  theme(THEMES[(THEMES.indexOf(document.documentElement.dataset.theme) + 1) % THEMES.length]);
});
document.getElementById("people").addEventListener("click", () => {
  const open = document.querySelector("aside").classList.toggle("open");  // the drawer, on a phone
  document.getElementById("people").setAttribute("aria-expanded", String(open));
});

// ---------------------------------------------------------------- joining

function url() {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
}

function start(nick, wanted, password = "") {
  localStorage.setItem("chatroom.nick", nick);
  joinForm.hidden = true;
  sayForm.hidden = false;
  problem("");
  asked.add(key(wanted || "lobby"));
  if (session) session.leave();
  session = new ChatSession(url(), nick, wanted, onEvent, password);
  sender = new Sender(session, (text, error) => show.system(here().list, text, error));
  receiver = new Receiver(session, (offer, ok, text, link) => {
    const box = (offer.room && tabs.get(key(offer.room)) || here()).list;
    show.saved(box, offer, ok, text, link, safeName(offer.name));
  });
  session.connect();
  input.focus();
}

// Back to the join form, saying why (a wrong password, a taken nick): nothing of the
// attempt stays (its tabs, its lines "sending").
function backToForm(text, nick = "") {
  for (const k of [...tabs.keys()]) close(k);
  show.unsent();
  document.getElementById("nick").value = nick || (session && session.nick) || "";
  document.getElementById("room").value = (session && session.room) || "lobby";
  joinForm.hidden = false;
  sayForm.hidden = true;
  problem(text);
  lastState = "not connected";
  header();
}

function problem(text) {
  const p = document.getElementById("problem");
  p.textContent = text;
  p.hidden = !text;
}

// ---------------------------------------------------------------- tabs

function key(name) { return (name || "").toLowerCase(); }
function queryKey(nick) { return "@" + key(nick); }

function open(k, name, peer = null) {
  let t = tabs.get(k);
  if (t) return t;
  const list = document.createElement("ol");
  list.className = "messages";
  const id = `tab-${++opened}`;
  list.setAttribute("tabindex", "0");  // reachable by keyboard: arrows and Page Up read back
  list.hidden = k !== current;  // (shown when focused)
  list.setAttribute("aria-label", peer ? `conversation with ${peer}` : `messages in ${name}`);
  list.addEventListener("scroll", () => { pageBack(t); jumpButton(); });
  const tab = document.createElement("button");
  tab.type = "button";
  tab.id = id;
  tab.setAttribute("role", "tab");
  const panel = document.createElement("div");  // the tab's panel: its list of messages
  panel.className = "panel";
  panel.id = `${id}-panel`;
  panel.setAttribute("role", "tabpanel");
  panel.setAttribute("aria-labelledby", id);
  panel.hidden = list.hidden;
  panel.append(list);
  tab.setAttribute("aria-controls", panel.id);
  tab.classList.toggle("query", Boolean(peer));
  tab.addEventListener("click", () => focus(t.key));  // (a conversation's key follows a new nick)
  t = { key: k, name, peer, list, panel, tab, topic: "", roster: new Map(), oldest: null, complete: false, asking: false,
    who: false, unread: 0, highlight: false };
  tabs.set(k, t);
  label(t);
  nowhere.hidden = true;
  document.getElementById("rooms").append(panel);
  document.getElementById("tabs").append(tab);
  return t;
}

function room(name) { return open(key(name), name); }
function query(nick) {
  const t = open(queryKey(nick), nick, nick);
  t.name = t.peer = nick;  // (as the other spells it now)
  label(t);
  return t;
}

// Where to say something: the tab on screen, or -- in no room -- the page itself.
function here() {
  const t = tabs.get(current);
  if (t) return t;
  nowhere.hidden = false;
  return { list: nowhere };
}

function label(t) {
  t.tab.textContent = (t.peer ? "@" : "") + t.name + (t.unread ? ` (${t.unread})` : "");
  t.tab.classList.toggle("highlight", t.highlight);
  t.tab.classList.toggle("activity", t.unread > 0 && !t.highlight);
  title();
}

function title() {
  const total = [...tabs.values()].reduce((n, x) => n + x.unread, 0);
  document.title = total ? `(${total}) ${TITLE}` : TITLE;
}

function focus(k) {
  const t = tabs.get(k);
  if (!t) return;
  current = k;
  for (const x of tabs.values()) {
    const on = x.key === k;
    x.list.hidden = x.panel.hidden = !on;
    x.tab.setAttribute("aria-selected", String(on));
  }
  if (!document.hidden) { t.unread = 0; t.highlight = false; }
  label(t);
  show.members([...t.roster.values()]);
  header();
  jumpButton();
  showTypers();
  input.focus();
}

function header() {
  const t = tabs.get(current);
  const bad = lastState !== "connected";
  const state = retryAt ? `disconnected — retrying in ${Math.max(0, Math.ceil((retryAt - Date.now()) / 1000))} s`
    : lastState;
  show.header(t ? (t.peer ? `@${t.peer}` : t.name) : "", t ? t.topic : "", state, bad);
}
setInterval(() => { if (retryAt) header(); }, 1000);  // the countdown

// Something arrived in ``t``: counted while it is not on screen (or the page is hidden),
// with a "new messages" line where the unread part begins.
function arrivedIn(t, highlight, line) {
  if (t.key === current && !document.hidden) return;
  if (!t.unread) show.unreadMarker(t.list);  // (queued before the line that follows)
  t.unread += 1;
  t.highlight = t.highlight || highlight;
  label(t);
  if (highlight && notify.checked && document.hidden) {
    const n = new Notification(t.peer ? `${t.peer} (private)` : `${line.nick} in ${t.name}`,
      { body: line.text.slice(0, 200), tag: t.key });
    n.onclick = () => { window.focus(); focus(t.key); n.close(); };
  }
}
document.addEventListener("visibilitychange", () => { if (!document.hidden && tabs.get(current)) focus(current); });

function close(k) {
  const t = tabs.get(k);
  if (!t) return;
  t.panel.remove();
  t.tab.remove();
  tabs.delete(k);
  title();
  if (k === current) {
    const next = tabs.values().next().value;
    current = next ? next.key : "";
    if (next) focus(next.key);
    else { nowhere.hidden = false; show.members([]); header(); }
  }
}

// "Jump to latest": shown while reading back, with how many lines came meanwhile.
function jumpButton() {
  const t = tabs.get(current);
  const reading = Boolean(t) && show.readingBack(t.list);
  latest.hidden = !reading;
  if (reading) latest.textContent = t.list.unseen ? `↓ ${t.list.unseen} new` : "↓ latest";
  else if (t) t.list.unseen = 0;
}
// Keyboard: Alt+1..9 goes to a tab (as in irssi), Alt+Up/Down to the one before or after.
document.addEventListener("keydown", (event) => {
  if (!event.altKey || event.ctrlKey || event.metaKey) return;
  const order = [...tabs.keys()];
  const at = order.indexOf(current);
  let next = null;
  if (/^Digit[1-9]$/.test(event.code)) next = order[Number(event.code.slice(5)) - 1];
  else if (event.key === "ArrowUp" && at > 0) next = order[at - 1];
  else if (event.key === "ArrowDown" && at >= 0 && at < order.length - 1) next = order[at + 1];
  if (next === undefined || next === null) return;
  event.preventDefault();
  focus(next);
});

latest.addEventListener("click", () => { const t = tabs.get(current); if (t) show.toLatest(t.list); jumpButton(); });
show.arrived((box, atBottom) => { if (!atBottom && tabs.get(current)?.list === box) jumpButton(); });

show.trimmed((box) => {  // old lines left the page: scrolling up fetches them again
  for (const t of tabs.values()) {
    if (t.list === box && !t.peer) { t.oldest = show.oldestShown(box) ?? t.oldest; t.complete = false; }
  }
});

function pageBack(t) {
  if (!t || t.peer || t.list.scrollTop > 0 || !session || !session.open || t.complete || t.asking ||
      t.oldest === null || t.oldest <= 1) {
    return;
  }
  t.asking = true;
  session.send({ type: "fetch_history", room: t.name, before: t.oldest, limit: 50 });
}

// ---------------------------------------------------------------- what the server says

function arrived(m) {
  if (!m.room) return;  // (welcomed into no room)
  const r = room(m.room);
  r.name = m.room;
  if (!(m.resumed && m.type === "joined")) {
    r.topic = m.topic;
    r.roster = new Map((m.members || []).map((x) => [x.nick, x]));
    for (const c of m.history || []) show.chat(r.list, c, session.nick);
    if (!m.resumed) {
      // What is already on the page stays (after a server restart, the history came
      // again and was filtered to what is new): paging goes on from the oldest shown.
      const first = (m.history || []).length ? m.history[0].seq : m.last_seq + 1;
      r.oldest = r.oldest === null ? first : Math.min(r.oldest, first);
    }
    const others = Math.max(0, (m.member_count || 1) - 1);
    show.system(r.list, m.resumed ? `reconnected to ${r.name}` : `you are in ${r.name} with ${others} other(s)`);
  }
  // Shown when asked for, or when nothing is on screen -- never by a rejoin after a
  // restart (the next line typed would go to a room the person did not pick).
  if (asked.delete(r.key) || !tabs.has(current)) focus(r.key);
  else if (r.key === current) { show.members([...r.roster.values()]); header(); }
}

function history(m) {
  const r = room(m.room);
  const older = m.messages.filter((c) => r.oldest !== null && c.seq < r.oldest);
  if (older.length || (r.asking && m.complete)) {
    r.asking = false;
    r.complete = m.complete;
    if (older.length) r.oldest = older[0].seq;
    show.older(r.list, older, m.complete, r.name);
  }
  for (const c of m.messages.filter((c) => !older.includes(c))) show.chat(r.list, c, session.nick);
}

function presence(m) {
  const r = tabs.get(key(m.room));
  if (r) {
    if (m.event === "join") r.roster.set(m.nick, { nick: m.nick });
    if (m.event === "leave") r.roster.delete(m.nick);
    if (m.event === "nick") { r.roster.delete(m.nick); r.roster.set(m.new_nick, { nick: m.new_nick }); }
    if (m.event === "away" || m.event === "back") r.roster.set(m.nick, { nick: m.nick, away: m.message });
    if (r.key === current) show.members([...r.roster.values()]);
  }
  if (m.event === "nick" && tabs.has(queryKey(m.nick))) {  // a conversation follows the other's new nick
    const q = tabs.get(queryKey(m.nick));
    tabs.delete(q.key);
    q.key = queryKey(m.new_nick);
    tabs.set(q.key, q);
    if (current === queryKey(m.nick)) current = q.key;
    q.name = q.peer = m.new_nick;
    label(q);
    show.system(q.list, `${m.nick} is now ${m.new_nick}`);
  }
  show.system((r || here()).list, {
    join: `${m.nick} joined`, leave: `${m.nick} left (${m.reason || "quit"})`, nick: `${m.nick} is now ${m.new_nick}`,
    away: `${m.nick} is away: ${m.message}`, back: `${m.nick} is back`, reconnected: `${m.nick} reconnected`,
  }[m.event] || "");
}

function chatLine(m) {
  stoppedTyping(m.room, m.nick);  // (the line is here: no longer typing it)
  const r = room(m.room);
  const forMe = m.nick !== session.nick && show.mentions(m.text, session.nick);
  if (m.nick !== session.nick) arrivedIn(r, forMe, m);
  show.chat(r.list, m, session.nick);
  if (forMe && sound.checked) show.beep();
}

function privateLine(m) {
  if (/^[@+]#/.test(m.to)) {  // to a room's operators (IRC's STATUSMSG): in that room
    const r = room(m.to.slice(2));
    show.chat(r.list, { ts: m.ts, nick: m.nick, text: `→ ${m.to}: ${m.text}`, seq: 0 }, session.nick);
    return;
  }
  const mine = m.nick === session.nick;
  const q = query(mine ? m.to : m.nick);
  if (!mine) arrivedIn(q, true, m);
  show.privateMessage(q.list, m, session.nick);
  if (!mine && sound.checked) show.beep();
}

function membersOf(m) {
  const r = room(m.room);
  r.roster = new Map(m.members.map((x) => [x.nick, x]));
  if (r.key === current) show.members([...r.roster.values()]);
  if (r.who) {  // /who asked: said in the room too (phones hide the side list)
    r.who = false;
    const names = m.members.map((x) => x.nick + (x.op ? " ★" : "") + (x.away ? " (away)" : ""));
    const more = m.member_count > m.members.length ? ` and ${m.member_count - m.members.length} more` : "";
    show.system(r.list, `here in ${r.name}: ${names.join(", ")}${more}`);
  }
}

function refused(m) {
  if (m.id) show.settled(m.id);
  if (!m.id && !session.open && ["nick_taken", "invalid_nick", "auth_failed"].includes(m.code)) {
    session.stopped = true;  // refused at the door: pick again
    const again = m.code === "auth_failed" ? "wrong password: try again" : `${m.message}: pick another nick`;
    backToForm(again, m.code === "nick_taken" ? (m.suggestion || session.nick) : session.nick);
    if (m.code === "auth_failed") document.getElementById("password").focus();
    else document.getElementById("nick").select();
    return;
  }
  show.system(here().list, m.message, true);
}

const HANDLERS = {
  state(m) {
    if (m.state === "disconnected" && lastState === "connected") show.system(here().list, "connection lost; retrying", true);
    retryAt = m.state === "disconnected" ? Date.now() + m.retryIn : 0;
    lastState = m.state;
    header();
  },
  welcome: arrived,
  joined: arrived,
  parted(m) {
    close(key(m.room));
    show.system(here().list, m.reason ? `you are out of ${m.room}: ${m.reason}` : `you left ${m.room}`, !!m.reason);
  },
  modes(m) {
    const r = tabs.get(key(m.room)) || here();
    for (const c of m.nick ? m.changes : []) {  // roles shown in the member list
      if ((c.mode === "operator" || c.mode === "voice") && r.roster && r.roster.has(c.arg)) {
        const x = { ...r.roster.get(c.arg) };
        if (c.mode === "operator") x.role = c.on !== false ? "@" : null;
        else if (x.role !== "@") x.role = c.on !== false ? "+" : null;
        r.roster.set(c.arg, x);
      }
    }
    if (r.key === current && r.roster) show.members([...r.roster.values()]);
    show.system(r.list, modesText(m));
  },
  invited(m) { show.system(here().list, `${m.nick} invited ${m.to} into ${m.room} (/join ${m.room})`); },
  chat: chatLine,
  history,
  private: privateLine,
  pending(m) {
    const t = m.message.to ? query(m.message.to) : (m.message.room && tabs.get(key(m.message.room)) || here());
    show.pending(t.list, m.message);
  },
  ack(m) { show.settled(m.id); },
  presence,
  topic(m) {
    const r = room(m.room);
    r.topic = m.topic;
    header();
    show.system(r.list, `${m.nick} set the topic: ${m.topic}`);
  },
  members: membersOf,
  typing: typingNotice,
  notice(m) { show.system(here().list, m.text); },
  rooms(m) {
    show.system(here().list, "rooms: " + m.rooms.map((r) => `${r.name} (${r.members})${r.topic ? `: ${r.topic}` : ""}`)
      .join("; "));
  },
  user(m) {
    show.system(here().list, `${m.nick}: in ${m.rooms.join(", ") || "no room"}` + (m.away ? ` · away: ${m.away}` : "") +
      (m.idle >= 60 ? ` · idle ${Math.floor(m.idle / 60)} min` : ""));
  },
  found(m) {
    show.system(here().list, m.messages.length
      ? `${m.messages.length} message(s) with “${m.text}” in ${m.room}:\n` +
        m.messages.map((c) => `  <${c.nick}> ${c.text}`).join("\n")
      : `nothing with “${m.text}” in ${m.room}`);
  },
  error: refused,
  bye(m) { show.system(here().list, `the server said goodbye: ${m.reason}`, true); },
  file_offer(m) {
    if (m.id) { sender.offered(m); return; } // our own offer, numbered by the server
    receiver.offered(m);
    const t = m.room ? room(m.room) : query(m.nick);
    show.offer(t.list, m, () => receiver.accept(m.transfer), () => receiver.reject(m.transfer));
    if (m.nick !== session.nick) arrivedIn(t, true, { nick: m.nick, text: `offers “${m.name}”` });
  },
  file_data(m) { receiver.data(m, m.data); },
  file_send(m) { sender.start(m); },
  file_credit(m) { sender.credit(m); },
  file_update(m) {
    receiver.update(m);
    sender.update(m);
    if (m.over && m.event !== "received") show.system(here().list, `file transfer ${m.event}${m.reason ? `: ${m.reason}` : ""}`);
  },
  local_error(m) { show.system(here().list, m.text, true); },
  password_needed() {
    backToForm("this room needs a password: type it below", session.nick);
    document.getElementById("password").focus();
  },
};

function onEvent(m) {
  const handle = HANDLERS[m.type];
  if (handle) handle(m);
}

// ---------------------------------------------------------------- what the person types

const COMMANDS = ["me", "msg", "query", "nick", "join", "part", "close", "away", "topic", "who", "whois", "rooms",
  "last", "quit", "help", "op", "deop", "voice", "devoice", "mode", "invite", "kick", "ban", "unban", "bans"];
const HELP = "commands: /me ACTION · /msg NICK TEXT · /query NICK (a tab of its own) · /nick NAME · /join ROOM · " +
  "/part [ROOM] · /close (a conversation's tab) · /away [MESSAGE] · /topic [TEXT] · /who · /whois NICK · /rooms · " +
  "/last TEXT · /quit [REASON] · //text sends a line starting with / · Shift+Enter: a new line · Up: the last line · " +
  "Tab: completes a nick or a command · running a room: /op /deop /voice /devoice NICK · /mode [+mtisl-… ARGS] · " +
  "/invite NICK · /kick NICK [REASON] · /ban /unban NICK|MASK · /bans · /join ROOM KEY";

async function setModes(room, changes) {
  for (const c of changes) {
    if (c.mode === "key" && c.on) {
      if (!crypto.subtle) throw new Error("this browser sets a room's key only on https:// pages or localhost");
      session.roomKeys.set(room.toLowerCase(), c.arg);
      c.arg = await session.keyVerifier(c.arg);
    }
  }
  session.send({ type: "mode", room, changes });
}
function roomCommand(head, rest, t) {
  if (!t || t.peer) return show.system(here().list, `/${head} is about a room: use it in a room's tab`, true);
  const room = t.name;
  const words = rest.filter((w) => w);
  const roles = { op: ["operator", true], deop: ["operator", false], voice: ["voice", true], devoice: ["voice", false] };
  if (roles[head]) {
    if (!words.length) return show.system(t.list, `usage: /${head} NICK…`, true);
    return session.send({ type: "mode", room, changes: words.slice(0, 6).map((nick) => ({ mode: roles[head][0],
      on: roles[head][1], arg: nick })) });
  }
  if (head === "mode") {
    if (!words.length) return session.send({ type: "mode", room });
    try { return setModes(room, modeChanges(words[0], words.slice(1))).catch((e) => show.system(t.list, String(e.message), true)); }
    catch (error) { return show.system(t.list, `/mode: ${error.message}`, true); }
  }
  if (head === "bans") return session.send({ type: "mode", room, bans: true });
  if (!words.length) return show.system(t.list, `usage: /${head} NICK`, true);
  if (head === "invite") return session.send({ type: "invite", nick: words[0], room });
  if (head === "kick") return session.send({ type: "moderate", action: "kick", target: words[0], room,
    reason: words.slice(1).join(" ") });
  return session.send({ type: "mode", room, changes: [{ mode: "ban", on: head === "ban", arg: words[0] }] });
}

function command(text) {
  const [head, ...rest] = text.slice(1).split(" ");
  const arg = rest.join(" ").trim();
  const t = tabs.get(current);
  const usage = (line) => show.system(here().list, `usage: ${line}`, true);
  switch (head.toLowerCase()) {
    case "me": return arg && t && !t.peer ? session.action(arg, t.name) : usage("/me ACTION (in a room)");
    case "msg": {
      const [to, ...words] = rest.filter((w) => w);
      return to && words.length ? session.direct(to, words.join(" ")) : usage("/msg NICK TEXT");
    }
    case "query": return arg ? focus(query(arg.split(" ")[0]).key) : usage("/query NICK");
    case "close": return t && t.peer ? close(t.key) : usage("/close (in a conversation; /part leaves a room)");
    case "nick": return arg ? session.send({ type: "nick", nick: arg }) : usage("/nick NAME");
    case "join": {
      if (!arg) return usage("/join ROOM [KEY]");
      const [room, given] = arg.split(/\s+/);
      const name = room.replace(/^#/, "");
      if (tabs.has(key(name))) return focus(key(name));  // there already: go there
      asked.add(key(name));
      if (given) session.roomKeys.set(name.toLowerCase(), given);
      return session.send({ type: "join", room: name });
    }
    case "op": case "deop": case "voice": case "devoice": case "mode": case "invite": case "kick": case "ban":
    case "unban": case "bans":
      return roomCommand(head.toLowerCase(), rest, t);
    case "part": return session.send({ type: "part", room: arg || (t && !t.peer ? t.name : "") });
    case "away": return session.send({ type: "away", message: arg || undefined });
    case "topic": {
      if (arg) return session.send({ type: "set_topic", topic: arg, room: t ? t.name : undefined });
      return show.system(here().list, t && t.topic ? `topic of ${t.name}: ${t.topic}` : "no topic is set");
    }
    case "who": case "names":
      if (!t || t.peer) return usage("/who (in a room)");
      t.who = true;
      return session.send({ type: "who", room: t.name });
    case "whois": return arg ? session.send({ type: "whois", nick: arg }) : usage("/whois NICK");
    case "rooms": return session.send({ type: "list_rooms" });
    case "last": return arg && t && !t.peer ? session.send({ type: "search", room: t.name, text: arg })
      : usage("/last TEXT (in a room)");
    case "quit": session.leave(arg || "quit"); show.system(here().list, "you left: reload the page to come back"); return;
    case "help": return show.system(here().list, HELP);
    default: show.system(here().list, `unknown command /${head}: /help lists them`, true);
  }
}

// ---------------------------------------------------------------- typing

// Said while typing (again every 3 s), "paused" after 5 s without a key, "done" when the
// box is emptied or the line sent.  Only in rooms; never for a command.
let typingIn = null;   // the room we said we are typing in
let typingAt = 0;
let typingIdle = null;
function typed() {
  const t = tabs.get(current);
  const text = input.value;
  if (!session || !t || t.peer || !text || text.startsWith("/")) { stopTyping(); return; }
  if (typingIn !== t.name) stopTyping();
  const now = Date.now();
  if (now - typingAt > 3000) { session.typing(t.name, "active"); typingIn = t.name; typingAt = now; }
  clearTimeout(typingIdle);
  typingIdle = setTimeout(() => { if (typingIn) session.typing(typingIn, "paused"); typingAt = 0; }, 5000);
}
function stopTyping() {
  clearTimeout(typingIdle);
  if (typingIn && session) session.typing(typingIn, "done");
  typingIn = null;
  typingAt = 0;
}
input.addEventListener("input", typed);

// Who is typing where: room key -> nick -> until when (a notice lasts 7 s unless said again).
const typers = new Map();
function typingNotice(m) {
  const k = key(m.room);
  const here = typers.get(k) || new Map();
  if (m.state === "active") here.set(m.nick, Date.now() + 7000);
  else here.delete(m.nick);
  typers.set(k, here);
  showTypers();
}
function stoppedTyping(room, nick) {
  const here = typers.get(key(room));
  if (here && here.delete(nick)) showTypers();
}
function showTypers() {
  const now = Date.now();
  const here = typers.get(current) || new Map();
  for (const [nick, until] of here) if (until < now) here.delete(nick);
  const nicks = [...here.keys()];
  const p = document.getElementById("typing");
  p.textContent = !nicks.length ? "" : nicks.length === 1 ? `${nicks[0]} is typing…`
    : nicks.length === 2 ? `${nicks[0]} and ${nicks[1]} are typing…` : `${nicks.length} people are typing…`;
}
setInterval(showTypers, 1000);

function sendLine(text) {
  stopTyping();
  if (!text.trim() || !session) return;
  if (text.startsWith("/") && !text.startsWith("//")) return command(text);
  const line = text.startsWith("//") ? text.slice(1) : text;
  const t = tabs.get(current);
  if (t && t.peer) session.direct(t.peer, line);
  else session.say(line, t ? t.name : undefined);
}

const composer = new Composer(input, sendLine, (commandFirst) => {
  if (commandFirst) return COMMANDS;
  const t = tabs.get(current);
  return t ? [...t.roster.keys()].filter((n) => n !== (session && session.nick)) : [];
});

sayForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value;
  input.value = "";
  composer.fit();
  sendLine(text);
});

document.getElementById("attach").addEventListener("click", () => document.getElementById("file").click());
document.getElementById("file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  const t = tabs.get(current);
  if (file && session) sender.offer(file, t && !t.peer ? t.name : undefined);
  event.target.value = "";
});

joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const password = document.getElementById("password");
  start(document.getElementById("nick").value.trim(), document.getElementById("room").value.trim(), password.value);
  password.value = "";
});

const nick = params.get("nick") || "";
if (nick) start(nick, params.get("room") || "lobby");
else {
  document.getElementById("nick").value = localStorage.getItem("chatroom.nick") || "";
  if (params.get("room")) document.getElementById("room").value = params.get("room");
  joinForm.hidden = false;
  show.header("", "", "pick a nick", false);
}
