// The page: pick a nick (remembered), join, talk. ?nick=NAME&room=ROOM joins directly.
import { ChatSession } from "./session.js";
import * as show from "./render.js";

const params = new URLSearchParams(location.search);
const joinForm = document.getElementById("join");
const sayForm = document.getElementById("say");
const input = document.getElementById("text");
let session = null;
let room = "";
let topic = "";
let roster = new Map();
let oldest = null;        // the oldest sequence number on the page, to page back from
let complete = false;     // nothing older exists
let asking = false;       // a page of older history is on its way

function url() {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
}

function start(nick, wanted, password = "") {
  localStorage.setItem("chatroom.nick", nick);
  joinForm.hidden = true;
  sayForm.hidden = false;
  if (session) session.leave();
  session = new ChatSession(url(), nick, wanted, onEvent, password);
  session.connect();
  input.focus();
}

function listMembers() { show.members([...roster.values()]); }

function onEvent(m) {
  switch (m.type) {
    case "state": {
      const text = m.state === "disconnected" ? `disconnected — retrying in ${Math.round(m.retryIn / 1000)} s` : m.state;
      show.header(room, topic, text, m.state !== "connected");
      if (m.state === "disconnected") show.system("connection lost; retrying", true);
      break;
    }
    case "welcome":
    case "joined":
      if (m.resumed && m.type === "joined") break;
      room = m.room; topic = m.topic;
      roster = new Map((m.members || []).map((x) => [x.nick, x]));
      listMembers();
      for (const c of m.history || []) show.chat(c, session.nick, session.rooms.size);
      if (!m.resumed) { oldest = (m.history || []).length ? m.history[0].seq : m.last_seq + 1; complete = false; }
      show.header(room, topic, "connected", false);
      show.system(m.resumed ? `reconnected to ${room}` : `you are in ${room} with ${Math.max(0, (m.member_count || 1) - 1)} other(s)`);
      break;
    case "chat": show.chat(m, session.nick, session.rooms.size); break;
    case "history": {
      const older = m.messages.filter((c) => oldest !== null && c.room === room && c.seq < oldest);
      if (older.length || (asking && m.complete)) {
        asking = false;
        complete = m.complete;
        if (older.length) oldest = older[0].seq;
        show.older(older, session.nick, session.rooms.size, m.complete, room);
      }
      for (const c of m.messages.filter((c) => !older.includes(c))) show.chat(c, session.nick, session.rooms.size);
      break;
    }
    case "private": show.privateMessage(m, session.nick); break;
    case "pending": show.pending(m.message); break;
    case "ack": show.settled(m.id); break;
    case "presence":
      if (m.room !== room) break;
      if (m.event === "join") roster.set(m.nick, { nick: m.nick });
      if (m.event === "leave") roster.delete(m.nick);
      if (m.event === "nick") { roster.delete(m.nick); roster.set(m.new_nick, { nick: m.new_nick }); }
      if (m.event === "away" || m.event === "back") roster.set(m.nick, { nick: m.nick, away: m.message });
      listMembers();
      show.system({ join: `${m.nick} joined`, leave: `${m.nick} left (${m.reason || "quit"})`,
        nick: `${m.nick} is now ${m.new_nick}`, away: `${m.nick} is away: ${m.message}`, back: `${m.nick} is back`,
        reconnected: `${m.nick} reconnected` }[m.event] || "");
      break;
    case "topic":
      if (m.room === room) { topic = m.topic; show.header(room, topic, "connected", false); }
      show.system(`${m.nick} set the topic: ${m.topic}`);
      break;
    case "members": roster = new Map(m.members.map((x) => [x.nick, x])); listMembers(); break;
    case "notice": show.system(m.text); break;
    case "error":
      if (m.id) show.settled(m.id);
      show.system(m.message, true);
      if (m.code === "nick_taken" || m.code === "invalid_nick") { session.stopped = true; joinForm.hidden = false; sayForm.hidden = true; }
      break;
    case "bye": show.system(`the server said goodbye: ${m.reason}`, true); break;
    case "local_error": show.system(m.text, true); break;
    case "password_needed":
      show.system("this room needs a password: type it below", true);
      document.getElementById("nick").value = session.nick;
      document.getElementById("room").value = session.room;
      joinForm.hidden = false; sayForm.hidden = true;
      document.getElementById("password").focus();
      break;
  }
}

function command(text) {
  const [head, ...rest] = text.slice(1).split(" ");
  const arg = rest.join(" ").trim();
  switch (head.toLowerCase()) {
    case "me": return session.action(arg, room);
    case "msg": { const [to, ...words] = rest; return session.direct(to, words.join(" ")); }
    case "nick": return session.send({ type: "nick", nick: arg });
    case "join": return session.send({ type: "join", room: arg });
    case "away": return session.send({ type: "away", message: arg || undefined });
    case "topic": return session.send({ type: "set_topic", topic: arg, room });
    case "who": return session.send({ type: "who", room });
    default: show.system(`unknown command /${head}: /me /msg /nick /join /away /topic /who`, true);
  }
}

// Scrolled to the top: the room's older history, a page at a time.
document.getElementById("messages").addEventListener("scroll", (event) => {
  if (event.target.scrollTop > 0 || !session || !session.open || complete || asking || oldest === null || oldest <= 1) {
    return;
  }
  asking = true;
  session.send({ type: "fetch_history", room, before: oldest, limit: 50 });
});

sayForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value;
  input.value = "";
  if (!text.trim()) return;
  if (text.startsWith("/") && !text.startsWith("//")) command(text);
  else session.say(text.startsWith("//") ? text.slice(1) : text, room);
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
