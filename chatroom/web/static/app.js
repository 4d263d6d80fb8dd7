// The page: pick a nick (remembered), join, talk; one tab per room you are in, marked
// when something new (+) or addressed to you (!) arrives while you look elsewhere.
// ?nick=NAME&room=ROOM joins directly.
import { ChatSession } from "./session.js";
import * as show from "./render.js";
import { Receiver, Sender, safeName } from "./files.js";

const params = new URLSearchParams(location.search);
const joinForm = document.getElementById("join");
const sayForm = document.getElementById("say");
const input = document.getElementById("text");
const sound = document.getElementById("sound");
let session = null;
let receiver = null;
let sender = null;
let current = "";              // the room on screen (where typed text goes)
const rooms = new Map();       // room -> { name, list, tab, topic, roster, oldest, complete, asking, who }
const asked = new Set();       // rooms the person asked to join: shown when they come (a rejoin is not)
const nowhere = document.getElementById("nowhere"); // what is said while in no room
let lastState = "connecting";
let retryAt = 0;               // while disconnected: when the next try is (the header counts down)

sound.checked = localStorage.getItem("chatroom.sound") === "on";
sound.addEventListener("change", () => localStorage.setItem("chatroom.sound", sound.checked ? "on" : "off"));

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
    const box = (offer.room && rooms.get(key(offer.room)) || here()).list;
    show.saved(box, offer, ok, text, link, safeName(offer.name));
  });
  session.connect();
  input.focus();
}

function key(name) { return (name || "").toLowerCase(); }

function room(name) {
  let r = rooms.get(key(name));
  if (!r) {
    const list = document.createElement("ol");
    list.className = "messages";
    list.setAttribute("role", "log");
    list.setAttribute("aria-label", `messages in ${name}`);
    list.addEventListener("scroll", () => pageBack(r));
    const tab = document.createElement("button");
    tab.type = "button";
    tab.setAttribute("role", "tab");
    tab.textContent = name;
    tab.addEventListener("click", () => focus(name));
    r = { name, list, tab, topic: "", roster: new Map(), oldest: null, complete: false, asking: false, who: false };
    rooms.set(key(name), r);
    nowhere.hidden = true;
    document.getElementById("rooms").append(list);
    document.getElementById("tabs").append(tab);
  }
  return r;
}

// Where to say something: the room on screen, or -- in no room -- the page itself.
function here() {
  const r = rooms.get(key(current));
  if (r) return r;
  nowhere.hidden = false;
  return { list: nowhere };
}

function focus(name) {
  current = rooms.get(key(name)).name;
  for (const r of rooms.values()) {
    const on = key(r.name) === key(current);
    r.list.hidden = !on;
    r.tab.setAttribute("aria-selected", String(on));
    if (on) r.tab.classList.remove("activity", "highlight");
  }
  const r = here();
  show.members([...r.roster.values()]);
  header();
  input.focus();
}

function header() {
  const r = rooms.get(key(current));
  const bad = lastState !== "connected";
  const state = retryAt ? `disconnected — retrying in ${Math.max(0, Math.ceil((retryAt - Date.now()) / 1000))} s`
    : lastState;
  show.header(current, r ? r.topic : "", state, bad);
}
setInterval(() => { if (retryAt) header(); }, 1000);  // the countdown

function mark(r, highlight) {
  if (!r.tab || key(r.name) === key(current)) return;
  r.tab.classList.add(highlight ? "highlight" : "activity");
}

function close(name) {
  const r = rooms.get(key(name));
  if (!r) return;
  r.list.remove();
  r.tab.remove();
  rooms.delete(key(name));
  if (key(name) === key(current)) {
    const next = rooms.values().next().value;
    current = next ? next.name : "";
    if (next) focus(next.name);
    else { nowhere.hidden = false; show.members([]); header(); }
  }
}

// Back to the join form, saying why (a wrong password, a taken nick): nothing of the
// attempt stays (its tabs, its lines "sending").
function backToForm(text, nick = "") {
  for (const name of [...rooms.keys()]) close(name);
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

show.trimmed((box) => {  // old lines left the page: scrolling up fetches them again
  for (const r of rooms.values()) {
    if (r.list === box) { r.oldest = show.oldestShown(box) ?? r.oldest; r.complete = false; }
  }
});

function pageBack(r) {
  if (r.list.scrollTop > 0 || !session || !session.open || r.complete || r.asking || r.oldest === null || r.oldest <= 1) {
    return;
  }
  r.asking = true;
  session.send({ type: "fetch_history", room: r.name, before: r.oldest, limit: 50 });
}

function arrived(m) {
  const r = room(m.room);
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
  if (asked.delete(key(r.name)) || !rooms.has(key(current))) focus(r.name);
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
  const r = rooms.get(key(m.room));
  if (r) {
    if (m.event === "join") r.roster.set(m.nick, { nick: m.nick });
    if (m.event === "leave") r.roster.delete(m.nick);
    if (m.event === "nick") { r.roster.delete(m.nick); r.roster.set(m.new_nick, { nick: m.new_nick }); }
    if (m.event === "away" || m.event === "back") r.roster.set(m.nick, { nick: m.nick, away: m.message });
    if (key(r.name) === key(current)) show.members([...r.roster.values()]);
  }
  show.system((r || here()).list, {
    join: `${m.nick} joined`, leave: `${m.nick} left (${m.reason || "quit"})`, nick: `${m.nick} is now ${m.new_nick}`,
    away: `${m.nick} is away: ${m.message}`, back: `${m.nick} is back`, reconnected: `${m.nick} reconnected`,
  }[m.event] || "");
}

function onEvent(m) {
  switch (m.type) {
    case "state":
      if (m.state === "disconnected" && lastState === "connected") show.system(here().list, "connection lost; retrying", true);
      retryAt = m.state === "disconnected" ? Date.now() + m.retryIn : 0;
      lastState = m.state;
      header();
      break;
    case "welcome": case "joined": arrived(m); break;
    case "parted": close(m.room); show.system(here().list, `you left ${m.room}`); break;
    case "chat": {
      const r = room(m.room);
      const line = show.chat(r.list, m, session.nick);
      const forMe = line.className === "mention";
      mark(r, forMe);
      if (forMe && sound.checked) show.beep();
      break;
    }
    case "history": history(m); break;
    case "private":
      show.privateMessage(here().list, m, session.nick);
      if (m.nick !== session.nick && sound.checked) show.beep();
      break;
    case "pending": show.pending((m.message.room && rooms.get(key(m.message.room)) || here()).list, m.message); break;
    case "ack": show.settled(m.id); break;
    case "presence": presence(m); break;
    case "topic": {
      const r = room(m.room);
      r.topic = m.topic;
      header();
      show.system(r.list, `${m.nick} set the topic: ${m.topic}`);
      break;
    }
    case "members": {
      const r = room(m.room);
      r.roster = new Map(m.members.map((x) => [x.nick, x]));
      if (r === here()) show.members([...r.roster.values()]);
      if (r.who) {  // /who asked: said in the room too (phones hide the side list)
        r.who = false;
        const names = m.members.map((x) => x.nick + (x.op ? " ★" : "") + (x.away ? " (away)" : ""));
        const more = m.member_count > m.members.length ? ` and ${m.member_count - m.members.length} more` : "";
        show.system(r.list, `here in ${r.name}: ${names.join(", ")}${more}`);
      }
      break;
    }
    case "notice": show.system(here().list, m.text); break;
    case "rooms":
      show.system(here().list, "rooms: " + m.rooms.map((r) => `${r.name} (${r.members})${r.topic ? `: ${r.topic}` : ""}`)
        .join("; "));
      break;
    case "user":
      show.system(here().list, `${m.nick}: in ${m.rooms.join(", ") || "no room"}` + (m.away ? ` · away: ${m.away}` : "") +
        (m.idle >= 60 ? ` · idle ${Math.floor(m.idle / 60)} min` : ""));
      break;
    case "found":
      show.system(here().list, m.messages.length
        ? `${m.messages.length} message(s) with “${m.text}” in ${m.room}:\n` +
          m.messages.map((c) => `  <${c.nick}> ${c.text}`).join("\n")
        : `nothing with “${m.text}” in ${m.room}`);
      break;
    case "error":
      if (m.id) show.settled(m.id);
      if (!m.id && !session.open && ["nick_taken", "invalid_nick", "auth_failed"].includes(m.code)) {
        session.stopped = true;  // refused at the door: pick again
        const again = m.code === "auth_failed" ? "wrong password: try again" : `${m.message}: pick another nick`;
        backToForm(again, m.code === "nick_taken" ? (m.suggestion || session.nick) : session.nick);
        if (m.code === "auth_failed") document.getElementById("password").focus();
        else document.getElementById("nick").select();
        break;
      }
      show.system(here().list, m.message, true);
      break;
    case "bye": show.system(here().list, `the server said goodbye: ${m.reason}`, true); break;
    case "file_offer":
      if (m.id) { sender.offered(m); break; } // our own offer, numbered by the server
      receiver.offered(m);
      show.offer((m.room && rooms.get(key(m.room)) || here()).list, m, () => receiver.accept(m.transfer),
        () => receiver.reject(m.transfer));
      if (m.nick !== session.nick) mark(m.room ? room(m.room) : here(), true);
      break;
    case "file_data": receiver.data(m, m.data); break;
    case "file_send": sender.start(m); break;
    case "file_credit": sender.credit(m); break;
    case "file_update":
      receiver.update(m);
      sender.update(m);
      if (m.over && m.event !== "received") show.system(here().list, `file transfer ${m.event}${m.reason ? `: ${m.reason}` : ""}`);
      break;
    case "local_error": show.system(here().list, m.text, true); break;
    case "password_needed":
      backToForm("this room needs a password: type it below", session.nick);
      document.getElementById("password").focus();
      break;
  }
}

const HELP = "commands: /me ACTION · /msg NICK TEXT · /nick NAME · /join ROOM · /part [ROOM] · /away [MESSAGE] · " +
  "/topic [TEXT] · /who · /whois NICK · /rooms · /last TEXT · /quit [REASON] · //text sends a line starting with /";

function command(text) {
  const [head, ...rest] = text.slice(1).split(" ");
  const arg = rest.join(" ").trim();
  const usage = (text) => show.system(here().list, `usage: ${text}`, true);
  switch (head.toLowerCase()) {
    case "me": return arg ? session.action(arg, current) : usage("/me ACTION");
    case "msg": {
      const [to, ...words] = rest.filter((w) => w);
      return to && words.length ? session.direct(to, words.join(" ")) : usage("/msg NICK TEXT");
    }
    case "nick": return arg ? session.send({ type: "nick", nick: arg }) : usage("/nick NAME");
    case "join":
      if (!arg) return usage("/join ROOM");
      if (rooms.has(key(arg.replace(/^#/, "")))) return focus(arg.replace(/^#/, ""));  // there already: go there
      asked.add(key(arg.replace(/^#/, "")));
      return session.send({ type: "join", room: arg });
    case "part": return session.send({ type: "part", room: arg || current });
    case "away": return session.send({ type: "away", message: arg || undefined });
    case "topic": {
      if (arg) return session.send({ type: "set_topic", topic: arg, room: current });
      const r = rooms.get(key(current));  // a bare /topic shows it (it never clears it)
      return show.system(here().list, r && r.topic ? `topic of ${r.name}: ${r.topic}` : "no topic is set");
    }
    case "who": case "names": {
      const r = rooms.get(key(current));
      if (r) r.who = true;
      return session.send({ type: "who", room: current });
    }
    case "whois": return session.send({ type: "whois", nick: arg });
    case "rooms": return session.send({ type: "list_rooms" });
    case "last": return session.send({ type: "search", room: current, text: arg });
    case "quit": session.leave(arg || "quit"); show.system(here().list, "you left: reload the page to come back"); return;
    case "help": return show.system(here().list, HELP);
    default: show.system(here().list, `unknown command /${head}: /help lists them`, true);
  }
}

sayForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value;
  input.value = "";
  if (!text.trim()) return;
  if (text.startsWith("/") && !text.startsWith("//")) command(text);
  else session.say(text.startsWith("//") ? text.slice(1) : text, current);
});

document.getElementById("attach").addEventListener("click", () => document.getElementById("file").click());
document.getElementById("file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file && session) sender.offer(file, current);
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
